//! A realistic nightly drop: audience files the way a segmentation engine writes them, with the
//! imperfections real exports have (about 1% bad rows of every kind the validator rejects, a BOM,
//! CRLF line ends, gzip), so the demo exercises the same paths production does.
//!
//! Generation is pure and seeded ([`generate`]); [`write_files`] puts the result on disk.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// The header every generated file has.
pub const HEADER: &str = "customer_id,email,first_name,loyalty_tier";
/// Personalization columns passed to the ESP.
pub const FIELDS: [&str; 2] = ["first_name", "loyalty_tier"];

/// A kind of bad row; each maps to one validator reject reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BadKind {
    EmptyLine,
    BadUtf8,
    MalformedQuoting,
    ColumnCount,
    EmptyId,
    InvalidId,
    DuplicateId,
    MissingEmail,
    InvalidEmail,
    /// An opening quote never closed: it runs to the end of the file, so it is only ever the
    /// last line of a file.
    UnterminatedQuote,
}

impl BadKind {
    /// Kinds that can sit anywhere in a file.
    pub const INLINE: [BadKind; 9] = [
        BadKind::EmptyLine,
        BadKind::BadUtf8,
        BadKind::MalformedQuoting,
        BadKind::ColumnCount,
        BadKind::EmptyId,
        BadKind::InvalidId,
        BadKind::DuplicateId,
        BadKind::MissingEmail,
        BadKind::InvalidEmail,
    ];

    /// The validator's reject key (`RejectReason::key`) this row must produce.
    pub fn reject_key(self) -> &'static str {
        match self {
            BadKind::EmptyLine => "empty_row",
            BadKind::BadUtf8 => "invalid_utf8",
            BadKind::MalformedQuoting => "malformed_quoting",
            BadKind::ColumnCount => "column_count",
            BadKind::EmptyId => "empty_customer_id",
            BadKind::InvalidId => "invalid_customer_id",
            BadKind::DuplicateId => "duplicate_customer_id",
            BadKind::MissingEmail => "missing_email",
            BadKind::InvalidEmail => "invalid_email",
            BadKind::UnterminatedQuote => "unterminated_quote",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct DropSpec {
    /// Distinct valid customers.
    pub customers: u64,
    pub seed: u64,
}

/// One audience file, ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenFile {
    pub name: String,
    /// The whole file, uncompressed (BOM and line ends included).
    pub content: Vec<u8>,
    pub gzip: bool,
}

/// A generated drop and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedDrop {
    pub files: Vec<GenFile>,
    /// Data lines (header excluded), good and bad.
    pub rows: u64,
    pub valid: u64,
    pub bad: BTreeMap<BadKind, u64>,
}

impl GeneratedDrop {
    pub fn file_names(&self) -> Vec<String> {
        self.files.iter().map(|f| f.name.clone()).collect()
    }
    pub fn bad_total(&self) -> u64 {
        self.bad.values().sum()
    }
    /// The ids of the valid customers (the good rows), in file order.
    pub fn valid_ids(&self) -> impl Iterator<Item = String> + use<> {
        (1..=self.valid).map(customer_id)
    }
}

const FIRST_NAMES: &[&str] = &[
    "Anna",
    "Lukas",
    "Marie",
    "Jonas",
    "Sophie",
    "Leon",
    "Emma",
    "Finn",
    "Mia",
    "Paul",
    "Lena",
    "Felix",
    "Zoë",
    "Jürgen",
    "Łukasz",
    "Chloé",
    "Mehmet",
    "Ayşe",
    "Søren",
    "Inès",
    "Oliver",
    "Charlotte",
    "Noah",
    "Amélie",
    "Mateo",
    "Olivia",
    "Hannah",
    "Elias",
    "Ida",
    "Matteo",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example",
    "post.example.org",
    "web.example",
];

/// A tier by share: bronze 55%, silver 30%, gold 12%, platinum 3%.
fn tier(rng: &mut StdRng) -> &'static str {
    match rng.random_range(0..100u32) {
        0..55 => "bronze",
        55..85 => "silver",
        85..97 => "gold",
        _ => "platinum",
    }
}

fn customer_id(n: u64) -> String {
    format!("C{n:06}")
}

