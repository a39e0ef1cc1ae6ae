//! The probe's watcher (`--events`): started with the probe and again with each probe a reload
//! builds, dropped with the run; what it heard is taken in batches (the latch coalesces a
//! flood), counted per kind since the last batch.

use crate::kit::events::{EventKind, Events};
use crate::probe::Probe;

/// A watcher task and the latch it reports to.
pub(super) struct Listening {
    events: Events,
    task: Option<tokio::task::AbortHandle>,
    /// Each kind's total already reported, so a batch says how many of each came.
    reported: [u64; 2],
}

/// What came since the last batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Heard {
    /// The latest reason the service gave for not serving, when it did.
    pub(super) not_serving: Option<String>,
    /// The latest suspicion's reason, when one came.
    pub(super) suspicion: Option<String>,
    /// How many of each kind came: authoritative, suspicion.
    pub(super) counts: [u64; 2],
}

impl Heard {
    /// Fold a later batch into this one (the later reasons win, the counts add up).
    pub(super) fn merge(&mut self, later: Heard) {
        self.not_serving = later.not_serving.or(self.not_serving.take());
        self.suspicion = later.suspicion.or(self.suspicion.take());
        self.counts[0] += later.counts[0];
        self.counts[1] += later.counts[1];
    }

    /// Each kind that came, with its count and latest reason.
    pub(super) fn each(&self) -> impl Iterator<Item = (EventKind, u64, &str)> {
        [
            (EventKind::Authoritative, self.counts[0], &self.not_serving),
            (EventKind::Suspicion, self.counts[1], &self.suspicion),
        ]
        .into_iter()
        .filter_map(|(kind, count, reason)| reason.as_deref().map(|r| (kind, count, r)))
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Listening {
    /// Start `probe`'s watcher when `on` (`--events on`) and the probe has one.
    pub(super) fn start<P: Probe>(probe: &P, on: bool) -> Self {
        let mut listening = Listening {
            events: Events::new(),
            task: None,
            reported: [0; 2],
        };
        listening.watch(probe, on);
        listening
    }

    /// A reload built a new probe: drop the old watcher, start the new probe's on the same
    /// latch. What the old one reported and was not yet taken stays: the service's word just
    /// before a SIGHUP still counts (dropping it lost a NOT_SERVING, found by the simulation).
    pub(super) fn restart<P: Probe>(&mut self, probe: &P, on: bool) {
        self.stop();
        self.watch(probe, on);
    }

    fn watch<P: Probe>(&mut self, probe: &P, on: bool) {
        if !on {
            return;
        }
        if let Some(watcher) = probe.watch(self.events.clone()) {
            tracing::debug!("watching the service for events");
            self.task = Some(tokio::spawn(watcher).abort_handle());
        }
    }

    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Wait for the next batch (forever when nothing watches). Cancel-safe.
    pub(super) async fn next(&mut self) -> Heard {
        let taken = self.events.next().await;
        self.counted(taken.authoritative(), taken.suspicion())
    }

    /// Whether [`Listening::next`] can return: a watcher runs, or what one reported is not yet
    /// taken. Without a watcher the runner does not wait on the latch (a lock per poll).
    pub(super) fn may_hear(&self) -> bool {
        self.task.is_some()
            || [
                self.events.total(EventKind::Authoritative),
                self.events.total(EventKind::Suspicion),
            ] != self.reported
    }

    fn counted(&mut self, not_serving: Option<&str>, suspicion: Option<&str>) -> Heard {
        let totals = [
            self.events.total(EventKind::Authoritative),
            self.events.total(EventKind::Suspicion),
        ];
        let counts = [totals[0] - self.reported[0], totals[1] - self.reported[1]];
        self.reported = totals;
        Heard {
            not_serving: not_serving.map(str::to_owned),
            suspicion: suspicion.map(str::to_owned),
            counts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle() -> Listening {
        Listening {
            events: Events::new(),
            task: None,
            reported: [0; 2],
        }
    }

    /// Without a watcher the checker skips the latch, but never what a stopped watcher reported
    /// and nobody took yet (the word just before a reload that turned events off).
    #[tokio::test]
    async fn without_a_watcher_only_an_untaken_report_can_be_heard() {
        let mut listening = idle();
        assert!(!listening.may_hear());
        listening.events.not_serving("draining");
        listening.events.suspicion("connection reset");
        assert!(listening.may_hear());
        let heard = listening.next().await;
        assert_eq!(heard.not_serving.as_deref(), Some("draining"));
        assert_eq!(heard.counts, [1, 1]);
        assert!(!listening.may_hear());
    }

    #[tokio::test]
    async fn a_running_watcher_can_always_be_heard() {
        let mut listening = idle();
        listening.task = Some(tokio::spawn(std::future::pending::<()>()).abort_handle());
        assert!(listening.may_hear());
        listening.stop();
        assert!(!listening.may_hear());
    }
}
