//! A streaming RFC 4180 record scanner built for throughput.
//!
//! Bytes are pushed in chunks of any size; records are pulled one at a time and borrow the
//! scanner's buffer, so the common row costs one `memchr2` pass to find its end (and any quote),
//! one `memchr` pass for its commas and one UTF-8 check, with no allocation. Rows that hold a
//! quote take a slower path that unescapes into a scratch buffer and may span physical lines.
//!
//! Handled here: UTF-8 BOM (stripped), CRLF and LF endings, quoted fields with `""` escapes and
//! embedded separators or newlines, a last row without a newline. Reported as bad rows, with
//! their line number: invalid UTF-8, a quote in an unquoted field, text after a closing quote, an
//! unterminated quoted field at end of input, a carriage return outside quotes that ends no line
//! (a file with CR-only line ends, as old Mac exports have, is refused on its first line rather
//! than read as one huge row), and a record longer than the maximum (64 KiB by default): its bytes
//! are skipped up to the next line feed without being kept, so the buffer stays bounded whatever
//! the input.

use memchr::{memchr, memchr_iter, memchr2};

/// One step of the scan.
#[derive(Debug)]
pub enum Step<'a> {
    /// A well-formed record.
    Record(RecordView<'a>),
    /// A physical line that is not a well-formed record; the scan goes on after it.
    Bad { line: u64, reason: BadRecord },
    /// Push more bytes (or call [`CsvScanner::finish`]) before the next step.
    NeedMore,
    /// Everything pushed has been scanned and input is finished.
    End,
}

/// Why a record is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRecord {
    InvalidUtf8,
    StrayQuote,
    UnterminatedQuote,
    /// Longer than the scanner's maximum record length.
    TooLong,
    /// A carriage return that ends no line, outside quotes: CR-only line ends.
    BareCr,
    /// The input starts with a UTF-16 byte-order mark.
    Utf16,
    /// The input starts with a UTF-32 byte-order mark.
    Utf32,
}

impl BadRecord {
    pub fn as_str(self) -> &'static str {
        match self {
            BadRecord::InvalidUtf8 => "invalid UTF-8",
            BadRecord::StrayQuote => "malformed quoting",
            BadRecord::UnterminatedQuote => "unterminated quoted field",
            BadRecord::TooLong => "line longer than the maximum line length",
            BadRecord::Utf16 => "encoded as UTF-16 (byte-order mark): save the file as UTF-8",
            BadRecord::Utf32 => "encoded as UTF-32 (byte-order mark): save the file as UTF-8",
            BadRecord::BareCr => {
                "carriage return without line feed (CR-only line ends, as old Mac exports \
                 have: save the file with LF or CRLF line ends)"
            }
        }
    }
}

/// Longest record by default, in bytes.
pub const DEFAULT_MAX_RECORD: usize = 64 * 1024;

/// A record's fields, borrowed from the scanner.
#[derive(Debug)]
pub struct RecordView<'a> {
    /// 1-based physical line where the record starts.
    pub line: u64,
    /// The record's text, checked as UTF-8 once; `bounds` count from `base`.
    text: &'a str,
    base: usize,
    bounds: &'a [(u32, u32)],
}

impl<'a> RecordView<'a> {
    pub fn len(&self) -> usize {
        self.bounds.len()
    }
    pub fn is_empty(&self) -> bool {
        self.bounds.is_empty()
    }
    /// Field `i` as text. Fields end at separators (ASCII), so they lie on character
    /// boundaries of the checked text and no field is checked again.
    pub fn field(&self, i: usize) -> Option<&'a str> {
        let (s, e) = *self.bounds.get(i)?;
        self.text
            .get((s as usize).checked_sub(self.base)?..(e as usize).checked_sub(self.base)?)
    }
    /// True for a record made of one empty field: an empty line.
    pub fn is_blank(&self) -> bool {
        self.bounds.len() == 1 && self.bounds[0].0 == self.bounds[0].1
    }
}

