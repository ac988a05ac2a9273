//! The bulk import in an upload ([`Esp::start_batch_job`](espbridge_core::ports::Esp) and
//! `finish_batch_job`): a batch of at least `bulk_import_threshold` rows, on an account with
//! `sftp` settings, goes as one import job instead of one call per contact (Lists mode) or a
//! few rows per call (Relational Tables mode).
//!
//! Starting a job (reference A.6.3, "Batch file": "upload CSV + mapping XML by SFTP, then
//! `ImportList` (or `ImportTable`) → `JOB_ID`, poll `GetJobStatus`"):
//! 1. the batch's CSV is streamed to `upload/<base>.csv` over SFTP (written as it is sent, one
//!    32 KiB chunk at a time; a header row with the mapping's column names). Lists mode: the
//!    customer-id column (`customer_id_field`) only, as a contact list holds ids. Relational
//!    Tables mode: `ActionID` (the campaign's tag), the customer-id column and the
//!    personalization fields, the columns the per-call route writes;
//! 2. the mapping to `upload/<base>_map.xml` ([`crate::import`]: Lists mode `LIST_IMPORT`,
//!    ACTION UPDATE_ONLY on the database keyed on `customer_id_field`, CONTACT_LISTS = the
//!    campaign's contact list; Relational Tables mode `TABLE_IMPORT`, ADD_AND_UPDATE);
//! 3. `ImportList` / `ImportTable` with MAP_FILE, SOURCE_FILE and FILE_ENCODING UTF-8 (under
//!    the org's request slots, as every call) → `JOB_ID`, the job's reference.
//!
//! `<base>` is deterministic per audience and batch (`espbridge_cl<contact list>_<first
//! ordinal>`, `espbridge_t<table>_<tag>_<first ordinal>`): a batch started twice rewrites the
//! same two files (truncated, never appended) and its second job adds nobody twice (a contact
//! list is a set; the table's key includes ActionID, so ADD_AND_UPDATE replaces the
//! campaign's own rows).
//!
//! Finishing it: GetJobStatus every `import_poll_interval_ms` until COMPLETE (at most
//! `import_timeout_secs`, then a retryable error: the upload records the job, so the next
//! invocation waits for the same job). ERROR or CANCELED is a non-retryable
//! [`EspError::Api`] (code `job_error` / `job_canceled`) naming the job only (the reference
//! gives no cause field and says nothing of retrying; the batch is not imported again behind
//! the marketer's back). Then the job's error file is read through SFTP (`download/<name>`),
//! each row refused by the job becomes, by its row number, either a customer not in the
//! database (Lists mode, as the per-call route counts them: errorid in
//! `contact_not_found_errorids`, or a "not found" / "does not exist" message naming no list)
//! or a row error (code and message, every cell of the row blanked out of the message).
//! Finishing a job that ended before (a continuation after a crash) reads the same status and
//! the same file: the same outcome, no second import.
//!
//! UNCERTAIN (the reference documents none of it): where a job reports its refused rows.
//! This adapter reads GetJobStatus `PARAMETERS`: `ERROR_FILE_NAME` names a CSV in the SFTP
//! `download` folder whose header holds `ROW` (the refused row's position among the source's
//! data rows, 1 for the first row after the header), `ERROR_CODE` and `ERROR`; any other
//! column (an echo of the row's cells) is never kept. No `ERROR_FILE_NAME`: no row was
//! refused. The simulator writes exactly this; a real pod may differ, which a live job shows.

use crate::client::Client;
use crate::config::{AudienceMode, SilverpopConfig};
use crate::csv::{self, Records};
use crate::esp::{ACTION_ID_COLUMN, keys};
use crate::import;
use crate::sftp::{SftpError, SftpTarget, UploadName};
use crate::wire::{self, Fault, JobStatus};
use crate::xml::{Element, Node};
use espbridge_core::EspKind;
use espbridge_core::ports::{AudienceBatch, BatchJob, BatchOutcome, EspError, EspIds, RowError};
use espbridge_esp_kit::AdapterError;
use std::collections::BTreeSet;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, ReadBuf};

const ESP: EspKind = EspKind::Silverpop;

