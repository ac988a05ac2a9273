//! espbridge's Emarsys upload side by side with two plain Python uploaders (standard `csv`
//! module, pandas; `bench/python/`) on the same generated file, against the same Emarsys
//! simulator on loopback without a practical rate limit or latency.
//!
//! `cargo run --release -p espbridge-bench --bin side_by_side -- --rows 1000000`
//!
//! Each uploader runs as a child process from start to audience-ready (interpreter start and
//! imports included for Python, adapter set-up and the template look-up for espbridge), so
//! wall time, CPU seconds and peak RSS are each child's own (`wait4`). Every run must leave a
//! contact list holding exactly the file's ids; the ratios are Python's figure over
//! espbridge's. pandas comes from a venv under `target/bench-venv`, created with
//! `bench/python/requirements.txt` when missing (`--skip-pandas` to leave it out).

use anyhow::{Context, bail, ensure};
use clap::Parser;
use espbridge_bench::{AudienceFile, mib, upload_drop, write_audience};
use espbridge_core::{AccountId, Clock, SystemClock};
use espbridge_emarsys::sim::{EmarsysSim, EmarsysSimConfig};
use espbridge_emarsys::{EmarsysConfig, EmarsysCredentials, EmarsysEsp};
use espbridge_esp_kit::{BaseUrl, BuildContext};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

/// Requests a minute for the simulator and the client: far above what any run reaches, so
/// neither side waits on a limit.
const NO_LIMIT_PER_MINUTE: u32 = 1_000_000;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Leave the pandas uploader out (and do not create its venv).
    #[arg(long)]
    skip_pandas: bool,
    /// Interpreter of the `csv` uploader, and of the venv when it has to be created.
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// The venv the pandas uploader runs in (created when missing).
    #[arg(long)]
    venv: Option<PathBuf>,
    /// Internal: run espbridge's upload of `--file` to the Emarsys endpoint at this URL.
    #[arg(long, hide = true)]
    espbridge_child: Option<String>,
    #[arg(long, hide = true)]
    file: Option<PathBuf>,
}

/// What one child process cost.
struct Run {
    name: &'static str,
    wall_s: f64,
    cpu_s: f64,
    peak_rss: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match (&args.espbridge_child, &args.file) {
        (Some(url), Some(file)) => runtime.block_on(espbridge_child(url, file)),
        (Some(_), None) => bail!("--espbridge-child needs --file"),
        _ => runtime.block_on(compare(&args)),
    }
}

/// The child side: espbridge's real upload service, one invocation to audience-ready.
async fn espbridge_child(base_url: &str, file: &Path) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut config = EmarsysConfig::new(AccountId::parse("default")?);
    config.http.base_url = Some(BaseUrl::parse(base_url)?);
    config.rate_limit_per_minute = NO_LIMIT_PER_MINUTE;
    let esp = EmarsysEsp::new(
        config,
        EmarsysCredentials::new("espbridge", "sim-secret"),
        &BuildContext::in_memory(Arc::clone(&clock)),
    )?;
    let template = espbridge_bench::first_template(&esp).await?;
    let run = upload_drop(
        Arc::new(esp),
        &template.id,
        AudienceFile::Existing(file),
        false,
        clock,
        std::time::Duration::ZERO,
    )
    .await?;
    println!(
        "{}",
        serde_json::json!({"upload_s": run.secs, "bytes": run.bytes})
    );
    Ok(())
}

