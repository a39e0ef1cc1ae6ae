//! exaprobe-postgres: is this PostgreSQL server fit to receive traffic for its VIP?
//!
//! A read-write VIP belongs on the primary only; a read-only VIP on replicas that stream from
//! the primary and replay within a lag bound. One check connects (or reuses its connection),
//! reads the server's role, writability and replication state in one query, runs the
//! operator's query, and turns the answers into an [`Outcome`].

mod dsn;
mod errors;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod libpq;
mod options;
mod session;
mod state;
mod tls;
mod watch;

use std::fmt;
use std::time::Duration;

use anyhow::Result;
use exaprobe_core::kit::events::Events;
use exaprobe_core::kit::parse::Limits;
use exaprobe_core::{Outcome, Probe, Watcher};
use tokio::time::{Instant, timeout_at};
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::errors::*;
use crate::libpq::*;
pub use crate::options::{Dsn, PostgresOptions, Role};
use crate::session::*;
use crate::state::*;
use crate::tls::MakeRustls;

/// The PostgreSQL health check (see the crate documentation).
pub struct PostgresProbe {
    config: tokio_postgres::Config,
    tls: MakeRustls,
    checks: Checks,
    query: String,
    expect: Option<String>,
    statement_timeout: Duration,
    fresh_connection: bool,
    target: String,
    endpoint: String,
    session: Option<Session>,
    /// `--listen-channel`, for the watcher.
    listen_channel: Option<String>,
    /// Set during a check: still set at the next one means it was cancelled (timeout).
    in_flight: bool,
}

