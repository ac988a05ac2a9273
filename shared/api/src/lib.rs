//! The HTTP API as one axum [`Router`]: served by API Gateway through `lambda_http` (the
//! `http-api` function) and on loopback by `espbridge serve`, so both answer every route and
//! error the same way. The router only translates: paths, query strings and bodies into the
//! typed calls of [`ApiService`], its typed answers and errors into status codes and JSON.
//!
//! | route | answer |
//! |---|---|
//! | `GET /templates?esp=&account=&prefix=` | `{"templates": [...], "errors": [...]}` |
//! | `GET /templates/{esp}/{id}/preview?account=&format=html` | the preview (JSON, or the HTML itself) |
//! | `GET\|PUT /templates/{esp}/{id}/headers?account=` | the template's sender headers (Bronto) |
//! | `GET /campaigns?run_date=&state=&esp=&account=&limit=&cursor=` | a page of campaigns: `{"campaigns": [...], "cursor"}` (`cursor` is `null` on the last page) |
//! | `GET /campaigns/{id}` | the campaign document |
//! | `GET /campaigns/{id}/report?metric=` | the analysis report (JSON) |
//! | `GET /campaigns/{id}/report.html?metric=` | the report's self-contained page |
//! | `GET /runs/{run_date}/report` | the night report (JSON): every campaign of the run date, failures first |
//! | `GET /runs/{run_date}/report.html` | the night report's self-contained page |
//! | `POST /campaigns/{id}/cancel` | cancelled: `{"campaign_id", "state", "unscheduled_sends", "already"}` |
//! | `POST /campaigns/{id}/retry` | resumed: `{"campaign_id", "state", "step", "queued"}` |
//!
//! Errors are `{"error": {"code", "message"}}` with the matching status: 400 a bad parameter or
//! body, 404 an unknown route, ESP, template or campaign, 405 a method a route does not take,
//! 409 a cancel or retry refused (the code says why: `send_time_passed`, `already_sent`,
//! `cannot_cancel`, `not_cancellable`, `not_retryable`, `busy` — try again shortly), 502 an ESP
//! error, 503 an ESP, a queue, the scheduler or the store unavailable.
//!
//! Every answer carries `X-Content-Type-Options: nosniff`; the previews (ESP template HTML, or
//! JSON holding it) also `Content-Security-Policy: sandbox`: a template opened from the API's
//! own origin runs no script, submits no form and gets an opaque origin of its own.
//! The loopback server adds [`LocalGuard`] (loopback hosts only, the optional token).

mod local;

pub use local::{LocalGuard, MAX_TOKEN_LEN, MIN_TOKEN_LEN, Token, TokenError};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use espbridge_analysis::{Metric, render_html, render_night_html};
use espbridge_core::ids::{AccountId, CampaignId, EspKind};
use espbridge_core::ports::{CampaignFilter, EspError, RunDate, SenderHeaders};
use espbridge_core::service::api::TemplateQuery;
use espbridge_core::service::night::ListRequest;
use espbridge_core::service::{ApiError, ApiService, ControlError, ServiceError, chain};
use serde_json::{Value, json};
use std::collections::HashMap;

pub use axum::Router;
pub use axum::body::Body;

/// A response body read whole (tests, and the Lambda adapter's checks).
pub async fn to_bytes(body: Body) -> Result<Bytes, axum::Error> {
    axum::body::to_bytes(body, usize::MAX).await
}

type Params = Query<HashMap<String, String>>;

/// The API's routes over `api`.
pub fn router(api: ApiService) -> Router {
    Router::new()
        .route("/templates", get(templates))
        .route(
            "/templates/{esp}/{id}/preview",
            get(preview).layer(map_response(sandboxed)),
        )
        .route(
            "/templates/{esp}/{id}/headers",
            get(get_headers).put(put_headers),
        )
        .route("/campaigns", get(list_campaigns))
        .route("/campaigns/{id}", get(campaign))
        .route("/campaigns/{id}/report", get(report_json))
        .route("/campaigns/{id}/report.html", get(report_html))
        .route("/runs/{run_date}/report", get(night_json))
        .route("/runs/{run_date}/report.html", get(night_html))
        .route("/campaigns/{id}/cancel", post(cancel))
        .route("/campaigns/{id}/retry", post(retry))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(map_response(nosniff))
        .with_state(api)
}

/// The API's routes over `api` behind the loopback server's [`LocalGuard`].
pub fn local_router(api: ApiService, guard: LocalGuard) -> Router {
    guard.protect(router(api))
}

