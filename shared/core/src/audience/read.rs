//! Streams a drop's audience files from an [`AudienceSource`] through the scanner and the row
//! rules, one bounded buffer at a time: memory stays flat whatever the file size.

pub use super::dedupe::IdSet;
use super::rows::{HeaderMap, RejectReason, check_customer_id, check_email};
use super::scan::{BadRecord, CsvScanner, RecordView, Step};
use crate::manifest::Columns;
use crate::ports::source::{AudienceSource, ByteStream, SourceError};
use async_compression::tokio::bufread::GzipDecoder;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, BufReader, ReadBuf};

/// Read size: large enough to amortise per-call costs, small against the memory budget.
const CHUNK: usize = 256 * 1024;

/// What a drop may make the audience passes do. Every one bounds something an input could
/// otherwise grow without end: memory (line length, rows), time and disk (decompressed bytes,
/// the compression ratio, rejected rows and so the rejects report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudienceLimits {
    /// Longest line, in bytes: a longer row is rejected and the scan goes on.
    pub max_line_bytes: usize,
    /// Most bytes one file may hold once decompressed.
    pub max_file_bytes: u64,
    /// Most decompressed bytes per compressed byte of a `.gz` file (checked once the output
    /// passes [`RATIO_GRACE`]: a tiny file may compress very well).
    pub max_gzip_ratio: u64,
    /// Most data rows in a drop.
    pub max_rows: u64,
    /// Most rejected rows: beyond, the files are not what the manifest describes, and the
    /// campaign fails (the rejects report holds the first ones).
    pub max_rejects: u64,
}

impl AudienceLimits {
    /// These limits with at most the rows whose duplicate table fits in `bytes` (the one pass
    /// cannot know a drop's size ahead, so a too-large drop fails naming the row limit rather
    /// than running the process out of memory).
    pub fn within_memory(self, bytes: u64) -> Self {
        Self {
            max_rows: self.max_rows.min(IdSet::max_ids_within(START_IDS, bytes)),
            ..self
        }
    }
}

/// Decompressed bytes before the ratio is checked.
pub const RATIO_GRACE: u64 = 64 << 20;

impl Default for AudienceLimits {
    fn default() -> Self {
        Self {
            max_line_bytes: super::scan::DEFAULT_MAX_RECORD,
            max_file_bytes: 8 << 30,
            max_gzip_ratio: 100,
            max_rows: 200_000_000,
            max_rejects: 100_000,
        }
    }
}

/// A cap a file went past (carried inside an `io::Error` out of the decoding reader).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapExceeded {
    #[error("larger than {limit} bytes once decompressed (the limit for one file)")]
    Bytes { limit: u64 },
    #[error(
        "expands more than {ratio} times when decompressed (a compression bomb, or not an audience file)"
    )]
    Ratio { ratio: u64 },
}

/// A file-level problem: the campaign cannot go on with this drop.
#[derive(Debug, thiserror::Error)]
pub enum AudienceError {
    #[error("{file}: {source}")]
    Source {
        file: String,
        #[source]
        source: SourceError,
    },
    #[error("{file} line 1: {detail}")]
    Header { file: String, detail: String },
    #[error("{file}: empty file (no header row)")]
    Empty { file: String },
    #[error("{file}: cannot read: {detail}")]
    Read { file: String, detail: String },
    #[error("{file}: {detail}")]
    Changed { file: String, detail: String },
    #[error("{file}: {cap}")]
    TooLarge { file: String, cap: CapExceeded },
    #[error(
        "{file}: more than {limit} rows in the drop (the limit follows the upload function's memory: README, Audience limits)"
    )]
    TooManyRows { file: String, limit: u64 },
}

impl AudienceError {
    /// Only I/O trouble reaching the source is worth a retry; bad content stays bad.
    pub fn is_retryable(&self) -> bool {
        match self {
            AudienceError::Source { source, .. } => source.is_retryable(),
            _ => false,
        }
    }
}

/// A valid row.
pub struct RowRef<'r> {
    /// Position among the drop's valid rows, from 0.
    pub ordinal: u64,
    pub file_index: usize,
    pub line: u64,
    pub customer_id: &'r str,
    pub email: Option<&'r str>,
    fields: Fields<'r>,
}

/// Where a row's personalization fields are: in the scanner's record, or copied while the row
/// waited for its duplicate decision.
enum Fields<'r> {
    Record {
        record: &'r RecordView<'r>,
        header: &'r HeaderMap,
    },
    Copied(&'r Copied),
}

