//! Request handling: faults, authentication, rate limit, routing, envelope and headers.

use super::EmarsysSimConfig;
use super::ratelimit::{RateLimiter, RateStatus};
use super::state::{ApiError, State};
use super::wsse::{self, NonceCache};
use espbridge_core::Clock;
use espbridge_sim::Traffic;
use espbridge_sim::bytes::Bytes;
use espbridge_sim::faults::{FaultBook, FaultKind};
use espbridge_sim::http::{Handler, Reply, SimRequest};
use espbridge_sim::http_body_util::Full;
use espbridge_sim::hyper::{Method, Response, StatusCode};
use espbridge_sim::record::{RecordedRequest, Recorder, body_for_log};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

const API_PREFIX: &str = "/api/v2";

/// Everything the handler shares with [`super::EmarsysSim`].
pub(crate) struct Shared {
    pub config: EmarsysSimConfig,
    pub zone: jiff::tz::TimeZone,
    pub clock: Arc<dyn Clock>,
    pub state: Mutex<State>,
    pub nonces: Mutex<NonceCache>,
    pub limiter: Mutex<RateLimiter>,
    pub faults: FaultBook,
    pub recorder: Recorder,
    pub traffic: Arc<Traffic>,
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

/// A poisoned lock still guards consistent data here: every mutation completes before unlock.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn handler(shared: Arc<Shared>) -> Handler {
    Arc::new(move |req| {
        let shared = shared.clone();
        Box::pin(async move { handle(&shared, req).await })
    })
}

/// An answer before it is put on the wire.
struct Answer {
    http: u16,
    code: i64,
    text: String,
    data: Value,
}

impl Answer {
    fn ok(data: Value) -> Self {
        Self {
            http: 200,
            code: 0,
            text: "OK".into(),
            data,
        }
    }
}

impl From<ApiError> for Answer {
    fn from(e: ApiError) -> Self {
        Self {
            http: e.http,
            code: e.code,
            text: e.text,
            data: Value::String(String::new()),
        }
    }
}

