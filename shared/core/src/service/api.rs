//! The HTTP API (API Gateway HTTP API in AWS, a loopback server locally), as plain
//! request-in/response-out so both front ends share every route and error.
//!
//! Routes: `GET /templates?esp=&account=&prefix=`, `GET /templates/{esp}/{id}/preview?account=`,
//! `GET|PUT /templates/{esp}/{id}/headers?account=` (sender headers, for ESPs that take them per
//! send: Bronto), `GET /campaigns/{id}`, `GET /campaigns/{id}/report?metric=` (JSON) and
//! `GET /campaigns/{id}/report.html?metric=` (a self-contained page). Errors are `{"error": {"code", "message"}}` with the
//! matching status.

use super::context::Services;
use crate::ids::{AccountId, CampaignId, EspKind};
use crate::ports::{Esp, EspError, SenderHeaders, Template};
use espbridge_analysis::{Metric, render_html};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    pub method: String,
    /// Path without stage prefix or query, e.g. `/campaigns/abc`.
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub body: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl ApiResponse {
    pub fn json(status: u16, v: &Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: v.to_string(),
        }
    }
    pub fn error(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self::json(
            status,
            &json!({"error": {"code": code, "message": message.into()}}),
        )
    }
}

fn esp_error(e: &EspError) -> ApiResponse {
    match e {
        EspError::NotFound { .. } => ApiResponse::error(404, "not_found", e.to_string()),
        e if e.is_retryable() => ApiResponse::error(503, "esp_unavailable", e.to_string()),
        _ => ApiResponse::error(502, "esp_error", e.to_string()),
    }
}

impl Services {
    pub async fn api(&self, req: &ApiRequest) -> ApiResponse {
        let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
        let get = req.method.eq_ignore_ascii_case("GET");
        let put = req.method.eq_ignore_ascii_case("PUT");
        match parts.as_slice() {
            ["templates"] if get => self.templates(req).await,
            ["templates", esp, id, "preview"] if get => self.preview(esp, id, req).await,
            ["templates", esp, id, "headers"] if get || put => {
                self.template_headers(esp, id, req, put).await
            }
            ["campaigns", id] if get => self.campaign_view(id).await,
            ["campaigns", id, "report"] if get => self.report_view(id, req, false).await,
            ["campaigns", id, "report.html"] if get => self.report_view(id, req, true).await,
            ["templates"]
            | ["templates", _, _, "preview" | "headers"]
            | ["campaigns", _]
            | ["campaigns", _, "report" | "report.html"] => ApiResponse::error(
                405,
                "method_not_allowed",
                format!("{} is not allowed on {}", req.method, req.path),
            ),
            _ => ApiResponse::error(404, "not_found", format!("no route {}", req.path)),
        }
    }

    fn accounts_for(&self, req: &ApiRequest) -> Result<Vec<Arc<dyn Esp>>, ApiResponse> {
        let esp = match req.query.get("esp") {
            Some(s) => Some(
                EspKind::parse(s)
                    .map_err(|e| ApiResponse::error(400, "bad_request", format!("esp: {e}")))?,
            ),
            None => None,
        };
        let account = match req.query.get("account") {
            Some(s) => Some(
                AccountId::parse(s)
                    .map_err(|e| ApiResponse::error(400, "bad_request", format!("account: {e}")))?,
            ),
            None => None,
        };
        Ok(self
            .esps
            .all()
            .iter()
            .filter(|a| esp.is_none_or(|k| a.kind() == k))
            .filter(|a| account.as_ref().is_none_or(|x| a.account() == x))
            .cloned()
            .collect())
    }

