//! A simulator's traffic: the simulated processing time of each request (a real ESP answers in
//! tens of milliseconds, which is what makes concurrency limits bite), the requests in flight
//! and their peak, and the requests refused for an account limit.

use crate::http::{Handler, Reply, SimRequest};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Traffic {
    latency_us: AtomicU64,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    refusals: AtomicU64,
}

impl Traffic {
    pub fn new(latency: Duration) -> Self {
        let t = Self::default();
        t.set_latency(latency);
        t
    }

    pub fn set_latency(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.store(us, Ordering::Relaxed);
    }

    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_us.load(Ordering::Relaxed))
    }

    /// Requests being answered now (this one included, inside a handler).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests ever in flight at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Counts one request refused for an account limit.
    pub fn refused(&self) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests refused for an account limit so far.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }
}

/// Leaves the in-flight count when the request ends, answered or abandoned.
struct InFlight(Arc<Traffic>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `handler` behind `traffic`: each request counts as in flight from its arrival, waits the
/// latency, then is handled (so a handler that caps concurrency sees every request that
/// arrived during the wait).
pub fn paced(handler: Handler, traffic: Arc<Traffic>) -> Handler {
    Arc::new(move |request: SimRequest| {
        let (handler, traffic) = (Arc::clone(&handler), Arc::clone(&traffic));
        Box::pin(async move {
            let now = traffic.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            traffic.peak.fetch_max(now, Ordering::SeqCst);
            let _guard = InFlight(Arc::clone(&traffic));
            let latency = traffic.latency();
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            let reply: Reply = handler(request).await;
            reply
        })
    })
}

/// Whether a stable hash of `key` falls in the first `share` (0..=1) of the key space: the
/// simulators' way of deciding, the same on every run, which customers an account does not know.
pub fn in_share(key: &str, share: f64) -> bool {
    let bucket = xxhash_rust::xxh3::xxh3_64(key.as_bytes()) % 1_000_000;
    (bucket as f64) < share * 1_000_000.0
}
