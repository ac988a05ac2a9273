//! A/B variants, a hold-out control group and a conversions drop, end to end through the real
//! handlers on moto and the Emarsys simulator, to the report API (JSON and HTML).

use crate::common::{prefix, upload_with};
use espbridge_core::State;
use espbridge_core::audience::assign::{Assigner, Group};
use espbridge_tests::{Bad, Drop, Harness, HarnessOptions};
use std::collections::BTreeSet;

/// Two `optimove_` HTML templates the API lists.
async fn two_templates(h: &Harness) -> anyhow::Result<(String, String)> {
    let (status, v) = h.api_json("GET", "/templates", "esp=emarsys").await?;
    anyhow::ensure!(status == 200, "{v}");
    let ids: Vec<String> = v["templates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["kind"] == "html")
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .collect();
    match ids.as_slice() {
        [a, b, ..] => Ok((a.clone(), b.clone())),
        _ => anyhow::bail!("fewer than two HTML templates: {v}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_campaign_with_holdout_and_conversions_reports_winner_and_uplift() -> anyhow::Result<()>
{
    let Some(mut h) = Harness::start("ab", HarnessOptions::default()).await? else {
        return Ok(());
    };
    h.upload.settings.max_batches_per_run = Some(1);
    let id = "ab-spring";
    let (ta, tb) = two_templates(&h).await?;
    let mut drop = Drop::default();
    drop.add_file("audience.csv", "ab-", 30_000, &[(10, Bad::Duplicate)])?;
    let send_at = h.send_at_tomorrow_9()?;
    let send_text = send_at.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
    let mut manifest = drop.manifest(id, &ta, &send_text);
    manifest["variants"] = serde_json::json!([
        {"name": "A", "template_id": ta, "share": 0.5},
        {"name": "B", "template_id": tb, "share": 0.5}
    ]);
    manifest["control_group"] = serde_json::json!({"holdout_share": 0.1});
    let body = h.drop_campaign(&prefix(id), &drop, &manifest).await?;
    let runs = upload_with(&h, id, &body, |_| {}).await?;
    assert!(runs > 1, "continuations: {runs}");

    // Everyone where the seeded hash puts them; the held-out customers were never sent.
    let rule = Assigner::new(id, &[0.5, 0.5], 0.1);
    let mut expected: [BTreeSet<String>; 2] = Default::default();
    let mut held = BTreeSet::new();
    for c in &drop.valid_ids {
        match rule.assign(c) {
            Group::Holdout => {
                held.insert(c.clone());
            }
            Group::Variant(i) => {
                expected[i].insert(c.clone());
            }
        }
    }
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::AudienceReady, "failure: {:?}", c.failure);
    assert_eq!(c.audience.held_out, held.len() as u64);
    assert_eq!(c.variants[0].assigned, expected[0].len() as u64);
    assert_eq!(c.variants[1].assigned, expected[1].len() as u64);
    let sent: BTreeSet<String> = h.ids_sent()?.into_iter().collect();
    assert!(sent.is_disjoint(&held), "a held-out customer was sent");
    for (i, v) in ["A", "B"].iter().enumerate() {
        let list = h
            .emarsys()?
            .contact_lists()
            .into_iter()
            .find(|l| l.name == format!("espbridge_{id}_{v}"))
            .ok_or_else(|| anyhow::anyhow!("no list for variant {v}"))?;
        let members: BTreeSet<String> = list.members.into_iter().collect();
        assert!(
            members.is_subset(&expected[i]),
            "variant {v} has foreign members"
        );
    }

    // One send per variant, each with its own template.
    let (n, resp) = h.run_schedule_queue().await?;
    assert_eq!(n, 1);
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    assert_eq!(h.emarsys()?.launch_count(), 2);
    let copied: BTreeSet<String> = h
        .emarsys()?
        .emails()
        .into_iter()
        .filter_map(|e| e.copied_from)
        .map(|t| t.to_string())
        .collect();
    assert_eq!(copied, [ta.clone(), tb.clone()].into_iter().collect());

    h.poll_seven_days(id, send_at.timestamp()).await?;
    let c = h.campaign(id).await?;
    assert_eq!(c.state, State::Completed, "failure: {:?}", c.failure);
    let snaps = h.store().snapshots(&c.id).await?;
    assert!(snaps.iter().all(|s| s.by_variant.len() == 2), "{snaps:?}");

    // Conversions beside the campaign: variant B converts more, the control least.
    let start = send_at.timestamp();
    let mut csv = String::from("customer_id,amount,timestamp\n");
    let (mut conv, mut treated_conv) = (0u64, 0u64);
    for (n, c) in drop.valid_ids.iter().enumerate() {
        let every = match rule.assign(c) {
            Group::Holdout => 40,
            Group::Variant(0) => 20,
            Group::Variant(_) => 12,
        };
        if n % every == 0 {
            let at = start + jiff::SignedDuration::from_hours(30 + (n % 100) as i64);
            csv.push_str(&format!("{c},{}.50,{at}\n", 10 + n % 90));
            conv += 1;
            if !matches!(rule.assign(c), Group::Holdout) {
                treated_conv += 1;
            }
        }
    }
    // Outside the window, and a bad row: neither counts as a conversion.
    let late = start + jiff::SignedDuration::from_hours(24 * 8);
    csv.push_str(&format!("{},99.00,{late}\n", drop.valid_ids[1]));
    csv.push_str("ab-7,not-a-number,2026-11-26T10:00:00Z\n");
    let body = h
        .put_with_event(&format!("{}conversions.csv", prefix(id)), csv.into_bytes())
        .await?;
    let resp = h.deliver_upload_body(&body).await?;
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    let c = h.campaign(id).await?;
    let stats = c
        .conversions
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no conversions attributed"))?;
    assert_eq!(stats.rejected, 1, "{stats:?}");
    let converters: u64 = stats.groups.values().map(|g| g.converters).sum();
    assert_eq!(converters, conv, "{stats:?}");
    assert_eq!(
        stats.groups["A"].converters + stats.groups["B"].converters,
        treated_conv
    );
    assert_eq!(stats.groups["control"].customers, held.len() as u64);

    // The report: JSON and the page.
    let (status, v) = h
        .api_json("GET", &format!("/campaigns/{id}/report"), "")
        .await?;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["variants"].as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(v["variants"][0]["template_id"], ta.as_str());
    assert_eq!(v["ab_test"]["metric"], "click_rate");
    assert!(v["ab_test"]["p_value"].is_number(), "{}", v["ab_test"]);
    let control = &v["control"];
    let (lo, up, hi) = (
        control["ci_low"].as_f64().unwrap_or(f64::NAN),
        control["uplift"].as_f64().unwrap_or(f64::NAN),
        control["ci_high"].as_f64().unwrap_or(f64::NAN),
    );
    assert!(lo <= up && up <= hi, "{control}");
    assert!(up > 0.0, "treated convert more than control: {control}");
    let (status, v) = h
        .api_json(
            "GET",
            &format!("/campaigns/{id}/report"),
            "metric=conversion_rate",
        )
        .await?;
    assert_eq!(status, 200);
    assert_eq!(v["ab_test"]["metric"], "conversion_rate");
    assert_eq!(
        v["ab_test"]["winner"], "B",
        "B converts at about 8%, A at 5%: {}",
        v["ab_test"]
    );
    let (status, v) = h
        .api_json("GET", &format!("/campaigns/{id}/report"), "metric=bogus")
        .await?;
    assert_eq!(status, 400, "{v}");
    let resp = h
        .api("GET", &format!("/campaigns/{id}/report.html"), "")
        .await?;
    assert_eq!(resp.status, 200);
    let html = resp.body.clone();
    assert_eq!(html.matches("<svg").count(), 3, "three charts");
    assert!(!html.contains("http://") && !html.contains("https://"));
    Ok(())
}