    async fn templates(&self, req: &ApiRequest) -> ApiResponse {
        let accounts = match self.accounts_for(req) {
            Ok(a) => a,
            Err(r) => return r,
        };
        if accounts.is_empty() {
            return ApiResponse::error(
                404,
                "not_found",
                "no configured account matches esp/account",
            );
        }
        let prefix = req.query.get("prefix").map(String::as_str).unwrap_or("");
        let results = futures_join(accounts.iter().map(|a| {
            let a = Arc::clone(a);
            async move { (a.kind(), a.account().clone(), a.list_templates().await) }
        }))
        .await;
        let mut templates: Vec<Template> = Vec::new();
        let mut errors = Vec::new();
        for (esp, account, r) in results {
            match r {
                Ok(t) => {
                    templates.extend(t.into_iter().filter(|t| {
                        t.display_name.starts_with(prefix) || t.name.starts_with(prefix)
                    }))
                }
                Err(e) => {
                    tracing::warn!(%esp, %account, error = %e, "listing templates failed");
                    errors.push(json!({"esp": esp, "account": account, "error": e.to_string()}));
                }
            }
        }
        if templates.is_empty() && !errors.is_empty() && errors.len() == accounts.len() {
            return ApiResponse::json(
                502,
                &json!({"error": {"code": "esp_error", "message": "every account failed"}, "errors": errors}),
            );
        }
        templates.sort_by(|a, b| {
            (a.esp, &a.account, &a.display_name).cmp(&(b.esp, &b.account, &b.display_name))
        });
        ApiResponse::json(200, &json!({"templates": templates, "errors": errors}))
    }

    /// The account a `/templates/{esp}/...` route addresses: `?account=`, or the only one.
    fn template_account(&self, esp: &str, req: &ApiRequest) -> Result<Arc<dyn Esp>, ApiResponse> {
        let esp =
            EspKind::parse(esp).map_err(|e| ApiResponse::error(404, "not_found", e.to_string()))?;
        let account = req
            .query
            .get("account")
            .map(|s| AccountId::parse(s))
            .transpose()
            .map_err(|e| ApiResponse::error(400, "bad_request", format!("account: {e}")))?;
        self.esps
            .choose(esp, account.as_ref(), None)
            .map_err(|e| ApiResponse::error(400, "bad_request", e))
    }

    async fn preview(&self, esp: &str, id: &str, req: &ApiRequest) -> ApiResponse {
        let client = match self.template_account(esp, req) {
            Ok(c) => c,
            Err(r) => return r,
        };
        match client.preview(id).await {
            Ok(p) if req.query.get("format").map(String::as_str) == Some("html") => ApiResponse {
                status: 200,
                content_type: "text/html; charset=utf-8",
                body: p.body,
            },
            Ok(p) => ApiResponse::json(200, &json!(p)),
            Err(e) => esp_error(&e),
        }
    }

