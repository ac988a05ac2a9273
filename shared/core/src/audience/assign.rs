//! A/B variant and hold-out assignment.
//!
//! A customer's group is a pure function of the campaign's seed and the customer id: the id is
//! hashed (xxh3 of the id, seeded with xxh3 of the campaign's seed) to a number `u` uniform in
//! [0, 1). With a
//! hold-out share `h`, `u < h` holds the customer out; the rest of the range is cut into the
//! variants' shares in manifest order (shares are normalised to their sum). Customers listed in
//! a control-group file are held out whatever their hash. So a retried, resumed or re-run upload
//! puts everyone in the same group, and the conversions attribution, which re-reads the
//! audience, finds the same groups without storing any id.

use std::collections::HashSet;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Where a customer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// Not sent: the control group.
    Holdout,
    /// The variant at this index of the manifest's `variants` (0 when there are none).
    Variant(usize),
}

/// The assignment rule of one campaign.
#[derive(Debug, Clone)]
pub struct Assigner {
    seed: u64,
    holdout: f64,
    /// Upper bounds of each variant's slice of [0, 1), the last one 1.
    bounds: Vec<f64>,
    /// Hashes of the ids in the control-group file.
    control: HashSet<u64>,
}

impl Assigner {
    /// `shares` are the variants' shares in manifest order (empty: one implicit variant);
    /// `holdout` the share held out by espbridge (0 for none).
    pub fn new(seed: &str, shares: &[f64], holdout: f64) -> Self {
        let total: f64 = shares.iter().filter(|s| s.is_finite() && **s > 0.0).sum();
        let mut bounds = Vec::with_capacity(shares.len().max(1));
        if total > 0.0 {
            let mut acc = 0.0;
            for s in shares {
                acc += s.max(0.0) / total;
                bounds.push(acc);
            }
        }
        // Rounding must not leave a sliver past the last bound.
        match bounds.last_mut() {
            Some(last) => *last = 1.0,
            None => bounds.push(1.0),
        }
        Self {
            seed: xxh3_64(seed.as_bytes()),
            holdout: if holdout.is_finite() {
                holdout.clamp(0.0, 1.0)
            } else {
                0.0
            },
            bounds,
            control: HashSet::new(),
        }
    }

    /// Adds the ids of a control-group file: they are held out.
    pub fn with_control(mut self, ids: HashSet<u64>) -> Self {
        self.control = ids;
        self
    }

    /// The key a control-group id is stored under (see [`with_control`](Self::with_control)).
    pub fn control_key(customer_id: &str) -> u64 {
        xxh3_64(customer_id.as_bytes())
    }

    pub fn variants(&self) -> usize {
        self.bounds.len()
    }

    /// The customer's group.
    pub fn assign(&self, customer_id: &str) -> Group {
        if !self.control.is_empty() && self.control.contains(&Self::control_key(customer_id)) {
            return Group::Holdout;
        }
        // One series and no hold-out share: nothing to draw (the common case costs no hash).
        if self.bounds.len() == 1 && self.holdout == 0.0 {
            return Group::Variant(0);
        }
        let u = self.unit(customer_id);
        if u < self.holdout {
            return Group::Holdout;
        }
        let v = if self.holdout < 1.0 {
            (u - self.holdout) / (1.0 - self.holdout)
        } else {
            0.0
        };
        let index = self
            .bounds
            .iter()
            .position(|b| v < *b)
            .unwrap_or(self.bounds.len() - 1);
        Group::Variant(index)
    }

    /// The id's position in [0, 1), from 53 bits of its seeded hash.
    fn unit(&self, customer_id: &str) -> f64 {
        (xxh3_64_with_seed(customer_id.as_bytes(), self.seed) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(a: &Assigner, n: usize) -> (usize, Vec<usize>) {
        let mut held = 0;
        let mut per = vec![0; a.variants()];
        for i in 0..n {
            match a.assign(&format!("C{i:07}")) {
                Group::Holdout => held += 1,
                Group::Variant(v) => per[v] += 1,
            }
        }
        (held, per)
    }

    #[test]
    fn shares_and_holdout_are_met_within_sampling_error() {
        let a = Assigner::new("spring-sale", &[0.5, 0.3, 0.2], 0.1);
        let n = 200_000;
        let (held, per) = counts(&a, n);
        // 4 standard deviations of a binomial count: a failing seed is a real bug, not noise.
        let close = |got: usize, p: f64| {
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            (got as f64 - n as f64 * p).abs() < 4.0 * sd
        };
        assert!(close(held, 0.1), "held {held}");
        assert!(close(per[0], 0.9 * 0.5), "{per:?}");
        assert!(close(per[1], 0.9 * 0.3), "{per:?}");
        assert!(close(per[2], 0.9 * 0.2), "{per:?}");
    }

    #[test]
    fn assignment_is_stable_and_depends_on_the_seed() {
        let a = Assigner::new("c1", &[0.5, 0.5], 0.0);
        let again = Assigner::new("c1", &[0.5, 0.5], 0.0);
        let other = Assigner::new("c2", &[0.5, 0.5], 0.0);
        let ids: Vec<String> = (0..1000).map(|i| format!("id{i}")).collect();
        let first: Vec<Group> = ids.iter().map(|i| a.assign(i)).collect();
        assert_eq!(
            first,
            ids.iter().map(|i| again.assign(i)).collect::<Vec<_>>()
        );
        let moved = ids
            .iter()
            .zip(&first)
            .filter(|(i, g)| other.assign(i) != **g)
            .count();
        assert!(
            (400..600).contains(&moved),
            "another seed reshuffles: {moved}"
        );
    }

    #[test]
    fn without_variants_everyone_not_held_out_is_variant_zero() {
        let a = Assigner::new("c", &[], 0.0);
        assert_eq!(counts(&a, 1000), (0, vec![1000]));
    }

    #[test]
    fn control_file_ids_are_held_out_whatever_their_hash() {
        let control: HashSet<u64> = ["C0000001", "C0000002"]
            .iter()
            .map(|i| Assigner::control_key(i))
            .collect();
        let a = Assigner::new("c", &[0.5, 0.5], 0.0).with_control(control);
        assert_eq!(a.assign("C0000001"), Group::Holdout);
        assert_eq!(a.assign("C0000002"), Group::Holdout);
        let (held, per) = counts(&a, 1000);
        assert_eq!(held, 2);
        assert_eq!(per.iter().sum::<usize>(), 998);
    }
}
