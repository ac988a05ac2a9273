//! `espbridge templates`: the template picker's list, through the same API route the HTTP
//! server and API Gateway use, so the command shows exactly what `GET /templates` returns.

use crate::config;
use crate::stack::{Stack, StackOptions, StateLocation};
use anyhow::{Context, Result, bail};
use espbridge_core::service::UploadSettings;
use espbridge_core::service::api::ApiRequest;
use espbridge_core::{EspKind, SystemClock};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

pub struct TemplatesArgs {
    pub config: Option<PathBuf>,
    pub esp: Option<EspKind>,
    pub account: Option<String>,
    pub prefix: Option<String>,
    pub json: bool,
}

/// The API request the arguments stand for.
pub fn request(esp: Option<EspKind>, account: Option<&str>, prefix: Option<&str>) -> ApiRequest {
    let mut query = BTreeMap::new();
    if let Some(e) = esp {
        query.insert("esp".to_owned(), e.as_str().to_owned());
    }
    if let Some(a) = account {
        query.insert("account".to_owned(), a.to_owned());
    }
    if let Some(p) = prefix {
        query.insert("prefix".to_owned(), p.to_owned());
    }
    ApiRequest {
        method: "GET".into(),
        path: "/templates".into(),
        query,
        body: None,
    }
}

pub async fn run(args: TemplatesArgs) -> Result<()> {
    let accounts = match &args.config {
        Some(p) => Some(config::load(p)?.accounts),
        None => None,
    };
    let stack = Stack::start(StackOptions {
        // Listing reads no drop; the folder is never touched.
        drop_dir: PathBuf::from("."),
        state: StateLocation::Memory,
        accounts,
        clock: Arc::new(SystemClock),
        upload: UploadSettings::default(),
    })
    .await?;
    let req = request(args.esp, args.account.as_deref(), args.prefix.as_deref());
    let resp = stack.services.api(&req).await;
    let body: Value = serde_json::from_str(&resp.body).context("reading the API's answer")?;
    if resp.status != 200 {
        let msg = body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or(&resp.body);
        bail!("GET /templates answered {}: {msg}", resp.status);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        print!("{}", table(&body));
    }
    Ok(())
}

/// The templates as an aligned table, then any per-account errors.
pub fn table(body: &Value) -> String {
    let empty = Vec::new();
    let templates = body
        .get("templates")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let cols = ["esp", "account", "id", "display_name", "kind", "subject"];
    let cell = |t: &Value, c: &str| t.get(c).and_then(Value::as_str).unwrap_or("").to_owned();
    let mut rows: Vec<Vec<String>> = vec![
        ["ESP", "ACCOUNT", "ID", "NAME", "KIND", "SUBJECT"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    ];
    rows.extend(
        templates
            .iter()
            .map(|t| cols.iter().map(|c| cell(t, c)).collect()),
    );
    let widths: Vec<usize> = (0..cols.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!("{} template(s)\n", templates.len()));
    for e in body
        .get("errors")
        .and_then(Value::as_array)
        .unwrap_or(&empty)
    {
        out.push_str(&format!(
            "error: {} account {}: {}\n",
            cell(e, "esp"),
            cell(e, "account"),
            cell(e, "error")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_carries_only_given_filters() {
        let r = request(Some(EspKind::Emarsys), None, Some("optimove_"));
        assert_eq!(r.path, "/templates");
        assert_eq!(r.query.get("esp").map(String::as_str), Some("emarsys"));
        assert_eq!(r.query.get("prefix").map(String::as_str), Some("optimove_"));
        assert!(!r.query.contains_key("account"));
    }

    #[test]
    fn table_aligns_columns_and_lists_errors() {
        let body = json!({"templates": [
            {"esp": "emarsys", "account": "default", "id": "1", "display_name": "spring_sale", "kind": "html", "subject": "Hi"},
            {"esp": "emarsys", "account": "default", "id": "22", "display_name": "cms", "kind": "cms"}],
            "errors": [{"esp": "emarsys", "account": "us", "error": "refused"}]});
        let t = table(&body);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ESP"));
        assert_eq!(lines[1].find("spring_sale"), lines[2].find("cms"));
        assert!(t.contains("2 template(s)"));
        assert!(t.contains("error: emarsys account us: refused"));
    }
}
