#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use crate::common::{emulator, unique};
use espbridge_aws::{DynamoLimits, create_table};
use espbridge_core::testkit::run_limits_contract;
use std::sync::Arc;

/// The limits live in the campaign table, written with conditional writes: twelve contenders
/// for three slots get exactly three, ten reservations at once get ten distinct turns.
#[tokio::test]
async fn dynamo_limits_pass_the_limits_contract() {
    let Some(conf) = emulator("dynamo_limits_pass_the_limits_contract").await else {
        return;
    };
    let client = aws_sdk_dynamodb::Client::new(&conf);
    let table = unique("limits");
    create_table(&client, &table).await.expect("create table");
    run_limits_contract(
        Arc::new(DynamoLimits::new(client, &table)),
        &unique("contract"),
    )
    .await;
}
