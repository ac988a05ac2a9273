//! [`AccountLimits`] on the campaign table, so every function instance shares them.
//!
//! | item | `pk` | `sk` | attributes |
//! |---|---|---|---|
//! | rate | `LIMIT#<key>` | `RATE` | `tat` (epoch ms, a float: the allowance's next free moment) |
//! | slot | `LIMIT#<key>` | `SLOT#<n, 4 digits>` | `owner`, `until` (epoch ms) |
//!
//! Every change is a conditional write on what was read (rate: `tat` unchanged; slot: free,
//! ended, or already ours), retried on a conflict, so concurrent instances never hand out more
//! than the limit. Items carry `expires_at` (the table's TTL attribute) a day after they stop
//! mattering.

use crate::error::from_sdk;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use espbridge_core::ports::BackendError;
use espbridge_core::ports::limits::{AccountLimits, EpochMillis, LimitError, Slot, gcra};
use std::collections::HashMap;
use std::time::Duration;

const PK: &str = "pk";
const SK: &str = "sk";
const RATE_SK: &str = "RATE";
const SLOT_PREFIX: &str = "SLOT#";
/// Conditional-write attempts before a busy limit is reported as a transient failure.
const ATTEMPTS: u32 = 50;
const DAY_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Clone)]
pub struct DynamoLimits {
    client: Client,
    table: String,
}

impl DynamoLimits {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn pk(key: &str) -> AttributeValue {
    AttributeValue::S(format!("LIMIT#{key}"))
}

fn slot_sk(i: u32) -> AttributeValue {
    AttributeValue::S(format!("{SLOT_PREFIX}{i:04}"))
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn expires(ms: EpochMillis) -> AttributeValue {
    n((ms + DAY_MS) / 1000)
}

fn err(key: &str, source: BackendError) -> LimitError {
    LimitError {
        key: key.to_owned(),
        source,
    }
}

fn conditional_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

fn num(item: &HashMap<String, AttributeValue>, name: &str) -> Option<f64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn slot_of(item: &HashMap<String, AttributeValue>) -> Option<Slot> {
    let sk = item.get(SK)?.as_s().ok()?;
    let index = sk.strip_prefix(SLOT_PREFIX)?.parse().ok()?;
    Some(Slot {
        index,
        owner: item.get("owner")?.as_s().ok()?.clone(),
        until: num(item, "until")? as i64,
    })
}

/// A short random pause between conflicting attempts, so contenders spread out.
async fn backoff(attempt: u32) {
    let ms = rand::random_range(1..=(5 * u64::from(attempt.min(20)) + 5));
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

impl DynamoLimits {
    async fn slots(&self, key: &str) -> Result<Vec<Slot>, LimitError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :slot)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", pk(key))
            .expression_attribute_values(":slot", AttributeValue::S(SLOT_PREFIX.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| err(key, from_sdk("Query", e)))?;
        Ok(out.items().iter().filter_map(slot_of).collect())
    }
}

#[async_trait]
impl AccountLimits for DynamoLimits {
    async fn reserve(
        &self,
        key: &str,
        per_minute: f64,
        cost: u64,
        now: EpochMillis,
    ) -> Result<Duration, LimitError> {
        for attempt in 1..=ATTEMPTS {
            let item = self
                .client
                .get_item()
                .table_name(&self.table)
                .key(PK, pk(key))
                .key(SK, AttributeValue::S(RATE_SK.to_owned()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| err(key, from_sdk("GetItem", e)))?;
            let old = item.item().and_then(|i| num(i, "tat"));
            let (wait, next) = gcra(old, per_minute, cost, now);
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item(PK, pk(key))
                .item(SK, AttributeValue::S(RATE_SK.to_owned()))
                .item("tat", n(next))
                .item("expires_at", expires(next as i64));
            put = match old {
                Some(t) => put
                    .condition_expression("tat = :old")
                    .expression_attribute_values(":old", n(t)),
                None => put.condition_expression("attribute_not_exists(tat)"),
            };
            match put.send().await {
                Ok(_) => return Ok(wait),
                Err(e) if e.as_service_error().is_some_and(conditional_failed) => {
                    backoff(attempt).await;
                }
                Err(e) => return Err(err(key, from_sdk("PutItem", e))),
            }
        }
        Err(err(
            key,
            BackendError::transient("PutItem", "the allowance kept changing under contention"),
        ))
    }

    async fn hold_until(&self, key: &str, until: EpochMillis) -> Result<(), LimitError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, pk(key))
            .key(SK, AttributeValue::S(RATE_SK.to_owned()))
            .update_expression("SET tat = :until, expires_at = :exp")
            .condition_expression("attribute_not_exists(tat) OR tat < :until")
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":exp", expires(until))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Already held further out: nothing to do.
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(()),
            Err(e) => Err(err(key, from_sdk("UpdateItem", e))),
        }
    }

    async fn acquire(
        &self,
        key: &str,
        max: u32,
        owner: &str,
        until: EpochMillis,
        now: EpochMillis,
    ) -> Result<Option<Slot>, LimitError> {
        let held = self.slots(key).await?;
        if let Some(mine) = held.iter().find(|s| s.owner == owner)
            && self.renew(key, mine, until).await?
        {
            return Ok(Some(Slot {
                until,
                ..mine.clone()
            }));
        }
        let busy: std::collections::HashSet<u32> = held
            .iter()
            .filter(|s| s.until >= now)
            .map(|s| s.index)
            .collect();
        // Start at a random slot so contenders do not all race for slot 0.
        let offset = rand::random_range(0..max.max(1));
        for k in 0..max {
            let i = (offset + k) % max;
            if busy.contains(&i) {
                continue;
            }
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item(PK, pk(key))
                .item(SK, slot_sk(i))
                .item("owner", AttributeValue::S(owner.to_owned()))
                .item("until", n(until))
                .item("expires_at", expires(until))
                .condition_expression(
                    "attribute_not_exists(#owner) OR #until < :now OR #owner = :me",
                )
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_names("#until", "until")
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":me", AttributeValue::S(owner.to_owned()))
                .send()
                .await;
            match result {
                Ok(_) => {
                    return Ok(Some(Slot {
                        index: i,
                        owner: owner.to_owned(),
                        until,
                    }));
                }
                Err(e) if e.as_service_error().is_some_and(conditional_failed) => continue,
                Err(e) => return Err(err(key, from_sdk("PutItem", e))),
            }
        }
        Ok(None)
    }

    async fn renew(&self, key: &str, slot: &Slot, until: EpochMillis) -> Result<bool, LimitError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, pk(key))
            .key(SK, slot_sk(slot.index))
            .update_expression("SET #until = :until, expires_at = :exp")
            .condition_expression("#owner = :me")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":exp", expires(until))
            .expression_attribute_values(":me", AttributeValue::S(slot.owner.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(false),
            Err(e) => Err(err(key, from_sdk("UpdateItem", e))),
        }
    }

    async fn release(&self, key: &str, slot: &Slot) -> Result<(), LimitError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, pk(key))
            .key(SK, slot_sk(slot.index))
            .condition_expression("#owner = :me")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":me", AttributeValue::S(slot.owner.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(()),
            Err(e) => Err(err(key, from_sdk("DeleteItem", e))),
        }
    }

    async fn holders(&self, key: &str, now: EpochMillis) -> Result<Vec<Slot>, LimitError> {
        Ok(self
            .slots(key)
            .await?
            .into_iter()
            .filter(|s| s.until >= now)
            .collect())
    }
}