/// The most bytes of a job's error file read (one row per refused row of a batch of at most
/// [`crate::config::MAX_BULK_BATCH`] rows, with the row's cells echoed).
pub const MAX_ERROR_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// The longest one file transfer may take whole (each of its steps has its own deadline).
const TRANSFER_LIMIT: Duration = Duration::from_secs(600);
/// Bytes the CSV source renders ahead of the SFTP writes.
const RENDER_BYTES: usize = 32 * 1024;

/// An account's bulk-import settings, when it has `sftp`.
pub(crate) struct Bulk {
    target: SftpTarget,
    threshold: usize,
    poll: Duration,
    timeout: Duration,
}

impl Bulk {
    /// The bulk route of `config`, if it has SFTP settings.
    pub(crate) fn new(
        config: &SilverpopConfig,
        credentials: &crate::config::SilverpopCredentials,
    ) -> Result<Option<Self>, AdapterError> {
        Ok(config.sftp_target(credentials)?.map(|target| Self {
            target,
            threshold: config.bulk_import_threshold,
            poll: Duration::from_millis(config.import_poll_interval_ms),
            timeout: Duration::from_secs(config.import_timeout_secs),
        }))
    }

    /// Whether `batch` goes as an import job.
    pub(crate) fn takes(&self, batch: &AudienceBatch) -> bool {
        batch.contacts.len() >= self.threshold
    }

