//! A login session shared by every call of one ESP account (Silverpop's jsessionid, Bronto's
//! session header, SmartFocus's per-service tokens).
//!
//! Renewal is single-flight: the first call that finds no usable session logs in while holding
//! the slot; the others wait for that login, with a deadline, and then use its session. A session
//! the ESP refused is forgotten only if no other call has already replaced it, so ten calls
//! failing on one expired session cause one login, not ten.

use espbridge_core::EspKind;
use espbridge_core::ports::EspError;
use jiff::{SignedDuration, Timestamp};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;

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
    /// Longest wait for another call's login.
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
            wait,
            max_age: None,
        }
    }

    /// Sessions are renewed once they are `age` old (SmartFocus tokens live 60 minutes).
    pub fn with_max_age(mut self, age: SignedDuration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// The current session, or a new one from `login` when there is none (or it is too old).
    pub async fn get<F, Fut>(&self, now: Timestamp, login: F) -> Result<S, EspError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<S, EspError>>,
    {
        let mut slot = tokio::time::timeout(self.wait, self.held.lock())
            .await
            .map_err(|_| EspError::Transient {
                esp: self.esp,
                detail: format!("waited {} s for another call's login", self.wait.as_secs()),
            })?;
        if let Some(h) = slot.as_ref()
            && self
                .max_age
                .is_none_or(|age| now.duration_since(h.opened) < age)
        {
            return Ok(h.value.clone());
        }
        let value = login().await?;
        *slot = Some(Held {
            value: value.clone(),
            opened: now,
        });
        Ok(value)
    }

    /// Forgets `stale` unless another call already replaced it.
    pub async fn forget(&self, stale: &S) {
        let mut slot = self.held.lock().await;
        if slot.as_ref().is_some_and(|h| &h.value == stale) {
            *slot = None;
        }
    }

    /// Counts a call as under way until the guard is dropped.
    pub fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(&self.in_flight)
    }

    /// Takes the session out when no call is using it (to log it out: sessions count against
    /// the account's cap).
    pub async fn take_if_idle(&self) -> Option<S> {
        if self.in_flight.load(Ordering::SeqCst) != 0 {
            return None;
        }
        let mut slot = self.held.lock().await;
        if self.in_flight.load(Ordering::SeqCst) != 0 {
            return None;
        }
        slot.take().map(|h| h.value)
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
}
