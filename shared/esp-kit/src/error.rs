//! Why an adapter refused to be built. Errors of calls are `espbridge_core::ports::EspError`.

use espbridge_core::EspKind;

#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// A setting the adapter cannot work with, named by its field.
    #[error("{esp} config: invalid {field}: {detail}")]
    Config {
        esp: EspKind,
        field: &'static str,
        detail: String,
    },
    #[error("{esp}: cannot build the HTTP client")]
    HttpClient {
        esp: EspKind,
        #[source]
        source: reqwest::Error,
    },
}

impl AdapterError {
    pub fn config(esp: EspKind, field: &'static str, detail: impl Into<String>) -> Self {
        Self::Config {
            esp,
            field,
            detail: detail.into(),
        }
    }

    /// The field a [`AdapterError::Config`] names.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Config { field, .. } => Some(field),
            Self::HttpClient { .. } => None,
        }
    }
}