    /// Uploads the batch's CSV and mapping and starts the import job.
    pub(crate) async fn start(
        &self,
        client: &Client,
        config: &SilverpopConfig,
        mode: AudienceMode,
        audience: &EspIds,
        batch: &AudienceBatch,
    ) -> Result<BatchJob, EspError> {
        let key = config.customer_id_field.as_str();
        let names = FileNames::of(mode, audience, batch.first_ordinal)?;
        let (shape, mapping, op): (Shape<'_>, Node, fn(&str, &str) -> Node) = match mode {
            AudienceMode::Lists => {
                let list = audience.require(ESP, keys::CONTACT_LIST_ID)?;
                let mapping = import::list_import_mapping(&config.database_id, key, list, &[key]);
                (Shape::Lists, mapping, import::import_list)
            }
            AudienceMode::RelationalTable => {
                let tag = audience.require(ESP, keys::TAG)?;
                let table = audience.require(ESP, keys::TABLE_ID)?;
                let mut columns = vec![ACTION_ID_COLUMN, key];
                columns.extend(batch.field_names.iter().map(String::as_str));
                let mapping = import::table_import_mapping(table, &columns);
                (Shape::Relational { tag }, mapping, import::import_table)
            }
        };
        let mut map_bytes = br#"<?xml version="1.0" encoding="UTF-8"?>"#.to_vec();
        map_bytes.extend(
            mapping
                .to_bytes()
                .map_err(|e| protocol(format!("mapping file: {e}")))?,
        );
        let source = CsvSource::new(batch, key, shape);
        self.transfer(&names.source, source).await?;
        self.transfer(&names.map, &map_bytes[..]).await?;
        let op_name = match mode {
            AudienceMode::Lists => "ImportList",
            AudienceMode::RelationalTable => "ImportTable",
        };
        let r = client
            .call(op_name, op(names.map.as_str(), names.source.as_str()))
            .await?;
        let job = import::job_id(&r)
            .ok_or_else(|| protocol(format!("{op_name} answer has no JOB_ID")))?;
        if job.len() > BatchJob::MAX_REFERENCE || !job.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(protocol(format!("{op_name} answered an unexpected JOB_ID")));
        }
        tracing::info!(
            esp = "silverpop",
            job = job,
            rows = batch.contacts.len(),
            first_ordinal = batch.first_ordinal,
            "import job started"
        );
        Ok(BatchJob {
            reference: job.to_owned(),
            rows: batch.contacts.len() as u64,
        })
    }

    /// Writes `upload/<name>` from `source`, bounded in time.
    async fn transfer<R: AsyncRead + Unpin>(
        &self,
        name: &UploadName,
        source: R,
    ) -> Result<(), EspError> {
        match tokio::time::timeout(TRANSFER_LIMIT, self.target.upload(name, source)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(sftp_error(e)),
            Err(_) => Err(EspError::Transient {
                esp: ESP,
                detail: format!(
                    "SFTP upload of {} took longer than {} s",
                    name.as_str(),
                    TRANSFER_LIMIT.as_secs()
                ),
            }),
        }
    }

    /// Waits for the job to end and reads what it made of the batch's rows.
    pub(crate) async fn finish(
        &self,
        client: &Client,
        config: &SilverpopConfig,
        mode: AudienceMode,
        job: &BatchJob,
    ) -> Result<BatchOutcome, EspError> {
        let status = self.wait(client, &job.reference).await?;
        let refused =
            match import::job_parameter(&status, "ERROR_FILE_NAME").filter(|n| !n.is_empty()) {
                None => Vec::new(),
                Some(name) => {
                    let name = UploadName::parse(name.trim_start_matches("/download/"))
                        .or_else(|_| UploadName::parse(name.trim_start_matches("download/")))
                        .map_err(|_| {
                            protocol(format!(
                                "job {} names an unexpected error file",
                                job.reference
                            ))
                        })?;
                    let bytes = match tokio::time::timeout(
                        TRANSFER_LIMIT,
                        self.target.download(&name, MAX_ERROR_FILE_BYTES),
                    )
                    .await
                    {
                        Ok(r) => r.map_err(sftp_error)?,
                        Err(_) => {
                            return Err(EspError::Transient {
                                esp: ESP,
                                detail: format!(
                                    "SFTP download of {} took longer than {} s",
                                    name.as_str(),
                                    TRANSFER_LIMIT.as_secs()
                                ),
                            });
                        }
                    };
                    read_error_file(&bytes, job.rows).map_err(|detail| {
                        protocol(format!(
                            "job {}'s error file {}: {detail}",
                            job.reference,
                            name.as_str()
                        ))
                    })?
                }
            };
        let mut outcome = BatchOutcome::default();
        for row in refused {
            let fault = Fault {
                errorid: row.code.trim().parse().ok(),
                class: None,
                text: row.reason.clone(),
            };
            if mode == AudienceMode::Lists
                && crate::esp::contact_not_found(&config.contact_not_found_errorids, &fault)
            {
                outcome.not_in_esp += 1;
            } else {
                outcome.row_errors.push(RowError {
                    index: row.index,
                    code: row.code,
                    reason: row.reason,
                });
            }
        }
        outcome.accepted = job
            .rows
            .saturating_sub(outcome.not_in_esp)
            .saturating_sub(outcome.row_errors.len() as u64);
        tracing::info!(
            esp = "silverpop",
            job = %job.reference,
            rows = job.rows,
            not_in_esp = outcome.not_in_esp,
            rejected = outcome.row_errors.len(),
            "import job finished"
        );
        Ok(outcome)
    }

    /// GetJobStatus until COMPLETE: its answer. ERROR and CANCELED end it with a
    /// non-retryable error, the timeout with a retryable one.
    async fn wait(&self, client: &Client, job: &str) -> Result<Element, EspError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let r = client
                .call("GetJobStatus", wire::get_job_status(job))
                .await?;
            match JobStatus::from_result(&r) {
                Some(JobStatus::Complete) => return Ok(r),
                Some(JobStatus::Error) => return Err(job_failed(job, "ERROR", "job_error")),
                Some(JobStatus::Canceled) => {
                    return Err(job_failed(job, "CANCELED", "job_canceled"));
                }
                // WAITING, RUNNING, or a status the reference does not list.
                _ => {}
            }
            if tokio::time::Instant::now() + self.poll > deadline {
                return Err(EspError::Transient {
                    esp: ESP,
                    detail: format!(
                        "import job {job} still runs after {} s (the next attempt waits for it again)",
                        self.timeout.as_secs()
                    ),
                });
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}

fn protocol(detail: String) -> EspError {
    EspError::Protocol { esp: ESP, detail }
}

fn job_failed(job: &str, status: &str, code: &str) -> EspError {
    EspError::Api {
        esp: ESP,
        status: 200,
        code: code.to_owned(),
        text: format!(
            "import job {job} ended {status}; its cause is in Engage (Data Jobs); the batch is \
             not imported again"
        ),
        retryable: false,
    }
}

