//! Conversions attribution: per-group totals, redelivery, by-date files, control files.

use super::*;

use crate::audience::assign::{Assigner, Group};
use crate::campaign::GroupConversionTotals;
use crate::campaign::State;
use crate::service::conversions::ConversionOutcome;
use crate::service::intake::ObjectOutcome;
use std::collections::BTreeMap;

/// Puts a conversions file and returns its event (tagged with the version the source reports).
async fn put_conversions(w: &World, key: &str, body: impl Into<Vec<u8>>) -> ObjectRef {
    w.src.put(key, body);
    let (_, etag) = w.src.read_small("b", key).await.unwrap();
    ObjectRef {
        bucket: "b".into(),
        key: key.into(),
        etag: etag.trim_matches('"').into(),
    }
}

/// The totals computed independently: the audience C0..C{n-1}, assigned with `rule`, plus
/// control-file ids outside the audience, against each customer's summed revenue.
fn expected(
    n: usize,
    rule: &Assigner,
    names: &[&str],
    outside_control: &[&str],
    revenue: &[(&str, f64)],
) -> BTreeMap<String, GroupConversionTotals> {
    let mut sums: BTreeMap<&str, f64> = BTreeMap::new();
    for (id, r) in revenue {
        *sums.entry(id).or_default() += r;
    }
    let mut out: BTreeMap<String, GroupConversionTotals> = BTreeMap::new();
    let mut add = |group: &str, id: &str| {
        let g = out.entry(group.to_owned()).or_default();
        g.customers += 1;
        if let Some(r) = sums.get(id) {
            g.converters += 1;
            g.revenue += r;
            g.revenue_sq += r * r;
        }
    };
    for i in 0..n {
        let id = format!("C{i}");
        match rule.assign(&id) {
            Group::Holdout => add("control", &id),
            Group::Variant(v) => add(names[v], &id),
        }
    }
    for id in outside_control {
        add("control", id);
    }
    out
}

/// The first audience customers (from `skip`) the rule puts in `group`.
fn in_group(rule: &Assigner, group: Group, skip: usize) -> String {
    (skip..)
        .map(|i| format!("C{i}"))
        .find(|id| rule.assign(id) == group)
        .unwrap()
}

fn ab_world() -> (World, Assigner, ObjectRef) {
    let w = world();
    let drop = drop_files(
        &w,
        200,
        serde_json::json!({
            "variants": [
                {"name": "A", "template_id": "t1", "share": 0.5},
                {"name": "B", "template_id": "t2", "share": 0.5}
            ],
            "control_group": {"holdout_share": 0.2}
        }),
    );
    (w, Assigner::new("c1", &[0.5, 0.5], 0.2), drop)
}

