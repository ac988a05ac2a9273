//! The [`Esp`] implementation: messages of one folder as templates, one list per campaign
//! (variant), `addToList` by e-mail, one `triggered` delivery, its counters, and deletion of the
//! list after the retention.

use crate::client::{Call, Client, END_OF_RESULTS, Retry};
use crate::config::{BrontoConfig, BrontoCredentials};
use crate::wire::{
    self, Delivery, ItemResult, ListRef, MailList, Message, MessageFolder, NewDelivery, ReadObject,
    Recipient,
};
use async_trait::async_trait;
use espbridge_core::ports::esp::{CannotCancel, object_name};
use espbridge_core::ports::{
    AudienceBatch, AudienceRequest, BatchOutcome, Esp, EspError, EspIds, MetricCounts, Preview,
    RowError, SendRequest, SenderHeaders, Template,
};
use espbridge_core::{AccountId, CampaignId, EspKind};
use espbridge_esp_kit::{AdapterError, BuildContext};
use jiff::{SignedDuration, Timestamp};

const ESP: EspKind = EspKind::Bronto;

/// Keys of the [`EspIds`] this adapter returns.
pub mod keys {
    pub const LIST_ID: &str = "list_id";
    pub const LIST_NAME: &str = "list_name";
    pub const DELIVERY_ID: &str = "delivery_id";
    pub const MESSAGE_ID: &str = "message_id";
}

/// Item codes of `addToList` with their own meaning.
const CONTACT_NOT_FOUND: u32 = 302;
const ALREADY_ON_LIST: u32 = 506;
/// Item codes of list writes.
const INVALID_LIST: u32 = 501;
const LIST_EXISTS: u32 = 502;
const LIST_HAS_DELIVERIES: u32 = 505;
/// Item code of delivery writes: no delivery with that id (deleted before).
const DELIVERY_NOT_FOUND: u32 = 219;
/// Pages read before a listing is taken as runaway (5000 objects a page at most).
const MAX_PAGES: u32 = 200;

/// One Bronto account.
pub struct BrontoEsp {
    config: BrontoConfig,
    client: Client,
}

fn invalid(detail: impl Into<String>) -> EspError {
    EspError::Invalid {
        esp: ESP,
        detail: detail.into(),
    }
}

fn protocol(detail: impl Into<String>) -> EspError {
    EspError::Protocol {
        esp: ESP,
        detail: detail.into(),
    }
}

/// A failed write item as an API error (non-retryable but where a later state may differ).
fn item_error(op: &str, item: &ItemResult, retryable: bool) -> EspError {
    EspError::Api {
        esp: ESP,
        status: 200,
        code: item.error_code.to_string(),
        text: format!(
            "{op}: {}",
            item.error_string.as_deref().unwrap_or("item refused")
        ),
        retryable,
    }
}

/// The single item of a one-item write.
fn single_item(op: &str, response: &wire::Element) -> Result<ItemResult, EspError> {
    wire::write_results(response)
        .into_iter()
        .next()
        .ok_or_else(|| protocol(format!("{op} answer has no results")))
}