impl fmt::Debug for PostgresProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresProbe")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl PostgresProbe {
    /// Build the probe from its options; `timeout` (the check deadline) becomes the session's
    /// `statement_timeout` and the default connect timeout. Does not connect.
    pub fn new(options: &PostgresOptions, timeout: Duration) -> Result<Self> {
        Self::with_env(options, timeout, &|name| std::env::var(name).ok())
    }

    fn with_env(
        options: &PostgresOptions,
        timeout: Duration,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        // The checks compare both measures themselves (state.rs); here only the pairing rule.
        Limits::new(
            options.degraded_lag.map(|lag| lag.as_secs_f64()),
            options.max_lag.map(|lag| lag.as_secs_f64()),
            ("--degraded-lag", "--max-lag"),
            |secs| seconds(Duration::from_secs_f64(secs)),
        )
        .map_err(anyhow::Error::msg)?;
        Limits::new(
            options.degraded_lag_bytes,
            options.max_lag_bytes,
            ("--degraded-lag-bytes", "--max-lag-bytes"),
            |bytes| bytes.to_string(),
        )
        .map_err(anyhow::Error::msg)?;
        let resolved = resolve(options, timeout, env)?;
        let endpoint = endpoints(&resolved.config);
        options.tls.warn_if_insecure(&endpoint);
        let mut target = format!(
            "postgres {endpoint} user={} dbname={} sslmode={}",
            resolved.config.get_user().unwrap_or_default(),
            resolved
                .config
                .get_dbname()
                .or(resolved.config.get_user())
                .unwrap_or_default(),
            resolved.mode.name(),
        );
        if options.role != Role::Any {
            target.push_str(match options.role {
                Role::Primary => " role=primary",
                _ => " role=replica",
            });
        }
        Ok(PostgresProbe {
            config: resolved.config,
            tls: resolved.tls,
            checks: Checks {
                role: options.role,
                require_writable: options.require_writable,
                max_lag: options.max_lag,
                degraded_lag: options.degraded_lag,
                max_lag_bytes: options.max_lag_bytes,
                degraded_lag_bytes: options.degraded_lag_bytes,
                require_streaming: options.require_streaming,
            },
            query: options.query.clone(),
            expect: options.expect.clone(),
            statement_timeout: timeout,
            fresh_connection: options.fresh_connection,
            // Built from the resolved settings (no password); user and database names from the
            // DSN or PGUSER may hold anything, so the shared rule escapes them.
            target: exaprobe_core::redact::for_display(&target),
            endpoint,
            session: None,
            listen_channel: options.listen_channel.clone(),
            in_flight: false,
        })
    }

    /// Log in (by `deadline`) and set the session's `statement_timeout`.
    async fn connect(&mut self, deadline: Instant) -> Result<(), String> {
        let (client, connection) =
            match timeout_at(deadline, self.config.connect(self.tls.clone())).await {
                Err(_) => return Err(format!("timeout connecting to {}", self.endpoint)),
                Ok(connected) => connected
                    .map_err(|e| format!("connect {}: {}", self.endpoint, describe_error(&e)))?,
            };
        let task = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "postgres connection ended");
            }
        });
        let session = Session {
            client,
            driver: Driver(task),
        };
        let millis = self.statement_timeout.as_millis().max(1);
        let set = format!("SET statement_timeout = {millis}");
        let set = session.client.batch_execute(&set);
        let failure = match timeout_at(deadline, set).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!(
                "set statement_timeout on {}: {}",
                self.endpoint,
                describe_error(&e)
            )),
            Err(_) => Some(format!(
                "timeout setting statement_timeout on {}",
                self.endpoint
            )),
        };
        if let Some(reason) = failure {
            session.abandon();
            return Err(reason);
        }
        tracing::debug!(endpoint = %self.endpoint, "connected to postgres");
        self.session = Some(session);
        Ok(())
    }

    /// The state and user queries on the current session, each by `deadline`.
    async fn inspect(
        client: &Client,
        checks: &Checks,
        query: &str,
        expect: Option<&str>,
        deadline: Instant,
    ) -> Result<Outcome, Failure> {
        let mut degraded = None;
        let mut answered = false;
        if checks.need_state() {
            let messages = timeout_at(deadline, client.simple_query(STATE_SQL))
                .await
                .map_err(|_| Failure::Timeout("the state query"))?
                .map_err(|e| Failure::Error(e, false))?;
            answered = true;
            let state = match messages.iter().find_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(ServerState::from_row(row)),
                _ => None,
            }) {
                Some(Ok(state)) => state,
                Some(Err(reason)) => return Ok(Outcome::unhealthy(reason)),
                None => return Ok(Outcome::unhealthy("state query returned no row")),
            };
            tracing::debug!(?state, "postgres server state");
            match evaluate(&state, checks) {
                Err(reason) => return Ok(Outcome::unhealthy(reason)),
                Ok(found) => degraded = found.map(Outcome::degraded),
            }
        }
        let messages = timeout_at(deadline, client.simple_query(query))
            .await
            .map_err(|_| Failure::Timeout("--query"))?
            .map_err(|e| Failure::Error(e, answered))?;
        if let Some(expected) = expect {
            let first = messages.iter().find_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(row.try_get(0).ok().flatten()),
                _ => None,
            });
            match first {
                None => {
                    return Ok(Outcome::unhealthy(format!(
                        "query returned no row, expected '{expected}'"
                    )));
                }
                Some(None) => {
                    return Ok(Outcome::unhealthy(format!(
                        "query returned NULL, expected '{expected}'"
                    )));
                }
                Some(Some(value)) if value != expected => {
                    return Ok(Outcome::unhealthy(format!(
                        "query returned '{value}', expected '{expected}'"
                    )));
                }
                Some(Some(_)) => {}
            }
        }
        Ok(degraded.unwrap_or(Outcome::Healthy))
    }

    async fn run(&mut self, deadline: Instant) -> Outcome {
        if self.session.as_ref().is_some_and(|s| s.client.is_closed()) {
            self.session = None;
        }
        let reused = self.session.is_some();
        if !reused && let Err(reason) = self.connect(deadline).await {
            return Outcome::unhealthy(reason);
        }
        for attempt in 0..2 {
            let Some(session) = self.session.as_ref() else {
                break;
            };
            match Self::inspect(
                &session.client,
                &self.checks,
                &self.query,
                self.expect.as_deref(),
                deadline,
            )
            .await
            {
                Ok(outcome) => return outcome,
                Err(Failure::Timeout(what)) => {
                    // The session is in an unknown state (an answer may still come).
                    if let Some(session) = self.session.take() {
                        session.abandon();
                    }
                    return Outcome::unhealthy(format!(
                        "timeout waiting for {what} on {}",
                        self.endpoint
                    ));
                }
                Err(Failure::Error(error, answered)) if is_connection_lost(&error) => {
                    if let Some(session) = self.session.take() {
                        session.abandon();
                    }
                    // One retry, only for a kept connection that failed before this check got
                    // any answer on it (the server closed it while idle).
                    if reused && attempt == 0 && !answered {
                        tracing::debug!(%error, "reused postgres connection lost; reconnecting");
                        if let Err(reason) = self.connect(deadline).await {
                            return Outcome::unhealthy(reason);
                        }
                        continue;
                    }
                    return Outcome::unhealthy(format!(
                        "{}: {}",
                        self.endpoint,
                        describe_error(&error)
                    ));
                }
                Err(Failure::Error(error, _)) => {
                    return Outcome::unhealthy(format!("query failed: {}", describe_error(&error)));
                }
            }
        }
        Outcome::unhealthy(format!("{}: connection lost", self.endpoint))
    }
}

/// Why the queries of a check did not give a verdict.
enum Failure {
    /// An error; `true` when a query of this check had already been answered on the session
    /// (then it is not retried on a new connection).
    Error(tokio_postgres::Error, bool),
    /// The deadline came while waiting for this (the query's name).
    Timeout(&'static str),
}

impl Probe for PostgresProbe {
    fn describe(&self) -> String {
        self.target.clone()
    }

    /// A session of its own whose closing by the server (and, with `--listen-channel`, a
    /// NOTIFY) is a suspicion (see the `watch` module).
    fn watch(&self, events: Events) -> Option<Watcher> {
        let watch = watch::Watch {
            config: self.config.clone(),
            tls: self.tls.clone(),
            endpoint: self.endpoint.clone(),
            channel: self.listen_channel.clone(),
        };
        Some(Box::pin(watch.run(events)))
    }

    /// Every phase (login, `statement_timeout`, the state query, `--query`) ends by
    /// `deadline`; a timeout names the phase.
    async fn check(&mut self, deadline: Instant) -> Outcome {
        if self.in_flight {
            // The previous check was cancelled mid-way: its connection is in an unknown state.
            if let Some(session) = self.session.take() {
                session.abandon();
            }
        }
        self.in_flight = true;
        let outcome = self.run(deadline).await;
        self.in_flight = false;
        if self.fresh_connection
            && let Some(session) = self.session.take()
        {
            session.close().await;
        }
        outcome
    }
}

#[cfg(test)]
mod tests;