impl<'r> RowRef<'r> {
    /// Personalization field `i` (in the manifest's `fields` order).
    pub fn field(&self, i: usize) -> &'r str {
        match self.fields {
            Fields::Record { record, header } => header
                .fields
                .get(i)
                .and_then(|&c| record.field(c))
                .unwrap_or(""),
            Fields::Copied(c) => c.fields.get(i).map_or("", |&r| c.get(r)),
        }
    }
    pub fn field_count(&self) -> usize {
        match self.fields {
            Fields::Record { header, .. } => header.fields.len(),
            Fields::Copied(c) => c.fields.len(),
        }
    }
}

/// A row's cells, copied into a reused buffer (each cell is within the line-length limit, so
/// a buffer is too).
#[derive(Default)]
struct Copied {
    text: String,
    id: (usize, usize),
    email: Option<(usize, usize)>,
    fields: Vec<(usize, usize)>,
}

impl Copied {
    fn fill(&mut self, rec: &RecordView<'_>, header: &HeaderMap, id: &str, email: Option<&str>) {
        self.text.clear();
        self.fields.clear();
        self.id = push_cell(&mut self.text, id);
        self.email = email.map(|e| push_cell(&mut self.text, e));
        for &c in &header.fields {
            let cell = push_cell(&mut self.text, rec.field(c).unwrap_or(""));
            self.fields.push(cell);
        }
    }

    fn get(&self, (start, end): (usize, usize)) -> &str {
        self.text.get(start..end).unwrap_or("")
    }
}

fn push_cell(text: &mut String, cell: &str) -> (usize, usize) {
    let start = text.len();
    text.push_str(cell);
    (start, text.len())
}

/// Rows read and not decided yet: the validation decides a row's duplicate [`PIPELINE`] rows
/// after reading it, once the table slot it prefetched is in cache (the table is far larger
/// than the caches, and one memory access per row was a third of the pass). Rejected rows wait
/// in line too, so the visitor sees every row in file order.
struct Pipeline {
    ids: IdSet,
    waiting: VecDeque<Waiting>,
    /// Buffers of rows decided, for the next rows.
    spare: Vec<Copied>,
}

struct Waiting {
    line: u64,
    what: Wait,
}

enum Wait {
    Candidate { hash: u64, cells: Copied },
    Reject(RejectReason),
}

/// Rows in flight between hashing and the duplicate decision: enough to hide DRAM latency.
const PIPELINE: usize = 16;

impl Pipeline {
    fn new() -> Self {
        Self {
            ids: IdSet::with_capacity(START_IDS),
            waiting: VecDeque::with_capacity(PIPELINE + 1),
            spare: Vec::with_capacity(PIPELINE + 1),
        }
    }

    fn candidate(
        &mut self,
        line: u64,
        rec: &RecordView<'_>,
        header: &HeaderMap,
        (id, email): (&str, Option<&str>),
    ) {
        let hash = IdSet::hash(id.as_bytes());
        self.ids.prefetch(hash);
        let mut cells = self.spare.pop().unwrap_or_default();
        cells.fill(rec, header, id, email);
        self.waiting.push_back(Waiting {
            line,
            what: Wait::Candidate { hash, cells },
        });
    }

    fn reject(&mut self, line: u64, reason: RejectReason) {
        self.waiting.push_back(Waiting {
            line,
            what: Wait::Reject(reason),
        });
    }

    fn full(&self) -> bool {
        self.waiting.len() > PIPELINE
    }

    /// Decides the oldest waiting row of file `file_index` and shows it to `visit`; `None`
    /// when no row waits.
    fn decide_oldest<F>(
        &mut self,
        file_index: usize,
        valid: &mut u64,
        visit: &mut F,
    ) -> Option<Flow>
    where
        F: FnMut(Event<'_>) -> Flow,
    {
        let Waiting { line, what } = self.waiting.pop_front()?;
        let reject = |reason| Event::Reject {
            file_index,
            line,
            reason,
        };
        Some(match what {
            Wait::Reject(reason) => visit(reject(reason)),
            Wait::Candidate { hash, cells } => {
                let flow = if self.ids.insert_hash(hash) {
                    let ordinal = *valid;
                    *valid += 1;
                    visit(Event::Row(RowRef {
                        ordinal,
                        file_index,
                        line,
                        customer_id: cells.get(cells.id),
                        email: cells.email.map(|r| cells.get(r)),
                        fields: Fields::Copied(&cells),
                    }))
                } else {
                    visit(reject(RejectReason::DuplicateCustomerId))
                };
                self.spare.push(cells);
                flow
            }
        })
    }
}

/// What the visitor sees.
pub enum Event<'r> {
    /// A valid row with its content: when validating, the first occurrence of its customer id.
    Row(RowRef<'r>),
    /// A rejected row (only when validating): where, and why.
    Reject {
        file_index: usize,
        line: u64,
        reason: RejectReason,
    },
}

/// The visitor's answer: keep going, or pause after this event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Pause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every file was read.
    Done,
    /// The visitor paused; call `run` again to go on.
    Paused,
}

