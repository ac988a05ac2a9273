//! The campaign record and its state machine.
//!
//! ```text
//! received → uploading → audience_ready → scheduled → collecting → completed
//!     └──────────┴─────────────┴──────────────┴────────────┴──→ failed (reason) | cancelled
//!                               audience_ready → partially_scheduled → scheduled | completed | cancelled
//!     failed ─(retry)→ received | uploading | audience_ready   (the state of the failed step)
//! ```
//! Every change is written conditionally on the version read, so two deliveries of one event
//! cannot both act: the loser sees a conflict and stops.
//!
//! `partially_scheduled`: some of a campaign's sends are booked at the ESP, another could not
//! be (variant B's template refused after A was booked, say). Mail may go out for what was
//! booked, so the campaign is never plain `failed` from there: it is polled for what was booked,
//! shown and alerted on, and can still be scheduled whole (a retry) or cancelled.

use crate::ids::{AccountId, CampaignId, EspKind};
use crate::ports::esp::{EspIds, MetricCounts};
use crate::ports::source::ObjectRef;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Received,
    Uploading,
    AudienceReady,
    Scheduled,
    Collecting,
    Completed,
    Failed,
    Cancelled,
    /// Some sends booked, one not: mail may go out. See the module docs.
    PartiallyScheduled,
}

impl State {
    pub const ALL: [State; 9] = [
        State::Received,
        State::Uploading,
        State::AudienceReady,
        State::Scheduled,
        State::Collecting,
        State::Completed,
        State::Failed,
        State::Cancelled,
        State::PartiallyScheduled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Received => "received",
            State::Uploading => "uploading",
            State::AudienceReady => "audience_ready",
            State::Scheduled => "scheduled",
            State::Collecting => "collecting",
            State::Completed => "completed",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
            State::PartiallyScheduled => "partially_scheduled",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, State::Completed | State::Failed | State::Cancelled)
    }

    /// The forward path, plus `failed`/`cancelled` from any non-terminal state, except that a
    /// campaign whose mail may go out (`partially_scheduled`) never becomes `failed`; and a
    /// retry's way back from `failed` to the state of the step that failed (nothing was booked
    /// before a campaign fails, so none of these can send twice).
    pub fn can_become(self, next: State) -> bool {
        use State::*;
        match (self, next) {
            (Failed, Received | Uploading | AudienceReady) => true,
            (PartiallyScheduled, Failed) => false,
            (PartiallyScheduled, Scheduled | Completed) => true,
            (AudienceReady, PartiallyScheduled) => true,
            (s, Failed | Cancelled) => !s.is_terminal(),
            (Received, Uploading)
            | (Uploading, AudienceReady)
            | (AudienceReady, Scheduled)
            | (Scheduled, Collecting)
            | (Collecting, Completed) => true,
            // A campaign whose last poll is also its first goes straight to completed.
            (Scheduled, Completed) => true,
            _ => false,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("campaign {campaign_id} cannot go from {from} to {to}")]
pub struct TransitionError {
    pub campaign_id: CampaignId,
    pub from: State,
    pub to: State,
}

/// Who is booking a campaign's sends, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendClaim {
    pub owner: String,
    pub until: Timestamp,
}

/// Why a campaign failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The step that failed: `manifest`, `audience`, `upload`, `schedule`, `metrics`.
    pub step: String,
    pub reason: String,
    pub at: Timestamp,
}

/// A rejected audience row, as kept in the record (a capped sample; the full list is in the
/// rejects object). Never holds the row's content, only where it is and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectSample {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

/// What the audience held and how far its upload got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudienceStats {
    /// Data rows in the audience files (header excluded). The upload reads and checks every
    /// row in one pass, so until it ends this and the reject counts are the rows read so far.
    pub rows: u64,
    /// Rows that passed validation (first occurrences of valid customer ids).
    pub valid: u64,
    pub rejected: u64,
    #[serde(default)]
    pub rejected_by_reason: BTreeMap<String, u64>,
    #[serde(default)]
    pub reject_samples: Vec<RejectSample>,
    /// Key of the full rejects report written beside the drop.
    #[serde(default)]
    pub rejects_key: Option<String>,
    /// Versions of the audience files seen by the upload's first invocation; every later read
    /// (continuations, conversions attribution) reads exactly these.
    #[serde(default)]
    pub file_etags: Vec<String>,
    /// Valid rows processed so far (handed to the ESP, or held out for the control group): the
    /// upload checkpoint.
    pub uploaded: u64,
    /// Of those, rows held out for the control group (never sent).
    #[serde(default)]
    pub held_out: u64,
    /// Uploaded rows the ESP did not know (not sent to).
    #[serde(default)]
    pub not_in_esp: u64,
    /// Uploaded rows the ESP refused for another reason.
    #[serde(default)]
    pub esp_rejected: u64,
    /// Upload calls made.
    #[serde(default)]
    pub batches: u64,
    /// Batches of the round after the checkpoint that run as jobs at the ESP (Silverpop's
    /// bulk import), recorded before the upload waits for them: a continuation waits for these
    /// instead of starting them again. Empty once the round is counted. At most one per
    /// variant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<PendingJob>,
}

