//! Audience parsing benchmark.
//!
//! `cargo run --release -p espbridge-bench --bin parse -- --rows 10000000`
//!
//! Generates an audience file (or reuses `--file`), then measures, on one core:
//! 1. the scanner alone (record splitting, quoting, UTF-8) over the file in 256 KiB chunks;
//! 2. the full validation pass the upload function runs (`count_lines` + `AudienceScan`: row
//!    rules and duplicate detection), streamed from disk through the `AudienceSource` port.
//!
//! 3. an upload pass (rows with content, no duplicate table), then the same pass with each row
//!    assigned to one of three A/B variants or a 10% hold-out (the seeded-hash `Assigner`).
//!
//! And the process's peak RSS after each. Run each phase in its own process (`--phase`) to read
//! its peak memory alone.

use anyhow::Context;
use clap::Parser;
use espbridge_bench::{mib, peak_rss_bytes, write_audience};
use espbridge_core::audience::assign::{Assigner, Group};
use espbridge_core::audience::read::{
    AudienceLimits, AudienceScan, Event, Flow, RejectedLines, ScanMode, count_lines,
};
use espbridge_core::audience::scan::{CsvScanner, Step};
use espbridge_core::manifest::Columns;
use espbridge_local::FolderSource;
use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// Rows to generate.
    #[arg(long, default_value_t = 10_000_000)]
    rows: u64,
    /// Folder for the generated file (default: a temporary one, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// `scan`, `validate`, `upload` (the upload pass alone, for its own peak memory) or `all`.
    #[arg(long, default_value = "all")]
    phase: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    let folder = dir.join("campaigns/2026-11-24/bench");
    std::fs::create_dir_all(&folder)?;
    let file = folder.join("audience.csv");
    let bytes = match std::fs::metadata(&file) {
        Ok(m) if args.dir.is_some() && m.len() > 0 => m.len(),
        _ => {
            let t = Instant::now();
            let b = write_audience(&file, args.rows).context("writing the audience")?;
            eprintln!(
                "generated {} rows, {:.1} MiB in {:.1?}",
                args.rows,
                mib(b),
                t.elapsed()
            );
            b
        }
    };
    println!("file: {:.1} MiB, {} rows", mib(bytes), args.rows);
    let base_rss = peak_rss_bytes().unwrap_or(0);
    println!("peak RSS before measuring: {:.1} MiB", mib(base_rss));

    if args.phase == "scan" || args.phase == "all" {
        let t = Instant::now();
        let mut f = std::fs::File::open(&file)?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut sc = CsvScanner::new();
        let (mut records, mut fields) = (0u64, 0u64);
        loop {
            match sc.next_step() {
                Step::Record(r) => {
                    records += 1;
                    fields += r.len() as u64;
                }
                Step::Bad { .. } => records += 1,
                Step::NeedMore => {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        sc.finish();
                    } else {
                        sc.push(&buf[..n]);
                    }
                }
                Step::End => break,
            }
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "scan:     {:>8.0} MB/s  {:>6.1} M rows/s  ({records} records, {fields} fields, {s:.2} s)  peak RSS {:.1} MiB",
            bytes as f64 / 1e6 / s,
            records as f64 / 1e6 / s,
            mib(peak_rss_bytes().unwrap_or(0))
        );
    }

    if ["validate", "upload", "all"].contains(&args.phase.as_str()) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let source = FolderSource::new(&dir);
            let files = vec!["audience.csv".to_string()];
            let columns = Columns {
                customer_id: "customer_id".into(),
                email: Some("email".into()),
                fields: vec!["first_name".into(), "loyalty_tier".into()],
            };
            let prefix = "campaigns/2026-11-24/bench/";
            let t = Instant::now();
            let (lines, etags) =
                count_lines(&source, "local", prefix, &files, &AudienceLimits::default()).await?;
            if args.phase != "upload" {
            let counted = t.elapsed().as_secs_f64();
            let mode = ScanMode::Validate { expected_rows: lines };
            let mut scan =
                AudienceScan::new(&source, "local", prefix, &files, &columns, mode, etags.clone());
            let mut rejected = 0u64;
            scan.run(&mut |ev| {
                if let Event::Reject { .. } = ev {
                    rejected += 1;
                }
                Flow::Continue
            })
            .await?;
            let s = t.elapsed().as_secs_f64();
            println!(
                "validate: {:>8.0} MB/s  {:>6.1} M rows/s  ({} rows, {} valid, {rejected} rejected, {s:.2} s of which line count {counted:.2} s)  duplicate table {:.1} MiB  peak RSS {:.1} MiB",
                bytes as f64 / 1e6 / s,
                scan.rows() as f64 / 1e6 / s,
                scan.rows(),
                scan.valid(),
                mib(scan.dedupe_bytes() as u64),
                mib(peak_rss_bytes().unwrap_or(0))
            );
            }
            // An upload pass: rows with their content (what is batched to the ESP), skipping
            // the validated rejects; no duplicate table.
            let t = Instant::now();
            let mode = ScanMode::Upload { rejected: RejectedLines::default() };
            let mut up = AudienceScan::new(&source, "local", prefix, &files, &columns, mode, etags);
            let mut id_bytes = 0usize;
            up.run(&mut |ev| {
                if let Event::Row(r) = ev {
                    id_bytes += r.customer_id.len() + r.email.map_or(0, str::len);
                }
                Flow::Continue
            })
            .await?;
            let s = t.elapsed().as_secs_f64();
            println!(
                "upload pass scan: {:>8.0} MB/s  {:>6.1} M rows/s  ({} rows, {id_bytes} id+email bytes, {s:.2} s)  peak RSS {:.1} MiB",
                bytes as f64 / 1e6 / s,
                up.rows() as f64 / 1e6 / s,
                up.rows(),
                mib(peak_rss_bytes().unwrap_or(0))
            );
            // The same pass with A/B assignment: three variants and a 10% hold-out.
            let assigner = Assigner::new("bench-campaign", &[0.4, 0.3, 0.3], 0.1);
            let t = Instant::now();
            let mode = ScanMode::Upload { rejected: RejectedLines::default() };
            let mut up = AudienceScan::new(&source, "local", prefix, &files, &columns, mode, Vec::new());
            let mut groups = [0u64; 4];
            up.run(&mut |ev| {
                if let Event::Row(r) = ev {
                    match assigner.assign(r.customer_id) {
                        Group::Holdout => groups[3] += 1,
                        Group::Variant(i) => groups[i.min(2)] += 1,
                    }
                }
                Flow::Continue
            })
            .await?;
            let s = t.elapsed().as_secs_f64();
            println!(
                "upload pass + A/B assignment: {:>8.0} MB/s  {:>6.1} M rows/s  (variants {}/{}/{}, held out {}, {s:.2} s)",
                bytes as f64 / 1e6 / s,
                up.rows() as f64 / 1e6 / s,
                groups[0],
                groups[1],
                groups[2],
                groups[3]
            );
            anyhow::Ok(())
        })?;
    }
    Ok(())
}
