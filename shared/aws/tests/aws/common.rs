#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use aws_config::SdkConfig;
use std::sync::atomic::{AtomicU32, Ordering};

/// The emulator's SDK config, or `None` (after saying so) when no emulator is configured.
pub async fn emulator(test: &str) -> Option<SdkConfig> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        assert!(
            std::env::var("ESPBRIDGE_REQUIRE_EMULATOR").as_deref() != Ok("1"),
            "{test}: ESPBRIDGE_REQUIRE_EMULATOR=1 but AWS_ENDPOINT_URL is not set; \
             run scripts/aws-emu.sh start && eval \"$(scripts/aws-emu.sh env)\""
        );
        eprintln!("{test}: skipped: no emulator (AWS_ENDPOINT_URL is not set)");
        return None;
    }
    Some(espbridge_aws::sdk_config().await)
}

/// A name no other test or earlier run uses: `<prefix>-<time><pid><seq>`, lowercase, so it is
/// valid for buckets, tables, queues and schedule groups alike.
pub fn unique(prefix: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_000_000)
        .unwrap_or(0);
    format!(
        "{prefix}-{nanos:x}{:x}{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}