#[tokio::test]
async fn by_campaign_files_are_attributed_per_group_and_add_up_without_double_counting() {
    let (w, rule, drop) = ab_world();
    // Not scheduled yet: acknowledged and recorded nowhere.
    let early = put_conversions(
        &w,
        &format!("{PREFIX}early-conversions.csv"),
        "customer_id,amount,timestamp\nC1,1,2026-11-26T00:00:00Z\n",
    )
    .await;
    assert!(matches!(
        w.services
            .conversions()
            .attribute_conversions(&early)
            .await
            .unwrap(),
        ConversionOutcome::Ignored(_)
    ));
    run_to_scheduled(&w, &drop).await;

    let a = in_group(&rule, Group::Variant(0), 0);
    let a2 = in_group(
        &rule,
        Group::Variant(0),
        a[1..].parse::<usize>().unwrap() + 1,
    );
    let a3 = in_group(
        &rule,
        Group::Variant(0),
        a2[1..].parse::<usize>().unwrap() + 1,
    );
    let b = in_group(&rule, Group::Variant(1), 0);
    let h = in_group(&rule, Group::Holdout, 0);
    let first = put_conversions(
        &w,
        &format!("{PREFIX}conversions.csv"),
        format!(
            "timestamp,amount,customer_id,channel\n\
             2026-11-26T10:00:00+01:00,20.00,{a},web\n\
             2026-11-26T11:00:00Z,10,{b},web\n\
             2026-11-27T11:00:00Z,5.5,{b},shop\n\
             2026-11-28T00:00:00Z,7,{h},web\n\
             2026-11-28T00:00:00Z,99,X-outside,web\n\
             2026-12-03T00:00:00Z,50,{a2},web\n\
             2026-11-28T00:00:00Z,abc,{a3},web\n\
             2026-11-28,3,{a3},web\n"
        ),
    )
    .await;
    let out = w
        .services
        .conversions()
        .attribute_conversions(&first)
        .await
        .unwrap();
    assert_eq!(
        out,
        ConversionOutcome::Attributed {
            updated: vec![id()],
            unchanged: vec![],
            failed: vec![]
        }
    );
    let c = w.services.store.get(&id()).await.unwrap().unwrap();
    let s = c.conversions.clone().unwrap();
    assert_eq!((s.rows, s.rows_in_window, s.rejected), (8, 5, 2));
    assert_eq!(s.window_days, 7);
    let lines: Vec<u64> = s.reject_samples.iter().map(|r| r.line).collect();
    assert_eq!(lines, [8, 9]);
    assert!(s.reject_samples[0].reason.contains("amount"));
    assert!(s.reject_samples[1].reason.contains("timestamp"));
    assert!(
        s.reject_samples
            .iter()
            .all(|r| r.file.ends_with("conversions.csv") && !r.reason.contains(&a3))
    );
    let revenue = [
        (a.as_str(), 20.0),
        (b.as_str(), 10.0),
        (b.as_str(), 5.5),
        (h.as_str(), 7.0),
    ];
    let want = expected(200, &rule, &["A", "B"], &[], &revenue);
    assert_eq!(s.groups, want);
    assert_eq!(s.groups["B"].converters, 1, "two rows, one converter");
    assert_eq!(s.groups["B"].revenue, 15.5);
    assert_eq!(s.groups["control"].revenue, 7.0);
    assert_eq!(
        s.groups.values().map(|g| g.customers).sum::<u64>(),
        200,
        "the outsider is nobody's customer"
    );

    // A second file: the totals are recomputed over both; b is still one converter.
    let body = format!(
        "customer_id,amount,timestamp\n{b},4.5,2026-11-29T00:00:00Z\n{a3},2,2026-11-29T00:00:00Z\n"
    );
    let second = put_conversions(
        &w,
        &format!("{PREFIX}2-conversions.csv.gz"),
        gzip(body.as_bytes()),
    )
    .await;
    w.services
        .conversions()
        .attribute_conversions(&second)
        .await
        .unwrap();
    let s2 = w
        .services
        .store
        .get(&id())
        .await
        .unwrap()
        .unwrap()
        .conversions
        .unwrap();
    assert_eq!(s2.sources.len(), 2);
    assert_eq!((s2.rows, s2.rows_in_window, s2.rejected), (10, 7, 2));
    let mut revenue2 = revenue.to_vec();
    revenue2.extend([(b.as_str(), 4.5), (a3.as_str(), 2.0)]);
    assert_eq!(s2.groups, expected(200, &rule, &["A", "B"], &[], &revenue2));
    assert_eq!(s2.groups["B"].converters, s.groups["B"].converters);
    assert_eq!(s2.groups["A"].converters, s.groups["A"].converters + 1);

    // Redelivery of the first file changes nothing, not even the record's version.
    let before = w.services.store.get(&id()).await.unwrap().unwrap();
    assert_eq!(
        w.services
            .conversions()
            .attribute_conversions(&first)
            .await
            .unwrap(),
        ConversionOutcome::Attributed {
            updated: vec![],
            unchanged: vec![id()],
            failed: vec![]
        }
    );
    assert_eq!(w.services.store.get(&id()).await.unwrap().unwrap(), before);
}

