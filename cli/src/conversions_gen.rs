//! The demo's conversions drop: who bought what after an A/B campaign, generated so the report
//! has something true to find.
//!
//! Pure and seeded like [`crate::drop_gen`]: every audience customer is put in their group with
//! the campaign's own [`Assigner`] (the rule the upload and the attribution use), then converts
//! with that group's probability. One row per converter: an amount of 20.00 to 200.00 and a
//! time inside the 7-day window after the send, except about [`OUTSIDE_SHARE`] of the rows,
//! placed just before the send or just after the window, which the attribution must leave out.
//! [`Generated::expected`] counts the converters inside the window per group, which is what the
//! attribution must report.
//!
//! UNCERTAIN (the demo's own figures, not from any source): control 4%, variants 5.5% rising
//! evenly to 7% in manifest order, 3% of the rows outside the window.

use espbridge_core::audience::assign::{Assigner, Group};
use espbridge_core::conversions::CONVERSIONS_WINDOW_DAYS;
use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;

/// The CSV header the attribution reads.
pub const HEADER: &str = "customer_id,amount,timestamp";
/// Conversion probability of the held-out customers.
pub const CONTROL_RATE: f64 = 0.04;
/// Conversion probability of the first and of the last variant.
pub const VARIANT_RATES: (f64, f64) = (0.055, 0.07);
/// Share of the rows placed outside the attribution window.
pub const OUTSIDE_SHARE: f64 = 0.03;
/// Group key of the held-out customers (as the attribution names it).
pub const CONTROL: &str = "control";

/// What to generate.
pub struct ConversionSpec<'a> {
    pub campaign_id: &'a str,
    /// The variants' names and shares, in manifest order.
    pub variants: &'a [(String, f64)],
    pub holdout_share: f64,
    pub send_at: Timestamp,
    pub seed: u64,
}

/// A generated conversions file.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The whole CSV, header included.
    pub csv: String,
    pub rows: u64,
    /// Rows placed outside the window.
    pub outside: u64,
    /// Converters inside the window per group (variant name or [`CONTROL`]).
    pub expected: BTreeMap<String, u64>,
}

/// The probability that a customer of `group` converts.
fn probability(group: Group, variants: usize) -> f64 {
    match group {
        Group::Holdout => CONTROL_RATE,
        Group::Variant(i) if variants > 1 => {
            let (lo, hi) = VARIANT_RATES;
            lo + (hi - lo) * i as f64 / (variants - 1) as f64
        }
        Group::Variant(_) => VARIANT_RATES.0,
    }
}

