//! The bulk import: `ImportList` and `ImportTable` start a data job over two files of the
//! org's SFTP `upload` folder (the CSV and its mapping); `GetJobStatus` follows it.
//!
//! The reference (A.6.3) documents the requests (MAP_FILE, SOURCE_FILE, FILE_ENCODING UTF-8 or
//! ISO-8859-1), the LIST_IMPORT mapping (LIST_INFO with ACTION, LIST_ID, FILE_TYPE 0 = CSV,
//! HASHEADERS; SYNC_FIELDS; MAPPING/COLUMN with INDEX, NAME, INCLUDE; CONTACT_LISTS), the
//! JOB_ID answer and GetJobStatus (JOB_ID, JOB_STATUS WAITING / RUNNING / COMPLETE / ERROR /
//! CANCELED, JOB_DESCRIPTION, PARAMETERS/PARAMETER NAME + VALUE with LIST_ID). Everything else
//! here is the simulator's choice, UNCERTAIN against a live pod:
//! - *Faults of the request* (errorid 51, like every unclassified refusal): MAP_FILE or
//!   SOURCE_FILE missing, a file not in `upload/` (or no SFTP endpoint attached), a mapping
//!   that does not parse or has the other operation's root, an ACTION other than ADD_ONLY /
//!   UPDATE_ONLY / ADD_AND_UPDATE, a FILE_TYPE other than 0, an unknown LIST_ID, TABLE_ID or
//!   CONTACT_LIST_ID, a SYNC_FIELD other than the database's key (`customer_id_field`) or not
//!   mapped, a FILE_ENCODING other than the two documented.
//! - *The job*: its files are read when ImportList answers (a later rewrite changes nothing
//!   for it). The org runs its import jobs one at a time: a job is WAITING for
//!   [`SilverpopSimConfig::import_wait`](crate::sim::SilverpopSimConfig::import_wait) after
//!   the previous one ends, RUNNING for its rows at
//!   [`import_rows_per_sec`](crate::sim::SilverpopSimConfig::import_rows_per_sec) (real time,
//!   not the simulator's clock: it is processing time), then COMPLETE, and it takes effect at
//!   once when it completes. A source that is not CSV (an unclosed quote), not in its
//!   encoding, or whose header has fewer columns than the mapping's highest INDEX ends the
//!   job in ERROR and changes nothing; so does [`JobEnd`](crate::sim::JobEnd) injected by a
//!   test (or CANCELED).
//! - *Rows* take the per-call operations' semantics: Lists mode (LIST_IMPORT) matches the
//!   contact by the sync field; UPDATE_ONLY refuses an id the database does not have (code
//!   129, "Contact not found in the database", as AddContactToContactList), ADD_ONLY one it
//!   has (122); mapped columns other than the key are stored as the contact's fields; each
//!   contact taken is added once to every CONTACT_LIST. Relational Tables mode (TABLE_IMPORT,
//!   TABLE_INFO/TABLE_ID) checks each row as InsertUpdateRelationalTable does (code
//!   `permanent` with its description) and upserts it by the table's key. A row with fewer
//!   cells than the mapping needs, or an empty sync field, is refused (51).
//! - *Result*: once COMPLETE, PARAMETERS also carry TOTAL_ROWS, TOTAL_VALID, TOTAL_REJECTED
//!   and ERROR_FILE_NAME, a file `import_<JOB_ID>_errors.csv` in the SFTP `download` folder
//!   (written for every completed job): a header `ROW,ERROR_CODE,ERROR,<the source's
//!   columns>` and per refused row its data-row number (1 = the first row after the header),
//!   code, message and the row's cells as read.
//! - An unknown JOB_ID is Fault 51 "Job N not found" (as for CalculateQuery jobs).

use super::super::xml::{Node, cdata, el};
use super::{OpResult, SpFault, State, TableState, need, validate_row};
use crate::csv::{self, Records};
use crate::sim::JobEnd;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What a LIST_IMPORT does with a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    AddOnly,
    UpdateOnly,
    AddAndUpdate,
}

