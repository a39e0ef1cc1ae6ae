//! Commands ExaBGP rejected, waiting to be sent again: a backoff of 1 s doubling to 60 s per
//! prefix, a time index so the next one due is found without a scan (thousands of prefixes may
//! be rejected at once), and a release when ExaBGP takes commands again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::render::RouteCommand;
use crate::engine::route::Prefix;

/// First wait before re-sending a rejected command.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Longest wait between re-sends of a rejected command.
const MAX_RETRY: Duration = Duration::from_secs(60);

/// A rejected command waiting to be sent again.
#[derive(Debug)]
pub(super) struct Retry {
    pub(super) action: RouteCommand,
    pub(super) at: Instant,
    backoff: Duration,
}

/// The rejected commands, one per prefix.
#[derive(Debug, Default)]
pub(super) struct Retries {
    by_prefix: BTreeMap<Prefix, Retry>,
    /// (due, prefix) for every retry not yet due, in time order.
    by_time: BTreeSet<(Instant, Prefix)>,
    /// When retries were last released (at most once per first backoff).
    released: Option<Instant>,
}

impl Retries {
    /// The retry waiting for `prefix`.
    pub(super) fn get(&self, prefix: &Prefix) -> Option<&Retry> {
        self.by_prefix.get(prefix)
    }

    /// Whether a command for `prefix` was rejected and not yet taken.
    pub(super) fn contains(&self, prefix: &Prefix) -> bool {
        self.by_prefix.contains_key(prefix)
    }

    /// `action` for `prefix` was rejected at `now`: send it again after the backoff (doubled
    /// when the same action was rejected before). Returns the wait.
    pub(super) fn schedule(
        &mut self,
        prefix: Prefix,
        action: RouteCommand,
        now: Instant,
    ) -> Duration {
        let backoff = match self.by_prefix.get(&prefix) {
            Some(retry) if retry.action == action => {
                (retry.backoff * 2).clamp(FIRST_RETRY, MAX_RETRY)
            }
            _ => FIRST_RETRY,
        };
        self.remove(&prefix);
        let at = now + backoff;
        self.by_time.insert((at, prefix));
        self.by_prefix.insert(
            prefix,
            Retry {
                action,
                at,
                backoff,
            },
        );
        backoff
    }

    /// Make the retry of `prefix` due at `now` (its answer came so late that waiting again is
    /// not worth it); its backoff still grows if it is rejected again.
    pub(super) fn due_now(&mut self, prefix: &Prefix, now: Instant) {
        if let Some(retry) = self.by_prefix.get_mut(prefix) {
            self.by_time.remove(&(retry.at, *prefix));
            retry.at = now;
        }
    }

    /// Forget the retry of `prefix` (taken, or superseded by another action).
    pub(super) fn remove(&mut self, prefix: &Prefix) {
        if let Some(retry) = self.by_prefix.remove(prefix) {
            self.by_time.remove(&(retry.at, *prefix));
        }
    }

    /// When the next retry is due.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// The prefixes whose retry is due at `now` (they stay known until taken).
    pub(super) fn take_due(&mut self, now: Instant) -> Vec<Prefix> {
        let mut due = Vec::new();
        while let Some(&(at, prefix)) = self.by_time.first() {
            if at > now {
                break;
            }
            self.by_time.pop_first();
            due.push(prefix);
        }
        due
    }

    /// ExaBGP took a command at `now`: what it rejected earlier is worth sending now, not after
    /// a backoff grown while it rejected everything (at most once per first backoff, so a
    /// command it keeps rejecting is not re-sent at every answer). Returns the prefixes due.
    pub(super) fn release(&mut self, now: Instant) -> Vec<Prefix> {
        if self.by_time.is_empty()
            || self
                .released
                .is_some_and(|released| now < released + FIRST_RETRY)
        {
            return Vec::new();
        }
        self.released = Some(now);
        let due: Vec<Prefix> = std::mem::take(&mut self.by_time)
            .into_iter()
            .map(|(_, prefix)| prefix)
            .collect();
        for prefix in &due {
            if let Some(retry) = self.by_prefix.get_mut(prefix) {
                // Due now, and its backoff starts afresh if ExaBGP rejects it again.
                retry.at = retry.at.min(now);
                retry.backoff = Duration::ZERO;
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::render::RouteAction;

    fn action(med: u32) -> RouteCommand {
        RouteCommand {
            action: RouteAction::Announce { med },
            lines: vec![format!("announce route 192.0.2.1/32 med {med}")],
        }
    }

    #[test]
    fn backoff_doubles_for_the_same_action_and_restarts_for_another() {
        let now = Instant::now();
        let prefix: Prefix = "192.0.2.1/32".parse().unwrap();
        let mut retries = Retries::default();
        assert_eq!(retries.schedule(prefix, action(100), now), FIRST_RETRY);
        assert_eq!(retries.schedule(prefix, action(100), now), FIRST_RETRY * 2);
        assert_eq!(retries.schedule(prefix, action(1000), now), FIRST_RETRY);
        for _ in 0..10 {
            retries.schedule(prefix, action(1000), now);
        }
        assert_eq!(retries.get(&prefix).unwrap().at, now + MAX_RETRY);
        assert_eq!(retries.next_due(), Some(now + MAX_RETRY));
        assert!(retries.take_due(now).is_empty());
        assert_eq!(retries.take_due(now + MAX_RETRY), [prefix]);
        assert!(retries.contains(&prefix), "known until taken");
        retries.remove(&prefix);
        assert!(!retries.contains(&prefix));
        assert_eq!(retries.next_due(), None);
    }

    #[test]
    fn a_release_makes_every_retry_due_once_per_first_backoff() {
        let now = Instant::now();
        let mut retries = Retries::default();
        let prefixes: Vec<Prefix> = (1..=3)
            .map(|i| format!("192.0.2.{i}/32").parse().unwrap())
            .collect();
        for prefix in &prefixes {
            for _ in 0..6 {
                retries.schedule(*prefix, action(100), now);
            }
        }
        assert_eq!(retries.release(now + FIRST_RETRY), prefixes);
        assert!(retries.get(&prefixes[0]).unwrap().at <= now + FIRST_RETRY);
        retries.schedule(prefixes[0], action(100), now + FIRST_RETRY);
        assert!(
            retries.release(now + FIRST_RETRY).is_empty(),
            "not again within the first backoff"
        );
        assert_eq!(retries.release(now + FIRST_RETRY * 2), [prefixes[0]]);
        assert_eq!(
            retries.schedule(prefixes[1], action(100), now + FIRST_RETRY * 2),
            FIRST_RETRY,
            "the backoff starts afresh after a release"
        );
    }
}