/// Lines the validation rejected, per file, in ascending order: a later read skips
/// exactly these, so it needs no duplicate table of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RejectedLines(pub Vec<Vec<u64>>);

impl RejectedLines {
    /// Reads a rejects report (`file,line,reason` CSV, as the upload writes it).
    pub fn from_report(report: &[u8], files: &[String]) -> Result<Self, String> {
        let mut out = vec![Vec::new(); files.len()];
        let mut sc = CsvScanner::new();
        sc.push(report);
        sc.finish();
        loop {
            match sc.next_step() {
                Step::Record(r) if r.line == 1 || r.is_blank() => {}
                Step::Record(r) => {
                    let (Some(file), Some(line)) = (r.field(0), r.field(1)) else {
                        return Err(format!("rejects report line {}: too few fields", r.line));
                    };
                    let i = files.iter().position(|f| f == file).ok_or_else(|| {
                        format!("rejects report line {}: unknown file {file:?}", r.line)
                    })?;
                    let line: u64 = line
                        .parse()
                        .map_err(|_| format!("rejects report line {}: bad line number", r.line))?;
                    out[i].push(line);
                }
                Step::Bad { line, reason } => {
                    return Err(format!("rejects report line {line}: {}", reason.as_str()));
                }
                Step::NeedMore | Step::End => break,
            }
        }
        for v in &mut out {
            v.sort_unstable();
        }
        Ok(Self(out))
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|v| v.len() as u64).sum()
    }
}

/// How a pass treats rows.
pub enum ScanMode {
    /// The upload's one pass (and the check of a drop): every rule, duplicates decided as each
    /// row is read (its content still in hand), each first occurrence of a valid customer id
    /// handed over with its content, every rejected row reported. The duplicate table starts
    /// small and doubles, so nothing counts the lines first.
    Validate,
    /// Later reads (conversions attribution): skip the lines the validation rejected; every
    /// other row must still pass the rules (it is an error, not a reject, if one does not: the
    /// files changed).
    Reread { rejected: RejectedLines },
}

enum ModeState {
    Validate(Pipeline),
    Reread {
        rejected: RejectedLines,
        cursor: Vec<usize>,
    },
}

/// Ids a validation's duplicate table holds before its first doubling: 9 MB, mostly never
/// touched (and so never resident) for a small audience.
const START_IDS: usize = 1 << 20;

struct OpenFile {
    stream: Box<dyn AsyncRead + Send + Unpin>,
    scanner: CsvScanner,
    header: Option<HeaderMap>,
    eof: bool,
}

/// One pass over a drop's audience files.
pub struct AudienceScan<'a> {
    source: &'a dyn AudienceSource,
    bucket: String,
    prefix: String,
    files: Vec<String>,
    columns: Columns,
    /// ETags pinned by an earlier pass (empty: take what is there and record it).
    pinned: Vec<String>,
    etags: Vec<String>,
    mode: ModeState,
    file_index: usize,
    open: Option<OpenFile>,
    buf: Vec<u8>,
    valid: u64,
    rows: u64,
    limits: AudienceLimits,
}

impl<'a> AudienceScan<'a> {
    /// `pinned` are the files' ETags from an earlier pass (empty: whatever is there).
    pub fn new(
        source: &'a dyn AudienceSource,
        bucket: &str,
        prefix: &str,
        files: &[String],
        columns: &Columns,
        mode: ScanMode,
        pinned: Vec<String>,
    ) -> Self {
        let mode = match mode {
            ScanMode::Validate => ModeState::Validate(Pipeline::new()),
            ScanMode::Reread { rejected } => ModeState::Reread {
                cursor: vec![0; files.len()],
                rejected,
            },
        };
        Self {
            source,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            files: files.to_vec(),
            columns: columns.clone(),
            pinned,
            etags: Vec::new(),
            mode,
            file_index: 0,
            open: None,
            buf: vec![0; CHUNK],
            valid: 0,
            rows: 0,
            limits: AudienceLimits::default(),
        }
    }

