//! The Redis check: PING must answer PONG; the node's role, a replica's link to its master
//! (up, fresh, not syncing, not too far behind), an optional canary key and an optional
//! Sentinel's view of who the master is decide the outcome.
//!
//! Built on the `redis` crate. The connection (TCP, Unix socket, or TLS through the shared
//! `exaprobe-tls` configuration) is kept across checks and dropped after any error, so the next
//! check reconnects; `--fresh-connection` connects every time. When the kept connection fails
//! before any reply (the server closed it: its idle `timeout`, a restart), the check connects
//! once more within the same deadline; a failure on a fresh connection is the verdict.

mod connect;
mod info;
mod options;
mod target;
mod watch;

use anyhow::{Context, Result};
use exaprobe_core::address::HostPort;
use exaprobe_core::kit::events::Events;
use exaprobe_core::kit::parse::{Level, Limits};
use exaprobe_core::{Finding, Outcome, Probe, Watcher};
use redis::aio::MultiplexedConnection;
use redis::{RedisConnectionInfo, RedisError};
use tokio::time::{Instant, timeout_at};

use crate::connect::Connector;
pub use info::{Info, lag_bytes};
pub use options::{RedisOptions, Role};
pub use target::{Endpoint, RedisUrl};

/// Checks one Redis node per check.
pub struct RedisProbe {
    options: RedisOptions,
    connector: Connector,
    connection: Option<MultiplexedConnection>,
    lag_bytes: Limits<u64>,
}

impl std::fmt::Debug for RedisProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisProbe")
            .field("url", &self.options.url.to_string())
            .finish_non_exhaustive()
    }
}

impl RedisProbe {
    /// Build the probe (no connection yet), refusing option combinations that could never work.
    pub fn new(options: &RedisOptions) -> Result<Self> {
        let lag_bytes = Limits::new(
            options.degraded_lag_bytes,
            options.max_lag_bytes,
            ("--degraded-lag-bytes", "--max-lag-bytes"),
            |bytes| bytes.to_string(),
        )
        .map_err(anyhow::Error::msg)?;
        let password = match (
            &options.password_file,
            std::env::var("REDISCLI_AUTH").ok(),
            &options.url.password,
        ) {
            (Some(file), _, _) => Some(exaprobe_core::secret::read_secret_file(file)?),
            (None, Some(password), _) if !password.is_empty() => Some(password),
            (None, _, Some(password)) => Some(password.clone()),
            _ => None,
        };
        exaprobe_core::secret::warn_password_on_command_line(
            "--password-file, REDISCLI_AUTH, or the URL in EXAPROBE_URL or the --config file",
        );
        let mut info = RedisConnectionInfo::default().set_db(options.url.db);
        if let Some(user) = options.username.as_ref().or(options.url.username.as_ref()) {
            info = info.set_username(user);
        }
        if let Some(password) = password {
            info = info.set_password(password);
        }
        let tls = if options.url.tls {
            options.tls.warn_if_insecure(&options.url.to_string());
            let config =
                exaprobe_tls::client_config(options.tls.verification(), &options.tls.files(true))
                    .context("TLS for rediss://")?;
            Some(std::sync::Arc::new(config))
        } else {
            None
        };
        Ok(RedisProbe {
            options: options.clone(),
            connector: Connector::new(info, tls, options.tls.tls_server_name.clone()),
            connection: None,
            lag_bytes,
        })
    }

    /// Connect to `endpoint` (TLS when the URL says so) and run the handshake (AUTH, SELECT).
    async fn connect(
        &self,
        endpoint: &Endpoint,
        deadline: Instant,
    ) -> Result<MultiplexedConnection, String> {
        self.connector.command(endpoint, deadline).await
    }

    async fn run<T: redis::FromRedisValue>(
        connection: &mut MultiplexedConnection,
        command: &redis::Cmd,
        deadline: Instant,
        what: &str,
    ) -> Result<T, String> {
        match timeout_at(deadline, command.query_async::<T>(connection)).await {
            Err(_) => Err(format!("timeout waiting for {what}")),
            Ok(Err(error)) => Err(describe(&error)),
            Ok(Ok(value)) => Ok(value),
        }
    }

