//! [`EmarsysEsp`]: the `Esp` port over Emarsys Suite API v2.

use crate::client::{Http, TARGET_SHARE};
use crate::config::{EmarsysConfig, EmarsysCredentials};
use crate::schedule;
use crate::wire::{self, Email};
use async_trait::async_trait;
use espbridge_core::ports::esp::object_name;
use espbridge_core::ports::{
    AudienceBatch, AudienceRequest, BatchOutcome, Esp, EspError, EspIds, MetricCounts, Preview,
    RowError, SendRequest, Template,
};
use espbridge_core::{AccountId, EspKind};
use espbridge_esp_kit::AdapterError;
use espbridge_esp_kit::{BuildContext, EspHttp, ExposeSecret, RateGate};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::OnceCell;

const ESP: EspKind = EspKind::Emarsys;
/// Emarsys takes at most 10 000 external ids per contact-list call (3002 beyond).
pub const MAX_BATCH: usize = 10_000;
/// "No contact found with the external id".
const CODE_NO_CONTACT: &str = "2008";

/// Keys of the [`EspIds`] this adapter returns.
pub mod keys {
    pub const CONTACT_LIST_ID: &str = "contact_list_id";
    pub const KEY_ID: &str = "key_id";
    pub const EMAIL_ID: &str = "email_id";
    pub const LAUNCH_SCHEDULE: &str = "launch_schedule";
    pub const LAUNCH_TIMEZONE: &str = "launch_timezone";
}

/// One Emarsys account. Cheap to clone; clones share the HTTP pool, the rate gate (so together they
/// stay under the account's rate limit) and the cached ExternalID field id.
#[derive(Clone)]
pub struct EmarsysEsp {
    config: Arc<EmarsysConfig>,
    http: Http,
    key_id: Arc<OnceCell<String>>,
}

impl std::fmt::Debug for EmarsysEsp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmarsysEsp")
            .field("account", &self.config.account)
            .field("base_url", &self.config.http.base_url)
            .finish_non_exhaustive()
    }
}

impl EmarsysEsp {
    /// Checks the configuration (URL, zone, limits) and builds the HTTP client; makes no call.
    pub fn new(
        config: EmarsysConfig,
        credentials: EmarsysCredentials,
        ctx: &BuildContext,
    ) -> Result<Self, AdapterError> {
        schedule::zone(&config.timezone).map_err(|e| AdapterError::Config {
            esp: ESP,
            field: "timezone",
            detail: e.to_string(),
        })?;
        if config.rate_limit_per_minute == 0 {
            return Err(AdapterError::Config {
                esp: ESP,
                field: "rate_limit_per_minute",
                detail: "must be at least 1".to_owned(),
            });
        }
        if credentials.user.is_empty() || credentials.secret.expose_secret().is_empty() {
            return Err(AdapterError::Config {
                esp: ESP,
                field: "credentials",
                detail: "user and secret must not be empty".to_owned(),
            });
        }
        let http = EspHttp::new(ESP, &config.http_settings()?)?;
        // The limit is per API user; an account is one API user. Spaced evenly at 98% of it,
        // requests can never put more than the limit into any 60-second window, fixed or
        // sliding, and a saturated upload stays above 95% of it.
        let gate = RateGate::new(
            ESP,
            Arc::clone(&ctx.limits),
            format!("emarsys/{}/requests", config.account),
            f64::from(config.rate_limit_per_minute) * TARGET_SHARE,
        );
        let http = Http::new(http, credentials, Arc::clone(&ctx.clock), gate);
        Ok(Self {
            config: Arc::new(config),
            http,
            key_id: Arc::new(OnceCell::new()),
        })
    }

    /// The pace (requests a minute) the adapter keeps now: the configured limit's, or the
    /// lower one the ESP announced in `X-RateLimit-Limit`.
    pub fn pace(&self) -> f64 {
        self.http.pace()
    }

