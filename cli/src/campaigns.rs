//! `espbridge campaigns`: the night at a glance, from the local stack's campaign store (found
//! as `espbridge report` finds it; no ESP is contacted).
//!
//! The default output counts the campaigns per state, then prints one line per campaign
//! (failures first, then partially scheduled ones, then by send time) with its ESP and
//! account, state, send time and audience counts, and under a failed one its step and reason.
//! It walks every page of the listing (up to [`MAX_SHOWN`] campaigns). `--json` prints one page
//! exactly as `GET /campaigns` answers it (`--limit`, `--cursor` as there). Only campaign ids,
//! counts and failure reasons are printed, never a customer.

use crate::campaign_report;
use anyhow::{Context, Result, anyhow};
use espbridge_analysis::html::fmt::count;
use espbridge_core::ports::{CampaignFilter, CampaignStore, Position, RunDate};
use espbridge_core::service::night::{self, CampaignSummary, ListRequest};
use espbridge_core::{AccountId, Campaign, EspKind, State};
use std::fmt::Write as _;
use std::path::PathBuf;

/// The most campaigns the summary shows (a night brings 20 to 200).
pub const MAX_SHOWN: usize = 10_000;

#[derive(clap::Args)]
pub struct CampaignsArgs {
    /// Base folder as `serve --dir` and `demo --out` use it: the store is DIR/state.
    #[arg(long, conflicts_with = "config")]
    pub dir: Option<PathBuf>,
    /// TOML file whose `state_dir` holds the store (as `serve --config` reads it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Only the campaigns of this run date (YYYY-MM-DD).
    #[arg(long, value_parser = parse_run_date)]
    pub run_date: Option<RunDate>,
    /// Only campaigns in this state (received, uploading, audience_ready, scheduled,
    /// partially_scheduled, collecting, completed, failed, cancelled).
    #[arg(long, value_parser = parse_state)]
    pub state: Option<State>,
    #[arg(long, value_parser = parse_esp)]
    pub esp: Option<EspKind>,
    #[arg(long, value_parser = parse_account)]
    pub account: Option<AccountId>,
    /// Print one page of the API's JSON (`GET /campaigns`) instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// With --json: the page size (1 to 100, default 50).
    #[arg(long, requires = "json")]
    pub limit: Option<usize>,
    /// With --json: the `cursor` of the previous page.
    #[arg(long, requires = "json")]
    pub cursor: Option<String>,
}

fn parse_run_date(s: &str) -> Result<RunDate, String> {
    RunDate::parse(s).map_err(|e| e.to_string())
}

fn parse_state(s: &str) -> Result<State, String> {
    State::parse(s).ok_or_else(|| format!("{s:?} is not a campaign state"))
}

fn parse_esp(s: &str) -> Result<EspKind, String> {
    EspKind::parse(s).map_err(|e| e.to_string())
}

fn parse_account(s: &str) -> Result<AccountId, String> {
    AccountId::parse(s).map_err(|e| e.to_string())
}

pub async fn run(args: CampaignsArgs) -> Result<()> {
    let state_dir = campaign_report::state_dir(args.dir.clone(), args.config.clone())?;
    let store = campaign_report::open_store(&state_dir)?;
    let filter = CampaignFilter {
        run_date: args.run_date,
        state: args.state,
        esp: args.esp,
        account: args.account,
    };
    if args.json {
        let req = ListRequest {
            filter,
            cursor: args.cursor,
            limit: args.limit,
        };
        let page = night::list(&store, &req)
            .await
            .map_err(|e| anyhow!(espbridge_core::service::chain(&e)))?;
        println!(
            "{}",
            serde_json::to_string_pretty(&page).context("serializing the page")?
        );
        return Ok(());
    }
    let (campaigns, more) = all(&store, &filter).await?;
    print!("{}", summary(&campaigns, more));
    Ok(())
}

/// Every campaign matching `filter`, up to [`MAX_SHOWN`], and whether there were more.
pub async fn all(
    store: &dyn CampaignStore,
    filter: &CampaignFilter,
) -> Result<(Vec<Campaign>, bool)> {
    let mut out = Vec::new();
    let mut after: Option<Position> = None;
    loop {
        let page = store
            .list(
                filter,
                after.as_ref(),
                espbridge_core::ports::listing::MAX_PAGE,
            )
            .await
            .context("listing campaigns")?;
        out.extend(page.campaigns);
        if out.len() >= MAX_SHOWN {
            let more = out.len() > MAX_SHOWN || page.next.is_some();
            out.truncate(MAX_SHOWN);
            return Ok((out, more));
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok((out, false)),
        }
    }
}

