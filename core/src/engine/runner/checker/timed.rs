//! One check under the runner's `--timeout`, and what its time makes of it: shared by the
//! checker, `--once` and the autopilot's thread.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::settings::Timing;
use crate::engine::runner::wake::sleep_until;
use crate::probe::{Outcome, Probe};

/// Run one check under the timeout, turning a slow healthy answer into a degraded one.
pub(crate) async fn timed_check<P: Probe>(probe: &mut P, timing: &Timing) -> (Outcome, Duration) {
    let started = Instant::now();
    let deadline = crate::probe::check_deadline(started, timing.timeout);
    // The hard timeout on the pooled timerfd (`wake`): tokio's `timeout` would register a timer
    // and wake its driver for it at every check.
    let result = tokio::select! {
        biased;
        outcome = probe.check(deadline) => Ok(outcome),
        () = sleep_until(started + timing.timeout) => Err(()),
    };
    let elapsed = started.elapsed();
    let outcome = match result {
        Err(()) => timed_out(timing.timeout),
        Ok(outcome) => judged(outcome, elapsed, timing.degraded_latency),
    };
    (outcome, elapsed)
}

/// A check's outcome once its time is known: a healthy answer slower than
/// `--degraded-latency` is degraded.
pub(super) fn judged(
    outcome: Outcome,
    elapsed: Duration,
    degraded_latency: Option<Duration>,
) -> Outcome {
    match (outcome, degraded_latency) {
        (Outcome::Healthy, Some(limit)) if elapsed > limit => Outcome::degraded(format!(
            "slow: answered in {}, over --degraded-latency {}",
            millis(elapsed),
            millis(limit)
        )),
        (outcome, _) => outcome,
    }
}

/// The outcome of a check the runner's `--timeout` ended.
pub(super) fn timed_out(timeout: Duration) -> Outcome {
    Outcome::unhealthy(format!("timed out after {}", millis(timeout)))
}

/// `1234 ms`, for reasons and logs.
pub(crate) fn millis(duration: Duration) -> String {
    format!("{} ms", duration.as_millis())
}

/// A random delay in `0..=max` (no extra crate: std's randomly keyed hasher is enough here).
pub(super) fn splay(max: Duration) -> Duration {
    use std::hash::{BuildHasher, RandomState};
    if max.is_zero() {
        return Duration::ZERO;
    }
    let random = RandomState::new().hash_one(std::time::SystemTime::now());
    max.mul_f64((random % 10_000) as f64 / 10_000.0)
}
