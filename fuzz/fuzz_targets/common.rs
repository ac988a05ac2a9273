//! What every fuzz target checks of an error text, and a runner with a tokio worker's stack.

#![allow(dead_code)]

/// Longest error text an input may give, beside the names espbridge itself puts in it.
pub const ERROR_MAX: usize = 1024;

pub fn bounded(what: &str, text: &str, extra: usize) {
    assert!(
        text.len() <= ERROR_MAX + extra,
        "{what}: {} bytes: {}",
        text.len(),
        text.chars().take(300).collect::<String>()
    );
}

/// Runs `f` on a thread with a 2 MiB stack, the size of a tokio worker's (where the adapters
/// run in a Lambda): a reader that recurses once per level of its input overflows it here as it
/// would there, not only past libFuzzer's 8 MiB main stack.
pub fn on_worker_stack(data: &[u8], f: fn(&[u8])) {
    let data = data.to_vec();
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || f(&data))
        .expect("spawn a thread")
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
}
