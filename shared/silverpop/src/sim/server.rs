//! Request handling: faults, the concurrency cap, both request encodings, sessions, dispatch.
//! The handler runs behind [`espbridge_sim::paced`]: a request counts as in flight from its
//! arrival, through the simulated latency, until it is answered.

use super::state::{OpResult, SpFault, State};
use super::xml::{self, Node};
use espbridge_core::Clock;
use espbridge_sim::Traffic;
use espbridge_sim::bytes::Bytes;
use espbridge_sim::faults::{FaultBook, FaultKind};
use espbridge_sim::http::{Handler, Reply, SimRequest};
use espbridge_sim::http_body_util::Full;
use espbridge_sim::hyper::{Method, Response, StatusCode};
use espbridge_sim::record::{RecordedRequest, Recorder};
use jiff::Timestamp;
use std::sync::{Arc, Mutex, MutexGuard};

/// Everything the handler shares with [`super::SilverpopSim`].
pub(crate) struct Shared {
    pub clock: Arc<dyn Clock>,
    pub state: Mutex<State>,
    pub faults: FaultBook,
    pub recorder: Recorder,
    /// Latency, requests in flight (held responses and requests waiting out the latency
    /// included), limit refusals.
    pub traffic: Arc<Traffic>,
    pub max_concurrent: usize,
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

/// The envelope text of a request: the `xml` form field, or the raw body.
fn envelope_text(req: &SimRequest) -> Option<String> {
    let body = req.body.as_deref()?;
    let form = req
        .headers
        .get(espbridge_sim::hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("x-www-form-urlencoded"));
    if form {
        url::form_urlencoded::parse(body)
            .find(|(k, _)| k == "xml")
            .map(|(_, v)| v.into_owned())
    } else {
        std::str::from_utf8(body).ok().map(str::to_owned)
    }
}

/// The `jsessionid` path parameter of `/XMLAPI;jsessionid=…`.
fn session_of(path: &str) -> Option<&str> {
    path.split(';')
        .skip(1)
        .find_map(|p| p.strip_prefix("jsessionid="))
        .filter(|s| !s.is_empty())
}

fn respond(status: u16, body: String, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        espbridge_sim::hyper::header::CONTENT_TYPE,
        espbridge_sim::hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

async fn handle(shared: &Shared, req: SimRequest) -> Reply {
    let now = shared.clock.now();
    let text = envelope_text(&req);
    let mut record = RecordedRequest {
        method: req.method.to_string(),
        path: req.path.clone(),
        query: req.query.clone(),
        body: text.clone().map(serde_json::Value::String),
        status: 0,
        reply_code: None,
        at: now,
    };
    let endpoint = req.path.split(';').next().unwrap_or_default();
    if endpoint != "/XMLAPI" || req.method != Method::POST {
        record.status = 404;
        shared.recorder.push(record);
        return Reply::Respond(respond(404, "Not Found".into(), "text/plain"));
    }
    let mut hold = None;
    let mut status = 200;
    // The org's cap counts this request too: the 11th in flight is refused, not queued.
    let answer = if shared.traffic.in_flight() > shared.max_concurrent {
        shared.traffic.refused();
        Err(SpFault::too_many_concurrent())
    } else {
        match shared.faults.take(&req.path) {
            Some(FaultKind::DropConnection) => {
                tracing::debug!("silverpop sim drops a connection (injected)");
                shared.recorder.push(record);
                return Reply::Drop;
            }
            Some(FaultKind::Timeout(d)) => {
                hold = Some(d);
                dispatch(shared, text.as_deref(), session_of(&req.path), now)
            }
            Some(FaultKind::RateLimit) => Err(SpFault::too_many_concurrent()),
            Some(FaultKind::Status(code)) => {
                status = code;
                Err(SpFault::server_error())
            }
            None => dispatch(shared, text.as_deref(), session_of(&req.path), now),
        }
    };
    let body = match answer {
        Ok(fields) => xml::success(&fields),
        Err(fault) => {
            record.reply_code = Some(fault.errorid);
            xml::fault(fault.errorid, fault.class, &fault.message)
        }
    };
    record.status = status;
    shared.recorder.push(record);
    if let Some(hold) = hold {
        tokio::time::sleep(hold).await;
    }
    Reply::Respond(respond(status, body, "text/xml;charset=UTF-8"))
}

/// Parses the envelope and runs its single operation.
fn dispatch(
    shared: &Shared,
    text: Option<&str>,
    session: Option<&str>,
    now: Timestamp,
) -> OpResult {
    let root = text
        .and_then(|t| xml::parse(t).ok())
        .ok_or_else(SpFault::invalid_request)?;
    let op = operation(&root).ok_or_else(SpFault::invalid_request)?;
    let mut state = shared.state();
    state.tick(now);
    match op.name.as_str() {
        "Login" => {
            let answer = state.login(op, now);
            if answer.as_ref().is_err_and(|f| f.errorid == 146) {
                shared.traffic.refused();
            }
            return answer;
        }
        "Logout" => {
            state.check_session(session, now)?;
            return state.logout(session);
        }
        _ => {}
    }
    if !KNOWN.contains(&op.name.as_str()) {
        return Err(SpFault::invalid_request());
    }
    state.touch_session(session, now)?;
    let outcome = match op.name.as_str() {
        "GetLists" => state.get_lists(op),
        "GetMailingTemplates" => state.templates(op),
        "PreviewMailing" => state.preview(op),
        "AddRecipient" => state.add_recipient(op, false),
        "UpdateRecipient" => state.add_recipient(op, true),
        "CreateContactList" => state.create_contact_list(op),
        "AddContactToContactList" => state.add_contact_to_contact_list(op),
        "GetListMetaData" => state.list_meta_data(op),
        "CreateQuery" => state.create_query(op),
        "CalculateQuery" => state.calculate_query(op, now),
        "GetQuery" => state.get_query(op),
        "GetJobStatus" => state.job_status(op, now),
        "CreateTable" => state.create_table(op),
        "InsertUpdateRelationalTable" => state.insert_update_table(op),
        "ImportList" => state.import(op, "ImportList"),
        "ImportTable" => state.import(op, "ImportTable"),
        "ScheduleMailing" => state.schedule(op, now),
        "GetSentMailingsForOrg" => state.sent_mailings(op, now),
        _ => state.aggregate(op, now),
    };
    if let Err(fault) = &outcome {
        tracing::debug!(operation = %op.name, errorid = fault.errorid, "silverpop sim fault");
    }
    outcome
}

/// Operations that need a session (Login and Logout are handled before).
const KNOWN: [&str; 19] = [
    "GetLists",
    "GetMailingTemplates",
    "PreviewMailing",
    "AddRecipient",
    "UpdateRecipient",
    "CreateContactList",
    "AddContactToContactList",
    "GetListMetaData",
    "CreateQuery",
    "CalculateQuery",
    "GetQuery",
    "GetJobStatus",
    "CreateTable",
    "InsertUpdateRelationalTable",
    "ImportList",
    "ImportTable",
    "ScheduleMailing",
    "GetSentMailingsForOrg",
    "GetAggregateTrackingForMailing",
];

/// The single element under `Envelope/Body` (names are case-sensitive).
fn operation(root: &Node) -> Option<&Node> {
    if root.name != "Envelope" {
        return None;
    }
    let body = root.child("Body")?;
    match body.children.as_slice() {
        [op] => Some(op),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_comes_from_the_path_parameter() {
        assert_eq!(session_of("/XMLAPI;jsessionid=AB12"), Some("AB12"));
        assert_eq!(session_of("/XMLAPI"), None);
        assert_eq!(session_of("/XMLAPI;jsessionid="), None);
    }

    #[test]
    fn the_operation_is_the_only_element_under_a_correctly_cased_body() {
        let ok = xml::parse("<Envelope><Body><Login/></Body></Envelope>").unwrap();
        assert_eq!(operation(&ok).map(|o| o.name.as_str()), Some("Login"));
        let lower = xml::parse("<Envelope><body><Login/></body></Envelope>").unwrap();
        assert!(operation(&lower).is_none());
        let two = xml::parse("<Envelope><Body><A/><B/></Body></Envelope>").unwrap();
        assert!(operation(&two).is_none());
    }
}
