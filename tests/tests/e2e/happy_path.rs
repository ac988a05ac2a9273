//! Test 1: a whole campaign, drop to completion, through every handler.

use espbridge_core::State;
use espbridge_core::ports::scheduler::PollEvent;
use espbridge_tests::audience::sim_knows;
use espbridge_tests::{Bad, Drop, Harness, HarnessOptions};
use std::collections::{BTreeMap, BTreeSet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_becomes_a_completed_campaign() -> anyhow::Result<()> {
    let Some(h) = Harness::start("happy_path", HarnessOptions::default()).await? else {
        return Ok(());
    };
    let template_id = h.pick_template().await?;
    let send_at = h.send_at_tomorrow_9()?;
    let send_at_text = send_at.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();

    let mut drop = Drop::default();
    drop.add_file(
        "audience_part1.csv",
        "a-",
        12_000,
        &[
            (10, Bad::EmptyCustomerId),
            (500, Bad::ColumnCount),
            (7_000, Bad::Duplicate),
        ],
    )?;
    drop.add_file(
        "audience_part2.csv.gz",
        "b-",
        13_000,
        &[(3, Bad::PaddedId), (12_999, Bad::EmptyCustomerId)],
    )?;
    let campaign_id = "spring-sale-happy";
    let prefix = format!("campaigns/2026-11-24/{campaign_id}/");
    let manifest = drop.manifest(campaign_id, &template_id, &send_at_text);
    let body = h.drop_campaign(&prefix, &drop, &manifest).await?;

    // upload-audience
    let resp = h.deliver_upload_body(&body).await?;
    assert!(
        resp.batch_item_failures.is_empty(),
        "upload failed: {resp:?}"
    );
    let c = h.campaign(campaign_id).await?;
    assert_eq!(c.state, State::AudienceReady, "failure: {:?}", c.failure);
    assert_eq!(c.audience.rows, drop.data_rows);
    assert_eq!(c.audience.uploaded + c.audience.rejected, drop.data_rows);
    assert_eq!(c.audience.uploaded, drop.valid_ids.len() as u64);

    // rejects.csv beside the drop: one line per rejected row, with its line number.
    let rejects_key = format!("{prefix}rejects.csv");
    assert_eq!(
        c.audience.rejects_key.as_deref(),
        Some(rejects_key.as_str())
    );
    let rejects = String::from_utf8(h.get(&rejects_key).await?)?;
    let got: BTreeSet<(String, u64)> = rejects
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut p = l.splitn(3, ',');
            Some((p.next()?.to_owned(), p.next()?.parse().ok()?))
        })
        .collect();
    let want: BTreeSet<(String, u64)> = drop
        .rejects
        .iter()
        .map(|(f, l, _)| (f.clone(), *l))
        .collect();
    assert_eq!(rejects.lines().count() - 1, drop.rejects.len(), "{rejects}");
    assert_eq!(got, want, "{rejects}");

    // The simulator's contact list: exactly the valid ids it knows.
    let share = h.emarsys()?.config().unknown_id_share;
    let lists = h.emarsys()?.contact_lists();
    assert_eq!(
        lists.len(),
        1,
        "{:?}",
        lists.iter().map(|l| &l.name).collect::<Vec<_>>()
    );
    let members: BTreeSet<String> = lists[0].members.iter().cloned().collect();
    assert_eq!(members.len(), lists[0].members.len(), "members are unique");
    let expected: BTreeSet<String> = drop
        .valid_ids
        .iter()
        .filter(|id| sim_knows(id, share))
        .cloned()
        .collect();
    assert!(
        expected.len() < drop.valid_ids.len(),
        "some ids are unknown to the sim"
    );
    assert_eq!(members, expected);
    assert_eq!(
        c.audience.not_in_esp,
        (drop.valid_ids.len() - expected.len()) as u64
    );
    let list_calls: Vec<usize> = h
        .emarsys()?
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.contains("contactlist"))
        .filter_map(|r| Some(r.body?.get("external_ids")?.as_array()?.len()))
        .filter(|n| *n > 0)
        .collect();
    assert!(list_calls.len() >= 3, "{list_calls:?}");
    assert!(list_calls.iter().all(|n| *n <= 10_000), "{list_calls:?}");

    // schedule-send from the message upload-audience queued.
    let (n, resp) = h.run_schedule_queue().await?;
    assert_eq!(n, 1);
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    let c = h.campaign(campaign_id).await?;
    assert_eq!(c.state, State::Scheduled, "failure: {:?}", c.failure);
    let copies: Vec<_> = h
        .emarsys()?
        .emails()
        .into_iter()
        .filter(|e| e.copied_from.is_some())
        .collect();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].name, format!("espbridge_{campaign_id}"));
    assert_eq!(h.emarsys()?.launch_count(), 1);
    let launch = &copies[0].launches[0];
    let day = send_at.date().strftime("%Y-%m-%d").to_string();
    assert_eq!(
        launch.schedule.as_deref(),
        Some(format!("{day} 09:00").as_str())
    );
    assert_eq!(launch.timezone, "Europe/Berlin");

    // The metric schedule at EventBridge Scheduler.
    let schedule_name = c
        .schedule_name
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no schedule"))?;
    let sched = h
        .scheduler
        .get_schedule()
        .group_name(&h.schedule_group)
        .name(&schedule_name)
        .send()
        .await?;
    assert_eq!(sched.schedule_expression(), Some("rate(1 day)"));
    let input = sched
        .target()
        .map(|t| t.input().unwrap_or_default())
        .unwrap_or_default();
    let input: serde_json::Value = serde_json::from_str(input)?;
    let ev: PollEvent = serde_json::from_value(input.clone())?;
    assert_eq!(ev.campaign_id.as_str(), campaign_id);

    // Seven daily polls.
    for k in 1..=7i64 {
        h.clock
            .set(send_at.timestamp() + jiff::SignedDuration::from_hours(24 * k));
        let out = poll_metrics::handle(&h.poll, input.clone()).await?;
        assert_eq!(out["campaign_id"], campaign_id, "{out}");
    }
    let c = h.campaign(campaign_id).await?;
    assert_eq!(c.state, State::Completed, "failure: {:?}", c.failure);
    let gone = h
        .scheduler
        .get_schedule()
        .group_name(&h.schedule_group)
        .name(&schedule_name)
        .send()
        .await;
    assert!(gone.is_err(), "the schedule is deleted after day 7");

    // The report through the API.
    let (status, doc) = h
        .api_json("GET", &format!("/campaigns/{campaign_id}"), "")
        .await?;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["state"], "completed");
    let runs = doc["runs"].as_array().cloned().unwrap_or_default();
    assert!(
        runs.iter()
            .any(|r| r["step"] == "upload" && r["outcome"] == "done"),
        "{runs:?}"
    );
    assert!(
        runs.iter()
            .any(|r| r["step"] == "schedule" && r["outcome"] == "done"),
        "{runs:?}"
    );
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    for (_, _, key) in &drop.rejects {
        *by_reason.entry((*key).to_owned()).or_default() += 1;
    }
    assert_eq!(
        doc["audience"]["rejected_by_reason"],
        serde_json::to_value(&by_reason)?
    );
    let daily = doc["daily_metrics"].as_array().cloned().unwrap_or_default();
    assert_eq!(daily.len(), 7, "{daily:?}");
    let days: Vec<u64> = daily.iter().filter_map(|d| d["day"].as_u64()).collect();
    assert_eq!(days, (1..=7).collect::<Vec<u64>>());
    let opens: Vec<u64> = daily.iter().filter_map(|d| d["opens"].as_u64()).collect();
    assert_eq!(opens.len(), 7);
    assert!(opens.windows(2).all(|w| w[0] <= w[1]), "{opens:?}");
    assert!(opens[6] > 0, "{opens:?}");

    // Templates, preview, errors.
    let (status, v) = h.api_json("GET", "/templates", "esp=emarsys").await?;
    assert_eq!(status, 200);
    let names: Vec<&str> = v["templates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(!names.is_empty());
    assert!(
        names.iter().all(|n| n.starts_with("optimove_")),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("espbridge_")),
        "{names:?}"
    );
    let preview = h
        .api(
            "GET",
            &format!("/templates/emarsys/{template_id}/preview"),
            "format=html",
        )
        .await?;
    assert_eq!(preview.status, 200);
    assert!(preview.body.contains("<html"), "{}", preview.body);
    let (status, v) = h.api_json("GET", "/nope", "").await?;
    assert_eq!(status, 404);
    assert_eq!(v["error"]["code"], "not_found");
    let (status, v) = h.api_json("GET", "/campaigns/bad%20id!", "").await?;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["code"], "bad_request");
    Ok(())
}
