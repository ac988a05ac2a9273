//! The bulk import (ImportList / ImportTable over SFTP, followed with GetJobStatus) against the
//! simulator on loopback: the adapter speaks the real wire format (XML over HTTP, SSH/SFTP) to
//! the real simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use espbridge_core::ports::{
    AudienceBatch, AudienceRequest, BatchJob, BatchOutcome, Contact, Esp, EspError, EspIds,
};
use espbridge_core::{AccountId, CampaignId, ManualClock};
use espbridge_esp_kit::{BuildContext, Secret};
use espbridge_silverpop::sftp::{HostKey, SftpAuth, SftpTarget, UploadName};
use espbridge_silverpop::sim::{JobEnd, SilverpopSim, SilverpopSimConfig};
use espbridge_silverpop::{
    SftpOptions, SilverpopConfig, SilverpopCredentials, SilverpopEsp, import, keys,
};
use jiff::Timestamp;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const TABLE: i64 = 348449;
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

struct Rig {
    sim: SilverpopSim,
    esp: Arc<SilverpopEsp>,
    clock: ManualClock,
}

fn start() -> Timestamp {
    "2026-06-15T08:00:00Z".parse().unwrap()
}

fn send_at() -> Timestamp {
    "2026-06-15T09:30:00Z".parse().unwrap()
}

/// An org with its SFTP endpoint, `unknown` of the ids not in its database, quick jobs.
fn org(unknown: f64) -> SilverpopSimConfig {
    SilverpopSimConfig {
        unknown_id_share: unknown,
        import_rows_per_sec: 200_000.0,
        import_wait: Duration::from_millis(20),
        ..SilverpopSimConfig::default()
    }
    .with_sftp()
}

/// The adapter's account for `sim`, with its SFTP endpoint (as `sim::account` writes it).
fn esp_config(sim: &SilverpopSim) -> SilverpopConfig {
    let mut config = SilverpopConfig::new(AccountId::parse("sp").unwrap());
    config.http.base_url = Some(espbridge_esp_kit::BaseUrl::parse(&sim.base_url()).unwrap());
    config.database_id = "2740754".into();
    config.relational_table_id = Some(TABLE.to_string());
    config.query_folder_id = Some("77120".into());
    config.http.max_attempts = Some(espbridge_esp_kit::Attempts::new(2));
    config.job_poll_interval_ms = 5;
    config.import_poll_interval_ms = 10;
    config.import_timeout_secs = 60;
    let access = sim.sftp_access().unwrap();
    config.sftp = Some(SftpOptions {
        host: access.host,
        port: access.port,
        host_key: access.host_key,
        step_timeout_secs: 20,
    });
    config
}

fn build(config: SilverpopConfig, clock: &ManualClock) -> Arc<SilverpopEsp> {
    let creds = SilverpopCredentials::new("espbridge", "sim-password");
    let ctx = BuildContext::in_memory(Arc::new(clock.clone()));
    Arc::new(SilverpopEsp::new(config, creds, &ctx).unwrap())
}

async fn rig_with(sim_config: SilverpopSimConfig, tweak: impl FnOnce(&mut SilverpopConfig)) -> Rig {
    let clock = ManualClock::new(start());
    let sim = SilverpopSim::start(sim_config, Arc::new(clock.clone()))
        .await
        .unwrap();
    let mut config = esp_config(&sim);
    tweak(&mut config);
    let esp = build(config, &clock);
    Rig { sim, esp, clock }
}

/// Customer ids `cust-<from>` … `cust-<to - 1>`.
fn customers(from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| format!("cust-{i:05}")).collect()
}

fn batch_of(
    first: u64,
    ids: &[String],
    fields: &[&str],
    value: impl Fn(usize) -> Vec<String>,
) -> AudienceBatch {
    AudienceBatch {
        first_ordinal: first,
        field_names: fields
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .into(),
        contacts: ids
            .iter()
            .enumerate()
            .map(|(i, id)| Contact {
                customer_id: id.clone(),
                email: None,
                fields: value(i),
            })
            .collect(),
    }
}