impl Action {
    fn parse(s: &str) -> Result<Self, SpFault> {
        match s.trim().to_ascii_uppercase().as_str() {
            "ADD_ONLY" => Ok(Self::AddOnly),
            "UPDATE_ONLY" => Ok(Self::UpdateOnly),
            "ADD_AND_UPDATE" => Ok(Self::AddAndUpdate),
            other => Err(SpFault::invalid(format!("Unsupported ACTION {other}"))),
        }
    }
}

/// A mapped column: its position in the CSV (0-based) and its name.
#[derive(Debug, Clone)]
struct Mapped {
    at: usize,
    name: String,
}

#[derive(Debug, Clone)]
enum Target {
    List {
        action: Action,
        /// The sync (key) field's position among `columns`.
        sync: usize,
        contact_lists: Vec<i64>,
    },
    Table {
        table_id: i64,
        action: Action,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Utf8,
    Latin1,
}

/// What a job that ended left behind.
#[derive(Debug, Clone)]
struct Finished {
    status: &'static str,
    total: usize,
    valid: usize,
    rejected: usize,
    error_file: Option<String>,
}

/// An import job.
pub(crate) struct ImportJob {
    pub operation: &'static str,
    pub source_file: String,
    pub map_file: String,
    /// LIST_ID (the database) or TABLE_ID.
    target_id: i64,
    target: Target,
    columns: Vec<Mapped>,
    has_headers: bool,
    encoding: Encoding,
    /// The source as read when the job was accepted; dropped once it ran.
    source: Option<Vec<u8>>,
    /// Data rows, as counted when accepted (for its running time).
    pub rows: usize,
    runs_at: Instant,
    ends_at: Instant,
    injected: Option<JobEnd>,
    result: Option<Finished>,
}

impl ImportJob {
    /// JOB_STATUS at `now`, before running it.
    fn status_at(&self, now: Instant) -> &'static str {
        match &self.result {
            Some(f) => f.status,
            None if now < self.runs_at => "WAITING",
            None if now < self.ends_at => "RUNNING",
            None => "COMPLETE",
        }
    }

    /// Its status, and for a job that ended, rows valid and refused.
    pub fn summary(&self) -> (&'static str, Option<(usize, usize)>) {
        match &self.result {
            Some(f) => (f.status, Some((f.valid, f.rejected))),
            None => (self.status_at(Instant::now()), None),
        }
    }
}

/// One refused row of a job: its data-row number, code, message, cells.
struct Refusal {
    row: usize,
    code: String,
    message: String,
    cells: Vec<String>,
}

fn child_text<'a>(n: &'a Node, name: &str) -> Option<&'a str> {
    n.text_of(name).map(str::trim).filter(|t| !t.is_empty())
}

/// Data rows in a CSV: its lines, less the header (quoted line breaks make it an estimate,
/// used only for the job's running time).
fn count_rows(bytes: &[u8], has_headers: bool) -> usize {
    let lines = bytes.iter().filter(|&&b| b == b'\n').count()
        + usize::from(bytes.last().is_some_and(|&b| b != b'\n'));
    lines.saturating_sub(usize::from(has_headers))
}

