#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use crate::common::{emulator, unique};
use aws_sdk_dynamodb::types::{KeyType, ProjectionType};
use espbridge_aws::{DynamoStore, create_table};
use espbridge_core::State;
use espbridge_core::ports::store::{CampaignStore, Created, StoreError};
use espbridge_core::testkit::{run_store_contract, sample_campaign};

#[tokio::test]
async fn dynamo_store_passes_the_store_contract() {
    let Some(conf) = emulator("dynamo_store_passes_the_store_contract").await else {
        return;
    };
    let client = aws_sdk_dynamodb::Client::new(&conf);
    let table = unique("campaigns");
    create_table(&client, &table).await.expect("create table");
    let store = DynamoStore::new(client, &table);
    run_store_contract(&store, &unique("contract")).await;
}

#[tokio::test]
async fn create_table_has_the_single_table_schema_and_is_idempotent() {
    let Some(conf) = emulator("create_table_has_the_single_table_schema").await else {
        return;
    };
    let client = aws_sdk_dynamodb::Client::new(&conf);
    let table = unique("schema");
    create_table(&client, &table).await.expect("create table");
    create_table(&client, &table)
        .await
        .expect("creating an existing table is not an error");
    let desc = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .expect("describe");
    let t = desc.table().expect("table description");
    let keys: Vec<_> = t
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().clone()))
        .collect();
    assert_eq!(keys, [("pk", KeyType::Hash), ("sk", KeyType::Range)]);
    let mut names: Vec<_> = t
        .global_secondary_indexes()
        .iter()
        .filter_map(|g| g.index_name())
        .collect();
    names.sort();
    assert_eq!(names, ["gsi1", "gsi2"]);
    for gsi in t.global_secondary_indexes() {
        let name = gsi.index_name().expect("named");
        let gsi_keys: Vec<_> = gsi
            .key_schema()
            .iter()
            .map(|k| k.attribute_name())
            .collect();
        assert_eq!(gsi_keys, [format!("{name}pk"), format!("{name}sk")]);
        assert_eq!(
            gsi.projection().and_then(|p| p.projection_type()),
            Some(&ProjectionType::All)
        );
    }
}

#[tokio::test]
async fn campaign_item_layout_and_list_limit() {
    let Some(conf) = emulator("campaign_item_layout_and_list_limit").await else {
        return;
    };
    let client = aws_sdk_dynamodb::Client::new(&conf);
    let table = unique("layout");
    create_table(&client, &table).await.expect("create table");
    let store = DynamoStore::new(client.clone(), &table);
    let tag = unique("lay");
    for i in 0..3 {
        let c = sample_campaign(&format!("{tag}-{i}"));
        let created = store.create_from_drop(&c.drop, &c).await.expect("create");
        assert!(matches!(created, Created::New(_)));
    }
    let id = format!("{tag}-0");
    let item = client
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("CAMPAIGN#{id}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("META".into()),
        )
        .send()
        .await
        .expect("get item")
        .item
        .expect("campaign item exists");
    let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    assert_eq!(s("state").as_deref(), Some("received"));
    assert_eq!(s("gsi1pk").as_deref(), Some("STATE#received"));
    assert_eq!(s("gsi1sk").as_deref(), Some(id.as_str()));
    assert_eq!(s("gsi2pk").as_deref(), Some("RUN#2026-11-24"));
    assert_eq!(
        s("gsi2sk").as_deref(),
        Some(format!("received#{id}").as_str())
    );
    assert_eq!(
        item.get("version")
            .and_then(|v| v.as_n().ok())
            .map(String::as_str),
        Some("1")
    );

    let two = store.list_by_state(State::Received, 2).await.expect("list");
    assert_eq!(two.len(), 2, "list_by_state honours its limit");
    let all = store
        .list_by_state(State::Received, 100)
        .await
        .expect("list");
    assert_eq!(all.len(), 3);
    assert!(
        store
            .list_by_state(State::Received, 0)
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn a_missing_table_is_a_permanent_backend_error_with_its_code() {
    let Some(conf) = emulator("missing_table_is_a_permanent_error").await else {
        return;
    };
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&conf),
        unique("no-such-table"),
    );
    let c = sample_campaign("missing-table");
    match store.get(&c.id).await {
        Err(e @ StoreError::Backend(_)) => {
            let StoreError::Backend(b) = &e else {
                unreachable!()
            };
            assert_eq!(b.operation, "GetItem");
            assert!(b.has_code("ResourceNotFoundException"), "{b:?}");
            // A table that does not exist will not appear by retrying for hours.
            assert!(!e.is_retryable(), "{e}");
        }
        other => panic!("a missing table must be a backend error, got {other:?}"),
    }
}

#[tokio::test]
async fn redelivered_drop_returns_the_campaign_as_it_stands() {
    let Some(conf) = emulator("redelivered_drop_returns_the_campaign_as_it_stands").await else {
        return;
    };
    let client = aws_sdk_dynamodb::Client::new(&conf);
    let table = unique("redeliver");
    create_table(&client, &table).await.expect("create table");
    let store = DynamoStore::new(client, &table);
    let c = sample_campaign(&unique("redo"));
    let Created::New(mut stored) = store.create_from_drop(&c.drop, &c).await.expect("create")
    else {
        panic!("expected New")
    };
    stored
        .transition(State::Uploading, stored.updated_at)
        .expect("received -> uploading");
    let saved = store.save(&stored).await.expect("save");
    match store.create_from_drop(&c.drop, &c).await.expect("again") {
        Created::Existing(current) => assert_eq!(current, saved),
        other => panic!("expected Existing, got {other:?}"),
    }
    let mut other = c.clone();
    other.drop.etag = "\"etag-other\"".into();
    match store.create_from_drop(&other.drop, &other).await {
        Err(StoreError::CampaignExists { existing_key, .. }) => {
            assert_eq!(existing_key, format!("{}/{}", c.drop.bucket, c.drop.key));
        }
        other => panic!("expected CampaignExists, got {other:?}"),
    }
}
