//! Events: what a service says about itself between checks (issue 27).
//!
//! A probe that can hear its service (a gRPC `Health/Watch` stream, a Sentinel subscription, a
//! kept connection the server closes) returns a watcher from [`crate::Probe::watch`]; the
//! watcher reports through [`Events`]. Two kinds, with different weights:
//!
//! - [`EventKind::Authoritative`]: the service itself says it is not serving (gRPC
//!   `NOT_SERVING`, a Sentinel `+switch-master` that made this node a replica). It takes effect
//!   at once, as the disable file does: no `--fall` to wait for. The return still needs `--rise`
//!   checks.
//! - [`EventKind::Suspicion`]: something that may mean trouble (a kept connection closed or reset
//!   by the server, `57P01`, a Sentinel `+sdown`, a gRPC stream back to `SERVING`). A check runs
//!   at once and the next `--fall` checks use `--fast-interval`.
//!
//! Reporting never blocks and never grows memory: events wait in a latch of one pending reason
//! per kind (a flood of a thousand is one wake-up and two counters), the runner takes them when
//! it can.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// How much an event weighs (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The service says it is not serving: DOWN at once.
    Authoritative,
    /// Something may be wrong: check at once, then confirm at the fast interval.
    Suspicion,
}

impl EventKind {
    /// The name in logs, the metrics' `kind` label and the state file.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Authoritative => "authoritative",
            EventKind::Suspicion => "suspicion",
        }
    }
}

/// The longest reason kept (a watcher's reason comes from the network).
const MAX_REASON: usize = 300;

/// Where a watcher reports. Cheap to clone; reporting never waits.
#[derive(Debug, Clone, Default)]
pub struct Events {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Notify,
    authoritative: AtomicU64,
    suspicion: AtomicU64,
}

/// What came since the runner last looked: the latest reason of each kind and how many.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    /// The latest authoritative reason, if any came.
    pub(crate) authoritative: Option<String>,
    /// The latest suspicion reason, if any came.
    pub(crate) suspicion: Option<String>,
    /// How many events came (of both kinds) since the last take.
    pub(crate) count: u64,
}

impl Pending {
    /// Nothing came.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl Events {
    /// A new latch (the runner makes one per watcher; tests make their own).
    pub fn new() -> Self {
        Events::default()
    }

    /// The service says it is not serving (`reason`: one line, no secret).
    pub fn not_serving(&self, reason: impl Into<String>) {
        self.report(EventKind::Authoritative, reason.into());
    }

    /// Something suggests the service may have failed (`reason`: one line, no secret).
    pub fn suspicion(&self, reason: impl Into<String>) {
        self.report(EventKind::Suspicion, reason.into());
    }

    /// Report one event of `kind`.
    pub fn report(&self, kind: EventKind, reason: String) {
        let reason = crate::kit::reason::one_line(&reason, MAX_REASON);
        let counter = match kind {
            EventKind::Authoritative => &self.shared.authoritative,
            EventKind::Suspicion => &self.shared.suspicion,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match kind {
                EventKind::Authoritative => pending.authoritative = Some(reason),
                EventKind::Suspicion => pending.suspicion = Some(reason),
            }
            pending.count = pending.count.saturating_add(1);
        }
        self.shared.wake.notify_one();
    }

    /// How many events of `kind` were reported since this latch was made.
    pub fn total(&self, kind: EventKind) -> u64 {
        match kind {
            EventKind::Authoritative => self.shared.authoritative.load(Ordering::Relaxed),
            EventKind::Suspicion => self.shared.suspicion.load(Ordering::Relaxed),
        }
    }

    /// Take what came since the last take (empty when nothing did).
    pub fn take(&self) -> TakenEvents {
        let pending = std::mem::take(
            &mut *self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        TakenEvents(pending)
    }

    /// Wait until something is reported, then take it. Cancel-safe: nothing is taken until
    /// the wait ends.
    pub async fn next(&self) -> TakenEvents {
        loop {
            let notified = self.shared.wake.notified();
            let taken = self.take();
            if !taken.0.is_empty() {
                return taken;
            }
            notified.await;
        }
    }
}

/// Events taken from the latch: the latest reason of each kind and how many came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenEvents(pub(crate) Pending);

impl TakenEvents {
    /// The latest authoritative reason, if one came.
    pub fn authoritative(&self) -> Option<&str> {
        self.0.authoritative.as_deref()
    }

    /// The latest suspicion reason, if one came.
    pub fn suspicion(&self) -> Option<&str> {
        self.0.suspicion.as_deref()
    }

    /// How many events came, of both kinds.
    pub fn count(&self) -> u64 {
        self.0.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_flood_is_one_take_with_the_latest_reasons() {
        let events = Events::new();
        for n in 0..1000 {
            events.suspicion(format!("+sdown {n}"));
            events.suspicion(format!("-sdown {n}"));
        }
        events.not_serving("NOT_SERVING");
        let taken = events.next().await;
        assert_eq!(taken.count(), 2001);
        assert_eq!(taken.suspicion(), Some("-sdown 999"));
        assert_eq!(taken.authoritative(), Some("NOT_SERVING"));
        assert_eq!(events.total(EventKind::Suspicion), 2000);
        assert_eq!(events.total(EventKind::Authoritative), 1);
        assert_eq!(events.take().count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn next_waits_for_a_report_from_another_task() {
        let events = Events::new();
        let reporter = events.clone();
        let waiter = tokio::spawn(async move { events.next().await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        reporter.suspicion("connection closed by the server\nsecond line");
        let taken = waiter.await.unwrap();
        assert_eq!(
            taken.suspicion(),
            Some("connection closed by the server second line")
        );
    }
}
