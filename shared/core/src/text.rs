//! Bounded text: every failure reason, sample and message espbridge writes has a size that no
//! input can grow (a record must fit DynamoDB's 400 KB item, a log line must stay a line).

/// Longest failure reason or sample, in bytes.
pub const MAX_REASON: usize = 512;

const ELLIPSIS: &str = "…";

/// `s` cut to at most `max` bytes on a character boundary, an ellipsis marking the cut.
pub fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let room = max.saturating_sub(ELLIPSIS.len());
    let mut end = room.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + ELLIPSIS.len());
    out.push_str(&s[..end]);
    out.push_str(ELLIPSIS);
    out
}

/// [`bounded`] to [`MAX_REASON`].
pub fn reason(s: &str) -> String {
    bounded(s, MAX_REASON)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_and_long_text_is_cut_on_a_character_boundary() {
        assert_eq!(bounded("abc", 3), "abc");
        assert_eq!(bounded("abcdef", 5), "ab…");
        let cut = bounded(&"é".repeat(1000), MAX_REASON);
        assert!(cut.len() <= MAX_REASON, "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert_eq!(reason(&"x".repeat(5_000_000)).len(), MAX_REASON);
    }
}