async fn handle(shared: &Shared, req: SimRequest) -> Reply {
    let now = shared.clock.now();
    let mut record = RecordedRequest {
        method: req.method.to_string(),
        path: req.path.clone(),
        query: req.query.clone(),
        body: req.body.as_deref().and_then(body_for_log),
        status: 0,
        reply_code: None,
        at: now,
    };
    let claimed_user = req
        .headers
        .get("x-wsse")
        .or_else(|| req.headers.get("wsse"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| wsse::parse_header(v).ok())
        .map(|t| t.username)
        .unwrap_or_default();
    let instant = tokio::time::Instant::now();

    let mut hold = None;
    let fault_answer = match shared.faults.take(&req.path) {
        Some(FaultKind::DropConnection) => {
            tracing::debug!("emarsys sim drops a connection (injected)");
            shared.recorder.push(record);
            return Reply::Drop;
        }
        Some(FaultKind::Timeout(d)) => {
            hold = Some(d);
            None
        }
        Some(FaultKind::RateLimit) => {
            let mut status = lock(&shared.limiter).peek(&claimed_user, instant);
            status.remaining = 0;
            // An injected 429 stands for throttling under load ("blocking depends on server
            // load"), not an exhausted window: it clears within two seconds, so tests need not wait a
            // real minute for the window the limiter would announce.
            status.reset_in = std::time::Duration::from_secs(2);
            Some((rate_limited(), status))
        }
        Some(FaultKind::Status(code)) => {
            let reason = StatusCode::from_u16(code)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error");
            let status = lock(&shared.limiter).peek(&claimed_user, instant);
            Some((
                Answer {
                    http: code,
                    code: 1,
                    text: reason.to_owned(),
                    data: Value::String(String::new()),
                },
                status,
            ))
        }
        None => None,
    };

    let (answer, rate) = match fault_answer {
        Some(answer) => answer,
        None => authenticated(shared, &req, now, instant, &claimed_user),
    };
    record.status = answer.http;
    record.reply_code = Some(answer.code);
    shared.recorder.push(record);
    let response = respond(&answer, rate, now);
    if let Some(hold) = hold {
        tokio::time::sleep(hold).await;
    }
    Reply::Respond(response)
}

fn rate_limited() -> Answer {
    Answer {
        http: 429,
        code: 7003,
        text: "Too many requests for this account and resource within the last minute.".into(),
        data: Value::String(String::new()),
    }
}

/// Auth, rate limit and the endpoint itself.
fn authenticated(
    shared: &Shared,
    req: &SimRequest,
    now: Timestamp,
    instant: tokio::time::Instant,
    claimed_user: &str,
) -> (Answer, RateStatus) {
    let header = req
        .headers
        .get("x-wsse")
        .or_else(|| req.headers.get("wsse"))
        .and_then(|v| v.to_str().ok());
    let verified = wsse::verify(
        header,
        &shared.config.user,
        &shared.config.secret,
        now,
        &shared.zone,
        &mut lock(&shared.nonces),
    );
    if let Err(error) = verified {
        tracing::debug!(%error, "emarsys sim refused a request");
        let status = lock(&shared.limiter).peek(claimed_user, instant);
        let answer = Answer::from(ApiError::new(401, 1, error.reply_text()));
        return (answer, status);
    }
    let status = lock(&shared.limiter).hit(&shared.config.user, instant);
    if status.exceeded {
        shared.traffic.refused();
        return (rate_limited(), status);
    }
    let answer = match route(shared, req, now) {
        Ok(data) => Answer::ok(data),
        Err(error) => Answer::from(error),
    };
    (answer, status)
}

fn not_implemented() -> ApiError {
    ApiError::new(501, 1, "This feature has not been implemented yet.")
}

fn route(shared: &Shared, req: &SimRequest, now: Timestamp) -> Result<Value, ApiError> {
    let rest = req
        .path
        .strip_prefix(API_PREFIX)
        .ok_or_else(not_implemented)?;
    let mut segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    // Legacy spelling: filters in the last path segment, without `?`.
    let mut query = HashMap::new();
    if segments.last().is_some_and(|s| s.contains('='))
        && let Some(legacy) = segments.pop()
    {
        query.extend(url::form_urlencoded::parse(legacy.as_bytes()).into_owned());
    }
    if let Some(q) = &req.query {
        query.extend(url::form_urlencoded::parse(q.as_bytes()).into_owned());
    }
    let body = match &req.body {
        None => return Err(ApiError::new(400, 10001, "Request body too large")),
        Some(raw) if raw.iter().all(u8::is_ascii_whitespace) => Value::Object(Default::default()),
        Some(raw) => {
            serde_json::from_slice(raw).map_err(|_| ApiError::new(400, 1010, "Invalid JSON"))?
        }
    };
    let email_id = |raw: &str, code: i64, text: &str| {
        raw.parse::<u64>()
            .map_err(|_| ApiError::new(400, code, text))
    };
    let list_id = |raw: &str| {
        raw.parse::<u64>()
            .map_err(|_| ApiError::new(400, 3004, "Invalid contact list ID"))
    };
    let method = &req.method;
    let mut state = shared.state();
    state.tick(now);
    match (method, segments.as_slice()) {
        (&Method::GET, ["field"] | ["field", "translate", _]) => Ok(state.fields()),
        (&Method::GET, ["email"]) => state.list_emails(&query, now),
        (&Method::GET, ["email", "templates"]) => Ok(state.templates()),
        (&Method::POST, ["email", "getlaunchesofemail"]) => state.launches_of(&body, now),
        (&Method::GET, ["email", id]) => {
            state.get_email(email_id(id, 6004, "Invalid email ID")?, now)
        }
        (&Method::POST, ["email", id, "preview"]) => {
            state.preview(email_id(id, 6004, "Invalid email ID")?, &body)
        }
        (&Method::POST, ["email", id, "copy"]) => {
            state.copy(email_id(id, 6026, "No such campaign")?, &body, now)
        }
        (&Method::POST, ["email", id, "patch"]) => {
            state.patch(email_id(id, 6025, "No such campaign")?, &body, now)
        }
        (&Method::POST, ["email", id, "updatesource"]) => {
            state.update_source(email_id(id, 6004, "Invalid email ID")?, &body)
        }
        (&Method::POST, ["email", id, "launch"]) => {
            state.launch(email_id(id, 6004, "Invalid email ID")?, &body, now)
        }
        (&Method::POST, ["email", id, "stop"]) => {
            state.stop(email_id(id, 6004, "Invalid email ID")?, now)
        }
        (&Method::GET, ["email", id, "responsesummary"]) => {
            state.response_summary(email_id(id, 6400, "Invalid email ID")?, &query, now)
        }
        (&Method::GET, ["contactlist"]) => Ok(state.list_contact_lists()),
        (&Method::POST, ["contactlist"]) => state.create_contact_list(&body, now),
        (&Method::POST, ["contactlist", id, "add"]) => {
            state.add_to_contact_list(list_id(id)?, &body)
        }
        (&Method::GET, ["contactlist", id, "count"]) => state.contact_list_count(list_id(id)?),
        _ => Err(not_implemented()),
    }
}

fn respond(answer: &Answer, rate: RateStatus, now: Timestamp) -> Response<Full<Bytes>> {
    let body = json!({"replyCode": answer.code, "replyText": answer.text, "data": answer.data});
    let reset = now
        .as_second()
        .saturating_add(i64::try_from(rate.reset_in.as_secs()).unwrap_or(i64::MAX))
        .saturating_add(i64::from(rate.reset_in.subsec_nanos() > 0));
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() =
        StatusCode::from_u16(answer.http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    let pairs: [(&str, String); 4] = [
        ("content-type", "text/html; charset=utf-8".into()),
        ("X-RateLimit-Limit", rate.limit.to_string()),
        ("X-Ratelimit-Remaining", rate.remaining.to_string()),
        ("X-RateLimit-Reset", reset.to_string()),
    ];
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (
            espbridge_sim::hyper::header::HeaderName::from_bytes(name.as_bytes()),
            espbridge_sim::hyper::header::HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
    response
}
