//! Structured JSON logs. Fields are campaign ids, states and counts; the code never logs a
//! customer id, an e-mail address or a credential.

/// JSON lines to stderr, filtered by `RUST_LOG` (default `info`). Safe to call twice.
pub fn init_json() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .with_writer(std::io::stderr)
        .try_init();
}
