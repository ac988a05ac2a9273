//! The protections of the loopback server (`espbridge serve`), as one layer over the router.
//! API Gateway has its own (IAM authorization, its own host names), so the Lambda does not add
//! this layer; the router's own headers (the previews' sandbox) are for both.
//!
//! In order, every request:
//! 1. must be for a loopback name or address: `Host` (and the target's authority, when the
//!    request line has one) is `localhost`, `127.0.0.1` or `[::1]` with any port, or exactly the
//!    address the server is bound to. Anything else is refused with 403 (`host_not_allowed`)
//!    without echoing the host: a web page that rebinds its own DNS name to 127.0.0.1 reaches
//!    the socket, but not the API;
//! 2. with a token configured, must carry `Authorization: Bearer <token>` (compared in
//!    constant time): 401 (`unauthorized`) otherwise;
//! 3. without a token configured, may only read: `PUT` and `POST` (any method but `GET`,
//!    `HEAD` and `OPTIONS`: sender headers, cancel, retry) are refused with 403
//!    (`token_required`), since they change what an ESP sends.
//!
//! The token is never logged, echoed or shown by `Debug`.

use super::Failure;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Shortest token accepted (e.g. `openssl rand -hex 16` gives 32 characters).
pub const MIN_TOKEN_LEN: usize = 16;
/// Longest token accepted.
pub const MAX_TOKEN_LEN: usize = 1024;

/// The API token of the local server. Not checked until [`LocalGuard::new`], so a bad one is
/// reported there, by where it came from, never by its value.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Token {
    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The `Authorization` header value bearing the token (`espbridge cancel` and `retry` call
    /// the running server with it). Not for logs.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Whether the token is usable: [`MIN_TOKEN_LEN`] to [`MAX_TOKEN_LEN`] visible ASCII
    /// characters (it travels in a header).
    pub fn check(&self) -> Result<(), TokenError> {
        let len = self.0.len();
        if self.0.bytes().any(|b| !b.is_ascii_graphic()) {
            Err(TokenError::Characters)
        } else if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&len) {
            Err(TokenError::Length(len))
        } else {
            Ok(())
        }
    }
}

impl From<String> for Token {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Token {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Why a token is refused (never with its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Its length, outside [`MIN_TOKEN_LEN`]..=[`MAX_TOKEN_LEN`].
    Length(usize),
    /// A character that is not visible ASCII.
    Characters,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Length(n) => write!(
                f,
                "the token has {n} characters; it needs {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} (e.g. `openssl rand -hex 16`)"
            ),
            TokenError::Characters => {
                f.write_str("the token may hold only visible ASCII characters (no spaces)")
            }
        }
    }
}

impl std::error::Error for TokenError {}

/// What the local server lets through: loopback hosts (and the address it is bound to) and,
/// when set, only requests bearing the token.
#[derive(Clone, Debug)]
pub struct LocalGuard {
    bound: Option<SocketAddr>,
    token: Option<Token>,
}

impl LocalGuard {
    /// A guard for a server bound to `bound` (that exact address, port included, is accepted as
    /// a host besides the loopback names; an unspecified one, `0.0.0.0`, is not), requiring
    /// `token` when there is one.
    pub fn new(bound: Option<SocketAddr>, token: Option<Token>) -> Result<Self, TokenError> {
        if let Some(t) = &token {
            t.check()?;
        }
        Ok(Self { bound, token })
    }

    /// Whether requests need a token.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// `router` behind this guard.
    pub fn protect(self, router: axum::Router) -> axum::Router {
        router.layer(middleware::from_fn_with_state(Arc::new(self), guard))
    }

    fn host_allowed(&self, host: &str) -> bool {
        let Some((ip_or_name, port)) = split_port(host) else {
            return false;
        };
        if ip_or_name.eq_ignore_ascii_case("localhost") {
            return true;
        }
        let ip = match ip_or_name.strip_prefix('[') {
            Some(v6) => match v6.strip_suffix(']').map(str::parse::<Ipv6Addr>) {
                Some(Ok(ip)) => IpAddr::V6(ip),
                _ => return false,
            },
            // Only the dotted form: `2130706433` or `0x7f.1` are left to the resolver's quirks.
            None => match ip_or_name.parse::<Ipv4Addr>() {
                Ok(ip) => IpAddr::V4(ip),
                Err(_) => return false,
            },
        };
        ip == IpAddr::V4(Ipv4Addr::LOCALHOST)
            || ip == IpAddr::V6(Ipv6Addr::LOCALHOST)
            || self.bound.is_some_and(|b| {
                !b.ip().is_unspecified() && b.ip() == ip && port.unwrap_or(80) == b.port()
            })
    }

