//! How AWS SDK errors are described and classified, shared by every adapter.
//!
//! Messages carry the service's error code and message (via [`ProvideErrorMetadata`]), never the
//! SDK's Debug dump, which is long and can echo request contents.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use espbridge_core::ports::BackendError;

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

/// A failed AWS call is the ports' [`BackendError`]: the operation, the service's error code,
/// and whether trying again later may succeed.
pub type AwsError = BackendError;

/// Describes and classifies an SDK error. Works for every service client: they share the
/// response type. The SDK error is kept as the source.
pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> BackendError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    BackendError {
        operation,
        code: err.code().map(str::to_owned),
        detail: describe(&err),
        retryable: is_retryable(&err),
        source: Some(Box::new(err)),
    }
}

/// An error found before or after the call (a request that could not be built, a response
/// missing a field): not worth a retry.
pub fn local(operation: &'static str, detail: impl Into<String>) -> BackendError {
    BackendError::permanent(operation, detail)
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
