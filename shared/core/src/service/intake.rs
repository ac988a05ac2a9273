//! Intake: an object event of the drop bucket becomes a campaign record (a manifest), a
//! conversions attribution (a conversions file), or nothing.
//!
//! The drop is recorded and its campaign created in one conditional write keyed on the drop
//! (bucket, key, ETag): a re-delivered event finds the campaign and resumes it. A manifest that
//! breaks the schema, or names an account or columns the deployment cannot serve, still makes a
//! record: the campaign, failed with every problem, so the refusal is visible.

use super::accounts::EspRegistry;
use super::common::Deadline;
use super::common::{ServiceError, campaign_failed, chain};
use super::conversions::ConversionOutcome;
use super::upload::{UploadOutcome, UploadService};
use crate::campaign::{Campaign, ControlState, State, VariantState};
use crate::conversions::ConversionsPath;
use crate::ids::{AccountId, EspKind};
use crate::manifest::{self, DropPath, Manifest};
use crate::ports::esp::EspIds;
use crate::ports::source::SourceError;
use crate::ports::{Created, ObjectRef, StoreError};

/// What an object event in the drop bucket led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectOutcome {
    Upload(UploadOutcome),
    Conversions(ConversionOutcome),
}

impl UploadService {
    /// Routes an object event of the drop bucket: conversions files to the attribution,
    /// anything else to [`handle_drop`](Self::handle_drop) (which ignores what is not a
    /// manifest). `final_attempt` is the event's last allowed delivery.
    pub async fn handle_object(
        &self,
        obj: &ObjectRef,
        deadline: Deadline,
        final_attempt: bool,
    ) -> Result<ObjectOutcome, ServiceError> {
        if ConversionsPath::parse(&obj.key).is_some() {
            return Ok(ObjectOutcome::Conversions(
                self.conversions().attribute_conversions(obj).await?,
            ));
        }
        Ok(ObjectOutcome::Upload(
            self.handle_drop(obj, deadline, final_attempt).await?,
        ))
    }

