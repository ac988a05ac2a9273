//! `espbridge report CAMPAIGN_ID`: one campaign's analysis report (issue 6) read from the local
//! stack's campaign store, without starting any simulator or ESP account.
//!
//! The store is found as `serve` finds it (`--dir DIR` → `DIR/state`, else the configuration
//! file's `state_dir`, else the default folder; the file needs no `[[accounts]]` here); it is opened only when its file exists, so a
//! wrong folder is an error naming the path instead of a new empty store. The report is the
//! core's [`report_input`] turned into [`build_report`], exactly what
//! `GET /campaigns/{id}/report` answers, so `--json` prints the API's JSON and `--html FILE`
//! writes the API's page ([`render_html`]). The default output is [`summary`]: per variant the
//! counts and rates with their Wilson intervals, then the A/B verdict and the control-group
//! comparison ([`verdict_lines`], which the demo prints too). Only campaign ids, template ids
//! and counts are printed, never a customer.
//!
//! UNCERTAIN: with `--html` and without `--json` the summary is still printed (the page's path
//! goes to stderr), so `--html` adds to the default output rather than replacing it.

use crate::config;
use crate::serve::{self, ServeArgs};
use crate::stack::STORE_FILE;
use anyhow::{Context, Result, bail};
use espbridge_analysis::html::fmt::{amount, count, p_value, pct, pp};
use espbridge_analysis::{GroupStats, Metric, Rate, Report, build_report, render_html};
use espbridge_core::CampaignId;
use espbridge_core::ports::CampaignStore;
use espbridge_core::service::report::report_input;
use espbridge_local::SqliteStore;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct ReportArgs {
    /// The campaign's id.
    pub campaign_id: String,
    /// Base folder as `serve --dir` and `demo --out` use it: the store is DIR/state.
    #[arg(long, conflicts_with = "config")]
    pub dir: Option<PathBuf>,
    /// TOML file whose `state_dir` holds the store (as `serve --config` reads it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The A/B test's metric (default: the manifest's `ab_metric`, else click_rate).
    #[arg(long, value_parser = parse_metric)]
    pub metric: Option<Metric>,
    /// Print the report's JSON (as `GET /campaigns/{id}/report` answers) instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Also write the self-contained HTML page to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

fn parse_metric(s: &str) -> Result<Metric, String> {
    Metric::parse(s).map_err(|e| e.to_string())
}

/// The local stack's state folder as `serve` resolves it from `--dir` or `--config`.
pub fn state_dir(dir: Option<PathBuf>, config: Option<PathBuf>) -> Result<PathBuf> {
    let local = match &config {
        Some(p) => config::load_local(p)?,
        None => config::LocalSettings::default(),
    };
    Ok(serve::resolve(
        &ServeArgs {
            config,
            dir,
            port: None,
            workers: espbridge_local::worker::DEFAULT_WORKERS,
            redeliver_after: espbridge_local::Redelivery::default().first,
        },
        &local,
    )
    .state_dir)
}

/// Opens the campaign store in `state_dir`; one that does not exist is an error naming the path,
/// never a new empty store.
pub fn open_store(state_dir: &Path) -> Result<SqliteStore> {
    let path = state_dir.join(STORE_FILE);
    if !path.is_file() {
        bail!(
            "no campaign store at {} (run `espbridge serve` or `espbridge demo` on that folder first)",
            path.display()
        );
    }
    SqliteStore::open(&path).with_context(|| format!("opening campaign store {}", path.display()))
}

pub async fn run(args: ReportArgs) -> Result<()> {
    let state_dir = state_dir(args.dir.clone(), args.config.clone())?;
    let id = CampaignId::parse(&args.campaign_id)
        .with_context(|| format!("campaign id {:?}", args.campaign_id))?;
    let report = load(&state_dir, &id, args.metric).await?;
    if let Some(path) = &args.html {
        write_html(path, &report)?;
        eprintln!("HTML report: {}", path.display());
    }
    if args.json {
        let text = serde_json::to_string_pretty(&report).context("serializing the report")?;
        println!("{text}");
    } else {
        print!("{}", summary(&report));
    }
    Ok(())
}

/// The report of campaign `id` from the store in `state_dir`.
pub async fn load(state_dir: &Path, id: &CampaignId, metric: Option<Metric>) -> Result<Report> {
    let path = state_dir.join(STORE_FILE);
    let store = open_store(state_dir)?;
    let campaign = store
        .get(id)
        .await
        .with_context(|| format!("reading campaign {id}"))?
        .with_context(|| format!("no campaign {id} in {}", path.display()))?;
    let snaps = store
        .snapshots(id)
        .await
        .with_context(|| format!("reading the metrics of campaign {id}"))?;
    Ok(build_report(&report_input(&campaign, &snaps, metric)))
}

/// Writes the self-contained HTML page of `report` to `path`.
pub fn write_html(path: &Path, report: &Report) -> Result<()> {
    std::fs::write(path, render_html(report)).with_context(|| format!("writing {}", path.display()))
}

/// "12.3% [11.0%–13.7%]", or "-" without a rate.
fn rate(r: Option<&Rate>) -> String {
    match r {
        Some(r) => format!("{} [{}–{}]", pct(r.value), pct(r.ci_low), pct(r.ci_high)),
        None => "-".to_owned(),
    }
}

fn group(o: &mut String, title: &str, g: &GroupStats) {
    let _ = writeln!(o, "  {title}");
    let _ = writeln!(
        o,
        "    assigned {}  sent {}  delivered {}  opens {}  clicks {}  unsubscribes {}",
        count(g.assigned),
        count(g.sent),
        count(g.delivered),
        count(g.opens),
        count(g.clicks),
        count(g.unsubscribes)
    );
    let r = &g.rates;
    let _ = writeln!(o, "    open rate         {}", rate(r.open_rate.as_ref()));
    let _ = writeln!(o, "    click rate        {}", rate(r.click_rate.as_ref()));
    let _ = writeln!(
        o,
        "    unsubscribe rate  {}",
        rate(r.unsubscribe_rate.as_ref())
    );
    if let Some(c) = r.conversion_rate.as_ref() {
        let revenue = g
            .revenue_per_customer
            .map_or_else(|| "-".to_owned(), amount);
        let _ = writeln!(
            o,
            "    conversion rate   {}  ({} of {})  revenue/customer {revenue}",
            rate(Some(c)),
            count(c.successes),
            count(c.trials)
        );
    }
}

/// The A/B verdict and the control-group comparison, one line each (nothing for a campaign
/// with one variant and no control group).
pub fn verdict_lines(report: &Report) -> String {
    let mut o = String::new();
    if let Some(ab) = &report.ab_test {
        let p = ab.p_value.map_or_else(|| "no p-value".to_owned(), p_value);
        let _ = writeln!(
            o,
            "  A/B test on {} ({}): {}, {p}",
            ab.metric.as_str(),
            ab.test,
            ab.verdict
        );
        if let Some(note) = &ab.note {
            let _ = writeln!(o, "    {note}");
        }
    }
    if let Some(c) = &report.control {
        let r = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), pct);
        let d = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), pp);
        let _ = writeln!(
            o,
            "  control: treated {} ({} customers) vs control {} ({} customers)",
            r(c.treated_rate),
            count(c.treated_customers),
            r(c.control_rate),
            count(c.control_customers)
        );
        let p = c.p_value.map_or_else(|| "no p-value".to_owned(), p_value);
        let _ = writeln!(
            o,
            "  uplift {}, 95% CI [{}, {}], {p}{}",
            d(c.uplift),
            d(c.ci_low),
            d(c.ci_high),
            if c.significant { ", significant" } else { "" }
        );
        if let Some(u) = c.revenue_uplift {
            let m = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), amount);
            let _ = writeln!(
                o,
                "  revenue/customer: treated {} vs control {}, uplift {}, 95% CI [{}, {}]",
                m(c.treated_revenue_per_customer),
                m(c.control_revenue_per_customer),
                amount(u),
                m(c.revenue_ci_low),
                m(c.revenue_ci_high)
            );
        }
    }
    o
}