    pub fn config(&self) -> &EmarsysConfig {
        &self.config
    }

    /// The numeric id of the ExternalID field, looked up once per adapter with `GET /field`.
    pub async fn external_id_field_id(&self) -> Result<String, EspError> {
        self.key_id
            .get_or_try_init(|| async {
                let fields: Vec<wire::Field> = parse(self.http.get("field").await?, "field list")?;
                let wanted = &self.config.external_id_field;
                let found = fields
                    .iter()
                    .find(|f| &f.name == wanted)
                    .or_else(|| fields.iter().find(|f| f.name.eq_ignore_ascii_case(wanted)));
                match found {
                    Some(f) => {
                        tracing::debug!(account = %self.config.account, field_id = %f.id, "emarsys external id field resolved");
                        Ok(f.id.clone())
                    }
                    None => Err(EspError::NotFound {
                        esp: ESP,
                        what: format!("contact field {wanted:?}"),
                    }),
                }
            })
            .await
            .cloned()
    }

    async fn get_email(&self, id: &str) -> Result<Email, EspError> {
        let data = self.http.get(&format!("email/{id}")).await?;
        let one = wire::one_or_first(data).ok_or_else(|| EspError::Protocol {
            esp: ESP,
            detail: format!("e-mail {id}: data is neither an object nor a one-element array"),
        })?;
        parse(one, "e-mail")
    }

    /// The templates rule from the integration guide: HTML e-mails whose recipients come from
    /// the API or a contact list, CMS e-mails whose recipients come from the API.
    fn is_selectable(&self, e: &Email) -> Option<&'static str> {
        if e.is_deleted() || e.status.is_some_and(|s| s != 1) {
            return None;
        }
        if !e.name.starts_with(&self.config.template_prefix) {
            return None;
        }
        let source = e.source.as_deref().unwrap_or("");
        match e.content_type.as_deref() {
            None | Some("") | Some("html") if matches!(source, "api" | "userlist") => Some("html"),
            Some("template") if source == "api" => Some("cms"),
            _ => None,
        }
    }

    async fn find_list_by_name(&self, name: &str) -> Result<Option<String>, EspError> {
        let lists: Vec<wire::ContactList> =
            parse(self.http.get("contactlist").await?, "contact lists")?;
        Ok(lists.into_iter().find(|l| l.name == name).map(|l| l.id))
    }

    async fn find_email_by_name(&self, name: &str) -> Result<Option<String>, EspError> {
        let emails: Vec<Email> = parse(self.http.get("email/").await?, "e-mail list")?;
        Ok(emails
            .into_iter()
            .find(|e| e.name == name && !e.is_deleted())
            .map(|e| e.id))
    }

    /// Copies the template under the campaign's name, or finds the copy an earlier attempt made.
    async fn copy_template(&self, template_id: &str, name: &str) -> Result<String, EspError> {
        let body = wire::CopyEmail {
            name: name.to_owned(),
        };
        match self
            .http
            .post(&format!("email/{template_id}/copy"), &body)
            .await
        {
            Ok(data) => {
                let copied: wire::EmailCopied = parse(data, "copy result")?;
                Ok(copied.campaign_id)
            }
            Err(e) if api_code(&e) == Some("6023") => self
                .find_email_by_name(name)
                .await?
                .ok_or_else(|| EspError::Protocol {
                    esp: ESP,
                    detail: "copy name is taken but no e-mail has it".to_owned(),
                }),
            Err(e) => Err(e),
        }
    }

    /// Points the copy at the list: `updatesource` for "Using the API" sources, `patch`
    /// otherwise; each falls back to the other when the account refuses it.
    async fn attach_list(&self, email: &Email, list_id: &str) -> Result<(), EspError> {
        let via_source = email.source.as_deref() == Some("api");
        let first = self.attach_once(&email.id, list_id, via_source).await;
        match first {
            Err(e) if matches!(api_code(&e), Some("6041" | "6037" | "6004")) => {
                // 6004 is also "source not set to Using the API" on updatesource; on patch it
                // means a wrong id, which the fallback then reports again.
                tracing::info!(email_id = %email.id, code = api_code(&e).unwrap_or(""), "emarsys attach fallback");
                self.attach_once(&email.id, list_id, !via_source).await
            }
            other => other,
        }
    }

    async fn attach_once(
        &self,
        email_id: &str,
        list_id: &str,
        via_source: bool,
    ) -> Result<(), EspError> {
        if via_source {
            let body = wire::UpdateSource {
                email_id: None,
                filter_id: "0".into(),
                contactlist_id: list_id.into(),
                exclude_filter_id: None,
                exclude_contactlist_id: None,
            };
            self.http
                .post(&format!("email/{email_id}/updatesource"), &body)
                .await?;
        } else {
            let body = wire::PatchEmail {
                contactlist: Some(list_id.into()),
                ..Default::default()
            };
            self.http
                .post(&format!("email/{email_id}/patch"), &body)
                .await?;
        }
        Ok(())
    }

    /// After a 409/6003 on launch: is the e-mail really launched or scheduled?
    async fn verify_launched(&self, email_id: &str) -> Result<(), EspError> {
        let email = self.get_email(email_id).await?;
        launch_state(&email)
    }
}

