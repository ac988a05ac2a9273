//! Cold-start cost of a function's handler init, against the local AWS emulator.
//!
//! `scripts/aws-emu.sh start && eval "$(scripts/aws-emu.sh env)" &&
//!  cargo run --release -p espbridge-bench --bin init`
//!
//! Times what upload-audience's `main` does before serving its first event (the function with
//! the most to build): read its environment, load the SDK configuration, build its clients and
//! the ESP registry with its credentials read from Secrets Manager (one secret per account). Repeated `--runs` times in
//! fresh processes' worth of state (new clients each run); prints min / median / max.

use anyhow::Context;
use clap::Parser;
use espbridge_app::aws::{self as app_aws, Bootstrap};
use espbridge_core::SystemClock;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// ESP accounts (each with its own secret).
    #[arg(long, default_value_t = 2)]
    accounts: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::env::var("AWS_ENDPOINT_URL").context("start the emulator first: scripts/aws-emu.sh")?;
    let sdk = espbridge_aws::sdk_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let suffix = std::process::id();
    let mut accounts = Vec::new();
    for i in 0..args.accounts {
        let name = format!("espbridge-bench-{suffix}-{i}");
        secrets
            .create_secret()
            .name(&name)
            .secret_string(r#"{"user":"bench","secret":"bench-secret"}"#)
            .send()
            .await
            .context("creating a secret")?;
        accounts.push(
            serde_json::json!({"esp": "emarsys", "account": format!("a{i}"),
            "template_prefix": format!("a{i}_"), "credentials_secret": name}),
        );
    }
    // upload-audience's environment: the function with the most to build.
    let env: std::collections::HashMap<String, String> = [
        (app_aws::TABLE, "bench".to_owned()),
        (app_aws::UPLOAD_QUEUE_URL, "http://127.0.0.1/q1".to_owned()),
        (
            app_aws::SCHEDULE_QUEUE_URL,
            "http://127.0.0.1/q2".to_owned(),
        ),
        (
            app_aws::ACCOUNTS,
            serde_json::Value::Array(accounts).to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut times = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let t = Instant::now();
        let boot = Bootstrap {
            env: Box::new(env.clone()),
            sdk: espbridge_aws::sdk_config().await,
            clock: Arc::new(SystemClock),
        };
        let upload = boot.upload().await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            upload.esps.all().len() == args.accounts,
            "registry incomplete"
        );
    }
    times.sort_by(f64::total_cmp);
    println!(
        "handler init ({} accounts, secrets from the emulator): min {:.1} ms, median {:.1} ms, max {:.1} ms over {} runs",
        args.accounts,
        times[0],
        times[times.len() / 2],
        times[times.len() - 1],
        times.len()
    );
    Ok(())
}
