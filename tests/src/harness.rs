//! One isolated deployment per test: AWS resources on moto, an ESP simulator (Emarsys, or
//! SmartFocus, Silverpop or Bronto when asked), the services the Lambda functions build, and helpers
//! that drive the handlers with real event JSON.

use crate::events::{self, SqsRecord};
use anyhow::{Context, anyhow};
use aws_lambda_events::event::sqs::SqsBatchResponse;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use espbridge_app::aws::{self as app_aws, Bootstrap};
use espbridge_app::registry;
use espbridge_bronto::sim::BrontoSim;
use espbridge_core::ports::CampaignStore;
use espbridge_core::service::{
    ApiService, Deadline, PollService, ScheduleService, SweepService, UploadService,
};
use espbridge_core::{Campaign, CampaignId, Clock, EspKind, ManualClock};
use espbridge_emarsys::sim::EmarsysSim;
use espbridge_esp_kit::{AccountError, SimSetup, SimView, SimulatedAccount};
use espbridge_silverpop::sim::SilverpopSim;
use espbridge_smartfocus::sim::SmartFocusSim;
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

const POLL_FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:poll-metrics";
const SCHEDULER_ROLE_ARN: &str = "arn:aws:iam::123456789012:role/espbridge-scheduler";
/// Zone and template prefix of every simulated account (as in the local stack).
pub const SIM_TIMEZONE: &str = "Europe/Berlin";
pub const SIM_TEMPLATE_PREFIX: &str = "optimove_";

/// Starts a simulator the test set up itself (an ESP-specific configuration).
pub type SimFactory = Box<
    dyn FnOnce(
            SimSetup,
        )
            -> Pin<Box<dyn Future<Output = Result<SimulatedAccount, AccountError>> + Send>>
        + Send,
>;

/// Knobs a test may turn before the services are built.
pub struct HarnessOptions {
    /// ESP client attempts per call (lower keeps outage tests short).
    pub max_attempts: u32,
    /// Which ESP account (and simulator) the services talk to.
    pub esp: EspKind,
    /// Fields set on the account entry (e.g. SmartFocus `max_upload_bytes`, Bronto
    /// `addresses_per_minute`).
    pub account: serde_json::Value,
    /// The simulator, when the test configures it; `None` starts the ESP driver's default.
    pub simulator: Option<SimFactory>,
}

impl Default for HarnessOptions {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            esp: EspKind::Emarsys,
            account: serde_json::Value::Null,
            simulator: None,
        }
    }
}

impl HarnessOptions {
    /// Options for `esp` with its driver's default simulator.
    pub fn esp(esp: EspKind) -> Self {
        Self {
            esp,
            ..Self::default()
        }
    }

    /// Starts the simulator with `start` (e.g. `espbridge_bronto::sim::account(config, &setup)`).
    pub fn with_simulator<F, Fut>(mut self, start: F) -> Self
    where
        F: FnOnce(SimSetup) -> Fut + Send + 'static,
        Fut: Future<Output = Result<SimulatedAccount, AccountError>> + Send + 'static,
    {
        self.simulator = Some(Box::new(move |setup| Box::pin(start(setup))));
        self
    }
}

/// A message received from a moto queue.
pub type Received = SqsRecord;

pub struct Harness {
    pub clock: ManualClock,
    /// The ESP's simulator and the account entry pointing at it.
    pub simulated: SimulatedAccount,
    /// What each function builds from its own environment (and only that).
    pub upload: UploadService,
    pub schedule: ScheduleService,
    pub poll: PollService,
    pub api: ApiService,
    pub sweep: SweepService,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    pub bucket: String,
    pub upload_queue_url: String,
    pub schedule_queue_url: String,
    pub schedule_group: String,
    /// A queue subscribed to the alert topic: what an e-mail subscriber would receive.
    pub alert_queue_url: String,
    /// Every function's variables and the SDK configuration, to build more instances.
    env: std::collections::HashMap<&'static str, String>,
    sdk: aws_config::SdkConfig,
}

