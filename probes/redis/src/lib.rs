//! The Redis check: PING must answer PONG; the node's role, a replica's link to its master
//! (up, fresh, not syncing, not too far behind), an optional canary key and an optional
//! Sentinel's view of who the master is decide the outcome.
//!
//! Built on the `redis` crate. The connection (TCP, Unix socket, or TLS through the shared
//! `exaprobe-tls` configuration) is kept across checks and dropped after any error, so the next
//! check reconnects; `--fresh-connection` connects every time. When the kept connection fails
//! before any reply (the server closed it: its idle `timeout`, a restart), the check connects
//! once more within the same deadline; a failure on a fresh connection is the verdict.

mod info;
mod target;

use std::time::Duration;

use anyhow::{Context, Result};
use exaprobe_core::address::{HostPort, Syntax, parse_host_port};
use exaprobe_core::kit::parse::{Level, Limits};
use exaprobe_core::{Finding, Outcome, Probe};
use redis::aio::MultiplexedConnection;
use redis::{RedisConnectionInfo, RedisError};
use tokio::time::{Instant, timeout_at};

pub use info::{Info, lag_bytes};
pub use target::{Endpoint, RedisUrl};

/// Which role the node must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Writable master (for a write VIP).
    Master,
    /// Replica (for a read VIP).
    Replica,
    /// Either.
    Any,
}

/// Options of the Redis check.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisOptions {
    /// redis://[USER@]HOST:PORT[/DB], rediss:// for TLS, unix:///PATH[?db=N]. IPv6 as [::1].
    #[arg(
        long,
        default_value = "redis://127.0.0.1:6379",
        value_name = "URL",
        help_heading = "Redis check"
    )]
    pub url: RedisUrl,
    /// ACL user name (AUTH USER PASSWORD).
    #[arg(long, value_name = "USER", help_heading = "Redis check")]
    pub username: Option<String>,
    /// File holding the password (first line). Otherwise REDISCLI_AUTH, as redis-cli.
    #[arg(long, value_name = "FILE", help_heading = "Redis check")]
    pub password_file: Option<std::path::PathBuf>,
    /// Required role (from INFO replication).
    #[arg(long, value_enum, default_value = "any", help_heading = "Redis check")]
    pub role: Role,
    /// A replica is unhealthy when it last heard from its master longer ago than this.
    #[arg(long, value_parser = exaprobe_core::kit::parse::parse_positive_duration, value_name = "DURATION", help_heading = "Redis check")]
    pub max_link_age: Option<Duration>,
    /// A replica is unhealthy when it is more than this many bytes behind its master (units:
    /// 512kB, 16MB, 64MiB, 1m).
    #[arg(long, value_name = "BYTES", value_parser = exaprobe_core::kit::parse::parse_byte_size, help_heading = "Redis check")]
    pub max_lag_bytes: Option<u64>,
    /// A replica is degraded (worse MED) when more than this many bytes behind its master.
    #[arg(long, value_name = "BYTES", value_parser = exaprobe_core::kit::parse::parse_byte_size, help_heading = "Redis check")]
    pub degraded_lag_bytes: Option<u64>,
    /// GET KEY must return VALUE (a canary key written by your application).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value, help_heading = "Redis check")]
    pub expect_key: Option<(String, String)>,
    /// Ask this Sentinel who the master is; announce only if it is this node.
    #[arg(
        long,
        value_name = "HOST:PORT",
        value_parser = parse_address,
        requires = "master_name",
        help_heading = "Redis check"
    )]
    pub sentinel: Option<HostPort>,
    /// The master name known to the Sentinel.
    #[arg(
        long,
        value_name = "NAME",
        requires = "sentinel",
        help_heading = "Redis check"
    )]
    pub master_name: Option<String>,
    /// This node's address as the Sentinel reports it (default: the host:port of --url).
    #[arg(
        long,
        value_name = "HOST:PORT",
        value_parser = parse_address,
        requires = "sentinel",
        help_heading = "Redis check"
    )]
    pub announce_address: Option<HostPort>,
    /// Whom to trust and how much to verify for rediss:// URLs.
    #[command(flatten)]
    pub tls: exaprobe_tls::TlsArgs,
    /// A new connection for every check instead of reusing one.
    #[arg(long, help_heading = "Redis check")]
    pub fresh_connection: bool,
}

/// `--sentinel` and `--announce-address` by the shared `HOST:PORT` rule (port required, IPv6
/// in brackets).
fn parse_address(text: &str) -> Result<HostPort, String> {
    parse_host_port(text, None, Syntax::Option)
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("'{text}' is not KEY=VALUE"))
}

