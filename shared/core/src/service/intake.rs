//! Intake: an object event of the drop bucket becomes a campaign record (a manifest), a
//! conversions attribution (a conversions file), or nothing.
//!
//! The drop is recorded and its campaign created in one conditional write keyed on the drop
//! (bucket, key, ETag): a re-delivered event finds the campaign and resumes it. A manifest that
//! breaks the schema, or names an account or columns the deployment cannot serve, still makes a
//! record: the campaign, failed with every problem, so the refusal is visible.

use super::common::Deadline;
use super::common::{ServiceError, chain};
use super::conversions::ConversionOutcome;
use super::upload::{UploadOutcome, UploadService};
use crate::campaign::{Campaign, ControlState, State, VariantState};
use crate::conversions::ConversionsPath;
use crate::ids::{AccountId, EspKind};
use crate::manifest::{self, DropPath, Manifest};
use crate::ports::esp::EspIds;
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
    /// manifest).
    pub async fn handle_object(
        &self,
        obj: &ObjectRef,
        deadline: Deadline,
    ) -> Result<ObjectOutcome, ServiceError> {
        if ConversionsPath::parse(&obj.key).is_some() {
            return Ok(ObjectOutcome::Conversions(
                self.conversions().attribute_conversions(obj).await?,
            ));
        }
        Ok(ObjectOutcome::Upload(
            self.handle_drop(obj, deadline).await?,
        ))
    }

    /// Handles an S3 ObjectCreated for `drop`.
    pub async fn handle_drop(
        &self,
        drop: &ObjectRef,
        deadline: Deadline,
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
        let (bytes, _) = self.source.read_small(&drop.bucket, &drop.key).await?;
        let now = self.clock.now();
        let parsed = manifest::parse(&bytes, &drop.key, &path).map_err(|e| e.to_string());
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
        self.run_upload(campaign, deadline, false).await
    }

    /// The manifest's account exists, and its columns suit the ESP. Errors read like the
    /// manifest's own: the file (the manifest's key), the field, the problem.
    fn check_against_accounts(
        &self,
        m: Manifest,
        file: &str,
    ) -> Result<(Manifest, AccountId), String> {
        let esp = self
            .esps
            .choose(m.esp, m.account.as_ref(), m.template_name.as_deref())
            .map_err(|e| format!("{file} rejected: /account: {}", chain(&e)))?;
        if esp.needs_email() && m.audience.columns.email.is_none() {
            return Err(format!(
                "{file} rejected: /audience/columns/email: {} matches contacts by e-mail, so an e-mail column is required",
                m.esp
            ));
        }
        Ok((m, esp.account().clone()))
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
    c.template_id = raw
        .get("template_id")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    c.manifest = raw;
    c
}
