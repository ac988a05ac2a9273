//! Operational metrics (CloudWatch through the embedded metric format in AWS, the log locally):
//! campaigns per state, rows uploaded, rejects, ESP limit waits, upload lag against the send time.
//!
//! Recording never fails the step that records: a metric is a log line, so the port is
//! synchronous and infallible.

use serde::Serialize;

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
