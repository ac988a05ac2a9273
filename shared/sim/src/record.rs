//! The log of requests a simulator received, for tests to assert on.

use std::sync::Mutex;

/// One request as received, with what the simulator answered.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    /// The path as sent, including legacy in-path parameters (e.g. `/api/v2/email/status=1`).
    pub path: String,
    /// The query string, without `?`.
    pub query: Option<String>,
    /// The body parsed as JSON; a body that is not JSON is kept as a JSON string of its text.
    pub body: Option<serde_json::Value>,
    /// HTTP status returned; 0 when the connection was dropped without a response.
    pub status: u16,
    /// The envelope's reply code, for ESPs that have one.
    pub reply_code: Option<i64>,
    /// Arrival time on the simulator's clock.
    pub at: jiff::Timestamp,
}

/// Append-only request log.
#[derive(Debug, Default)]
pub struct Recorder(Mutex<Vec<RecordedRequest>>);

impl Recorder {
    pub fn push(&self, request: RecordedRequest) {
        self.lock().push(request);
    }

    pub fn all(&self) -> Vec<RecordedRequest> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RecordedRequest>> {
        // A log is still a valid log if a holder panicked.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Parses a raw body for the log: JSON when it is, its text otherwise, `None` when empty.
pub fn body_for_log(raw: &[u8]) -> Option<serde_json::Value> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(
        serde_json::from_slice(raw)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(raw).into())),
    )
}
