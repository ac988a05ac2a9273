//! Batch member uploads: the import states, the file checks, and the member table they feed.
//!
//! The member table exists before espbridge: every customer id is a member with an e-mail
//! address unless [`espbridge_sim::in_share`] puts it in `unknown_id_share`. Only members an
//! upload touched are held ([`State::members`]): a merge on a known id materializes it (customer
//! id and a synthesized e-mail) and then applies the row; a merge on an unknown id inserts a
//! member with the file's fields only, so without e-mail (the simulator's reading of an
//! UNCERTAIN point: the reference does not say whether a merge inserts unknown keys).

use super::*;

pub(super) const UPLOAD_STATES: [&str; 4] = ["STORAGE", "VALIDATED", "QUEUED", "IMPORTING"];
pub(super) const FINAL_STATES: [&str; 4] = ["DONE", "DONE WITH ERRORS", "ERROR", "FAILURE"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    Done,
    DoneWithErrors(String),
    Error(String),
    Failure(String),
}

/// One valid file line: `(field, value, replace on merge)`.
pub(super) type Row = Vec<(String, String, bool)>;

pub(super) struct Upload {
    pub(super) id: u64,
    pub(super) mode: UploadMode,
    pub(super) file_name: String,
    pub(super) created_at: Timestamp,
    pub(super) polls: u32,
    pub(super) lines: usize,
    pub(super) outcome: Outcome,
    pub(super) rows: Vec<Row>,
    pub(super) applied: bool,
    /// When status polls (`upload_polls_per_step`) took it to its final state.
    pub(super) polled_final_at: Option<Timestamp>,
}

impl State {
    pub fn fail_next_import(&mut self) {
        self.fail_next_import = true;
    }

    pub(super) fn stage(&self, upload: &Upload, now: Timestamp) -> usize {
        let by_clock = match self.config.upload_step_delay {
            Some(step) if step.is_positive() => {
                let elapsed = now.duration_since(upload.created_at);
                usize::try_from(elapsed.as_nanos() / step.as_nanos()).unwrap_or(0)
            }
            Some(_) => UPLOAD_STATES.len(),
            None => 0,
        };
        let by_polls = match self.config.upload_polls_per_step {
            0 => 0,
            per_step => (upload.polls / per_step) as usize,
        };
        by_clock.max(by_polls).min(UPLOAD_STATES.len())
    }

    pub(super) fn upload_status(
        &self,
        upload: &Upload,
        now: Timestamp,
    ) -> (&'static str, Option<String>) {
        let stage = self.stage(upload, now);
        match (&upload.outcome, stage) {
            (_, 0) => (UPLOAD_STATES[0], None),
            (Outcome::Error(why), _) => ("ERROR", Some(why.clone())),
            (_, s) if s < UPLOAD_STATES.len() => (UPLOAD_STATES[s], None),
            (Outcome::Done, _) => ("DONE", None),
            (Outcome::DoneWithErrors(why), _) => ("DONE WITH ERRORS", Some(why.clone())),
            (Outcome::Failure(why), _) => ("FAILURE", Some(why.clone())),
        }
    }

    /// When the import reached its final state, if it has by `now`'s bookkeeping: by clock
    /// (`upload_step_delay` per state) or by status polls, whichever came first.
    pub(super) fn final_at(&self, upload: &Upload) -> Option<Timestamp> {
        let steps = i32::try_from(UPLOAD_STATES.len()).unwrap_or(i32::MAX);
        let by_clock = match self.config.upload_step_delay {
            Some(step) if step.is_positive() => Some(
                step.checked_mul(steps)
                    .map_or(Timestamp::MAX, |d| plus(upload.created_at, d)),
            ),
            Some(_) => Some(upload.created_at),
            None => None,
        };
        by_clock.into_iter().chain(upload.polled_final_at).min()
    }

    /// Whether `customer_id` is in the account's member table from the start.
    pub(super) fn known_id(&self, customer_id: &str) -> bool {
        !espbridge_sim::in_share(customer_id, self.config.unknown_id_share)
    }

