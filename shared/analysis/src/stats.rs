//! The statistics, as plain functions of counts (no report types here).
//!
//! Every function is total: degenerate inputs (zero denominators, no
//! variance) give `None` or a stated neutral result instead of NaN or a panic.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

/// The two-sided 95% normal quantile, Φ⁻¹(0.975).
pub const Z95: f64 = 1.959_963_984_540_054;

/// A proportion with its Wilson score 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub successes: u64,
    pub trials: u64,
}

/// Wilson score interval at 95%. `None` when `trials` is 0. Successes above
/// trials (inconsistent input) are capped at trials.
pub fn wilson(successes: u64, trials: u64) -> Option<Rate> {
    if trials == 0 {
        return None;
    }
    let successes = successes.min(trials);
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(Rate {
        value: p,
        ci_low: (centre - half).max(0.0),
        ci_high: (centre + half).min(1.0),
        successes,
        trials,
    })
}

/// Two-sided p-value of a standard normal statistic.
pub fn normal_two_sided_p(z: f64) -> f64 {
    (2.0 * Normal::standard().sf(z.abs())).clamp(0.0, 1.0)
}

/// Result of a pooled two-proportion z-test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ZTest {
    /// (p1 − p2) / sqrt(p̂(1−p̂)(1/n1 + 1/n2)), p̂ the pooled proportion.
    pub z: f64,
    /// Two-sided.
    pub p_value: f64,
}

/// Pooled two-proportion z-test of x1/n1 against x2/n2. `None` when a
/// denominator is 0. When the pooled proportion is 0 or 1 both groups are
/// identical (all failures or all successes): z = 0, p = 1.
pub fn two_proportion_z(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<ZTest> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (x1, x2) = (x1.min(n1), x2.min(n2));
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let pooled = (x1 + x2) as f64 / (n1f + n2f);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f)).sqrt();
    if se <= 0.0 {
        return Some(ZTest {
            z: 0.0,
            p_value: 1.0,
        });
    }
    let z = (x1 as f64 / n1f - x2 as f64 / n2f) / se;
    Some(ZTest {
        z,
        p_value: normal_two_sided_p(z),
    })
}

/// Result of Pearson's chi-squared test of homogeneity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChiSquaredTest {
    pub statistic: f64,
    pub df: u32,
    pub p_value: f64,
}

/// Chi-squared test of homogeneity on the k×2 table (successes, failures) of
/// `groups` = [(successes, trials)], without continuity correction. `None`
/// with fewer than 2 groups or a group with 0 trials. When every group is all
/// successes or all failures the expected counts of a column are 0: the
/// groups do not differ, statistic 0 and p = 1.
pub fn chi_squared_homogeneity(groups: &[(u64, u64)]) -> Option<ChiSquaredTest> {
    if groups.len() < 2 || groups.iter().any(|&(_, n)| n == 0) {
        return None;
    }
    let df = (groups.len() - 1) as u32;
    let total: f64 = groups.iter().map(|&(_, n)| n as f64).sum();
    let successes: f64 = groups.iter().map(|&(x, n)| x.min(n) as f64).sum();
    let col = [successes, total - successes];
    if col.iter().any(|&c| c <= 0.0) {
        return Some(ChiSquaredTest {
            statistic: 0.0,
            df,
            p_value: 1.0,
        });
    }
    let statistic: f64 = groups
        .iter()
        .map(|&(x, n)| {
            let x = x.min(n) as f64;
            let n = n as f64;
            [x, n - x]
                .iter()
                .zip(col)
                .map(|(obs, c)| {
                    let expected = n * c / total;
                    (obs - expected).powi(2) / expected
                })
                .sum::<f64>()
        })
        .sum();
    let p_value = ChiSquared::new(df as f64)
        .map(|d| d.sf(statistic).clamp(0.0, 1.0))
        .ok()?;
    Some(ChiSquaredTest {
        statistic,
        df,
        p_value,
    })
}

/// A difference with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub diff: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// Wald 95% interval of p1 − p2 for independent proportions x1/n1, x2/n2:
/// diff ± Z95·sqrt(p1(1−p1)/n1 + p2(1−p2)/n2). `None` when a denominator is 0.
pub fn wald_difference(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<Difference> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let p1 = x1.min(n1) as f64 / n1f;
    let p2 = x2.min(n2) as f64 / n2f;
    let half = Z95 * (p1 * (1.0 - p1) / n1f + p2 * (1.0 - p2) / n2f).sqrt();
    let diff = p1 - p2;
    Some(Difference {
        diff,
        ci_low: diff - half,
        ci_high: diff + half,
    })
}

/// Mean and unbiased sample variance from n, Σx and Σx². Variance is `None`
/// for n < 2; rounding below 0 is clamped to 0.
pub fn mean_and_variance(n: u64, sum: f64, sum_sq: f64) -> Option<(f64, Option<f64>)> {
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    let mean = sum / nf;
    let var = (n >= 2).then(|| ((sum_sq - nf * mean * mean) / (nf - 1.0)).max(0.0));
    Some((mean, var))
}

/// Welch 95% interval of the difference of two means, each given as
/// (n, Σx, Σx²): (m1 − m2) ± Z95·sqrt(s1²/n1 + s2²/n2). `diff` is `None` when
/// a group is empty; the interval is `None` when a group has fewer than 2.
pub fn welch_difference(
    a: (u64, f64, f64),
    b: (u64, f64, f64),
) -> Option<(f64, Option<(f64, f64)>)> {
    let (m1, v1) = mean_and_variance(a.0, a.1, a.2)?;
    let (m2, v2) = mean_and_variance(b.0, b.1, b.2)?;
    let diff = m1 - m2;
    let interval = match (v1, v2) {
        (Some(v1), Some(v2)) => {
            let half = Z95 * (v1 / a.0 as f64 + v2 / b.0 as f64).sqrt();
            Some((diff - half, diff + half))
        }
        _ => None,
    };
    Some((diff, interval))
}