/// A well-formed line for customer `n` (without line end). Names with a comma are quoted as
/// RFC 4180 requires.
fn good_line(rng: &mut StdRng, n: u64) -> Vec<u8> {
    let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
    let local: String = first
        .chars()
        .filter(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_ascii_lowercase();
    let domain = DOMAINS[rng.random_range(0..DOMAINS.len())];
    let name = if rng.random_bool(0.02) {
        format!("\"{first}, Jr.\"")
    } else {
        first.to_owned()
    };
    format!(
        "{},{local}.{n}@{domain},{name},{}",
        customer_id(n),
        tier(rng)
    )
    .into_bytes()
}

/// A bad line of `kind`. `fresh` is an id no good row uses; `earlier` one a good row already had.
fn bad_line(kind: BadKind, fresh: u64, earlier: u64) -> Vec<u8> {
    let id = customer_id(fresh);
    match kind {
        BadKind::EmptyLine => Vec::new(),
        BadKind::BadUtf8 => {
            let mut l = format!("{id},x.{fresh}@example.com,").into_bytes();
            l.extend_from_slice(&[b'J', 0xC3, 0x28, b'n']);
            l.extend_from_slice(b",silver");
            l
        }
        BadKind::MalformedQuoting => {
            format!("{id},m.{fresh}@example.com,\"Anna\"Marie,gold").into_bytes()
        }
        BadKind::ColumnCount => format!("{id},c.{fresh}@example.com,Paul").into_bytes(),
        BadKind::EmptyId => format!(",e.{fresh}@example.com,Lena,bronze").into_bytes(),
        BadKind::InvalidId => format!(" {id},i.{fresh}@example.com,Finn,bronze").into_bytes(),
        BadKind::DuplicateId => {
            format!("{},d.{fresh}@example.com,Mia,silver", customer_id(earlier)).into_bytes()
        }
        BadKind::MissingEmail => format!("{id},,Noah,gold").into_bytes(),
        BadKind::InvalidEmail => format!("{id},not-an-address,Ida,bronze").into_bytes(),
        BadKind::UnterminatedQuote => format!("{id},u.{fresh}@example.com,\"Emma").into_bytes(),
    }
}

/// Generates the drop: one file (`.csv.gz`, BOM) below 100 customers, else two (the second
/// plain `.csv` with CRLF). About 1% of the rows are bad, at least one of each [`BadKind`].
pub fn generate(spec: DropSpec) -> GeneratedDrop {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let customers = spec.customers.max(1);
    let n_files: u64 = if customers < 100 { 1 } else { 2 };
    // Inline bad rows: ~1% of customers, at least one per kind, spread evenly over the kinds.
    let inline_bad = (customers / 100).max(BadKind::INLINE.len() as u64);
    let mut files = Vec::new();
    let mut bad: BTreeMap<BadKind, u64> = BTreeMap::new();
    let mut rows = 0u64;
    let mut next_good = 1u64;
    let mut next_fresh = customers + 1;
    for f in 0..n_files {
        let good_here = customers / n_files + u64::from(f < customers % n_files);
        let bad_here = inline_bad / n_files + u64::from(f < inline_bad % n_files);
        let gzip = f == 0;
        let crlf = f == 1;
        let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
        let mut content = Vec::with_capacity((good_here as usize + 1) * 48);
        if f == 0 {
            content.extend_from_slice(&[0xEF, 0xBB, 0xBF]);
        }
        content.extend_from_slice(HEADER.as_bytes());
        content.extend_from_slice(eol);
        // Bad rows go after random good rows of this file, so a duplicate always has an
        // earlier row to repeat.
        let mut bad_after: Vec<u64> = (0..bad_here)
            .map(|_| rng.random_range(0..good_here.max(1)))
            .collect();
        bad_after.sort_unstable();
        let mut bad_iter = bad_after.into_iter().peekable();
        let mut kind_ix = (f as usize) * 5;
        for i in 0..good_here.max(1) {
            if i < good_here {
                content.extend_from_slice(&good_line(&mut rng, next_good));
                content.extend_from_slice(eol);
                next_good += 1;
                rows += 1;
            }
            while bad_iter.peek() == Some(&i) {
                bad_iter.next();
                let kind = BadKind::INLINE[kind_ix % BadKind::INLINE.len()];
                kind_ix += 1;
                let earlier = rng.random_range(1..next_good.max(2));
                content.extend_from_slice(&bad_line(kind, next_fresh, earlier));
                content.extend_from_slice(eol);
                next_fresh += 1;
                *bad.entry(kind).or_default() += 1;
                rows += 1;
            }
        }
        if f == n_files - 1 {
            // Last line of the last file, with no line end: the quote is never closed.
            content.extend_from_slice(&bad_line(BadKind::UnterminatedQuote, next_fresh, 1));
            *bad.entry(BadKind::UnterminatedQuote).or_default() += 1;
            rows += 1;
        }
        let ext = if gzip { "csv.gz" } else { "csv" };
        files.push(GenFile {
            name: format!("audience_part{}.{ext}", f + 1),
            content,
            gzip,
        });
    }
    GeneratedDrop {
        files,
        rows,
        valid: next_good - 1,
        bad,
    }
}

/// Writes the files into `dir` (which must exist); `.gz` files are gzip-compressed.
pub fn write_files(dir: &Path, drop: &GeneratedDrop) -> std::io::Result<()> {
    for f in &drop.files {
        let path = dir.join(&f.name);
        let file = std::fs::File::create(&path)?;
        if f.gzip {
            let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
            gz.write_all(&f.content)?;
            gz.finish()?.sync_all()?;
        } else {
            let mut w = std::io::BufWriter::new(file);
            w.write_all(&f.content)?;
            w.flush()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(f: &GenFile) -> Vec<&[u8]> {
        let body = f
            .content
            .strip_prefix(&[0xEF, 0xBB, 0xBF][..])
            .unwrap_or(&f.content);
        body.split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect()
    }

    #[test]
    fn counts_add_up() {
        let d = generate(DropSpec {
            customers: 3000,
            seed: 7,
        });
        assert_eq!(d.valid, 3000);
        assert_eq!(d.rows, d.valid + d.bad_total());
        let ids: Vec<String> = d.valid_ids().collect();
        assert_eq!(ids.len(), 3000);
        let text: Vec<u8> = d.files.iter().flat_map(|f| f.content.clone()).collect();
        let text = String::from_utf8_lossy(&text);
        for id in [&ids[0], &ids[2999]] {
            assert!(text.contains(&format!("\n{id},")), "{id} is a good row");
        }
        // ~1%: 30 inline bad rows plus the unterminated quote.
        assert_eq!(d.bad_total(), 31);
        // Data lines on disk: every file has a header; only the last lacks a final line end.
        let data_lines: usize = d.files.iter().map(|f| lines(f).len() - 1).sum();
        // (the split leaves one empty tail per file that ends with a line end).
        assert_eq!(data_lines as u64, d.rows + d.files.len() as u64 - 1);
    }

    #[test]
    fn every_bad_kind_is_present_and_files_have_their_quirks() {
        let d = generate(DropSpec {
            customers: 3000,
            seed: 1,
        });
        for k in BadKind::INLINE {
            assert!(d.bad.get(&k).copied().unwrap_or(0) >= 1, "{k:?} missing");
        }
        assert_eq!(d.bad.get(&BadKind::UnterminatedQuote), Some(&1));
        assert_eq!(d.files.len(), 2);
        assert!(d.files[0].gzip && d.files[0].name.ends_with(".csv.gz"));
        assert!(d.files[0].content.starts_with(&[0xEF, 0xBB, 0xBF]));
        assert!(!d.files[1].gzip && d.files[1].content.windows(2).any(|w| w == b"\r\n"));
        assert!(!d.files[0].content.windows(2).any(|w| w == b"\r\n"));
        assert!(
            d.files
                .iter()
                .any(|f| std::str::from_utf8(&f.content).is_err()),
            "a bad UTF-8 row is present"
        );
        for f in &d.files {
            assert_eq!(lines(f)[0], HEADER.as_bytes());
        }
    }

    #[test]
    fn deterministic_with_a_seed() {
        let a = generate(DropSpec {
            customers: 500,
            seed: 42,
        });
        let b = generate(DropSpec {
            customers: 500,
            seed: 42,
        });
        let c = generate(DropSpec {
            customers: 500,
            seed: 43,
        });
        assert_eq!(a, b);
        assert_ne!(a.files, c.files);
    }

    #[test]
    fn small_drops_are_one_gzip_file() {
        let d = generate(DropSpec {
            customers: 20,
            seed: 3,
        });
        assert_eq!(d.files.len(), 1);
        assert!(d.files[0].gzip);
        assert_eq!(d.valid, 20);
        assert_eq!(d.rows, 20 + 10);
    }

    #[test]
    fn written_gzip_round_trips() {
        let d = generate(DropSpec {
            customers: 150,
            seed: 5,
        });
        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path(), &d).unwrap();
        let gz = std::fs::File::open(dir.path().join(&d.files[0].name)).unwrap();
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut out).unwrap();
        assert_eq!(out, d.files[0].content);
        let plain = std::fs::read(dir.path().join(&d.files[1].name)).unwrap();
        assert_eq!(plain, d.files[1].content);
    }
}
