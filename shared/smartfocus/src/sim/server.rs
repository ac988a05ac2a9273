//! Request handling: faults, routing by service and parameter style, sessions, envelopes.

use super::state::{Answer, Failure, Service, State, quota_reached};
use super::upload::{self, UploadRequestError};
use super::xml;
use espbridge_core::Clock;
use espbridge_sim::Traffic;
use espbridge_sim::bytes::Bytes;
use espbridge_sim::faults::{FaultBook, FaultKind};
use espbridge_sim::http::{Handler, Reply, SimRequest};
use espbridge_sim::http_body_util::Full;
use espbridge_sim::hyper::{Method, Response, StatusCode};
use espbridge_sim::record::{RecordedRequest, Recorder, body_for_log};
use jiff::Timestamp;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Everything the handler shares with [`super::SmartFocusSim`].
pub(crate) struct Shared {
    pub clock: Arc<dyn Clock>,
    pub state: Mutex<State>,
    pub faults: FaultBook,
    pub recorder: Recorder,
    pub traffic: Arc<Traffic>,
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, State> {
        // Every mutation completes before unlock, so a poisoned lock still guards valid data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) fn handler(shared: Arc<Shared>) -> Handler {
    Arc::new(move |req| {
        let shared = shared.clone();
        Box::pin(async move { handle(&shared, req).await })
    })
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
    let mut hold = None;
    let answer = match shared.faults.take(&req.path) {
        Some(FaultKind::DropConnection) => {
            tracing::debug!("smartfocus sim drops a connection (injected)");
            shared.recorder.push(record);
            return Reply::Drop;
        }
        Some(FaultKind::Timeout(d)) => {
            hold = Some(d);
            route(shared, &req, now)
        }
        Some(FaultKind::RateLimit) => Err(quota_reached()),
        Some(FaultKind::Status(code)) => {
            let reason = StatusCode::from_u16(code)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error");
            Err(Failure {
                http: code,
                ..Failure::new(reason, "", &format!("HTTP_{code}"))
            })
        }
        None => route(shared, &req, now),
    };
    let (status, body) = match answer {
        Ok(body) => (200, body),
        Err(f) if is_soap_path(&req.path) => (
            f.http,
            xml::soap_fault(&f.description, &f.fields, &f.status),
        ),
        Err(f) => (f.http, xml::failed(&f.description, &f.fields, &f.status)),
    };
    record.status = status;
    shared.recorder.push(record);
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // REST answers `application/xml`; a SOAP 1.1 binding answers `text/xml`.
    let content_type = if is_soap_path(&req.path) {
        "text/xml;charset=UTF-8"
    } else {
        "application/xml;charset=utf-8"
    };
    response.headers_mut().insert(
        espbridge_sim::hyper::header::CONTENT_TYPE,
        espbridge_sim::hyper::header::HeaderValue::from_static(content_type),
    );
    if let Some(hold) = hold {
        tokio::time::sleep(hold).await;
    }
    Reply::Respond(response)
}

/// Whether `path` is a SOAP binding (`/{svc}/services/{Name}Service`) rather than REST.
fn is_soap_path(path: &str) -> bool {
    let mut parts = path.split('/').filter(|s| !s.is_empty());
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(_), Some("services"), Some(endpoint), None) if endpoint.ends_with("Service")
    )
}

/// A call to the `apiccmd` SOAP binding: a SOAP 1.1 envelope whose body is one operation
/// element in the service's namespace, its parameters unqualified children. Only
/// `getMessageSummaryList` and `unpostCampaign` are simulated (the REST calls cover the rest).
fn soap(state: &mut State, req: &SimRequest, now: Timestamp) -> Answer {
    if req.method != Method::POST {
        return Err(not_found());
    }
    let unreadable = |detail: String| Failure::new(detail, "", "INVALID_PARAMETERS");
    let doc =
        xml::parse(body_text(req)?).map_err(|e| unreadable(format!("Unmarshalling Error: {e}")))?;
    let op = doc
        .child("Body")
        .filter(|_| doc.name == "Envelope")
        .and_then(|b| b.children.first())
        .ok_or_else(|| unreadable("no SOAP Envelope/Body with an operation".to_owned()))?;
    if op.namespace.as_deref() != Some(xml::CCMD_NS) {
        return Err(unreadable(format!(
            "Unexpected wrapper element {{{}}}{}",
            op.namespace.as_deref().unwrap_or_default(),
            op.name
        )));
    }
    match op.name.as_str() {
        "getMessageSummaryList" => {
            let token = op
                .child_text("token")
                .ok_or_else(|| Failure::params("You must fill in the token parameter", "token"))?;
            if !state.soap_accepts_rest_tokens() {
                return Err(Failure::session_expired());
            }
            state.session(Service::Ccmd, token, now)?;
            state.message_summaries(op.child("listOptionsEntity"))
        }
        "unpostCampaign" => {
            let token = op
                .child_text("token")
                .ok_or_else(|| Failure::params("You must fill in the token parameter", "token"))?;
            if !state.soap_accepts_rest_tokens() {
                return Err(Failure::session_expired());
            }
            state.session(Service::Ccmd, token, now)?;
            let id = op
                .child_text("id")
                .ok_or_else(|| Failure::params("You must fill in the id parameter", "id"))?;
            state.unpost_campaign(id, now)
        }
        other => Err(Failure::new(
            format!("Operation {other} is not simulated"),
            other,
            "NOT_FOUND",
        )),
    }
}