/// A batch running as a job at the ESP ([`AudienceStats::jobs`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingJob {
    /// The variant's index in the record (0 without variants).
    pub variant: usize,
    /// The batch's first row.
    pub first_ordinal: u64,
    pub job: crate::ports::esp::BatchJob,
}

/// One A/B variant: its own audience, clone and send at the ESP under the one campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantState {
    pub name: String,
    pub template_id: String,
    pub share: f64,
    /// Valid rows assigned to it and handed to the ESP.
    #[serde(default)]
    pub assigned: u64,
    #[serde(default)]
    pub not_in_esp: u64,
    #[serde(default)]
    pub esp_rejected: u64,
    #[serde(default)]
    pub esp_ids: EspIds,
}

/// The control group: customers who are not sent, to measure the campaign against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlState {
    /// The share espbridge holds out by hash, if that is how the group is made.
    #[serde(default)]
    pub holdout_share: Option<f64>,
    /// The control-group file in the drop folder, if the sender chose the group.
    #[serde(default)]
    pub file: Option<String>,
    /// Distinct customer ids in that file.
    #[serde(default)]
    pub file_ids: u64,
}

/// Conversion totals of one group (a variant, `all` without variants, or `control`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupConversionTotals {
    /// Customers in the group.
    pub customers: u64,
    /// Of those, customers with at least one conversion in the window.
    pub converters: u64,
    pub revenue: f64,
    /// Sum over customers of the square of each one's revenue (for the revenue interval).
    pub revenue_sq: f64,
}

/// Conversions attributed to the campaign: every conversions file that concerns it, re-read
/// together each time one arrives, so a customer converting twice counts once as a converter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversionStats {
    /// Keys of the conversions files read (with their ETags, `key#etag`).
    pub sources: Vec<String>,
    /// Days after the send that count.
    pub window_days: u32,
    /// Conversion rows read, and of those inside the window.
    pub rows: u64,
    pub rows_in_window: u64,
    /// Rows refused (bad id, amount or timestamp); the first few as samples.
    pub rejected: u64,
    #[serde(default)]
    pub reject_samples: Vec<RejectSample>,
    /// Per group: variant name (or `all`) and `control`.
    pub groups: BTreeMap<String, GroupConversionTotals>,
    pub computed_at: Option<Timestamp>,
}

/// Longest [`Campaign::note`], in bytes.
pub const MAX_NOTE: usize = 512;

/// The hourly sweep's marks on a campaign that stopped making progress: how often it resumed
/// the campaign and whether it alerted, in one state and since one last sign of progress (a
/// mark for another state, or from before the record last progressed, no longer counts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepMark {
    pub state: State,
    /// The record's `updated_at` when the sweep first found it stuck.
    pub progress_at: Timestamp,
    /// Work items the sweep queued to resume it, and when it last did.
    pub resumes: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_at: Option<Timestamp>,
    /// When the sweep alerted that it is stuck (once per state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerted_at: Option<Timestamp>,
}

