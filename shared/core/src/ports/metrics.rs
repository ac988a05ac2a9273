//! Operational metrics (CloudWatch through the embedded metric format in AWS, the log locally):
//! campaigns per state, rows uploaded, rejects, ESP limit waits, upload lag against the send time.
//!
//! Recording never fails the step that records: a metric is a log line, so the port is
//! synchronous and infallible.

use serde::Serialize;

/// The metrics espbridge records, one name each (CloudWatch metric names; the template's
/// alarms and the README name them too). Dimensions are listed with each.
pub mod name {
    /// Rows sent to the ESP in one upload slice (`esp`, `account`).
    pub const ROWS_UPLOADED: &str = "RowsUploaded";
    /// Rows the upload's validation rejected, once per campaign (`esp`, `account`).
    pub const ROWS_REJECTED: &str = "RowsRejected";
    /// Rows the ESP refused or does not know, per upload slice (`esp`, `account`).
    pub const ROWS_REFUSED_BY_ESP: &str = "RowsRefusedByEsp";
    /// Seconds between the audience being ready and the send time; negative when it was
    /// ready late (`esp`, `account`).
    pub const SECONDS_BEFORE_SEND: &str = "SecondsBeforeSend";
    /// Time one call waited for its turn of an account's rate (`esp`, `account`, `limit`).
    pub const LIMIT_WAIT: &str = "EspLimitWait";
    /// A slot of an account's limit asked for while all were held (`esp`, `account`, `limit`).
    pub const LIMIT_BUSY: &str = "EspLimitBusy";
    /// The ESP kept refusing for throttling past a call's patience; the upload goes on in a
    /// new invocation (`esp`, `account`).
    pub const ESP_THROTTLED: &str = "EspThrottled";
    /// A campaign failed (`step`: `manifest`, `audience`, `upload`, `schedule`).
    pub const CAMPAIGNS_FAILED: &str = "FailedCampaigns";
    /// A campaign became `partially_scheduled`: mail may go out (`esp`, `account`).
    pub const CAMPAIGNS_PARTIALLY_SCHEDULED: &str = "PartiallyScheduledCampaigns";
    /// Campaigns in a state, counted by the hourly sweep (`state`).
    pub const CAMPAIGNS: &str = "Campaigns";
}

/// CloudWatch's units for what we measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Unit {
    Count,
    Seconds,
    Milliseconds,
}

/// One value of one metric, with the dimensions it is counted under (e.g. `esp`, `state`).
/// Dimension values are ESP kinds, account ids, states and steps: never customer data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    pub name: &'static str,
    pub value: f64,
    pub unit: Unit,
    pub dimensions: Vec<(&'static str, String)>,
}

impl Measurement {
    pub fn count(name: &'static str, value: u64) -> Self {
        Self {
            name,
            value: value as f64,
            unit: Unit::Count,
            dimensions: Vec::new(),
        }
    }

    pub fn seconds(name: &'static str, value: f64) -> Self {
        Self {
            name,
            value,
            unit: Unit::Seconds,
            dimensions: Vec::new(),
        }
    }

    pub fn with(mut self, dimension: &'static str, value: impl Into<String>) -> Self {
        self.dimensions.push((dimension, value.into()));
        self
    }
}

pub trait Metrics: Send + Sync {
    fn record(&self, measurements: &[Measurement]);
}

/// Metrics as debug log lines: the local mode's sink.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogMetrics;

impl Metrics for LogMetrics {
    fn record(&self, measurements: &[Measurement]) {
        for m in measurements {
            tracing::debug!(metric = m.name, value = m.value, dimensions = ?m.dimensions, "metric");
        }
    }
}
