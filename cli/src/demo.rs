//! `espbridge demo`: one nightly drop per ESP through the real services on the local stack,
//! with a manual clock fast-forwarded through the seven days of metric polling.
//!
//! Uploads run with the default settings (one invocation uploads the whole audience); the
//! continuation path is exercised by the core's tests, not here.
//!
//! Without `--esp`, the demo adds one A/B campaign on Emarsys ([`AB_ESP`]): two or three
//! variants with the simulator's `optimove_` HTML templates (shares 0.5/0.5 or 0.4/0.3/0.3) and
//! a control group holding out [`HOLDOUT_SHARE`] of the audience. After its seven days, a
//! conversions file ([`crate::conversions_gen`]) is written beside its manifest and attributed
//! with `Services::attribute_conversions` (the drop watcher reports manifests only). Every
//! campaign's analysis page goes to `DIR/reports/<campaign id>.html`; the A/B campaign's also to
//! `DIR/report.html`, and its `report.json` entry carries the analysis report's `variants`,
//! `ab_test` and `control` ([`report::with_analysis`]). The demo fails when the attribution's
//! converters per group differ from what the generator put inside the window.

use crate::campaign_report;
use crate::campaigns;
use crate::conversions_gen::{self, ConversionSpec};
use crate::drop_gen::{self, DropSpec, FIELDS};
use crate::progress::{Progress, interactive};
use crate::report;
use crate::stack::{
    DROP_BUCKET, SIM_TEMPLATE_PREFIX, SIM_TIMEZONE, Stack, StackOptions, StateLocation,
};
use anyhow::{Context, Result, bail};
use espbridge_app::registry;
use espbridge_core::ports::ObjectRef;
use espbridge_core::ports::listing::{CampaignFilter, RunDate};
use espbridge_core::service::UploadSettings;
use espbridge_core::service::conversions::ConversionOutcome;
use espbridge_core::service::poll::PollOutcome;
use espbridge_core::{CampaignId, Clock, EspKind, ManualClock};
use espbridge_local::{DropWatcher, Message};
use jiff::{SignedDuration, Timestamp, ZonedDateTime, tz::TimeZone};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct DemoArgs {
    pub esp: Option<EspKind>,
    pub customers: u64,
    pub out: PathBuf,
    pub seed: u64,
}

/// The ESP of the demo's A/B campaign.
pub const AB_ESP: EspKind = EspKind::Emarsys;
/// The share of the A/B campaign's audience held out as its control group.
pub const HOLDOUT_SHARE: f64 = 0.1;

/// One campaign the demo runs.
struct Kind {
    esp: EspKind,
    label: Option<&'static str>,
    esp_options: Option<Value>,
    ab: bool,
}

/// One variant of the A/B campaign.
struct PlannedVariant {
    name: String,
    template_id: String,
    share: f64,
}

/// One generated campaign, before it runs.
struct Planned {
    esp: EspKind,
    campaign_id: CampaignId,
    /// `campaigns/<run date>/<campaign id>/`.
    prefix: String,
    generated: drop_gen::GeneratedDrop,
    /// The A/B campaign's variants (empty for the others).
    variants: Vec<PlannedVariant>,
}