/// An SFTP failure as the port's error: a wrong host key or login is not retried, a transport
/// failure is. Never carries a byte of a file.
pub(crate) fn sftp_error(e: SftpError) -> EspError {
    match e {
        SftpError::HostKeyMismatch { .. } => EspError::Invalid {
            esp: ESP,
            detail: format!("{e}; check sftp.host_key"),
        },
        SftpError::AuthRefused => EspError::Auth {
            esp: ESP,
            detail: "SFTP login refused".to_owned(),
        },
        SftpError::TooLarge { .. } => protocol(e.to_string()),
        // Transport, a file step, a timeout: another attempt may pass.
        other => EspError::Transient {
            esp: ESP,
            detail: other.to_string(),
        },
    }
}

/// The two files of one batch's import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileNames {
    pub source: UploadName,
    pub map: UploadName,
}

impl FileNames {
    /// Deterministic per audience (contact list, or table and tag) and batch.
    pub(crate) fn of(
        mode: AudienceMode,
        audience: &EspIds,
        first_ordinal: u64,
    ) -> Result<Self, EspError> {
        let base = match mode {
            AudienceMode::Lists => format!(
                "espbridge_cl{}_{first_ordinal}",
                plain(audience.require(ESP, keys::CONTACT_LIST_ID)?)
            ),
            AudienceMode::RelationalTable => format!(
                "espbridge_t{}_{}_{first_ordinal}",
                plain(audience.require(ESP, keys::TABLE_ID)?),
                plain(audience.require(ESP, keys::TAG)?)
            ),
        };
        let name = |suffix: &str| {
            UploadName::parse(&format!("{base}{suffix}"))
                .map_err(|e| protocol(format!("import file name: {e}")))
        };
        Ok(Self {
            source: name(".csv")?,
            map: name("_map.xml")?,
        })
    }
}

/// `s` as a file-name part: letters, digits, `-`, `_`; anything else (or a part over 40
/// characters) is cut short and made unique with a hash of the whole.
fn plain(s: &str) -> String {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if !s.is_empty() && s.len() <= 40 && s.chars().all(ok) {
        return s.to_owned();
    }
    let kept: String = s.chars().filter(|c| ok(*c)).take(24).collect();
    format!("{kept}-{:016x}", fnv1a(s.as_bytes()))
}

/// FNV-1a, 64 bits: stable across builds (the names must be the same after a restart).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What the CSV's rows hold.
#[derive(Debug, Clone, Copy)]
enum Shape<'a> {
    /// The customer id.
    Lists,
    /// ActionID, the customer id, the fields.
    Relational { tag: &'a str },
}

/// The batch's CSV, rendered a few KiB at a time as the SFTP transfer reads it.
struct CsvSource<'a> {
    batch: &'a AudienceBatch,
    key: &'a str,
    shape: Shape<'a>,
    /// The next contact to render; `None` before the header.
    next: Option<usize>,
    buf: Vec<u8>,
    pos: usize,
}

impl<'a> CsvSource<'a> {
    fn new(batch: &'a AudienceBatch, key: &'a str, shape: Shape<'a>) -> Self {
        Self {
            batch,
            key,
            shape,
            next: None,
            buf: Vec::with_capacity(RENDER_BYTES * 2),
            pos: 0,
        }
    }

    /// Renders the header and rows until a chunk's worth is ready (or the batch is done).
    fn render(&mut self) {
        self.buf.clear();
        self.pos = 0;
        let fields = self.batch.field_names.len();
        let mut next = match self.next {
            Some(n) => n,
            None => {
                match self.shape {
                    Shape::Lists => csv::write_record(&mut self.buf, [self.key]),
                    Shape::Relational { .. } => csv::write_record(
                        &mut self.buf,
                        [ACTION_ID_COLUMN, self.key]
                            .into_iter()
                            .chain(self.batch.field_names.iter().map(String::as_str)),
                    ),
                }
                0
            }
        };
        while self.buf.len() < RENDER_BYTES {
            let Some(c) = self.batch.contacts.get(next) else {
                break;
            };
            match self.shape {
                Shape::Lists => csv::write_record(&mut self.buf, [c.customer_id.as_str()]),
                // A contact with fewer fields than named leaves the rest empty (the per-call
                // route leaves them out).
                Shape::Relational { tag } => csv::write_record(
                    &mut self.buf,
                    [tag, c.customer_id.as_str()]
                        .into_iter()
                        .chain((0..fields).map(|i| c.fields.get(i).map_or("", String::as_str))),
                ),
            }
            next += 1;
        }
        self.next = Some(next);
    }
}

