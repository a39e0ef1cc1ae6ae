//! The one trait a probe implements, and what a check returns.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// What one check found out about the service.
///
/// The runner turns a sequence of outcomes into a hysteresis state and the state into routes;
/// a probe only reports what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The service answered as expected.
    Healthy,
    /// The service works but is worse than it should be (slow, lagging, certificate expiring):
    /// keep announcing, with a higher MED.
    Degraded {
        /// MED added to the up metric; `None` uses the operator's `--degraded-penalty`.
        penalty: Option<u32>,
        /// Why, for the log (one line, no secrets).
        reason: String,
    },
    /// The service must not receive traffic.
    Unhealthy {
        /// Why, for the log (one line, no secrets).
        reason: String,
    },
}

impl Outcome {
    /// A degraded outcome with the operator's configured penalty.
    pub fn degraded(reason: impl Into<String>) -> Self {
        Outcome::Degraded {
            penalty: None,
            reason: reason.into(),
        }
    }

    /// An unhealthy outcome.
    pub fn unhealthy(reason: impl Into<String>) -> Self {
        Outcome::Unhealthy {
            reason: reason.into(),
        }
    }

    /// True unless the outcome is `Unhealthy`: degraded still counts as serving for hysteresis.
    pub fn is_serving(&self) -> bool {
        !matches!(self, Outcome::Unhealthy { .. })
    }

    /// The reason, if any, for logs and `--once`.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Healthy => None,
            Outcome::Degraded { reason, .. } | Outcome::Unhealthy { reason } => Some(reason),
        }
    }
}

/// What one part of a check found, in a form `?` can end a check with: `Err(reason)` is
/// unhealthy (stop there), `Ok(Some(reason))` degraded (go on, keep the reason), `Ok(None)`
/// fine. A probe's steps return this; `Outcome::from` makes the verdict of the last one.
pub type Finding = Result<Option<String>, String>;

impl From<Finding> for Outcome {
    fn from(finding: Finding) -> Outcome {
        match finding {
            Ok(None) => Outcome::Healthy,
            Ok(Some(reason)) => Outcome::degraded(reason),
            Err(reason) => Outcome::unhealthy(reason),
        }
    }
}

/// One series a probe kind adds to the core's (replication lag, SOA serial lag, ...).
///
/// Exported as a gauge with the `probe` label, after every check; a probe returns none when it
/// does not know the value (the series then disappears until it does).
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    /// The series name: `exaprobe_<kind>_<what>[_<unit>]`, letters, digits and `_`.
    pub name: &'static str,
    /// One line saying what it measures.
    pub help: &'static str,
    /// The value.
    pub value: f64,
}

/// A health check of one service.
///
/// This is the only thing a probe crate implements. The runner owns everything else: the
/// schedule, the timeout (it drops the future when the check takes too long, so a check must
/// release what it holds on drop), the hysteresis, the routes and all output. A probe never
/// sleeps between checks and never writes to stdout.
#[allow(async_fn_in_trait)]
pub trait Probe {
    /// A short human description of what is checked (`GET http://127.0.0.1/health`), used in
    /// logs and in the `--once` status line. Never include a secret.
    fn describe(&self) -> String;

    /// Run one check, finishing by `deadline`. May keep state (a connection) between calls.
    ///
    /// The runner sets `deadline` at 95 % of its own hard `--timeout`, so a probe that bounds
    /// each phase by it can say which phase was slow ("timeout connecting to ...") before the
    /// runner drops the future with a generic reason.
    fn check(&mut self, deadline: Instant) -> impl Future<Output = Outcome>;

    /// A watcher of the service between checks, when the probe can hear it (a gRPC `Watch`
    /// stream, a Sentinel subscription, a kept connection): it reports through `events` and
    /// runs until the runner drops it (at exit, or when a reload replaces the probe), keeping
    /// its own reconnection and backoff. Never called with `--events off` nor by `--once`.
    /// `None` (the default): the service is polled only.
    fn watch(&self, events: crate::kit::events::Events) -> Option<Watcher> {
        let _ = events;
        None
    }

    /// The same check, runnable on a thread of its own without the async runtime, for a probe
    /// whose check is a blocking wait anyway (a program's exit). While the results stay what
    /// they were and nothing else needs the runner, it repeats this one there (its autopilot),
    /// and the runtime is not woken at every check. `None` (the default): always [`check`].
    ///
    /// [`check`]: Probe::check
    fn steady(&self) -> Option<Box<dyn SteadyCheck>> {
        None
    }

    /// The kind's own series after the last check (replication lag, SOA serial lag, ...),
    /// exported with the core's by `--metrics-listen` and `--metrics-textfile`. None by default.
    fn gauges(&self) -> Vec<Gauge> {
        Vec::new()
    }
}

/// How a check run by a [`SteadyCheck`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SteadyEnd {
    /// It came to this outcome.
    Checked(Outcome),
    /// The deadline came first; whatever it started has been ended.
    TimedOut,
    /// The stop descriptor turned readable first; whatever it started has been ended.
    Stopped,
}

/// A check that runs on a thread of its own (see [`Probe::steady`]).
pub trait SteadyCheck: Send {
    /// Run one check, blocking this thread: by `deadline` at the latest, and at once
    /// ([`SteadyEnd::Stopped`]) when `stop` turns readable.
    fn check(
        &mut self,
        deadline: std::time::Instant,
        stop: std::os::fd::BorrowedFd<'_>,
    ) -> SteadyEnd;
}

/// A probe's watcher (see [`Probe::watch`]): a task the runner spawns and drops.
pub type Watcher = std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The deadline the runner gives a check started at `started` under `--timeout`: 95 % of it,
/// leaving the probe time to report its own reason before the hard timeout.
pub(crate) fn check_deadline(started: Instant, timeout: Duration) -> Instant {
    started + timeout.mul_f64(0.95)
}
