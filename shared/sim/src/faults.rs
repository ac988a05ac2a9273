//! Fault injection shared by all simulators.
//!
//! A test queues [`Fault`]s; each request, before authentication, takes the first queued fault
//! whose path filter matches and spends one of its `times`. What a fault *looks like* on the wire
//! (the body of a 503, the headers of a 429) is up to each simulator; this module only decides
//! which fault applies to which request.

use std::sync::Mutex;
use std::time::Duration;

/// What happens to a request a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this HTTP status and an ESP-shaped error body, without processing the request.
    Status(u16),
    /// Answer as the ESP does when throttling (Emarsys: 429 / replyCode 7003 with rate headers).
    RateLimit,
    /// Process the request normally, then hold the response this long: a client with a shorter
    /// timeout gives up although the ESP acted, which is how real timeouts hurt idempotency.
    Timeout(Duration),
    /// Close the TCP connection without writing any response.
    DropConnection,
}

/// A fault that applies to the next `times` requests whose path contains `path_contains`
/// (any request when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub path_contains: Option<String>,
    pub times: u32,
}

impl Fault {
    /// A fault on the next `times` requests of any path.
    pub fn any(kind: FaultKind, times: u32) -> Self {
        Self {
            kind,
            path_contains: None,
            times,
        }
    }

    /// A fault on the next `times` requests whose path contains `fragment`.
    pub fn on(kind: FaultKind, fragment: impl Into<String>, times: u32) -> Self {
        Self {
            kind,
            path_contains: Some(fragment.into()),
            times,
        }
    }

    fn matches(&self, path: &str) -> bool {
        self.path_contains
            .as_deref()
            .is_none_or(|fragment| path.contains(fragment))
    }
}

/// The queue of pending faults, in injection order.
#[derive(Debug, Default)]
pub struct FaultBook(Mutex<Vec<Fault>>);

impl FaultBook {
    pub fn inject(&self, fault: Fault) {
        if fault.times > 0 {
            self.lock().push(fault);
        }
    }

    /// Spends one use of the first pending fault matching `path`, if any.
    pub fn take(&self, path: &str) -> Option<FaultKind> {
        let mut faults = self.lock();
        let index = faults.iter().position(|f| f.matches(path))?;
        let fault = &mut faults[index];
        let kind = fault.kind.clone();
        fault.times -= 1;
        if fault.times == 0 {
            faults.remove(index);
        }
        Some(kind)
    }

    /// Faults not yet spent.
    pub fn pending(&self) -> Vec<Fault> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fault>> {
        // The queue stays consistent even if a holder panicked.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_applies_to_matching_paths_the_given_number_of_times() {
        let book = FaultBook::default();
        book.inject(Fault::on(FaultKind::Status(503), "/launch", 2));
        book.inject(Fault::any(FaultKind::DropConnection, 1));
        assert_eq!(
            book.take("/api/v2/email/1/launch"),
            Some(FaultKind::Status(503))
        );
        // The path filter skips the first fault; the catch-all one applies.
        assert_eq!(book.take("/api/v2/field"), Some(FaultKind::DropConnection));
        assert_eq!(book.take("/api/v2/field"), None);
        assert_eq!(
            book.take("/api/v2/email/1/launch"),
            Some(FaultKind::Status(503))
        );
        assert_eq!(book.take("/api/v2/email/1/launch"), None);
        assert!(book.pending().is_empty());
    }

    #[test]
    fn a_fault_with_zero_times_is_ignored() {
        let book = FaultBook::default();
        book.inject(Fault::any(FaultKind::RateLimit, 0));
        assert_eq!(book.take("/x"), None);
    }
}