    /// PING, the first command of a check. `Err((reason, dropped))`: `dropped` when the
    /// connection failed before any reply (closed, reset, broken pipe), which on a kept
    /// connection earns one retry on a fresh one.
    async fn ping(
        connection: &mut MultiplexedConnection,
        deadline: Instant,
    ) -> Result<(), (String, bool)> {
        let pong = match timeout_at(
            deadline,
            redis::cmd("PING").query_async::<String>(connection),
        )
        .await
        {
            Err(_) => return Err(("timeout waiting for PING".into(), false)),
            Ok(Err(error)) => {
                let dropped = error.is_connection_dropped() || error.is_io_error();
                return Err((describe(&error), dropped));
            }
            Ok(Ok(pong)) => pong,
        };
        if pong != "PONG" {
            return Err((format!("PING answered {pong:?}, not PONG"), false));
        }
        Ok(())
    }

    /// The checks after PING on one connection. `Err` = unhealthy, `Ok(Some)` = degraded.
    async fn judge(&self, connection: &mut MultiplexedConnection, deadline: Instant) -> Finding {
        let persistence: String = Self::run(
            connection,
            redis::cmd("INFO").arg("persistence"),
            deadline,
            "INFO",
        )
        .await?;
        if Info::parse(&persistence).number("loading") == Some(1) {
            return Err("Redis is loading its dataset (INFO loading:1)".into());
        }
        let replication = Info::parse(
            &Self::run::<String>(
                connection,
                redis::cmd("INFO").arg("replication"),
                deadline,
                "INFO",
            )
            .await?,
        );
        let is_master = replication.is_master();
        match (self.options.role, is_master) {
            (Role::Master, false) => return Err("role is replica, --role master wanted".into()),
            (Role::Replica, true) => return Err("role is master, --role replica wanted".into()),
            _ => {}
        }
        let mut degraded = None;
        if !is_master {
            degraded = self.judge_replica(&replication, deadline).await?;
        }
        if let Some((key, wanted)) = &self.options.expect_key {
            let value: Option<String> =
                Self::run(connection, redis::cmd("GET").arg(key), deadline, "GET").await?;
            match value {
                Some(value) if &value == wanted => {}
                Some(value) => return Err(format!("key {key} is {value:?}, expected {wanted:?}")),
                None => return Err(format!("key {key} does not exist")),
            }
        }
        if let Some(name) = &self.options.master_name {
            self.judge_sentinels(name, deadline).await?;
        }
        Ok(degraded)
    }

    async fn judge_replica(&self, replication: &Info, deadline: Instant) -> Finding {
        let master = format!(
            "{}:{}",
            replication.get("master_host").unwrap_or("?"),
            replication.get("master_port").unwrap_or("?")
        );
        if replication.get("master_link_status") != Some("up") {
            return Err(format!("replica's link to master {master} is down"));
        }
        if replication.number("master_sync_in_progress") == Some(1) {
            return Err(format!("replica is syncing from master {master}"));
        }
        if let Some(max) = self.options.max_link_age {
            let age = replication
                .number("master_last_io_seconds_ago")
                .unwrap_or(i64::MAX);
            if u64::try_from(age).map_or(true, |age| age > max.as_secs()) {
                return Err(format!(
                    "replica last heard from master {master} {age} s ago (max {} s)",
                    max.as_secs()
                ));
            }
        }
        if self.lag_bytes.is_empty() {
            return Ok(None);
        }
        let lag = match self.master_lag(replication, deadline).await {
            Ok(lag) => lag,
            Err(why) => return Ok(Some(format!("cannot measure the replication lag: {why}"))),
        };
        match self.lag_bytes.level(lag) {
            Level::Over => Err(format!(
                "replica is {lag} bytes behind master {master} (max {})",
                self.lag_bytes.hard().unwrap_or_default()
            )),
            Level::Degraded => Ok(Some(format!(
                "replica is {lag} bytes behind master {master}"
            ))),
            Level::Within => Ok(None),
        }
    }