impl State {
    /// ImportList (`LIST_IMPORT`) or ImportTable (`TABLE_IMPORT`): checks the request and its
    /// files and queues the job; answers its JOB_ID.
    pub fn import(&mut self, op: &Node, operation: &'static str) -> OpResult {
        let map_file = need(op, "MAP_FILE")?.trim().to_owned();
        let source_file = need(op, "SOURCE_FILE")?.trim().to_owned();
        let encoding = match child_text(op, "FILE_ENCODING").map(str::to_ascii_uppercase) {
            None => Encoding::Utf8,
            Some(e) if e == "UTF-8" || e == "UTF8" => Encoding::Utf8,
            Some(e) if e == "ISO-8859-1" => Encoding::Latin1,
            Some(e) => return Err(SpFault::invalid(format!("Unsupported FILE_ENCODING {e}"))),
        };
        let files = self.sftp.clone();
        let read = |name: &str, what: &str| {
            files
                .as_ref()
                .and_then(|f| f.upload(name))
                .ok_or_else(|| SpFault::invalid(format!("{what} {name} not found in upload")))
        };
        let map = read(&map_file, "Map file")?;
        let source = read(&source_file, "Source file")?;
        let map = std::str::from_utf8(&map)
            .ok()
            .and_then(|m| super::super::xml::parse(m).ok())
            .ok_or_else(|| SpFault::invalid(format!("Map file {map_file} is not valid XML")))?;
        let (root, info) = match operation {
            "ImportList" => ("LIST_IMPORT", "LIST_INFO"),
            _ => ("TABLE_IMPORT", "TABLE_INFO"),
        };
        if map.name != root {
            return Err(SpFault::invalid(format!(
                "Map file {map_file}: {operation} takes a {root} mapping"
            )));
        }
        let info = map
            .child(info)
            .ok_or_else(|| SpFault::invalid(format!("Map file {map_file}: {info} is required")))?;
        let action = Action::parse(child_text(info, "ACTION").unwrap_or_default())?;
        if let Some(t) = child_text(info, "FILE_TYPE")
            && t != "0"
        {
            return Err(SpFault::invalid("Only FILE_TYPE 0 (CSV) is supported"));
        }
        let has_headers = child_text(info, "HASHEADERS")
            .is_some_and(|h| !matches!(h.to_ascii_lowercase().as_str(), "false" | "0" | "no"));
        let mut columns = Vec::new();
        for c in map
            .child("MAPPING")
            .into_iter()
            .flat_map(|m| m.children_named("COLUMN"))
        {
            let include = child_text(c, "INCLUDE")
                .is_none_or(|i| !matches!(i.to_ascii_lowercase().as_str(), "false" | "0"));
            let at = child_text(c, "INDEX")
                .and_then(|i| i.parse::<usize>().ok())
                .filter(|i| *i >= 1)
                .ok_or_else(|| SpFault::invalid("MAPPING/COLUMN/INDEX must be 1 or more"))?;
            let name = child_text(c, "NAME")
                .ok_or_else(|| SpFault::invalid("MAPPING/COLUMN/NAME is required"))?;
            if include {
                columns.push(Mapped {
                    at: at - 1,
                    name: name.to_owned(),
                });
            }
        }
        if columns.is_empty() {
            return Err(SpFault::invalid("MAPPING/COLUMN is required"));
        }
        let (target_id, target) = if operation == "ImportList" {
            let list = child_text(info, "LIST_ID")
                .and_then(|l| l.parse::<i64>().ok())
                .ok_or_else(|| SpFault::invalid("LIST_INFO/LIST_ID is required"))?;
            if list != self.config.database_id {
                return Err(SpFault::invalid(format!("List {list} not found")));
            }
            let key = self.config.customer_id_field.clone();
            let sync_names: Vec<&str> = map
                .child("SYNC_FIELDS")
                .into_iter()
                .flat_map(|s| s.children_named("SYNC_FIELD"))
                .filter_map(|f| child_text(f, "NAME"))
                .collect();
            if let Some(other) = sync_names.iter().find(|n| !n.eq_ignore_ascii_case(&key)) {
                return Err(SpFault::invalid(format!(
                    "SYNC_FIELD {other} is not a key field of list {list}"
                )));
            }
            let sync = columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(&key))
                .ok_or_else(|| SpFault::invalid(format!("Key field {key} is not mapped")))?;
            let contact_lists = map
                .child("CONTACT_LISTS")
                .into_iter()
                .flat_map(|c| c.children_named("CONTACT_LIST_ID"))
                .map(|c| {
                    c.text
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| SpFault::invalid("CONTACT_LIST_ID must be numeric"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(unknown) = contact_lists
                .iter()
                .find(|id| !self.contact_lists.iter().any(|l| l.id == **id))
            {
                return Err(SpFault::invalid(format!(
                    "Contact list {unknown} not found"
                )));
            }
            (
                list,
                Target::List {
                    action,
                    sync,
                    contact_lists,
                },
            )
        } else {
            let table_id = child_text(info, "TABLE_ID")
                .and_then(|t| t.parse::<i64>().ok())
                .ok_or_else(|| SpFault::invalid("TABLE_INFO/TABLE_ID is required"))?;
            if !self.tables.iter().any(|t| t.table.id == table_id) {
                return Err(SpFault::invalid(format!("Table {table_id} not found")));
            }
            (table_id, Target::Table { table_id, action })
        };
        let rows = count_rows(&source, has_headers);
        let now = Instant::now();
        let runs_at = self
            .import_queue_end
            .map_or(now, |end| end.max(now))
            .max(now + self.config.import_wait);
        let speed = self.config.import_rows_per_sec.max(1.0);
        let ends_at = runs_at + Duration::from_secs_f64(rows as f64 / speed);
        self.import_queue_end = Some(ends_at);
        let job = self.id();
        let injected = self.next_import_end.take();
        self.imports.insert(
            job,
            ImportJob {
                operation,
                source_file,
                map_file,
                target_id,
                target,
                columns,
                has_headers,
                encoding,
                source: Some(source),
                rows,
                runs_at,
                ends_at,
                injected,
                result: None,
            },
        );
        Ok(el("JOB_ID", job))
    }

    /// Runs every import job whose time has come.
    pub(crate) fn run_due_imports(&mut self) {
        let now = Instant::now();
        let due: Vec<i64> = self
            .imports
            .iter()
            .filter(|(_, j)| j.result.is_none() && j.ends_at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.run_import(id);
        }
    }

    /// GetJobStatus of an import job.
    pub(crate) fn import_status(&mut self, id: i64) -> OpResult {
        self.run_due_imports();
        let job = self
            .imports
            .get(&id)
            .ok_or_else(|| SpFault::invalid(format!("Job {id} not found")))?;
        let status = job.status_at(Instant::now());
        let (target_name, description) = match &job.target {
            Target::List { .. } => (
                "LIST_ID",
                format!("Import of {} into list {}", job.source_file, job.target_id),
            ),
            Target::Table { .. } => (
                "TABLE_ID",
                format!("Import of {} into table {}", job.source_file, job.target_id),
            ),
        };
        let param = |name: &str, value: &dyn std::fmt::Display| {
            format!(
                "<PARAMETER>{}{}</PARAMETER>",
                el("NAME", name),
                el("VALUE", value)
            )
        };
        let mut params = param(target_name, &job.target_id);
        params.push_str(&param("SOURCE_FILE", &job.source_file));
        params.push_str(&param("MAP_FILE", &job.map_file));
        if let Some(f) = job.result.as_ref().filter(|f| f.status == "COMPLETE") {
            params.push_str(&param("TOTAL_ROWS", &f.total));
            params.push_str(&param("TOTAL_VALID", &f.valid));
            params.push_str(&param("TOTAL_REJECTED", &f.rejected));
            if let Some(name) = &f.error_file {
                params.push_str(&param("ERROR_FILE_NAME", name));
            }
        }
        Ok(format!(
            "{}{}<JOB_DESCRIPTION>{}</JOB_DESCRIPTION><PARAMETERS>{params}</PARAMETERS>",
            el("JOB_ID", id),
            el("JOB_STATUS", status),
            cdata(&description)
        ))
    }

    /// Runs a job whose time has come: all its rows, or (a source that cannot be read, an
    /// injected end) none.
    fn run_import(&mut self, id: i64) {
        let Some(job) = self.imports.get_mut(&id) else {
            return;
        };
        let source = job.source.take().unwrap_or_default();
        let ended = |status| Finished {
            status,
            total: 0,
            valid: 0,
            rejected: 0,
            error_file: None,
        };
        if let Some(end) = job.injected {
            job.result = Some(ended(match end {
                JobEnd::Error => "ERROR",
                JobEnd::Canceled => "CANCELED",
            }));
            return;
        }
        let text = match job.encoding {
            Encoding::Utf8 => match String::from_utf8(source) {
                Ok(t) => t,
                Err(_) => {
                    job.result = Some(ended("ERROR"));
                    return;
                }
            },
            Encoding::Latin1 => source.iter().map(|&b| char::from(b)).collect(),
        };
        let Ok(mut records) = Records::new(&text).collect::<Result<Vec<_>, _>>() else {
            job.result = Some(ended("ERROR"));
            return;
        };
        let needed = job.columns.iter().map(|c| c.at + 1).max().unwrap_or(1);
        let header = if job.has_headers && !records.is_empty() {
            let h = records.remove(0);
            if h.len() < needed {
                job.result = Some(ended("ERROR"));
                return;
            }
            h
        } else {
            (1..=needed).map(|i| format!("COLUMN_{i}")).collect()
        };
        let (target, columns) = (job.target.clone(), job.columns.clone());
        let total = records.len();
        let refused = match target {
            Target::List {
                action,
                sync,
                contact_lists,
            } => self.import_list_rows(records, &columns, needed, action, sync, &contact_lists),
            Target::Table { table_id, action } => {
                self.import_table_rows(records, &columns, needed, table_id, action)
            }
        };
        let name = format!("import_{id}_errors.csv");
        let mut file = Vec::new();
        csv::write_record(
            &mut file,
            ["ROW", "ERROR_CODE", "ERROR"]
                .into_iter()
                .chain(header.iter().map(String::as_str)),
        );
        for r in &refused {
            let row = r.row.to_string();
            csv::write_record(
                &mut file,
                [row.as_str(), r.code.as_str(), r.message.as_str()]
                    .into_iter()
                    .chain(r.cells.iter().map(String::as_str)),
            );
        }
        if let Some(files) = &self.sftp {
            files.put_download(&name, file);
        }
        if let Some(job) = self.imports.get_mut(&id) {
            job.result = Some(Finished {
                status: "COMPLETE",
                total,
                valid: total - refused.len(),
                rejected: refused.len(),
                error_file: Some(name),
            });
        }
    }

    /// A LIST_IMPORT's rows; the refused ones.
    fn import_list_rows(
        &mut self,
        records: Vec<Vec<String>>,
        columns: &[Mapped],
        needed: usize,
        action: Action,
        sync: usize,
        contact_lists: &[i64],
    ) -> Vec<Refusal> {
        let key_name = self.config.customer_id_field.clone();
        let mut refused = Vec::new();
        let mut taken: Vec<String> = Vec::with_capacity(records.len());
        for (i, cells) in records.into_iter().enumerate() {
            let mut refuse = |code: &str, message: String, cells: Vec<String>| {
                refused.push(Refusal {
                    row: i + 1,
                    code: code.to_owned(),
                    message,
                    cells,
                });
            };
            if cells.len() < needed {
                let m = format!(
                    "Row has {} columns; the mapping needs {needed}",
                    cells.len()
                );
                refuse("51", m, cells);
                continue;
            }
            let key = columns
                .get(sync)
                .and_then(|c| cells.get(c.at))
                .map(|k| k.trim().to_owned())
                .unwrap_or_default();
            if key.is_empty() {
                refuse("51", format!("Sync field {key_name} is empty"), cells);
                continue;
            }
            let exists = self.is_contact(&key);
            match action {
                Action::UpdateOnly if !exists => {
                    let f = SpFault::contact_not_found();
                    refuse(&f.errorid.to_string(), f.message, cells);
                    continue;
                }
                Action::AddOnly if exists => {
                    refuse(
                        "122",
                        "Recipient is already a member of the list".into(),
                        cells,
                    );
                    continue;
                }
                _ => {}
            }
            let fields: BTreeMap<String, String> = columns
                .iter()
                .enumerate()
                .filter(|(n, _)| *n != sync)
                .map(|(_, c)| (c.name.clone(), cells.get(c.at).cloned().unwrap_or_default()))
                .collect();
            if !exists || !fields.is_empty() {
                let recipient_id = if exists {
                    self.recipient_id(&key)
                } else {
                    self.created.insert(key.clone());
                    self.id()
                };
                self.recipients
                    .entry(key.clone())
                    .or_insert_with(|| crate::sim::SimRecipient {
                        recipient_id,
                        fields: BTreeMap::from([(key_name.clone(), key.clone())]),
                    })
                    .fields
                    .extend(fields);
            }
            taken.push(key);
        }
        taken.sort_unstable();
        taken.dedup();
        for list in self
            .contact_lists
            .iter_mut()
            .filter(|l| contact_lists.contains(&l.id))
        {
            list.members = merge_sorted(std::mem::take(&mut list.members), &taken);
        }
        refused
    }

    /// A TABLE_IMPORT's rows; the refused ones.
    fn import_table_rows(
        &mut self,
        records: Vec<Vec<String>>,
        columns: &[Mapped],
        needed: usize,
        table_id: i64,
        action: Action,
    ) -> Vec<Refusal> {
        let Some(table) = self.tables.iter_mut().find(|t| t.table.id == table_id) else {
            return Vec::new();
        };
        let mut refused = Vec::new();
        for (i, cells) in records.into_iter().enumerate() {
            if cells.len() < needed {
                refused.push(Refusal {
                    row: i + 1,
                    code: "51".into(),
                    message: format!(
                        "Row has {} columns; the mapping needs {needed}",
                        cells.len()
                    ),
                    cells,
                });
                continue;
            }
            let values: BTreeMap<String, String> = columns
                .iter()
                .map(|c| (c.name.clone(), cells.get(c.at).cloned().unwrap_or_default()))
                .collect();
            match check_table_row(table, &values, action) {
                Ok(()) => table.upsert(values),
                Err(message) => refused.push(Refusal {
                    row: i + 1,
                    code: "permanent".into(),
                    message,
                    cells,
                }),
            }
        }
        refused
    }
}

/// InsertUpdateRelationalTable's checks, and the action's on the row's key.
fn check_table_row(
    table: &TableState,
    values: &BTreeMap<String, String>,
    action: Action,
) -> Result<(), String> {
    validate_row(&table.table, values)?;
    let exists = table.contains_key_of(values);
    match action {
        Action::AddOnly if exists => Err("Row already exists".into()),
        Action::UpdateOnly if !exists => Err("Row not found".into()),
        _ => Ok(()),
    }
}

/// The sorted union of two sorted, duplicate-free lists.
fn merge_sorted(a: Vec<String>, b: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut b = b.iter().peekable();
    for x in a {
        while let Some(y) = b.next_if(|y| **y < x) {
            out.push(y.clone());
        }
        if b.peek().is_some_and(|y| **y == x) {
            b.next();
        }
        out.push(x);
    }
    out.extend(b.cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_lists_merge_once_each() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            merge_sorted(s(&["b", "d", "f"]), &s(&["a", "d", "e", "g"])),
            s(&["a", "b", "d", "e", "f", "g"])
        );
        assert_eq!(merge_sorted(Vec::new(), &s(&["a"])), s(&["a"]));
        assert_eq!(merge_sorted(s(&["a"]), &[]), s(&["a"]));
    }

    #[test]
    fn rows_are_counted_without_the_header() {
        assert_eq!(count_rows(b"H\na\nb\n", true), 2);
        assert_eq!(count_rows(b"H\na\nb", true), 2);
        assert_eq!(count_rows(b"a\nb\n", false), 2);
        assert_eq!(count_rows(b"", true), 0);
    }
}
