//! [`LocalQueue`]: local mode's stand-in for SQS, in process.
//!
//! It carries what the upload and schedule queues carry in AWS, a step's [`WorkItem`] or a
//! drop-bucket object (the S3 notification), with the message's receive count, and keeps the
//! SQS semantics the steps rely on, so that an interrupted step resumes locally as it would in
//! AWS instead of leaving its campaign `uploading`:
//! - a message whose step ends with a retryable error comes back after a back-off (SQS's
//!   visibility timeout; [`Redelivery`]: doubling per receive, with jitter, capped) with its
//!   receive count one higher, and holds up no worker while it waits;
//! - the [`MAX_RECEIVES`]th receive is the last, as with the redrive policy's
//!   `maxReceiveCount`: the step runs it as its final attempt, which fails the campaign with its
//!   reason; a message that still fails then is dropped (SQS moves it to the dead-letter queue);
//! - a message whose step fails in a way no retry fixes is dropped at once (`sqs_batch`
//!   acknowledges it).
//!
//! The consumers are [`crate::worker`]'s.

use async_trait::async_trait;
use espbridge_core::ports::queue::{
    MAX_RECEIVES, QueueError, WorkItem, WorkQueue, is_final_receive,
};
use espbridge_core::ports::{BackendError, ObjectRef};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::watch;

/// What a local message carries: what an SQS message body carries in AWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A step's hand-off to the next (continuation, schedule-send).
    Work(WorkItem),
    /// A new object in the drop folder (a manifest or conversions file): the S3 notification.
    Object(ObjectRef),
}

impl Message {
    /// For logs and errors: the work item's kind and campaign id, or the object's key (run
    /// date, campaign id and file name; never anything from inside the file).
    pub fn label(&self) -> String {
        match self {
            Message::Work(item) => item.label(),
            Message::Object(object) => object.key.clone(),
        }
    }
}

/// One receive of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub message: Message,
    /// 1 on the first receive, as SQS's `ApproximateReceiveCount`.
    pub receive_count: u32,
}

impl Delivery {
    /// Whether this is the message's last allowed receive ([`MAX_RECEIVES`]).
    pub fn is_final(&self) -> bool {
        is_final_receive(self.receive_count)
    }
}

/// How long a message whose step was interrupted stays away: SQS's visibility timeout. Local
/// runs want it far shorter than the deployed queues' (the function timeout times six), yet
/// long enough for an ESP's passing outage to pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redelivery {
    /// Before the second receive; doubled for each receive after that.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Redelivery {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(5),
            max: Duration::from_secs(60),
        }
    }
}

impl Redelivery {
    /// The wait after a failed `receive_count`th receive: `first` doubled per receive, capped
    /// at `max`, then drawn from its upper half, so that the messages of one outage do not all
    /// come back at the same moment.
    pub fn backoff(&self, receive_count: u32) -> Duration {
        let doublings = receive_count.saturating_sub(1).min(20);
        let full = self.first.saturating_mul(1 << doublings).min(self.max);
        let half = full / 2;
        half + half.mul_f64(unit_random())
    }
}

/// A number in [0, 1): std's per-process random hash keys, so no RNG dependency for a jitter.
fn unit_random() -> f64 {
    let bits = RandomState::new().hash_one(()) >> 11;
    bits as f64 / (1u64 << 53) as f64
}

/// The receiving side, for the workers ([`crate::worker::run_workers`]) or a caller draining
/// the queue in place.
pub type Inbox = UnboundedReceiver<Delivery>;

/// The sending side. Cloning shares the queue.
#[derive(Debug, Clone)]
pub struct LocalQueue {
    tx: UnboundedSender<Delivery>,
    redelivery: Redelivery,
    counts: Arc<Counts>,
}

#[derive(Debug)]
struct Counts {
    /// Messages sent and not yet done with: queued, being processed, or waiting to come back.
    outstanding: watch::Sender<usize>,
    /// Messages waiting to come back.
    waiting: AtomicUsize,
}

impl LocalQueue {
    /// A queue with the default [`Redelivery`], and the inbox its messages arrive in.
    /// Unbounded because sending must not wait on the consumers, as with SQS; the number of
    /// messages is bounded by the number of campaigns.
    pub fn new() -> (LocalQueue, Inbox) {
        Self::with_redelivery(Redelivery::default())
    }

    pub fn with_redelivery(redelivery: Redelivery) -> (LocalQueue, Inbox) {
        let (tx, rx) = unbounded_channel();
        let counts = Arc::new(Counts {
            outstanding: watch::Sender::new(0),
            waiting: AtomicUsize::new(0),
        });
        (
            LocalQueue {
                tx,
                redelivery,
                counts,
            },
            rx,
        )
    }

    /// Sends a message for its first receive.
    pub fn send(&self, message: Message) -> Result<(), QueueError> {
        self.counts.outstanding.send_modify(|n| *n += 1);
        self.tx
            .send(Delivery {
                message,
                receive_count: 1,
            })
            .map_err(|e| {
                self.counts.outstanding.send_modify(|n| *n -= 1);
                QueueError {
                    item: e.0.message.label(),
                    source: BackendError::permanent(
                        "enqueue",
                        "the local queue's consumer has stopped",
                    ),
                }
            })
    }

