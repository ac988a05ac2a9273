//! How AWS SDK errors are described and classified, shared by every adapter.
//!
//! Messages carry the service's error code and message (via [`ProvideErrorMetadata`]), never the
//! SDK's Debug dump, which is long and can echo request contents.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Error codes AWS services use for throttling and transient faults; worth retrying later.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionInProgressException",
    "TransactionConflict",
    "TransactionConflictException",
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "InternalServerError",
    "InternalFailure",
];

/// A failed AWS call: which operation, the service's error code, and whether trying again later
/// may succeed.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {detail}")]
pub struct AwsError {
    pub operation: &'static str,
    /// The service's error code (e.g. `ResourceNotFoundException`), when the service answered.
    pub code: Option<String>,
    /// `code: message`, or the transport failure when the service never answered.
    pub detail: String,
    /// Throttling, a 5xx, a timeout or a connection failure.
    pub retryable: bool,
    #[source]
    source: Option<BoxError>,
}

impl AwsError {
    /// Describes an SDK error. Works for every service client: they share the response type.
    pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let code = err.code().map(str::to_owned);
        let retryable = is_retryable(&err);
        let detail = describe(&err);
        Self {
            operation,
            code,
            detail,
            retryable,
            source: Some(Box::new(err)),
        }
    }

    /// An error found before or after the call (a request that could not be built, a response
    /// missing a field).
    pub fn local(operation: &'static str, detail: impl Into<String>) -> Self {
        Self {
            operation,
            code: None,
            detail: detail.into(),
            retryable: false,
            source: None,
        }
    }

    pub fn has_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// `code: message` for a service error; the transport error chain otherwise.
pub(crate) fn describe<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match (err, err.code()) {
        (SdkError::ServiceError(_), Some(code)) => match err.message() {
            Some(msg) if !msg.is_empty() => format!("{code}: {msg}"),
            _ => code.to_owned(),
        },
        (SdkError::ServiceError(ctx), None) => {
            format!("HTTP {} with no error code", ctx.raw().status().as_u16())
        }
        _ => DisplayErrorContext(err).to_string(),
    }
}

/// Throttling, 5xx, timeouts and connection failures are transient; everything else is not.
pub(crate) fn is_retryable<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(ctx) => {
            ctx.raw().status().is_server_error()
                || err.code().is_some_and(|c| TRANSIENT_CODES.contains(&c))
        }
        _ => false,
    }
}
