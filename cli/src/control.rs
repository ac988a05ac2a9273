//! `espbridge cancel ID` and `espbridge retry ID`: the simulators, the store's writers and the
//! queue live inside the running `espbridge serve`, so these commands ask it, over its API on
//! 127.0.0.1 (`POST /campaigns/{id}/cancel|retry`), with the port and token `serve` resolves
//! the same way: `--port`, else the configuration file's `port`, else 8080; `--token` or
//! `ESPBRIDGE_TOKEN`, else the file's `token`.

use crate::{config, serve};
use anyhow::{Context, Result, anyhow, bail};
use espbridge_api::Token;
use espbridge_core::CampaignId;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// What the command asks of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Cancel,
    Retry,
}

impl Op {
    fn path(self) -> &'static str {
        match self {
            Op::Cancel => "cancel",
            Op::Retry => "retry",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ControlArgs {
    /// The campaign id.
    pub campaign_id: String,
    /// The configuration file `serve` runs with (for its `port` and `token`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The port `serve` listens on (default: the file's, else 8080).
    #[arg(long)]
    pub port: Option<u16>,
    /// The token `serve` requires. Prefer ESPBRIDGE_TOKEN or `token` in the file.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "ESPBRIDGE_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

pub async fn run(op: Op, args: ControlArgs) -> Result<()> {
    let id = CampaignId::parse(&args.campaign_id).context("campaign id")?;
    let local = match &args.config {
        Some(p) => config::load_local(p)?,
        None => config::LocalSettings::default(),
    };
    let port = args.port.or(local.port).unwrap_or(serve::DEFAULT_PORT);
    let token = serve::api_token(args.token.map(Token::from), &local)?;
    let url = format!("http://127.0.0.1:{port}/campaigns/{id}/{}", op.path());
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .context("building the HTTP client")?;
    let mut req = client.post(&url);
    if let Some(t) = &token {
        req = req.header(reqwest::header::AUTHORIZATION, t.bearer());
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_connect() => bail!(
            "nothing is listening on 127.0.0.1:{port}: start `espbridge serve` (the campaigns, the queue and the simulators live in it), or name its port with --port or --config"
        ),
        Err(e) => return Err(anyhow!("calling espbridge serve on 127.0.0.1:{port}: {e}")),
    };
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let code = body["error"]["code"].as_str().unwrap_or("error");
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("no explanation");
        let hint = match status.as_u16() {
            401 => " (serve wants its token: --token, ESPBRIDGE_TOKEN or `token` in --config)",
            403 if code == "token_required" => {
                " (serve runs without a token, so it only reads: restart it with --token)"
            }
            _ => "",
        };
        bail!(
            "{} refused (HTTP {}, {code}): {message}{hint}",
            op.path(),
            status.as_u16()
        );
    }
    println!("{}", summary(op, &body));
    Ok(())
}

/// One line saying what the server did.
fn summary(op: Op, v: &Value) -> String {
    let id = v["campaign_id"].as_str().unwrap_or("?");
    match op {
        Op::Cancel if v["already"] == true => format!("campaign {id} was already cancelled"),
        Op::Cancel => format!(
            "campaign {id} cancelled ({} send(s) unscheduled at the ESP)",
            v["unscheduled_sends"].as_u64().unwrap_or(0)
        ),
        Op::Retry => format!(
            "campaign {id} resumes at its {} step (now {}; {} queued)",
            v["step"].as_str().unwrap_or("?"),
            v["state"].as_str().unwrap_or("?"),
            v["queued"].as_str().unwrap_or("?")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_summary_says_what_was_done() {
        assert_eq!(
            summary(
                Op::Cancel,
                &json!({"campaign_id": "c1", "unscheduled_sends": 2, "already": false})
            ),
            "campaign c1 cancelled (2 send(s) unscheduled at the ESP)"
        );
        assert_eq!(
            summary(Op::Cancel, &json!({"campaign_id": "c1", "already": true})),
            "campaign c1 was already cancelled"
        );
        assert_eq!(
            summary(
                Op::Retry,
                &json!({"campaign_id": "c1", "step": "upload", "state": "uploading", "queued": "continue_upload"})
            ),
            "campaign c1 resumes at its upload step (now uploading; continue_upload queued)"
        );
    }
}