/// ESP content (a template's HTML) is not ours: a browser opening it runs it sandboxed.
async fn sandboxed(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    resp
}

/// Browsers take every answer as its declared type.
async fn nosniff(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// An error answer.
struct Failure {
    status: StatusCode,
    code: &'static str,
    message: String,
    extra: Option<(&'static str, Value)>,
}

impl Failure {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: None,
        }
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        let mut body = json!({});
        match self.extra {
            // Field problems belong to the error; per-account errors sit beside it.
            Some(("fields", v)) => error["fields"] = v,
            Some((k, v)) => body[k] = v,
            None => {}
        }
        body["error"] = error;
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        let message = chain(&e);
        match e {
            ApiError::NoMatchingAccount | ApiError::NoSenderHeaders(_) => {
                Failure::not_found(message)
            }
            ApiError::CampaignNotFound(_) => Failure::not_found(message),
            ApiError::Account(_) | ApiError::Cursor(_) | ApiError::InvalidLimit(_) => {
                Failure::bad_request(message)
            }
            ApiError::AllAccountsFailed(errors) => Failure {
                extra: Some(("errors", json!(errors))),
                ..Failure::new(StatusCode::BAD_GATEWAY, "esp_error", message)
            },
            ApiError::InvalidHeaders(fields) => Failure {
                extra: Some((
                    "fields",
                    json!(
                        fields
                            .iter()
                            .map(|(f, p)| json!({"field": f, "problem": p}))
                            .collect::<Vec<_>>()
                    ),
                )),
                ..Failure::new(StatusCode::BAD_REQUEST, "invalid_headers", message)
            },
            ApiError::Esp(EspError::NotFound { .. }) => Failure::not_found(message),
            ApiError::Esp(e) if e.is_retryable() => {
                Failure::new(StatusCode::SERVICE_UNAVAILABLE, "esp_unavailable", message)
            }
            ApiError::Esp(_) => Failure::new(StatusCode::BAD_GATEWAY, "esp_error", message),
            ApiError::Store(_) => Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                message,
            ),
            ApiError::Control(ControlError::Refused { code, .. }) => {
                Failure::new(StatusCode::CONFLICT, code, message)
            }
            ApiError::Control(ControlError::Busy(_)) => {
                Failure::new(StatusCode::CONFLICT, "busy", message)
            }
            ApiError::Control(ControlError::NotFound(_)) => Failure::not_found(message),
            ApiError::Control(ControlError::Service(e)) => match e {
                ServiceError::Esp(e) => Failure::from(ApiError::Esp(e)),
                e if e.is_retryable() => {
                    Failure::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
                }
                _ => Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message),
            },
        }
    }
}

type Answer = Result<Response, Failure>;

fn json_answer<T: serde::Serialize>(v: &T) -> Answer {
    Ok(axum::Json(v).into_response())
}

fn html_answer(body: String) -> Answer {
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response())
}

/// An ESP named in a path; an unknown one is an unknown resource.
fn esp_in_path(s: &str) -> Result<EspKind, Failure> {
    EspKind::parse(s).map_err(|e| Failure::not_found(chain(&e)))
}

fn esp_param(p: &HashMap<String, String>) -> Result<Option<EspKind>, Failure> {
    p.get("esp")
        .map(|s| EspKind::parse(s))
        .transpose()
        .map_err(|e| Failure::bad_request(format!("esp: {}", chain(&e))))
}

fn account_param(p: &HashMap<String, String>) -> Result<Option<AccountId>, Failure> {
    p.get("account")
        .map(|s| AccountId::parse(s))
        .transpose()
        .map_err(|e| Failure::bad_request(format!("account: {}", chain(&e))))
}

fn campaign_id(s: &str) -> Result<CampaignId, Failure> {
    CampaignId::parse(s).map_err(|e| Failure::bad_request(chain(&e)))
}

fn metric_param(p: &HashMap<String, String>) -> Result<Option<Metric>, Failure> {
    p.get("metric")
        .map(|m| Metric::parse(m))
        .transpose()
        .map_err(|e| Failure::bad_request(format!("metric: {}", chain(&e))))
}

async fn templates(State(api): State<ApiService>, Query(p): Params) -> Answer {
    let q = TemplateQuery {
        esp: esp_param(&p)?,
        account: account_param(&p)?,
        prefix: p.get("prefix").cloned(),
    };
    json_answer(&api.templates(&q).await?)
}

