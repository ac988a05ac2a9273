//! [`Scheduler`] in memory: local mode's stand-in for EventBridge Scheduler.
//!
//! Nothing fires on its own: the local server asks [`LocalScheduler::due`] with the current time
//! (from its clock, which the demo fast-forwards) and runs poll-metrics for what comes back. A
//! schedule fires once a day from `first_at` to `last_at` and then deletes itself, as
//! EventBridge's `ActionAfterCompletion: DELETE` does. Occurrences missed while the server was
//! not asking are all delivered at the next call (EventBridge would retry them too), so a jump
//! of the clock never loses a day.

use async_trait::async_trait;
use espbridge_core::ports::BackendError;
use espbridge_core::ports::scheduler::{PollEvent, PollSchedule, Scheduler, SchedulerError};
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

const DAY: SignedDuration = SignedDuration::from_hours(24);

#[derive(Debug, Clone)]
struct Entry {
    schedule: PollSchedule,
    /// The next occurrence not yet returned by `due`.
    next: Timestamp,
}

/// Schedules by name. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct LocalScheduler {
    entries: Arc<Mutex<BTreeMap<String, Entry>>>,
}

impl LocalScheduler {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        // Every update below is a single map operation, so a poisoned map is still consistent.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every occurrence at or before `now` not returned before, oldest first; schedules whose
    /// last occurrence is returned are removed.
    pub fn due(&self, now: Timestamp) -> Vec<PollEvent> {
        let mut fired: Vec<(Timestamp, PollEvent)> = Vec::new();
        let mut finished = Vec::new();
        let mut entries = self.lock();
        for (name, entry) in entries.iter_mut() {
            let mut done = false;
            while entry.next <= now {
                fired.push((
                    entry.next,
                    PollEvent {
                        campaign_id: entry.schedule.campaign_id.clone(),
                    },
                ));
                match entry.next.checked_add(DAY) {
                    Ok(next) if next <= entry.schedule.last_at => entry.next = next,
                    _ => {
                        done = true;
                        break;
                    }
                }
            }
            if done {
                finished.push(name.clone());
            }
        }
        for name in finished {
            entries.remove(&name);
        }
        // Stable: occurrences at the same instant keep schedule-name order.
        fired.sort_by_key(|(at, _)| *at);
        fired.into_iter().map(|(_, e)| e).collect()
    }

    /// The schedules still to fire, by name.
    pub fn pending(&self) -> Vec<PollSchedule> {
        self.lock().values().map(|e| e.schedule.clone()).collect()
    }

    /// When the next occurrence is due, if any: lets the server sleep until then.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.lock().values().map(|e| e.next).min()
    }
}

#[async_trait]
impl Scheduler for LocalScheduler {
    async fn create(&self, schedule: &PollSchedule) -> Result<(), SchedulerError> {
        if schedule.first_at > schedule.last_at {
            return Err(SchedulerError {
                name: schedule.name.clone(),
                source: BackendError::permanent(
                    "create",
                    format!(
                        "ends ({}) before it starts ({})",
                        schedule.last_at, schedule.first_at
                    ),
                ),
            });
        }
        // An existing schedule counts as created and keeps its progress.
        self.lock()
            .entry(schedule.name.clone())
            .or_insert_with(|| Entry {
                schedule: schedule.clone(),
                next: schedule.first_at,
            });
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<(), SchedulerError> {
        self.lock().remove(name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use espbridge_core::ids::CampaignId;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn id(s: &str) -> CampaignId {
        CampaignId::parse(s).unwrap()
    }

    #[tokio::test]
    async fn seven_daily_polls_over_eight_days_then_gone() {
        let sched = LocalScheduler::new();
        let send = ts("2026-11-25T08:30:00Z");
        let s = PollSchedule::daily_after(&id("c1"), send, 7);
        sched.create(&s).await.unwrap();

        // Walk the clock forward hour by hour for eight days.
        let mut events = Vec::new();
        let mut per_day = [0usize; 9];
        for hour in 0..=(8 * 24) {
            let now = send.checked_add(SignedDuration::from_hours(hour)).unwrap();
            let got = sched.due(now);
            per_day[(hour / 24) as usize] += got.len();
            events.extend(got);
        }
        assert_eq!(events.len(), 7);
        assert!(events.iter().all(|e| e.campaign_id == id("c1")));
        assert_eq!(
            per_day,
            [0, 1, 1, 1, 1, 1, 1, 1, 0],
            "one poll on each of days 1..=7"
        );
        assert!(sched.pending().is_empty(), "the schedule deleted itself");
        assert_eq!(sched.next_due(), None);
    }

    #[tokio::test]
    async fn missed_occurrences_arrive_together_in_time_order() {
        let sched = LocalScheduler::new();
        let a = PollSchedule::daily_after(&id("a"), ts("2026-11-25T12:00:00Z"), 3);
        let b = PollSchedule::daily_after(&id("b"), ts("2026-11-25T06:00:00Z"), 2);
        sched.create(&a).await.unwrap();
        sched.create(&b).await.unwrap();
        assert_eq!(sched.next_due(), Some(b.first_at));

        // Day 2 at 13:00: a@26th, b@26th, b@27th, a@27th are due (by time: b, a, b, a).
        let got: Vec<_> = sched
            .due(ts("2026-11-27T13:00:00Z"))
            .into_iter()
            .map(|e| e.campaign_id.to_string())
            .collect();
        assert_eq!(got, ["b", "a", "b", "a"]);
        assert!(
            sched.due(ts("2026-11-27T13:00:00Z")).is_empty(),
            "returned once"
        );
        let names: Vec<_> = sched.pending().into_iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            vec![a.name.clone()],
            "b finished, a has one day left"
        );
        let last = sched.due(ts("2026-12-31T00:00:00Z"));
        assert_eq!(last.len(), 1);
        assert!(sched.pending().is_empty());
    }

    #[tokio::test]
    async fn delete_removes_and_tolerates_missing() {
        let sched = LocalScheduler::new();
        let s = PollSchedule::daily_after(&id("gone"), ts("2026-11-25T00:00:00Z"), 7);
        sched.create(&s).await.unwrap();
        assert_eq!(sched.due(ts("2026-11-26T00:00:00Z")).len(), 1);
        sched.delete(&s.name).await.unwrap();
        assert!(sched.pending().is_empty());
        assert!(sched.due(ts("2026-12-31T00:00:00Z")).is_empty());
        sched.delete(&s.name).await.unwrap();
    }

    #[tokio::test]
    async fn create_twice_keeps_progress_and_clones_share() {
        let sched = LocalScheduler::new();
        let other = sched.clone();
        let s = PollSchedule::daily_after(&id("twice"), ts("2026-11-25T00:00:00Z"), 7);
        sched.create(&s).await.unwrap();
        assert_eq!(other.due(ts("2026-11-27T00:00:00Z")).len(), 2);
        other.create(&s).await.unwrap();
        assert_eq!(sched.pending(), vec![s]);
        assert_eq!(
            sched.due(ts("2026-11-27T00:00:00Z")).len(),
            0,
            "days 1-2 not replayed"
        );
    }

    #[tokio::test]
    async fn a_schedule_ending_before_it_starts_is_refused() {
        let sched = LocalScheduler::new();
        let mut s = PollSchedule::daily_after(&id("bad"), ts("2026-11-25T00:00:00Z"), 7);
        std::mem::swap(&mut s.first_at, &mut s.last_at);
        assert!(sched.create(&s).await.is_err());
        assert!(sched.pending().is_empty());
    }
}
