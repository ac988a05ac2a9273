//! The CSV scanner and the whole audience pass on any bytes (one audience file).
//!
//! Scanner: no panic or endless loop, lines in order, a buffer of at most the longest record
//! plus one read, and (for inputs no longer than the maximum record) the same steps whatever the
//! read sizes. Audience pass: validation then upload over the same bytes; the upload pass
//! succeeds whenever validation did, with as many rows; errors are bounded and quote no cell.
//! Seeds: any CSV files (`cargo +nightly fuzz run scan fuzz/corpus/scan some/csv/folder`).

#![no_main]

#[path = "common.rs"]
mod common;

use espbridge_core::audience::read::{
    AudienceLimits, AudienceScan, Event, Flow, RejectedLines, ScanMode,
};
use espbridge_core::audience::scan::{BadRecord, CsvScanner, DEFAULT_MAX_RECORD, Step};
use espbridge_core::manifest::Columns;
use espbridge_core::ports::source::ByteStream;
use espbridge_core::ports::{AudienceSource, SourceError};
use libfuzzer_sys::fuzz_target;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

#[derive(Debug, PartialEq)]
enum Seen {
    Record(u64, Vec<String>),
    Bad(u64, BadRecord),
}

fn scan(input: &[u8], chunk: usize, max: usize) -> Vec<Seen> {
    let mut sc = CsvScanner::new().with_max_record(max);
    let mut out = Vec::new();
    let mut rest = input;
    let mut last_line = 0;
    for _ in 0..4 * input.len() + 64 {
        let line = match sc.next_step() {
            Step::Record(r) => {
                let fields = (0..r.len())
                    .map(|i| r.field(i).expect("UTF-8 fields").to_owned())
                    .collect();
                out.push(Seen::Record(r.line, fields));
                r.line
            }
            Step::Bad { line, reason } => {
                out.push(Seen::Bad(line, reason));
                line
            }
            Step::NeedMore if rest.is_empty() => {
                sc.finish();
                continue;
            }
            Step::NeedMore => {
                let n = chunk.min(rest.len());
                sc.push(&rest[..n]);
                rest = &rest[n..];
                assert!(
                    sc.pending() <= max.max(3) + chunk + 1,
                    "held {}",
                    sc.pending()
                );
                continue;
            }
            Step::End => return out,
        };
        assert!(line > last_line, "line {line} after {last_line}");
        last_line = line;
    }
    panic!("no progress");
}

struct Src {
    body: Vec<u8>,
    read: usize,
}

#[async_trait::async_trait]
impl AudienceSource for Src {
    async fn read_small(&self, _: &str, key: &str) -> Result<(Vec<u8>, String), SourceError> {
        Err(SourceError::NotFound {
            key: key.to_owned(),
        })
    }
    async fn open(
        &self,
        _: &str,
        _: &str,
        _: Option<&str>,
    ) -> Result<(ByteStream, String), SourceError> {
        let r = Reads {
            body: self.body.clone(),
            pos: 0,
            read: self.read,
        };
        Ok((Box::new(r), "\"v1\"".to_owned()))
    }
    async fn put_file(&self, _: &str, _: &str, _: &std::path::Path) -> Result<(), SourceError> {
        Ok(())
    }
}

struct Reads {
    body: Vec<u8>,
    pos: usize,
    read: usize,
}

impl AsyncRead for Reads {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let n = this
            .read
            .min(buf.remaining())
            .min(this.body.len() - this.pos);
        buf.put_slice(&this.body[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

const COLUMNS: [&str; 3] = ["customer_id", "email", "first_name"];

/// Whether `text` (a message) holds `cell`: a long cell that is no column name and no number,
/// which no message template can hold by chance.
fn leaks(text: &str, cells: &[String]) -> Option<String> {
    cells
        .iter()
        .filter(|c| c.len() >= 16 && !c.contains(' ') && !c.bytes().all(|b| b.is_ascii_digit()))
        .filter(|c| {
            !COLUMNS
                .iter()
                .any(|n| c.contains(n) || n.contains(c.as_str()))
        })
        .find(|c| text.contains(c.as_str()))
        .cloned()
}

async fn passes(src: &Src, email: bool, limits: AudienceLimits) -> Result<(), String> {
    let files = vec!["a.csv".to_owned()];
    let columns = Columns {
        customer_id: COLUMNS[0].into(),
        email: email.then(|| COLUMNS[1].into()),
        fields: vec![COLUMNS[2].into()],
    };
    let mut scan = AudienceScan::new(src, "b", "p/", &files, &columns, ScanMode::Validate, vec![])
        .with_limits(limits);
    let mut rejected = Vec::new();
    let mut reasons = Vec::new();
    scan.run(&mut |ev| {
        if let Event::Reject { line, reason, .. } = ev {
            rejected.push(line);
            reasons.push(reason.to_string());
        }
        Flow::Continue
    })
    .await
    .map_err(|e| e.to_string())?;
    let etags = scan.etags().to_vec();
    for r in &reasons {
        common::bounded("reject reason", r, 0);
    }
    rejected.sort_unstable();
    let mode = ScanMode::Reread {
        rejected: RejectedLines(vec![rejected]),
    };
    let mut up =
        AudienceScan::new(src, "b", "p/", &files, &columns, mode, etags).with_limits(limits);
    let mut rows = 0u64;
    let uploaded = up
        .run(&mut |ev| {
            if let Event::Row(_) = ev {
                rows += 1;
            }
            Flow::Continue
        })
        .await;
    if let Err(e) = uploaded {
        panic!("validation passed, the reread failed: {e}");
    }
    assert_eq!(rows, scan.valid(), "reread rows != validated rows");
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let whole = scan(data, data.len().max(1), DEFAULT_MAX_RECORD);
    if data.len() <= DEFAULT_MAX_RECORD {
        for chunk in [1, 7, 4096] {
            assert_eq!(
                scan(data, chunk, DEFAULT_MAX_RECORD),
                whole,
                "read size {chunk}"
            );
        }
    }
    for chunk in [1, 7] {
        let _ = scan(data, chunk, 16);
    }
    let cells: Vec<String> = whole
        .iter()
        .filter_map(|s| match s {
            Seen::Record(_, f) => Some(f.clone()),
            Seen::Bad(..) => None,
        })
        .flatten()
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    for (email, read) in [(false, 1 << 18), (true, 13)] {
        let src = Src {
            body: data.to_vec(),
            read,
        };
        if let Err(e) = rt.block_on(passes(&src, email, AudienceLimits::default())) {
            common::bounded("audience", &e, 16);
            if let Some(c) = leaks(&e, &cells) {
                panic!("the error quotes the cell {c:?}: {e}");
            }
        }
    }
});