/// Checks one Redis node per check.
pub struct RedisProbe {
    options: RedisOptions,
    info: RedisConnectionInfo,
    tls: Option<tokio_rustls::TlsConnector>,
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
            Some(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
                config,
            )))
        } else {
            None
        };
        Ok(RedisProbe {
            options: options.clone(),
            info,
            tls,
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
        let connected = timeout_at(deadline, async {
            let (connection, driver) = match endpoint {
                Endpoint::Tcp { host, port } => {
                    let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                        .await
                        .map_err(|e| {
                            format!(
                                "connect {endpoint}: {}",
                                exaprobe_core::kit::reason::io_error(&e)
                            )
                        })?;
                    match &self.tls {
                        None => MultiplexedConnection::new_with_config(
                            &self.info,
                            stream,
                            connection_config(),
                        )
                        .await
                        .map(boxed),
                        Some(connector) => {
                            let name = self
                                .options
                                .tls
                                .tls_server_name
                                .clone()
                                .unwrap_or_else(|| host.clone());
                            let name = rustls::pki_types::ServerName::try_from(name.clone())
                                .map_err(|_| format!("'{name}' is not a valid TLS server name"))?;
                            let stream = connector.connect(name, stream).await.map_err(|e| {
                                let why = exaprobe_tls::describe_chain(&e)
                                    .unwrap_or_else(|| e.to_string());
                                format!("TLS handshake with {endpoint} failed: {why}")
                            })?;
                            MultiplexedConnection::new_with_config(
                                &self.info,
                                stream,
                                connection_config(),
                            )
                            .await
                            .map(boxed)
                        }
                    }
                }
                Endpoint::Unix(path) => {
                    let stream = tokio::net::UnixStream::connect(path).await.map_err(|e| {
                        format!(
                            "connect {}: {}",
                            path.display(),
                            exaprobe_core::kit::reason::io_error(&e)
                        )
                    })?;
                    MultiplexedConnection::new_with_config(&self.info, stream, connection_config())
                        .await
                        .map(boxed)
                }
            }
            .map_err(|e| describe(&e))?;
            tokio::spawn(driver);
            Ok::<_, String>(connection)
        })
        .await;
        connected.unwrap_or_else(|_| Err(format!("timeout connecting to {endpoint}")))
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
        if let (Some(sentinel), Some(name)) = (&self.options.sentinel, &self.options.master_name) {
            self.judge_sentinel(sentinel, name, deadline).await?;
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

    async fn judge_sentinel(
        &self,
        sentinel: &HostPort,
        name: &str,
        deadline: Instant,
    ) -> Result<(), String> {
        let host = sentinel.host_string();
        let stream = match timeout_at(
            deadline,
            tokio::net::TcpStream::connect((host.as_str(), sentinel.port)),
        )
        .await
        {
            Err(_) => return Err(format!("timeout connecting to sentinel {sentinel}")),
            Ok(Err(e)) => {
                return Err(format!(
                    "sentinel {sentinel}: {}",
                    exaprobe_core::kit::reason::io_error(&e)
                ));
            }
            Ok(Ok(stream)) => stream,
        };
        let (mut connection, driver) = MultiplexedConnection::new_with_config(
            &RedisConnectionInfo::default(),
            stream,
            connection_config(),
        )
        .await
        .map_err(|e| format!("sentinel {sentinel}: {}", describe(&e)))?;
        tokio::spawn(driver);
        let command = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(name)
            .clone();
        let address: Option<(String, String)> =
            Self::run(&mut connection, &command, deadline, "the sentinel").await?;
        let Some((master_host, master_port)) = address else {
            return Err(format!("sentinel {sentinel} knows no master named {name}"));
        };
        let this = self.options.announce_address.as_ref().map_or_else(
            || self.options.url.endpoint.to_string(),
            HostPort::to_string,
        );
        if same_address(&this, &master_host, &master_port) {
            Ok(())
        } else {
            Err(format!(
                "sentinel {sentinel} says the master of {name} is {master_host}:{master_port}, not this node ({this})"
            ))
        }
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

fn boxed<C>(
    pair: (C, impl std::future::Future<Output = ()> + Send + 'static),
) -> (
    C,
    std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) {
    (pair.0, Box::pin(pair.1))
}

/// The crate's own deadlines (500 ms per response by default) are off: the probe's deadline,
/// derived from --timeout, governs every wait.
fn connection_config() -> redis::AsyncConnectionConfig {
    redis::AsyncConnectionConfig::new()
        .set_response_timeout(None)
        .set_connection_timeout(None)
}

/// A Redis error as a reason: the server's error codes get their meaning.
fn describe(error: &RedisError) -> String {
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

    #[test]
    fn key_values() {
        assert_eq!(
            parse_key_value("canary=ok"),
            Ok(("canary".into(), "ok".into()))
        );
        assert_eq!(parse_key_value("k=a=b"), Ok(("k".into(), "a=b".into())));
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("novalue").is_err());
    }
}
