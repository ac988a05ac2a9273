//! How a port's adapter reports a failed call to the service behind it (DynamoDB, S3, SQS,
//! EventBridge Scheduler, Secrets Manager; SQLite and the file system locally).

/// A boxed error kept as the source of ours.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failed call: which operation, the service's error code, and whether trying again later may
/// succeed. Displays as `operation: detail`, the detail being the service's code and message,
/// never request contents. The service's own error is the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {detail}")]
pub struct BackendError {
    pub operation: &'static str,
    /// The service's error code (e.g. `AccessDeniedException`), when the service answered.
    pub code: Option<String>,
    pub detail: String,
    /// Throttling, a 5xx, a timeout or a connection failure: worth another delivery. Access,
    /// validation and missing-resource errors are not: they fail the campaign at once.
    pub retryable: bool,
    #[source]
    pub source: Option<BoxError>,
}

impl BackendError {
    /// A failure worth another try (a backend that did not answer in time, say).
    pub fn transient(operation: &'static str, detail: impl Into<String>) -> Self {
        Self {
            operation,
            code: None,
            detail: detail.into(),
            retryable: true,
            source: None,
        }
    }

    /// A failure that another try would repeat.
    pub fn permanent(operation: &'static str, detail: impl Into<String>) -> Self {
        Self {
            operation,
            code: None,
            detail: detail.into(),
            retryable: false,
            source: None,
        }
    }

    /// Keeps `source` as the cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// A local I/O error, retryable when the kind says the resource may come back.
    pub fn io(operation: &'static str, e: std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        let retryable = matches!(
            e.kind(),
            Interrupted | TimedOut | WouldBlock | ConnectionReset | ConnectionAborted | BrokenPipe
        );
        Self {
            operation,
            code: Some(format!("{:?}", e.kind())),
            detail: e.to_string(),
            retryable,
            source: Some(Box::new(e)),
        }
    }

    pub fn has_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}