/// A readable summary of the report.
pub fn summary(report: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "campaign {}  esp {}  state {}  send at {}",
        report.campaign_id,
        report.esp,
        report.state,
        report.send_at.as_deref().unwrap_or("-")
    );
    for v in &report.variants {
        group(
            &mut o,
            &format!("variant {} (template {})", v.name, v.template_id),
            &v.stats,
        );
    }
    if report.variants.len() > 1 {
        group(&mut o, "total", &report.total);
    }
    o.push_str(&verdict_lines(report));
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use espbridge_analysis::{DailyCounts, GroupConversions, ReportInput, VariantInput};

    fn variant(name: &str, delivered: u64, clicks: u64, converters: u64) -> VariantInput {
        VariantInput {
            name: name.to_owned(),
            template_id: format!("t-{name}"),
            assigned: 1000,
            daily: vec![DailyCounts {
                day: 1,
                sent: 1000,
                delivered,
                opens: clicks * 3,
                clicks,
                unsubscribes: 2,
            }],
            conversions: Some(GroupConversions {
                customers: 1000,
                converters,
                revenue: converters as f64 * 50.0,
                revenue_sq: converters as f64 * 2500.0,
            }),
        }
    }

    fn input(variants: Vec<VariantInput>, control: bool) -> ReportInput {
        ReportInput {
            campaign_id: "spring-ab".to_owned(),
            esp: "emarsys".to_owned(),
            state: "completed".to_owned(),
            send_at: Some("2026-11-25T08:00:00Z".to_owned()),
            metric: Metric::ClickRate,
            variants,
            control: control.then_some(GroupConversions {
                customers: 200,
                converters: 8,
                revenue: 400.0,
                revenue_sq: 20_000.0,
            }),
            conversions_window_days: 7,
        }
    }

    #[test]
    fn rates_show_their_interval() {
        let r = espbridge_analysis::stats::wilson(50, 1000);
        assert_eq!(rate(r.as_ref()), "5.0% [3.8%–6.5%]");
        assert_eq!(rate(None), "-");
    }

    #[test]
    fn summary_has_every_variant_the_total_the_verdict_and_the_uplift() {
        let report = build_report(&input(
            vec![variant("A", 990, 40, 55), variant("B", 980, 90, 70)],
            true,
        ));
        let text = summary(&report);
        assert!(text.contains("variant A (template t-A)"), "{text}");
        assert!(text.contains("variant B (template t-B)"), "{text}");
        assert!(text.contains("  total\n"), "{text}");
        assert!(text.contains("assigned 1,000"), "{text}");
        assert!(text.contains("conversion rate   7.0%"), "{text}");
        assert!(text.contains("revenue/customer 3.50"), "{text}");
        // 90/980 against 40/990 is far beyond chance: B wins.
        assert!(
            text.contains(
                "A/B test on click_rate (two_proportion_z): B wins on click_rate, p < 0.0001"
            ),
            "{text}"
        );
        // Treated 125/2000 = 6.25% against control 8/200 = 4%.
        assert!(
            text.contains("treated 6.2% (2,000 customers) vs control 4.0% (200 customers)"),
            "{text}"
        );
        assert!(text.contains("uplift +2.2 pp, 95% CI ["), "{text}");
        assert!(
            text.contains("revenue/customer: treated 3.12 vs control 2.00"),
            "{text}"
        );
    }

    #[test]
    fn a_single_series_without_control_has_no_verdict() {
        let mut v = variant("all", 990, 40, 0);
        v.conversions = None;
        let report = build_report(&input(vec![v], false));
        let text = summary(&report);
        assert!(text.contains("variant all"), "{text}");
        assert!(!text.contains("total"), "{text}");
        assert!(!text.contains("conversion rate"), "{text}");
        assert!(verdict_lines(&report).is_empty());
    }

    #[tokio::test]
    async fn a_missing_store_or_campaign_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let id = CampaignId::parse("nope-1").unwrap();
        let err = load(dir.path(), &id, None).await.unwrap_err();
        assert!(
            format!("{err:#}").contains("no campaign store at"),
            "{err:#}"
        );
        assert!(
            !dir.path().join(STORE_FILE).exists(),
            "no store is created by looking"
        );
        SqliteStore::open(&dir.path().join(STORE_FILE)).unwrap();
        let err = load(dir.path(), &id, None).await.unwrap_err();
        assert!(format!("{err:#}").contains("no campaign nope-1"), "{err:#}");
    }
}
