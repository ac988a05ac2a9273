//! The campaign store on one DynamoDB table (single-table design).
//!
//! | item | `pk` | `sk` | notes |
//! |---|---|---|---|
//! | campaign | `CAMPAIGN#<id>` | `META` | the record's fields as attributes; `gsi1pk = STATE#<state>`, `gsi1sk = <id>`; `gsi2pk = RUN#<run date>`, `gsi2sk = <state>#<id>` |
//! | drop (idempotency) | `DROP#<bucket>/<key>#<etag>` | `DROP` | `campaign_id` |
//! | run | `CAMPAIGN#<id>` | `RUN#<started_at, UTC, 9 fraction digits>#<unique>` | run history, sorts by start |
//! | snapshot | `CAMPAIGN#<id>` | `METRIC#<day, 3 digits>` | one per polling day |
//!
//! Listing reads the indexes only: a run date is one `gsi2` partition (its state a `begins_with`
//! on the sort key), a state alone is one `gsi1` partition, and no filter walks the `gsi1`
//! partitions state by state. ESP and account are filter expressions on what those read.
//!
//! The campaign item doubles as the claim on its id: it is written with
//! `attribute_not_exists(pk)` in the same transaction as the drop record, so a second drop for
//! one campaign id cannot create it again. Every later write is conditional on `version`.

use crate::error::AwsError;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, Put, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TableStatus, TransactWriteItem,
};
use espbridge_core::campaign::{Campaign, MetricSnapshot, RunRecord, State};
use espbridge_core::ids::{AccountId, CampaignId, EspKind};
use espbridge_core::ports::esp::SenderHeaders;
use espbridge_core::ports::listing::{
    CampaignFilter, CampaignPage, MAX_PAGE as MAX_LIST_PAGE, Position, Resume, states_in_order,
};
use espbridge_core::ports::source::ObjectRef;
use espbridge_core::ports::store::{CampaignStore, Created, StoreError};
use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

const PK: &str = "pk";
const SK: &str = "sk";
const GSI1: &str = "gsi1";
const GSI1_PK: &str = "gsi1pk";
const GSI1_SK: &str = "gsi1sk";
const GSI2: &str = "gsi2";
const GSI2_PK: &str = "gsi2pk";
const GSI2_SK: &str = "gsi2sk";
/// Query calls one listing page may make. With an ESP or account filter a call can match
/// nothing; the page then ends short, with a cursor, rather than reading on unbounded.
const LIST_READS: usize = 20;
const META: &str = "META";
const DROP_SK: &str = "DROP";
const RUN_PREFIX: &str = "RUN#";
const METRIC_PREFIX: &str = "METRIC#";
const HEADERS_SK: &str = "HEADERS";
/// DynamoDB's cap on items per query page; we never ask for more.
const MAX_PAGE: usize = 1000;

/// [`CampaignStore`] on a DynamoDB table created by [`create_table`].
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn query_prefix<T: DeserializeOwned>(
        &self,
        id: &CampaignId,
        prefix: &str,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(campaign_pk(id)))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable(crate::error::from_sdk("Query", e)))?;
            for item in page.items.unwrap_or_default() {
                out.push(decode(item, id)?);
            }
            start = page.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                return Ok(out);
            }
        }
    }
}

