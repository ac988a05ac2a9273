//! Row rules: which column is which, and whether a record is a usable audience row.

use crate::manifest::Columns;
use std::fmt;

/// Why a row was not sent. The `key` is stable (counted per key in the campaign record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    EmptyRow,
    InvalidUtf8,
    MalformedQuoting,
    UnterminatedQuote,
    LineTooLong { max: usize },
    BareCr,
    ColumnCount { expected: usize, found: usize },
    EmptyCustomerId,
    InvalidCustomerId(&'static str),
    DuplicateCustomerId,
    MissingEmail,
    InvalidEmail(&'static str),
}

impl RejectReason {
    pub fn key(&self) -> &'static str {
        match self {
            RejectReason::EmptyRow => "empty_row",
            RejectReason::InvalidUtf8 => "invalid_utf8",
            RejectReason::MalformedQuoting => "malformed_quoting",
            RejectReason::UnterminatedQuote => "unterminated_quote",
            RejectReason::LineTooLong { .. } => "line_too_long",
            RejectReason::BareCr => "bare_cr",
            RejectReason::ColumnCount { .. } => "column_count",
            RejectReason::EmptyCustomerId => "empty_customer_id",
            RejectReason::InvalidCustomerId(_) => "invalid_customer_id",
            RejectReason::DuplicateCustomerId => "duplicate_customer_id",
            RejectReason::MissingEmail => "missing_email",
            RejectReason::InvalidEmail(_) => "invalid_email",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::EmptyRow => f.write_str("empty row"),
            RejectReason::InvalidUtf8 => f.write_str("invalid UTF-8"),
            RejectReason::MalformedQuoting => f.write_str("malformed quoting"),
            RejectReason::UnterminatedQuote => f.write_str("unterminated quoted field"),
            RejectReason::LineTooLong { max } => write!(f, "line longer than {max} bytes"),
            RejectReason::BareCr => f.write_str("carriage return without line feed"),
            RejectReason::ColumnCount { expected, found } => {
                write!(f, "expected {expected} columns, found {found}")
            }
            RejectReason::EmptyCustomerId => f.write_str("empty customer id"),
            RejectReason::InvalidCustomerId(why) => write!(f, "invalid customer id: {why}"),
            RejectReason::DuplicateCustomerId => {
                f.write_str("duplicate customer id (an earlier row has it)")
            }
            RejectReason::MissingEmail => f.write_str("empty e-mail"),
            RejectReason::InvalidEmail(why) => write!(f, "invalid e-mail: {why}"),
        }
    }
}

/// Where the manifest's columns sit in a file's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMap {
    pub width: usize,
    pub customer_id: usize,
    pub email: Option<usize>,
    pub fields: Vec<usize>,
}

impl HeaderMap {
    /// Maps `columns` onto a header row. The error names the missing columns (the manifest's
    /// names) and positions, never a cell of the row: a file without a header has customer data
    /// on line 1.
    pub fn new(header: &[&str], columns: &Columns) -> Result<Self, String> {
        // A second byte-order mark (a file saved twice) is no part of the first name.
        let clean = |h: &str| h.trim().trim_start_matches('\u{feff}').trim().to_owned();
        let names: Vec<String> = header.iter().map(|h| clean(h)).collect();
        let find = |name: &str| names.iter().position(|h| h == name);
        let wanted: Vec<&str> = std::iter::once(columns.customer_id.as_str())
            .chain(columns.email.as_deref())
            .chain(columns.fields.iter().map(String::as_str))
            .collect();
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|n| find(n).is_none())
            .collect();
        if missing.len() == wanted.len() {
            return Err(format!(
                "does not look like a header ({} fields; expected a column named {})",
                header.len(),
                crate::text::bounded(&format!("{:?}", columns.customer_id), 128)
            ));
        }
        if !missing.is_empty() {
            let names: Vec<String> = missing.iter().map(|n| format!("{n:?}")).collect();
            return Err(crate::text::bounded(
                &format!(
                    "header lacks column(s) {} ({} columns)",
                    names.join(", "),
                    header.len()
                ),
                crate::text::MAX_REASON,
            ));
        }
        for name in &wanted {
            let at: Vec<String> = (0..names.len())
                .filter(|&i| names[i] == *name)
                .map(|i| (i + 1).to_string())
                .collect();
            if at.len() > 1 {
                return Err(crate::text::bounded(
                    &format!(
                        "column {name:?} appears {} times in the header (columns {})",
                        at.len(),
                        at.join(", ")
                    ),
                    crate::text::MAX_REASON,
                ));
            }
        }
        let at = |name: &str| find(name).unwrap_or(0);
        Ok(Self {
            width: header.len(),
            customer_id: at(&columns.customer_id),
            email: columns.email.as_deref().map(at),
            fields: columns.fields.iter().map(|f| at(f)).collect(),
        })
    }
}