impl AsyncRead for CsvSource<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.pos >= this.buf.len() {
            this.render();
        }
        let ready = this.buf.get(this.pos..).unwrap_or_default();
        let n = ready.len().min(out.remaining());
        out.put_slice(ready.get(..n).unwrap_or_default());
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

/// One row an import job refused.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refused {
    /// Its index in the batch.
    index: usize,
    code: String,
    reason: String,
}

/// The refused rows of an error file (see the module docs): by row, once each. A row number
/// outside the batch's `rows` means the file is not this batch's.
fn read_error_file(bytes: &[u8], rows: u64) -> Result<Vec<Refused>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let mut records = Records::new(text);
    let header = match records.next() {
        None => return Ok(Vec::new()),
        Some(h) => h.map_err(|e| e.to_string())?,
    };
    let column = |name: &str| {
        header.iter().position(|h| {
            h.trim()
                .trim_start_matches('\u{feff}')
                .eq_ignore_ascii_case(name)
        })
    };
    let row_at = column("ROW").ok_or("no ROW column")?;
    let (code_at, reason_at) = (column("ERROR_CODE"), column("ERROR"));
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for record in records {
        let record = record.map_err(|e| e.to_string())?;
        if record.iter().all(|c| c.is_empty()) {
            continue;
        }
        let n: u64 = record
            .get(row_at)
            .and_then(|r| r.trim().parse().ok())
            .filter(|n| (1..=rows).contains(n))
            .ok_or_else(|| format!("a ROW that is no row of the batch's {rows}"))?;
        let index = usize::try_from(n - 1).map_err(|_| "ROW out of range".to_owned())?;
        if !seen.insert(index) {
            continue;
        }
        let cell = |at: Option<usize>| at.and_then(|i| record.get(i)).map_or("", |s| s.trim());
        let code = espbridge_core::text::bounded(cell(code_at), 32);
        // Every other cell may echo the row (a customer id, a field): none stays in the text.
        let echoed: Vec<&str> = record
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != code_at && Some(*i) != reason_at && *i != row_at)
            .map(|(_, c)| c.as_str())
            .collect();
        let reason = espbridge_core::text::bounded(&blank_out(cell(reason_at), &echoed), 200);
        out.push(Refused {
            index,
            code: if code.is_empty() {
                "none".to_owned()
            } else {
                code
            },
            reason,
        });
    }
    Ok(out)
}

