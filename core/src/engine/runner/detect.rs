//! `--exabgp-api auto`: which dialect ExaBGP speaks, asked of ExaBGP itself.
//!
//! Every ExaBGP version answers `system version` with one line before its ACK (4.2 and 5.0 in
//! text, 6.0 in JSON; see `crate::engine::dialect`). The deliverer writes the query before any route
//! and holds route commands until the answer (or, when none comes in time, falls back to the
//! 4.2/5.0 dialect). Nothing else waits: the checks run, and signals are served, while the
//! question is open. An answer that comes after the fallback still counts: a busy ExaBGP 6 that
//! answers late switches the probe to its dialect instead of leaving it rejected for good.
//!
//! [`Detector`] is the question's state, driven by the deliverer with time as a parameter.

use std::time::Duration;

use tokio::time::Instant;

use crate::engine::dialect::ApiDialect;
use crate::engine::dialect::{DetectedExabgp, VERSION_COMMAND};
use crate::engine::exabgp::AckMode;

/// How long to wait for the answer when ACKs are off (with ACKs on: `--ack-timeout`).
const NO_ACK_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The query is still to be written (ExaBGP may not be reading yet).
    Unwritten,
    /// Written; the answer (and with ACKs, the ACK) is awaited.
    Written {
        /// Whether the query's ACK is still to come.
        ack_due: bool,
    },
    /// The dialect is decided (answered, or the fallback).
    Settled,
}

/// The version question and the dialect it decided.
#[derive(Debug)]
pub(super) struct Detector {
    phase: Phase,
    deadline: Instant,
    acks: bool,
    fallback: ApiDialect,
    /// The dialect commands are written in; `None` while the question is open.
    known: Option<ApiDialect>,
}

/// What the deliverer should do after an event of the question.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decided {
    /// Nothing changed.
    Nothing,
    /// Commands are to be written in this dialect from now on.
    Dialect(ApiDialect),
}

impl Detector {
    /// A question to ask (with `ask`), or a dialect known from the options.
    pub(super) fn new(ask: bool, dialect: ApiDialect, ack: AckMode, now: Instant) -> Self {
        let (acks, wait) = match ack {
            AckMode::Wait(timeout) => (true, timeout),
            AckMode::Off | AckMode::DryRun => (false, NO_ACK_WAIT),
        };
        Detector {
            phase: if ask {
                Phase::Unwritten
            } else {
                Phase::Settled
            },
            deadline: now + wait,
            acks,
            fallback: dialect,
            known: (!ask).then_some(dialect),
        }
    }

    /// The dialect route commands are written in, once known.
    pub(super) fn known(&self) -> Option<ApiDialect> {
        self.known
    }

