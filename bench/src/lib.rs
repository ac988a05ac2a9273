//! Shared helpers of the benchmark binaries: audience generation and process memory readings.

use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes `rows` audience rows (`customer_id,email,first_name,loyalty_tier`) to `path`, about
/// 45 bytes a row, every id distinct.
pub fn write_audience(path: &Path, rows: u64) -> std::io::Result<u64> {
    let f = std::fs::File::create(path)?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    writeln!(w, "customer_id,email,first_name,loyalty_tier")?;
    const NAMES: [&str; 8] = ["Ann", "Bob", "Cyd", "Dee", "Eve", "Fay", "Gus", "Hal"];
    const TIERS: [&str; 4] = ["gold", "silver", "bronze", "none"];
    for i in 0..rows {
        writeln!(
            w,
            "C{i:09},c{i}@mail.example,{},{}",
            NAMES[(i % 8) as usize],
            TIERS[(i % 4) as usize]
        )?;
    }
    w.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// Peak resident set size of this process so far, in bytes (Linux `VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Current resident set size, in bytes (Linux `VmRSS`).
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs `start` (a simulator's start) on a runtime of its own with one worker thread, and
/// returns that runtime (keep it until the end; `shutdown_background` it) with the result. The
/// simulator's handlers then cannot stall the client measured: a list of a million members
/// growing under the simulator's lock blocks its own worker, not the client's.
pub fn on_own_runtime<T: Send + 'static>(
    start: impl std::future::Future<Output = T> + Send + 'static,
) -> std::io::Result<(tokio::runtime::Runtime, T)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let handle = rt.handle().clone();
    let out = std::thread::spawn(move || handle.block_on(start))
        .join()
        .map_err(|_| std::io::Error::other("the simulator's start panicked"))?;
    Ok((rt, out))
}

/// The first template the account lists (the one a benchmark's campaigns send).
pub async fn first_template<E: espbridge_core::ports::Esp + ?Sized>(
    esp: &E,
) -> anyhow::Result<espbridge_core::ports::Template> {
    use anyhow::Context;
    esp.list_templates()
        .await?
        .into_iter()
        .next()
        .context("the account lists no template")
}

pub fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// A campaign drop of generated rows in a temporary folder, uploaded through the real upload
/// service with embedded ports (folder source, in-memory SQLite, local queue and scheduler).
pub struct UploadRun {
    /// Size of the audience file.
    pub bytes: u64,
    /// Wall time of `handle_drop`, in seconds.
    pub secs: f64,
}

/// Where the audience file of a drop comes from.
pub enum AudienceFile<'a> {
    /// `rows` generated rows ([`write_audience`]).
    Generated(u64),
    /// An existing file (linked, or copied where a link cannot be made).
    Existing(&'a Path),
}

/// Writes `rows` audience rows and a manifest for `esp`/`template_id` (e-mail column named when
/// `with_email`), then runs the whole upload of that drop to `esp` in one invocation.
pub async fn upload_generated_drop(
    esp: std::sync::Arc<dyn espbridge_core::ports::Esp>,
    template_id: &str,
    rows: u64,
    with_email: bool,
    clock: std::sync::Arc<dyn espbridge_core::Clock>,
) -> anyhow::Result<UploadRun> {
    upload_drop(
        esp,
        template_id,
        AudienceFile::Generated(rows),
        with_email,
        clock,
        std::time::Duration::ZERO,
    )
    .await
}

/// A drop of `audience` with a manifest for `esp`/`template_id`, uploaded to `esp` in one
/// invocation of the real upload service; fails unless it ends audience-ready. Each record
/// write of the upload takes `save_delay` more (a DynamoDB conditional write's round trip).
pub async fn upload_drop(
    esp: std::sync::Arc<dyn espbridge_core::ports::Esp>,
    template_id: &str,
    audience: AudienceFile<'_>,
    with_email: bool,
    clock: std::sync::Arc<dyn espbridge_core::Clock>,
    save_delay: std::time::Duration,
) -> anyhow::Result<UploadRun> {
    use espbridge_core::ports::ObjectRef;
    use espbridge_core::service::upload::UploadOutcome;
    use espbridge_core::service::{Deadline, EspRegistry, UploadService, UploadSettings};
    use espbridge_local::{FolderSource, LocalQueue, SqliteStore};
    use std::sync::Arc;

    let dir = tempfile::tempdir()?;
    let id = format!("bench-{}", esp.kind());
    let prefix = format!("campaigns/2026-11-24/{id}/");
    std::fs::create_dir_all(dir.path().join(&prefix))?;
    let target = dir.path().join(&prefix).join("audience.csv");
    let bytes = match audience {
        AudienceFile::Generated(rows) => write_audience(&target, rows)?,
        AudienceFile::Existing(src) => {
            if std::fs::hard_link(src, &target).is_err() {
                std::fs::copy(src, &target)?;
            }
            std::fs::metadata(&target)?.len()
        }
    };
    let mut columns = serde_json::json!({"customer_id": "customer_id"});
    if with_email {
        columns["email"] = "email".into();
    }
    // Tomorrow: inside the send window the intake checks.
    let send_at = clock
        .now()
        .checked_add(jiff::SignedDuration::from_hours(24))?
        .round(jiff::Unit::Second)?;
    let manifest = serde_json::json!({
        "schema_version": "1", "campaign_id": id, "esp": esp.kind(),
        "template_id": template_id, "send_at": send_at.to_string(),
        "audience": {"files": ["audience.csv"], "columns": columns}
    });
    let key = format!("{prefix}manifest.json");
    std::fs::write(dir.path().join(&key), manifest.to_string())?;

    let (queue, _rx) = LocalQueue::new();
    let upload = UploadService {
        store: Arc::new(espbridge_core::testkit::HookedStore::slow(
            SqliteStore::in_memory()?,
            save_delay,
        )),
        source: Arc::new(FolderSource::new(dir.path())),
        queue: Arc::new(queue),
        esps: EspRegistry::new(vec![esp]),
        clock,
        alerts: Arc::new(espbridge_core::ports::LogAlerts),
        metrics: Arc::new(espbridge_core::ports::LogMetrics),
        // One invocation, however long: the bench times the whole upload.
        settings: UploadSettings {
            slice: None,
            ..UploadSettings::default()
        },
    };
    let drop = ObjectRef {
        bucket: "local".into(),
        key,
        etag: String::new(),
    };
    let t = std::time::Instant::now();
    let out = upload.handle_drop(&drop, Deadline::none(), false).await?;
    let secs = t.elapsed().as_secs_f64();
    if !matches!(out, UploadOutcome::AudienceReady(_)) {
        anyhow::bail!("upload ended as {out:?}");
    }
    Ok(UploadRun { bytes, secs })
}
