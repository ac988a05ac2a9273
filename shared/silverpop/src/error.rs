//! Errors of building an adapter. Errors of calls are `espbridge_core::ports::EspError`.

/// Why [`crate::SilverpopEsp::new`] refused its configuration.
#[derive(Debug, thiserror::Error)]
pub enum SilverpopError {
    #[error("silverpop config: invalid {field}: {detail}")]
    Config { field: &'static str, detail: String },
    #[error("silverpop: cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}
