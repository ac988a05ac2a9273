//! Errors of building an adapter. Errors of calls are `espbridge_core::ports::EspError`.

/// Why [`crate::EmarsysEsp::new`] refused its configuration.
#[derive(Debug, thiserror::Error)]
pub enum EmarsysError {
    #[error("emarsys config: invalid {field}: {detail}")]
    Config { field: &'static str, detail: String },
    #[error("emarsys: cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}