/// `text` with every whole-word occurrence of a non-empty `cells` value replaced by `<value>`
/// (a word ends at a character that is neither a letter nor a digit).
fn blank_out(text: &str, cells: &[&str]) -> String {
    let mut out = text.to_owned();
    let mut cells: Vec<&str> = cells
        .iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .collect();
    // Longest first, so a value inside another is not blanked first.
    cells.sort_by_key(|c| std::cmp::Reverse(c.len()));
    for cell in cells {
        let mut result = String::with_capacity(out.len());
        let mut rest = out.as_str();
        let mut prev: Option<char> = None;
        while let Some(at) = rest.find(cell) {
            let before = rest.get(..at).unwrap_or_default();
            let left = before.chars().next_back().or(prev);
            let after = rest.get(at + cell.len()..).unwrap_or_default();
            let right = after.chars().next();
            let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
            result.push_str(before);
            if boundary(left) && boundary(right) {
                result.push_str("<value>");
            } else {
                result.push_str(cell);
            }
            prev = cell.chars().next_back();
            rest = after;
        }
        result.push_str(rest);
        out = result;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use espbridge_core::ports::Contact;
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;

    fn batch(n: usize, fields: &[&str]) -> AudienceBatch {
        AudienceBatch {
            first_ordinal: 7,
            field_names: fields
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .into(),
            contacts: (0..n)
                .map(|i| Contact {
                    customer_id: format!("C-{i}"),
                    email: None,
                    fields: fields.iter().map(|f| format!("{f} {i}, \"q\"")).collect(),
                })
                .collect(),
        }
    }

    async fn rendered(source: CsvSource<'_>) -> String {
        let mut s = String::new();
        let mut source = source;
        source.read_to_string(&mut s).await.unwrap();
        s
    }

    #[tokio::test]
    async fn the_csv_is_the_mapping_s_columns_and_every_row_in_order() {
        let b = batch(5_000, &["first_name"]);
        let lists = rendered(CsvSource::new(&b, "CustomerID", Shape::Lists)).await;
        let rows: Vec<Vec<String>> = Records::new(&lists).map(Result::unwrap).collect();
        assert_eq!(rows.len(), 5_001);
        assert_eq!(rows[0], ["CustomerID"]);
        assert_eq!(rows[4_999 + 1], ["C-4999"]);
        assert!(lists.len() > RENDER_BYTES, "rendered in several chunks");

        let rt = rendered(CsvSource::new(
            &b,
            "CustomerID",
            Shape::Relational { tag: "881_A" },
        ))
        .await;
        let rows: Vec<Vec<String>> = Records::new(&rt).map(Result::unwrap).collect();
        assert_eq!(rows[0], ["ActionID", "CustomerID", "first_name"]);
        assert_eq!(rows[3], ["881_A", "C-2", "first_name 2, \"q\""]);
        assert_eq!(rows.len(), 5_001);
        let empty = AudienceBatch {
            first_ordinal: 0,
            field_names: Arc::from(Vec::<String>::new()),
            contacts: Vec::new(),
        };
        assert_eq!(
            rendered(CsvSource::new(&empty, "CustomerID", Shape::Lists)).await,
            "CustomerID\n"
        );
    }

    #[test]
    fn file_names_are_deterministic_per_audience_and_batch() {
        let lists = EspIds::default().with(keys::CONTACT_LIST_ID, "3310042");
        let a = FileNames::of(AudienceMode::Lists, &lists, 100_000).unwrap();
        assert_eq!(a.source.as_str(), "espbridge_cl3310042_100000.csv");
        assert_eq!(a.map.as_str(), "espbridge_cl3310042_100000_map.xml");
        assert_eq!(
            FileNames::of(AudienceMode::Lists, &lists, 100_000).unwrap(),
            a
        );
        let rt = EspIds::default()
            .with(keys::TABLE_ID, "348449")
            .with(keys::TAG, "spring-sale_2026_B");
        let b = FileNames::of(AudienceMode::RelationalTable, &rt, 0).unwrap();
        assert_eq!(
            b.source.as_str(),
            "espbridge_t348449_spring-sale_2026_B_0.csv"
        );
        // An odd or long part is cut short and told apart by a hash.
        let odd = EspIds::default()
            .with(keys::TABLE_ID, "348449")
            .with(keys::TAG, format!("{}/x y", "a".repeat(80)));
        let c = FileNames::of(AudienceMode::RelationalTable, &odd, 0).unwrap();
        assert!(c.source.as_str().len() < 100, "{}", c.source.as_str());
        assert!(FileNames::of(AudienceMode::Lists, &EspIds::default(), 0).is_err());
    }

    #[test]
    fn error_files_give_rows_by_index_without_a_cell_of_the_row() {
        let file = "ROW,ERROR_CODE,ERROR,CustomerID,City\n\
                    3,129,Contact C-3 not found in the database,C-3,Paris\n\
                    1,51,\"Invalid value Paris for City (row C-1)\",C-1,Paris\n\
                    3,129,duplicate listing,C-3,Paris\n";
        let rows = read_error_file(file.as_bytes(), 5).unwrap();
        assert_eq!(
            rows,
            [
                Refused {
                    index: 2,
                    code: "129".into(),
                    reason: "Contact <value> not found in the database".into()
                },
                Refused {
                    index: 0,
                    code: "51".into(),
                    reason: "Invalid value <value> for City (row <value>)".into()
                },
            ]
        );
        assert!(
            read_error_file(b"ROW,ERROR\n6,x\n", 5).is_err(),
            "beyond the batch"
        );
        assert!(read_error_file(b"ERROR\nx\n", 5).is_err(), "no ROW");
        assert!(read_error_file(b"", 5).unwrap().is_empty());
        assert!(
            read_error_file(b"ROW,ERROR_CODE,ERROR\n", 5)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn cells_are_blanked_as_whole_words_only() {
        assert_eq!(blank_out("Invalid Date", &["a", "Date"]), "Invalid <value>");
        assert_eq!(blank_out("id 42 and 421", &["42"]), "id <value> and 421");
        assert_eq!(blank_out("C-1,C-1", &["C-1"]), "<value>,<value>");
        assert_eq!(blank_out("x", &["", " "]), "x");
    }
}