    /// Bytes the replica is behind: the master's offset (asked from the master, with the same
    /// credentials and TLS) minus the replica's processed offset.
    async fn master_lag(&self, replication: &Info, deadline: Instant) -> Result<u64, String> {
        let host = replication
            .get("master_host")
            .ok_or("no master_host in INFO")?
            .to_string();
        let port: u16 = replication
            .get("master_port")
            .and_then(|p| p.parse().ok())
            .ok_or("no master_port in INFO")?;
        let replica_offset = replication
            .number("slave_repl_offset")
            .ok_or("no slave_repl_offset in INFO")?;
        let mut master = self
            .connect(&Endpoint::Tcp { host, port }, deadline)
            .await?;
        let text: String = Self::run(
            &mut master,
            redis::cmd("INFO").arg("replication"),
            deadline,
            "the master's INFO",
        )
        .await?;
        let master_offset = Info::parse(&text)
            .number("master_repl_offset")
            .ok_or("no master_repl_offset from the master")?;
        Ok(info::lag_bytes(master_offset, replica_offset))
    }

    /// Ask the Sentinels in turn (until one answers) who the master of `name` is: it must be
    /// this node.
    async fn judge_sentinels(&self, name: &str, deadline: Instant) -> Result<(), String> {
        let mut unanswered = Vec::new();
        for sentinel in &self.options.sentinel {
            match self.ask_sentinel(sentinel, name, deadline).await {
                Ok(Some((host, port))) => return self.judge_master(sentinel, name, &host, &port),
                Ok(None) => {
                    return Err(format!("sentinel {sentinel} knows no master named {name}"));
                }
                Err(reason) => unanswered.push(reason),
            }
        }
        Err(unanswered.join("; "))
    }

    /// `SENTINEL get-master-addr-by-name`: `Err` when this Sentinel did not answer.
    async fn ask_sentinel(
        &self,
        sentinel: &HostPort,
        name: &str,
        deadline: Instant,
    ) -> Result<Option<(String, String)>, String> {
        let mut connection = Connector::plain()
            .command(&sentinel_endpoint(sentinel), deadline)
            .await
            .map_err(|reason| format!("sentinel: {reason}"))?;
        let command = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(name)
            .clone();
        Self::run(&mut connection, &command, deadline, "the sentinel")
            .await
            .map_err(|reason| format!("sentinel {sentinel}: {reason}"))
    }

    /// The Sentinel's answer against this node's address.
    fn judge_master(
        &self,
        sentinel: &HostPort,
        name: &str,
        master_host: &str,
        master_port: &str,
    ) -> Result<(), String> {
        let this = self.this_address();
        if same_address(&this, master_host, master_port) {
            Ok(())
        } else {
            Err(format!(
                "sentinel {sentinel} says the master of {name} is {master_host}:{master_port}, not this node ({this})"
            ))
        }
    }

    /// This node as the Sentinels know it: `--announce-address`, else the host:port of `--url`.
    fn this_address(&self) -> String {
        self.options.announce_address.as_ref().map_or_else(
            || self.options.url.endpoint.to_string(),
            HostPort::to_string,
        )
    }
}

/// A Sentinel's address as an endpoint to connect to.
fn sentinel_endpoint(sentinel: &HostPort) -> Endpoint {
    Endpoint::Tcp {
        host: sentinel.host_string(),
        port: sentinel.port,
    }
}

/// Does `this` (HOST:PORT) name the same node as the sentinel's host and port?
fn same_address(this: &str, host: &str, port: &str) -> bool {
    let Some((this_host, this_port)) = this.rsplit_once(':') else {
        return false;
    };
    let this_host = this_host.trim_start_matches('[').trim_end_matches(']');
    if this_port != port {
        return false;
    }
    match (
        this_host.parse::<std::net::IpAddr>(),
        host.parse::<std::net::IpAddr>(),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => this_host.eq_ignore_ascii_case(host),
    }
}

