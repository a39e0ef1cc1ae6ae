//! When the checker lets the autopilot fly (`autopilot.rs`), and how it takes over again.
//!
//! It flies only when a check would change nothing but counters nobody reads:
//!
//! - the probe has a steady check, and the last two outcomes were the same (an outcome that
//!   changes at every check, a reason with a counter in it, would take off and land each time);
//! - the router is steady under that outcome (`Router::is_steady_under`): UP or DOWN, nothing
//!   timed, no flap hold, no drain, no suspicion's fast checks;
//! - no option needs the checker at every check: no disable file to look up, no required
//!   probe, no watcher, no metrics or state file counting checks, no debug log of each check,
//!   no reload in progress, no retired prefix waiting for ExaBGP.
//!
//! Whatever else happens lands it first (`Autopilot::land`), so the checker acts on a router
//! that has seen every check, and the thread never checks beside the checker.

use tokio::time::Instant;

use super::Checker;
use super::autopilot::{Flight, Landing};
use crate::engine::health::Observation;
use crate::probe::{Outcome, Probe};

/// What the router makes of `outcome`: the observation and the MED penalty of a success.
pub(super) fn observation_of(outcome: &Outcome, default_penalty: u32) -> (Observation, u32) {
    match outcome {
        Outcome::Healthy => (Observation::Success, 0),
        Outcome::Degraded { penalty, .. } => {
            (Observation::Success, penalty.unwrap_or(default_penalty))
        }
        Outcome::Unhealthy { .. } => (Observation::Failure, 0),
    }
}

impl<P: Probe + Send + 'static> Checker<P> {
    /// Note a check's outcome (`None`: none ran, or the disable file said DISABLED).
    pub(super) fn remember(&mut self, outcome: Option<&Outcome>, disabled: bool) {
        let outcome = outcome.filter(|_| !disabled);
        self.repeated = outcome.is_some() && outcome == self.last_outcome.as_ref();
        self.last_outcome = outcome.cloned();
    }

    /// The outcome the autopilot may repeat from now on, if it may fly.
    fn may_fly(&self) -> Option<Outcome> {
        if !self.autopilot.can_fly() || !self.repeated {
            return None;
        }
        let outcome = self.last_outcome.as_ref()?;
        let quiet = self.settings.disable_file.is_none()
            && self.required.is_empty()
            && !self.listening.may_hear()
            && !self.status.borrow().observer.is_on()
            && self.retired.is_empty()
            && self.reloading.is_none()
            && !tracing::enabled!(tracing::Level::DEBUG);
        let (observation, penalty) = observation_of(outcome, self.settings.timing.degraded_penalty);
        (quiet && self.router.is_steady_under(observation, penalty)).then(|| outcome.clone())
    }

    /// Hand the schedule to the autopilot, from `next_check` on, when it may fly.
    pub(super) fn fly_if_steady(&mut self, next_check: Instant) {
        if self.autopilot.is_flying() {
            return;
        }
        let Some(expected) = self.may_fly() else {
            return;
        };
        let timing = &self.settings.timing;
        let flight = Flight {
            first: next_check,
            interval: self.interval(),
            splay: timing.splay,
            timeout: timing.timeout,
            degraded_latency: timing.degraded_latency,
            expected,
        };
        self.autopilot.take_off(flight);
    }

    /// Land the autopilot before the checker acts on anything else.
    pub(super) async fn land(&mut self, next_check: &mut Instant) {
        if let Some(landing) = self.autopilot.land().await {
            self.touch_down(landing, next_check);
        }
    }

    /// Take the schedule back: observe the check that differed, if one did, as the checker's
    /// own; otherwise go on where the autopilot left off.
    pub(super) fn touch_down(&mut self, landing: Landing, next_check: &mut Instant) {
        *next_check = landing.next;
        if let Some((outcome, elapsed, started)) = landing.diverged {
            self.observe(Some((outcome, elapsed)), None);
            crate::observe::logging::report_dropped_lines();
            *next_check = self.next_check_after(started);
        }
    }
}
