//! Request handling: the WSDL, the envelope and its namespace, injected faults, sessions,
//! dispatch on the body element.

use super::soap::{self, ApiFault, NS, SOAP_NS};
use super::state::{OpResult, State};
use espbridge_core::Clock;
use espbridge_sim::bytes::Bytes;
use espbridge_sim::faults::{FaultBook, FaultKind};
use espbridge_sim::http::{Handler, Reply, SimRequest};
use espbridge_sim::http_body_util::Full;
use espbridge_sim::hyper::{Method, Response, StatusCode};
use espbridge_sim::record::{RecordedRequest, Recorder};
use espbridge_xml::Element;
use jiff::Timestamp;
use std::sync::{Arc, Mutex, MutexGuard};

const WSDL: &str = include_str!("bronto-v4.wsdl");
const XML: &str = "text/xml;charset=UTF-8";

/// Everything the handler shares with [`super::BrontoSim`].
pub(crate) struct Shared {
    pub clock: Arc<dyn Clock>,
    pub state: Mutex<State>,
    pub faults: FaultBook,
    pub recorder: Recorder,
    pub traffic: Arc<espbridge_sim::Traffic>,
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

fn respond(status: u16, body: impl Into<Bytes>, content_type: &'static str) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        espbridge_sim::hyper::header::CONTENT_TYPE,
        espbridge_sim::hyper::header::HeaderValue::from_static(content_type),
    );
    Reply::Respond(response)
}

async fn handle(shared: &Shared, req: SimRequest) -> Reply {
    let now = shared.clock.now();
    let mut record = RecordedRequest {
        method: req.method.to_string(),
        path: req.path.clone(),
        query: req.query.clone(),
        body: None,
        status: 200,
        reply_code: None,
        at: now,
    };
    let wsdl_query = req
        .query
        .as_deref()
        .is_some_and(|q| q.eq_ignore_ascii_case("wsdl"));
    if req.path != "/v4" {
        record.status = 404;
        shared.recorder.push(record);
        return respond(404, "Not Found", "text/plain");
    }
    if req.method == Method::GET && wsdl_query {
        shared.recorder.push(record);
        return respond(200, WSDL, XML);
    }
    if req.method != Method::POST {
        record.status = 405;
        shared.recorder.push(record);
        return respond(405, "Method Not Allowed", "text/plain");
    }
    let root = req
        .body
        .as_deref()
        .and_then(|b| espbridge_xml::parse(b).ok());
    let op = root.as_ref().and_then(operation);
    let name = op.map_or("", |op| op.name.as_str());
    // The log keeps the operation and its item count, never the body (it holds e-mails).
    record.body = Some(serde_json::json!({
        "operation": name,
        "items": op.map_or(0, |op| op.children.iter().filter(|c| INPUT_ARRAYS.contains(&c.name.as_str())).count()),
    }));
    let mut hold = None;
    let mut status = 200;
    let answer = match shared.faults.take(name) {
        Some(FaultKind::DropConnection) => {
            tracing::debug!(operation = name, "bronto sim drops a connection (injected)");
            record.status = 0;
            shared.recorder.push(record);
            return Reply::Drop;
        }
        Some(FaultKind::Status(code)) => {
            status = code;
            Err(ApiFault::unknown())
        }
        Some(FaultKind::RateLimit) => Err(ApiFault::rate_limited()),
        Some(FaultKind::Timeout(d)) => {
            hold = Some(d);
            dispatch(shared, root.as_ref(), op, now)
        }
        None => dispatch(shared, root.as_ref(), op, now),
    };
    let body = match answer {
        Ok(returns) => soap::response(name, returns),
        Err(fault) => {
            tracing::debug!(operation = name, code = fault.code, "bronto sim fault");
            record.reply_code = Some(fault.code);
            if status == 200 {
                status = 500;
            }
            soap::fault(&fault)
        }
    };
    record.status = status;
    shared.recorder.push(record);
    if let Some(hold) = hold {
        tokio::time::sleep(hold).await;
    }
    respond(status, body, XML)
}

/// Input arrays of the write operations, counted in the request log.
const INPUT_ARRAYS: [&str; 3] = ["contacts", "lists", "deliveries"];

/// The single element under a SOAP 1.1 `Envelope/Body`.
fn operation(root: &Element) -> Option<&Element> {
    if root.name != "Envelope" || root.namespace.as_deref() != Some(SOAP_NS) {
        return None;
    }
    match root.child("Body")?.children.as_slice() {
        [op] => Some(op),
        _ => None,
    }
}

/// `Envelope/Header/sessionHeader/sessionId`.
fn session_id(root: &Element) -> Option<&str> {
    root.child("Header")?
        .child("sessionHeader")?
        .child_text("sessionId")
}

fn dispatch(
    shared: &Shared,
    root: Option<&Element>,
    op: Option<&Element>,
    now: Timestamp,
) -> OpResult {
    let (Some(root), Some(op)) = (root, op) else {
        return Err(ApiFault::soap_request());
    };
    if op.namespace.as_deref() != Some(NS) || !OPERATIONS.contains(&op.name.as_str()) {
        return Err(ApiFault::soap_request());
    }
    let mut state = shared.state();
    state.tick(now);
    if op.name == "login" {
        return state.login(op, now);
    }
    state.touch_session(session_id(root), now)?;
    match op.name.as_str() {
        "readMessageFolders" => state.read_message_folders(op),
        "readMessages" => state.read_messages(op),
        "readLists" => state.read_lists(op),
        "addLists" => state.add_lists(op),
        "addToList" => state.add_to_list(op),
        "deleteLists" => state.delete_lists(op, now),
        "addDeliveries" => state.add_deliveries(op),
        "deleteDeliveries" => state.delete_deliveries(op, now),
        _ => state.read_deliveries(op, now),
    }
}

/// Every operation the simulator answers; anything else is Fault 107.
const OPERATIONS: [&str; 10] = [
    "login",
    "readMessageFolders",
    "readMessages",
    "readLists",
    "addLists",
    "addToList",
    "deleteLists",
    "addDeliveries",
    "deleteDeliveries",
    "readDeliveries",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operation_is_the_single_body_element_and_the_session_comes_from_the_header() {
        let root = espbridge_xml::parse(
            br#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v="http://api.bronto.com/v4"><e:Header><v:sessionHeader><sessionId>S</sessionId></v:sessionHeader></e:Header><e:Body><v:readLists/></e:Body></e:Envelope>"#,
        )
        .unwrap();
        let op = operation(&root).unwrap();
        assert_eq!(op.name, "readLists");
        assert_eq!(op.namespace.as_deref(), Some(NS));
        assert_eq!(session_id(&root), Some("S"));
        let two = espbridge_xml::parse(
            br#"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><a/><b/></Body></Envelope>"#,
        )
        .unwrap();
        assert!(operation(&two).is_none());
        let soap12 = espbridge_xml::parse(
            br#"<Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"><Body><a/></Body></Envelope>"#,
        )
        .unwrap();
        assert!(operation(&soap12).is_none());
    }
}