fn ids_only(first: u64, ids: &[String]) -> AudienceBatch {
    batch_of(first, ids, &[], |_| Vec::new())
}

/// The ids of `ids` the simulator's database has, sorted.
fn known(sim: &SilverpopSim, ids: &[String]) -> Vec<String> {
    let mut k: Vec<String> = ids.iter().filter(|id| sim.knows(id)).cloned().collect();
    k.sort();
    k
}

/// Request bodies the simulator received that carry `operation`.
fn calls(sim: &SilverpopSim, operation: &str) -> usize {
    let (open, empty) = (format!("<{operation}>"), format!("<{operation}/>"));
    sim.requests()
        .iter()
        .filter(|q| {
            q.body
                .as_ref()
                .and_then(|b| b.as_str())
                .is_some_and(|b| b.contains(&open) || b.contains(&empty))
        })
        .count()
}

async fn lists_audience(r: &Rig, campaign: &CampaignId) -> EspIds {
    r.esp
        .create_audience(&AudienceRequest::new(campaign, None, send_at()))
        .await
        .unwrap()
}

async fn run_job(r: &Rig, audience: &EspIds, batch: &AudienceBatch) -> (BatchJob, BatchOutcome) {
    let job = r
        .esp
        .start_batch_job(audience, batch)
        .await
        .unwrap()
        .expect("a batch over the threshold goes as a job");
    let out = r.esp.finish_batch_job(audience, &job).await.unwrap();
    (job, out)
}

#[tokio::test]
async fn a_bulk_lists_upload_of_12000_rows_adds_exactly_the_known_contacts() {
    let r = rig_with(org(0.1), |_| {}).await;
    let campaign = CampaignId::parse("701").unwrap();
    let audience = lists_audience(&r, &campaign).await;
    let ids = customers(0, 12_000);
    let want = known(&r.sim, &ids);
    let unknown = (ids.len() - want.len()) as u64;
    assert!(unknown > 800, "a useful share is unknown ({unknown})");

    let (job, out) = run_job(&r, &audience, &ids_only(0, &ids)).await;

    assert_eq!(job.rows, 12_000);
    assert_eq!(out.accepted, want.len() as u64);
    assert_eq!(out.not_in_esp, unknown);
    assert!(out.row_errors.is_empty(), "{:?}", &out.row_errors[..3]);
    assert_eq!(r.sim.contact_list("espbridge_701").unwrap().members, want);
    // One import job; no call per contact; no contact created.
    assert_eq!(calls(&r.sim, "ImportList"), 1);
    assert_eq!(calls(&r.sim, "AddContactToContactList"), 0);
    assert_eq!(r.sim.import_job_count(), 1);
    assert!(r.sim.created_contacts().is_empty());
    assert!(r.sim.recipients().is_empty());
    // The files, named after the contact list and the batch: the CSV of the key column, the
    // LIST_IMPORT mapping onto the campaign's contact list.
    let list = audience.get(keys::CONTACT_LIST_ID).unwrap();
    let sftp = r.sim.sftp().unwrap();
    let source = format!("espbridge_cl{list}_0.csv");
    let map = format!("espbridge_cl{list}_0_map.xml");
    assert_eq!(sftp.file_names(), [source.clone(), map.clone()]);
    let csv = String::from_utf8(sftp.file(&source).unwrap()).unwrap();
    assert!(
        csv.starts_with("CustomerID\ncust-00000\ncust-00001\n"),
        "{}",
        &csv[..40]
    );
    assert_eq!(csv.lines().count(), 12_001);
    let mapping = espbridge_xml::parse(&sftp.file(&map).unwrap()).unwrap();
    assert_eq!(mapping.name, "LIST_IMPORT");
    let info = mapping.child("LIST_INFO").unwrap();
    assert_eq!(info.text_of("ACTION"), Some("UPDATE_ONLY"));
    assert_eq!(
        mapping
            .child("CONTACT_LISTS")
            .unwrap()
            .text_of("CONTACT_LIST_ID"),
        Some(list)
    );
    // The session went back to the org.
    assert_eq!(calls(&r.sim, "Logout"), r.sim.logins());
    // The mailing goes to exactly those contacts.
    let options = serde_json::Value::Null;
    let req = espbridge_core::ports::SendRequest {
        campaign_id: &campaign,
        variant: None,
        template_id: "410233",
        send_at: send_at(),
        timezone: None,
        audience: &audience,
        options: &options,
        headers: None,
    };
    r.esp.schedule_send(&req).await.unwrap();
    r.clock.set(send_at() + jiff::SignedDuration::from_mins(1));
    assert_eq!(r.sim.mailings()[0].recipients.as_deref(), Some(&want[..]));
}