fn gzip(body: &[u8]) -> Vec<u8> {
    use flate2::write::GzEncoder;
    use std::io::Write;
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(body).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn a_by_date_file_reaches_the_campaigns_sent_in_its_window_only() {
    let (w, rule, drop) = ab_world();
    run_to_scheduled(&w, &drop).await;
    // Two more records on the same drop: one sent later, one not scheduled yet.
    let c1 = w.services.store.get(&id()).await.unwrap().unwrap();
    for (name, send_at, state) in [
        ("late", "2026-12-10T08:00:00Z", State::Scheduled),
        ("pending", "2026-11-26T08:00:00Z", State::AudienceReady),
    ] {
        let mut c = c1.clone();
        c.id = CampaignId::parse(name).unwrap();
        c.send_at = Some(send_at.parse().unwrap());
        c.state = state;
        let mut drop = c.drop.clone();
        drop.etag = name.into();
        w.services.store.create_from_drop(&drop, &c).await.unwrap();
    }
    let c = in_group(&rule, Group::Variant(1), 0);
    let file = put_conversions(
        &w,
        "conversions/2026-11-30/shop.csv",
        format!("customer_id,amount,timestamp\n{c},12,2026-11-30T12:00:00Z\n"),
    )
    .await;
    assert_eq!(
        w.services
            .conversions()
            .attribute_conversions(&file)
            .await
            .unwrap(),
        ConversionOutcome::Attributed {
            updated: vec![id()],
            unchanged: vec![],
            failed: vec![]
        }
    );
    let s = w
        .services
        .store
        .get(&id())
        .await
        .unwrap()
        .unwrap()
        .conversions
        .unwrap();
    assert_eq!(s.groups["B"].revenue, 12.0);
    for other in ["late", "pending"] {
        let o = w
            .services
            .store
            .get(&CampaignId::parse(other).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(o.conversions, None, "{other}");
    }
    // A date whose window holds no send is acknowledged, not retried.
    let none = put_conversions(
        &w,
        "conversions/2026-12-04/shop.csv",
        "customer_id,amount,timestamp\n",
    )
    .await;
    assert!(matches!(
        w.services
            .conversions()
            .attribute_conversions(&none)
            .await
            .unwrap(),
        ConversionOutcome::Ignored(_)
    ));
    // The late campaign's window.
    let late = put_conversions(
        &w,
        "conversions/2026-12-12/shop.csv",
        format!("customer_id,amount,timestamp\n{c},3,2026-12-11T00:00:00Z\n"),
    )
    .await;
    assert_eq!(
        w.services
            .conversions()
            .attribute_conversions(&late)
            .await
            .unwrap(),
        ConversionOutcome::Attributed {
            updated: vec![CampaignId::parse("late").unwrap()],
            unchanged: vec![],
            failed: vec![]
        }
    );
}

#[tokio::test]
async fn control_file_ids_outside_the_audience_count_as_control() {
    let w = control_file_campaign(&["X-not-in-audience", "X-other"]).await;
    let file = put_conversions(
        &w,
        &format!("{PREFIX}conversions.csv"),
        "customer_id,amount,timestamp\n\
         C1,5,2026-11-26T00:00:00Z\n\
         X-not-in-audience,8,2026-11-26T00:00:00Z\n\
         C10,3,2026-11-26T00:00:00Z\n",
    )
    .await;
    // Through the router the handlers use.
    let out = w
        .services
        .upload()
        .handle_object(&file, Deadline::none(), false)
        .await
        .unwrap();
    assert!(matches!(
        out,
        ObjectOutcome::Conversions(ConversionOutcome::Attributed { .. })
    ));
    let s = w
        .services
        .store
        .get(&id())
        .await
        .unwrap()
        .unwrap()
        .conversions
        .unwrap();
    let control = s.groups["control"];
    assert_eq!(control.customers, 5, "3 in the audience, 2 outside it");
    assert_eq!((control.converters, control.revenue), (2, 13.0));
    assert_eq!(control.revenue_sq, 25.0 + 64.0);
    let all = s.groups["all"];
    assert_eq!((all.customers, all.converters, all.revenue), (47, 1, 3.0));
}

#[tokio::test]
async fn an_unreadable_file_is_recorded_at_line_1_naming_the_column() {
    let w = world();
    let drop = drop_files(&w, 20, serde_json::json!({}));
    run_to_scheduled(&w, &drop).await;
    let file = put_conversions(
        &w,
        &format!("{PREFIX}conversions.csv"),
        "customer_id,value,timestamp\nC1,5,2026-11-26T00:00:00Z\n",
    )
    .await;
    w.services
        .conversions()
        .attribute_conversions(&file)
        .await
        .unwrap();
    let s = w
        .services
        .store
        .get(&id())
        .await
        .unwrap()
        .unwrap()
        .conversions
        .unwrap();
    assert_eq!((s.rows, s.rejected), (0, 1));
    assert_eq!(s.reject_samples[0].line, 1);
    assert!(s.reject_samples[0].file.ends_with("conversions.csv"));
    assert!(
        s.reject_samples[0].reason.contains("\"amount\""),
        "{:?}",
        s.reject_samples
    );
    assert_eq!(s.groups["all"].customers, 20);
    assert_eq!(s.groups["all"].converters, 0);
    // An audience replaced since the upload cannot be regrouped: acknowledged, not retried.
    w.src
        .put(&format!("{PREFIX}a.csv"), "customer_id,first_name\nZ,z\n");
    let next = put_conversions(
        &w,
        &format!("{PREFIX}2-conversions.csv"),
        "customer_id,amount,timestamp\nC1,5,2026-11-26T00:00:00Z\n",
    )
    .await;
    assert_eq!(
        w.services
            .conversions()
            .attribute_conversions(&next)
            .await
            .unwrap(),
        ConversionOutcome::Attributed {
            updated: vec![],
            unchanged: vec![],
            failed: vec![id()]
        }
    );
    // A by-campaign file of an unknown campaign is acknowledged.
    let stray = put_conversions(
        &w,
        "campaigns/2026-11-24/nobody/conversions.csv",
        "customer_id,amount,timestamp\n",
    )
    .await;
    assert!(matches!(
        w.services
            .conversions()
            .attribute_conversions(&stray)
            .await
            .unwrap(),
        ConversionOutcome::Ignored(_)
    ));
}