    /// The received message is done with: its step succeeded, or failed in a way no
    /// redelivery would fix.
    pub fn done(&self, _: Delivery) {
        self.counts.outstanding.send_modify(|n| *n -= 1);
    }

    /// The step of `delivery` was interrupted by a retryable error: the message comes back
    /// after the back-off, with its receive count one higher, and the wait is returned. After
    /// its last allowed receive it does not come back (`None`; SQS would move it to the
    /// dead-letter queue). Returns at once: no worker waits for the redelivery.
    pub fn retry_later(&self, delivery: Delivery) -> Option<Duration> {
        if delivery.receive_count >= MAX_RECEIVES {
            self.done(delivery);
            return None;
        }
        let after = self.redelivery.backoff(delivery.receive_count);
        let next = Delivery {
            receive_count: delivery.receive_count + 1,
            ..delivery
        };
        self.counts.waiting.fetch_add(1, Ordering::SeqCst);
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            queue.counts.waiting.fetch_sub(1, Ordering::SeqCst);
            if let Err(e) = queue.tx.send(next) {
                tracing::warn!(message = %e.0.message.label(), receive_count = e.0.receive_count,
                    "the local queue's consumer has stopped; redelivery dropped");
                queue.counts.outstanding.send_modify(|n| *n -= 1);
            }
        });
        Some(after)
    }

    /// The redelivery back-off.
    pub fn redelivery(&self) -> Redelivery {
        self.redelivery
    }

    /// Messages sent and not yet done with (queued, being processed, or waiting to come back).
    pub fn outstanding(&self) -> usize {
        *self.counts.outstanding.borrow()
    }

    /// Messages waiting to come back after a retryable error.
    pub fn waiting(&self) -> usize {
        self.counts.waiting.load(Ordering::SeqCst)
    }

    /// Waits until every message sent is done with, redeliveries included.
    pub async fn settled(&self) {
        let mut rx = self.counts.outstanding.subscribe();
        // The sender lives in `self`, so the wait cannot fail.
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

#[async_trait]
impl WorkQueue for LocalQueue {
    async fn enqueue(&self, item: &WorkItem) -> Result<(), QueueError> {
        self.send(Message::Work(item.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use espbridge_core::ids::CampaignId;

    fn schedule_send(id: &str) -> Message {
        Message::Work(WorkItem::ScheduleSend {
            campaign_id: CampaignId::parse(id).unwrap(),
        })
    }

    #[tokio::test]
    async fn messages_arrive_in_order_on_their_first_receive() {
        let (q, mut rx) = LocalQueue::new();
        let a = CampaignId::parse("a").unwrap();
        let drop = ObjectRef {
            bucket: "local-drops".into(),
            key: "campaigns/2026-11-24/b/manifest.json".into(),
            etag: "e1".into(),
        };
        let item = WorkItem::ContinueUpload { campaign_id: a };
        q.enqueue(&item).await.unwrap();
        q.clone().send(Message::Object(drop.clone())).unwrap();
        q.send(schedule_send("a")).unwrap();
        for expected in [
            Message::Work(item),
            Message::Object(drop),
            schedule_send("a"),
        ] {
            let d = rx.recv().await.unwrap();
            assert_eq!((d.message, d.receive_count), (expected, 1));
        }
        assert!(rx.try_recv().is_err(), "nothing else was queued");
        assert_eq!(q.outstanding(), 3, "received, not yet done with");
    }

    #[tokio::test]
    async fn enqueue_fails_once_the_receiver_is_gone() {
        let (q, rx) = LocalQueue::new();
        drop(rx);
        let item = WorkItem::ScheduleSend {
            campaign_id: CampaignId::parse("c7").unwrap(),
        };
        let err = q.enqueue(&item).await.unwrap_err();
        assert_eq!(err.item, "schedule_send c7");
        assert!(!err.is_retryable(), "a stopped consumer does not come back");
        assert_eq!(q.outstanding(), 0);
    }

    #[tokio::test]
    async fn a_retried_message_comes_back_with_its_receive_count_up_to_the_limit() {
        let (q, mut rx) = LocalQueue::with_redelivery(Redelivery {
            first: Duration::from_millis(2),
            max: Duration::from_millis(8),
        });
        q.send(schedule_send("c1")).unwrap();
        for receive in 1..=MAX_RECEIVES {
            let d = rx.recv().await.unwrap();
            assert_eq!(d.receive_count, receive);
            assert_eq!(d.is_final(), receive == MAX_RECEIVES);
            let after = q.retry_later(d);
            if receive < MAX_RECEIVES {
                assert!(after.is_some());
                assert_eq!(q.waiting(), 1);
            } else {
                assert_eq!(after, None, "no receive after the last");
            }
        }
        q.settled().await;
        assert_eq!((q.outstanding(), q.waiting()), (0, 0));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn backoff_doubles_per_receive_within_its_cap_and_jitter() {
        let r = Redelivery {
            first: Duration::from_secs(5),
            max: Duration::from_secs(30),
        };
        for (receive, full) in [(1, 5), (2, 10), (3, 20), (4, 30), (40, 30)] {
            let full = Duration::from_secs(full);
            for _ in 0..20 {
                let b = r.backoff(receive);
                assert!(b >= full / 2 && b <= full, "receive {receive}: {b:?}");
            }
        }
    }
}