#[async_trait]
impl CampaignStore for DynamoStore {
    async fn create_from_drop(
        &self,
        drop: &ObjectRef,
        campaign: &Campaign,
    ) -> Result<Created, StoreError> {
        let mut created = campaign.clone();
        created.version = 1;
        let campaign_item = campaign_item(&created)?;
        let drop_item = HashMap::from([
            (PK.to_owned(), s(drop_pk(drop))),
            (SK.to_owned(), s(DROP_SK)),
            ("campaign_id".to_owned(), s(created.id.as_str())),
        ]);
        let put = |item: Item| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(|e| {
                    StoreError::Backend(crate::error::local("TransactWriteItems", e.to_string()))
                })
        };
        let result = self
            .client
            .transact_write_items()
            .transact_items(put(drop_item)?)
            .transact_items(put(campaign_item)?)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Created::New(created)),
            Err(e) => e,
        };
        // Which condition failed: [0] the drop was seen before, [1] the id is taken.
        let failed: Option<(bool, bool)> = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(tc)) => {
                let reasons = tc.cancellation_reasons();
                let check = |i: usize| {
                    reasons
                        .get(i)
                        .and_then(|r| r.code())
                        .is_some_and(|c| c == "ConditionalCheckFailed")
                };
                Some((check(0), check(1)))
            }
            _ => None,
        };
        match failed {
            Some((true, _)) => match self.get(&created.id).await? {
                Some(current) => Ok(Created::Existing(current)),
                None => Err(StoreError::Corrupt(format!(
                    "drop of campaign {} is recorded but the campaign item is missing",
                    created.id
                ))),
            },
            Some((false, true)) => {
                let existing_key = match self.get(&created.id).await? {
                    Some(c) => format!("{}/{}", c.drop.bucket, c.drop.key),
                    None => "unknown".to_owned(),
                };
                Err(StoreError::CampaignExists {
                    campaign_id: created.id,
                    existing_key,
                })
            }
            _ => Err(unavailable(crate::error::from_sdk(
                "TransactWriteItems",
                err,
            ))),
        }
    }

    async fn get(&self, id: &CampaignId) -> Result<Option<Campaign>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(campaign_pk(id)))
            .key(SK, s(META))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(crate::error::from_sdk("GetItem", e)))?;
        out.item.map(|item| decode(item, id)).transpose()
    }

    async fn save(&self, next: &Campaign) -> Result<Campaign, StoreError> {
        let expected = next.version;
        let mut stored = next.clone();
        stored.version = expected.saturating_add(1);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(campaign_item(&stored)?))
            .condition_expression("attribute_exists(#pk) AND #version = :expected")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", n(expected))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(stored),
            // With ALL_OLD the service returns the item it compared against: none means there
            // was no campaign to save over.
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => {
                    if c.item().is_some_and(|i| !i.is_empty()) {
                        Err(StoreError::Conflict {
                            campaign_id: next.id.clone(),
                            expected,
                        })
                    } else {
                        Err(StoreError::NotFound(next.id.clone()))
                    }
                }
                _ => Err(unavailable(crate::error::from_sdk("PutItem", e))),
            },
        }
    }

    async fn add_run(&self, id: &CampaignId, run: &RunRecord) -> Result<(), StoreError> {
        let mut item = encode(run, id)?;
        item.insert(PK.to_owned(), s(campaign_pk(id)));
        item.insert(SK.to_owned(), s(run_sk(run.started_at, unique_suffix())));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            // The suffix is unique; the condition only guards against ever overwriting history.
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await
            .map_err(|e| unavailable(crate::error::from_sdk("PutItem", e)))?;
        Ok(())
    }

    async fn runs(&self, id: &CampaignId) -> Result<Vec<RunRecord>, StoreError> {
        self.query_prefix(id, RUN_PREFIX).await
    }

    async fn put_snapshot(
        &self,
        id: &CampaignId,
        snapshot: &MetricSnapshot,
    ) -> Result<bool, StoreError> {
        let mut item = encode(snapshot, id)?;
        item.insert(PK.to_owned(), s(campaign_pk(id)));
        item.insert(SK.to_owned(), s(metric_sk(snapshot.day)));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable(crate::error::from_sdk("PutItem", e))),
        }
    }

    async fn snapshots(&self, id: &CampaignId) -> Result<Vec<MetricSnapshot>, StoreError> {
        self.query_prefix(id, METRIC_PREFIX).await
    }

    async fn template_headers(
        &self,
        esp: EspKind,
        account: &AccountId,
        template_id: &str,
    ) -> Result<Option<SenderHeaders>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(template_pk(esp, account, template_id)))
            .key(SK, s(HEADERS_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(crate::error::from_sdk("GetItem", e)))?;
        out.item
            .map(|item| {
                serde_dynamo::from_item(item).map_err(|e| {
                    StoreError::Corrupt(format!("headers of {esp} template {template_id}: {e}"))
                })
            })
            .transpose()
    }

    async fn put_template_headers(
        &self,
        esp: EspKind,
        account: &AccountId,
        template_id: &str,
        headers: &SenderHeaders,
    ) -> Result<(), StoreError> {
        let mut item: Item = serde_dynamo::to_item(headers).map_err(|e| {
            StoreError::Corrupt(format!("headers of {esp} template {template_id}: {e}"))
        })?;
        item.insert(PK.to_owned(), s(template_pk(esp, account, template_id)));
        item.insert(SK.to_owned(), s(HEADERS_SK));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| unavailable(crate::error::from_sdk("PutItem", e)))?;
        Ok(())
    }

    /// Reads the `gsi1` index, which is eventually consistent: a campaign that just changed
    /// state may still be listed under its old one. Callers act through conditional saves, so
    /// a stale entry costs a conflict, never a double action.
    async fn list_by_state(&self, state: State, limit: usize) -> Result<Vec<Campaign>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        while out.len() < limit {
            let page_size = (limit - out.len()).min(MAX_PAGE);
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("#g = :g")
                .expression_attribute_names("#g", GSI1_PK)
                .expression_attribute_values(":g", s(state_pk(state)))
                .limit(i32::try_from(page_size).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable(crate::error::from_sdk("Query", e)))?;
            for item in page.items.unwrap_or_default() {
                let c: Campaign = serde_dynamo::from_item(item)
                    .map_err(|e| StoreError::Corrupt(format!("campaign in state {state}: {e}")))?;
                out.push(c);
            }
            start = page.last_evaluated_key.filter(|k| !k.is_empty());
            if start.is_none() {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Reads `gsi2` for a run date, else `gsi1` state by state (see the module docs). Like
    /// `list_by_state`, eventually consistent.
    async fn list(
        &self,
        filter: &CampaignFilter,
        after: Option<&Position>,
        limit: usize,
    ) -> Result<CampaignPage, StoreError> {
        let mut walk = Walk {
            limit: limit.clamp(1, MAX_LIST_PAGE),
            found: Vec::new(),
            reads: 0,
            last: after.cloned(),
        };
        if let Some(date) = &filter.run_date {
            let pk = run_pk(date.as_str());
            let range = match (filter.state, after) {
                (None, None) => SortRange::All,
                (None, Some(p)) => SortRange::After(p.sort_key()),
                (Some(state), _) => match Position::resume_in(after, state) {
                    Resume::Start => SortRange::Prefix(format!("{state}#")),
                    Resume::After(id) => SortRange::Within(
                        format!("{state}#{id}"),
                        // Above every id character: the end of the state's keys.
                        format!("{state}#~"),
                    ),
                    Resume::Done => return Ok(walk.finish(true)),
                },
            };
            let done = self
                .walk_index(&mut walk, filter, GSI2, (GSI2_PK, pk), (GSI2_SK, range))
                .await?;
            return Ok(walk.finish(done));
        }
        let states = filter.state.map_or_else(states_in_order, |s| vec![s]);
        for state in states {
            let range = match Position::resume_in(after, state) {
                Resume::Start => SortRange::All,
                Resume::After(id) => SortRange::After(id.to_string()),
                Resume::Done => continue,
            };
            if walk.is_over() {
                return Ok(walk.finish(false));
            }
            let done = self
                .walk_index(
                    &mut walk,
                    filter,
                    GSI1,
                    (GSI1_PK, state_pk(state)),
                    (GSI1_SK, range),
                )
                .await?;
            if !done {
                return Ok(walk.finish(false));
            }
        }
        Ok(walk.finish(true))
    }
}

/// Which sort keys of an index partition a listing reads.
enum SortRange {
    All,
    Prefix(String),
    /// Strictly after the key.
    After(String),
    /// From the first key (itself excluded) to the second.
    Within(String, String),
}

/// One listing page being read: what it found, the Query calls made, and the last position
/// read (a cursor past items the filters dropped).
struct Walk {
    limit: usize,
    found: Vec<Campaign>,
    reads: usize,
    last: Option<Position>,
}

impl Walk {
    /// The page holds one more than the limit (so another follows) or the read budget is spent.
    fn is_over(&self) -> bool {
        self.found.len() > self.limit || self.reads >= LIST_READS
    }

    /// The page; `complete` when every index partition was read to its end.
    fn finish(mut self, complete: bool) -> CampaignPage {
        let next = if self.found.len() > self.limit {
            self.found.truncate(self.limit);
            self.found.last().map(Position::of)
        } else if complete {
            None
        } else {
            self.last
        };
        CampaignPage {
            campaigns: self.found,
            next,
        }
    }
}

impl DynamoStore {
    /// Reads one index partition from `range` into `walk` until the page is over; true when
    /// the partition was read to its end.
    async fn walk_index(
        &self,
        walk: &mut Walk,
        filter: &CampaignFilter,
        index: &str,
        (pk_name, pk): (&str, String),
        (sk_name, range): (&str, SortRange),
    ) -> Result<bool, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .expression_attribute_names("#pk", pk_name)
            .expression_attribute_values(":pk", s(pk))
            // The most one page can use, plus the one that says another page follows.
            .limit(i32::try_from(MAX_LIST_PAGE + 1).unwrap_or(i32::MAX));
        let mut skip: Option<String> = None;
        let condition = match range {
            SortRange::All => "#pk = :pk",
            SortRange::Prefix(p) => {
                query = query.expression_attribute_values(":sk", s(p));
                "#pk = :pk AND begins_with(#sk, :sk)"
            }
            SortRange::After(k) => {
                query = query.expression_attribute_values(":sk", s(k));
                "#pk = :pk AND #sk > :sk"
            }
            SortRange::Within(lo, hi) => {
                skip = Some(lo.clone());
                query = query
                    .expression_attribute_values(":sk", s(lo))
                    .expression_attribute_values(":hi", s(hi));
                "#pk = :pk AND #sk BETWEEN :sk AND :hi"
            }
        };
        if condition.contains("#sk") {
            query = query.expression_attribute_names("#sk", sk_name);
        }
        let mut filters = Vec::new();
        if let Some(esp) = filter.esp {
            query = query
                .expression_attribute_names("#esp", "esp")
                .expression_attribute_values(":esp", s(esp.as_str()));
            filters.push("#esp = :esp");
        }
        if let Some(account) = &filter.account {
            query = query
                .expression_attribute_names("#account", "account")
                .expression_attribute_values(":account", s(account.as_str()));
            filters.push("#account = :account");
        }
        if !filters.is_empty() {
            query = query.filter_expression(filters.join(" AND "));
        }
        let query = query.key_condition_expression(condition);
        let mut start: Option<Item> = None;
        loop {
            if walk.is_over() {
                return Ok(false);
            }
            walk.reads += 1;
            let page = query
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable(crate::error::from_sdk("Query", e)))?;
            for item in page.items.unwrap_or_default() {
                let c: Campaign = serde_dynamo::from_item(item)
                    .map_err(|e| StoreError::Corrupt(format!("listed campaign: {e}")))?;
                if skip.as_deref() == Some(Position::of(&c).sort_key().as_str()) {
                    continue;
                }
                walk.last = Some(Position::of(&c));
                walk.found.push(c);
            }
            start = page.last_evaluated_key.filter(|k| !k.is_empty());
            let Some(key) = &start else {
                return Ok(true);
            };
            // Past items the filters dropped: the next page resumes after them.
            if let Some(p) = position_of_key(key, index) {
                walk.last = Some(p);
            }
        }
    }
}

