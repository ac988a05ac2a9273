//! SDK configuration from the environment.
//!
//! In Lambda the defaults (role credentials, region) apply. Locally and in tests,
//! `AWS_ENDPOINT_URL` points every client at the emulator (see `scripts/aws-emu.sh`).

use aws_config::{BehaviorVersion, SdkConfig};

/// The environment's SDK configuration (credentials, region, `AWS_ENDPOINT_URL`).
pub async fn sdk_config() -> SdkConfig {
    aws_config::load_defaults(BehaviorVersion::latest()).await
}

/// An S3 client for `conf`. With an endpoint override, requests use path-style addressing:
/// emulators on `127.0.0.1` cannot serve `bucket.host` virtual-host names.
pub fn s3_client(conf: &SdkConfig) -> aws_sdk_s3::Client {
    let overridden =
        conf.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL").is_some();
    let s3_conf = aws_sdk_s3::config::Builder::from(conf)
        .force_path_style(overridden)
        .build();
    aws_sdk_s3::Client::from_conf(s3_conf)
}