    /// Applies a completed import to the member table, row by row.
    pub(super) fn apply_upload(&mut self, id: u64) {
        let Some(upload) = self.uploads.get_mut(&id) else {
            return;
        };
        if upload.applied {
            return;
        }
        upload.applied = true;
        let mode = upload.mode;
        let rows = std::mem::take(&mut upload.rows);
        let key_field = self.config.customer_id_field.clone();
        for row in rows {
            let Some(key) = row
                .iter()
                .find(|(f, _, _)| *f == key_field)
                .map(|r| r.1.clone())
            else {
                continue;
            };
            if !self.members.contains_key(&key) && self.known_id(&key) {
                let member = BTreeMap::from([
                    (key_field.clone(), key.clone()),
                    (
                        self.config.email_field.clone(),
                        format!("{key}@members.example"),
                    ),
                ]);
                self.members.insert(key.clone(), member);
            }
            match self.members.get_mut(&key) {
                Some(member) if mode == UploadMode::Merge => {
                    for (field, value, replace) in row {
                        if replace && field != key_field {
                            member.insert(field, value);
                        }
                    }
                }
                // An insert leaves an existing member alone.
                Some(_) => {}
                None => {
                    let fields = row.into_iter().map(|(f, v, _)| (f, v)).collect();
                    self.members.insert(key, fields);
                }
            }
        }
    }

    pub fn upload(&mut self, request: Result<UploadRequest, Failure>, now: Timestamp) -> Answer {
        let request = request?;
        if request.file.iter().all(u8::is_ascii_whitespace) {
            return Err(Failure::new(
                "The file is empty",
                "inputStream",
                "INVALID_FILE",
            ));
        }
        if request.file.len() > self.config.max_file_bytes {
            return Err(Failure::new(
                format!(
                    "The file is too large: at most {} bytes are accepted",
                    self.config.max_file_bytes
                ),
                "inputStream",
                "INVALID_FILE",
            ));
        }
        self.tick(now);
        let pending = self
            .uploads
            .values()
            .filter(|u| !FINAL_STATES.contains(&self.upload_status(u, now).0))
            .count();
        if pending >= self.config.max_pending_uploads {
            return Err(Failure::new(
                "Too many uploads are still pending, please wait for them to finish",
                "",
                "MAX_NB_UPLOADS",
            ));
        }
        let (outcome, rows, lines) = self.validate(&request.description, &request.file);
        let outcome = match outcome {
            Outcome::Done | Outcome::DoneWithErrors(_) if self.fail_next_import => {
                self.fail_next_import = false;
                Outcome::Failure("The import of the file failed".into())
            }
            other => other,
        };
        let id = self.next_upload_id;
        self.next_upload_id += 1;
        self.uploads.insert(
            id,
            Upload {
                id,
                mode: request.description.mode,
                file_name: request.description.file_name,
                created_at: now,
                polls: 0,
                lines,
                outcome,
                rows,
                applied: false,
                polled_final_at: None,
            },
        );
        Ok(xml::result("xs:long", &id.to_string()))
    }

    /// The member table's fields: customer id, e-mail, tag fields, the others.
    fn member_fields(&self) -> impl Iterator<Item = &String> {
        [&self.config.customer_id_field, &self.config.email_field]
            .into_iter()
            .chain(self.config.tag_fields.iter())
            .chain(self.config.other_member_fields.iter())
    }

    pub(super) fn known_field(&self, field: &str) -> bool {
        self.member_fields().any(|f| f.eq_ignore_ascii_case(field))
    }

    /// Canonical spelling of a known field.
    pub(super) fn field_name(&self, field: &str) -> String {
        self.member_fields()
            .find(|f| f.eq_ignore_ascii_case(field))
            .cloned()
            .unwrap_or_else(|| field.to_owned())
    }