/// Failures first, then campaigns needing attention, then by send time and id (as the night
/// report orders them).
fn order(c: &CampaignSummary) -> impl Ord + '_ {
    let rank = match c.state {
        State::Failed => 0,
        State::PartiallyScheduled => 1,
        _ => 2,
    };
    (rank, c.send_at.is_none(), c.send_at, c.campaign_id.as_str())
}

/// The counts per state, then one line per campaign, each failure's step and reason under it.
pub fn summary(campaigns: &[Campaign], more: bool) -> String {
    let mut o = String::new();
    let mut rows: Vec<CampaignSummary> = campaigns.iter().map(CampaignSummary::of).collect();
    rows.sort_by(|a, b| order(a).cmp(&order(b)));
    let plural = if rows.len() == 1 { "" } else { "s" };
    let _ = write!(o, "{} campaign{plural}", count(rows.len() as u64));
    if more {
        let _ = write!(
            o,
            " (the first {}; narrow with --run-date or --state)",
            count(MAX_SHOWN as u64)
        );
    }
    o.push('\n');
    let counts: Vec<String> = State::ALL
        .iter()
        .filter_map(|s| {
            let n = rows.iter().filter(|c| c.state == *s).count();
            (n > 0).then(|| format!("{s} {n}"))
        })
        .collect();
    if !counts.is_empty() {
        let _ = writeln!(o, "  {}", counts.join("  "));
    }
    if rows.is_empty() {
        return o;
    }
    o.push('\n');
    let header = [
        "CAMPAIGN",
        "ESP/ACCOUNT",
        "STATE",
        "SEND AT",
        "ROWS",
        "VALID",
        "REJECTED",
        "UPLOADED",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|c| {
            let a = &c.audience;
            [
                c.campaign_id.to_string(),
                match (&c.esp, &c.account) {
                    (Some(e), Some(acc)) => format!("{e}/{acc}"),
                    (Some(e), None) => e.to_string(),
                    _ => "-".to_owned(),
                },
                c.state.to_string(),
                c.send_at.map_or_else(|| "-".to_owned(), |t| t.to_string()),
                count(a.rows),
                count(a.valid),
                count(a.rejected),
                count(a.uploaded),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |o: &mut String, row: &[&str]| {
        let mut text = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            // Text columns to the left, counts to the right.
            if i < 4 {
                let _ = write!(text, "{cell:<w$}  ");
            } else {
                let _ = write!(text, "{cell:>w$}  ");
            }
        }
        let _ = writeln!(o, "{}", text.trim_end());
    };
    line(&mut o, &header);
    for (c, row) in rows.iter().zip(&cells) {
        line(&mut o, &row.each_ref().map(String::as_str));
        if let Some(f) = &c.failure {
            if c.state == State::PartiallyScheduled {
                let _ = writeln!(o, "    ! {} partly booked: {}", f.step, f.reason);
            } else {
                let _ = writeln!(o, "    ! {} failed: {}", f.step, f.reason);
            }
        }
        if let Some(at) = c.stuck_alerted_at {
            let _ = writeln!(o, "    ! stuck in {} (alerted {at})", c.state);
        }
        if let Some(note) = &c.note {
            let _ = writeln!(o, "    note: {note}");
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use espbridge_core::ports::Created;
    use espbridge_core::testkit::sample_campaign;
    use espbridge_local::SqliteStore;

    /// A store with a night of campaigns in several states, and one of another night.
    async fn night_store() -> SqliteStore {
        let store = SqliteStore::in_memory().unwrap();
        for (id, night, state) in [
            ("spring-a", "2026-11-24", State::Collecting),
            ("spring-b", "2026-11-24", State::Failed),
            ("spring-c", "2026-11-24", State::Received),
            ("spring-d", "2026-11-24", State::PartiallyScheduled),
            ("older", "2026-11-23", State::Failed),
        ] {
            let mut c = sample_campaign(id);
            c.run_date = night.to_owned();
            c.audience.rows = 12_000;
            c.audience.valid = 11_900;
            c.audience.rejected = 100;
            let Created::New(mut c) = store.create_from_drop(&c.drop, &c).await.unwrap() else {
                panic!("new")
            };
            let path: &[State] = match state {
                State::Collecting => &[
                    State::Uploading,
                    State::AudienceReady,
                    State::Scheduled,
                    State::Collecting,
                ],
                State::PartiallyScheduled => &[
                    State::Uploading,
                    State::AudienceReady,
                    State::PartiallyScheduled,
                ],
                _ => &[],
            };
            for s in path {
                c.transition(*s, c.updated_at).unwrap();
                c.audience.uploaded = 11_900;
                c = store.save(&c).await.unwrap();
            }
            if state == State::Failed {
                c.fail(
                    "upload",
                    "emarsys: HTTP 400 code 2008 (no such field)",
                    c.updated_at,
                );
                store.save(&c).await.unwrap();
            }
        }
        store
    }

    fn night(d: &str) -> CampaignFilter {
        CampaignFilter {
            run_date: Some(RunDate::parse(d).unwrap()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn the_summary_counts_states_and_lists_failures_first_with_reasons() {
        let store = night_store().await;
        let (campaigns, more) = all(&store, &night("2026-11-24")).await.unwrap();
        assert!(!more);
        let text = summary(&campaigns, more);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "4 campaigns");
        assert_eq!(
            lines[1],
            "  received 1  collecting 1  failed 1  partially_scheduled 1"
        );
        assert!(lines[3].starts_with("CAMPAIGN"), "{text}");
        let order: Vec<&str> = lines[4..]
            .iter()
            .filter(|l| l.starts_with("spring-"))
            .map(|l| l.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(
            order,
            ["spring-b", "spring-d", "spring-a", "spring-c"],
            "{text}"
        );
        assert!(lines[4].contains("emarsys/default  failed"), "{text}");
        assert!(
            lines[4].ends_with("12,000  11,900       100         0"),
            "{text}"
        );
        assert_eq!(
            lines[5],
            "    ! upload failed: emarsys: HTTP 400 code 2008 (no such field)"
        );
        assert!(!text.contains("older"), "another night");
        assert_eq!(text.matches(" ! ").count(), 1);
    }

    #[test]
    fn stuck_partly_booked_and_noted_campaigns_say_so_under_their_line() {
        use espbridge_core::campaign::{Failure, SweepMark};
        let at: jiff::Timestamp = "2026-11-24T05:00:00Z".parse().unwrap();
        let mut stuck = sample_campaign("stuck-one");
        stuck.state = State::Uploading;
        stuck.sweep = Some(SweepMark {
            state: State::Uploading,
            progress_at: at,
            resumes: 3,
            resumed_at: Some(at),
            alerted_at: Some(at),
        });
        let mut moved_on = sample_campaign("moved-on");
        moved_on.state = State::AudienceReady;
        moved_on.sweep = stuck.sweep.clone();
        let mut partly = sample_campaign("partly");
        partly.state = State::PartiallyScheduled;
        partly.failure = Some(Failure {
            step: "schedule".into(),
            reason: "template 2 refused (1 of 2 sends booked: mail may go out for them)".into(),
            at,
        });
        let mut noted = sample_campaign("noted");
        noted.state = State::Completed;
        noted.note = Some("completed without figures".into());
        let text = summary(&[stuck, moved_on, partly, noted], false);
        assert!(
            text.contains("    ! stuck in uploading (alerted 2026-11-24T05:00:00Z)"),
            "{text}"
        );
        assert_eq!(
            text.matches("stuck in").count(),
            1,
            "a mark of an old state: {text}"
        );
        assert!(
            text.contains("    ! schedule partly booked: template 2 refused"),
            "{text}"
        );
        assert!(
            text.contains("    note: completed without figures"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn filters_narrow_the_night_and_an_empty_one_says_so() {
        let store = night_store().await;
        let failed = CampaignFilter {
            state: Some(State::Failed),
            ..Default::default()
        };
        let (campaigns, _) = all(&store, &failed).await.unwrap();
        let text = summary(&campaigns, false);
        assert!(text.starts_with("2 campaigns\n  failed 2\n"), "{text}");
        assert!(
            text.contains("older") && text.contains("spring-b"),
            "{text}"
        );
        let (none, _) = all(&store, &night("2026-01-01")).await.unwrap();
        assert_eq!(summary(&none, false), "0 campaigns\n");
    }

    #[tokio::test]
    async fn json_is_the_api_page() {
        let store = night_store().await;
        let req = ListRequest {
            filter: night("2026-11-24"),
            cursor: None,
            limit: Some(3),
        };
        let page = night::list(&store, &req).await.unwrap();
        let v = serde_json::to_value(&page).unwrap();
        assert_eq!(v["campaigns"].as_array().unwrap().len(), 3);
        assert!(v["cursor"].is_string());
        assert_eq!(v["campaigns"][0]["campaign_id"], "spring-a");
        assert_eq!(v["campaigns"][0]["audience"]["uploaded"], 11_900);
    }
}
