//! Audience parsing benchmark.
//!
//! `cargo run --release -p espbridge-bench --bin parse -- --rows 10000000`
//!
//! Generates an audience file (or reuses `--file`), then measures, on one core:
//! 1. the scanner alone (record splitting, quoting, UTF-8) over the file in 256 KiB chunks;
//! 2. the upload's one pass (`AudienceScan` in `Validate` mode: row rules, duplicate detection,
//!    each valid row handed over with its content and assigned to an A/B variant or the
//!    hold-out), streamed from disk through the `AudienceSource` port;
//! 3. a later reread of the valid rows (conversions attribution: no duplicate table).
//!
//! And the process's peak RSS after each. Run each phase in its own process (`--phase`) to read
//! its peak memory alone.

use anyhow::Context;
use clap::Parser;
use espbridge_bench::{mib, peak_rss_bytes, write_audience};
use espbridge_core::audience::assign::{Assigner, Group};
use espbridge_core::audience::read::{AudienceScan, Event, Flow, RejectedLines, ScanMode};
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
    /// `scan`, `validate`, `reread` (the reread alone, for its own peak memory) or `all`.
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

    if ["validate", "reread", "all"].contains(&args.phase.as_str()) {
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
            let mut etags = Vec::new();
            if args.phase != "reread" {
                // The upload's one pass: every rule, the duplicate table, each valid row handed
                // over with its content and assigned to one of three A/B variants or a 10%
                // hold-out (the seeded-hash `Assigner`), as the upload reads its rounds.
                let assigner = Assigner::new("bench-campaign", &[0.4, 0.3, 0.3], 0.1);
                let t = Instant::now();
                let mut scan = AudienceScan::new(
                    &source,
                    "local",
                    prefix,
                    &files,
                    &columns,
                    ScanMode::Validate,
                    Vec::new(),
                );
                let mut rejected = 0u64;
                let mut content_bytes = 0usize;
                let mut groups = [0u64; 4];
                scan.run(&mut |ev| {
                    match ev {
                        Event::Reject { .. } => rejected += 1,
                        Event::Row(r) => {
                            content_bytes += r.customer_id.len() + r.email.map_or(0, str::len);
                            content_bytes += (0..r.field_count()).map(|i| r.field(i).len()).sum::<usize>();
                            match assigner.assign(r.customer_id) {
                                Group::Holdout => groups[3] += 1,
                                Group::Variant(i) => groups[i.min(2)] += 1,
                            }
                        }
                    }
                    Flow::Continue
                })
                .await?;
                let s = t.elapsed().as_secs_f64();
                etags = scan.etags().to_vec();
                println!(
                    "validate (the upload's one pass): {:>8.0} MB/s  {:>6.1} M rows/s  {:.3} CPU-s per M rows  ({} rows, {} valid, {rejected} rejected, {content_bytes} content bytes, variants {}/{}/{}, held out {}, {s:.2} s)  duplicate table {:.1} MiB  peak RSS {:.1} MiB",
                    bytes as f64 / 1e6 / s,
                    scan.rows() as f64 / 1e6 / s,
                    s / (scan.rows() as f64 / 1e6),
                    scan.rows(),
                    scan.valid(),
                    groups[0],
                    groups[1],
                    groups[2],
                    groups[3],
                    mib(scan.dedupe_bytes() as u64),
                    mib(peak_rss_bytes().unwrap_or(0))
                );
            }
            // A later read (conversions attribution): the validated rejects skipped, no
            // duplicate table.
            let t = Instant::now();
            let mode = ScanMode::Reread { rejected: RejectedLines::default() };
            let mut again = AudienceScan::new(&source, "local", prefix, &files, &columns, mode, etags);
            let mut id_bytes = 0usize;
            again
                .run(&mut |ev| {
                    if let Event::Row(r) = ev {
                        id_bytes += r.customer_id.len() + r.email.map_or(0, str::len);
                    }
                    Flow::Continue
                })
                .await?;
            let s = t.elapsed().as_secs_f64();
            println!(
                "reread: {:>8.0} MB/s  {:>6.1} M rows/s  ({} rows, {id_bytes} id+email bytes, {s:.2} s)  peak RSS {:.1} MiB",
                bytes as f64 / 1e6 / s,
                again.rows() as f64 / 1e6 / s,
                again.rows(),
                mib(peak_rss_bytes().unwrap_or(0))
            );
            anyhow::Ok(())
        })?;
    }
    Ok(())
}
