//! The [`Metrics`] port in AWS: CloudWatch's embedded metric format (EMF). Each record call is
//! one JSON line on stdout, which Lambda sends to the function's log group, where CloudWatch
//! extracts the metrics: no API call, no extra permission, nothing to fail.
//!
//! Every measurement is published twice: under its dimensions (`esp`, `account`, `step`, ...)
//! and under none, the total the template's alarms watch.

use espbridge_core::Clock;
use espbridge_core::ports::{Measurement, Metrics};
use serde_json::{Map, Value, json};
use std::io::Write;
use std::sync::Arc;

/// The namespace when the deployment names none.
pub const DEFAULT_NAMESPACE: &str = "espbridge";
/// Longest dimension value kept (CloudWatch takes 1,024 characters; ours are ids and names).
const MAX_DIMENSION_VALUE: usize = 256;

/// [`Metrics`] as EMF lines on stdout.
pub struct EmfMetrics {
    namespace: String,
    clock: Arc<dyn Clock>,
}

impl EmfMetrics {
    pub fn new(namespace: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            namespace: namespace.into(),
            clock,
        }
    }

    /// The EMF documents for one record call: one, unless two measurements cannot share one
    /// (the same metric twice, or one dimension with two values), which then start another.
    /// Values that are not finite numbers are left out (EMF has no NaN).
    pub fn documents(&self, measurements: &[Measurement]) -> Vec<Value> {
        let timestamp = self.clock.now().as_millisecond();
        let mut docs: Vec<Map<String, Value>> = Vec::new();
        for m in measurements.iter().filter(|m| m.value.is_finite()) {
            let dims: Vec<(&str, String)> = m
                .dimensions
                .iter()
                .map(|(k, v)| (*k, espbridge_core::text::bounded(v, MAX_DIMENSION_VALUE)))
                .collect();
            let fits = |doc: &Map<String, Value>| {
                !doc.contains_key(m.name)
                    && dims.iter().all(|(k, v)| {
                        doc.get(*k)
                            .is_none_or(|have| have.as_str() == Some(v.as_str()))
                    })
            };
            let i = match docs.iter().position(fits) {
                Some(i) => i,
                None => {
                    let mut doc = Map::new();
                    doc.insert(
                        "_aws".into(),
                        json!({"Timestamp": timestamp, "CloudWatchMetrics": []}),
                    );
                    docs.push(doc);
                    docs.len() - 1
                }
            };
            let doc = &mut docs[i];
            let keys: Vec<&str> = dims.iter().map(|(k, _)| *k).collect();
            let sets = if keys.is_empty() {
                json!([[]])
            } else {
                json!([keys, []])
            };
            if let Some(Value::Array(directives)) = doc
                .get_mut("_aws")
                .and_then(|aws| aws.get_mut("CloudWatchMetrics"))
            {
                directives.push(json!({
                    "Namespace": self.namespace,
                    "Dimensions": sets,
                    "Metrics": [{"Name": m.name, "Unit": m.unit}],
                }));
            }
            for (k, v) in dims {
                doc.insert(k.to_owned(), Value::String(v));
            }
            doc.insert(m.name.to_owned(), json!(m.value));
        }
        docs.into_iter().map(Value::Object).collect()
    }
}

impl Metrics for EmfMetrics {
    fn record(&self, measurements: &[Measurement]) {
        let mut out = std::io::stdout().lock();
        for doc in self.documents(measurements) {
            // One write per line, so a line is never split by another writer of stdout.
            let line = format!("{doc}\n");
            if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
                tracing::warn!(error = %e, "metrics could not be written");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use espbridge_core::ManualClock;
    use espbridge_core::ports::metrics::name;

    fn emf() -> EmfMetrics {
        let clock = ManualClock::new("2026-11-24T02:00:00Z".parse().unwrap());
        EmfMetrics::new("espbridge/prod", Arc::new(clock))
    }

    #[test]
    fn one_record_call_is_one_emf_document_with_each_metric_by_dimension_and_in_total() {
        let docs = emf().documents(&[
            Measurement::count(name::ROWS_UPLOADED, 10_000)
                .with("esp", "emarsys")
                .with("account", "eu"),
            Measurement::seconds(name::SECONDS_BEFORE_SEND, -600.5)
                .with("esp", "emarsys")
                .with("account", "eu"),
            Measurement::count(name::CAMPAIGNS_FAILED, 1).with("step", "upload"),
        ]);
        assert_eq!(
            docs,
            vec![json!({
                "_aws": {
                    "Timestamp": 1_795_485_600_000_i64,
                    "CloudWatchMetrics": [
                        {
                            "Namespace": "espbridge/prod",
                            "Dimensions": [["esp", "account"], []],
                            "Metrics": [{"Name": "RowsUploaded", "Unit": "Count"}]
                        },
                        {
                            "Namespace": "espbridge/prod",
                            "Dimensions": [["esp", "account"], []],
                            "Metrics": [{"Name": "SecondsBeforeSend", "Unit": "Seconds"}]
                        },
                        {
                            "Namespace": "espbridge/prod",
                            "Dimensions": [["step"], []],
                            "Metrics": [{"Name": "FailedCampaigns", "Unit": "Count"}]
                        }
                    ]
                },
                "esp": "emarsys",
                "account": "eu",
                "step": "upload",
                "RowsUploaded": 10_000.0,
                "SecondsBeforeSend": -600.5,
                "FailedCampaigns": 1.0
            })]
        );
    }

    #[test]
    fn measurements_that_cannot_share_a_document_get_their_own() {
        let docs = emf().documents(&[
            Measurement::count(name::CAMPAIGNS, 3).with("state", "uploading"),
            Measurement::count(name::CAMPAIGNS, 5).with("state", "scheduled"),
            Measurement::count(name::LIMIT_BUSY, 1),
            Measurement::seconds(name::LIMIT_WAIT, f64::NAN),
        ]);
        assert_eq!(docs.len(), 2, "{docs:#?}");
        assert_eq!(docs[0]["state"], "uploading");
        assert_eq!(docs[0]["Campaigns"], 3.0);
        assert_eq!(
            docs[0]["EspLimitBusy"], 1.0,
            "a measurement joins the first document it fits"
        );
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][1]["Dimensions"],
            json!([[]]),
            "no dimensions: the total only"
        );
        assert_eq!(docs[1]["state"], "scheduled");
        assert_eq!(docs[1]["Campaigns"], 5.0);
        assert!(
            docs.iter().all(|d| d.get("EspLimitWait").is_none()),
            "NaN is left out"
        );
        assert!(emf().documents(&[]).is_empty());
    }
}