/// The scanner. Feed it with [`push`](Self::push), drain it with [`next`](Self::next).
#[derive(Debug)]
pub struct CsvScanner {
    buf: Vec<u8>,
    pos: usize,
    /// Line number of the next record.
    line: u64,
    eof: bool,
    started: bool,
    bounds: Vec<(u32, u32)>,
    scratch: Vec<u8>,
    max_record: usize,
    /// A record too long to keep: its line and why, while its bytes are dropped up to the next
    /// line feed.
    skipping: Option<(u64, BadRecord)>,
    /// A byte-order mark of another encoding: reported once, then the input is dropped.
    foreign: Option<BadRecord>,
}

impl Default for CsvScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl CsvScanner {
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            line: 1,
            eof: false,
            started: false,
            bounds: Vec::new(),
            scratch: Vec::new(),
            max_record: DEFAULT_MAX_RECORD,
            skipping: None,
            foreign: None,
        }
    }

    /// Records longer than `max` bytes are reported [`BadRecord::TooLong`] and skipped.
    pub fn with_max_record(mut self, max: usize) -> Self {
        self.max_record = max.max(1);
        self
    }

    /// Starts dropping the record at `pos`: it is longer than the maximum.
    fn start_skipping(&mut self) -> Step<'_> {
        let window = &self.buf[self.pos..(self.pos + self.max_record).min(self.buf.len())];
        let bare_cr = memchr_iter(b'\r', window).any(|i| window.get(i + 1) != Some(&b'\n'));
        let reason = if bare_cr {
            BadRecord::BareCr
        } else {
            BadRecord::TooLong
        };
        self.skipping = Some((self.line, reason));
        self.skip()
    }

    /// Drops the skipped record's bytes up to and including the next line feed.
    fn skip(&mut self) -> Step<'_> {
        let Some((line, reason)) = self.skipping else {
            return Step::NeedMore;
        };
        match memchr(b'\n', &self.buf[self.pos..]) {
            Some(i) => self.pos += i + 1,
            None if self.eof => self.pos = self.buf.len(),
            None => {
                self.pos = self.buf.len();
                return Step::NeedMore;
            }
        }
        self.skipping = None;
        self.line = line + 1;
        Step::Bad { line, reason }
    }

    /// Appends input. Consumed bytes are dropped first, so the buffer holds at most one
    /// partial record plus the new chunk.
    pub fn push(&mut self, data: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
        if !self.started && (self.buf.len() >= 4 || self.eof) {
            self.start();
        }
    }

    /// At the first bytes: strips a UTF-8 byte-order mark, notes a UTF-16 or UTF-32 one (the
    /// input is then refused on its first line: read as UTF-8 it would be NULs and garbage).
    fn start(&mut self) {
        self.started = true;
        let b = &self.buf;
        if b.starts_with(b"\xEF\xBB\xBF") {
            self.pos = 3;
        } else if b.starts_with(b"\xFF\xFE\x00\x00") || b.starts_with(b"\x00\x00\xFE\xFF") {
            self.foreign = Some(BadRecord::Utf32);
        } else if b.starts_with(b"\xFF\xFE") || b.starts_with(b"\xFE\xFF") {
            self.foreign = Some(BadRecord::Utf16);
        }
    }

    /// Marks the end of input.
    pub fn finish(&mut self) {
        self.eof = true;
        if !self.started {
            self.start();
        }
    }

    /// Bytes pushed but not yet scanned.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn next_step(&mut self) -> Step<'_> {
        if !self.started {
            return if self.eof { Step::End } else { Step::NeedMore };
        }
        if self.skipping.is_some() {
            return self.skip();
        }
        if let Some(reason) = self.foreign {
            self.pos = self.buf.len();
            if self.line == 1 {
                self.line = 2;
                return Step::Bad { line: 1, reason };
            }
            return if self.eof { Step::End } else { Step::NeedMore };
        }
        let rest = &self.buf[self.pos..];
        if rest.is_empty() {
            return if self.eof { Step::End } else { Step::NeedMore };
        }
        // Fast path: find the line end; if a quote comes first the record needs the slow path.
        match memchr2(b'\n', b'"', rest) {
            Some(i) if rest[i] == b'\n' && i > self.max_record => self.start_skipping(),
            Some(i) if rest[i] == b'\n' => {
                let start = self.pos;
                self.pos += i + 1;
                self.fast_record(start, start + i)
            }
            None if rest.len() > self.max_record => self.start_skipping(),
            None if self.eof => {
                let start = self.pos;
                self.pos = self.buf.len();
                self.fast_record(start, self.buf.len())
            }
            None => Step::NeedMore,
            Some(_) => self.quoted_record(),
        }
    }

    /// A record that has not ended yet: wait for more input, or drop it once it is longer than
    /// the maximum.
    fn need_more(&mut self) -> Step<'_> {
        if self.buf.len() - self.pos > self.max_record {
            self.start_skipping()
        } else {
            Step::NeedMore
        }
    }

    fn fast_record(&mut self, start: usize, mut end: usize) -> Step<'_> {
        let line = self.line;
        self.line += 1;
        if end > start && self.buf[end - 1] == b'\r' {
            end -= 1;
        }
        let bytes = &self.buf[start..end];
        if memchr(b'\r', bytes).is_some() {
            return Step::Bad {
                line,
                reason: BadRecord::BareCr,
            };
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Step::Bad {
                line,
                reason: BadRecord::InvalidUtf8,
            };
        };
        self.bounds.clear();
        let mut s = start;
        for c in memchr_iter(b',', bytes) {
            self.bounds.push((s as u32, (start + c) as u32));
            s = start + c + 1;
        }
        self.bounds.push((s as u32, end as u32));
        Step::Record(RecordView {
            line,
            text,
            base: start,
            bounds: &self.bounds,
        })
    }

    /// RFC 4180 state machine for a record holding quotes. Needs the whole record in the buffer;
    /// returns NeedMore (consuming nothing) when it runs out before the record ends.
    fn quoted_record(&mut self) -> Step<'_> {
        let start = self.pos;
        let buf = &self.buf;
        let mut i = start;
        let mut newlines = 0u64;
        let mut bad: Option<BadRecord> = None;
        self.scratch.clear();
        self.bounds.clear();
        let mut field_start = 0usize;
        let end_of_record;
        loop {
            // At the start of a field.
            if i < buf.len() && buf[i] == b'"' {
                i += 1;
                loop {
                    let Some(q) = memchr(b'"', &buf[i..]) else {
                        if self.eof {
                            // Unterminated: the rest of the input is this broken record.
                            let nl = memchr_iter(b'\n', &buf[i..]).count() as u64;
                            let line = self.line;
                            self.line += newlines + nl + 1;
                            self.pos = buf.len();
                            return Step::Bad {
                                line,
                                reason: BadRecord::UnterminatedQuote,
                            };
                        }
                        return self.need_more();
                    };
                    newlines += memchr_iter(b'\n', &buf[i..i + q]).count() as u64;
                    self.scratch.extend_from_slice(&buf[i..i + q]);
                    i += q + 1;
                    if i < buf.len() && buf[i] == b'"' {
                        self.scratch.push(b'"');
                        i += 1;
                        continue;
                    }
                    if i >= buf.len() && !self.eof {
                        return self.need_more();
                    }
                    break;
                }
                // After the closing quote: separator, line end or end of input.
                match buf.get(i) {
                    Some(b',') => {
                        self.bounds
                            .push((field_start as u32, self.scratch.len() as u32));
                        field_start = self.scratch.len();
                        i += 1;
                        continue;
                    }
                    Some(b'\n') => {
                        end_of_record = i + 1;
                        break;
                    }
                    Some(b'\r') if buf.get(i + 1) == Some(&b'\n') => {
                        end_of_record = i + 2;
                        break;
                    }
                    Some(b'\r') if i + 1 >= buf.len() && !self.eof => return self.need_more(),
                    None => {
                        end_of_record = i;
                        break;
                    }
                    Some(_) => {
                        bad.get_or_insert(BadRecord::StrayQuote);
                        // Resync at the end of this physical line.
                        match memchr(b'\n', &buf[i..]) {
                            Some(n) => {
                                end_of_record = i + n + 1;
                                break;
                            }
                            None if self.eof => {
                                end_of_record = buf.len();
                                break;
                            }
                            None => return self.need_more(),
                        }
                    }
                }
            } else {
                // Unquoted field: up to the next comma or line end; a quote inside is malformed.
                let rest = &buf[i..];
                let stop = rest.iter().position(|&b| b == b',' || b == b'\n');
                let (field_end, after) = match stop {
                    Some(n) => (i + n, Some(rest[n])),
                    None if self.eof => (buf.len(), None),
                    None => return self.need_more(),
                };
                let mut f = &buf[i..field_end];
                if after != Some(b',') && f.last() == Some(&b'\r') {
                    f = &f[..f.len() - 1];
                }
                if memchr(b'"', f).is_some() {
                    bad.get_or_insert(BadRecord::StrayQuote);
                }
                if memchr(b'\r', f).is_some() {
                    bad.get_or_insert(BadRecord::BareCr);
                }
                self.scratch.extend_from_slice(f);
                match after {
                    Some(b',') => {
                        self.bounds
                            .push((field_start as u32, self.scratch.len() as u32));
                        field_start = self.scratch.len();
                        i = field_end + 1;
                    }
                    Some(_) => {
                        end_of_record = field_end + 1;
                        break;
                    }
                    None => {
                        end_of_record = field_end;
                        break;
                    }
                }
            }
        }
        if end_of_record - start > self.max_record {
            // Dropped exactly as when the record arrives in pieces (up to the first line feed
            // after its start), so every pass reads the same rows whatever its read sizes.
            return self.start_skipping();
        }
        self.bounds
            .push((field_start as u32, self.scratch.len() as u32));
        let line = self.line;
        self.line += newlines + 1;
        self.pos = end_of_record;
        if let Some(reason) = bad {
            return Step::Bad { line, reason };
        }
        // Field by field: the scratch holds the fields without separators, so a character
        // split across two fields would pass a check of the whole.
        let scratch = &self.scratch;
        let fields_ok = self
            .bounds
            .iter()
            .all(|&(s, e)| std::str::from_utf8(&scratch[s as usize..e as usize]).is_ok());
        // Valid fields make a valid whole (the check of the whole alone would not do: see above).
        let (true, Ok(text)) = (fields_ok, std::str::from_utf8(scratch)) else {
            return Step::Bad {
                line,
                reason: BadRecord::InvalidUtf8,
            };
        };
        Step::Record(RecordView {
            line,
            text,
            base: 0,
            bounds: &self.bounds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scans `input` pushed in chunks of `chunk` bytes; renders records and bad lines.
    fn scan(input: &[u8], chunk: usize) -> Vec<String> {
        let mut sc = CsvScanner::new();
        let mut out = Vec::new();
        let mut chunks = input.chunks(chunk.max(1));
        loop {
            match sc.next_step() {
                Step::Record(r) => {
                    let fields: Vec<&str> = (0..r.len()).map(|i| r.field(i).unwrap()).collect();
                    out.push(format!("{}:{}", r.line, fields.join("|")));
                }
                Step::Bad { line, reason } => out.push(format!("{line}!{}", reason.as_str())),
                Step::NeedMore => match chunks.next() {
                    Some(c) => sc.push(c),
                    None => sc.finish(),
                },
                Step::End => return out,
            }
        }
    }

    fn all_chunkings(input: &[u8]) -> Vec<String> {
        let whole = scan(input, input.len());
        for chunk in [1, 2, 3, 5, 7, 64] {
            assert_eq!(
                scan(input, chunk),
                whole,
                "chunk size {chunk} changed the result"
            );
        }
        whole
    }

    #[test]
    fn plain_rows_with_lf_crlf_and_no_final_newline() {
        let out = all_chunkings(b"id,name\r\n1,Ann\n2,Bob\r\n3,Cy");
        assert_eq!(out, ["1:id|name", "2:1|Ann", "3:2|Bob", "4:3|Cy"]);
    }

    #[test]
    fn bom_is_stripped() {
        let out = all_chunkings(b"\xEF\xBB\xBFid\n7\n");
        assert_eq!(out, ["1:id", "2:7"]);
    }

    #[test]
    fn quoted_fields_with_escapes_commas_and_newlines() {
        let out = all_chunkings(b"id,note\n1,\"a, \"\"b\"\"\"\n2,\"two\nlines\"\n3,x\n");
        assert_eq!(
            out,
            ["1:id|note", "2:1|a, \"b\"", "3:2|two\nlines", "5:3|x"]
        );
    }

    #[test]
    fn quoted_field_with_crlf_after_it() {
        let out = all_chunkings(b"\"a\",\"b\"\r\n\"c\"\r\n");
        assert_eq!(out, ["1:a|b", "2:c"]);
    }

    #[test]
    fn bad_rows_are_reported_and_the_scan_goes_on() {
        let out = all_chunkings(b"id\n1\xFF\n2\"x\n\"a\"b\n3\n\"open\n4\n");
        assert_eq!(
            out,
            [
                "1:id",
                "2!invalid UTF-8",
                "3!malformed quoting",
                "4!malformed quoting",
                "5:3",
                "6!unterminated quoted field"
            ]
        );
    }

    #[test]
    fn blank_lines_are_records_of_one_empty_field() {
        let mut sc = CsvScanner::new();
        sc.push(b"a\n\nb\n");
        sc.finish();
        let mut blanks = Vec::new();
        loop {
            match sc.next_step() {
                Step::Record(r) => blanks.push((r.line, r.is_blank())),
                Step::End => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(blanks, [(1, false), (2, true), (3, false)]);
    }

    #[test]
    fn a_record_longer_than_the_maximum_is_skipped_without_being_kept() {
        let mut input = b"id\n1\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100));
        input.extend(b"\n\"".iter().chain(std::iter::repeat_n(&b'y', 100)));
        input.extend(b"\"\n2\n");
        for chunk in [1, 7, 64, 1000] {
            let mut sc = CsvScanner::new().with_max_record(32);
            let mut out = Vec::new();
            let mut chunks = input.chunks(chunk);
            loop {
                match sc.next_step() {
                    Step::Record(r) => out.push(format!("{}:{}", r.line, r.field(0).unwrap())),
                    Step::Bad { line, reason } => out.push(format!("{line}!{reason:?}")),
                    Step::NeedMore => match chunks.next() {
                        Some(c) => sc.push(c),
                        None => sc.finish(),
                    },
                    Step::End => break,
                }
                assert!(
                    sc.pending() <= 32 + chunk + 1,
                    "buffer grew: {}",
                    sc.pending()
                );
            }
            assert_eq!(
                out,
                ["1:id", "2:1", "3!TooLong", "4!TooLong", "5:2"],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn cr_only_line_ends_are_refused_on_the_first_line() {
        // Short file: one physical line holding every row.
        let out = all_chunkings(b"id,email\rC1,a@b.example\rC2,c@d.example\r");
        assert_eq!(
            out,
            [
                "1!carriage return without line feed (CR-only line ends, as old Mac exports have: save the file with LF or CRLF line ends)"
            ]
        );
        // Long file: past the maximum, the same reason, not "too long".
        let big: Vec<u8> = b"id\r"
            .iter()
            .chain(b"C1\r".repeat(50_000).iter())
            .copied()
            .collect();
        let mut sc = CsvScanner::new();
        sc.push(&big);
        sc.finish();
        assert!(matches!(
            sc.next_step(),
            Step::Bad {
                line: 1,
                reason: BadRecord::BareCr
            }
        ));
    }

    #[test]
    fn utf16_and_utf32_inputs_are_refused_on_their_first_line() {
        let utf16: Vec<u8> = b"\xFF\xFE"
            .iter()
            .copied()
            .chain("id\n1\n".encode_utf16().flat_map(|u| u.to_le_bytes()))
            .collect();
        assert_eq!(
            all_chunkings(&utf16),
            ["1!encoded as UTF-16 (byte-order mark): save the file as UTF-8"]
        );
        let utf32: Vec<u8> = b"\xFF\xFE\x00\x00"
            .iter()
            .copied()
            .chain("id\n1\n".chars().flat_map(|c| (c as u32).to_le_bytes()))
            .collect();
        assert_eq!(
            all_chunkings(&utf32),
            ["1!encoded as UTF-32 (byte-order mark): save the file as UTF-8"]
        );
    }

    #[test]
    fn empty_input_ends() {
        assert!(all_chunkings(b"").is_empty());
    }
}