/// `Ok` when the e-mail is launching or launched/scheduled (api_status 1 or 2).
fn launch_state(email: &Email) -> Result<(), EspError> {
    match email.api_status {
        Some(1 | 2) => Ok(()),
        Some(s @ (10 | -10)) => Err(EspError::Api {
            esp: ESP,
            status: 200,
            code: format!("api_status {s}"),
            text: format!(
                "launch failed with api_error {}",
                email.api_error.unwrap_or_default()
            ),
            retryable: false,
        }),
        other => Err(EspError::Api {
            esp: ESP,
            status: 409,
            code: "6003".to_owned(),
            text: format!(
                "launch refused but the e-mail is not launched (api_status {})",
                other.map_or("absent".to_owned(), |s| s.to_string())
            ),
            retryable: true,
        }),
    }
}

/// The replyCode of an API error, if it is one.
fn api_code(e: &EspError) -> Option<&str> {
    match e {
        EspError::Api { code, .. } => Some(code.as_str()),
        _ => None,
    }
}

fn parse<T: DeserializeOwned>(data: Value, what: &str) -> Result<T, EspError> {
    serde_json::from_value(data).map_err(|e| EspError::Protocol {
        esp: ESP,
        detail: format!("unexpected {what}: {e}"),
    })
}

/// Ids go into URL paths: only digits, so nothing a caller passes can change the path.
fn numeric_id<'a>(what: &str, id: &'a str) -> Result<&'a str, EspError> {
    if !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id)
    } else {
        Err(EspError::Invalid {
            esp: ESP,
            detail: format!("{what} must be a numeric Emarsys id"),
        })
    }
}

/// Splits the per-id errors of an upload into "not in Emarsys" and other row errors. The reason
/// text of Emarsys repeats the id; it is masked, since outcomes end up in records and logs.
pub(crate) fn outcome(
    batch: &AudienceBatch,
    inserted: u64,
    errors: &wire::IdErrors,
) -> BatchOutcome {
    let mut out = BatchOutcome {
        accepted: inserted,
        ..Default::default()
    };
    if errors.0.is_empty() {
        return out;
    }
    for (index, contact) in batch.contacts.iter().enumerate() {
        let Some(codes) = errors.0.get(&contact.customer_id) else {
            continue;
        };
        if codes.contains_key(CODE_NO_CONTACT) {
            out.not_in_esp += 1;
        } else if let Some((code, text)) = codes.iter().next() {
            out.row_errors.push(RowError {
                index,
                code: code.clone(),
                reason: text.replace(contact.customer_id.as_str(), "<id>"),
            });
        }
    }
    out
}

