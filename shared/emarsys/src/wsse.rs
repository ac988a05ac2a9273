//! The `X-WSSE` header Emarsys Suite API v2 expects on every request.
//!
//! `PasswordDigest = base64(lowercase_hex(sha1(nonce + created + secret)))`: the base64 is taken of
//! the 40 hex characters, not of the 20 raw digest bytes (the usual mistake; see the reference A.2).

use base64::Engine as _;
use jiff::Timestamp;
use sha1::{Digest, Sha1};

/// The digest for one request. Concatenation order is nonce, created (exactly as sent), secret.
pub fn password_digest(nonce: &str, created: &str, secret: &str) -> String {
    let mut hasher = Sha1::new();
    hasher.update(nonce.as_bytes());
    hasher.update(created.as_bytes());
    hasher.update(secret.as_bytes());
    let hex_digest = hex::encode(hasher.finalize());
    base64::engine::general_purpose::STANDARD.encode(hex_digest.as_bytes())
}

/// The full header value: `UsernameToken Username="..", PasswordDigest="..", Nonce="..", Created=".."`.
pub fn header(user: &str, secret: &str, nonce: &str, created: &str) -> String {
    let digest = password_digest(nonce, created, secret);
    format!(
        "UsernameToken Username=\"{user}\", PasswordDigest=\"{digest}\", Nonce=\"{nonce}\", Created=\"{created}\""
    )
}

/// A fresh nonce: 16 random bytes as 32 lower-case hex characters. Never reused: Emarsys rejects
/// replays.
pub fn nonce() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// `Created` in UTC with a `Z` suffix, second precision (the server allows 5 minutes of skew).
pub fn created(now: Timestamp) -> String {
    now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_from_the_reference() {
        let d = password_digest(
            "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            "2024-05-06T07:08:09Z",
            "example-secret",
        );
        assert_eq!(
            d,
            "YzEzNmQxNWM5NWY1NmY3OTk3NTMwYmNiNjkzMzA0YmU4MGU4MmY1ZQ=="
        );
        assert_eq!(d.len(), 56);
        assert_ne!(d, "wTbRXJX1b3mXUwvLaTMEvoDoL14=");
    }

    #[test]
    fn header_layout() {
        let h = header(
            "espbridge",
            "example-secret",
            "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            "2024-05-06T07:08:09Z",
        );
        assert_eq!(
            h,
            "UsernameToken Username=\"espbridge\", \
             PasswordDigest=\"YzEzNmQxNWM5NWY1NmY3OTk3NTMwYmNiNjkzMzA0YmU4MGU4MmY1ZQ==\", \
             Nonce=\"0f1e2d3c4b5a69788796a5b4c3d2e1f0\", Created=\"2024-05-06T07:08:09Z\""
        );
    }

    #[test]
    fn nonce_is_fresh_32_hex() {
        let a = nonce();
        let b = nonce();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn created_is_utc_zulu() {
        let t: Timestamp = "2024-05-06T09:08:09.750+02:00".parse().unwrap();
        assert_eq!(created(t), "2024-05-06T07:08:09Z");
    }
}
