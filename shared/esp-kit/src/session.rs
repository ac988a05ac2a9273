//! A login session shared by every call of one ESP account (Silverpop's jsessionid, Bronto's
//! session header, SmartFocus's per-service tokens).
//!
//! Renewal is single-flight: the first call that finds no usable session logs in while holding
//! the slot; the others wait for that login, with a deadline, and then use its session. A session
//! the ESP refused is forgotten only if no other call has already replaced it, so ten calls
//! failing on one expired session cause one login, not ten.
//!
//! Every wait here has a deadline (`wait`) that ends in a retryable error naming what was waited
//! for: the login of another call, the slot itself. A refused session is renewed as long as the
//! account's sessions serve calls ([`Renewals`]): an account whose sessions end after a few calls
//! costs logins, never the upload, while one that refuses every fresh session is given up on
//! after a few logins that served nothing.

use espbridge_core::EspKind;
use espbridge_core::ports::EspError;
use jiff::{SignedDuration, Timestamp};
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard};

/// Renewals in a row, for one call, after which no call of the account was served: the fresh
/// sessions are refused for another reason than their age, so the call gives up (retryably).
pub const BARREN_RENEWALS: u32 = 5;
/// Renewals for one call at most, however many calls the sessions serve meanwhile.
pub const MAX_RENEWALS: u32 = 64;

#[derive(Debug)]
struct Held<S> {
    value: S,
    opened: Timestamp,
}

/// The account's current session, if any.
#[derive(Debug)]
pub struct SessionSlot<S> {
    esp: EspKind,
    held: Mutex<Option<Held<S>>>,
    in_flight: AtomicUsize,
    /// Calls answered with a session (anything but "session refused").
    served: AtomicU64,
    /// Logins made through this slot.
    logins: AtomicU64,
    /// Longest wait for another call's login (and for the slot).
    wait: Duration,
    /// Renew a session this old even if the ESP has not refused it yet.
    max_age: Option<SignedDuration>,
}

impl<S: Clone + PartialEq> SessionSlot<S> {
    pub fn new(esp: EspKind, wait: Duration) -> Self {
        Self {
            esp,
            held: Mutex::new(None),
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            logins: AtomicU64::new(0),
            wait,
            max_age: None,
        }
    }

    /// Sessions are renewed once they are `age` old (SmartFocus tokens live 60 minutes).
    pub fn with_max_age(mut self, age: SignedDuration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// The slot, waiting at most `wait` (another call may be logging in while holding it).
    async fn lock(&self) -> Result<MutexGuard<'_, Option<Held<S>>>, EspError> {
        tokio::time::timeout(self.wait, self.held.lock())
            .await
            .map_err(|_| EspError::Transient {
                esp: self.esp,
                detail: format!("waited {} s for another call's login", self.wait.as_secs()),
            })
    }

    /// The current session, or a new one from `login` when there is none (or it is too old).
    pub async fn get<F, Fut>(&self, now: Timestamp, login: F) -> Result<S, EspError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<S, EspError>>,
    {
        let mut slot = self.lock().await?;
        if let Some(h) = slot.as_ref()
            && self
                .max_age
                .is_none_or(|age| now.duration_since(h.opened) < age)
        {
            return Ok(h.value.clone());
        }
        // A session too old to use is gone either way.
        *slot = None;
        let value = login().await?;
        self.logins.fetch_add(1, Ordering::Relaxed);
        *slot = Some(Held {
            value: value.clone(),
            opened: now,
        });
        Ok(value)
    }

    /// Forgets `stale` unless another call already replaced it. Waits for the slot at most
    /// `wait`: a slot held that long is held by a login, which replaces `stale` anyway.
    pub async fn forget(&self, stale: &S) {
        if let Ok(mut slot) = self.lock().await
            && slot.as_ref().is_some_and(|h| &h.value == stale)
        {
            *slot = None;
        }
    }

    /// Counts a call the account's session answered (anything but a refusal of the session):
    /// the progress [`Renewals`] looks for.
    pub fn served(&self) {
        self.served.fetch_add(1, Ordering::Relaxed);
    }

    /// Logins made through this slot so far.
    pub fn logins(&self) -> u64 {
        self.logins.load(Ordering::Relaxed)
    }

    /// The renewal budget of one call (see [`Renewals::again`]).
    pub fn renewals(&self) -> Renewals<'_, S> {
        Renewals {
            slot: self,
            seen: self.served.load(Ordering::Relaxed),
            barren: 0,
            total: 0,
        }
    }

    /// Counts a call as under way until the guard is dropped.
    pub fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(&self.in_flight)
    }

    /// Whether no call is under way.
    pub fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
    }

    /// Takes the session out when no call is using it (to log it out: sessions count against
    /// the account's cap). `None` too when the slot stays busy past the wait.
    pub async fn take_if_idle(&self) -> Option<S> {
        if !self.is_idle() {
            return None;
        }
        let mut slot = self.lock().await.ok()?;
        if !self.is_idle() {
            return None;
        }
        slot.take().map(|h| h.value)
    }
}

/// How often one call may have its refused session renewed and repeat: while the account's
/// sessions serve calls (some call, this one's or another's, was answered since this call's
/// previous renewal), up to [`MAX_RENEWALS`]; after [`BARREN_RENEWALS`] renewals in a row that
/// served nothing, no more.
pub struct Renewals<'a, S> {
    slot: &'a SessionSlot<S>,
    seen: u64,
    barren: u32,
    total: u32,
}

