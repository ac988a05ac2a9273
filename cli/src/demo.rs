//! `espbridge demo`: one nightly drop per ESP through the real services on the local stack,
//! with a manual clock fast-forwarded through the seven days of metric polling.
//!
//! Uploads run with the default settings (one invocation uploads the whole audience); the
//! continuation path is exercised by the core's tests, not here.

use crate::drop_gen::{self, DropSpec, FIELDS};
use crate::progress::{Progress, interactive};
use crate::report;
use crate::stack::{
    DROP_BUCKET, SIM_TEMPLATE_PREFIX, SIM_TIMEZONE, SUPPORTED_ESPS, Stack, StackOptions,
    StateLocation, supported_list,
};
use anyhow::{Context, Result, bail};
use espbridge_core::service::poll::PollOutcome;
use espbridge_core::service::{Deadline, UploadSettings};
use espbridge_core::{CampaignId, Clock, EspKind, ManualClock};
use espbridge_local::DropWatcher;
use jiff::{SignedDuration, Timestamp, ZonedDateTime, tz::TimeZone};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct DemoArgs {
    pub esp: Option<EspKind>,
    pub customers: u64,
    pub out: PathBuf,
    pub seed: u64,
}

/// One generated campaign, before it runs.
struct Planned {
    esp: EspKind,
    campaign_id: CampaignId,
    manifest_key: String,
    generated: drop_gen::GeneratedDrop,
}

