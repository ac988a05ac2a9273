//! Batch member uploads: the CRLF multipart body, its XML description and the CSV file.

use super::xml::{self, Node};
use base64::Engine as _;

/// Why an upload request is refused before an upload id is issued (HTTP 500 `failed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UploadRequestError {
    #[error("{0}")]
    InvalidParameters(String),
    #[error("{0}")]
    InvalidFile(String),
}

impl UploadRequestError {
    pub fn status(&self) -> &'static str {
        match self {
            Self::InvalidParameters(_) => "INVALID_PARAMETERS",
            Self::InvalidFile(_) => "INVALID_FILE",
        }
    }
}

/// `insertUpload` or `mergeUpload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadMode {
    Insert,
    Merge,
}

/// One `<column>` of the mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Column {
    /// 1-based column of the file; `None` for a constant (`defaultValue`) column.
    pub col_num: Option<usize>,
    pub field: String,
    pub to_replace: bool,
    pub default_value: Option<String>,
}

/// The XML description part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Description {
    pub mode: UploadMode,
    pub file_name: String,
    pub separator: char,
    pub skip_first_line: bool,
    pub criteria: Option<String>,
    pub columns: Vec<Column>,
}

/// A parsed upload request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UploadRequest {
    pub description: Description,
    pub file: Vec<u8>,
}

fn params(text: impl Into<String>) -> UploadRequestError {
    UploadRequestError::InvalidParameters(text.into())
}

/// Parses the multipart body of `insertUpload` / `mergeUpload`.
pub(crate) fn parse_request(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<UploadRequest, UploadRequestError> {
    let boundary = content_type
        .and_then(|ct| {
            ct.split(';')
                .map(str::trim)
                .find_map(|p| p.strip_prefix("boundary="))
        })
        .map(|b| b.trim_matches('"').to_owned())
        .ok_or_else(|| params("multipart/form-data with a boundary is required"))?;
    let parts = split_parts(body, &boundary)?;
    let mut description = None;
    let mut file = None;
    for part in parts {
        match part.name.as_str() {
            "mergeUpload" | "insertUpload" => {
                let text = std::str::from_utf8(&part.body)
                    .map_err(|_| params("the description part is not UTF-8"))?;
                description = Some(parse_description(text)?);
            }
            "inputStream" => {
                let data = if part.base64 {
                    let compact: Vec<u8> = part
                        .body
                        .iter()
                        .copied()
                        .filter(|b| !b.is_ascii_whitespace())
                        .collect();
                    base64::engine::general_purpose::STANDARD
                        .decode(compact)
                        .map_err(|_| UploadRequestError::InvalidFile("invalid base64".into()))?
                } else {
                    part.body
                };
                file = Some(data);
            }
            _ => {}
        }
    }
    let description =
        description.ok_or_else(|| params("mergeUpload or insertUpload part missing"))?;
    let file = file.ok_or_else(|| params("inputStream part missing"))?;
    Ok(UploadRequest { description, file })
}

struct Part {
    name: String,
    base64: bool,
    body: Vec<u8>,
}

/// Splits a multipart body; part headers must end with CRLF CRLF as the API requires.
fn split_parts(body: &[u8], boundary: &str) -> Result<Vec<Part>, UploadRequestError> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut parts = Vec::new();
    let mut positions = Vec::new();
    let mut from = 0;
    while let Some(at) = find(&body[from..], delimiter) {
        positions.push(from + at);
        from += at + delimiter.len();
    }
    if positions.len() < 2 {
        return Err(params("no multipart parts found for the boundary"));
    }
    for pair in positions.windows(2) {
        let start = pair[0] + delimiter.len();
        let raw = &body[start..pair[1]];
        let raw = raw.strip_prefix(b"\r\n").unwrap_or(raw);
        let raw = raw.strip_suffix(b"\r\n").unwrap_or(raw);
        let split = find(raw, b"\r\n\r\n")
            .ok_or_else(|| params("multipart part headers must end with CRLF CRLF"))?;
        let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
        let content = raw[split + 4..].to_vec();
        let mut name = String::new();
        let mut base64 = false;
        for line in headers.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            if key == "content-disposition" {
                if let Some(found) = value
                    .split(';')
                    .map(str::trim)
                    .find_map(|p| p.strip_prefix("name="))
                {
                    name = found.trim_matches('"').to_owned();
                }
            } else if key == "content-transfer-encoding" {
                base64 = value.trim().eq_ignore_ascii_case("base64");
            }
        }
        parts.push(Part {
            name,
            base64,
            body: content,
        });
    }
    Ok(parts)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_bool(text: Option<&str>) -> bool {
    text.is_some_and(|t| t.eq_ignore_ascii_case("true"))
}

