//! The `--state-file` JSON document: what the probe thinks, for scripts and people (`jq`), with
//! a `version` field that changes only when a field changes meaning or goes away.

use std::collections::BTreeMap;

use serde::Serialize;

/// The schema version written in every document.
pub(crate) const VERSION: u32 = 1;

/// The whole document.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StateDocument {
    /// Schema version ([`VERSION`]).
    pub(crate) version: u32,
    /// `--name`.
    pub(crate) probe: String,
    /// The probe kind (`http`, `dns`, ...).
    pub(crate) kind: String,
    /// exaprobe's version.
    pub(crate) exaprobe_version: &'static str,
    /// The process writing it.
    pub(crate) pid: u32,
    /// When that process started (field 22 of `/proc/<pid>/stat`, clock ticks since boot): a
    /// reader checks both, so a reused pid does not pass for the writer.
    pub(crate) start_time: Option<u64>,
    /// When this document was written (RFC 3339, UTC).
    pub(crate) updated: String,
    /// `INIT`, `RISING`, `UP`, `FALLING`, `DOWN` or `DISABLED`.
    pub(crate) state: &'static str,
    /// Since when (RFC 3339, UTC; the start time before the first change).
    pub(crate) since: String,
    /// Held down by flap damping (`--flap-limit`).
    pub(crate) flap_held: bool,
    /// What the routes say, for probes that `--require` this one: `UP`, `DEGRADED`, `DOWN` or
    /// `MAINTENANCE`.
    pub(crate) health: &'static str,
    /// Why, when not `UP`.
    pub(crate) health_reason: Option<String>,
    /// The probes this one requires (`--require`), each with its state and why.
    pub(crate) required: Vec<RequiredEntry>,
    /// Every state file this probe depends on, directly or through the probes it requires
    /// (so a cycle shows).
    pub(crate) depends_on: Vec<String>,
    /// The last check, once there was one.
    pub(crate) last_check: Option<LastCheck>,
    /// The last event the service announced (`--events`), once there was one.
    pub(crate) last_event: Option<LastEvent>,
    /// Successes and failures in a row (a degraded check is a success).
    pub(crate) consecutive: Consecutive,
    /// Per prefix, what ExaBGP last accepted.
    pub(crate) prefixes: BTreeMap<String, PrefixState>,
    /// Totals since start.
    pub(crate) counters: Counters,
}

/// One required probe, as this probe sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RequiredEntry {
    /// Its state file.
    pub(crate) file: String,
    /// Its `--name` (the file until it says).
    pub(crate) probe: String,
    /// `UP`, `DEGRADED`, `DOWN` or `MAINTENANCE`, freshness applied.
    pub(crate) health: &'static str,
    /// Why, when not `UP`.
    pub(crate) reason: Option<String>,
}

/// The last check's result.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LastCheck {
    /// `healthy`, `degraded`, `unhealthy`, or `disabled` (the disable file exists, no check run).
    pub(crate) result: &'static str,
    /// Why, when not healthy.
    pub(crate) reason: Option<String>,
    /// When it ended (RFC 3339, UTC).
    pub(crate) at: String,
    /// How long it took (absent when disabled).
    pub(crate) duration_seconds: Option<f64>,
}

/// Results in a row.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Consecutive {
    /// Healthy or degraded checks in a row.
    pub(crate) successes: u64,
    /// Unhealthy checks in a row.
    pub(crate) failures: u64,
}

/// What ExaBGP holds for one prefix.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PrefixState {
    /// `announce` or `withdraw`.
    pub(crate) action: &'static str,
    /// The MED announced (absent for a withdraw).
    pub(crate) med: Option<u32>,
    /// The command ExaBGP took, with every attribute.
    pub(crate) command: String,
    /// True when ExaBGP answered `done`; false when no answer was expected or came in time.
    pub(crate) confirmed: bool,
    /// When (RFC 3339, UTC).
    pub(crate) at: String,
}

/// Totals since start.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Counters {
    /// Checks by result: `healthy`, `degraded`, `unhealthy`.
    pub(crate) checks: BTreeMap<&'static str, u64>,
    /// State changes.
    pub(crate) transitions: u64,
    /// Commands by ExaBGP's answer: `done`, `error`, `timeout`.
    pub(crate) exabgp_commands: BTreeMap<&'static str, u64>,
    /// Events by kind: `authoritative`, `suspicion`.
    pub(crate) events: BTreeMap<&'static str, u64>,
}

/// The last event the service announced between checks.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LastEvent {
    /// `authoritative` or `suspicion`.
    pub(crate) kind: &'static str,
    /// What the watcher heard (one line, no secret).
    pub(crate) reason: String,
    /// When it was taken (RFC 3339, UTC).
    pub(crate) at: String,
}

impl StateDocument {
    /// The document as written: pretty JSON and a final newline.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}