/// A name no other test or earlier run uses, lowercase so it suits every AWS resource.
pub fn unique(prefix: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() % 1_000_000_000_000)
        .unwrap_or(0);
    format!(
        "{prefix}-{nanos:x}{:x}{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

impl Harness {
    /// Starts a deployment, or returns `None` (after saying so) when no emulator is configured.
    /// With `ESPBRIDGE_REQUIRE_EMULATOR=1` a missing or unreachable emulator is an error.
    pub async fn start(test: &str, opts: HarnessOptions) -> anyhow::Result<Option<Self>> {
        if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
            if std::env::var("ESPBRIDGE_REQUIRE_EMULATOR").as_deref() == Ok("1") {
                return Err(anyhow!(
                    "{test}: ESPBRIDGE_REQUIRE_EMULATOR=1 but AWS_ENDPOINT_URL is not set; \
                     run scripts/aws-emu.sh start && eval \"$(scripts/aws-emu.sh env)\""
                ));
            }
            eprintln!("{test}: skipped: no emulator (AWS_ENDPOINT_URL is not set)");
            return Ok(None);
        }
        let sdk = espbridge_aws::sdk_config().await;
        let s3 = espbridge_aws::s3_client(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let scheduler = aws_sdk_scheduler::Client::new(&sdk);
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);

        let table = unique("campaigns");
        espbridge_aws::create_table(&dynamo, &table)
            .await
            .with_context(|| format!("{test}: create table (is the emulator up?)"))?;
        let bucket = unique("drops");
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .context("create bucket")?;
        let upload_queue_url = create_queue(&sqs, &unique("upload")).await?;
        let schedule_queue_url = create_queue(&sqs, &unique("schedule")).await?;
        let alert_queue_url = create_queue(&sqs, &unique("alerts")).await?;
        let alert_topic = create_alert_topic(&sdk, &sqs, &alert_queue_url).await?;
        let schedule_group = unique("polls");
        scheduler
            .create_schedule_group()
            .name(&schedule_group)
            .send()
            .await
            .context("create schedule group")?;

        let clock = ManualClock::new(jiff::Timestamp::now());
        let setup = SimSetup::new(Arc::new(clock.clone()), SIM_TIMEZONE, SIM_TEMPLATE_PREFIX);
        let simulated = match opts.simulator {
            Some(start) => start(setup).await,
            None => {
                let driver = registry::driver(opts.esp)
                    .ok_or_else(|| anyhow!("{}: no driver for {}", test, opts.esp))?;
                driver.simulate(&setup).await
            }
        }
        .with_context(|| format!("{test}: start the {} simulator", opts.esp))?;
        // The account as Lambda sees it: credentials in Secrets Manager, not inline.
        let mut entry = simulated.entry.clone();
        let credentials = entry
            .to_value()
            .get("credentials")
            .cloned()
            .ok_or_else(|| anyhow!("the simulated account has no credentials"))?;
        let secret = unique(&format!("{}-creds", opts.esp));
        create_secret(&secrets, &secret, &credentials).await?;
        entry.set("credentials_secret", secret.into());
        entry.set("max_attempts", opts.max_attempts.into());
        entry.set("request_timeout_secs", 20.into());
        if let Some(extra) = opts.account.as_object() {
            for (k, v) in extra {
                entry.set(k, v.clone());
            }
        }
        let mut account = entry.to_value();
        if let Some(o) = account.as_object_mut() {
            o.remove("credentials");
        }
        let accounts = serde_json::json!([account]);
        let all: std::collections::HashMap<&'static str, String> = [
            (app_aws::TABLE, table),
            (app_aws::ACCOUNTS, accounts.to_string()),
            (app_aws::UPLOAD_QUEUE_URL, upload_queue_url.clone()),
            (app_aws::SCHEDULE_QUEUE_URL, schedule_queue_url.clone()),
            (app_aws::SCHEDULE_GROUP, schedule_group.clone()),
            (app_aws::POLL_FUNCTION_ARN, POLL_FUNCTION_ARN.to_owned()),
            (app_aws::SCHEDULER_ROLE_ARN, SCHEDULER_ROLE_ARN.to_owned()),
            (app_aws::ALERT_TOPIC_ARN, alert_topic),
            (app_aws::METRICS_NAMESPACE, "espbridge/test".to_owned()),
            // The template's defaults (MaxLineBytes, DropRetentionDays).
            (app_aws::MAX_LINE_BYTES, "65536".to_owned()),
            (app_aws::DROP_RETENTION_DAYS, "30".to_owned()),
        ]
        .into_iter()
        .collect();
        let clock_dyn: Arc<dyn Clock> = Arc::new(clock.clone());
        // Each function gets exactly the variables the SAM template gives it.
        let boot = |vars: &[&str]| Bootstrap {
            env: Box::new(
                vars.iter()
                    .map(|v| ((*v).to_owned(), all[v].clone()))
                    .collect::<std::collections::HashMap<String, String>>(),
            ),
            sdk: sdk.clone(),
            clock: Arc::clone(&clock_dyn),
        };
        let upload = boot(app_aws::UPLOAD_VARS)
            .upload()
            .await
            .context("build upload-audience")?;
        let schedule = boot(app_aws::SCHEDULE_VARS)
            .schedule()
            .await
            .context("build schedule-send")?;
        let poll = boot(app_aws::POLL_VARS)
            .poll()
            .await
            .context("build poll-metrics")?;
        let api = boot(app_aws::API_VARS)
            .api()
            .await
            .context("build http-api")?;
        let sweep = boot(app_aws::SWEEP_VARS)
            .sweep()
            .await
            .context("build sweep")?;
        Ok(Some(Self {
            clock,
            simulated,
            upload,
            schedule,
            poll,
            api,
            sweep,
            s3,
            sqs,
            scheduler,
            bucket,
            upload_queue_url,
            schedule_queue_url,
            schedule_group,
            alert_queue_url,
            env: all,
            sdk,
        }))
    }

    /// Another instance of schedule-send, built from its environment as a second Lambda
    /// instance would be (its own ESP clients and sessions; the same table and limits).
    pub async fn schedule_instance(&self) -> anyhow::Result<ScheduleService> {
        let boot = Bootstrap {
            env: Box::new(
                app_aws::SCHEDULE_VARS
                    .iter()
                    .map(|v| ((*v).to_owned(), self.env[v].clone()))
                    .collect::<std::collections::HashMap<String, String>>(),
            ),
            sdk: self.sdk.clone(),
            clock: Arc::new(self.clock.clone()),
        };
        boot.schedule().await.context("build schedule-send")
    }

    /// Runs `schedule` (one instance of schedule-send) on these messages.
    pub async fn deliver_schedule_to(
        &self,
        schedule: &ScheduleService,
        recs: &[Received],
    ) -> anyhow::Result<SqsBatchResponse> {
        let ev = events::sqs_event(&arn_of(&self.schedule_queue_url), recs)?;
        Ok(schedule_send::handle(schedule, ev).await)
    }

    /// The simulator as its own type, or an error naming the ESP this harness deploys.
    pub fn simulator<T: Any + Send + Sync>(&self) -> anyhow::Result<Arc<T>> {
        self.simulated.simulator::<T>().ok_or_else(|| {
            anyhow!(
                "this harness deploys {}, not {}",
                self.simulated.entry.esp,
                std::any::type_name::<T>()
            )
        })
    }

    /// The simulator, read the same way whatever its ESP (sends at send time, refusals).
    pub fn sim_view(&self) -> Arc<dyn SimView> {
        Arc::clone(&self.simulated.view)
    }

    /// The Emarsys simulator (the default harness's ESP).
    pub fn emarsys(&self) -> anyhow::Result<Arc<EmarsysSim>> {
        self.simulator()
    }

    /// The SmartFocus simulator.
    pub fn sf(&self) -> anyhow::Result<Arc<SmartFocusSim>> {
        self.simulator()
    }

    /// The Silverpop simulator.
    pub fn sp(&self) -> anyhow::Result<Arc<SilverpopSim>> {
        self.simulator()
    }

    /// The Bronto simulator.
    pub fn br(&self) -> anyhow::Result<Arc<BrontoSim>> {
        self.simulator()
    }

    /// Writes an object and returns its ETag without quotes (as S3 events carry it).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<String> {
        let out = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .with_context(|| format!("put {key}"))?;
        Ok(out.e_tag().unwrap_or_default().trim_matches('"').to_owned())
    }

    pub async fn get(&self, key: &str) -> anyhow::Result<Vec<u8>> {
        let out = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .with_context(|| format!("get {key}"))?;
        Ok(out.body.collect().await?.into_bytes().to_vec())
    }

    pub async fn exists(&self, key: &str) -> bool {
        self.s3
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .is_ok()
    }

    /// Writes the audience files, then the manifest last, and returns the manifest's S3 event
    /// as the upload queue would deliver it (one message body).
    pub async fn drop_campaign(
        &self,
        prefix: &str,
        drop: &crate::Drop,
        manifest: &serde_json::Value,
    ) -> anyhow::Result<String> {
        for f in &drop.files {
            self.put(&format!("{prefix}{}", f.name), f.bytes.clone())
                .await?;
        }
        let key = format!("{prefix}manifest.json");
        let bytes = serde_json::to_vec_pretty(manifest)?;
        let size = bytes.len() as i64;
        let etag = self.put(&key, bytes).await?;
        Ok(events::s3_put_notification(&self.bucket, &key, size, &etag).to_string())
    }

    /// Writes an object and returns its S3 ObjectCreated event as a message body.
    pub async fn put_with_event(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<String> {
        let size = bytes.len() as i64;
        let etag = self.put(key, bytes).await?;
        Ok(events::s3_put_notification(&self.bucket, key, size, &etag).to_string())
    }

    /// Runs upload-audience on one message (as Lambda would, with a fresh message id).
    pub async fn deliver_upload_body(&self, body: &str) -> anyhow::Result<SqsBatchResponse> {
        let rec = SqsRecord {
            message_id: unique("msg"),
            receipt_handle: unique("rh"),
            body: body.to_owned(),
            receive_count: 1,
        };
        self.deliver_upload(&[rec]).await
    }

    pub async fn deliver_upload(&self, recs: &[Received]) -> anyhow::Result<SqsBatchResponse> {
        let ev = events::sqs_event(&arn_of(&self.upload_queue_url), recs)?;
        Ok(upload_audience::handle(&self.upload, ev, Deadline::none()).await)
    }

    pub async fn deliver_schedule(&self, recs: &[Received]) -> anyhow::Result<SqsBatchResponse> {
        let ev = events::sqs_event(&arn_of(&self.schedule_queue_url), recs)?;
        Ok(schedule_send::handle(&self.schedule, ev).await)
    }

    /// The alerts published since the last call, as (subject, message JSON), taken off the
    /// subscribed queue.
    pub async fn alerts(&self) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
        let mut out = Vec::new();
        for m in self.receive(&self.alert_queue_url).await? {
            self.sqs
                .delete_message()
                .queue_url(&self.alert_queue_url)
                .receipt_handle(&m.receipt_handle)
                .send()
                .await
                .context("delete alert")?;
            let envelope: serde_json::Value =
                serde_json::from_str(&m.body).context("an SNS envelope")?;
            let subject = envelope["Subject"].as_str().unwrap_or_default().to_owned();
            let message = serde_json::from_str(envelope["Message"].as_str().unwrap_or_default())
                .context("an alert's JSON")?;
            out.push((subject, message));
        }
        Ok(out)
    }

    /// Runs the sweep function's handler, as its hourly schedule invokes it.
    pub async fn run_sweep(&self) -> anyhow::Result<serde_json::Value> {
        Ok(sweep::handle(&self.sweep).await?)
    }

    /// Receives every visible message of `queue_url` (with its receive count).
    pub async fn receive(&self, queue_url: &str) -> anyhow::Result<Vec<Received>> {
        let mut all = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
                .context("receive")?;
            let msgs = out.messages.unwrap_or_default();
            if msgs.is_empty() {
                return Ok(all);
            }
            for m in msgs {
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                all.push(SqsRecord {
                    message_id: m.message_id.unwrap_or_default(),
                    receipt_handle: m.receipt_handle.unwrap_or_default(),
                    body: m.body.unwrap_or_default(),
                    receive_count,
                });
            }
        }
    }

    /// Deletes the messages the handler did not report as failed (what Lambda does on success).
    pub async fn ack(
        &self,
        queue_url: &str,
        recs: &[Received],
        resp: &SqsBatchResponse,
    ) -> anyhow::Result<()> {
        for r in recs {
            let failed = resp
                .batch_item_failures
                .iter()
                .any(|f| f.item_identifier == r.message_id);
            if !failed {
                self.sqs
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(&r.receipt_handle)
                    .send()
                    .await
                    .context("delete message")?;
            }
        }
        Ok(())
    }

    /// Receives the schedule queue's messages, runs schedule-send on them, acknowledges the
    /// successful ones.
    pub async fn run_schedule_queue(&self) -> anyhow::Result<(usize, SqsBatchResponse)> {
        let msgs = self.receive(&self.schedule_queue_url).await?;
        let resp = self.deliver_schedule(&msgs).await?;
        self.ack(&self.schedule_queue_url, &msgs, &resp).await?;
        Ok((msgs.len(), resp))
    }

    /// Calls the HTTP API through the http-api function with an API Gateway event: status,
    /// content type and body.
    pub async fn api(&self, method: &str, path: &str, query: &str) -> anyhow::Result<ApiAnswer> {
        let req = events::http_request(method, path, query)?;
        self.api_event(&serde_json::to_string(&req)?).await
    }

    async fn api_event(&self, event_json: &str) -> anyhow::Result<ApiAnswer> {
        let (status, content_type, body) = http_api::answer_event(self.api.clone(), event_json)
            .await
            .map_err(|e| anyhow!("http-api: {e}"))?;
        Ok(ApiAnswer {
            status,
            content_type,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// Calls the HTTP API with a JSON body (base64-encoded when `base64`, as API Gateway may
    /// pass it) and parses the answer.
    pub async fn api_json_body(
        &self,
        method: &str,
        path: &str,
        body: &str,
        base64: bool,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let req = events::http_request_with_body(method, path, "", body, base64)?;
        let resp = self.api_event(&serde_json::to_string(&req)?).await?;
        let v = serde_json::from_str(&resp.body)
            .with_context(|| format!("{path}: body is not JSON"))?;
        Ok((resp.status, v))
    }

    /// Invokes poll-metrics once a day for the seven days after `send_at` with the input the
    /// campaign's EventBridge schedule carries, and returns that schedule's name.
    pub async fn poll_seven_days(
        &self,
        campaign_id: &str,
        send_at: jiff::Timestamp,
    ) -> anyhow::Result<String> {
        let c = self.campaign(campaign_id).await?;
        let name = c
            .schedule_name
            .ok_or_else(|| anyhow!("campaign {campaign_id} has no poll schedule"))?;
        let input = self.schedule_input(&name).await?;
        for day in 1..=7i64 {
            self.clock
                .set(send_at + jiff::SignedDuration::from_hours(24 * day));
            let out = poll_metrics::handle(&self.poll, input.clone()).await?;
            anyhow::ensure!(out["campaign_id"] == campaign_id, "day {day}: {out}");
        }
        Ok(name)
    }

    /// The target input of a schedule in the harness group, as JSON.
    pub async fn schedule_input(&self, name: &str) -> anyhow::Result<serde_json::Value> {
        let sched = self
            .scheduler
            .get_schedule()
            .group_name(&self.schedule_group)
            .name(name)
            .send()
            .await
            .with_context(|| format!("schedule {name}"))?;
        let input = sched
            .target()
            .and_then(|t| t.input())
            .ok_or_else(|| anyhow!("schedule {name} has no input"))?;
        Ok(serde_json::from_str(input)?)
    }

    /// The expression of a schedule in the harness group, or `None` when there is none.
    pub async fn schedule_expression(&self, name: &str) -> Option<String> {
        self.scheduler
            .get_schedule()
            .group_name(&self.schedule_group)
            .name(name)
            .send()
            .await
            .ok()
            .and_then(|s| s.schedule_expression().map(str::to_owned))
    }

    /// The API answer's body parsed as JSON.
    pub async fn api_json(
        &self,
        method: &str,
        path: &str,
        query: &str,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let resp = self.api(method, path, query).await?;
        let v = serde_json::from_str(&resp.body)
            .with_context(|| format!("{path}: body is not JSON"))?;
        Ok((resp.status, v))
    }

    /// The campaign store every function shares.
    pub fn store(&self) -> &Arc<dyn CampaignStore> {
        &self.upload.store
    }

    pub async fn campaign(&self, id: &str) -> anyhow::Result<Campaign> {
        let id = CampaignId::parse(id)?;
        self.upload
            .store
            .get(&id)
            .await?
            .ok_or_else(|| anyhow!("no campaign record {id}"))
    }

    /// The id of the first `optimove_` In-Design HTML template the API lists.
    pub async fn pick_template(&self) -> anyhow::Result<String> {
        let (status, v) = self.api_json("GET", "/templates", "esp=emarsys").await?;
        anyhow::ensure!(status == 200, "GET /templates answered {status}: {v}");
        v["templates"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| {
                t["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("optimove_"))
            })
            .and_then(|t| t["id"].as_str().map(str::to_owned))
            .ok_or_else(|| anyhow!("no optimove_ template listed: {v}"))
    }

    /// Tomorrow 09:00 in Europe/Berlin on the harness clock, RFC 3339 with offset.
    pub fn send_at_tomorrow_9(&self) -> anyhow::Result<jiff::ZonedDateTime> {
        let now = self.clock.now().in_tz("Europe/Berlin")?;
        let day = now.date().tomorrow()?;
        Ok(day.at(9, 0, 0, 0).in_tz("Europe/Berlin")?)
    }

    /// Every external id the Emarsys simulator was sent in contact-list create/add calls.
    pub fn ids_sent(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .emarsys()?
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.contains("contactlist"))
            .flat_map(|r| {
                r.body
                    .and_then(|b| b.get("external_ids").cloned())
                    .and_then(|v| v.as_array().cloned())
                    .unwrap_or_default()
            })
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect())
    }
}

/// An answer of the HTTP API.
#[derive(Debug, Clone)]
pub struct ApiAnswer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

async fn create_secret(
    secrets: &aws_sdk_secretsmanager::Client,
    name: &str,
    value: &serde_json::Value,
) -> anyhow::Result<()> {
    secrets
        .create_secret()
        .name(name)
        .secret_string(value.to_string())
        .send()
        .await
        .context("create secret")?;
    Ok(())
}

/// An SNS topic with the queue at `queue_url` subscribed (moto delivers SNS to SQS); its ARN.
async fn create_alert_topic(
    sdk: &aws_config::SdkConfig,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> anyhow::Result<String> {
    let sns = aws_sdk_sns::Client::new(sdk);
    let topic = sns
        .create_topic()
        .name(unique("alarms"))
        .send()
        .await
        .context("create alert topic")?
        .topic_arn
        .ok_or_else(|| anyhow!("the alert topic has no ARN"))?;
    let arn = aws_sdk_sqs::types::QueueAttributeName::QueueArn;
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(arn.clone())
        .send()
        .await
        .context("read the alert queue's ARN")?
        .attributes
        .and_then(|mut a| a.remove(&arn))
        .ok_or_else(|| anyhow!("the alert queue has no ARN"))?;
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .context("subscribe the alert queue")?;
    Ok(topic)
}

async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> anyhow::Result<String> {
    let out = sqs
        .create_queue()
        .queue_name(name)
        // A failed message comes back quickly, as a short visibility timeout makes it in AWS.
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "1",
        )
        .send()
        .await
        .with_context(|| format!("create queue {name}"))?;
    out.queue_url
        .ok_or_else(|| anyhow!("queue {name} has no URL"))
}

/// The ARN of a moto queue URL (`http://host/<account>/<name>`).
fn arn_of(queue_url: &str) -> String {
    let mut parts = queue_url.rsplit('/');
    let name = parts.next().unwrap_or_default();
    let account = parts.next().unwrap_or("123456789012");
    format!("arn:aws:sqs:us-east-1:{account}:{name}")
}