/// Longest customer id accepted, in bytes: ESP key fields are short text fields.
pub const MAX_CUSTOMER_ID_BYTES: usize = 255;

pub fn check_customer_id(id: &str) -> Result<(), RejectReason> {
    if id.is_empty() {
        return Err(RejectReason::EmptyCustomerId);
    }
    if id.len() > MAX_CUSTOMER_ID_BYTES {
        return Err(RejectReason::InvalidCustomerId("longer than 255 bytes"));
    }
    let b = id.as_bytes();
    if b[0].is_ascii_whitespace() || b[b.len() - 1].is_ascii_whitespace() {
        return Err(RejectReason::InvalidCustomerId(
            "leading or trailing white space",
        ));
    }
    if b.iter().any(|c| c.is_ascii_control()) {
        return Err(RejectReason::InvalidCustomerId("control character"));
    }
    Ok(())
}

/// A deliberately plain address check: what an ESP import would refuse outright.
pub fn check_email(email: &str) -> Result<(), RejectReason> {
    if email.is_empty() {
        return Err(RejectReason::MissingEmail);
    }
    if email.len() > 254 {
        return Err(RejectReason::InvalidEmail("longer than 254 characters"));
    }
    if email
        .bytes()
        .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
    {
        return Err(RejectReason::InvalidEmail("white space"));
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(RejectReason::InvalidEmail("no @"));
    };
    if local.is_empty() || local.len() > 64 || local.contains('@') {
        return Err(RejectReason::InvalidEmail("bad local part"));
    }
    if !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return Err(RejectReason::InvalidEmail("bad domain"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(email: bool) -> Columns {
        Columns {
            customer_id: "customer_id".into(),
            email: email.then(|| "email".into()),
            fields: vec!["first_name".into()],
        }
    }

    #[test]
    fn header_maps_columns_in_any_order() {
        let h = HeaderMap::new(&["first_name", "email", " customer_id"], &cols(true)).unwrap();
        assert_eq!(h.customer_id, 2);
        assert_eq!(h.email, Some(1));
        assert_eq!(h.fields, [0]);
        assert_eq!(h.width, 3);
    }

    #[test]
    fn missing_columns_are_all_named_and_no_cell_is_echoed() {
        let e = HeaderMap::new(&["customer_id", "mail"], &cols(true)).unwrap_err();
        assert_eq!(
            e,
            "header lacks column(s) \"email\", \"first_name\" (2 columns)"
        );
        // A file without a header: line 1 is a customer's data.
        let e = HeaderMap::new(&["C1", "jane.doe@example.com"], &cols(true)).unwrap_err();
        assert_eq!(
            e,
            "does not look like a header (2 fields; expected a column named \"customer_id\")"
        );
        let e = HeaderMap::new(&["customer_id", "first_name", "customer_id"], &cols(false))
            .unwrap_err();
        assert_eq!(
            e,
            "column \"customer_id\" appears 2 times in the header (columns 1, 3)"
        );
        // A doubled byte-order mark is not part of the name.
        assert!(HeaderMap::new(&["\u{feff}customer_id", "first_name"], &cols(false)).is_ok());
    }

    #[test]
    fn customer_id_rules() {
        assert!(check_customer_id("C-1001").is_ok());
        assert_eq!(check_customer_id(""), Err(RejectReason::EmptyCustomerId));
        assert!(check_customer_id(" C1").is_err());
        assert!(check_customer_id("C\t1").is_err());
        assert!(check_customer_id(&"9".repeat(256)).is_err());
    }

    #[test]
    fn email_rules() {
        assert!(check_email("ann@shop.example").is_ok());
        assert_eq!(check_email(""), Err(RejectReason::MissingEmail));
        for bad in [
            "ann",
            "@x.io",
            "ann@x",
            "ann@.x.io",
            "a b@x.io",
            "ann@x..io",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reason_keys_are_distinct() {
        let all = [
            RejectReason::EmptyRow,
            RejectReason::InvalidUtf8,
            RejectReason::MalformedQuoting,
            RejectReason::UnterminatedQuote,
            RejectReason::LineTooLong { max: 1 },
            RejectReason::BareCr,
            RejectReason::ColumnCount {
                expected: 2,
                found: 1,
            },
            RejectReason::EmptyCustomerId,
            RejectReason::InvalidCustomerId("x"),
            RejectReason::DuplicateCustomerId,
            RejectReason::MissingEmail,
            RejectReason::InvalidEmail("x"),
        ];
        let keys: std::collections::HashSet<_> = all.iter().map(|r| r.key()).collect();
        assert_eq!(keys.len(), all.len());
    }
}
