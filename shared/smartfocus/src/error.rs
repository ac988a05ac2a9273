//! Errors of building an adapter. Errors of calls are `espbridge_core::ports::EspError`.

/// Why [`crate::SmartFocusEsp::new`] refused its configuration.
#[derive(Debug, thiserror::Error)]
pub enum SmartFocusError {
    #[error("smartfocus config: invalid {field}: {detail}")]
    Config { field: &'static str, detail: String },
    #[error("smartfocus: cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}