async fn compare(args: &Args) -> anyhow::Result<()> {
    let python_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    let venv = args
        .venv
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-venv"));
    if !args.skip_pandas {
        ensure_venv(&args.python, &venv, &python_dir.join("requirements.txt"))?;
    }

    let dir = tempfile::tempdir()?;
    let file = dir.path().join("audience.csv");
    let bytes = write_audience(&file, args.rows)?;
    println!(
        "{} rows, {:.1} MiB; Emarsys simulator on loopback, no latency, {NO_LIMIT_PER_MINUTE} requests/min allowed",
        args.rows,
        mib(bytes)
    );

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let sim = EmarsysSim::start(
        EmarsysSimConfig {
            rate_limit_per_minute: NO_LIMIT_PER_MINUTE,
            // Every id is a known contact: no per-id errors for either side to handle.
            unknown_id_share: 0.0,
            ..Default::default()
        },
        clock,
    )
    .await?;
    let url = sim.base_url();
    let this = std::env::current_exe()?;

    let mut runs = Vec::new();
    let mut espbridge = Command::new(&this);
    espbridge
        .arg("--espbridge-child")
        .arg(&url)
        .arg("--file")
        .arg(&file);
    runs.push(measure("espbridge", espbridge, &sim, args.rows).await?);

    let python = |interpreter: &Path, script: &str, list: &str| {
        let mut c = Command::new(interpreter);
        c.arg(python_dir.join(script))
            .arg(&file)
            .arg("--base-url")
            .arg(&url)
            .arg("--list-name")
            .arg(list);
        c
    };
    let csv = python(&args.python, "uploader_csv.py", "bench_python_csv");
    runs.push(measure("python csv", csv, &sim, args.rows).await?);
    if !args.skip_pandas {
        let pandas = python(
            &venv.join("bin/python"),
            "uploader_pandas.py",
            "bench_python_pandas",
        );
        runs.push(measure("python pandas", pandas, &sim, args.rows).await?);
    }

    println!(
        "\n| uploader | wall s | CPU s | peak RSS MiB | wall × | CPU × | RSS × |\n|---|---|---|---|---|---|---|"
    );
    let base = &runs[0];
    for r in &runs {
        println!(
            "| {} | {:.2} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} |",
            r.name,
            r.wall_s,
            r.cpu_s,
            mib(r.peak_rss),
            r.wall_s / base.wall_s,
            r.cpu_s / base.cpu_s,
            r.peak_rss as f64 / base.peak_rss.max(1) as f64,
        );
    }
    println!("(× = the row's figure over espbridge's)");
    Ok(())
}

/// Runs `cmd` to its end and checks that it left one new contact list holding all `rows` ids.
async fn measure(
    name: &'static str,
    mut cmd: Command,
    sim: &EmarsysSim,
    rows: u64,
) -> anyhow::Result<Run> {
    let lists_before = sim.contact_lists().len();
    let t = Instant::now();
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let pid = child.id();
    // The wait blocks: off the runtime, which keeps serving the simulator.
    let (status, usage) = tokio::task::spawn_blocking(move || wait4(pid)).await??;
    let wall_s = t.elapsed().as_secs_f64();
    let out = child
        .stdout
        .map(std::io::read_to_string)
        .transpose()?
        .unwrap_or_default();
    ensure!(status == 0, "{name} exited with status {status}");
    let lists = sim.contact_lists();
    ensure!(
        lists.len() == lists_before + 1,
        "{name} left {} new contact lists, not one",
        lists.len() - lists_before
    );
    let members = lists.last().map_or(0, |l| l.members.len());
    ensure!(
        members as u64 == rows,
        "{name}: {members} contacts in its list, {rows} expected"
    );
    println!(
        "{name}: {wall_s:.2} s, {} contacts in the list; it reported {}",
        members,
        out.trim()
    );
    Ok(Run {
        name,
        wall_s,
        cpu_s: usage.cpu_s,
        peak_rss: usage.peak_rss,
    })
}

struct Usage {
    cpu_s: f64,
    peak_rss: u64,
}

/// Reaps child `pid` and returns its exit code with its own resource use (`wait4`: this
/// child's, not the sum over every child waited for so far as `RUSAGE_CHILDREN` would be).
fn wait4(pid: u32) -> anyhow::Result<(i32, Usage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: all-zero is a valid `rusage` (plain integers and timevals).
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = libc::pid_t::try_from(pid)?;
    // SAFETY: `pid` is our own unreaped child; `status` and `ru` are valid for writes.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    if reaped != pid {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok((
        code,
        Usage {
            cpu_s: secs(ru.ru_utime) + secs(ru.ru_stime),
            // Linux reports KiB.
            peak_rss: u64::try_from(ru.ru_maxrss)? * 1024,
        },
    ))
}

/// Creates `venv` with pandas pinned by `requirements` unless it already imports pandas.
fn ensure_venv(python: &Path, venv: &Path, requirements: &Path) -> anyhow::Result<()> {
    let venv_python = venv.join("bin/python");
    let has_pandas = Command::new(&venv_python)
        .args(["-c", "import pandas"])
        .status()
        .is_ok_and(|s| s.success());
    if has_pandas {
        return Ok(());
    }
    println!("creating {} with pandas", venv.display());
    let made = Command::new(python)
        .args(["-m", "venv"])
        .arg(venv)
        .status()?;
    ensure!(made.success(), "python -m venv failed");
    let installed = Command::new(&venv_python)
        .args(["-m", "pip", "install", "-q", "-r"])
        .arg(requirements)
        .status()?;
    ensure!(
        installed.success(),
        "pip install of the pandas requirements failed"
    );
    Ok(())
}
