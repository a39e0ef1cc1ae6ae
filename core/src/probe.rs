//! The one trait a probe implements, and what a check returns.

use std::future::Future;

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
    fn target(&self) -> String;

    /// Run one check. May keep state (a connection) between calls.
    fn check(&mut self) -> impl Future<Output = Outcome>;

    /// The kind's own series after the last check (replication lag, SOA serial lag, ...),
    /// exported with the core's by `--metrics-listen` and `--metrics-textfile`. None by default.
    fn gauges(&self) -> Vec<crate::Gauge> {
        Vec::new()
    }
}