/// The listing position of an index's last evaluated key.
fn position_of_key(key: &Item, index: &str) -> Option<Position> {
    let text = |k: &str| key.get(k).and_then(|v| v.as_s().ok());
    let (state, id) = if index == GSI2 {
        text(GSI2_SK)?.split_once('#')?
    } else {
        (
            text(GSI1_PK)?.strip_prefix("STATE#")?,
            text(GSI1_SK)?.as_str(),
        )
    };
    Some(Position {
        state: State::parse(state)?,
        id: CampaignId::parse(id).ok()?,
    })
}

/// Creates the table with the schema [`DynamoStore`] expects (on-demand billing) and waits until
/// it is active. A table that already exists is left as it is.
pub async fn create_table(client: &Client, name: &str) -> Result<(), AwsError> {
    const OP: &str = "CreateTable";
    let build = |e: aws_sdk_dynamodb::error::BuildError| crate::error::local(OP, e.to_string());
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(build)
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .map_err(build)
    };
    let gsi = |name: &str, pk: &str, sk: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(pk, KeyType::Hash)?)
            .key_schema(key(sk, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(build)
    };
    let result = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(PK)?)
        .attribute_definitions(attr(SK)?)
        .attribute_definitions(attr(GSI1_PK)?)
        .attribute_definitions(attr(GSI1_SK)?)
        .attribute_definitions(attr(GSI2_PK)?)
        .attribute_definitions(attr(GSI2_SK)?)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(gsi(GSI1, GSI1_PK, GSI1_SK)?)
        .global_secondary_indexes(gsi(GSI2, GSI2_PK, GSI2_SK)?)
        .send()
        .await;
    match result {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|se| se.is_resource_in_use_exception()) => {}
        Err(e) => return Err(crate::error::from_sdk(OP, e)),
    }
    // Real DynamoDB takes seconds to activate a table; emulators are active at once.
    for _ in 0..120 {
        let desc = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| crate::error::from_sdk("DescribeTable", e))?;
        if desc.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(crate::error::local(
        OP,
        format!("table {name} did not become active in 60 s"),
    ))
}