    /// GET: the headers a send of this template goes out with (`source` says whether they are
    /// the template's override or the account's defaults). PUT: validates and stores an
    /// override; the template must exist at the ESP.
    async fn template_headers(
        &self,
        esp: &str,
        id: &str,
        req: &ApiRequest,
        put: bool,
    ) -> ApiResponse {
        let client = match self.template_account(esp, req) {
            Ok(c) => c,
            Err(r) => return r,
        };
        let Some(defaults) = client.default_headers() else {
            return ApiResponse::error(
                404,
                "not_found",
                format!(
                    "{} keeps sender headers in the message; there are none to manage here",
                    client.kind()
                ),
            );
        };
        let (kind, account) = (client.kind(), client.account().clone());
        let view = |headers: &SenderHeaders, source: &str| {
            json!({"esp": kind, "account": account, "template_id": id,
                "headers": headers, "source": source})
        };
        if put {
            let headers: SenderHeaders = match req
                .body
                .as_deref()
                .map(serde_json::from_slice::<SenderHeaders>)
            {
                Some(Ok(h)) => h,
                Some(Err(e)) => {
                    return ApiResponse::error(400, "bad_request", format!("body: {e}"));
                }
                None => {
                    return ApiResponse::error(
                        400,
                        "bad_request",
                        "body: a JSON object with from_email, from_name and optional reply_to",
                    );
                }
            };
            if let Err(errors) = headers.validate() {
                let message = errors
                    .iter()
                    .map(|(field, problem)| format!("{field}: {problem}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                return ApiResponse::json(
                    400,
                    &json!({"error": {"code": "invalid_headers", "message": message,
                        "fields": errors.iter().map(|(f, p)| json!({"field": f, "problem": p})).collect::<Vec<_>>()}}),
                );
            }
            if let Err(e) = client.preview(id).await {
                return esp_error(&e);
            }
            return match self
                .store
                .put_template_headers(kind, &account, id, &headers)
                .await
            {
                Ok(()) => ApiResponse::json(200, &view(&headers, "template")),
                Err(e) => ApiResponse::error(503, "store_unavailable", e.to_string()),
            };
        }
        match self.store.template_headers(kind, &account, id).await {
            Ok(Some(h)) => ApiResponse::json(200, &view(&h, "template")),
            Ok(None) => ApiResponse::json(200, &view(&defaults, "account_default")),
            Err(e) => ApiResponse::error(503, "store_unavailable", e.to_string()),
        }
    }

    async fn report_view(&self, id: &str, req: &ApiRequest, html: bool) -> ApiResponse {
        let id = match CampaignId::parse(id) {
            Ok(i) => i,
            Err(e) => return ApiResponse::error(400, "bad_request", e.to_string()),
        };
        let metric = match req
            .query
            .get("metric")
            .map(|m| Metric::parse(m))
            .transpose()
        {
            Ok(m) => m,
            Err(e) => return ApiResponse::error(400, "bad_request", format!("metric: {e}")),
        };
        match self.campaign_report(&id, metric).await {
            Ok(Some(report)) if html => ApiResponse {
                status: 200,
                content_type: "text/html; charset=utf-8",
                body: render_html(&report),
            },
            Ok(Some(report)) => ApiResponse::json(200, &json!(report)),
            Ok(None) => ApiResponse::error(404, "not_found", format!("no campaign {id}")),
            Err(e) => ApiResponse::error(503, "store_unavailable", e.to_string()),
        }
    }

    async fn campaign_view(&self, id: &str) -> ApiResponse {
        let id = match CampaignId::parse(id) {
            Ok(i) => i,
            Err(e) => return ApiResponse::error(400, "bad_request", e.to_string()),
        };
        match self.campaign_document(&id).await {
            Ok(Some(v)) => ApiResponse::json(200, &v),
            Ok(None) => ApiResponse::error(404, "not_found", format!("no campaign {id}")),
            Err(e) => ApiResponse::error(503, "store_unavailable", e.to_string()),
        }
    }

    /// The campaign as the API and the demo report show it: the record, its run history, the
    /// rejected-row counts and the daily metrics.
    pub async fn campaign_document(
        &self,
        id: &CampaignId,
    ) -> Result<Option<Value>, crate::ports::StoreError> {
        let Some(c) = self.store.get(id).await? else {
            return Ok(None);
        };
        let runs = self.store.runs(id).await?;
        let snaps = self.store.snapshots(id).await?;
        let a = &c.audience;
        Ok(Some(json!({
            "campaign_id": c.id,
            "esp": c.esp,
            "account": c.account,
            "state": c.state,
            "failure": c.failure,
            "template_id": c.template_id,
            "send_at": c.send_at,
            "timezone": c.timezone,
            "drop": c.drop,
            "audience": {
                "rows": a.rows,
                "valid": a.valid,
                "uploaded": a.uploaded,
                "rejected": a.rejected,
                "rejected_by_reason": a.rejected_by_reason,
                "reject_samples": a.reject_samples,
                "rejects_key": a.rejects_key,
                "not_in_esp": a.not_in_esp,
                "esp_rejected": a.esp_rejected,
                "batches": a.batches,
                "held_out": a.held_out,
            },
            "esp_ids": c.esp_ids,
            "variants": c.variants,
            "control": c.control,
            "conversions": c.conversions,
            "schedule_name": c.schedule_name,
            "cleanup_due_at": c.cleanup_due_at,
            "cleaned_up_at": c.cleaned_up_at,
            "created_at": c.created_at,
            "updated_at": c.updated_at,
            "version": c.version,
            "runs": runs,
            "daily_metrics": snaps.iter().map(|s| json!({
                "day": s.day,
                "taken_at": s.taken_at,
                "sent": s.counts.sent,
                "delivered": s.counts.delivered,
                "opens": s.counts.opens,
                "clicks": s.counts.clicks,
                "unsubscribes": s.counts.unsubscribes,
                "bounces": s.counts.bounces,
                "complaints": s.counts.complaints,
                "by_variant": s.by_variant,
            })).collect::<Vec<_>>(),
        })))
    }
}

/// Runs the futures concurrently (one per account; a handful at most).
async fn futures_join<F, T>(futs: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}