fn parse_description(text: &str) -> Result<Description, UploadRequestError> {
    let root = xml::parse(text).map_err(|e| params(e.to_string()))?;
    let mode = match root.name.as_str() {
        "mergeUpload" => UploadMode::Merge,
        "insertUpload" => UploadMode::Insert,
        other => return Err(params(format!("unexpected description element {other}"))),
    };
    let separator = match root.text_of("separator").unwrap_or(",") {
        "tab" | "\t" => '\t',
        "," => ',',
        ";" => ';',
        "|" => '|',
        other => return Err(params(format!("unsupported separator {other}"))),
    };
    let mapping = root
        .child("mapping")
        .ok_or_else(|| params("mapping is required"))?;
    let columns = mapping
        .children_named("column")
        .map(parse_column)
        .collect::<Result<Vec<_>, _>>()?;
    if columns.is_empty() {
        return Err(params("mapping has no column"));
    }
    let criteria = root
        .text_of("criteria")
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    if mode == UploadMode::Merge && criteria.is_none() {
        return Err(params("criteria is required for mergeUpload"));
    }
    Ok(Description {
        mode,
        file_name: root.text_of("fileName").unwrap_or_default().to_owned(),
        separator,
        skip_first_line: parse_bool(root.text_of("skipFirstLine")),
        criteria,
        columns,
    })
}

fn parse_column(node: &Node) -> Result<Column, UploadRequestError> {
    let field = node
        .text_of("fieldName")
        .filter(|f| !f.is_empty())
        .ok_or_else(|| params("column without fieldName"))?
        .to_owned();
    let col_num = match node.text_of("colNum") {
        None => None,
        Some(n) => Some(
            n.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| params(format!("invalid colNum {n}")))?,
        ),
    };
    let default_value = node.text_of("defaultValue").map(str::to_owned);
    if col_num.is_none() && default_value.is_none() {
        return Err(params(format!(
            "column {field} has neither colNum nor defaultValue"
        )));
    }
    Ok(Column {
        col_num,
        field,
        to_replace: parse_bool(node.text_of("toReplace")),
        default_value,
    })
}

/// Splits one CSV line; double quotes protect separators and `""` is a literal quote.
pub(crate) fn split_line(line: &str, separator: char) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == separator && !quoted => fields.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    fields.push(current);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(xml: &str, csv: &str) -> Vec<u8> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(csv);
        format!(
            "--B\r\nContent-Disposition: form-data; name=\"mergeUpload\"\r\nContent-Type: text/xml\r\n\r\n{xml}\r\n--B\r\nContent-Disposition: form-data; name=\"inputStream\"; filename=\"a.csv\"\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--B--\r\n"
        )
        .into_bytes()
    }

    const MERGE: &str = "<mergeUpload><fileName>a.csv</fileName><separator>tab</separator><criteria>CUSTOMER_ID</criteria><mapping><column><colNum>1</colNum><fieldName>CUSTOMER_ID</fieldName></column><column><fieldName>CAMPAIGN_TAG_1</fieldName><defaultValue>c1</defaultValue><toReplace>true</toReplace></column></mapping></mergeUpload>";

    #[test]
    fn parses_a_merge_upload_with_base64_file() {
        let req = parse_request(
            Some("multipart/form-data; boundary=B"),
            &body(MERGE, "7\n8\n"),
        )
        .unwrap();
        assert_eq!(req.file, b"7\n8\n");
        let d = req.description;
        assert_eq!(d.mode, UploadMode::Merge);
        assert_eq!(d.separator, '\t');
        assert_eq!(d.criteria.as_deref(), Some("CUSTOMER_ID"));
        assert_eq!(d.columns.len(), 2);
        assert_eq!(d.columns[1].default_value.as_deref(), Some("c1"));
        assert!(d.columns[1].to_replace);
    }

    #[test]
    fn refuses_lf_only_part_headers_and_missing_criteria() {
        let lf = String::from_utf8(body(MERGE, "7\n"))
            .unwrap()
            .replace("\r\n", "\n");
        let err =
            parse_request(Some("multipart/form-data; boundary=B"), lf.as_bytes()).unwrap_err();
        assert_eq!(err.status(), "INVALID_PARAMETERS");
        let no_criteria = MERGE.replace("<criteria>CUSTOMER_ID</criteria>", "");
        let err = parse_request(
            Some("multipart/form-data; boundary=B"),
            &body(&no_criteria, "7\n"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("criteria"));
    }

    #[test]
    fn splits_quoted_csv_fields() {
        assert_eq!(
            split_line(r#"a,"b,c","d""e""#, ','),
            vec!["a", "b,c", "d\"e"]
        );
        assert_eq!(split_line("1\t\tx", '\t'), vec!["1", "", "x"]);
    }
}
