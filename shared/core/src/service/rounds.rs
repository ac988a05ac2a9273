//! Rounds of the upload: what one read of the valid rows sends, and the calls in flight.
//!
//! A round is one batch (one per A/B variant with variants) read from the scan; its calls go
//! out on their own task, so the ESP is not kept waiting while the upload reads the next round
//! or writes a checkpoint. Rounds are awaited in the order they were read: the record only
//! ever takes a round once every earlier one is in, so its `uploaded` checkpoint is always the
//! highest contiguous round done.

use super::ServiceError;
use super::validate::RejectsReport;
use crate::audience::assign::{Assigner, Group};
use crate::audience::read::{AudienceScan, Event, Flow, ScanEnd};
use crate::campaign::{Campaign, PendingJob};
use crate::ports::esp::{AudienceBatch, BatchJob, BatchOutcome, Contact, Esp, EspError};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Most rounds one upload keeps in flight, whatever an adapter asks for.
pub(super) const MAX_IN_FLIGHT: usize = 4;

/// One call of a round: its variant (0 without variants) and its batch.
struct Call {
    variant: usize,
    batch: AudienceBatch,
}

/// A round read from the scan, not sent yet.
pub(super) struct ReadRound {
    /// The ordinal after the round's last row.
    pub next: u64,
    /// Rows of the round held out in the control group.
    held: u64,
    calls: Vec<Call>,
}

impl ReadRound {
    pub fn calls(&self) -> usize {
        self.calls.len()
    }
}

/// What one call came back with.
enum Sent {
    Done(BatchOutcome),
    /// A job the ESP runs on its side: the record keeps it until it ends.
    Job(BatchJob),
}

struct SentCall {
    variant: usize,
    first_ordinal: u64,
    rows: u64,
    sent: Sent,
}

/// A round whose every call answered.
pub(super) struct Round {
    next: u64,
    held: u64,
    calls: Vec<SentCall>,
}

impl Round {
    /// Jobs of this round still running at the ESP, as the record keeps them.
    pub fn jobs(&self) -> Vec<PendingJob> {
        self.calls
            .iter()
            .filter_map(|call| match &call.sent {
                Sent::Job(job) => Some(PendingJob {
                    variant: call.variant,
                    first_ordinal: call.first_ordinal,
                    job: job.clone(),
                }),
                Sent::Done(_) => None,
            })
            .collect()
    }

    /// Waits for the round's jobs to end (the record holds them already).
    pub async fn finish_jobs(mut self, esp: &dyn Esp, c: &Campaign) -> Result<Self, EspError> {
        for call in &mut self.calls {
            if let Sent::Job(job) = &call.sent {
                let out = esp
                    .finish_batch_job(c.esp_ids_of(call.variant), job)
                    .await?;
                call.sent = Sent::Done(out);
            }
        }
        Ok(self)
    }

    /// Counts the round into the record: its checkpoint and what the ESP made of its rows.
    /// Called once its jobs ended ([`Self::finish_jobs`]).
    pub fn apply(self, c: &mut Campaign) {
        for call in self.calls {
            let Sent::Done(out) = call.sent else {
                continue;
            };
            let refused = out.row_errors.len() as u64;
            c.audience.not_in_esp += out.not_in_esp;
            c.audience.esp_rejected += refused;
            c.audience.batches += 1;
            if let Some(v) = c.variants.get_mut(call.variant) {
                v.assigned += call.rows;
                v.not_in_esp += out.not_in_esp;
                v.esp_rejected += refused;
            }
        }
        c.audience.uploaded = self.next;
        c.audience.held_out += self.held;
        c.audience.jobs.clear();
    }
}

/// Contacts a round's buffer holds before it grows (a Silverpop bulk batch can be far larger).
const RESERVE_CONTACTS: usize = 16_384;

