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
    /// When this document was written (RFC 3339, UTC).
    pub(crate) updated: String,
    /// `INIT`, `RISING`, `UP`, `FALLING`, `DOWN` or `DISABLED`.
    pub(crate) state: &'static str,
    /// Since when (RFC 3339, UTC; the start time before the first change).
    pub(crate) since: String,
    /// Held down by flap damping (`--flap-limit`).
    pub(crate) flap_held: bool,
    /// The last check, once there was one.
    pub(crate) last_check: Option<LastCheck>,
    /// Successes and failures in a row (a degraded check is a success).
    pub(crate) consecutive: Consecutive,
    /// Per prefix, what ExaBGP last accepted.
    pub(crate) prefixes: BTreeMap<String, PrefixState>,
    /// Totals since start.
    pub(crate) counters: Counters,
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
}

impl StateDocument {
    /// The document as written: pretty JSON and a final newline.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}