#[async_trait]
impl Esp for EmarsysEsp {
    fn kind(&self) -> EspKind {
        ESP
    }

    fn account(&self) -> &AccountId {
        &self.config.account
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    fn claims_template_name(&self, name: &str) -> bool {
        let prefix = &self.config.template_prefix;
        !prefix.is_empty() && name.starts_with(prefix.as_str())
    }

    async fn list_templates(&self) -> Result<Vec<Template>, EspError> {
        let emails: Vec<Email> = parse(self.http.get("email/?status=1").await?, "e-mail list")?;
        let total = emails.len();
        let prefix = self.config.template_prefix.as_str();
        let templates: Vec<Template> = emails
            .into_iter()
            .filter_map(|e| {
                let kind = self.is_selectable(&e)?;
                Some(Template {
                    esp: ESP,
                    account: self.config.account.clone(),
                    display_name: e.name.strip_prefix(prefix).unwrap_or(&e.name).to_owned(),
                    id: e.id,
                    name: e.name,
                    subject: e.subject,
                    kind: Some(kind.to_owned()),
                    created: e.created,
                })
            })
            .collect();
        tracing::info!(account = %self.config.account, total, selected = templates.len(), "emarsys templates listed");
        Ok(templates)
    }

    async fn preview(&self, template_id: &str) -> Result<Preview, EspError> {
        let id = numeric_id("template id", template_id)?;
        let rendered = self
            .http
            .post(
                &format!("email/{id}/preview"),
                &wire::PreviewRequest {
                    version: "html".to_owned(),
                },
            )
            .await?;
        let email = self.get_email(id).await?;
        // The shape of preview `data` is undocumented (the docs show `{}`): a string is the
        // rendered HTML; anything else falls back to the stored source.
        let body = match rendered {
            Value::String(s) if !s.is_empty() => s,
            _ => email.html_source.clone().unwrap_or_default(),
        };
        Ok(Preview {
            template_id: id.to_owned(),
            content_type: "text/html".to_owned(),
            body,
            subject: email.subject,
        })
    }

    async fn create_audience(&self, req: &AudienceRequest<'_>) -> Result<EspIds, EspError> {
        let (campaign_id, variant) = (req.campaign_id, req.variant);
        let key_id = self.external_id_field_id().await?;
        let name = object_name(campaign_id, variant);
        let body = wire::CreateContactList {
            name: name.clone(),
            description: Some(format!("espbridge audience of campaign {campaign_id}")),
            key_id: key_id.clone(),
            external_ids: Vec::new(),
        };
        let list_id = match self.http.post("contactlist", &body).await {
            Ok(data) => parse::<wire::ContactListCreated>(data, "contact list")?.id,
            Err(e) if api_code(&e) == Some("3005") => {
                tracing::info!(%campaign_id, "emarsys contact list exists; reusing it");
                self.find_list_by_name(&name)
                    .await?
                    .ok_or_else(|| EspError::Protocol {
                        esp: ESP,
                        detail: "contact list name is taken but no list has it".to_owned(),
                    })?
            }
            Err(e) => return Err(e),
        };
        tracing::info!(%campaign_id, contact_list_id = %list_id, "emarsys audience ready");
        Ok(EspIds::default()
            .with(keys::CONTACT_LIST_ID, list_id)
            .with(keys::KEY_ID, key_id))
    }

    async fn upload_batch(
        &self,
        audience: &EspIds,
        batch: &AudienceBatch,
    ) -> Result<BatchOutcome, EspError> {
        if batch.contacts.len() > MAX_BATCH {
            return Err(EspError::Invalid {
                esp: ESP,
                detail: format!(
                    "batch of {} contacts exceeds the limit of {MAX_BATCH}",
                    batch.contacts.len()
                ),
            });
        }
        let list_id = numeric_id(
            "contact list id",
            audience.require(ESP, keys::CONTACT_LIST_ID)?,
        )?;
        if batch.contacts.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let key_id = match audience.get(keys::KEY_ID) {
            Some(k) => k.to_owned(),
            None => self.external_id_field_id().await?,
        };
        let body = wire::AddContacts {
            key_id,
            external_ids: batch
                .contacts
                .iter()
                .map(|c| c.customer_id.clone())
                .collect(),
        };
        let data = self
            .http
            .post(&format!("contactlist/{list_id}/add"), &body)
            .await?;
        let added: wire::ContactsAdded = parse(data, "contact-list add result")?;
        let out = outcome(batch, added.inserted_contacts, &added.errors);
        tracing::info!(
            contact_list_id = %list_id,
            first_ordinal = batch.first_ordinal,
            sent = batch.contacts.len(),
            accepted = out.accepted,
            not_in_esp = out.not_in_esp,
            row_errors = out.row_errors.len(),
            "emarsys batch uploaded"
        );
        Ok(out)
    }

    async fn schedule_send(&self, req: &SendRequest<'_>) -> Result<EspIds, EspError> {
        let template_id = numeric_id("template id", req.template_id)?;
        let list_id = numeric_id(
            "contact list id",
            req.audience.require(ESP, keys::CONTACT_LIST_ID)?,
        )?
        .to_owned();
        let zone = req.timezone.unwrap_or(&self.config.timezone).to_owned();
        let when = schedule::launch_schedule(req.send_at, &zone)?;
        let name = object_name(req.campaign_id, req.variant);

        let email_id = self.copy_template(template_id, &name).await?;
        let email_id = numeric_id("copied e-mail id", &email_id)?.to_owned();
        let ids = EspIds::default()
            .with(keys::EMAIL_ID, email_id.clone())
            .with(keys::CONTACT_LIST_ID, list_id.clone())
            .with(keys::LAUNCH_SCHEDULE, when.clone())
            .with(keys::LAUNCH_TIMEZONE, zone.clone());

        let email = self.get_email(&email_id).await?;
        match email.api_status {
            // An earlier attempt got as far as the launch.
            Some(1 | 2) => {
                tracing::info!(campaign_id = %req.campaign_id, %email_id, "emarsys send already scheduled");
                return Ok(ids);
            }
            // An earlier launch failed at Emarsys: report why instead of relaunching blindly.
            Some(10 | -10) => {
                launch_state(&email)?;
            }
            _ => {}
        }
        if email.contactlist.as_deref() != Some(list_id.as_str()) {
            self.attach_list(&email, &list_id).await?;
        }
        let launch = wire::Launch {
            schedule: Some(when.clone()),
            timezone: Some(zone.clone()),
            ..Default::default()
        };
        match self
            .http
            .post(&format!("email/{email_id}/launch"), &launch)
            .await
        {
            Ok(_) => {}
            Err(e @ EspError::Api { status: 409, .. }) if api_code(&e) == Some("6003") => {
                self.verify_launched(&email_id).await?;
            }
            Err(e) => return Err(e),
        }
        tracing::info!(campaign_id = %req.campaign_id, %email_id, contact_list_id = %list_id, schedule = %when, timezone = %zone, "emarsys send scheduled");
        Ok(ids)
    }

    async fn fetch_metrics(&self, sent: &EspIds) -> Result<Option<MetricCounts>, EspError> {
        let email_id = numeric_id("e-mail id", sent.require(ESP, keys::EMAIL_ID)?)?;
        let data = match self
            .http
            .get(&format!("email/{email_id}/responsesummary"))
            .await
        {
            Ok(d) => d,
            // Not launched yet: no counts until the send time has passed.
            Err(e) if api_code(&e) == Some("6003") => {
                tracing::info!(%email_id, "emarsys metrics not available yet");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let s: wire::ResponseSummary = parse(data, "response summary")?;
        let counts = metric_counts(&s);
        tracing::info!(%email_id, sent = counts.sent, delivered = counts.delivered, opens = counts.opens, clicks = counts.clicks, "emarsys metrics fetched");
        Ok(Some(counts))
    }
}

pub(crate) fn metric_counts(s: &wire::ResponseSummary) -> MetricCounts {
    MetricCounts {
        sent: s.sent,
        delivered: s.delivered(),
        opens: s.opened,
        clicks: s.unique_clicks,
        unsubscribes: s.unsubscribe,
        bounces: s.bounces(),
        complaints: s.complained,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use espbridge_core::ManualClock;
    use espbridge_core::ports::Contact;

    fn esp(prefix: &str) -> EmarsysEsp {
        let mut c = EmarsysConfig::new(AccountId::parse("eu").unwrap());
        c.template_prefix = prefix.to_owned();
        let creds = EmarsysCredentials {
            user: "u".into(),
            secret: "s".into(),
        };
        let clock = Arc::new(ManualClock::new("2026-11-24T00:00:00Z".parse().unwrap()));
        EmarsysEsp::new(c, creds, &BuildContext::in_memory(clock)).unwrap()
    }

    fn email(json: serde_json::Value) -> Email {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn template_rules_by_kind_source_status_and_prefix() {
        let e = esp("opt_");
        let pick = |j| e.is_selectable(&email(j));
        use serde_json::json;
        assert_eq!(
            pick(json!({"id":"1","name":"opt_a","status":"1","source":"api"})),
            Some("html")
        );
        assert_eq!(
            pick(
                json!({"id":"1","name":"opt_a","status":"1","source":"userlist","content_type":"html"})
            ),
            Some("html")
        );
        assert_eq!(
            pick(json!({"id":"1","name":"opt_a","status":"1","source":"profile"})),
            None
        );
        assert_eq!(
            pick(
                json!({"id":"1","name":"opt_a","status":"1","source":"api","content_type":"template"})
            ),
            Some("cms")
        );
        assert_eq!(
            pick(
                json!({"id":"1","name":"opt_a","status":"1","source":"userlist","content_type":"template"})
            ),
            None
        );
        assert_eq!(
            pick(
                json!({"id":"1","name":"opt_a","status":"1","source":"api","content_type":"block"})
            ),
            None
        );
        assert_eq!(
            pick(json!({"id":"1","name":"opt_a","status":"3","source":"api"})),
            None
        );
        assert_eq!(
            pick(json!({"id":"1","name":"other","status":"1","source":"api"})),
            None
        );
        assert_eq!(
            pick(
                json!({"id":"1","name":"opt_a","status":"1","source":"api","deleted":"2020-01-01 00:00:00"})
            ),
            None
        );
        assert!(e.claims_template_name("opt_spring"));
        assert!(!e.claims_template_name("spring"));
        assert!(!esp("").claims_template_name("anything"));
    }

    #[test]
    fn new_refuses_bad_configuration() {
        let creds = || EmarsysCredentials::new("u", "s");
        let ctx = BuildContext::in_memory(Arc::new(espbridge_core::SystemClock));
        let base = EmarsysConfig::new(AccountId::parse("eu").unwrap());
        // A bad base URL never gets this far: the configuration refuses it while it is read.
        let e = serde_json::from_str::<EmarsysConfig>(r#"{"account":"eu","base_url":"not a url"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("base_url"), "{e}");
        let mut c = base.clone();
        c.timezone = "Nowhere/City".into();
        assert!(matches!(
            EmarsysEsp::new(c, creds(), &ctx),
            Err(AdapterError::Config {
                esp: ESP,
                field: "timezone",
                ..
            })
        ));
        let mut c = base.clone();
        c.rate_limit_per_minute = 0;
        assert!(EmarsysEsp::new(c, creds(), &ctx).is_err());
        let empty = EmarsysCredentials::new("u", "");
        assert!(EmarsysEsp::new(base, empty, &ctx).is_err());
    }

    fn batch(ids: &[&str]) -> AudienceBatch {
        AudienceBatch {
            first_ordinal: 0,
            field_names: Arc::from(Vec::<String>::new()),
            contacts: ids
                .iter()
                .map(|id| Contact {
                    customer_id: (*id).to_owned(),
                    email: None,
                    fields: vec![],
                })
                .collect(),
        }
    }

    #[test]
    fn upload_outcome_splits_unknown_ids_from_other_errors_and_masks_ids() {
        let errors: wire::IdErrors = serde_json::from_value(serde_json::json!({
            "C2": {"2008": "No contact found with the external id: 4980 - C2"},
            "C4": {"2010": "More than one contact with the external id: 4980 - C4"}
        }))
        .unwrap();
        let out = outcome(&batch(&["C1", "C2", "C3", "C4"]), 2, &errors);
        assert_eq!(out.accepted, 2);
        assert_eq!(out.not_in_esp, 1);
        assert_eq!(
            out.row_errors,
            vec![RowError {
                index: 3,
                code: "2010".into(),
                reason: "More than one contact with the external id: 4980 - <id>".into()
            }]
        );
        let clean = outcome(&batch(&["C1"]), 1, &wire::IdErrors::default());
        assert_eq!(
            clean,
            BatchOutcome {
                accepted: 1,
                ..Default::default()
            }
        );
    }

    #[test]
    fn metrics_derive_delivered_and_bounces() {
        let s: wire::ResponseSummary = serde_json::from_value(serde_json::json!({
            "sent":"9850","planned":"10000","soft_bounces":"40","hard_bounces":"25","block_bounces":"5",
            "opened":"3120","unsubscribe":"18","total_clicks":"1402","unique_clicks":"870","complained":"2"
        }))
        .unwrap();
        assert_eq!(
            metric_counts(&s),
            MetricCounts {
                sent: 9850,
                delivered: 9780,
                opens: 3120,
                clicks: 870,
                unsubscribes: 18,
                bounces: 70,
                complaints: 2
            }
        );
        let odd: wire::ResponseSummary =
            serde_json::from_value(serde_json::json!({"sent":"1","hard_bounces":"5"})).unwrap();
        let m = metric_counts(&odd);
        assert_eq!((m.delivered, m.bounces, m.complaints), (0, 5, 0));
    }

    #[test]
    fn launch_state_accepts_1_and_2_and_reports_failures() {
        let st = |s: &str| {
            launch_state(&email(
                serde_json::json!({"id":"1","api_status":s,"api_error":"5"}),
            ))
        };
        assert!(st("1").is_ok());
        assert!(st("2").is_ok());
        for failed in ["10", "-10"] {
            match st(failed) {
                Err(EspError::Api {
                    text,
                    retryable: false,
                    ..
                }) => assert!(text.contains("api_error 5"), "{text}"),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            st("0"),
            Err(EspError::Api {
                retryable: true,
                ..
            })
        ));
    }

    #[test]
    fn ids_in_paths_must_be_numeric() {
        assert_eq!(numeric_id("x", "12345").unwrap(), "12345");
        for bad in ["", "12/../3", "1?a=b", "abc", "123456789012345678901"] {
            assert!(
                matches!(numeric_id("x", bad), Err(EspError::Invalid { .. })),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn oversized_batch_is_refused_before_any_call() {
        let e = esp("");
        let ids: Vec<String> = (0..=MAX_BATCH).map(|i| format!("C{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let audience = EspIds::default().with(keys::CONTACT_LIST_ID, "12");
        let err = e.upload_batch(&audience, &batch(&refs)).await.unwrap_err();
        assert!(matches!(err, EspError::Invalid { .. }), "{err:?}");
        let missing = e
            .upload_batch(&EspIds::default(), &batch(&["C1"]))
            .await
            .unwrap_err();
        assert!(matches!(missing, EspError::Invalid { .. }), "{missing:?}");
    }
}
