//! Input types: what the lead converts the core campaign records into.
//!
//! All counts are cumulative since the send and opens/clicks are unique, so
//! the latest day of a series holds the campaign's current totals.

use serde::{Deserialize, Serialize};

/// One day of a variant's cumulative counts (day 0 = the day of the send).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyCounts {
    pub day: u32,
    pub sent: u64,
    pub delivered: u64,
    pub opens: u64,
    pub clicks: u64,
    pub unsubscribes: u64,
}

impl DailyCounts {
    /// All counts 0 on `day`.
    pub fn zero(day: u32) -> DailyCounts {
        DailyCounts {
            day,
            sent: 0,
            delivered: 0,
            opens: 0,
            clicks: 0,
            unsubscribes: 0,
        }
    }
}

/// Conversions of one group of customers within the attribution window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupConversions {
    pub customers: u64,
    pub converters: u64,
    pub revenue: f64,
    /// Sum over customers of (that customer's revenue)²: gives the variance.
    pub revenue_sq: f64,
}

/// One A/B variant (a campaign without variants has one, named "all").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantInput {
    pub name: String,
    pub template_id: String,
    pub assigned: u64,
    pub daily: Vec<DailyCounts>,
    pub conversions: Option<GroupConversions>,
}

/// The rate an A/B test compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    OpenRate,
    #[default]
    ClickRate,
    ClickToOpenRate,
    UnsubscribeRate,
    ConversionRate,
}

/// A metric name that is none of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown metric {0:?}: expected one of open_rate, click_rate, click_to_open_rate, unsubscribe_rate, conversion_rate"
)]
pub struct UnknownMetric(pub String);

impl Metric {
    pub const ALL: [Metric; 5] = [
        Metric::OpenRate,
        Metric::ClickRate,
        Metric::ClickToOpenRate,
        Metric::UnsubscribeRate,
        Metric::ConversionRate,
    ];

    /// The snake_case name, as in JSON and manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::OpenRate => "open_rate",
            Metric::ClickRate => "click_rate",
            Metric::ClickToOpenRate => "click_to_open_rate",
            Metric::UnsubscribeRate => "unsubscribe_rate",
            Metric::ConversionRate => "conversion_rate",
        }
    }

    /// A human label ("click rate").
    pub fn label(self) -> &'static str {
        match self {
            Metric::OpenRate => "open rate",
            Metric::ClickRate => "click rate",
            Metric::ClickToOpenRate => "click-to-open rate",
            Metric::UnsubscribeRate => "unsubscribe rate",
            Metric::ConversionRate => "conversion rate",
        }
    }

    /// Parses the snake_case name; surrounding blanks, case and `-` for `_`
    /// are tolerated.
    pub fn parse(s: &str) -> Result<Metric, UnknownMetric> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        Metric::ALL
            .into_iter()
            .find(|m| m.as_str() == norm)
            .ok_or_else(|| UnknownMetric(s.to_string()))
    }
}

impl std::str::FromStr for Metric {
    type Err = UnknownMetric;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Metric::parse(s)
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything one campaign's report is built from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportInput {
    pub campaign_id: String,
    pub esp: String,
    pub state: String,
    pub send_at: Option<String>,
    #[serde(default)]
    pub metric: Metric,
    pub variants: Vec<VariantInput>,
    /// The held-out customers' conversions (customers = control size).
    pub control: Option<GroupConversions>,
    pub conversions_window_days: u32,
}