    pub(super) fn validate(&self, d: &Description, file: &[u8]) -> (Outcome, Vec<Row>, usize) {
        let key = &self.config.customer_id_field;
        let Ok(text) = std::str::from_utf8(file) else {
            return (
                Outcome::Error("The file is not valid UTF-8".into()),
                vec![],
                0,
            );
        };
        let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if d.skip_first_line && !lines.is_empty() {
            lines.remove(0);
        }
        let count = lines.len();
        let error = |why: String| (Outcome::Error(why), vec![], count);
        if let Some(unknown) = d.columns.iter().find(|c| !self.known_field(&c.field)) {
            return error(format!("Unknown field {}", unknown.field));
        }
        if d.mode == UploadMode::Merge
            && !d
                .criteria
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case(key))
        {
            return error(format!("Unsupported merge criteria; expected {key}"));
        }
        if !d.columns.iter().any(|c| c.field.eq_ignore_ascii_case(key)) {
            return error(format!("The key field {key} is not mapped"));
        }
        let mut rows = Vec::new();
        let mut bad = 0usize;
        for line in &lines {
            let cells = split_line(line, d.separator);
            let row: Option<Row> = d
                .columns
                .iter()
                .map(|c| {
                    let value = match (&c.default_value, c.col_num) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(n)) => cells.get(n - 1).map(|v| v.trim().to_owned()),
                        (None, None) => None,
                    }?;
                    Some((self.field_name(&c.field), value, c.to_replace))
                })
                .collect();
            match row {
                Some(row) if row.iter().any(|(f, v, _)| f == key && !v.is_empty()) => {
                    rows.push(row)
                }
                _ => bad += 1,
            }
        }
        let outcome = if bad == 0 {
            Outcome::Done
        } else {
            Outcome::DoneWithErrors(format!("{bad} line(s) rejected"))
        };
        (outcome, rows, lines.len())
    }

    pub fn upload_status_answer(&mut self, id: &str, now: Timestamp) -> Answer {
        let missing = || Failure::new("No flatUpload found!", id, "GET_FLATUPLOAD_FAILED");
        let id: u64 = id.parse().map_err(|_| missing())?;
        let per_step = self.config.upload_polls_per_step;
        let upload = self.uploads.get_mut(&id).ok_or_else(missing)?;
        upload.polls = upload.polls.saturating_add(1);
        if per_step > 0
            && (upload.polls / per_step) as usize >= UPLOAD_STATES.len()
            && upload.polled_final_at.is_none()
        {
            upload.polled_final_at = Some(now);
        }
        self.tick(now);
        let upload = self.uploads.get(&id).ok_or_else(missing)?;
        let (status, details) = self.upload_status(upload, now);
        let mut inner = format!("<uploadStatus><status>{status}</status>");
        if let Some(details) = details {
            inner.push_str(&format!("<details>{}</details>", xml::esc(&details)));
        }
        inner.push_str("</uploadStatus>");
        Ok(xml::success(&inner))
    }

    pub fn last_uploads(&self, now: Timestamp) -> Answer {
        let inner: String = self
            .uploads
            .values()
            .rev()
            .take(20)
            .map(|u| {
                xml::object(
                    "lastUploads",
                    &[
                        ("id", u.id.to_string()),
                        ("source", "API_BATCH_MEMBER".into()),
                        ("status", self.upload_status(u, now).0.into()),
                    ],
                )
            })
            .collect();
        Ok(xml::success(&inner))
    }

    pub fn sim_uploads(&mut self, now: Timestamp) -> Vec<SimUpload> {
        self.tick(now);
        self.uploads
            .values()
            .map(|u| {
                let (status, details) = self.upload_status(u, now);
                SimUpload {
                    id: u.id,
                    mode: u.mode,
                    file_name: u.file_name.clone(),
                    status: status.into(),
                    details,
                    lines: u.lines,
                    created_at: u.created_at,
                }
            })
            .collect()
    }

    pub fn members_with_tag(&mut self, tag: &str, now: Timestamp) -> Vec<String> {
        self.tick(now);
        let fields = &self.config.tag_fields;
        self.members
            .iter()
            .filter(|(_, m)| fields.iter().any(|f| m.get(f).is_some_and(|v| v == tag)))
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub fn members_without_email(&mut self, now: Timestamp) -> Vec<String> {
        self.tick(now);
        let field = &self.config.email_field;
        self.members
            .iter()
            .filter(|(_, m)| m.get(field).is_none_or(String::is_empty))
            .map(|(id, _)| id.clone())
            .collect()
    }

    // ----- segments -----
}
