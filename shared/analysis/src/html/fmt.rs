//! Text helpers: escaping and number formatting for the page.

/// Escapes text for HTML/SVG content and attribute values (all of `&<>"'`).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Shortens to `max` characters with an ellipsis (before escaping).
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// 12345 -> "12,345".
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A proportion as a percentage, with more decimals for small ones.
pub fn pct(p: f64) -> String {
    let v = p * 100.0;
    if v != 0.0 && v.abs() < 1.0 {
        format!("{v:.2}%")
    } else {
        format!("{v:.1}%")
    }
}

/// A difference of proportions in percentage points, signed.
pub fn pp(d: f64) -> String {
    let v = d * 100.0;
    if v.abs() < 1.0 {
        format!("{v:+.2} pp")
    } else {
        format!("{v:+.1} pp")
    }
}

/// A p-value: four decimals, or "< 0.0001" when smaller.
pub fn p_number(p: f64) -> String {
    if p < 0.0001 {
        "< 0.0001".to_string()
    } else {
        format!("{p:.4}")
    }
}

/// A p-value stated as "p = 0.0134", or "p < 0.0001" when smaller.
pub fn p_value(p: f64) -> String {
    let n = p_number(p);
    if n.starts_with('<') {
        format!("p {n}")
    } else {
        format!("p = {n}")
    }
}

/// Money-like amounts (currency unknown to the report): two decimals.
pub fn amount(v: f64) -> String {
    format!("{v:.2}")
}

/// An axis tick label: no trailing zeros, thousands as "k".
pub fn tick(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        format!("{}k", trim_zeros(v / 1000.0))
    } else {
        trim_zeros(v)
    }
}

fn trim_zeros(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}