/// Reads one round from the scan (the upload's one pass): rows from ordinal `skip` on into one
/// buffer per variant (one without variants) until one holds `max` (at most variants × `max`
/// rows in memory). Rows before `skip` (done by an earlier invocation) are read and decided
/// again, not sent; rejected rows go to `rejects`, and the round ends early if they pass its
/// cap. Held-out customers are counted, never sent.
pub(super) async fn read_round(
    scan: &mut AudienceScan<'_>,
    assigner: &Assigner,
    field_names: &Arc<[String]>,
    max: usize,
    skip: u64,
    rejects: &mut RejectsReport,
) -> Result<(ReadRound, ScanEnd), ServiceError> {
    // Each buffer with its first row's ordinal, reserved up front: growing a batch of ten
    // thousand contacts by doubling copies it a dozen times.
    let reserve = max.min(RESERVE_CONTACTS);
    let mut buffers: Vec<(Option<u64>, Vec<Contact>)> = (0..assigner.variants())
        .map(|_| (None, Vec::with_capacity(reserve)))
        .collect();
    let mut held = 0u64;
    let mut next = skip;
    let end = scan
        .run(&mut |ev| {
            if let Event::Reject {
                file_index,
                line,
                reason,
            } = &ev
            {
                return rejects.reject(*file_index, *line, reason);
            }
            if let Event::Row(r) = ev
                && r.ordinal >= skip
            {
                next = r.ordinal + 1;
                let Group::Variant(i) = assigner.assign(r.customer_id) else {
                    held += 1;
                    return Flow::Continue;
                };
                let (first, contacts) = &mut buffers[i];
                first.get_or_insert(r.ordinal);
                contacts.push(Contact {
                    customer_id: r.customer_id.to_owned(),
                    email: r.email.map(str::to_owned),
                    fields: (0..r.field_count())
                        .map(|i| r.field(i).to_owned())
                        .collect(),
                });
                if contacts.len() >= max {
                    return Flow::Pause;
                }
            }
            Flow::Continue
        })
        .await?;
    let calls = buffers
        .into_iter()
        .enumerate()
        .filter(|(_, (_, contacts))| !contacts.is_empty())
        .map(|(variant, (first, contacts))| Call {
            variant,
            batch: AudienceBatch {
                first_ordinal: first.unwrap_or(skip),
                field_names: Arc::clone(field_names),
                contacts,
            },
        })
        .collect();
    Ok((ReadRound { next, held, calls }, end))
}

/// Rounds sent and not yet counted into the record, oldest first. Dropping it stops the
/// calls still running (their batches are sent again by whoever resumes: harmless, ESP
/// audiences are sets).
pub(super) struct InFlight {
    esp: Arc<dyn Esp>,
    rounds: VecDeque<JoinHandle<Result<Round, EspError>>>,
}

impl InFlight {
    pub fn new(esp: Arc<dyn Esp>) -> Self {
        Self {
            esp,
            rounds: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.rounds.len()
    }

    /// Sends `round`'s calls on their own task, in order. A call whose batch the record shows
    /// as a job started before (an invocation that ended while it ran) waits for that job
    /// instead of starting another.
    pub fn send(&mut self, c: &Campaign, round: ReadRound) {
        let esp = Arc::clone(&self.esp);
        let ReadRound { next, held, calls } = round;
        let calls: Vec<_> = calls
            .into_iter()
            .map(|call| {
                let started = c
                    .audience
                    .jobs
                    .iter()
                    .find(|p| {
                        p.variant == call.variant && p.first_ordinal == call.batch.first_ordinal
                    })
                    .map(|p| p.job.clone());
                (c.esp_ids_of(call.variant).clone(), call, started)
            })
            .collect();
        self.rounds.push_back(tokio::spawn(async move {
            let mut sent = Vec::with_capacity(calls.len());
            for (audience, call, started) in calls {
                let outcome = match started {
                    Some(job) => Sent::Job(job),
                    None => match esp.start_batch_job(&audience, &call.batch).await? {
                        Some(job) => Sent::Job(job),
                        None => Sent::Done(esp.upload_batch(&audience, &call.batch).await?),
                    },
                };
                sent.push(SentCall {
                    variant: call.variant,
                    first_ordinal: call.batch.first_ordinal,
                    rows: call.batch.contacts.len() as u64,
                    sent: outcome,
                });
            }
            Ok(Round {
                next,
                held,
                calls: sent,
            })
        }));
    }

    /// The oldest round once all its calls answered; `None` when nothing is in flight.
    pub async fn next(&mut self) -> Option<Result<Round, EspError>> {
        let head = self.rounds.pop_front()?;
        Some(match head.await {
            Ok(r) => r,
            // A panicking adapter stays a panic.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(EspError::Transient {
                esp: self.esp.kind(),
                detail: "upload call cancelled".to_owned(),
            }),
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        for h in &self.rounds {
            h.abort();
        }
    }
}
