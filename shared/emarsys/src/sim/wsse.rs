//! The `X-WSSE` check, written independently of any client so a client bug cannot hide.
//!
//! `X-WSSE: UsernameToken Username="u", PasswordDigest="d", Nonce="n", Created="c"` where
//! `d = base64(lowercase_hex(sha1(n + c + secret)))` — base64 of the 40 hex characters, not of the
//! raw 20 bytes. `Created` must be within five minutes of the server's clock and a nonce may be
//! used once within that window.

use base64::Engine as _;
use jiff::{SignedDuration, Timestamp, tz::TimeZone};
use sha1::{Digest as _, Sha1};
use std::collections::HashMap;

/// How far `Created` may be from the server's clock, either way.
pub const TIME_WINDOW: SignedDuration = SignedDuration::from_mins(5);

/// Why a request was not authenticated. Every variant is a 401 / replyCode 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsseError {
    #[error("no X-WSSE header")]
    Missing,
    #[error("malformed X-WSSE header: {0}")]
    Malformed(&'static str),
    #[error("unknown API user")]
    UnknownUser,
    #[error("password digest does not match")]
    BadDigest,
    #[error("Created is outside the allowed time frame")]
    TimeFrame,
    #[error("nonce already used")]
    NonceReused,
}

impl WsseError {
    /// The `replyText` Emarsys answers with.
    pub fn reply_text(&self) -> &'static str {
        match self {
            WsseError::TimeFrame => "Unauthorized Time frame is invalid",
            _ => "Unauthorized",
        }
    }
}

/// The parsed parts of a `UsernameToken` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsernameToken {
    pub username: String,
    pub password_digest: String,
    pub nonce: String,
    pub created: String,
}

/// Parses `UsernameToken Username="..", PasswordDigest="..", Nonce="..", Created=".."`.
pub fn parse_header(value: &str) -> Result<UsernameToken, WsseError> {
    let value = value.trim();
    let rest = value
        .get(..14)
        .filter(|prefix| prefix.eq_ignore_ascii_case("UsernameToken "))
        .map(|_| &value[14..])
        .ok_or(WsseError::Malformed("does not start with UsernameToken"))?;
    let (mut username, mut digest, mut nonce, mut created) = (None, None, None, None);
    for part in rest.split(',') {
        let (key, raw) = part
            .split_once('=')
            .ok_or(WsseError::Malformed("a part has no '='"))?;
        let raw = raw.trim();
        let unquoted = raw
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or(WsseError::Malformed("a value is not double-quoted"))?;
        let slot = match key.trim() {
            "Username" => &mut username,
            "PasswordDigest" => &mut digest,
            "Nonce" => &mut nonce,
            "Created" => &mut created,
            _ => continue,
        };
        *slot = Some(unquoted.to_owned());
    }
    let token = UsernameToken {
        username: username.ok_or(WsseError::Malformed("no Username"))?,
        password_digest: digest.ok_or(WsseError::Malformed("no PasswordDigest"))?,
        nonce: nonce.ok_or(WsseError::Malformed("no Nonce"))?,
        created: created.ok_or(WsseError::Malformed("no Created"))?,
    };
    if token.nonce.is_empty() || token.nonce.len() > 128 {
        return Err(WsseError::Malformed("nonce length"));
    }
    Ok(token)
}

/// The digest Emarsys expects for these inputs.
pub fn password_digest(nonce: &str, created: &str, secret: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(nonce.as_bytes());
    sha.update(created.as_bytes());
    sha.update(secret.as_bytes());
    let hex = hex::encode(sha.finalize());
    base64::engine::general_purpose::STANDARD.encode(hex)
}

/// Parses `Created`: RFC 3339 with `Z`, `+00:00` or `+0000`; without a zone, the account's zone
/// (as Emarsys assumes its own).
pub fn parse_created(created: &str, account_zone: &TimeZone) -> Result<Timestamp, WsseError> {
    let bad = WsseError::Malformed("Created is not an ISO 8601 time");
    if let Ok(ts) = created.parse::<Timestamp>() {
        return Ok(ts);
    }
    // `+HHMM` / `-HHMM`: insert the colon jiff's parser wants.
    let bytes = created.as_bytes();
    if bytes.len() > 5 {
        let (head, zone) = created.split_at(created.len() - 5);
        if (zone.starts_with('+') || zone.starts_with('-'))
            && zone[1..].bytes().all(|b| b.is_ascii_digit())
        {
            let fixed = format!("{head}{}:{}", &zone[..3], &zone[3..]);
            return fixed.parse::<Timestamp>().map_err(|_| bad);
        }
    }
    let civil: jiff::civil::DateTime = created.parse().map_err(|_| bad.clone())?;
    civil
        .to_zoned_datetime(account_zone.clone())
        .map(|z| z.timestamp())
        .map_err(|_| bad)
}

