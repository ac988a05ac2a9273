//! Audience drops for the tests: CSV files with known valid ids and known bad rows, and the
//! manifest that names them.

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::Write;

/// A bad row the generator can write, with the reason key the validator counts it under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    EmptyCustomerId,
    ColumnCount,
    /// Repeats the id of the file's first valid row.
    Duplicate,
    /// An id with leading white space.
    PaddedId,
}

impl Bad {
    pub fn key(self) -> &'static str {
        match self {
            Bad::EmptyCustomerId => "empty_customer_id",
            Bad::ColumnCount => "column_count",
            Bad::Duplicate => "duplicate_customer_id",
            Bad::PaddedId => "invalid_customer_id",
        }
    }
}

/// One audience file of a drop.
#[derive(Debug, Clone)]
pub struct AudienceFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// A generated drop: files, the ids that should reach the ESP, and the rejects expected.
#[derive(Debug, Clone, Default)]
pub struct Drop {
    pub files: Vec<AudienceFile>,
    pub valid_ids: Vec<String>,
    /// (file, line, reason key); line 1 is the header.
    pub rejects: Vec<(String, u64, &'static str)>,
    pub data_rows: u64,
    /// Write an `email` column (`<id>@example.org`) and name it in the manifest (Bronto).
    pub emails: bool,
    /// Personalization fields the manifest names (only ESPs and modes that carry them take
    /// them: Silverpop's Relational Tables mode).
    pub fields: Vec<String>,
}

/// The e-mail the generator writes for `id` when [`Drop::emails`] is set.
pub fn email_of(id: &str) -> String {
    format!("{id}@example.org")
}

impl Drop {
    /// Adds a file `name` (gzip when it ends in `.gz`) with `rows` valid rows whose ids start
    /// with `id_prefix`, and `bad` rows written after the given valid-row index.
    pub fn add_file(
        &mut self,
        name: &str,
        id_prefix: &str,
        rows: usize,
        bad: &[(usize, Bad)],
    ) -> anyhow::Result<()> {
        let mut text = String::with_capacity(rows * 24);
        text.push_str(if self.emails {
            "customer_id,email,first_name\n"
        } else {
            "customer_id,first_name\n"
        });
        // The e-mail cell and its separator, when the drop has that column.
        let mail = |id: &str| {
            if self.emails {
                format!(",{}", email_of(id))
            } else {
                String::new()
            }
        };
        let mut line = 1u64;
        let first_id = format!("{id_prefix}0");
        for i in 0..rows {
            let id = format!("{id_prefix}{i}");
            text.push_str(&format!("{id}{},Name{i}\n", mail(&id)));
            line += 1;
            self.valid_ids.push(id);
            self.data_rows += 1;
            for (_, kind) in bad.iter().filter(|(at, _)| *at == i) {
                let row = match kind {
                    Bad::EmptyCustomerId => format!("{},Nobody{i}", mail("nobody")),
                    Bad::ColumnCount => format!("{id_prefix}x{i}{},a,b", mail("x")),
                    Bad::Duplicate => format!("{first_id}{},Again{i}", mail(&first_id)),
                    Bad::PaddedId => format!(" {id_prefix}pad{i}{},Padded", mail("pad")),
                };
                text.push_str(&row);
                text.push('\n');
                line += 1;
                self.data_rows += 1;
                self.rejects.push((name.to_owned(), line, kind.key()));
            }
        }
        let bytes = if name.ends_with(".gz") {
            let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
            gz.write_all(text.as_bytes())?;
            gz.finish()?
        } else {
            text.into_bytes()
        };
        self.files.push(AudienceFile {
            name: name.to_owned(),
            bytes,
        });
        Ok(())
    }

    /// A file with arbitrary content (e.g. a wrong header).
    pub fn add_raw(&mut self, name: &str, text: &str) {
        self.files.push(AudienceFile {
            name: name.to_owned(),
            bytes: text.as_bytes().to_vec(),
        });
    }

    pub fn file_names(&self) -> Vec<String> {
        self.files.iter().map(|f| f.name.clone()).collect()
    }

    pub fn valid_set(&self) -> BTreeSet<String> {
        self.valid_ids.iter().cloned().collect()
    }

    /// A manifest v1 for this drop.
    pub fn manifest(&self, campaign_id: &str, template_id: &str, send_at: &str) -> Value {
        let mut columns = json!({"customer_id": "customer_id"});
        if !self.fields.is_empty() {
            columns["fields"] = json!(self.fields);
        }
        if self.emails {
            columns["email"] = "email".into();
        }
        json!({
            "schema_version": "1",
            "campaign_id": campaign_id,
            "esp": "emarsys",
            "template_id": template_id,
            "send_at": send_at,
            "timezone": "Europe/Berlin",
            "audience": {
                "files": self.file_names(),
                "columns": columns
            }
        })
    }
}

/// Whether a simulator knows `id` as a contact (the simulators' stable-hash rule).
pub fn sim_knows(id: &str, unknown_share: f64) -> bool {
    !espbridge_sim::in_share(id, unknown_share)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_rows_get_their_line_numbers() {
        let mut d = Drop::default();
        d.add_file(
            "a.csv",
            "c",
            3,
            &[(0, Bad::EmptyCustomerId), (2, Bad::Duplicate)],
        )
        .expect("file");
        let text = String::from_utf8(d.files[0].bytes.clone()).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], ",Nobody0");
        assert_eq!(lines[5], "c0,Again2");
        assert_eq!(
            d.rejects,
            vec![
                ("a.csv".to_owned(), 3, "empty_customer_id"),
                ("a.csv".to_owned(), 6, "duplicate_customer_id")
            ]
        );
        assert_eq!(d.valid_ids.len(), 3);
        assert_eq!(d.data_rows, 5);
    }
}
