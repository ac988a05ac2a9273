//! Cold-start cost of a function's handler init, against the local AWS emulator.
//!
//! `scripts/aws-emu.sh start && eval "$(scripts/aws-emu.sh env)" &&
//!  cargo run --release -p espbridge-bench --bin init`
//!
//! Times what every function's `main` does before serving its first event: read the
//! environment, load the SDK configuration, build the clients and the ESP registry with its
//! credentials read from Secrets Manager (one secret per account). Repeated `--runs` times in
//! fresh processes' worth of state (new clients each run); prints min / median / max.

use anyhow::Context;
use clap::Parser;
use espbridge_app::aws::{LambdaEnv, services};
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
    let env = LambdaEnv {
        table: "bench".into(),
        upload_queue_url: "http://127.0.0.1/q1".into(),
        schedule_queue_url: "http://127.0.0.1/q2".into(),
        schedule_group: "bench".into(),
        poll_function_arn: "arn:aws:lambda:us-east-1:123456789012:function:poll".into(),
        scheduler_role_arn: "arn:aws:iam::123456789012:role/scheduler".into(),
        accounts: serde_json::Value::Array(accounts).to_string(),
    };
    let mut times = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let t = Instant::now();
        let sdk = espbridge_aws::sdk_config().await;
        let s = services(&env, &sdk, Arc::new(SystemClock)).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(s.esps.all().len() == args.accounts, "registry incomplete");
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