pub async fn run(args: DemoArgs) -> Result<()> {
    let esps: Vec<EspKind> = match args.esp {
        Some(e) if registry::driver(e).is_some() => vec![e],
        Some(e) => bail!("no adapter for {e} yet; supported: {}", registry::names()),
        None => registry::kinds().collect(),
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
        redelivery: Default::default(),
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
    let mut kinds: Vec<Kind> = esps.into_iter().flat_map(campaigns_of).collect();
    if args.esp.is_none() {
        kinds.push(Kind {
            esp: AB_ESP,
            label: Some("ab"),
            esp_options: None,
            ab: true,
        });
    }
    for kind in kinds {
        let esp = kind.esp;
        let campaign_id = CampaignId::parse(&match kind.label {
            Some(l) => format!("demo-{esp}-{l}-{stamp}"),
            None => format!("demo-{esp}-{stamp}"),
        })?;
        let templates = html_templates(&stack, esp).await?;
        let variants = if kind.ab {
            ab_variants(&templates)?
        } else {
            Vec::new()
        };
        let template = variants
            .first()
            .and_then(|v| templates.iter().find(|t| t.0 == v.template_id))
            .or(templates.first())
            .cloned()
            .with_context(|| format!("{esp} lists no HTML e-mail template"))?;
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
        let options = kind.esp_options.clone().unwrap_or(Value::Null);
        // Personalization fields only where the ESP (or mode) carries them: elsewhere the
        // manifest would be refused rather than the fields dropped.
        let carries = stack
            .services
            .esps
            .choose(esp, None, Some(&template.1))
            .is_ok_and(|e| e.carries_fields(options.get(esp.as_str()).unwrap_or(&Value::Null)));
        if !carries {
            manifest["audience"]["columns"]
                .as_object_mut()
                .map(|c| c.remove("fields"));
        }
        if let Some(o) = kind.esp_options {
            manifest["esp_options"] = o;
        }
        if !variants.is_empty() {
            manifest["variants"] = variants
                .iter()
                .map(|v| json!({"name": v.name, "template_id": v.template_id, "share": v.share}))
                .collect();
            manifest["control_group"] = json!({ "holdout_share": HOLDOUT_SHARE });
        }
        write_last(&dir.join("manifest.json"), &manifest)?;
        tracing::info!(campaign_id = %campaign_id, rows = generated.rows, "drop written");
        planned.push(Planned {
            esp,
            campaign_id,
            prefix,
            generated,
            variants,
        });
    }

    // The drop watcher stands in for the S3 notification and the drops go to the queue, as in
    // `serve`: an interrupted upload is redelivered as SQS would.
    let mut watcher = DropWatcher::new(&drop_dir, DROP_BUCKET);
    let found = watcher
        .scan()
        .await
        .with_context(|| format!("scanning {}", drop_dir.display()))?;
    for p in &planned {
        let manifest_key = format!("{}manifest.json", p.prefix);
        let Some(drop) = found.iter().find(|d| d.key == manifest_key) else {
            bail!("the drop watcher did not report {manifest_key}");
        };
        stack
            .queue
            .send(Message::Object(drop.clone()))
            .with_context(|| format!("queueing the drop of campaign {}", p.campaign_id))?;
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

    // The week is over: what the customers bought, for the A/B campaign.
    let mut expected = BTreeMap::new();
    for p in planned.iter().filter(|p| !p.variants.is_empty()) {
        let send = send_at.timestamp();
        let counts = drop_conversions(&stack, p, &drop_dir, send, args.seed).await?;
        expected.insert(p.campaign_id.clone(), counts);
    }

    let reports_dir = args.out.join("reports");
    std::fs::create_dir_all(&reports_dir)
        .with_context(|| format!("creating {}", reports_dir.display()))?;
    let mut docs = Vec::new();
    let mut problems: Vec<String> = stack
        .pending_schedules()
        .iter()
        .map(|s| format!("schedule {} still pending after the last day", s.name))
        .collect();
    for p in &planned {
        let id = &p.campaign_id;
        let doc = stack
            .services
            .api()
            .campaign_document(id)
            .await
            .with_context(|| format!("reading campaign {id}"))?
            .with_context(|| format!("campaign {id} was never created"))?;
        let analysis = stack
            .services
            .api()
            .campaign_report(id, None)
            .await
            .with_context(|| format!("reading the report of campaign {id}"))?
            .with_context(|| format!("campaign {id} was never created"))?;
        campaign_report::write_html(&reports_dir.join(format!("{id}.html")), &analysis)?;
        let mut doc = enrich(doc, p, &drop_dir);
        if let Some(counts) = expected.get(id) {
            doc = report::with_analysis(doc, &analysis);
            campaign_report::write_html(&args.out.join("report.html"), &analysis)?;
            problems.extend(report::analysis_problems(&analysis, counts));
        }
        problems.extend(report::problems(&doc));
        print!("{}", report::summary(&doc));
        if expected.contains_key(id) {
            print!("{}", campaign_report::verdict_lines(&analysis));
        }
        println!();
        docs.push(doc);
    }
    // The night at a glance, as `espbridge campaigns` shows it from the same store.
    let night = CampaignFilter {
        run_date: Some(RunDate::parse(&run_date).context("the demo's run date")?),
        ..Default::default()
    };
    let (campaigns, more) = campaigns::all(stack.services.store.as_ref(), &night).await?;
    println!(
        "the night (espbridge campaigns --dir {} --run-date {run_date}):",
        args.out.display()
    );
    print!("{}", campaigns::summary(&campaigns, more));
    println!();
    let report_path = args.out.join("report.json");
    report::write_json(&report_path, &report::document(docs, Timestamp::now()))?;
    println!("report: {}", report_path.display());
    if !expected.is_empty() {
        println!(
            "A/B report page: {}",
            args.out.join("report.html").display()
        );
    }
    println!("campaign report pages: {}", reports_dir.display());
    if !problems.is_empty() {
        bail!(
            "the demo did not finish cleanly:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}

/// The demo's campaigns for one ESP, as its driver lists them (one; Silverpop one per
/// audience mode).
fn campaigns_of(esp: EspKind) -> Vec<Kind> {
    registry::driver(esp)
        .map(|d| d.demo_campaigns())
        .unwrap_or_default()
        .into_iter()
        .map(|c| Kind {
            esp,
            label: c.label,
            esp_options: c.esp_options,
            ab: false,
        })
        .collect()
}

/// The A/B campaign's variants: the first three HTML templates (shares 0.4/0.3/0.3), or two
/// (0.5/0.5) when the account lists only two.
fn ab_variants(templates: &[(String, String)]) -> Result<Vec<PlannedVariant>> {
    let shares: &[f64] = match templates.len() {
        0 | 1 => bail!(
            "an A/B campaign needs two HTML templates; the account lists {}",
            templates.len()
        ),
        2 => &[0.5, 0.5],
        _ => &[0.4, 0.3, 0.3],
    };
    Ok(templates
        .iter()
        .zip(shares)
        .zip(["A", "B", "C"])
        .map(|(((id, _), share), name)| PlannedVariant {
            name: name.to_owned(),
            template_id: id.clone(),
            share: *share,
        })
        .collect())
}

/// Writes the A/B campaign's conversions beside its manifest and attributes them; returns the
/// converters inside the window per group, as generated.
async fn drop_conversions(
    stack: &Stack,
    p: &Planned,
    drop_dir: &Path,
    send_at: Timestamp,
    seed: u64,
) -> Result<BTreeMap<String, u64>> {
    let id = &p.campaign_id;
    let variants: Vec<(String, f64)> = p
        .variants
        .iter()
        .map(|v| (v.name.clone(), v.share))
        .collect();
    let ids: Vec<String> = p.generated.valid_ids().collect();
    let generated = conversions_gen::generate(
        &ConversionSpec {
            campaign_id: id.as_str(),
            variants: &variants,
            holdout_share: HOLDOUT_SHARE,
            send_at,
            seed,
        },
        ids.iter().map(String::as_str),
    );
    let key = format!("{}conversions.csv", p.prefix);
    let path = drop_dir.join(&key);
    std::fs::write(&path, &generated.csv).with_context(|| format!("writing {}", path.display()))?;
    // The version tag the attribution pins its read to, as the drop folder computes it.
    let (_, etag) = stack
        .services
        .source
        .read_small(DROP_BUCKET, &key)
        .await
        .with_context(|| format!("reading back {key}"))?;
    let obj = ObjectRef {
        bucket: DROP_BUCKET.to_owned(),
        key,
        etag,
    };
    let outcome = stack
        .services
        .conversions()
        .attribute_conversions(&obj)
        .await
        .with_context(|| format!("attributing the conversions of campaign {id}"))?;
    match outcome {
        ConversionOutcome::Attributed { updated, .. } if updated.contains(id) => {
            tracing::info!(campaign_id = %id, rows = generated.rows, outside_window = generated.outside, "conversions attributed");
            Ok(generated.expected)
        }
        other => bail!("the conversions of campaign {id} were not attributed: {other:?}"),
    }
}

/// The ESP's HTML templates, as the template picker lists them: those named with the
/// `optimove_` prefix where the ESP's rules use one (Silverpop lists the Shared folder instead),
/// else every HTML one.
async fn html_templates(stack: &Stack, esp: EspKind) -> Result<Vec<(String, String)>> {
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
    let pick = |prefixed: bool| -> Vec<(String, String)> {
        templates
            .iter()
            .filter(|t| html(t) && (!prefixed || t.name.starts_with(SIM_TEMPLATE_PREFIX)))
            .map(|t| (t.id.clone(), t.name.clone()))
            .collect()
    };
    let prefixed = pick(true);
    let found = if prefixed.is_empty() {
        pick(false)
    } else {
        prefixed
    };
    if found.is_empty() {
        bail!("{esp} lists no {SIM_TEMPLATE_PREFIX} HTML e-mail template");
    }
    Ok(found)
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
