//! Small SVG building blocks shared by the charts: scales, ticks, text.

use super::fmt::esc;
use std::fmt::Write;

/// Variant colours: Okabe–Ito and Tol hues, distinguishable with the common
/// colour-vision deficiencies and dark enough on white.
pub const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#882255", "#44AA99",
];
/// Colour of the uplift estimates (not a variant colour).
pub const UPLIFT_COLOUR: &str = "#332288";
/// Each chart's background tint: distinct so a screenshot can find the charts.
pub const TINT_DAILY: &str = "#f3f6fb";
pub const TINT_RATES: &str = "#f8f4fb";
pub const TINT_UPLIFT: &str = "#f2faf6";
pub const INK: &str = "#1f2933";
pub const MUTED: &str = "#616e7c";
pub const GRID: &str = "#d9dee5";

pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// A linear map from a data domain to pixels.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub d0: f64,
    pub d1: f64,
    pub r0: f64,
    pub r1: f64,
}

impl Scale {
    pub fn new(domain: (f64, f64), range: (f64, f64)) -> Scale {
        // A zero-width domain would divide by zero: widen it by one unit.
        let (d0, d1) = if domain.1 > domain.0 {
            domain
        } else {
            (domain.0, domain.0 + 1.0)
        };
        Scale {
            d0,
            d1,
            r0: range.0,
            r1: range.1,
        }
    }
    pub fn at(&self, v: f64) -> f64 {
        self.r0 + (v - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)
    }
}

/// "Nice" ticks (steps of 1, 2, 2.5 or 5 × 10ⁿ) covering [lo, hi], about `n`.
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo, lo + 1.0) };
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).floor() as i64;
    let last = (hi / step).ceil() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Opens an `<svg>` chart with its data attribute, title, description and
/// tinted background.
pub fn open_chart(
    out: &mut String,
    kind: &str,
    w: f64,
    h: f64,
    title: &str,
    desc: &str,
    tint: &str,
) {
    let _ = write!(
        out,
        r#"<svg class="chart" data-chart="{kind}" viewBox="0 0 {w} {h}" role="img" aria-labelledby="t-{kind}"><title id="t-{kind}">{}</title><desc>{}</desc><rect class="bg" x="0" y="0" width="{w}" height="{h}" rx="10" fill="{tint}"/>"#,
        esc(title),
        esc(desc)
    );
}

/// A text element; `anchor` is start, middle or end.
pub fn text(out: &mut String, x: f64, y: f64, anchor: &str, class: &str, s: &str) {
    let _ = write!(
        out,
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" class="{class}">{}</text>"#,
        esc(s)
    );
}

pub fn line(
    out: &mut String,
    (x1, y1): (f64, f64),
    (x2, y2): (f64, f64),
    stroke: &str,
    width: f64,
    extra: &str,
) {
    let _ = write!(
        out,
        r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{stroke}" stroke-width="{width}" {extra}/>"#
    );
}

/// Horizontal grid lines with labels left of `x0` for each y tick.
pub fn y_grid(
    out: &mut String,
    y: &Scale,
    ticks: &[f64],
    x0: f64,
    x1: f64,
    label: impl Fn(f64) -> String,
) {
    for &t in ticks {
        let py = y.at(t);
        line(out, (x0, py), (x1, py), GRID, 1.0, "");
        text(out, x0 - 8.0, py + 4.0, "end", "tick", &label(t));
    }
}

/// The variant legend: a swatch and a name per variant, from (x, y), wrapping at `max_x`.
pub fn legend(out: &mut String, names: &[&str], x: f64, y: f64, max_x: f64) {
    let (mut cx, mut cy) = (x, y);
    for (i, name) in names.iter().enumerate() {
        let label = super::fmt::truncate(name, 24);
        let width = 30.0 + 7.5 * label.chars().count() as f64;
        if cx + width > max_x && cx > x {
            cx = x;
            cy += 20.0;
        }
        let _ = write!(
            out,
            r#"<rect x="{cx:.1}" y="{:.1}" width="14" height="14" rx="3" fill="{}"/>"#,
            cy - 11.0,
            colour(i)
        );
        text(out, cx + 20.0, cy, "start", "legend", &label);
        cx += width + 14.0;
    }
}
