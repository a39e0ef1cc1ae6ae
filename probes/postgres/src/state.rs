//! What the server says about itself (role, writability, replication) in one query, and the
//! verdict against the operator's limits. Pure: no I/O here.

use std::time::Duration;

use anyhow::Result;
use exaprobe_core::Finding;

use crate::options::*;

/// What the checks compare the server's state against.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Checks {
    pub(crate) role: Role,
    pub(crate) require_writable: bool,
    pub(crate) max_lag: Option<Duration>,
    pub(crate) degraded_lag: Option<Duration>,
    pub(crate) max_lag_bytes: Option<u64>,
    pub(crate) degraded_lag_bytes: Option<u64>,
    pub(crate) require_streaming: bool,
}

impl Checks {
    pub(crate) fn need_state(&self) -> bool {
        self.role != Role::Any
            || self.require_writable
            || self.max_lag.is_some()
            || self.degraded_lag.is_some()
            || self.max_lag_bytes.is_some()
            || self.degraded_lag_bytes.is_some()
            || self.require_streaming
    }
}

/// Role, writability and replication state in one round trip (PostgreSQL 10 and later).
pub(crate) const STATE_SQL: &str = "SELECT pg_is_in_recovery(), \
     current_setting('transaction_read_only'), \
     current_setting('default_transaction_read_only'), \
     pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint, \
     EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp()))::float8, \
     (SELECT count(*) FROM pg_stat_wal_receiver), \
     (SELECT status FROM pg_stat_wal_receiver LIMIT 1)";

/// What [`STATE_SQL`] found.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ServerState {
    pub(crate) in_recovery: bool,
    pub(crate) transaction_read_only: bool,
    pub(crate) default_transaction_read_only: bool,
    /// Received minus replayed WAL; `None` when nothing was received by streaming.
    pub(crate) lag_bytes: Option<i64>,
    /// Seconds since the last replayed transaction committed on the primary.
    pub(crate) replay_age: Option<f64>,
    pub(crate) wal_receiver: bool,
    /// `None` when there is no receiver or the user may not see it.
    pub(crate) wal_receiver_status: Option<String>,
}

pub(crate) fn parse_bool(text: Option<&str>) -> bool {
    matches!(text, Some("t" | "on" | "true"))
}

impl ServerState {
    pub(crate) fn from_row(row: &tokio_postgres::SimpleQueryRow) -> Result<Self, String> {
        let get = |i: usize| row.try_get(i).map_err(|e| format!("state query: {e}"));
        Ok(ServerState {
            in_recovery: parse_bool(get(0)?),
            transaction_read_only: parse_bool(get(1)?),
            default_transaction_read_only: parse_bool(get(2)?),
            lag_bytes: get(3)?.and_then(|v| v.parse().ok()),
            replay_age: get(4)?.and_then(|v| v.parse().ok()),
            wal_receiver: get(5)?.is_some_and(|v| v != "0"),
            wal_receiver_status: get(6)?.map(str::to_string),
        })
    }

    /// Replay lag in seconds; 0 once everything received is replayed (an idle primary sends
    /// no transactions, so the age of the last one says nothing then).
    pub(crate) fn lag_seconds(&self) -> Option<f64> {
        if self.lag_bytes.is_some_and(|bytes| bytes <= 0) {
            return Some(0.0);
        }
        self.replay_age.map(|age| age.max(0.0))
    }
}

pub(crate) fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs_f64())
}

/// Compare the server state with the checks.
pub(crate) fn evaluate(state: &ServerState, checks: &Checks) -> Finding {
    match (checks.role, state.in_recovery) {
        (Role::Primary, true) => {
            return Err(String::from(
                "server is a replica (in recovery), expected a primary",
            ));
        }
        (Role::Replica, false) => {
            return Err(String::from(
                "server is a primary (not in recovery), expected a replica",
            ));
        }
        _ => {}
    }
    if checks.require_writable {
        if state.transaction_read_only {
            let why = if state.in_recovery {
                " (in recovery)"
            } else {
                ""
            };
            return Err(format!(
                "server is read-only: transaction_read_only=on{why}"
            ));
        }
        if state.default_transaction_read_only {
            return Err(String::from(
                "server is read-only: default_transaction_read_only=on",
            ));
        }
    }
    if !state.in_recovery {
        return Ok(None);
    }
    if checks.require_streaming {
        if !state.wal_receiver {
            return Err(String::from(
                "WAL receiver not running: replica is not streaming",
            ));
        }
        match state.wal_receiver_status.as_deref() {
            Some("streaming") => {}
            Some(status) => {
                return Err(format!("WAL receiver is {status}, not streaming"));
            }
            None => {
                return Err(String::from(
                    "cannot read pg_stat_wal_receiver.status: grant pg_monitor to the probe's user",
                ));
            }
        }
    }
    let bytes = state.lag_bytes.map(|b| b.max(0) as u64);
    let lag = state.lag_seconds();
    let byte_reason = |limit: u64, option: &str| match bytes {
        None => Some(format!(
            "replication lag in bytes unknown (no WAL received by streaming), {option} {limit}"
        )),
        Some(b) if b > limit => Some(format!("replication lag {b} bytes over {option} {limit}")),
        Some(_) => None,
    };
    let time_reason = |limit: Duration, option: &str| match lag {
        None => Some(format!(
            "replication lag unknown (no transaction replayed yet), {option} {}",
            seconds(limit)
        )),
        Some(s) if s > limit.as_secs_f64() => Some(format!(
            "replication lag {s:.1}s over {option} {}",
            seconds(limit)
        )),
        Some(_) => None,
    };
    let hard = checks
        .max_lag_bytes
        .and_then(|limit| byte_reason(limit, "--max-lag-bytes"))
        .or_else(|| {
            checks
                .max_lag
                .and_then(|limit| time_reason(limit, "--max-lag"))
        });
    if let Some(reason) = hard {
        return Err(reason);
    }
    checks
        .degraded_lag_bytes
        .and_then(|limit| byte_reason(limit, "--degraded-lag-bytes"))
        .or_else(|| {
            checks
                .degraded_lag
                .and_then(|limit| time_reason(limit, "--degraded-lag"))
        })
        .map_or(Ok(None), |reason| Ok(Some(reason)))
}