fn campaign_item(c: &Campaign) -> Result<Item, StoreError> {
    let mut item = encode(c, &c.id)?;
    item.insert(PK.to_owned(), s(campaign_pk(&c.id)));
    item.insert(SK.to_owned(), s(META));
    item.insert(GSI1_PK.to_owned(), s(state_pk(c.state)));
    item.insert(GSI1_SK.to_owned(), s(c.id.as_str()));
    item.insert(GSI2_PK.to_owned(), s(run_pk(&c.run_date)));
    item.insert(GSI2_SK.to_owned(), s(Position::of(c).sort_key()));
    Ok(item)
}

fn run_pk(run_date: &str) -> String {
    format!("RUN#{run_date}")
}

/// Template settings live beside campaigns in the one table, under their own key space.
fn template_pk(esp: EspKind, account: &AccountId, template_id: &str) -> String {
    format!("TEMPLATE#{esp}#{account}#{template_id}")
}

fn encode<T: Serialize>(value: &T, id: &CampaignId) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value)
        .map_err(|e| StoreError::Corrupt(format!("campaign {id}: cannot encode: {e}")))
}

fn decode<T: DeserializeOwned>(item: Item, id: &CampaignId) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(format!("campaign {id}: {e}")))
}

fn unavailable(e: AwsError) -> StoreError {
    StoreError::Backend(e)
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn campaign_pk(id: &CampaignId) -> String {
    format!("CAMPAIGN#{id}")
}

fn drop_pk(drop: &ObjectRef) -> String {
    format!("DROP#{}/{}#{}", drop.bucket, drop.key, drop.etag)
}

fn state_pk(state: State) -> String {
    format!("STATE#{state}")
}

/// Fixed-width UTC time first, so the sort key orders runs by start time; the suffix keeps two
/// runs that start in the same nanosecond apart.
fn run_sk(started_at: Timestamp, suffix: String) -> String {
    format!(
        "{RUN_PREFIX}{}.{:09}Z#{suffix}",
        started_at.strftime("%Y-%m-%dT%H:%M:%S"),
        started_at.subsec_nanosecond()
    )
}

/// Zero-padded so days sort numerically.
fn metric_sk(day: u32) -> String {
    format!("{METRIC_PREFIX}{day:03}")
}

/// Wall-clock nanoseconds plus a process-wide counter: increasing within a process, and
/// distinct across processes in practice.
fn unique_suffix() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = Timestamp::now().as_nanosecond();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed) % 1_000_000;
    format!("{nanos:020}{seq:06}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use espbridge_core::testkit::sample_campaign;

    #[test]
    fn run_keys_sort_by_start_time_whatever_the_fraction() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let a = run_sk(t("2026-11-24T03:00:00Z"), unique_suffix());
        let b = run_sk(t("2026-11-24T03:00:00.5Z"), unique_suffix());
        let c = run_sk(t("2026-11-24T03:00:01Z"), unique_suffix());
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(a.starts_with("RUN#2026-11-24T03:00:00.000000000Z#"), "{a}");
    }

    #[test]
    fn same_start_time_gets_distinct_increasing_keys() {
        let t: Timestamp = "2026-11-24T03:00:00Z".parse().unwrap();
        let a = run_sk(t, unique_suffix());
        let b = run_sk(t, unique_suffix());
        assert!(a < b, "{a} {b}");
    }

    #[test]
    fn metric_keys_sort_numerically() {
        assert!(metric_sk(2) < metric_sk(10));
        assert_eq!(metric_sk(7), "METRIC#007");
    }

    #[test]
    fn campaign_item_has_keys_and_round_trips() {
        let c = sample_campaign("item-test");
        let item = campaign_item(&c).unwrap();
        assert_eq!(item[PK], s("CAMPAIGN#item-test"));
        assert_eq!(item[SK], s(META));
        assert_eq!(item[GSI1_PK], s("STATE#received"));
        assert_eq!(item[GSI1_SK], s("item-test"));
        assert_eq!(item["state"], s("received"));
        assert_eq!(item["version"], n(0));
        let back: Campaign = decode(item, &c.id).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn drop_key_names_bucket_key_and_etag() {
        let c = sample_campaign("drop-key");
        assert_eq!(
            drop_pk(&c.drop),
            "DROP#drops/campaigns/2026-11-24/drop-key/manifest.json#\"etag-1\""
        );
    }
}