    /// Handles an S3 ObjectCreated for `drop`. On its last allowed delivery (`final_attempt`)
    /// a retryable error fails the campaign with its reason, as for a continuation: otherwise
    /// the event would go to the dead-letter queue and leave the campaign `uploading`.
    pub async fn handle_drop(
        &self,
        drop: &ObjectRef,
        deadline: Deadline,
        final_attempt: bool,
    ) -> Result<UploadOutcome, ServiceError> {
        let path = match DropPath::parse(&drop.key) {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(UploadOutcome::Ignored(drop.key.clone())),
            Err(e) => {
                // No campaign id can be read from the key, so no record can carry the failure.
                tracing::error!(key = %drop.key, reason = %e.reason, "drop refused");
                return Ok(UploadOutcome::Ignored(e.reason));
            }
        };
        let now = self.clock.now();
        let (bytes, parsed) = match self.source.read_small(&drop.bucket, &drop.key).await {
            Ok((bytes, _)) => {
                let parsed = manifest::parse(&bytes, &drop.key, &path).map_err(|e| e.to_string());
                (bytes, parsed)
            }
            // Refused unread: the record says why, the drop stays in the bucket.
            Err(SourceError::TooLarge { key, limit }) => (
                Vec::new(),
                Err(format!(
                    "{key} rejected: larger than {limit} bytes (a manifest is a few kilobytes)"
                )),
            ),
            Err(SourceError::NotAFile { key, reason }) => {
                (Vec::new(), Err(format!("{key} rejected: {reason}")))
            }
            Err(e) => return Err(e.into()),
        };
        let parsed = parsed.and_then(|m| self.check_against_accounts(m, &drop.key));
        let candidate = match &parsed {
            Ok((m, account)) => new_campaign(drop, &path, m, account.clone(), now),
            Err(reason) => {
                let mut c = rejected_campaign(drop, &path, &bytes, now);
                c.fail("manifest", reason.clone(), now);
                c
            }
        };
        let campaign = match self.store.create_from_drop(drop, &candidate).await {
            Ok(Created::New(c)) => {
                tracing::info!(campaign_id = %c.id, state = %c.state, "campaign created from drop");
                // A refused manifest is alerted once, when its failed record is created.
                campaign_failed(self.alerts.as_ref(), self.metrics.as_ref(), &c).await;
                c
            }
            Ok(Created::Existing(c)) => {
                tracing::info!(campaign_id = %c.id, state = %c.state, "drop seen before: resuming");
                c
            }
            Err(StoreError::CampaignExists {
                campaign_id,
                existing_key,
            }) => {
                // Never a second send for one campaign id: the new drop is left untouched.
                tracing::error!(campaign_id = %campaign_id, existing = %existing_key, key = %drop.key,
                    "a campaign with this id came from another drop; this drop is ignored");
                return Ok(UploadOutcome::Ignored(format!(
                    "campaign {campaign_id} already exists from {existing_key}"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if campaign.state == State::Failed {
            if let Some(f) = &campaign.failure {
                tracing::warn!(campaign_id = %campaign.id, step = %f.step, reason = %f.reason, "campaign failed");
            }
            return Ok(UploadOutcome::Failed(campaign.id));
        }
        self.run_upload(campaign, deadline, final_attempt).await
    }

    /// The manifest's account exists, and the rest suits it: columns, options, the send time.
    /// Errors read like the manifest's own: the file (the manifest's key), the field, the
    /// problem. Nothing here calls the ESP.
    fn check_against_accounts(
        &self,
        m: Manifest,
        file: &str,
    ) -> Result<(Manifest, AccountId), String> {
        self.account_check()
            .manifest(m)
            .map_err(|r| format!("{file} rejected: {}: {}", r.field, r.problem))
    }

    fn account_check(&self) -> AccountCheck<'_> {
        AccountCheck {
            esps: &self.esps,
            now: self.clock.now(),
            send_horizon: self.settings.send_horizon,
        }
    }
}

/// What a manifest is held against before any ESP call: the configured accounts and the send
/// window around `now`. The intake refuses a drop with it; `espbridge check` reports with it.
pub(crate) struct AccountCheck<'a> {
    pub esps: &'a EspRegistry,
    pub now: jiff::Timestamp,
    pub send_horizon: std::time::Duration,
}

/// Why a manifest does not suit the deployment: its field (a JSON pointer) and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub field: String,
    pub problem: String,
}

impl AccountCheck<'_> {
    /// The manifest's account exists, and the rest suits it: columns, options, the send time.
    pub(crate) fn manifest(&self, m: Manifest) -> Result<(Manifest, AccountId), Refusal> {
        let reject = |field: &str, problem: String| Refusal {
            field: field.to_owned(),
            problem,
        };
        let esp = self
            .esps
            .choose(m.esp, m.account.as_ref(), m.template_name.as_deref())
            .map_err(|e| reject("/account", chain(&e)))?;
        if esp.needs_email() && m.audience.columns.email.is_none() {
            return Err(reject(
                "/audience/columns/email",
                format!(
                    "{} matches contacts by e-mail, so an e-mail column is required",
                    m.esp
                ),
            ));
        }
        if let Some(other) = m.esp_options.keys().find(|k| k.as_str() != m.esp.as_str()) {
            return Err(reject(
                &format!("/esp_options/{other}"),
                format!("options for another ESP than the campaign's ({})", m.esp),
            ));
        }
        let options = m.esp_options();
        esp.check_options(&options)
            .map_err(|p| reject(&format!("/esp_options/{}", m.esp), p))?;
        if !m.audience.columns.fields.is_empty() && !esp.carries_fields(&options) {
            return Err(reject(
                "/audience/columns/fields",
                format!(
                    "{} cannot carry personalization fields{}; remove them, or they would be dropped",
                    m.esp,
                    if m.esp == EspKind::Silverpop {
                        " in Lists mode (Relational Tables mode carries them)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        let policy = self.esps.policy(m.esp, esp.account());
        self.send_window(m.send_at, policy.grace)
            .map_err(|p| reject("/send_at", p))?;
        Ok((m, esp.account().clone()))
    }

    /// The send time lies in the window the deployment accepts: at most the account's grace in
    /// the past (a drop that arrives a little late still sends at once), at most the horizon
    /// ahead (the drop bucket deletes the files the analysis re-reads).
    pub(crate) fn send_window(
        &self,
        send_at: jiff::Timestamp,
        grace: std::time::Duration,
    ) -> Result<(), String> {
        let now = self.now;
        let grace = jiff::SignedDuration::try_from(grace).unwrap_or_default();
        let horizon = jiff::SignedDuration::try_from(self.send_horizon).unwrap_or_default();
        if send_at < now.checked_sub(grace).unwrap_or(now) {
            return Err(format!(
                "{send_at} is more than {} minutes in the past",
                grace.as_mins()
            ));
        }
        if send_at > now.checked_add(horizon).unwrap_or(now) {
            return Err(format!(
                "{send_at} is more than {} days ahead (the drop bucket keeps a drop's files {} days)",
                horizon.as_hours() / 24,
                horizon.as_hours() / 24
            ));
        }
        Ok(())
    }
}

fn new_campaign(
    drop: &ObjectRef,
    path: &DropPath,
    m: &Manifest,
    account: AccountId,
    now: jiff::Timestamp,
) -> Campaign {
    let mut c = Campaign::received(path.campaign_id.clone(), &path.run_date, drop.clone(), now);
    c.esp = Some(m.esp);
    c.account = Some(account);
    c.template_id = m.template_id.clone();
    c.send_at = Some(m.send_at);
    c.timezone = m.timezone.clone();
    c.manifest = serde_json::to_value(m).unwrap_or(serde_json::Value::Null);
    c.variants = m
        .variants
        .iter()
        .map(|v| VariantState {
            name: v.name.clone(),
            template_id: v.template_id.clone(),
            share: v.share,
            assigned: 0,
            not_in_esp: 0,
            esp_rejected: 0,
            esp_ids: EspIds::default(),
        })
        .collect();
    c.control = m.control_group.as_ref().map(|g| ControlState {
        holdout_share: g.holdout_share,
        file: g.file.clone(),
        file_ids: 0,
    });
    c
}

/// The record of a drop whose manifest was refused: what could be read of it is kept.
fn rejected_campaign(
    drop: &ObjectRef,
    path: &DropPath,
    bytes: &[u8],
    now: jiff::Timestamp,
) -> Campaign {
    let raw: serde_json::Value = serde_json::from_slice(bytes).unwrap_or(serde_json::Value::Null);
    let mut c = Campaign::received(path.campaign_id.clone(), &path.run_date, drop.clone(), now);
    c.esp = raw
        .get("esp")
        .and_then(|v| v.as_str())
        .and_then(|s| EspKind::parse(s).ok());
    c.template_id = crate::text::bounded(
        raw.get("template_id")
            .and_then(|v| v.as_str())
            .unwrap_or_default(),
        128,
    );
    // The refused manifest stays in the drop; the record keeps none of it (it may be anything
    // up to 256 KiB, and the record must fit one DynamoDB item).
    c
}