#[tokio::test]
async fn a_bulk_relational_upload_of_12000_rows_writes_exactly_its_rows() {
    let r = rig_with(org(0.1), |_| {}).await;
    let campaign = CampaignId::parse("42").unwrap();
    let options = serde_json::json!({"mode": "relational_table"});
    let audience = r
        .esp
        .create_audience(&AudienceRequest::new(&campaign, None, send_at()).with_options(&options))
        .await
        .unwrap();
    let ids = customers(0, 12_000);
    let bad = |i: usize| i % 997 == 5;
    let tricky = "email, \"quoted\"\nline";
    let b = batch_of(0, &ids, &["SendDate", "Channel"], |i| {
        let date = if bad(i) { "not-a-date" } else { "06/15/2026" };
        vec![date.to_owned(), tricky.to_owned()]
    });

    let (_, out) = run_job(&r, &audience, &b).await;

    let bad_rows: Vec<usize> = (0..ids.len()).filter(|i| bad(*i)).collect();
    assert_eq!(
        out.row_errors.iter().map(|e| e.index).collect::<Vec<_>>(),
        bad_rows
    );
    assert!(
        out.row_errors
            .iter()
            .all(|e| e.code == "permanent" && e.reason == "Invalid Date in column: SendDate")
    );
    assert_eq!(out.accepted, (ids.len() - bad_rows.len()) as u64);
    assert_eq!(out.not_in_esp, 0, "counted from the query's size");
    let rows = r.sim.table_rows(TABLE);
    assert_eq!(rows.len(), ids.len() - bad_rows.len());
    assert_eq!(rows[0]["ActionID"], "42");
    assert_eq!(rows[0]["CustomerID"], "cust-00000");
    assert_eq!(rows[0]["Channel"], tricky, "quoted cells arrive intact");
    assert_eq!(calls(&r.sim, "ImportTable"), 1);
    assert_eq!(calls(&r.sim, "InsertUpdateRelationalTable"), 0);
    // The query counts the rows whose customer is a contact.
    let valid: Vec<String> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| !bad(*i))
        .map(|(_, id)| id.clone())
        .collect();
    let done = r
        .esp
        .finish_audience(&campaign, None, &audience)
        .await
        .unwrap();
    assert_eq!(done.members, Some(known(&r.sim, &valid).len() as u64));
}

