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

pub fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}
