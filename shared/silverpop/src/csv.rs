//! The CSV of the bulk import (RFC 4180: `,` between fields, `"` around a field holding `,`,
//! `"`, CR or LF, `""` for a quote inside; records end in LF, CRLF read too), written by the
//! adapter and read by the adapter (the job's error file) and the simulator (the source file).

/// Appends one field, quoted when it must be.
pub(crate) fn write_field(out: &mut Vec<u8>, value: &str) {
    if value
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
    {
        out.push(b'"');
        for b in value.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(value.as_bytes());
    }
}

/// Appends one record (its fields and the LF).
pub(crate) fn write_record<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = &'a str>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_field(out, f);
    }
    out.push(b'\n');
}

/// Why a CSV could not be read (no cell is ever quoted in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CsvError {
    #[error("record {record}: a quoted field is not closed")]
    Unclosed { record: usize },
    #[error("record {record}: text after a closing quote")]
    AfterQuote { record: usize },
}

/// The records of a document, in order. An empty last line is not a record; an empty line
/// elsewhere is a record of one empty field.
pub(crate) struct Records<'a> {
    text: &'a str,
    pos: usize,
    record: usize,
}

impl<'a> Records<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            text,
            pos: 0,
            record: 0,
        }
    }
}

impl Iterator for Records<'_> {
    type Item = Result<Vec<String>, CsvError>;

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.text.as_bytes();
        if self.pos >= bytes.len() {
            return None;
        }
        self.record += 1;
        let record = self.record;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut i = self.pos;
        loop {
            // At the start of a field.
            if bytes.get(i) == Some(&b'"') {
                i += 1;
                loop {
                    let Some(rel) = bytes
                        .get(i..)
                        .and_then(|r| r.iter().position(|&b| b == b'"'))
                    else {
                        self.pos = bytes.len();
                        return Some(Err(CsvError::Unclosed { record }));
                    };
                    field.push_str(self.text.get(i..i + rel).unwrap_or_default());
                    i += rel + 1;
                    if bytes.get(i) == Some(&b'"') {
                        field.push('"');
                        i += 1;
                    } else {
                        break;
                    }
                }
                match bytes.get(i) {
                    None | Some(b',' | b'\n') => {}
                    Some(b'\r') if matches!(bytes.get(i + 1), None | Some(b'\n')) => i += 1,
                    Some(_) => {
                        // Skip to the end of the line so the next record starts cleanly.
                        self.pos = bytes
                            .get(i..)
                            .and_then(|r| r.iter().position(|&b| b == b'\n'))
                            .map_or(bytes.len(), |p| i + p + 1);
                        return Some(Err(CsvError::AfterQuote { record }));
                    }
                }
            } else {
                let end = bytes
                    .get(i..)
                    .and_then(|r| r.iter().position(|&b| b == b',' || b == b'\n'))
                    .map_or(bytes.len(), |p| i + p);
                let mut value = self.text.get(i..end).unwrap_or_default();
                if bytes.get(end) != Some(&b',') {
                    value = value.strip_suffix('\r').unwrap_or(value);
                }
                field.push_str(value);
                i = end;
            }
            fields.push(std::mem::take(&mut field));
            match bytes.get(i) {
                Some(b',') => i += 1,
                Some(b'\n') => {
                    self.pos = i + 1;
                    return Some(Ok(fields));
                }
                _ => {
                    self.pos = bytes.len();
                    return Some(Ok(fields));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Vec<Result<Vec<String>, CsvError>> {
        Records::new(text).collect()
    }

    #[test]
    fn fields_are_quoted_only_when_they_must_be_and_read_back_exactly() {
        let rows: Vec<Vec<&str>> = vec![
            vec!["CustomerID", "First Name"],
            vec!["C-1", "plain"],
            vec!["C-2", "a,b"],
            vec!["C-3", "say \"hi\""],
            vec!["C-4", "two\nlines\r\nhere"],
            vec!["", ""],
            vec!["C-5", " spaced "],
        ];
        let mut out = Vec::new();
        for r in &rows {
            write_record(&mut out, r.iter().copied());
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("CustomerID,First Name\nC-1,plain\nC-2,\"a,b\"\n"));
        let back: Vec<Vec<String>> = Records::new(&text).map(Result::unwrap).collect();
        let want: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.iter().map(|s| s.to_string()).collect())
            .collect();
        assert_eq!(back, want);
    }

    #[test]
    fn crlf_a_missing_last_newline_and_bad_quotes() {
        assert_eq!(
            read("a,b\r\nc,\"d\"\r\ne"),
            vec![
                Ok(vec!["a".to_string(), "b".to_string()]),
                Ok(vec!["c".to_string(), "d".to_string()]),
                Ok(vec!["e".to_string()]),
            ]
        );
        assert_eq!(
            read("\"open,x\n"),
            vec![Err(CsvError::Unclosed { record: 1 })]
        );
        assert_eq!(
            read("\"a\"b,c\nd\n"),
            vec![
                Err(CsvError::AfterQuote { record: 1 }),
                Ok(vec!["d".to_string()])
            ]
        );
        assert!(read("").is_empty());
        assert_eq!(read("\n"), vec![Ok(vec![String::new()])]);
    }
}