/// Nonces seen within the time window, so each is accepted once.
#[derive(Debug, Default)]
pub struct NonceCache {
    seen: HashMap<String, Timestamp>,
}

impl NonceCache {
    /// Records `nonce` as used at `now`; `false` if it was already used within the window.
    pub fn insert(&mut self, nonce: &str, now: Timestamp) -> bool {
        // Beyond twice the window no `Created` that passed the time check can come back.
        let horizon = now.saturating_sub(TIME_WINDOW * 2).unwrap_or(now);
        self.seen.retain(|_, at| *at >= horizon);
        if self.seen.contains_key(nonce) {
            return false;
        }
        self.seen.insert(nonce.to_owned(), now);
        true
    }
}

/// Checks a header value for `user`/`secret` at `now`, consuming its nonce on success.
pub fn verify(
    header: Option<&str>,
    user: &str,
    secret: &str,
    now: Timestamp,
    account_zone: &TimeZone,
    nonces: &mut NonceCache,
) -> Result<UsernameToken, WsseError> {
    let token = parse_header(header.ok_or(WsseError::Missing)?)?;
    if token.username != user {
        return Err(WsseError::UnknownUser);
    }
    let expected = password_digest(&token.nonce, &token.created, secret);
    if !constant_time_eq(expected.as_bytes(), token.password_digest.as_bytes()) {
        return Err(WsseError::BadDigest);
    }
    let created = parse_created(&token.created, account_zone)?;
    if created.duration_since(now).abs() > TIME_WINDOW {
        return Err(WsseError::TimeFrame);
    }
    if !nonces.insert(&token.nonce, now) {
        return Err(WsseError::NonceReused);
    }
    Ok(token)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    const CREATED: &str = "2024-05-06T07:08:09Z";
    const DIGEST: &str = "YzEzNmQxNWM5NWY1NmY3OTk3NTMwYmNiNjkzMzA0YmU4MGU4MmY1ZQ==";

    fn header(user: &str, digest: &str, nonce: &str, created: &str) -> String {
        format!(
            r#"UsernameToken Username="{user}", PasswordDigest="{digest}", Nonce="{nonce}", Created="{created}""#
        )
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn digest_matches_the_reference_worked_example() {
        assert_eq!(password_digest(NONCE, CREATED, "example-secret"), DIGEST);
    }

    #[test]
    fn created_accepts_the_three_utc_spellings_and_zoneless_local_time() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let want = at(CREATED);
        for s in [
            CREATED,
            "2024-05-06T07:08:09+00:00",
            "2024-05-06T07:08:09+0000",
        ] {
            assert_eq!(parse_created(s, &berlin), Ok(want), "{s}");
        }
        // Summer time in Berlin is UTC+2.
        assert_eq!(parse_created("2024-05-06T09:08:09", &berlin), Ok(want));
        assert!(parse_created("yesterday", &berlin).is_err());
    }

    #[test]
    fn verify_accepts_once_and_rejects_a_replayed_nonce() {
        let mut nonces = NonceCache::default();
        let h = header("u", DIGEST, NONCE, CREATED);
        let tz = TimeZone::UTC;
        let now = at("2024-05-06T07:10:00Z");
        assert!(verify(Some(&h), "u", "example-secret", now, &tz, &mut nonces).is_ok());
        assert_eq!(
            verify(Some(&h), "u", "example-secret", now, &tz, &mut nonces),
            Err(WsseError::NonceReused)
        );
    }

    #[test]
    fn verify_rejects_user_digest_and_time_frame() {
        let tz = TimeZone::UTC;
        let now = at(CREATED);
        let mut nonces = NonceCache::default();
        let check = |h: &str, now, nonces: &mut NonceCache| {
            verify(Some(h), "u", "example-secret", now, &tz, nonces)
        };
        let raw_bytes_digest = "wTbRXJX1b3mXUwvLaTMEvoDoL14=";
        assert_eq!(
            check(&header("v", DIGEST, NONCE, CREATED), now, &mut nonces),
            Err(WsseError::UnknownUser)
        );
        assert_eq!(
            check(
                &header("u", raw_bytes_digest, NONCE, CREATED),
                now,
                &mut nonces
            ),
            Err(WsseError::BadDigest)
        );
        assert_eq!(
            check(
                &header("u", DIGEST, NONCE, CREATED),
                at("2024-05-06T07:13:10Z"),
                &mut nonces
            ),
            Err(WsseError::TimeFrame)
        );
        assert_eq!(
            check("Basic abc", now, &mut nonces),
            Err(WsseError::Malformed("does not start with UsernameToken"))
        );
        assert_eq!(
            verify(None, "u", "s", now, &tz, &mut nonces),
            Err(WsseError::Missing)
        );
    }
}