    /// The refusal of a request, if any.
    fn refusal(
        &self,
        method: &Method,
        uri_host: Option<&str>,
        headers: &HeaderMap,
    ) -> Option<Failure> {
        let mut hosts = headers.get_all(header::HOST).iter();
        let host = match (hosts.next(), hosts.next()) {
            (Some(h), None) => h.to_str().ok(),
            // Several Host headers: ambiguous, refused.
            (Some(_), Some(_)) => None,
            // HTTP/1.0 without Host, or HTTP/2's :authority only.
            (None, _) => uri_host,
        };
        let hosts_ok = host.is_some_and(|h| self.host_allowed(h))
            && uri_host.is_none_or(|h| self.host_allowed(h));
        if !hosts_ok {
            return Some(Failure::new(
                StatusCode::FORBIDDEN,
                "host_not_allowed",
                "this local API answers only requests for localhost, 127.0.0.1 or [::1]",
            ));
        }
        match &self.token {
            Some(token) => {
                let given = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| bearer(v.as_bytes()));
                if given.is_some_and(|g| same(g, token.bytes())) {
                    None
                } else {
                    Some(Failure::new(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        "this server needs its token: send Authorization: Bearer <token>",
                    ))
                }
            }
            None if [Method::GET, Method::HEAD, Method::OPTIONS].contains(method) => None,
            None => Some(Failure::new(
                StatusCode::FORBIDDEN,
                "token_required",
                format!(
                    "{method} needs a token: start serve with --token (or ESPBRIDGE_TOKEN, or token in the configuration file)"
                ),
            )),
        }
    }
}

async fn guard(State(g): State<Arc<LocalGuard>>, req: Request, next: Next) -> Response {
    // An absolute-form target (`GET http://host/…`) names a host too (with any user info, which
    // no allowed host has).
    let uri_host = req.uri().authority().map(|a| a.as_str());
    match g.refusal(req.method(), uri_host, req.headers()) {
        Some(f) => {
            let unauthorized = f.status == StatusCode::UNAUTHORIZED;
            let mut resp = f.into_response();
            resp.headers_mut().insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            if unauthorized {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"espbridge\""),
                );
            }
            resp
        }
        None => next.run(req).await,
    }
}

/// `host` split into its name and its `:port` (1 to 5 digits, at most 65535), or `None` when
/// malformed.
fn split_port(host: &str) -> Option<(&str, Option<u16>)> {
    let split = if host.starts_with('[') {
        host.find(']')? + 1
    } else {
        host.find(':').unwrap_or(host.len())
    };
    let (name, port) = host.split_at(split);
    if port.is_empty() {
        return Some((name, None));
    }
    let digits = port.strip_prefix(':')?;
    if !(1..=5).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((name, Some(digits.parse().ok()?)))
}

/// The credentials of a `Bearer` authorization (scheme case-insensitive).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let start = rest.iter().position(|b| *b != b' ')?;
    let end = rest.iter().rposition(|b| *b != b' ')? + 1;
    Some(&rest[start..end])
}

/// Equality whose time depends only on the lengths, not on where the bytes differ.
fn same(given: &[u8], expected: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    let diff = given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | std::hint::black_box(a ^ b));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(bound: Option<SocketAddr>) -> LocalGuard {
        LocalGuard::new(bound, None).unwrap()
    }

    #[test]
    fn loopback_hosts_with_any_port_are_allowed_and_nothing_else() {
        let g = guard(Some("127.0.0.1:8080".parse().unwrap()));
        for ok in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:65535",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.example",
            "evil.example:8080",
            "localhost.",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "127.0.0.2",
            "2130706433",
            "0x7f.0.0.1",
            "::1",
            "[::1",
            "[::2]:80",
            "localhost:",
            "localhost:80x",
            "localhost:99999",
            "localhost:+80",
            "localhost:80:80",
            "user@localhost",
            "0.0.0.0",
        ] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
        let other = guard(Some("[::1]:9000".parse().unwrap()));
        assert!(other.host_allowed("[::1]:9000") && !other.host_allowed("10.0.0.1"));
        let lan = guard(Some("192.168.1.5:9000".parse().unwrap()));
        assert!(lan.host_allowed("192.168.1.5:9000") && lan.host_allowed("localhost"));
        assert!(!lan.host_allowed("192.168.1.5:9001") && !lan.host_allowed("192.168.1.5"));
        let any = guard(Some("0.0.0.0:9000".parse().unwrap()));
        assert!(!any.host_allowed("0.0.0.0:9000") && any.host_allowed("127.0.0.1:9000"));
    }

    #[test]
    fn bearer_credentials_are_read_case_insensitively() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer   abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bearer"), None);
        assert!(same(b"abc", b"abc") && !same(b"abd", b"abc") && !same(b"ab", b"abc"));
    }

    #[test]
    fn tokens_are_checked_and_never_shown() {
        let short = LocalGuard::new(None, Some(Token::from("short"))).unwrap_err();
        assert_eq!(short, TokenError::Length(5));
        assert!(!short.to_string().contains("short"));
        let spaced = Token::from("a token with spaces in it");
        assert_eq!(
            LocalGuard::new(None, Some(spaced)).unwrap_err(),
            TokenError::Characters
        );
        let t = Token::from("0123456789abcdef-secret");
        let g = LocalGuard::new(None, Some(t.clone())).unwrap();
        assert!(g.has_token());
        for shown in [format!("{t:?}"), format!("{g:?}")] {
            assert!(!shown.contains("secret"), "{shown}");
        }
    }
}