/// The conversions of `customer_ids` (the audience's valid ids).
pub fn generate<'a>(
    spec: &ConversionSpec<'_>,
    customer_ids: impl IntoIterator<Item = &'a str>,
) -> Generated {
    let shares: Vec<f64> = spec.variants.iter().map(|(_, s)| *s).collect();
    let assigner = Assigner::new(spec.campaign_id, &shares, spec.holdout_share);
    let mut rng = StdRng::seed_from_u64(spec.seed ^ 0xC0_4E_75_10_45);
    let window = i64::from(CONVERSIONS_WINDOW_DAYS) * 24 * 3600;
    let mut out = Generated {
        csv: format!("{HEADER}\n"),
        rows: 0,
        outside: 0,
        expected: BTreeMap::new(),
    };
    for id in customer_ids {
        let group = assigner.assign(id);
        if !rng.random_bool(probability(group, spec.variants.len())) {
            continue;
        }
        let outside = rng.random_bool(OUTSIDE_SHARE);
        let offset = if !outside {
            rng.random_range(0..window)
        } else if rng.random_bool(0.5) {
            -rng.random_range(1..48 * 3600)
        } else {
            window + rng.random_range(0..48 * 3600)
        };
        let at = spec.send_at + SignedDuration::from_secs(offset);
        let cents: u32 = rng.random_range(2000..=20000);
        out.csv
            .push_str(&format!("{id},{}.{:02},{at}\n", cents / 100, cents % 100));
        out.rows += 1;
        if outside {
            out.outside += 1;
            continue;
        }
        let name = match group {
            Group::Holdout => CONTROL.to_owned(),
            Group::Variant(i) => spec
                .variants
                .get(i)
                .map_or_else(|| "all".to_owned(), |(n, _)| n.clone()),
        };
        *out.expected.entry(name).or_default() += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(variants: &[(String, f64)]) -> ConversionSpec<'_> {
        ConversionSpec {
            campaign_id: "demo-ab",
            variants,
            holdout_share: 0.1,
            send_at: "2026-11-25T08:00:00Z".parse().unwrap(),
            seed: 1,
        }
    }

    fn ids(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("C{i:06}")).collect()
    }

    fn variants() -> Vec<(String, f64)> {
        vec![
            ("A".to_owned(), 0.4),
            ("B".to_owned(), 0.3),
            ("C".to_owned(), 0.3),
        ]
    }

    #[test]
    fn rates_by_group_follow_the_campaigns_assignment() {
        let v = variants();
        let ids = ids(100_000);
        let g = generate(&spec(&v), ids.iter().map(String::as_str));
        let assigner = Assigner::new("demo-ab", &[0.4, 0.3, 0.3], 0.1);
        let mut sizes: BTreeMap<String, f64> = BTreeMap::new();
        for id in &ids {
            let name = match assigner.assign(id) {
                Group::Holdout => CONTROL.to_owned(),
                Group::Variant(i) => v[i].0.clone(),
            };
            *sizes.entry(name).or_default() += 1.0;
        }
        let inside = 1.0 - OUTSIDE_SHARE;
        for (name, p) in [
            (CONTROL, CONTROL_RATE),
            ("A", 0.055),
            ("B", 0.0625),
            ("C", 0.07),
        ] {
            let n = sizes[name];
            let mean = n * p * inside;
            let sd = (n * p * inside * (1.0 - p * inside)).sqrt();
            let got = g.expected[name] as f64;
            // 4 standard deviations: a failure is a bug in the generator, not noise.
            assert!((got - mean).abs() < 4.0 * sd, "{name}: {got} vs {mean}");
        }
        assert_eq!(
            g.rows,
            g.outside + g.expected.values().sum::<u64>(),
            "every row is inside or outside"
        );
        assert!(g.outside > 0);
    }

    #[test]
    fn rows_are_well_formed_and_placed_by_the_window() {
        let v = variants();
        let s = spec(&v);
        let g = generate(&s, ids(20_000).iter().map(String::as_str));
        let mut lines = g.csv.lines();
        assert_eq!(lines.next(), Some(HEADER));
        let end = s.send_at + SignedDuration::from_hours(24 * 7);
        let mut outside = 0;
        for line in lines {
            let cols: Vec<&str> = line.split(',').collect();
            assert_eq!(cols.len(), 3, "{line}");
            let (units, cents) = cols[1].split_once('.').unwrap();
            let units: u32 = units.parse().unwrap();
            assert!((20..=200).contains(&units) && cents.len() == 2, "{line}");
            let at: Timestamp = cols[2].parse().unwrap();
            if at < s.send_at || at >= end {
                outside += 1;
            }
        }
        assert_eq!(outside, g.outside);
        assert_eq!(g.csv.lines().count() as u64, g.rows + 1);
    }

    #[test]
    fn deterministic_with_a_seed() {
        let v = variants();
        let ids = ids(5000);
        let a = generate(&spec(&v), ids.iter().map(String::as_str));
        let b = generate(&spec(&v), ids.iter().map(String::as_str));
        assert_eq!(a, b);
        let mut other = spec(&v);
        other.seed = 2;
        assert_ne!(a.csv, generate(&other, ids.iter().map(String::as_str)).csv);
    }
}
