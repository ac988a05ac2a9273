//! The HTTP layer against a real loopback server: redirects are not followed (so credential
//! headers never reach another host), bodies past the cap are refused, and `Retry-After` is read.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_core::EspKind;
use espbridge_esp_kit::http::SendError;
use espbridge_esp_kit::{
    Attempts, BaseUrl, BodyLimit, EspHttp, HttpSettings, RequestTimeout, Retryable, Step,
};
use espbridge_sim::bytes::Bytes;
use espbridge_sim::http::{Handler, Reply, SimRequest, spawn};
use espbridge_sim::http_body_util::Full;
use espbridge_sim::hyper::Response;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn reply(status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    Reply::Respond(b.body(Full::new(Bytes::from(body))).expect("response"))
}

/// (path, X-WSSE header) of every request the server saw.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

struct Server {
    _handle: espbridge_sim::http::ServerHandle,
    base: String,
    seen: Seen,
    hits: Arc<AtomicU32>,
}

async fn server() -> Server {
    let seen: Seen = Arc::default();
    let hits = Arc::new(AtomicU32::new(0));
    let (s, h) = (Arc::clone(&seen), Arc::clone(&hits));
    let handler: Handler = Arc::new(move |req: SimRequest| {
        let auth = req
            .headers
            .get("x-wsse")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        s.lock().expect("lock").push((req.path.clone(), auth));
        let n = h.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            match req.path.as_str() {
                "/api/moved" => reply(302, &[("location", "/api/elsewhere")], Vec::new()),
                "/api/big" => reply(200, &[], vec![b'x'; 64 * 1024]),
                "/api/busy" if n < 2 => reply(429, &[("retry-after", "1")], Vec::new()),
                _ => reply(200, &[], b"ok".to_vec()),
            }
        })
    });
    let handle = spawn(handler).await.expect("server");
    Server {
        base: format!("http://{}/api/", handle.addr()),
        _handle: handle,
        seen,
        hits,
    }
}

fn client(base: &str, max_response: usize, attempts: u32) -> EspHttp {
    EspHttp::new(
        EspKind::Emarsys,
        &HttpSettings {
            base_url: BaseUrl::parse(base).expect("url"),
            timeout: RequestTimeout::secs(5),
            attempts: Attempts::new(attempts),
            max_response: BodyLimit::bytes(max_response),
            throttle_patience: std::time::Duration::from_secs(5),
        },
    )
    .expect("client")
}

#[tokio::test]
async fn redirects_are_answers_not_followed() {
    let s = server().await;
    let http = client(&s.base, 1 << 20, 1);
    let req = http
        .request(reqwest::Method::GET, http.url("moved").expect("url"))
        .header("X-WSSE", "UsernameToken secret-ish");
    let ex = http.send(req).await.expect("an answer");
    assert_eq!(ex.status, 302);
    let seen = s.seen.lock().expect("lock").clone();
    assert_eq!(
        seen.len(),
        1,
        "the redirect target was never asked: {seen:?}"
    );
    assert_eq!(seen[0].0, "/api/moved");
}

#[tokio::test]
async fn bodies_past_the_cap_are_refused() {
    let s = server().await;
    let http = client(&s.base, 16 * 1024, 1);
    let e = http
        .send(http.request(reqwest::Method::GET, http.url("big").expect("url")))
        .await
        .expect_err("too large");
    assert_eq!(e, SendError::TooLarge { limit: 16 * 1024 });
    let roomy = client(&s.base, 1 << 20, 1);
    let ok = roomy
        .send(roomy.request(reqwest::Method::GET, roomy.url("big").expect("url")))
        .await
        .expect("fits");
    assert_eq!(ok.body.len(), 64 * 1024);
}

#[tokio::test]
async fn retry_after_is_honoured_between_attempts() {
    let s = server().await;
    let http = client(&s.base, 1 << 20, 5);
    let started = Instant::now();
    let body = http
        .retry("busy", espbridge_esp_kit::Idempotency::Safe, |_| async {
            let req = http.request(reqwest::Method::GET, http.url("busy").expect("url"));
            match http.send(req).await {
                Err(e) => Step::from(e),
                Ok(ex) if ex.status == 429 => Step::Retry(Retryable::throttled(
                    format!("HTTP {}", ex.status),
                    ex.retry_after(),
                )),
                Ok(ex) => Step::Done(ex.body),
            }
        })
        .await
        .expect("done on the third attempt");
    assert_eq!(&body[..], b"ok");
    assert_eq!(s.hits.load(Ordering::SeqCst), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "two waits of Retry-After: 1 s each, took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_refused_connection_says_so_without_the_url() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let base = format!("http://127.0.0.1:{port}/api/;jsessionid=SECRET/");
    let http = client(&base, 1 << 20, 1);
    let e = http
        .send(http.request(reqwest::Method::GET, http.url("x").expect("url")))
        .await
        .expect_err("nothing listens");
    assert_eq!(
        e,
        SendError::Transport {
            what: "connect",
            reached: false
        }
    );
    assert!(!e.to_string().contains("SECRET"));
}