/// Decodes `%XX` escapes of a path segment. A raw `+` becomes a space, as the reference warns
/// the real servers do, so a client that forgets to encode `+` in an offset is caught.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parameters of one call: path segments after the operation (PI) or named query values (QS).
struct Args<'a> {
    positional: &'a [String],
    query: &'a HashMap<String, String>,
}

impl Args<'_> {
    fn get(&self, index: usize, name: &str) -> Option<&str> {
        self.positional
            .get(index)
            .or_else(|| self.query.get(name))
            .map(String::as_str)
    }

    fn need(&self, index: usize, name: &str) -> Result<&str, Failure> {
        self.get(index, name)
            .ok_or_else(|| Failure::params(format!("{name} is required"), name))
    }
}

fn not_found() -> Failure {
    Failure {
        http: 404,
        ..Failure::new("No such resource", "", "NOT_FOUND")
    }
}

fn body_text(req: &SimRequest) -> Result<&str, Failure> {
    let raw = req
        .body
        .as_deref()
        .ok_or_else(|| Failure::params("request body too large", "body"))?;
    std::str::from_utf8(raw).map_err(|_| Failure::params("body is not UTF-8", "body"))
}

fn route(shared: &Shared, req: &SimRequest, now: Timestamp) -> Answer {
    let segments: Vec<String> = req
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let query: HashMap<String, String> = req
        .query
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    if is_soap_path(&req.path) {
        return match segments.as_slice() {
            [svc, _, endpoint] if svc == "apiccmd" && endpoint == "CcmdService" => {
                let mut state = shared.state();
                state.tick(now);
                soap(&mut state, req, now)
            }
            _ => Err(not_found()),
        };
    }
    let (service, rest) = match segments.as_slice() {
        [svc, services, rest_kw, rest @ ..] if services == "services" && rest_kw == "rest" => {
            match svc.as_str() {
                "apiccmd" => (Service::Ccmd, rest),
                "apibatchmember" => (Service::BatchMember, rest),
                _ => return Err(not_found()),
            }
        }
        _ => return Err(not_found()),
    };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let mut state = shared.state();
    // Whatever came due since the last request (imports completing, sends freezing their
    // audience) happens first, in time order.
    state.tick(now);
    if let ["connect", op, params @ ..] = rest.as_slice() {
        let positional: Vec<String> = params.iter().map(|s| (*s).to_owned()).collect();
        let args = Args {
            positional: &positional,
            query: &query,
        };
        return match *op {
            "open" => {
                let opened = state.open(
                    service,
                    args.get(0, "login"),
                    args.get(1, "password"),
                    args.get(2, "key"),
                    now,
                );
                if opened
                    .as_ref()
                    .is_err_and(|f| f.description.starts_with("No available connection"))
                {
                    shared.traffic.refused();
                }
                opened
            }
            "close" => state.close(service, args.get(0, "token"), now),
            _ => Err(not_found()),
        };
    }
    match (service, rest.as_slice()) {
        (Service::Ccmd, ["message", op, params @ ..]) => {
            let positional: Vec<String> = params.iter().map(|s| (*s).to_owned()).collect();
            let args = Args {
                positional: &positional,
                query: &query,
            };
            let known = [
                "getLastEmailMessages",
                "getEmailMessagesByField",
                "getEmailMessageByField",
                "getMessagesByPeriod",
                "getMessage",
                "getEmailMessagePreview",
                "cloneMessage",
            ];
            if !known.contains(op) {
                return Err(not_found());
            }
            state.session(service, args.need(0, "token")?, now)?;
            match *op {
                "getLastEmailMessages" => state.last_messages(args.need(1, "limit")?),
                "getEmailMessagesByField" | "getEmailMessageByField" => state.messages_by_field(
                    args.need(1, "field")?,
                    args.need(2, "value")?,
                    args.need(3, "limit")?,
                ),
                "getMessagesByPeriod" => {
                    state.messages_by_period(args.need(1, "dateBegin")?, args.need(2, "dateEnd")?)
                }
                "getMessage" => state.get_message(args.need(1, "id")?),
                "getEmailMessagePreview" => {
                    state.preview(args.need(1, "id")?, args.need(2, "part")?)
                }
                _ => state.clone_message(args.need(1, "id")?, args.need(2, "newName")?, now),
            }
        }
        (Service::Ccmd, ["campaign", op, params @ ..]) => {
            let positional: Vec<String> = params.iter().map(|s| (*s).to_owned()).collect();
            let args = Args {
                positional: &positional,
                query: &query,
            };
            let known = [
                "create",
                "post",
                "getCampaign",
                "getCampaignStatus",
                "last",
                "getCampaignsByField",
                "getCampaignSnapshotReport",
                "getCampaignSnapshot",
            ];
            if !known.contains(op) {
                return Err(not_found());
            }
            state.session(service, args.need(0, "token")?, now)?;
            match *op {
                "create" => {
                    let segment = args
                        .get(5, "mailinglistId")
                        .or_else(|| query.get("mailingListId").map(String::as_str));
                    state.create_campaign(
                        [
                            args.get(1, "name"),
                            args.get(2, "desc"),
                            args.get(3, "sendDate"),
                            args.get(4, "messageId"),
                            segment,
                            args.get(6, "notifProgress"),
                            args.get(7, "postClickTracking"),
                            args.get(8, "emaildedupflg"),
                        ],
                        now,
                    )
                }
                "post" => state.post_campaign(args.need(1, "id")?, now),
                "getCampaign" => state.get_campaign(args.need(1, "id")?, now),
                "getCampaignStatus" => state.campaign_status(args.need(1, "id")?, now),
                "last" => state.last_campaigns(args.need(1, "limit")?),
                "getCampaignsByField" => state.campaigns_by_field(
                    args.need(1, "field")?,
                    args.need(2, "value")?,
                    args.need(3, "limit")?,
                ),
                _ => state.snapshot(args.need(1, "id")?, now),
            }
        }
        (Service::Ccmd, ["segmentationservice", token, "segment", tail @ ..]) => {
            let method = &req.method;
            let known = matches!(
                (method, tail),
                (&Method::PUT, [])
                    | (&Method::GET | &Method::POST | &Method::DELETE, [_])
                    | (&Method::GET, ["list", _, "items", _])
                    | (&Method::PUT, [_, "criteria", "addStringDemographic"])
                    | (&Method::GET, [_, "count"])
            );
            if !known {
                return Err(not_found());
            }
            state.session(service, token, now)?;
            match (method, tail) {
                (&Method::PUT, []) => state.create_segment(body_text(req)?, now),
                (&Method::GET, ["list", page, "items", per_page]) => {
                    state.list_segments(page, per_page)
                }
                (&Method::GET, [id]) => state.get_segment(id),
                (&Method::POST, [id]) => state.update_segment(id, body_text(req)?, now),
                (&Method::DELETE, [id]) => state.delete_segment(id),
                (_, [id, "criteria", _]) => state.add_string_criterion(id, body_text(req)?, now),
                (_, [id, "count"]) => state.count_segment(id, now),
                _ => Err(not_found()),
            }
        }
        (Service::BatchMember, ["batchmemberservice", token, "batchmember", tail @ ..]) => {
            let known = matches!(
                (&req.method, tail),
                (
                    &Method::PUT | &Method::POST,
                    ["mergeUpload" | "insertUpload"]
                ) | (&Method::GET, [_, "getUploadStatus"])
                    | (&Method::GET, ["getLastUpload" | "getLastUploads"])
            );
            if !known {
                return Err(not_found());
            }
            state.session(service, token, now)?;
            match tail {
                ["getLastUpload" | "getLastUploads"] => state.last_uploads(now),
                [id, "getUploadStatus"] => state.upload_status_answer(id, now),
                _ => {
                    let content_type = req
                        .headers
                        .get(espbridge_sim::hyper::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok());
                    let parsed = match req.body.as_deref() {
                        None => Err(Failure::new(
                            "The file is too large",
                            "inputStream",
                            "INVALID_FILE",
                        )),
                        Some(body) => upload::parse_request(content_type, body).map_err(
                            |e: UploadRequestError| Failure::new(e.to_string(), "", e.status()),
                        ),
                    };
                    let answer = state.upload(parsed, now);
                    if matches!(&answer, Err(f) if f.status == "MAX_NB_UPLOADS") {
                        shared.traffic.refused();
                    }
                    answer
                }
            }
        }
        _ => Err(not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_keeps_plus_and_bad_escapes() {
        assert_eq!(percent_decode("a%20b%2Fc"), "a b/c");
        assert_eq!(percent_decode("09%3A30+02"), "09:30 02");
        assert_eq!(percent_decode("09%3A30%2B02"), "09:30+02");
        assert_eq!(percent_decode("50%"), "50%");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }

    #[test]
    fn soap_paths_are_told_from_rest_paths() {
        assert!(is_soap_path("/apiccmd/services/CcmdService"));
        assert!(is_soap_path("apibatchmember/services/BatchMemberService/"));
        assert!(!is_soap_path(
            "/apiccmd/services/rest/message/getMessage/t/1"
        ));
        assert!(!is_soap_path("/apiccmd/services/rest"));
    }
}
