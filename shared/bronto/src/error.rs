//! Errors of building an adapter. Errors of calls are `espbridge_core::ports::EspError`.

/// Why [`crate::BrontoEsp::new`] refused its configuration.
#[derive(Debug, thiserror::Error)]
pub enum BrontoError {
    #[error("bronto config: invalid {field}: {detail}")]
    Config { field: &'static str, detail: String },
    #[error("bronto: cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}