#[tokio::test]
async fn a_small_audience_still_goes_per_call() {
    let r = rig_with(org(0.0), |_| {}).await;
    assert_eq!(r.esp.max_batch(), 100_000);
    let campaign = CampaignId::parse("703").unwrap();
    let audience = lists_audience(&r, &campaign).await;
    let ids = customers(0, 40);
    let b = ids_only(0, &ids);

    assert!(
        r.esp
            .start_batch_job(&audience, &b)
            .await
            .unwrap()
            .is_none()
    );
    let out = r.esp.upload_batch(&audience, &b).await.unwrap();

    assert_eq!(out.accepted, 40);
    assert_eq!(calls(&r.sim, "AddContactToContactList"), 40);
    assert_eq!(r.sim.import_job_count(), 0);
    assert!(r.sim.sftp().unwrap().file_names().is_empty());
    // The threshold is the account's; at 40 rows the batch goes as a job.
    let r2 = rig_with(org(0.0), |c| c.bulk_import_threshold = 40).await;
    let audience = lists_audience(&r2, &campaign).await;
    assert!(
        r2.esp
            .start_batch_job(&audience, &b)
            .await
            .unwrap()
            .is_some()
    );
    // Without SFTP settings, nothing goes as a job and batches stay `batch_size`.
    let r3 = rig_with(org(0.0), |c| c.sftp = None).await;
    assert_eq!(r3.esp.max_batch(), 1_000);
    let audience = lists_audience(&r3, &campaign).await;
    let big = ids_only(0, &customers(0, 12_000));
    assert!(
        r3.esp
            .start_batch_job(&audience, &big)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn finishing_a_finished_job_again_gives_the_same_outcome_without_a_second_import() {
    let r = rig_with(org(0.1), |_| {}).await;
    let campaign = CampaignId::parse("704").unwrap();
    let audience = lists_audience(&r, &campaign).await;
    let ids = customers(100_000, 106_000);
    let b = ids_only(100_000, &ids);
    let (job, first) = run_job(&r, &audience, &b).await;
    assert!(first.not_in_esp > 0);

    // A continuation after a crash finishes the recorded job: same outcome, no new import.
    let again = r.esp.finish_batch_job(&audience, &job).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(r.sim.import_job_count(), 1);
    assert_eq!(calls(&r.sim, "ImportList"), 1);

    // A batch started twice (the record was not saved in time): the same two files are
    // rewritten, a second job runs, and nobody is in the list twice.
    let (job2, second) = run_job(&r, &audience, &b).await;
    assert_ne!(job2.reference, job.reference);
    assert_eq!(second, first);
    assert_eq!(r.sim.import_job_count(), 2);
    assert_eq!(r.sim.sftp().unwrap().file_names().len(), 2);
    assert_eq!(
        r.sim.contact_list("espbridge_704").unwrap().members,
        known(&r.sim, &ids)
    );
}

#[tokio::test]
async fn a_host_key_mismatch_is_refused_before_any_credential_is_sent() {
    let impostor = russh::keys::PrivateKey::from(
        russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&[1; 32]),
    );
    let line = impostor.public_key().to_openssh().unwrap();
    let r = rig_with(org(0.0), |c| {
        if let Some(s) = c.sftp.as_mut() {
            s.host_key = line;
        }
    })
    .await;
    let audience = lists_audience(&r, &CampaignId::parse("705").unwrap()).await;
    let ids = customers(0, 6_000);

    let err = r
        .esp
        .start_batch_job(&audience, &ids_only(0, &ids))
        .await
        .unwrap_err();

    assert!(matches!(err, EspError::Invalid { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("host key mismatch") && text.contains("sftp.host_key"),
        "{text}"
    );
    let sftp = r.sim.sftp().unwrap();
    assert_eq!(sftp.login_attempts(), 0, "no password was offered");
    assert!(sftp.file_names().is_empty());
    assert_eq!(calls(&r.sim, "ImportList"), 0);
    assert!(ids.iter().all(|id| !text.contains(id.as_str())));
}

#[tokio::test]
async fn a_refused_sftp_login_is_an_auth_error() {
    let mut sim_config = org(0.0);
    if let Some(s) = sim_config.sftp.as_mut() {
        s.password = Some("another-password".into());
    }
    let r = rig_with(sim_config, |_| {}).await;
    let audience = lists_audience(&r, &CampaignId::parse("706").unwrap()).await;
    let err = r
        .esp
        .start_batch_job(&audience, &ids_only(0, &customers(0, 6_000)))
        .await
        .unwrap_err();
    assert!(matches!(err, EspError::Auth { .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert!(!err.to_string().contains("sim-password"));
    assert_eq!(r.sim.sftp().unwrap().login_attempts(), 1);
}

#[tokio::test]
async fn a_failed_or_canceled_job_is_a_typed_error_and_changes_nothing() {
    let r = rig_with(org(0.0), |_| {}).await;
    let audience = lists_audience(&r, &CampaignId::parse("707").unwrap()).await;
    let ids = customers(0, 6_000);
    for (end, code) in [
        (JobEnd::Error, "job_error"),
        (JobEnd::Canceled, "job_canceled"),
    ] {
        r.sim.end_next_import(end);
        let job = r
            .esp
            .start_batch_job(&audience, &ids_only(0, &ids))
            .await
            .unwrap()
            .unwrap();
        let err = r.esp.finish_batch_job(&audience, &job).await.unwrap_err();
        match &err {
            EspError::Api {
                code: c, retryable, ..
            } => assert_eq!((c.as_str(), *retryable), (code, false)),
            other => panic!("{other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains(&job.reference), "{text}");
        assert!(ids.iter().all(|id| !text.contains(id.as_str())));
    }
    assert!(
        r.sim
            .contact_list("espbridge_707")
            .unwrap()
            .members
            .is_empty()
    );
    let statuses: Vec<String> = r.sim.import_jobs().into_iter().map(|j| j.status).collect();
    assert_eq!(statuses, ["ERROR", "CANCELED"]);
}

#[tokio::test]
async fn a_refusal_s_message_never_carries_a_cell_of_its_row() {
    let r = rig_with(org(0.0), |_| {}).await;
    let audience = lists_audience(&r, &CampaignId::parse("711").unwrap()).await;
    let ids = customers(0, 6_000);
    let (job, out) = run_job(&r, &audience, &ids_only(0, &ids)).await;
    assert_eq!(out.accepted, 6_000);
    // A pod whose error file echoes the row into its messages.
    let name = r.sim.import_jobs()[0].job_id;
    let name = format!("import_{name}_errors.csv");
    let sftp = r.sim.sftp().unwrap();
    sftp.put_download(
        &name,
        concat!(
            "ROW,ERROR_CODE,ERROR,CustomerID,City\n",
            "1,129,Contact cust-00000 not found,cust-00000,Paris\n",
            "5,77,\"Bad value 'Lyon' for cust-00004, row 5\",cust-00004,Lyon\n",
        )
        .as_bytes()
        .to_vec(),
    );
    let out = r.esp.finish_batch_job(&audience, &job).await.unwrap();
    assert_eq!((out.accepted, out.not_in_esp), (5_998, 1));
    assert_eq!(out.row_errors.len(), 1);
    assert_eq!(out.row_errors[0].index, 4);
    assert_eq!(out.row_errors[0].code, "77");
    assert_eq!(
        out.row_errors[0].reason,
        "Bad value '<value>' for <value>, row 5"
    );
    // A file that is not this batch's is a protocol error that names no customer.
    sftp.put_download(&name, b"ROW,ERROR\n6001,cust-00001 refused\n".to_vec());
    let err = r.esp.finish_batch_job(&audience, &job).await.unwrap_err();
    assert!(matches!(err, EspError::Protocol { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(ids.iter().all(|id| !text.contains(id.as_str())), "{text}");
}

#[tokio::test]
async fn a_job_outlasting_the_wait_is_retryable_and_the_next_attempt_finishes_it() {
    let sim_config = SilverpopSimConfig {
        import_rows_per_sec: 3_000.0,
        ..org(0.2)
    };
    let r = rig_with(sim_config, |c| c.import_timeout_secs = 1).await;
    let audience = lists_audience(&r, &CampaignId::parse("708").unwrap()).await;
    let ids = customers(0, 6_000);
    let job = r
        .esp
        .start_batch_job(&audience, &ids_only(0, &ids))
        .await
        .unwrap()
        .unwrap();

    let err = r.esp.finish_batch_job(&audience, &job).await.unwrap_err();
    assert!(matches!(err, EspError::Transient { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(ids.iter().all(|id| !err.to_string().contains(id.as_str())));

    // The next invocation (another client of the same account) waits for the same job.
    let next = build(esp_config(&r.sim), &r.clock);
    let out = next.finish_batch_job(&audience, &job).await.unwrap();
    let want = known(&r.sim, &ids);
    assert_eq!(out.accepted, want.len() as u64);
    assert_eq!(out.not_in_esp, (ids.len() - want.len()) as u64);
    assert_eq!(r.sim.import_job_count(), 1);
}

#[tokio::test]
async fn jobs_of_one_org_run_one_at_a_time_through_waiting_and_running() {
    let sim_config = SilverpopSimConfig {
        import_rows_per_sec: 10_000.0,
        import_wait: Duration::from_millis(300),
        ..org(0.0)
    };
    let r = rig_with(sim_config, |_| {}).await;
    let a = lists_audience(&r, &CampaignId::parse("709").unwrap()).await;
    let b = lists_audience(&r, &CampaignId::parse("710").unwrap()).await;
    let ids = customers(0, 6_000);
    let first = r
        .esp
        .start_batch_job(&a, &ids_only(0, &ids))
        .await
        .unwrap()
        .unwrap();
    let second = r
        .esp
        .start_batch_job(&b, &ids_only(0, &ids))
        .await
        .unwrap()
        .unwrap();
    let status = |job: &BatchJob| {
        r.sim
            .import_jobs()
            .into_iter()
            .find(|j| j.job_id.to_string() == job.reference)
            .unwrap()
            .status
    };
    assert_eq!(status(&first), "WAITING");
    let mut seen = BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while status(&second) != "COMPLETE" && std::time::Instant::now() < deadline {
        let s = (status(&first), status(&second));
        if s.0 == "RUNNING" {
            assert_eq!(s.1, "WAITING", "the second waits for the first");
        }
        seen.insert(s.0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        seen.contains("WAITING") && seen.contains("RUNNING"),
        "{seen:?}"
    );
    assert_eq!(status(&first), "COMPLETE");
    assert_eq!(status(&second), "COMPLETE");
}

// ----- the wire: recorded payloads and faults, spoken raw -----

struct Raw {
    http: reqwest::Client,
    sim: SilverpopSim,
}

impl Raw {
    async fn new() -> Self {
        let clock = ManualClock::new(start());
        let sim = SilverpopSim::start(org(0.0), Arc::new(clock))
            .await
            .unwrap();
        Self {
            http: reqwest::Client::new(),
            sim,
        }
    }

    async fn post(
        &self,
        session: Option<&str>,
        body: String,
        form: bool,
    ) -> espbridge_xml::Element {
        let url = match session {
            Some(s) => format!("{};jsessionid={s}", self.sim.endpoint()),
            None => self.sim.endpoint(),
        };
        let ct = if form {
            "application/x-www-form-urlencoded"
        } else {
            "text/xml;charset=UTF-8"
        };
        let resp = self
            .http
            .post(url)
            .header("Content-Type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        espbridge_xml::parse(&resp.bytes().await.unwrap()).unwrap()
    }

    async fn call(&self, session: &str, op: &str) -> espbridge_xml::Element {
        self.post(
            Some(session),
            format!("<Envelope><Body>{op}</Body></Envelope>"),
            false,
        )
        .await
    }

    async fn login(&self) -> String {
        let root = self
            .post(
                None,
                "<Envelope><Body><Login><USERNAME>espbridge</USERNAME><PASSWORD>sim-password</PASSWORD></Login></Body></Envelope>".into(),
                false,
            )
            .await;
        result(&root).text_of("SESSIONID").unwrap().to_owned()
    }

    async fn upload(&self, name: &str, bytes: &[u8]) {
        let access = self.sim.sftp_access().unwrap();
        let target = SftpTarget::new(
            access.host,
            access.port,
            Secret::from(access.username),
            SftpAuth::Password(Secret::from(access.password.unwrap())),
            HostKey::parse(&access.host_key).unwrap(),
        );
        target
            .upload(&UploadName::parse(name).unwrap(), bytes)
            .await
            .unwrap();
    }
}

fn result(root: &espbridge_xml::Element) -> &espbridge_xml::Element {
    root.child("Body").unwrap().child("RESULT").unwrap()
}

fn errorid(root: &espbridge_xml::Element) -> Option<String> {
    let fault = root.child("Body")?.child("Fault")?;
    fault
        .child("detail")?
        .child("error")?
        .text_of("errorid")
        .map(str::to_owned)
}

fn paths(e: &espbridge_xml::Element, prefix: &str, out: &mut BTreeSet<String>) {
    let here = format!("{prefix}/{}", e.name);
    for c in &e.children {
        paths(c, &here, out);
    }
    out.insert(here);
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap()
}

/// A LIST_IMPORT of `database` (UPDATE_ONLY on CustomerID) into `list`.
fn list_mapping(database: i64, list: &str) -> String {
    String::from_utf8(
        import::list_import_mapping(&database.to_string(), "CustomerID", list, &["CustomerID"])
            .to_bytes()
            .unwrap(),
    )
    .unwrap()
}

/// A LIST_IMPORT of `database` keyed on CustomerID, into no contact list.
fn plain_list_mapping(database: i64) -> String {
    format!(
        "<LIST_IMPORT><LIST_INFO><ACTION>UPDATE_ONLY</ACTION><LIST_ID>{database}</LIST_ID>\
         <FILE_TYPE>0</FILE_TYPE><HASHEADERS>true</HASHEADERS></LIST_INFO>\
         <SYNC_FIELDS><SYNC_FIELD><NAME>CustomerID</NAME></SYNC_FIELD></SYNC_FIELDS>\
         <MAPPING><COLUMN><INDEX>1</INDEX><NAME>CustomerID</NAME><INCLUDE>true</INCLUDE></COLUMN>\
         </MAPPING></LIST_IMPORT>"
    )
}

async fn job_status(raw: &Raw, session: &str, job: &str) -> espbridge_xml::Element {
    raw.call(
        session,
        &format!("<GetJobStatus><JOB_ID>{job}</JOB_ID></GetJobStatus>"),
    )
    .await
}

async fn until_ended(raw: &Raw, session: &str, job: &str) -> espbridge_xml::Element {
    for _ in 0..200 {
        let root = job_status(raw, session, job).await;
        if matches!(
            result(&root).text_of("JOB_STATUS"),
            Some("COMPLETE" | "ERROR")
        ) {
            return root;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("job {job} never ended");
}

#[tokio::test]
async fn the_recorded_import_list_request_is_answered_as_recorded() {
    let raw = Raw::new().await;
    let session = raw.login().await;
    let database = raw.sim.config().database_id;
    // The recorded request names importList.xml and importList.csv, no FILE_ENCODING.
    raw.upload("importList.csv", b"CustomerID\nC-1\nC-2\n")
        .await;
    raw.upload("importList.xml", plain_list_mapping(database).as_bytes())
        .await;
    let form = fixture("ImportList.request.form-urlencoded.txt");

    let answer = raw
        .post(Some(&session), form.trim_end().to_owned(), true)
        .await;

    let recorded = espbridge_xml::parse(fixture("ImportList.response.xml").as_bytes()).unwrap();
    let (mut want, mut got) = (BTreeSet::new(), BTreeSet::new());
    paths(&recorded, "", &mut want);
    paths(&answer, "", &mut got);
    assert_eq!(got, want, "the answer has the recorded shape");
    assert_eq!(import::job_id(result(&recorded)), Some("108518"));
    let job = import::job_id(result(&answer)).unwrap().to_owned();
    // GetJobStatus has the documented fields, LIST_ID among the parameters.
    let done = until_ended(&raw, &session, &job).await;
    let r = result(&done);
    assert_eq!(r.text_of("JOB_ID"), Some(job.as_str()));
    assert_eq!(r.text_of("JOB_STATUS"), Some("COMPLETE"));
    assert!(r.child("JOB_DESCRIPTION").is_some());
    assert_eq!(
        import::job_parameter(r, "LIST_ID"),
        Some(database.to_string().as_str())
    );
    assert_eq!(import::job_parameter(r, "TOTAL_ROWS"), Some("2"));
    let error_file = import::job_parameter(r, "ERROR_FILE_NAME").unwrap();
    let errors = raw.sim.sftp().unwrap().download_file(error_file).unwrap();
    assert_eq!(errors, b"ROW,ERROR_CODE,ERROR,CustomerID\n");
}

#[tokio::test]
async fn import_faults_unknown_jobs_and_unreadable_sources() {
    let raw = Raw::new().await;
    let s = raw.login().await;
    let database = raw.sim.config().database_id;
    let import_list = |map: &str, source: &str| {
        format!(
            "<ImportList><MAP_FILE>{map}</MAP_FILE><SOURCE_FILE>{source}</SOURCE_FILE><FILE_ENCODING>UTF-8</FILE_ENCODING></ImportList>"
        )
    };
    // Unknown job.
    let root = job_status(&raw, &s, "999999").await;
    assert_eq!(errorid(&root).as_deref(), Some("51"));
    // Missing files.
    let root = raw
        .call(&s, &import_list("nomap.xml", "nosource.csv"))
        .await;
    assert_eq!(errorid(&root).as_deref(), Some("51"));
    assert_eq!(result(&root).text_of("SUCCESS"), Some("false"));
    raw.upload("a.csv", b"CustomerID\nC-1\n").await;
    let root = raw.call(&s, &import_list("nomap.xml", "a.csv")).await;
    assert_eq!(errorid(&root).as_deref(), Some("51"));
    // A mapping onto an unknown contact list, or of the other operation.
    raw.upload("bad-list.xml", list_mapping(database, "424242").as_bytes())
        .await;
    let root = raw.call(&s, &import_list("bad-list.xml", "a.csv")).await;
    assert_eq!(errorid(&root).as_deref(), Some("51"));
    let table_map = import::table_import_mapping(&TABLE.to_string(), &["ActionID", "CustomerID"]);
    raw.upload("table.xml", &table_map.to_bytes().unwrap())
        .await;
    let root = raw.call(&s, &import_list("table.xml", "a.csv")).await;
    assert_eq!(errorid(&root).as_deref(), Some("51"));
    let root = raw
        .call(
            &s,
            "<ImportList><MAP_FILE>table.xml</MAP_FILE></ImportList>",
        )
        .await;
    assert_eq!(errorid(&root).as_deref(), Some("51"));
    // A source that is not CSV ends its job in ERROR.
    raw.upload("ok.xml", plain_list_mapping(database).as_bytes())
        .await;
    raw.upload("broken.csv", b"CustomerID\n\"C-1\n").await;
    let root = raw.call(&s, &import_list("ok.xml", "broken.csv")).await;
    let job = import::job_id(result(&root)).unwrap().to_owned();
    let done = until_ended(&raw, &s, &job).await;
    assert_eq!(result(&done).text_of("JOB_STATUS"), Some("ERROR"));
    assert_eq!(
        import::job_parameter(result(&done), "ERROR_FILE_NAME"),
        None
    );
    // ImportTable with its mapping runs, and refuses rows as InsertUpdateRelationalTable does.
    raw.upload("t.csv", b"ActionID,CustomerID\n7,C-1\nx,C-2\n")
        .await;
    let root = raw
        .call(&s, "<ImportTable><MAP_FILE>table.xml</MAP_FILE><SOURCE_FILE>t.csv</SOURCE_FILE></ImportTable>")
        .await;
    let job = import::job_id(result(&root)).unwrap().to_owned();
    let done = until_ended(&raw, &s, &job).await;
    let r = result(&done);
    assert_eq!(r.text_of("JOB_STATUS"), Some("COMPLETE"));
    assert_eq!(
        import::job_parameter(r, "TABLE_ID"),
        Some(TABLE.to_string().as_str())
    );
    assert_eq!(import::job_parameter(r, "TOTAL_REJECTED"), Some("1"));
    let name = import::job_parameter(r, "ERROR_FILE_NAME").unwrap();
    let errors = String::from_utf8(raw.sim.sftp().unwrap().download_file(name).unwrap()).unwrap();
    assert_eq!(
        errors,
        "ROW,ERROR_CODE,ERROR,ActionID,CustomerID\n2,permanent,Invalid Number in column: ActionID,x,C-2\n"
    );
    assert_eq!(raw.sim.table_rows(TABLE).len(), 1);
}