    /// The query line, while it is still to be written.
    pub(super) fn query(&self) -> Option<&'static str> {
        (self.phase == Phase::Unwritten).then_some(VERSION_COMMAND)
    }

    /// The query was written at `now`.
    pub(super) fn written(&mut self, now: Instant) {
        if self.phase == Phase::Unwritten {
            self.phase = Phase::Written { ack_due: self.acks };
            self.deadline = self.deadline.max(now);
        }
    }

    /// When to stop waiting, while waiting.
    pub(super) fn deadline(&self) -> Option<Instant> {
        (self.known.is_none()).then_some(self.deadline)
    }

    /// Whether the next ACK answers the query.
    pub(super) fn takes_next_ack(&self) -> bool {
        self.phase == Phase::Written { ack_due: true }
    }

    /// ExaBGP's version answer, on time or late.
    pub(super) fn answered(&mut self, found: &DetectedExabgp) -> Decided {
        if let Phase::Written { ack_due } = self.phase
            && !ack_due
        {
            self.phase = Phase::Settled;
        }
        let before = self.known.replace(found.dialect);
        if before.is_none() {
            tracing::info!(
                exabgp = %found.version,
                dialect = crate::engine::dialect::describe(found.dialect),
                "ExaBGP answered the version query"
            );
        } else if before != Some(found.dialect) {
            tracing::warn!(
                exabgp = %found.version,
                dialect = crate::engine::dialect::describe(found.dialect),
                "ExaBGP answered the version query late: switching to its dialect"
            );
        }
        match before {
            Some(dialect) if dialect == found.dialect => Decided::Nothing,
            _ => Decided::Dialect(found.dialect),
        }
    }

    /// The query's ACK came (`answered_first`: its version line came before it).
    pub(super) fn acked(&mut self) -> Decided {
        self.phase = Phase::Settled;
        if self.known.is_some() {
            return Decided::Nothing;
        }
        self.fall_back("ExaBGP answered the version query without a version")
    }

    /// The deadline passed at `now`: the 4.2/5.0 dialect, unless an answer comes later.
    /// Returns whether the query's ACK is still owed.
    pub(super) fn timed_out(&mut self, now: Instant) -> (Decided, bool) {
        if self.known.is_some() || now < self.deadline {
            return (Decided::Nothing, false);
        }
        let (why, owed) = match self.phase {
            Phase::Unwritten => ("ExaBGP did not read the version query", false),
            Phase::Written { ack_due } => {
                ("ExaBGP did not answer the version query in time", ack_due)
            }
            Phase::Settled => ("ExaBGP did not answer the version query", false),
        };
        // An unwritten query is not written any more; a written one may still be answered.
        self.phase = match self.phase {
            Phase::Unwritten => Phase::Settled,
            Phase::Written { .. } => Phase::Written { ack_due: false },
            settled => settled,
        };
        (self.fall_back(why), owed)
    }

    fn fall_back(&mut self, why: &str) -> Decided {
        tracing::warn!(
            "{why}: speaking the ExaBGP 4.2/5.0 dialect until it answers (give --exabgp-api 4 or 6 to skip the query)"
        );
        self.known = Some(self.fallback);
        Decided::Dialect(self.fallback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(2);

    fn v6() -> DetectedExabgp {
        DetectedExabgp {
            version: "6.0.0".into(),
            dialect: ApiDialect::V6,
        }
    }

    #[test]
    fn an_answer_decides_and_its_ack_is_taken() {
        let now = Instant::now();
        let mut d = Detector::new(true, ApiDialect::V4, AckMode::Wait(TIMEOUT), now);
        assert_eq!(d.query(), Some(VERSION_COMMAND));
        assert_eq!(d.known(), None);
        d.written(now);
        assert!(d.takes_next_ack());
        assert_eq!(d.answered(&v6()), Decided::Dialect(ApiDialect::V6));
        assert!(
            d.takes_next_ack(),
            "the ACK after the answer is the query's"
        );
        assert_eq!(d.acked(), Decided::Nothing);
        assert!(!d.takes_next_ack());
        assert_eq!(d.deadline(), None);
    }

    #[test]
    fn a_late_answer_switches_the_dialect_after_the_fallback() {
        let now = Instant::now();
        let mut d = Detector::new(true, ApiDialect::V4, AckMode::Wait(TIMEOUT), now);
        d.written(now);
        assert_eq!(d.timed_out(now), (Decided::Nothing, false), "not yet");
        let (decided, owed) = d.timed_out(now + TIMEOUT);
        assert_eq!(decided, Decided::Dialect(ApiDialect::V4));
        assert!(owed, "the query's ACK is owed");
        assert!(!d.takes_next_ack(), "the owed count takes it now");
        assert_eq!(d.answered(&v6()), Decided::Dialect(ApiDialect::V6));
    }

    #[test]
    fn an_ack_without_a_version_falls_back_at_once() {
        let now = Instant::now();
        let mut d = Detector::new(true, ApiDialect::V4, AckMode::Wait(TIMEOUT), now);
        d.written(now);
        assert_eq!(d.acked(), Decided::Dialect(ApiDialect::V4));
    }

    #[test]
    fn an_unread_query_is_abandoned() {
        let now = Instant::now();
        let mut d = Detector::new(true, ApiDialect::V4, AckMode::Wait(TIMEOUT), now);
        let (decided, owed) = d.timed_out(now + TIMEOUT);
        assert_eq!((decided, owed), (Decided::Dialect(ApiDialect::V4), false));
        assert_eq!(d.query(), None, "never written after the fallback");
    }

    #[test]
    fn a_given_dialect_asks_nothing() {
        let d = Detector::new(
            false,
            ApiDialect::V6,
            AckMode::Wait(TIMEOUT),
            Instant::now(),
        );
        assert_eq!(d.query(), None);
        assert_eq!(d.known(), Some(ApiDialect::V6));
        assert_eq!(d.deadline(), None);
    }
}
