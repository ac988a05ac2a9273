//! espbridge's adapter for Bronto (SOAP API v4).