    /// Other limits than the defaults.
    pub fn with_limits(mut self, limits: AudienceLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Data rows seen so far (valid and rejected).
    pub fn rows(&self) -> u64 {
        self.rows
    }
    /// Valid rows seen so far.
    pub fn valid(&self) -> u64 {
        self.valid
    }
    /// ETags of the files opened so far, in file order.
    pub fn etags(&self) -> &[String] {
        &self.etags
    }
    pub fn files(&self) -> &[String] {
        &self.files
    }
    /// Memory held by the duplicate table (0 when rereading).
    pub fn dedupe_bytes(&self) -> usize {
        match &self.mode {
            ModeState::Validate(p) => p.ids.memory_bytes(),
            ModeState::Reread { .. } => 0,
        }
    }

    /// Scans until the end or until `visit` pauses.
    pub async fn run<F>(&mut self, visit: &mut F) -> Result<ScanEnd, AudienceError>
    where
        F: FnMut(Event<'_>) -> Flow,
    {
        loop {
            if self.open.is_none() {
                if self.file_index >= self.files.len() {
                    return Ok(ScanEnd::Done);
                }
                self.open = Some(self.open_file(self.file_index).await?);
            }
            let file_index = self.file_index;
            let file_name = &self.files[file_index];
            let Some(f) = self.open.as_mut() else {
                continue;
            };
            // Drain what is buffered.
            loop {
                match f.scanner.next_step() {
                    Step::NeedMore => break,
                    Step::End => {
                        if f.header.is_none() {
                            return Err(AudienceError::Empty {
                                file: file_name.clone(),
                            });
                        }
                        // The file's last rows, decided before the next file is opened (the
                        // scanner answers `End` again when a pause comes first).
                        if let ModeState::Validate(p) = &mut self.mode {
                            while let Some(flow) =
                                p.decide_oldest(file_index, &mut self.valid, visit)
                            {
                                if flow == Flow::Pause {
                                    return Ok(ScanEnd::Paused);
                                }
                            }
                        }
                        self.open = None;
                        self.file_index += 1;
                        break;
                    }
                    Step::Bad { line, reason } => {
                        if f.header.is_none() {
                            return Err(AudienceError::Header {
                                file: file_name.clone(),
                                detail: format!("unreadable header: {}", reason.as_str()),
                            });
                        }
                        if let Some(limit) = count_row(&mut self.rows, &self.limits) {
                            return Err(AudienceError::TooManyRows {
                                file: file_name.clone(),
                                limit,
                            });
                        }
                        let reason = match reason {
                            BadRecord::InvalidUtf8 => RejectReason::InvalidUtf8,
                            BadRecord::StrayQuote => RejectReason::MalformedQuoting,
                            BadRecord::UnterminatedQuote => RejectReason::UnterminatedQuote,
                            BadRecord::TooLong => RejectReason::LineTooLong {
                                max: self.limits.max_line_bytes,
                            },
                            BadRecord::BareCr => RejectReason::BareCr,
                            // Only ever on line 1, which is the header.
                            BadRecord::Utf16 | BadRecord::Utf32 => RejectReason::InvalidUtf8,
                        };
                        match &mut self.mode {
                            ModeState::Validate(p) => {
                                p.reject(line, reason);
                                if p.full()
                                    && p.decide_oldest(file_index, &mut self.valid, visit)
                                        == Some(Flow::Pause)
                                {
                                    return Ok(ScanEnd::Paused);
                                }
                            }
                            ModeState::Reread { rejected, cursor } => {
                                if !is_listed(rejected, cursor, file_index, line) {
                                    return Err(changed(file_name, line, &reason));
                                }
                            }
                        }
                    }
                    Step::Record(rec) => {
                        let Some(header) = &f.header else {
                            let names: Vec<&str> =
                                (0..rec.len()).filter_map(|i| rec.field(i)).collect();
                            let h = HeaderMap::new(&names, &self.columns).map_err(|detail| {
                                AudienceError::Header {
                                    file: file_name.clone(),
                                    detail,
                                }
                            })?;
                            f.header = Some(h);
                            continue;
                        };
                        if let Some(limit) = count_row(&mut self.rows, &self.limits) {
                            return Err(AudienceError::TooManyRows {
                                file: file_name.clone(),
                                limit,
                            });
                        }
                        let line = rec.line;
                        let checked = classify(&rec, header);
                        let event = match (&mut self.mode, checked) {
                            (ModeState::Validate(p), checked) => {
                                match checked {
                                    Ok(cells) => p.candidate(line, &rec, header, cells),
                                    Err(reason) => p.reject(line, reason),
                                }
                                if p.full()
                                    && p.decide_oldest(file_index, &mut self.valid, visit)
                                        == Some(Flow::Pause)
                                {
                                    return Ok(ScanEnd::Paused);
                                }
                                continue;
                            }
                            (ModeState::Reread { rejected, cursor }, checked) => {
                                let listed = is_listed(rejected, cursor, file_index, line);
                                match (listed, checked) {
                                    (true, _) => continue,
                                    (false, Err(reason)) => {
                                        return Err(changed(file_name, line, &reason));
                                    }
                                    (false, Ok((customer_id, email))) => {
                                        let ordinal = self.valid;
                                        self.valid += 1;
                                        Event::Row(RowRef {
                                            ordinal,
                                            file_index,
                                            line,
                                            customer_id,
                                            email,
                                            fields: Fields::Record {
                                                record: &rec,
                                                header,
                                            },
                                        })
                                    }
                                }
                            }
                        };
                        if visit(event) == Flow::Pause {
                            return Ok(ScanEnd::Paused);
                        }
                    }
                }
            }
            // Refill.
            if let Some(f) = self.open.as_mut() {
                if f.eof {
                    f.scanner.finish();
                    continue;
                }
                let n = f
                    .stream
                    .read(&mut self.buf)
                    .await
                    .map_err(|e| read_error(&self.files[file_index], &e))?;
                if n == 0 {
                    f.eof = true;
                    f.scanner.finish();
                } else {
                    f.scanner.push(&self.buf[..n]);
                }
            }
        }
    }

    async fn open_file(&mut self, i: usize) -> Result<OpenFile, AudienceError> {
        let name = &self.files[i];
        let key = format!("{}{}", self.prefix, name);
        let pin = self.pinned.get(i).map(String::as_str);
        let (stream, etag) = self
            .source
            .open(&self.bucket, &key, pin)
            .await
            .map_err(|source| AudienceError::Source {
                file: name.clone(),
                source,
            })?;
        self.etags.push(etag);
        Ok(OpenFile {
            stream: decoded(name, stream, &self.limits),
            scanner: CsvScanner::new().with_max_record(self.limits.max_line_bytes),
            header: None,
            eof: false,
        })
    }
}

/// Counts one more data row; past the limit it says the limit, and the scan ends.
fn count_row(rows: &mut u64, limits: &AudienceLimits) -> Option<u64> {
    *rows += 1;
    (*rows > limits.max_rows).then_some(limits.max_rows)
}

/// Whether the validation rejected `line` (lines arrive in ascending order per file).
fn is_listed(rejected: &RejectedLines, cursor: &mut [usize], file: usize, line: u64) -> bool {
    let (Some(list), Some(c)) = (rejected.0.get(file), cursor.get_mut(file)) else {
        return false;
    };
    while *c < list.len() && list[*c] < line {
        *c += 1;
    }
    *c < list.len() && list[*c] == line
}

fn changed(file: &str, line: u64, reason: &RejectReason) -> AudienceError {
    AudienceError::Changed {
        file: file.to_owned(),
        detail: format!(
            "line {line} was valid when validated and now fails ({reason}): the file changed"
        ),
    }
}

/// Wraps `.gz` files in a (multi-member) gzip decoder; every file's output is capped by
/// `limits` (decompressed bytes, and for `.gz` the ratio to the compressed bytes read).
pub(crate) fn decoded(
    name: &str,
    stream: ByteStream,
    limits: &AudienceLimits,
) -> Box<dyn AsyncRead + Send + Unpin> {
    if name.ends_with(".gz") {
        let read_in = Arc::new(AtomicU64::new(0));
        let counted = Counted {
            inner: stream,
            count: Arc::clone(&read_in),
        };
        let mut d = GzipDecoder::new(BufReader::with_capacity(CHUNK, counted));
        d.multiple_members(true);
        Box::new(Capped {
            inner: d,
            out: 0,
            read_in: Some(read_in),
            limits: *limits,
        })
    } else {
        Box::new(Capped {
            inner: stream,
            out: 0,
            read_in: None,
            limits: *limits,
        })
    }
}

/// Counts the bytes read through it.
struct Counted<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.count.fetch_add(n, Ordering::Relaxed);
        r
    }
}