async fn preview(
    State(api): State<ApiService>,
    Path((esp, id)): Path<(String, String)>,
    Query(p): Params,
) -> Answer {
    let esp = esp_in_path(&esp)?;
    let preview = api.preview(esp, account_param(&p)?.as_ref(), &id).await?;
    if p.get("format").map(String::as_str) == Some("html") {
        return html_answer(preview.body);
    }
    json_answer(&preview)
}

async fn get_headers(
    State(api): State<ApiService>,
    Path((esp, id)): Path<(String, String)>,
    Query(p): Params,
) -> Answer {
    let esp = esp_in_path(&esp)?;
    json_answer(
        &api.sender_headers(esp, account_param(&p)?.as_ref(), &id)
            .await?,
    )
}

async fn put_headers(
    State(api): State<ApiService>,
    Path((esp, id)): Path<(String, String)>,
    Query(p): Params,
    body: Bytes,
) -> Answer {
    let esp = esp_in_path(&esp)?;
    if body.is_empty() {
        return Err(Failure::bad_request(
            "body: a JSON object with from_email, from_name and optional reply_to",
        ));
    }
    let headers: SenderHeaders =
        serde_json::from_slice(&body).map_err(|e| Failure::bad_request(format!("body: {e}")))?;
    json_answer(
        &api.set_sender_headers(esp, account_param(&p)?.as_ref(), &id, headers)
            .await?,
    )
}

async fn campaign(State(api): State<ApiService>, Path(id): Path<String>) -> Answer {
    json_answer(&api.campaign(&campaign_id(&id)?).await?)
}

async fn report(
    api: &ApiService,
    id: &str,
    p: &HashMap<String, String>,
) -> Result<espbridge_analysis::Report, Failure> {
    let id = campaign_id(id)?;
    let metric = metric_param(p)?;
    api.campaign_report(&id, metric)
        .await
        .map_err(|e| Failure::from(ApiError::Store(e)))?
        .ok_or_else(|| Failure::from(ApiError::CampaignNotFound(id)))
}

async fn report_json(
    State(api): State<ApiService>,
    Path(id): Path<String>,
    Query(p): Params,
) -> Answer {
    json_answer(&report(&api, &id, &p).await?)
}

async fn report_html(
    State(api): State<ApiService>,
    Path(id): Path<String>,
    Query(p): Params,
) -> Answer {
    html_answer(render_html(&report(&api, &id, &p).await?))
}

async fn cancel(State(api): State<ApiService>, Path(id): Path<String>) -> Answer {
    json_answer(&api.cancel(&campaign_id(&id)?).await?)
}

async fn retry(State(api): State<ApiService>, Path(id): Path<String>) -> Answer {
    json_answer(&api.retry(&campaign_id(&id)?).await?)
}

fn run_date(s: &str) -> Result<RunDate, Failure> {
    RunDate::parse(s).map_err(|e| Failure::bad_request(format!("run_date: {}", chain(&e))))
}

async fn list_campaigns(State(api): State<ApiService>, Query(p): Params) -> Answer {
    let state = p
        .get("state")
        .map(|s| {
            espbridge_core::State::parse(s)
                .ok_or_else(|| Failure::bad_request("state: not a campaign state"))
        })
        .transpose()?;
    let limit = p
        .get("limit")
        .map(|l| {
            l.parse::<usize>()
                .map_err(|_| Failure::bad_request("limit: not a whole number"))
        })
        .transpose()?;
    let req = ListRequest {
        filter: CampaignFilter {
            run_date: p.get("run_date").map(|d| run_date(d)).transpose()?,
            state,
            esp: esp_param(&p)?,
            account: account_param(&p)?,
        },
        cursor: p.get("cursor").cloned(),
        limit,
    };
    json_answer(&api.list_campaigns(&req).await?)
}

async fn night(api: &ApiService, date: &str) -> Result<espbridge_analysis::NightReport, Failure> {
    api.night_report(&run_date(date)?)
        .await
        .map_err(|e| Failure::from(ApiError::Store(e)))
}

async fn night_json(State(api): State<ApiService>, Path(date): Path<String>) -> Answer {
    json_answer(&night(&api, &date).await?)
}

async fn night_html(State(api): State<ApiService>, Path(date): Path<String>) -> Answer {
    html_answer(render_night_html(&night(&api, &date).await?))
}

async fn no_route(uri: Uri) -> Failure {
    Failure::not_found(format!("no route {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> Failure {
    Failure::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}
