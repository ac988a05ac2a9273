//! `espbridge templates`: the template picker's list, through the same API route the HTTP
//! server and API Gateway use, so the command shows exactly what `GET /templates` returns.

use crate::config;
use crate::stack::{Stack, StackOptions, StateLocation};
use anyhow::{Context, Result, bail};
use espbridge_core::service::UploadSettings;
use espbridge_core::{EspKind, SystemClock};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

pub struct TemplatesArgs {
    pub config: Option<PathBuf>,
    pub esp: Option<EspKind>,
    pub account: Option<String>,
    pub prefix: Option<String>,
    pub json: bool,
}

/// The API request the arguments stand for: `/templates` with its query.
pub fn request_uri(esp: Option<EspKind>, account: Option<&str>, prefix: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(e) = esp {
        query.append_pair("esp", e.as_str());
    }
    if let Some(a) = account {
        query.append_pair("account", a);
    }
    if let Some(p) = prefix {
        query.append_pair("prefix", p);
    }
    let query = query.finish();
    if query.is_empty() {
        "/templates".to_owned()
    } else {
        format!("/templates?{query}")
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
        redelivery: Default::default(),
    })
    .await?;
    let uri = request_uri(args.esp, args.account.as_deref(), args.prefix.as_deref());
    let req = axum::http::Request::get(&uri)
        .body(axum::body::Body::empty())
        .context("building the request")?;
    let resp = espbridge_api::router(stack.services.api())
        .oneshot(req)
        .await
        .context("the API router")?;
    let status = resp.status();
    let bytes = espbridge_api::to_bytes(resp.into_body())
        .await
        .context("reading the API's answer")?;
    let body: Value = serde_json::from_slice(&bytes).context("reading the API's answer")?;
    if !status.is_success() {
        let msg = body
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("(no message)");
        bail!("GET /templates answered {}: {msg}", status.as_u16());
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
        assert_eq!(
            request_uri(Some(EspKind::Emarsys), None, Some("optimove_")),
            "/templates?esp=emarsys&prefix=optimove_"
        );
        assert_eq!(
            request_uri(None, Some("a b"), None),
            "/templates?account=a+b"
        );
        assert_eq!(request_uri(None, None, None), "/templates");
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