/// Fails the read once the output passes the limits.
struct Capped<R> {
    inner: R,
    out: u64,
    /// Compressed bytes read so far (for `.gz`).
    read_in: Option<Arc<AtomicU64>>,
    limits: AudienceLimits,
}

impl<R: AsyncRead + Unpin> AsyncRead for Capped<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.out += (buf.filled().len() - before) as u64;
        let cap = if self.out > self.limits.max_file_bytes {
            Some(CapExceeded::Bytes {
                limit: self.limits.max_file_bytes,
            })
        } else {
            self.read_in.as_ref().and_then(|n| {
                let read_in = n.load(Ordering::Relaxed).max(1);
                (self.out > RATIO_GRACE && self.out / read_in > self.limits.max_gzip_ratio).then(
                    || CapExceeded::Ratio {
                        ratio: self.limits.max_gzip_ratio,
                    },
                )
            })
        };
        match cap {
            Some(cap) => Poll::Ready(Err(std::io::Error::other(cap))),
            None => r,
        }
    }
}

fn read_error(file: &str, e: &std::io::Error) -> AudienceError {
    if let Some(cap) = e.get_ref().and_then(|i| i.downcast_ref::<CapExceeded>()) {
        return AudienceError::TooLarge {
            file: file.to_owned(),
            cap: cap.clone(),
        };
    }
    AudienceError::Read {
        file: file.to_owned(),
        detail: if e.kind() == std::io::ErrorKind::InvalidData {
            format!("corrupt data: {e}")
        } else {
            e.to_string()
        },
    }
}