/// The campaign item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub id: CampaignId,
    pub run_date: String,
    /// `None` only on a campaign whose manifest was rejected before its ESP was known.
    pub esp: Option<EspKind>,
    pub account: Option<AccountId>,
    pub template_id: String,
    pub send_at: Option<Timestamp>,
    #[serde(default)]
    pub timezone: Option<String>,
    /// The manifest that started it.
    pub drop: ObjectRef,
    /// The validated manifest, as received.
    pub manifest: serde_json::Value,
    pub state: State,
    /// Bumped on every write; writes are conditional on it.
    pub version: u64,
    #[serde(default)]
    pub failure: Option<Failure>,
    #[serde(default)]
    pub audience: AudienceStats,
    #[serde(default)]
    pub esp_ids: EspIds,
    #[serde(default)]
    pub schedule_name: Option<String>,
    /// The invocation booking the sends, until its lease ends: taken with a conditional write
    /// before the first ESP call of schedule-send, so a message delivered twice books once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_claim: Option<SendClaim>,
    /// When the ESP objects of a completed campaign are to be removed (ESPs with a retention,
    /// see `Esp::cleanup_after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_due_at: Option<Timestamp>,
    /// When they were removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleaned_up_at: Option<Timestamp>,
    /// A/B variants, each with its own ESP objects; empty for a single-template campaign,
    /// whose ESP ids are `esp_ids`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<ControlState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversions: Option<ConversionStats>,
    /// How the campaign ended when that is worth saying and is no failure, e.g. completed
    /// without figures from the ESP (at most [`MAX_NOTE`] bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What the hourly sweep did about the campaign in its current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepMark>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Campaign {
    /// The ESP ids of variant `i` (the campaign's own without variants).
    pub fn esp_ids_of(&self, i: usize) -> &EspIds {
        match self.variants.get(i) {
            Some(v) => &v.esp_ids,
            None => &self.esp_ids,
        }
    }

    /// The ESP id sets of the campaign: one per variant, or the campaign's own.
    pub fn esp_id_sets(&self) -> Vec<&EspIds> {
        if self.variants.is_empty() {
            vec![&self.esp_ids]
        } else {
            self.variants.iter().map(|v| &v.esp_ids).collect()
        }
    }

    /// A new record in `received` for a drop; the caller fills in what the manifest says.
    pub fn received(id: CampaignId, run_date: &str, drop: ObjectRef, now: Timestamp) -> Self {
        Self {
            id,
            run_date: run_date.to_owned(),
            esp: None,
            account: None,
            template_id: String::new(),
            send_at: None,
            timezone: None,
            drop,
            manifest: serde_json::Value::Null,
            state: State::Received,
            version: 0,
            failure: None,
            audience: AudienceStats::default(),
            esp_ids: EspIds::default(),
            schedule_name: None,
            send_claim: None,
            cleanup_due_at: None,
            cleaned_up_at: None,
            variants: Vec::new(),
            control: None,
            conversions: None,
            note: None,
            sweep: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Moves to `next`, or explains why it may not.
    pub fn transition(&mut self, next: State, now: Timestamp) -> Result<(), TransitionError> {
        if !self.state.can_become(next) {
            return Err(TransitionError {
                campaign_id: self.id.clone(),
                from: self.state,
                to: next,
            });
        }
        self.state = next;
        self.updated_at = now;
        Ok(())
    }

    /// Marks the campaign failed with its reason (a no-op on a terminal campaign).
    pub fn fail(&mut self, step: &str, reason: impl Into<String>, now: Timestamp) {
        if !self.state.can_become(State::Failed) {
            return;
        }
        // Bounded whatever the cause: the record must fit one DynamoDB item.
        self.failure = Some(Failure {
            step: crate::text::bounded(step, 64),
            reason: crate::text::reason(&reason.into()),
            at: now,
        });
        self.state = State::Failed;
        self.updated_at = now;
    }
}

/// One invocation's work on a campaign, for the run history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// `upload`, `schedule`, `poll`.
    pub step: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// `done`, `continued`, `skipped`, `failed`, `retry`.
    pub outcome: String,
    #[serde(default)]
    pub rows_uploaded: u64,
    #[serde(default)]
    pub batches: u64,
    #[serde(default)]
    pub detail: Option<String>,
}

/// The metrics of one polling day (1 to 7 after the send).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricSnapshot {
    pub day: u32,
    pub taken_at: Timestamp,
    /// The campaign's total (the sum over variants).
    #[serde(flatten)]
    pub counts: MetricCounts,
    /// Per A/B variant, by name; empty without variants.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_variant: BTreeMap<String, MetricCounts>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::*;

    #[test]
    fn forward_path_is_allowed_and_nothing_else() {
        let path = [
            Received,
            Uploading,
            AudienceReady,
            Scheduled,
            Collecting,
            Completed,
        ];
        for w in path.windows(2) {
            assert!(w[0].can_become(w[1]), "{} -> {}", w[0], w[1]);
            assert!(!w[1].can_become(w[0]), "{} -> {}", w[1], w[0]);
        }
        assert!(!Received.can_become(Scheduled));
        assert!(!Uploading.can_become(Collecting));
    }

    #[test]
    fn failed_and_cancelled_from_any_live_state_only() {
        for s in State::ALL {
            let mail_may_go_out = s == PartiallyScheduled;
            assert_eq!(
                s.can_become(Failed),
                !s.is_terminal() && !mail_may_go_out,
                "{s}"
            );
            assert_eq!(s.can_become(Cancelled), !s.is_terminal(), "{s}");
        }
    }

    #[test]
    fn a_campaign_whose_mail_may_go_out_is_never_marked_failed() {
        let mut c = crate::testkit::sample_campaign("partial");
        c.state = PartiallyScheduled;
        c.fail("schedule", "variant B refused", c.created_at);
        assert_eq!(c.state, PartiallyScheduled);
        assert!(c.failure.is_none());
        assert!(PartiallyScheduled.can_become(Scheduled));
        assert!(AudienceReady.can_become(PartiallyScheduled));
    }

    #[test]
    fn a_retry_goes_back_from_failed_to_a_step_that_books_nothing_yet() {
        for s in State::ALL {
            let back = matches!(s, Received | Uploading | AudienceReady);
            assert_eq!(Failed.can_become(s), back, "failed -> {s}");
        }
        // Only failed goes back: no other terminal or later state does.
        for from in [
            Completed,
            Cancelled,
            Scheduled,
            Collecting,
            PartiallyScheduled,
        ] {
            assert!(!from.can_become(Uploading), "{from} -> uploading");
            assert!(!from.can_become(AudienceReady), "{from} -> audience_ready");
        }
        let mut c = crate::testkit::sample_campaign("retried");
        c.state = Failed;
        c.transition(Uploading, c.created_at).unwrap();
        assert_eq!(c.state, Uploading);
    }

    #[test]
    fn state_names_round_trip() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
    }
}