/// `xsd:dateTime` with an explicit `+00:00` offset, whole seconds.
pub fn bronto_start(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// Whether a returned start is the same instant as `t` (to the second).
fn same_instant(returned: Option<&str>, t: Timestamp) -> bool {
    returned
        .and_then(|s| s.parse::<Timestamp>().ok())
        .is_some_and(|r| r.as_second() == t.as_second())
}

/// The list label: readable at Bronto, unique per campaign (variant).
pub fn list_label(campaign_id: &CampaignId, variant: Option<&str>) -> String {
    match variant {
        Some(v) => format!("espbridge {campaign_id} {v}"),
        None => format!("espbridge {campaign_id}"),
    }
}

/// The Bronto metrics mapping (reference B.7.4).
pub fn metrics(c: wire::DeliveryCounts) -> MetricCounts {
    MetricCounts {
        sent: c.num_sends,
        delivered: c.num_deliveries,
        opens: c.uniq_opens,
        clicks: c.uniq_clicks,
        unsubscribes: c
            .unsubscribes_by_prefs
            .saturating_add(c.unsubscribes_by_complaint),
        bounces: c.num_bounces,
        complaints: c.unsubscribes_by_complaint,
    }
}

impl BrontoEsp {
    /// Validates `config` (sender headers included) and builds the HTTP client; the address
    /// allowance is held in `ctx`'s account limits, shared by the deployment.
    pub fn new(
        config: BrontoConfig,
        credentials: BrontoCredentials,
        ctx: &BuildContext,
    ) -> Result<Self, AdapterError> {
        config.validate()?;
        let client = Client::new(&config, credentials, std::sync::Arc::clone(&ctx.limits))?;
        Ok(Self { config, client })
    }

    pub fn config(&self) -> &BrontoConfig {
        &self.config
    }

    /// The `addToList` pace (addresses per real minute) the adapter keeps now, lowered from
    /// the configured one by each refusal and raised slowly after calls that go through; and
    /// the refusals so far.
    pub fn address_pace(&self) -> (f64, u64) {
        self.client.address_pace()
    }

    /// Every page of a read until an empty one (or Fault 116, "end of result set").
    async fn read_all<T>(
        &self,
        op: &'static str,
        page: impl Fn(u32) -> wire::Node,
        parse: impl Fn(&wire::Element) -> Vec<T>,
    ) -> Result<Vec<T>, EspError> {
        let mut all = Vec::new();
        for n in 1..=MAX_PAGES {
            let items = match self.client.call(Call::new(op, page(n))).await {
                Ok(r) => parse(&r),
                Err(EspError::Api { code, .. }) if code == END_OF_RESULTS.to_string() => break,
                Err(e) => return Err(e),
            };
            if items.is_empty() {
                break;
            }
            all.extend(items);
        }
        Ok(all)
    }

    async fn lists_named(&self, name: &str) -> Result<Vec<MailList>, EspError> {
        let op = wire::read_lists(vec![wire::criterion("name", "EqualTo", name)], Some(1));
        let r = self.client.call(Call::new("readLists", op)).await?;
        Ok(MailList::list(&r)
            .into_iter()
            .filter(|l| l.name == name && l.status.as_deref() != Some("deleted"))
            .collect())
    }

    async fn list_by_id(&self, id: &str) -> Result<Option<MailList>, EspError> {
        let op = wire::read_lists(vec![wire::id_criterion("id", id)], Some(1));
        let r = self.client.call(Call::new("readLists", op)).await?;
        Ok(MailList::list(&r)
            .into_iter()
            .find(|l| l.id == id && l.status.as_deref() != Some("deleted")))
    }

    /// Deliveries of `message_id` on the day of `start`, with their recipients.
    async fn deliveries_around(
        &self,
        message_id: &str,
        start: Timestamp,
    ) -> Result<Vec<Delivery>, EspError> {
        let value = bronto_start(start);
        self.read_all(
            "readDeliveries",
            |page| {
                wire::read_deliveries(
                    vec![
                        wire::id_criterion("messageId", message_id),
                        wire::criterion("start", "SameDay", &value),
                    ],
                    true,
                    page,
                )
            },
            Delivery::list,
        )
        .await
    }

    /// The headers of a send: the template's override or the account's, validated.
    fn headers(&self, req: &SendRequest<'_>) -> Result<SenderHeaders, EspError> {
        let headers = req
            .headers
            .cloned()
            .unwrap_or_else(|| self.config.headers());
        headers.validate().map_err(|errors| {
            let named: Vec<String> = errors.iter().map(|(f, why)| format!("{f} {why}")).collect();
            invalid(format!("sender headers: {}", named.join("; ")))
        })?;
        Ok(headers)
    }

    /// One `addToList` of `emails` (at most 5000); outcome indices are offset by `offset`.
    async fn add_chunk(
        &self,
        list_id: &str,
        chunk: &[(usize, &str)],
        outcome: &mut BatchOutcome,
    ) -> Result<(), EspError> {
        let mut call = Call::new(
            "addToList",
            wire::add_to_list(ListRef::Id(list_id), chunk.iter().map(|(_, e)| *e)),
        );
        call.addresses = chunk.len() as u64;
        let r = self.client.call(call).await?;
        let items = wire::write_results(&r);
        if items.len() != chunk.len() {
            return Err(protocol(format!(
                "addToList answered {} results for {} contacts",
                items.len(),
                chunk.len()
            )));
        }
        for (item, (index, email)) in items.iter().zip(chunk) {
            match item.error_code {
                0 | ALREADY_ON_LIST => outcome.accepted += 1,
                CONTACT_NOT_FOUND => outcome.not_in_esp += 1,
                code => outcome.row_errors.push(RowError {
                    index: *index,
                    code: code.to_string(),
                    // Bronto's texts may quote the address; keep it out of stored reasons.
                    reason: item
                        .error_string
                        .as_deref()
                        .unwrap_or("refused")
                        .replace(email, "<email>"),
                }),
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Esp for BrontoEsp {
    fn kind(&self) -> EspKind {
        ESP
    }
    fn account(&self) -> &AccountId {
        &self.config.account
    }
    fn max_batch(&self) -> usize {
        self.config.batch_size
    }
    /// `addToList` calls of [`BrontoConfig::addresses_per_call`] addresses, one at a time, at
    /// the address pace the adapter keeps now (the configured allowance, lowered by refusals).
    fn upload_pace(&self, _options: &serde_json::Value) -> espbridge_core::ports::esp::UploadPace {
        espbridge_core::ports::esp::UploadPace {
            rows_per_call: self.config.addresses_per_call() as u64,
            calls_per_minute: None,
            rows_per_minute: Some(self.address_pace().0),
            concurrency: 1,
            call_secs: 1.0,
        }
    }
    fn needs_email(&self) -> bool {
        true
    }
    fn default_headers(&self) -> Option<SenderHeaders> {
        Some(self.config.headers())
    }
    /// `list_retention_days` 0 deletes the list at completion.
    fn cleanup_after(&self) -> Option<SignedDuration> {
        match self.config.list_retention_days {
            0 => None,
            days => Some(SignedDuration::from_hours(24 * i64::from(days))),
        }
    }

    async fn list_templates(&self) -> Result<Vec<Template>, EspError> {
        let folder_name = &self.config.message_folder;
        let op =
            wire::read_message_folders(vec![wire::criterion("name", "EqualTo", folder_name)], 1);
        let r = self
            .client
            .call(Call::new("readMessageFolders", op))
            .await?;
        let Some(folder) = MessageFolder::list(&r)
            .into_iter()
            .find(|f| &f.name == folder_name)
        else {
            tracing::warn!(esp = "bronto", folder = %folder_name, "message folder not found; no templates");
            return Ok(Vec::new());
        };
        let messages = self
            .read_all(
                "readMessages",
                |page| {
                    wire::read_messages(
                        vec![wire::id_criterion("messageFolderId", &folder.id)],
                        false,
                        page,
                    )
                },
                Message::list,
            )
            .await?;
        Ok(messages
            .into_iter()
            // The filter already selects the folder; a server that ignores it is not trusted.
            .filter(|m| m.folder_id.as_deref().is_none_or(|f| f == folder.id))
            // Only sendable messages: drafts (`tmp`) and deleted ones (`delete`) are not
            // templates.
            .filter(Message::is_active)
            .map(|m| Template {
                esp: ESP,
                account: self.config.account.clone(),
                subject: m.subject().map(str::to_owned),
                id: m.id,
                display_name: m.name.clone(),
                name: m.name,
                kind: Some("message".to_owned()),
                // A messageObject carries no date (the WSDL; the SDK's newer model too).
                created: None,
            })
            .collect())
    }

    async fn preview(&self, template_id: &str) -> Result<Preview, EspError> {
        let op = wire::read_messages(vec![wire::id_criterion("id", template_id)], true, 1);
        let r = self.client.call(Call::new("readMessages", op)).await?;
        let message = Message::list(&r)
            .into_iter()
            .find(|m| m.id == template_id)
            .ok_or_else(|| EspError::NotFound {
                esp: ESP,
                what: format!("message {template_id}"),
            })?;
        let (content_type, content) = match (message.content_of("html"), message.content_of("text"))
        {
            (Some(h), _) => ("text/html", h),
            (None, Some(t)) => ("text/plain", t),
            (None, None) => return Err(protocol("readMessages returned no content")),
        };
        Ok(Preview {
            template_id: template_id.to_owned(),
            content_type: content_type.to_owned(),
            body: content.body.clone(),
            subject: content
                .subject
                .clone()
                .or_else(|| message.subject().map(str::to_owned)),
        })
    }

    async fn create_audience(&self, req: &AudienceRequest<'_>) -> Result<EspIds, EspError> {
        let (campaign_id, variant) = (req.campaign_id, req.variant);
        let name = object_name(campaign_id, variant);
        let ids = |id: String| {
            EspIds::default()
                .with(keys::LIST_ID, id)
                .with(keys::LIST_NAME, name.clone())
        };
        if let Some(l) = self.lists_named(&name).await?.into_iter().next() {
            tracing::info!(esp = "bronto", campaign = %campaign_id, "list exists");
            return Ok(ids(l.id));
        }
        let op = wire::add_lists(&name, &list_label(campaign_id, variant));
        let r = self.client.call(Call::new("addLists", op)).await?;
        let item = single_item("addLists", &r)?;
        let id = match (item.error_code, item.id.clone()) {
            (0, Some(id)) => id,
            (0, None) => return Err(protocol("addLists answer has no id")),
            // Made by a concurrent or earlier attempt whose answer was lost.
            (LIST_EXISTS, _) => self
                .lists_named(&name)
                .await?
                .into_iter()
                .next()
                .map(|l| l.id)
                .ok_or_else(|| protocol("list exists but cannot be read"))?,
            _ => return Err(item_error("addLists", &item, false)),
        };
        tracing::info!(esp = "bronto", campaign = %campaign_id, "list created");
        Ok(ids(id))
    }

    async fn upload_batch(
        &self,
        audience: &EspIds,
        batch: &AudienceBatch,
    ) -> Result<BatchOutcome, EspError> {
        let list_id = audience.require(ESP, keys::LIST_ID)?;
        let mut outcome = BatchOutcome::default();
        let mut with_email = Vec::with_capacity(batch.contacts.len());
        for (index, c) in batch.contacts.iter().enumerate() {
            match c.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
                Some(e) => with_email.push((index, e)),
                None => outcome.row_errors.push(RowError {
                    index,
                    code: "no_email".into(),
                    reason: "Bronto matches contacts by e-mail; the row has none".into(),
                }),
            }
        }
        // Calls of at most a tenth of the allowance: paced one call short of it, no window
        // ever holds more than it.
        let per_call = self.config.addresses_per_call();
        for chunk in with_email.chunks(per_call) {
            self.add_chunk(list_id, chunk, &mut outcome).await?;
        }
        outcome.row_errors.sort_by_key(|r| r.index);
        let (pace, refusals) = self.client.address_pace();
        tracing::info!(
            esp = "bronto",
            contacts = batch.contacts.len(),
            addresses_per_minute = pace as u64,
            rate_refusals = refusals,
            accepted = outcome.accepted,
            not_in_esp = outcome.not_in_esp,
            rejected = outcome.row_errors.len(),
            "batch added to list"
        );
        Ok(outcome)
    }

    async fn schedule_send(&self, req: &SendRequest<'_>) -> Result<EspIds, EspError> {
        let list_id = req.audience.require(ESP, keys::LIST_ID)?;
        let headers = self.headers(req)?;
        let delivery = NewDelivery {
            start: bronto_start(req.send_at),
            message_id: req.template_id.to_owned(),
            kind: "triggered".to_owned(),
            from_email: headers.from_email,
            from_name: headers.from_name,
            reply_email: headers.reply_to,
            recipients: vec![Recipient {
                kind: "list".to_owned(),
                id: list_id.to_owned(),
                delivery_type: Some("selected".to_owned()),
            }],
            fields: Vec::new(),
        };
        let mut attempt = 0;
        let delivery_id = loop {
            attempt += 1;
            // addDeliveries is not idempotent: every attempt (and a retry by the caller) first
            // looks for the delivery an earlier one may have made.
            let existing = self
                .deliveries_around(req.template_id, req.send_at)
                .await?
                .into_iter()
                .find(|d| same_instant(d.start.as_deref(), req.send_at) && d.selects_list(list_id));
            if let Some(d) = existing {
                tracing::info!(esp = "bronto", campaign = %req.campaign_id, "delivery already scheduled");
                break d.id;
            }
            let mut call = Call::new("addDeliveries", wire::add_deliveries(&delivery));
            call.retry = Retry::Once;
            match self.client.call(call).await {
                Ok(r) => {
                    let item = single_item("addDeliveries", &r)?;
                    if item.is_error() {
                        return Err(item_error("addDeliveries", &item, false));
                    }
                    break item
                        .id
                        .ok_or_else(|| protocol("addDeliveries answer has no id"))?;
                }
                Err(e) if e.is_retryable() && attempt < self.client.attempts() => {
                    tracing::info!(esp = "bronto", campaign = %req.campaign_id, error = %e, "addDeliveries failed; looking up before retrying");
                    tokio::time::sleep(self.client.backoff(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        };
        tracing::info!(esp = "bronto", campaign = %req.campaign_id, "delivery scheduled");
        let mut ids = req.audience.clone();
        ids.merge(
            &EspIds::default()
                .with(keys::DELIVERY_ID, delivery_id)
                .with(keys::MESSAGE_ID, req.template_id),
        );
        Ok(ids)
    }

    async fn fetch_metrics(&self, sent: &EspIds) -> Result<Option<MetricCounts>, EspError> {
        let delivery_id = sent.require(ESP, keys::DELIVERY_ID)?;
        let op = wire::read_deliveries(vec![wire::id_criterion("id", delivery_id)], false, 1);
        let r = self.client.call(Call::new("readDeliveries", op)).await?;
        let Some(d) = Delivery::list(&r).into_iter().find(|d| d.id == delivery_id) else {
            // Delivery data becomes readable a few minutes after addDeliveries.
            return Ok(None);
        };
        if d.status.as_deref().is_none_or(|s| s == "unsent") {
            return Ok(None);
        }
        Ok(d.counts.map(metrics))
    }

    /// `deleteDeliveries` of the campaign's delivery (reference B.7.3: "to cancel"). The
    /// delivery is read first: one Bronto reports `sent` or `sending` went out and is not
    /// touched (what Bronto answers to deleting one is not documented). A delivery deleted
    /// before is item error 219, taken as done.
    async fn cancel_send(&self, sent: &EspIds) -> Result<(), EspError> {
        let delivery_id = sent.require(ESP, keys::DELIVERY_ID)?;
        let op = wire::read_deliveries(vec![wire::id_criterion("id", delivery_id)], false, 1);
        let r = self.client.call(Call::new("readDeliveries", op)).await?;
        if let Some(d) = Delivery::list(&r).into_iter().find(|d| d.id == delivery_id)
            && let Some(status @ ("sent" | "sending")) = d.status.as_deref()
        {
            return Err(EspError::CannotCancel {
                esp: ESP,
                why: CannotCancel::AlreadySent,
                detail: format!("delivery {delivery_id} is {status}"),
            });
        }
        let r = self
            .client
            .call(Call::new(
                "deleteDeliveries",
                wire::delete_deliveries([delivery_id]),
            ))
            .await?;
        let item = single_item("deleteDeliveries", &r)?;
        match item.error_code {
            0 => {
                tracing::info!(
                    esp = "bronto",
                    "delivery deleted: nothing goes out at its start"
                );
                Ok(())
            }
            DELIVERY_NOT_FOUND => {
                tracing::info!(esp = "bronto", "delivery deleted before");
                Ok(())
            }
            _ => Err(item_error("deleteDeliveries", &item, false)),
        }
    }

    async fn cleanup(&self, ids: &EspIds) -> Result<(), EspError> {
        let Some(list_id) = ids.get(keys::LIST_ID) else {
            return Ok(());
        };
        let Some(list) = self.list_by_id(list_id).await? else {
            return Ok(());
        };
        if !list.name.starts_with("espbridge_") {
            return Err(invalid(format!(
                "list {list_id} was not made by espbridge; not deleting it"
            )));
        }
        let r = self
            .client
            .call(Call::new("deleteLists", wire::delete_lists([list_id])))
            .await?;
        let item = single_item("deleteLists", &r)?;
        match item.error_code {
            0 | INVALID_LIST => {
                tracing::info!(esp = "bronto", "campaign list deleted");
                Ok(())
            }
            LIST_HAS_DELIVERIES => Err(item_error("deleteLists", &item, true)),
            _ => Err(item_error("deleteLists", &item, false)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_has_an_explicit_offset() {
        let t: Timestamp = "2026-06-15T09:30:00.250Z".parse().unwrap();
        assert_eq!(bronto_start(t), "2026-06-15T09:30:00+00:00");
        assert!(same_instant(Some("2026-06-15T09:30:00Z"), t));
        assert!(same_instant(Some("2026-06-15T05:30:00-04:00"), t));
        assert!(!same_instant(Some("2026-06-15T09:31:00Z"), t));
        assert!(!same_instant(None, t));
    }

    #[test]
    fn unsubscribes_add_both_kinds() {
        let m = metrics(wire::DeliveryCounts {
            num_sends: 100,
            num_deliveries: 98,
            num_bounces: 2,
            uniq_opens: 25,
            uniq_clicks: 4,
            unsubscribes_by_prefs: 3,
            unsubscribes_by_complaint: 1,
        });
        assert_eq!((m.sent, m.delivered, m.bounces), (100, 98, 2));
        assert_eq!((m.opens, m.clicks), (25, 4));
        assert_eq!((m.unsubscribes, m.complaints), (4, 1));
    }

    #[test]
    fn labels_name_campaign_and_variant() {
        let c = CampaignId::parse("881").unwrap();
        assert_eq!(list_label(&c, Some("A")), "espbridge 881 A");
        assert_eq!(list_label(&c, None), "espbridge 881");
    }
}