/// A Redis error as a reason: the server's error codes get their meaning.
pub(crate) fn describe(error: &RedisError) -> String {
    match error.code() {
        Some("LOADING") => "Redis is loading its dataset (LOADING)".into(),
        Some("MASTERDOWN") => "replica's link to its master is down (MASTERDOWN)".into(),
        Some("BUSY") => "Redis is busy running a script (BUSY)".into(),
        Some("NOAUTH") => {
            "authentication required (NOAUTH): give --password-file or REDISCLI_AUTH".into()
        }
        Some("WRONGPASS") => {
            "authentication failed: wrong user name or password (WRONGPASS)".into()
        }
        _ if error.kind() == redis::ErrorKind::AuthenticationFailed => {
            "authentication failed: wrong user name or password (WRONGPASS)".into()
        }
        _ => {
            let text = error.to_string();
            if text.contains("WRONGPASS") || text.contains("invalid password") {
                "authentication failed: wrong user name or password (WRONGPASS)".into()
            } else if text.contains("NOAUTH") {
                "authentication required (NOAUTH): give --password-file or REDISCLI_AUTH".into()
            } else {
                text
            }
        }
    }
}

impl Probe for RedisProbe {
    /// The URL without its credentials (shown by the shared redaction rule in any case).
    fn describe(&self) -> String {
        exaprobe_core::redact::for_display(&self.options.url.to_string())
    }

    /// With `--sentinel`: the Sentinels' events about this node; without: the loss of a kept
    /// connection to the server (see the `watch` module).
    fn watch(&self, events: Events) -> Option<Watcher> {
        let watch = watch::Watch {
            connector: self.connector.clone(),
            endpoint: self.options.url.endpoint.clone(),
            sentinels: self.options.sentinel.clone(),
            master_name: self.options.master_name.clone(),
            this: self.this_address(),
        };
        Some(Box::pin(watch.run(events)))
    }

    async fn check(&mut self, deadline: Instant) -> Outcome {
        let kept = self
            .connection
            .take()
            .filter(|_| !self.options.fresh_connection);
        let reused = kept.is_some();
        let mut connection = match kept {
            Some(connection) => connection,
            None => match self.connect(&self.options.url.endpoint, deadline).await {
                Ok(connection) => connection,
                Err(reason) => return Outcome::unhealthy(reason),
            },
        };
        match Self::ping(&mut connection, deadline).await {
            Ok(()) => {}
            // The server closed the kept connection (its idle `timeout`, a restart): one more
            // try on a fresh connection, within the same deadline.
            Err((first, true)) if reused => {
                tracing::debug!(%first, "the kept connection failed; retrying once on a fresh connection");
                connection = match self.connect(&self.options.url.endpoint, deadline).await {
                    Ok(connection) => connection,
                    Err(reason) => return Outcome::unhealthy(reason),
                };
                if let Err((reason, _)) = Self::ping(&mut connection, deadline).await {
                    return Outcome::unhealthy(reason);
                }
            }
            Err((reason, _)) => return Outcome::unhealthy(reason),
        }
        let result = self.judge(&mut connection, deadline).await;
        // Keep the connection only when the node answered; any error reconnects next time.
        if result.is_ok() && !self.options.fresh_connection {
            self.connection = Some(connection);
        }
        match result {
            Ok(None) => Outcome::Healthy,
            Ok(Some(reason)) => Outcome::degraded(reason),
            Err(reason) => Outcome::unhealthy(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_compare_by_ip_or_name() {
        assert!(same_address("127.0.0.1:6379", "127.0.0.1", "6379"));
        assert!(same_address("[::1]:6379", "::1", "6379"));
        assert!(!same_address("127.0.0.1:6379", "127.0.0.1", "6380"));
        assert!(same_address("Redis-A:6379", "redis-a", "6379"));
        assert!(!same_address("nonsense", "127.0.0.1", "6379"));
    }
}