/// The row rules but duplicates, in the order a person would fix them.
fn classify<'r>(
    rec: &RecordView<'r>,
    header: &HeaderMap,
) -> Result<(&'r str, Option<&'r str>), RejectReason> {
    if rec.is_blank() {
        return Err(RejectReason::EmptyRow);
    }
    if rec.len() != header.width {
        return Err(RejectReason::ColumnCount {
            expected: header.width,
            found: rec.len(),
        });
    }
    let id = rec.field(header.customer_id).unwrap_or("");
    check_customer_id(id)?;
    let email = match header.email {
        Some(c) => {
            let e = rec.field(c).unwrap_or("");
            check_email(e)?;
            Some(e)
        }
        None => None,
    };
    // Duplicates are decided after these rules (by the caller), so a malformed row never
    // claims an id a later good row carries.
    Ok((id, email))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::MemSource;
    use std::io::Write;

    fn columns(email: bool) -> Columns {
        Columns {
            customer_id: "customer_id".into(),
            email: email.then(|| "email".into()),
            fields: vec!["first_name".into()],
        }
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[derive(Debug, PartialEq)]
    enum Seen {
        Row(u64, usize, u64, String, String),
        Reject(usize, u64, &'static str),
    }

    async fn scan_all(
        src: &MemSource,
        files: &[&str],
        email: bool,
    ) -> Result<Vec<Seen>, AudienceError> {
        let files: Vec<String> = files.iter().map(|s| s.to_string()).collect();
        let row = |r: &RowRef<'_>| {
            Seen::Row(
                r.ordinal,
                r.file_index,
                r.line,
                r.customer_id.to_owned(),
                r.field(0).to_owned(),
            )
        };
        // Validation: every decision in line order, rows with their content.
        let mut scan = AudienceScan::new(
            src,
            "b",
            "p/",
            &files,
            &columns(email),
            ScanMode::Validate,
            Vec::new(),
        );
        let mut seen = Vec::new();
        let mut rejected = vec![Vec::new(); files.len()];
        let end = scan
            .run(&mut |ev| {
                match ev {
                    Event::Row(r) => seen.push(row(&r)),
                    Event::Reject {
                        file_index,
                        line,
                        reason,
                    } => {
                        rejected[file_index].push(line);
                        seen.push(Seen::Reject(file_index, line, reason.key()));
                    }
                }
                Flow::Continue
            })
            .await?;
        assert_eq!(end, ScanEnd::Done);
        assert_eq!(scan.rows() as usize, seen.len());
        // A later read (pinned to the same versions) skips exactly the rejected lines and
        // gives the same rows.
        let reread = ScanMode::Reread {
            rejected: RejectedLines(rejected),
        };
        let etags = scan.etags().to_vec();
        let mut again = AudienceScan::new(src, "b", "p/", &files, &columns(email), reread, etags);
        let mut rows = Vec::new();
        again
            .run(&mut |ev| {
                if let Event::Row(r) = ev {
                    rows.push(row(&r));
                }
                Flow::Continue
            })
            .await?;
        assert_eq!(again.valid(), scan.valid());
        let valid: Vec<&Seen> = seen.iter().filter(|s| matches!(s, Seen::Row(..))).collect();
        assert_eq!(valid, rows.iter().collect::<Vec<_>>());
        Ok(seen)
    }

    #[tokio::test]
    async fn rows_and_rejects_across_plain_and_gzip_files() {
        let src = MemSource::default();
        src.put(
            "p/a.csv",
            "customer_id,first_name\r\nC1,Ann\r\n,Bob\r\nC2\r\nC1,Dup\r\n\r\n\"C3\",\"Cy, Jr\"\r\n",
        );
        src.put(
            "p/b.csv.gz",
            gz(b"\xEF\xBB\xBFfirst_name,customer_id\nDee,C4\nEve,C2\nFay,C\xFF5\n"),
        );
        let seen = scan_all(&src, &["a.csv", "b.csv.gz"], false).await.unwrap();
        use Seen::*;
        assert_eq!(
            seen,
            [
                Row(0, 0, 2, "C1".into(), "Ann".into()),
                Reject(0, 3, "empty_customer_id"),
                Reject(0, 4, "column_count"),
                Reject(0, 5, "duplicate_customer_id"),
                Reject(0, 6, "empty_row"),
                Row(1, 0, 7, "C3".into(), "Cy, Jr".into()),
                Row(2, 1, 2, "C4".into(), "Dee".into()),
                // C2's first row was malformed, so this one is its first valid row.
                Row(3, 1, 3, "C2".into(), "Eve".into()),
                Reject(1, 4, "invalid_utf8"),
            ]
        );
    }

    #[tokio::test]
    async fn emails_are_checked_when_the_column_is_named() {
        let src = MemSource::default();
        src.put(
            "p/a.csv",
            "customer_id,email,first_name\nC1,ann@x.io,Ann\nC2,nope,Bob\nC3,,Cy\n",
        );
        let seen = scan_all(&src, &["a.csv"], true).await.unwrap();
        assert_eq!(seen[1], Seen::Reject(0, 3, "invalid_email"));
        assert_eq!(seen[2], Seen::Reject(0, 4, "missing_email"));
    }

    /// The validation decides duplicates a few rows after reading them (rows wait, copied,
    /// for their table slot): pausing after any event, even while a file's last rows are
    /// decided, gives the same events in the same file order as a scan in one go.
    #[tokio::test]
    async fn pausing_after_every_event_gives_the_events_of_one_go() {
        let src = MemSource::default();
        let a: String = std::iter::once("customer_id,first_name\n".to_string())
            .chain((0..60).map(|i| match i % 7 {
                0 => ",empty\n".to_string(),
                3 => format!("C{},again\n", i / 2),
                _ => format!("C{i},N{i}\n"),
            }))
            .collect();
        src.put("p/a.csv", a);
        src.put("p/b.csv", "customer_id,first_name\nC1,x\nB1,y\n\"B2,z\n");
        let files = vec!["a.csv".to_string(), "b.csv".to_string()];
        let run = |pause_every: Option<usize>| {
            let src = &src;
            let files = &files;
            async move {
                let mut scan = AudienceScan::new(
                    src,
                    "b",
                    "p/",
                    files,
                    &columns(false),
                    ScanMode::Validate,
                    Vec::new(),
                );
                let mut seen = Vec::new();
                let mut pauses = 0;
                loop {
                    let mut n = 0;
                    let end = scan
                        .run(&mut |ev| {
                            seen.push(match ev {
                                Event::Row(r) => Seen::Row(
                                    r.ordinal,
                                    r.file_index,
                                    r.line,
                                    r.customer_id.to_owned(),
                                    r.field(0).to_owned(),
                                ),
                                Event::Reject {
                                    file_index,
                                    line,
                                    reason,
                                } => Seen::Reject(file_index, line, reason.key()),
                            });
                            n += 1;
                            match pause_every {
                                Some(k) if n % k == 0 => Flow::Pause,
                                _ => Flow::Continue,
                            }
                        })
                        .await
                        .unwrap();
                    if end == ScanEnd::Done {
                        break;
                    }
                    pauses += 1;
                }
                (seen, pauses)
            }
        };
        let (whole, _) = run(None).await;
        assert_eq!(whole.len(), 63);
        assert!(whole.contains(&Seen::Reject(1, 2, "duplicate_customer_id")));
        assert!(whole.contains(&Seen::Reject(1, 4, "unterminated_quote")));
        let lines: Vec<(usize, u64)> = whole
            .iter()
            .map(|s| match s {
                Seen::Row(_, f, l, ..) | Seen::Reject(f, l, _) => (*f, *l),
            })
            .collect();
        assert!(
            lines.windows(2).all(|w| w[0] < w[1]),
            "file order: {lines:?}"
        );
        for k in [1, 2, 17] {
            let (paused, pauses) = run(Some(k)).await;
            assert_eq!(paused, whole, "a pause every {k} events");
            assert!(pauses >= 63 / k, "{pauses} pauses");
        }
    }

    #[tokio::test]
    async fn file_level_errors_name_the_file() {
        let src = MemSource::default();
        src.put("p/a.csv", "id,first_name\n1,x\n");
        src.put("p/empty.csv", "");
        src.put("p/bad.csv.gz", b"not gzip at all".to_vec());
        let e = scan_all(&src, &["a.csv"], false).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.csv line 1: header lacks column(s) \"customer_id\" (2 columns)"
        );
        let e = scan_all(&src, &["empty.csv"], false).await.unwrap_err();
        assert_eq!(e.to_string(), "empty.csv: empty file (no header row)");
        let e = scan_all(&src, &["bad.csv.gz"], false).await.unwrap_err();
        assert!(e.to_string().starts_with("bad.csv.gz: cannot read"), "{e}");
        let e = scan_all(&src, &["missing.csv"], false).await.unwrap_err();
        assert!(e.to_string().contains("missing.csv"), "{e}");
        assert!(!e.is_retryable());
    }

    #[tokio::test]
    async fn a_reread_refuses_a_row_that_was_valid_and_now_fails() {
        let src = MemSource::default();
        src.put("p/a.csv", "customer_id,first_name\nC1,A\nC2,B\n");
        let files = vec!["a.csv".to_string()];
        // Validation listed nothing, yet line 3 is now broken (a file replaced in place, ETag
        // not pinned): the pass stops rather than skip or send it.
        src.put("p/a.csv", "customer_id,first_name\nC1,A\n,B\n");
        let mut scan = AudienceScan::new(
            &src,
            "b",
            "p/",
            &files,
            &columns(false),
            ScanMode::Reread {
                rejected: RejectedLines::default(),
            },
            vec![],
        );
        let e = scan.run(&mut |_| Flow::Continue).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.csv: line 3 was valid when validated and now fails (empty customer id): the file changed"
        );
    }

    #[test]
    fn rejects_reports_read_back() {
        let files = vec!["a.csv".to_string(), "b.csv.gz".to_string()];
        let r = RejectedLines::from_report(
            b"file,line,reason\nb.csv.gz,9,\"x\"\na.csv,4,\"y, z\"\nb.csv.gz,2,\"x\"\n",
            &files,
        )
        .unwrap();
        assert_eq!(r.0, vec![vec![4], vec![2, 9]]);
        assert!(
            RejectedLines::from_report(b"file,line,reason\nc.csv,1,x\n", &files)
                .unwrap_err()
                .contains("unknown file")
        );
    }

    #[tokio::test]
    async fn pause_resumes_after_the_event_and_a_changed_file_is_detected() {
        let src = MemSource::default();
        let body: String = std::iter::once("customer_id,first_name\n".to_string())
            .chain((0..1000).map(|i| format!("C{i},N{i}\n")))
            .collect();
        src.put("p/a.csv", body.clone());
        let files = vec!["a.csv".to_string()];
        let mut scan = AudienceScan::new(
            &src,
            "b",
            "p/",
            &files,
            &columns(false),
            ScanMode::Validate,
            Vec::new(),
        );
        let mut got = Vec::new();
        loop {
            let mut batch = 0;
            let end = scan
                .run(&mut |ev| {
                    if let Event::Row(r) = ev {
                        got.push(r.ordinal);
                    }
                    batch += 1;
                    if batch == 300 {
                        Flow::Pause
                    } else {
                        Flow::Continue
                    }
                })
                .await
                .unwrap();
            if end == ScanEnd::Done {
                break;
            }
        }
        assert_eq!(got, (0..1000).collect::<Vec<u64>>());

        let etags = scan.etags().to_vec();
        src.put("p/a.csv", format!("{body}C1000,N\n"));
        let mut scan = AudienceScan::new(
            &src,
            "b",
            "p/",
            &files,
            &columns(false),
            ScanMode::Validate,
            etags,
        );
        let e = scan.run(&mut |_| Flow::Continue).await.unwrap_err();
        assert!(
            matches!(
                e,
                AudienceError::Source {
                    source: SourceError::Changed { .. },
                    ..
                }
            ),
            "{e}"
        );
    }
}