pub async fn run(args: DemoArgs) -> Result<()> {
    let esps: Vec<EspKind> = match args.esp {
        Some(e) if SUPPORTED_ESPS.contains(&e) => vec![e],
        Some(e) => bail!("no adapter for {e} yet; supported: {}", supported_list()),
        None => SUPPORTED_ESPS.to_vec(),
    };
    let clock = ManualClock::new(Timestamp::now());
    let drop_dir = args.out.join("drops");
    std::fs::create_dir_all(&drop_dir)
        .with_context(|| format!("creating drop folder {}", drop_dir.display()))?;
    let mut stack = Stack::start(StackOptions {
        drop_dir: drop_dir.clone(),
        state: StateLocation::Dir(args.out.join("state")),
        accounts: None,
        clock: Arc::new(clock.clone()),
        upload: UploadSettings {
            observer: Some(Arc::new(Progress::new(interactive()))),
            ..Default::default()
        },
    })
    .await?;

    let tz = TimeZone::get(SIM_TIMEZONE).with_context(|| format!("time zone {SIM_TIMEZONE}"))?;
    let now = clock.now().to_zoned_datetime(tz.clone());
    let send_at = now
        .date()
        .tomorrow()?
        .at(9, 0, 0, 0)
        .to_zoned_datetime(tz)
        .context("computing tomorrow 09:00")?;
    let run_date = now.date().to_string();

    let mut planned = Vec::new();
    let stamp = now.strftime("%Y%m%d-%H%M%S").to_string();
    for (esp, label, options) in esps.into_iter().flat_map(campaigns_of) {
        let campaign_id = CampaignId::parse(&match label {
            Some(l) => format!("demo-{esp}-{l}-{stamp}"),
            None => format!("demo-{esp}-{stamp}"),
        })?;
        let template = first_template(&stack, esp).await?;
        let prefix = format!("campaigns/{run_date}/{campaign_id}/");
        let dir = drop_dir.join(&prefix);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating drop {}", dir.display()))?;
        let generated = drop_gen::generate(DropSpec {
            customers: args.customers,
            seed: args.seed,
        });
        drop_gen::write_files(&dir, &generated)
            .with_context(|| format!("writing audience files in {}", dir.display()))?;
        let mut manifest = manifest(&campaign_id, esp, &template, &send_at, &generated);
        if let Some(o) = options {
            manifest["esp_options"] = o;
        }
        write_last(&dir.join("manifest.json"), &manifest)?;
        tracing::info!(campaign_id = %campaign_id, rows = generated.rows, "drop written");
        planned.push(Planned {
            esp,
            campaign_id,
            manifest_key: format!("{prefix}manifest.json"),
            generated,
        });
    }

    // The drop watcher stands in for the S3 notification, as in `serve`.
    let mut watcher = DropWatcher::new(&drop_dir, DROP_BUCKET);
    let found = watcher
        .scan()
        .await
        .with_context(|| format!("scanning {}", drop_dir.display()))?;
    for p in &planned {
        let Some(drop) = found.iter().find(|d| d.key == p.manifest_key) else {
            bail!("the drop watcher did not report {}", p.manifest_key);
        };
        let outcome = stack
            .services
            .handle_drop(drop, Deadline::none())
            .await
            .with_context(|| format!("handling drop of campaign {}", p.campaign_id))?;
        tracing::info!(campaign_id = %p.campaign_id, outcome = ?outcome, "drop handled");
    }
    stack.drain().await?;

    // Fast-forward: each day after the send, an hour past the schedule's time.
    for day in 1..=report::EXPECTED_DAYS as i32 {
        let t = send_at
            .timestamp()
            .checked_add(SignedDuration::from_hours(24 * i64::from(day) + 1))?;
        clock.set(t);
        for (id, r) in stack.fire_due(t).await {
            match r {
                Ok(PollOutcome::Stored { day, .. } | PollOutcome::Completed { day }) => {
                    tracing::info!(campaign_id = %id, day, "metrics stored")
                }
                Ok(other) => tracing::info!(campaign_id = %id, outcome = ?other, "poll"),
                Err(e) => {
                    tracing::warn!(campaign_id = %id, error = %format!("{e:#}"), "poll failed")
                }
            }
        }
        stack.drain().await?;
    }
    // Then on to the one-off clean-ups a retention leaves (Bronto's lists, 30 days on).
    for _ in 0..planned.len() {
        let Some(t) = stack.scheduler.next_due() else {
            break;
        };
        clock.set(t);
        for (id, r) in stack.fire_due(t).await {
            match r {
                Ok(outcome) => tracing::info!(campaign_id = %id, outcome = ?outcome, "clean-up"),
                Err(e) => {
                    tracing::warn!(campaign_id = %id, error = %format!("{e:#}"), "clean-up failed")
                }
            }
        }
    }

    let mut docs = Vec::new();
    let mut problems: Vec<String> = stack
        .pending_schedules()
        .iter()
        .map(|s| format!("schedule {} still pending after the last day", s.name))
        .collect();
    for p in &planned {
        let doc = stack
            .services
            .campaign_document(&p.campaign_id)
            .await
            .with_context(|| format!("reading campaign {}", p.campaign_id))?
            .with_context(|| format!("campaign {} was never created", p.campaign_id))?;
        let doc = enrich(doc, p, &drop_dir);
        problems.extend(report::problems(&doc));
        print!("{}", report::summary(&doc));
        println!();
        docs.push(doc);
    }
    let report_path = args.out.join("report.json");
    report::write_json(&report_path, &report::document(docs, Timestamp::now()))?;
    println!("report: {}", report_path.display());
    if !problems.is_empty() {
        bail!(
            "the demo did not finish cleanly:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}

/// The demo's campaigns for one ESP: one, or for Silverpop one per audience mode (Lists, and
/// Relational Tables chosen by the manifest's `esp_options`).
fn campaigns_of(esp: EspKind) -> Vec<(EspKind, Option<&'static str>, Option<Value>)> {
    match esp {
        EspKind::Silverpop => vec![
            (esp, Some("lists"), None),
            (
                esp,
                Some("rt"),
                Some(json!({"silverpop": {"mode": "relational_table"}})),
            ),
        ],
        _ => vec![(esp, None, None)],
    }
}

/// The id of the ESP's first HTML template, as the template picker lists it: one named with the
/// `optimove_` prefix where the ESP's rules use one (Silverpop lists the Shared folder instead).
async fn first_template(stack: &Stack, esp: EspKind) -> Result<(String, String)> {
    let account = stack
        .services
        .esps
        .of(esp)
        .next()
        .with_context(|| format!("no {esp} account in the stack"))?;
    let templates = account
        .list_templates()
        .await
        .with_context(|| format!("listing {esp} templates"))?;
    // An HTML e-mail: Emarsys says `html` (not `cms`), SmartFocus says `email` (not `sms`),
    // Bronto lists messages.
    let html = |t: &espbridge_core::ports::Template| {
        matches!(t.kind.as_deref(), None | Some("html" | "email" | "message"))
    };
    let prefixed = templates
        .iter()
        .find(|t| t.name.starts_with(SIM_TEMPLATE_PREFIX) && html(t));
    prefixed
        .or_else(|| templates.iter().find(|t| html(t)))
        .map(|t| (t.id.clone(), t.name.clone()))
        .with_context(|| format!("{esp} lists no {SIM_TEMPLATE_PREFIX} HTML e-mail template"))
}

fn manifest(
    id: &CampaignId,
    esp: EspKind,
    (template_id, template_name): &(String, String),
    send_at: &ZonedDateTime,
    generated: &drop_gen::GeneratedDrop,
) -> Value {
    json!({
        "schema_version": "1",
        "campaign_id": id,
        "esp": esp,
        "template_id": template_id,
        "template_name": template_name,
        "send_at": send_at.timestamp().display_with_offset(send_at.offset()).to_string(),
        "timezone": SIM_TIMEZONE,
        "audience": {
            "files": generated.file_names(),
            "columns": {"customer_id": "customer_id", "email": "email", "fields": FIELDS},
        },
    })
}

/// Writes the manifest under a temporary name and renames it, so the watcher never sees half a
/// manifest and it lands after the audience files.
fn write_last(path: &Path, manifest: &Value) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(manifest).context("serializing the manifest")?;
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// The campaign document plus where things are on disk and what the generator put in the drop.
fn enrich(mut doc: Value, p: &Planned, drop_dir: &Path) -> Value {
    let rejects = doc
        .pointer("/audience/rejects_key")
        .and_then(Value::as_str)
        .map(|k| drop_dir.join(k).display().to_string());
    let bad: serde_json::Map<String, Value> = p
        .generated
        .bad
        .iter()
        .map(|(k, n)| (k.reject_key().to_owned(), json!(n)))
        .collect();
    if let Some(o) = doc.as_object_mut() {
        o.insert("esp".into(), json!(p.esp));
        o.insert("rejects_file".into(), json!(rejects));
        o.insert(
            "generated".into(),
            json!({
                "files": p.generated.file_names(),
                "rows": p.generated.rows,
                "valid": p.generated.valid,
                "bad": p.generated.bad_total(),
                "bad_by_reason": bad,
            }),
        );
    }
    doc
}