impl<S> Renewals<'_, S> {
    /// Whether the call may log in again and repeat after its session was refused.
    pub fn again(&mut self) -> bool {
        let served = self.slot.served.load(Ordering::Relaxed);
        if served == self.seen {
            self.barren += 1;
        } else {
            self.barren = 0;
            self.seen = served;
        }
        self.total += 1;
        self.barren <= BARREN_RENEWALS && self.total <= MAX_RENEWALS
    }

    /// Renewals so far.
    pub fn count(&self) -> u32 {
        self.total
    }

    /// The error that ends the call when [`again`](Self::again) said no (retryable: the next
    /// delivery tries again).
    pub fn exhausted(&self, what: &str) -> EspError {
        EspError::Transient {
            esp: self.slot.esp,
            detail: format!(
                "{what}: session refused {} times in a row ({} after logins that served no call)",
                self.total, self.barren
            ),
        }
    }
}

/// A call under way (see [`SessionSlot::enter`]).
pub struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;

    fn t0() -> Timestamp {
        "2026-12-01T00:00:00Z".parse().unwrap()
    }

    #[tokio::test]
    async fn concurrent_calls_share_one_login() {
        let slot = Arc::new(SessionSlot::<String>::new(
            EspKind::Silverpop,
            Duration::from_secs(5),
        ));
        let logins = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (slot, logins) = (Arc::clone(&slot), Arc::clone(&logins));
            tasks.push(tokio::spawn(async move {
                slot.get(t0(), || async {
                    logins.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok("s1".to_owned())
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), "s1");
        }
        assert_eq!(logins.load(Ordering::SeqCst), 1);
        // A refused session is forgotten once; a second forget of the same one is a no-op
        // after the renewal.
        slot.forget(&"s1".to_owned()).await;
        let s2 = slot.get(t0(), || async { Ok("s2".to_owned()) }).await;
        assert_eq!(s2.unwrap(), "s2");
        slot.forget(&"s1".to_owned()).await;
        let still = slot
            .get(t0(), || async { Ok("s3".to_owned()) })
            .await
            .unwrap();
        assert_eq!(still, "s2");
    }

    #[tokio::test]
    async fn a_stuck_login_makes_the_others_give_up_in_time() {
        let slot = Arc::new(SessionSlot::<String>::new(
            EspKind::Bronto,
            Duration::from_millis(50),
        ));
        let s = Arc::clone(&slot);
        let stuck = tokio::spawn(async move {
            s.get(t0(), || async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok("late".to_owned())
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let e = slot
            .get(t0(), || async { Ok("x".to_owned()) })
            .await
            .unwrap_err();
        assert!(e.is_retryable() && e.to_string().contains("login"), "{e}");
        stuck.abort();
    }

    #[tokio::test]
    async fn old_sessions_are_renewed_and_idle_ones_taken() {
        let slot = SessionSlot::<u32>::new(EspKind::Smartfocus, Duration::from_secs(1))
            .with_max_age(SignedDuration::from_mins(55));
        assert_eq!(slot.get(t0(), || async { Ok(1) }).await.unwrap(), 1);
        let later = t0() + SignedDuration::from_mins(54);
        assert_eq!(slot.get(later, || async { Ok(2) }).await.unwrap(), 1);
        let much_later = t0() + SignedDuration::from_mins(56);
        assert_eq!(slot.get(much_later, || async { Ok(3) }).await.unwrap(), 3);
        let guard = slot.enter();
        assert_eq!(slot.take_if_idle().await, None);
        drop(guard);
        assert_eq!(slot.take_if_idle().await, Some(3));
        assert_eq!(slot.take_if_idle().await, None);
    }

    #[tokio::test]
    async fn forget_and_take_if_idle_give_up_on_a_stuck_login() {
        let slot = Arc::new(SessionSlot::<String>::new(
            EspKind::Silverpop,
            Duration::from_millis(50),
        ));
        slot.get(t0(), || async { Ok("s1".to_owned()) })
            .await
            .unwrap();
        slot.forget(&"s1".to_owned()).await;
        let s = Arc::clone(&slot);
        let stuck = tokio::spawn(async move {
            s.get(t0(), || async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok("late".to_owned())
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Neither waits for the stuck login past the slot's wait.
        let bounded = tokio::time::timeout(Duration::from_secs(2), async {
            slot.forget(&"s1".to_owned()).await;
            slot.take_if_idle().await
        })
        .await;
        assert_eq!(bounded, Ok(None));
        stuck.abort();
    }

    #[tokio::test]
    async fn refused_sessions_are_renewed_while_sessions_serve_calls() {
        let slot = SessionSlot::<u32>::new(EspKind::Bronto, Duration::from_secs(1));
        // Other calls are served between this call's refusals: it goes on and on.
        let mut r = slot.renewals();
        for _ in 0..20 {
            slot.served();
            assert!(r.again());
        }
        // Refused with nothing served anywhere since: a few more logins, then no more.
        let barren = (0..10).take_while(|_| r.again()).count();
        assert_eq!(barren as u32, BARREN_RENEWALS);
        let e = r.exhausted("addToList");
        assert!(
            e.is_retryable() && e.to_string().contains("addToList"),
            "{e}"
        );
        // However much is served, one call renews at most MAX_RENEWALS times.
        let mut r = slot.renewals();
        let n = (0..1000)
            .take_while(|_| {
                slot.served();
                r.again()
            })
            .count();
        assert_eq!(n as u32, MAX_RENEWALS);
        assert_eq!(slot.logins(), 0);
    }
}
