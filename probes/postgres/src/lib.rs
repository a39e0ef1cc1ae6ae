//! exaprobe-postgres: is this PostgreSQL server fit to receive traffic for its VIP?
//!
//! A read-write VIP belongs on the primary only; a read-only VIP on replicas that stream from
//! the primary and replay within a lag bound. One check connects (or reuses its connection),
//! reads the server's role, writability and replication state in one query, runs the
//! operator's query, and turns the answers into an [`Outcome`].

mod dsn;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod tls;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use exaprobe_core::duration::parse_positive_duration;
use exaprobe_core::{Outcome, Probe};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, SimpleQueryMessage};

use exaprobe_tls::{TlsFiles, Verification};

use crate::tls::MakeRustls;

/// A libpq connection string (URL or `key=value`), kept redacted in debug output.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Dsn(String);

impl Dsn {
    /// The string as written (may contain a password: never log it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dsn({:?})", dsn::redact(&self.0))
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&dsn::redact(&self.0))
    }
}

/// clap value parser for `--dsn`: checks the syntax early, and unlike a plain function parser
/// never echoes the raw value (it may hold a password) in its error.
#[derive(Debug, Clone, Copy)]
struct DsnParser;

/// Syntax check of a DSN, with the redacted value in the error: no control character inside a
/// value (it would reach the target line), no unbracketed IPv6 address with a port in a URL.
fn validate_dsn(text: &str) -> Result<(), String> {
    dsn::check_values(text).map_err(|e| format!("'{}': {e}", dsn::redact(text)))?;
    let (clean, _) =
        dsn::split_extras(text).map_err(|e| format!("'{}': {e}", dsn::redact(text)))?;
    if !clean.trim().is_empty() {
        clean
            .parse::<tokio_postgres::Config>()
            .map_err(|e| format!("'{}': {}", dsn::redact(text), error_chain(&e)))?;
    }
    Ok(())
}

impl clap::builder::TypedValueParser for DsnParser {
    type Value = Dsn;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Dsn, clap::Error> {
        let invalid = |message: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for '--dsn': {message}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| invalid("not valid UTF-8".to_string()))?;
        validate_dsn(text).map_err(invalid)?;
        Ok(Dsn(text.to_string()))
    }
}

/// An error and its causes on one line (tokio-postgres' Display omits the cause).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text.replace('\n', " ")
}

/// The server role a check requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Not in recovery (`pg_is_in_recovery()` false): the server accepting writes.
    Primary,
    /// In recovery: a hot standby.
    Replica,
    /// Either.
    Any,
}

fn parse_query(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("the query must not be empty".into());
    }
    Ok(text.to_string())
}

/// Options of the PostgreSQL check (flattened into the binary's command line).
#[derive(Debug, Clone, clap::Args)]
pub struct PostgresOptions {
    /// libpq connection string, URL (postgresql://user@host:5432/db?sslmode=verify-full) or
    /// key=value (host=/var/run/postgresql dbname=app). Keys it leaves unset come from PGHOST,
    /// PGPORT, PGUSER, PGDATABASE, PGSSLMODE, PGCONNECT_TIMEOUT, PGAPPNAME. Put no password here:
    /// use --password-file, PGPASSWORD or a .pgpass file.
    #[arg(long, default_value = "", value_parser = DsnParser, hide_default_value = true, hide_env_values = true, help_heading = "Postgres check")]
    pub dsn: Dsn,

    /// File holding the password (first line); warned about when readable by group or others.
    /// Takes precedence over the DSN, PGPASSWORD and PGPASSFILE/.pgpass.
    #[arg(long, value_name = "PATH", help_heading = "Postgres check")]
    pub password_file: Option<PathBuf>,

    /// PEM bundle of CAs trusted for the server certificate (libpq's sslrootcert); needed by
    /// sslmode=verify-ca and verify-full, and makes sslmode=require verify the chain too.
    #[arg(long, value_name = "PATH", help_heading = "Postgres check")]
    pub ca_file: Option<PathBuf>,

    /// PEM client certificate (chain) for certificate authentication (libpq's sslcert).
    #[arg(
        long,
        value_name = "PATH",
        requires = "client_key",
        help_heading = "Postgres check"
    )]
    pub client_cert: Option<PathBuf>,

    /// PEM private key of --client-cert (libpq's sslkey), unencrypted.
    #[arg(
        long,
        value_name = "PATH",
        requires = "client_cert",
        help_heading = "Postgres check"
    )]
    pub client_key: Option<PathBuf>,

    /// SQL run on every check (simple query protocol, so it also works through PgBouncer).
    #[arg(long, default_value = "SELECT 1", value_parser = parse_query, help_heading = "Postgres check")]
    pub query: String,

    /// Expected text of the first column of the first row returned by --query.
    #[arg(long, value_name = "VALUE", help_heading = "Postgres check")]
    pub expect: Option<String>,

    /// Required role: primary (not in recovery), replica (in recovery) or any.
    #[arg(long, value_enum, default_value_t = Role::Any, help_heading = "Postgres check")]
    pub role: Role,

    /// Require new transactions to be read-write (transaction_read_only and
    /// default_transaction_read_only off), which a primary set read-only is not.
    #[arg(long, help_heading = "Postgres check")]
    pub require_writable: bool,

    /// On a replica, unhealthy when replay is this far behind in time (now minus the last
    /// replayed transaction, 0 when everything received is replayed).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, help_heading = "Postgres check")]
    pub max_lag: Option<Duration>,

    /// On a replica, degraded (higher MED) when replay is this far behind in time.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, help_heading = "Postgres check")]
    pub degraded_lag: Option<Duration>,

    /// On a replica, unhealthy when received WAL not yet replayed exceeds this size
    /// (bytes, or with a unit: 512kB, 16MB, 1GB, 64MiB; kB, MB, GB are 1024-based as in PostgreSQL).
    #[arg(long, value_name = "SIZE", value_parser = exaprobe_core::size::parse_byte_size, help_heading = "Postgres check")]
    pub max_lag_bytes: Option<u64>,

    /// On a replica, degraded when received WAL not yet replayed exceeds this size.
    #[arg(long, value_name = "SIZE", value_parser = exaprobe_core::size::parse_byte_size, help_heading = "Postgres check")]
    pub degraded_lag_bytes: Option<u64>,

    /// On a replica, unhealthy unless its WAL receiver is streaming from the upstream server
    /// (pg_stat_wal_receiver.status; needs superuser, pg_monitor or pg_read_all_stats).
    #[arg(long, help_heading = "Postgres check")]
    pub require_streaming: bool,

    /// Open a new connection for every check instead of reusing one (tests the whole login
    /// path, costs a backend fork per check).
    #[arg(long, help_heading = "Postgres check")]
    pub fresh_connection: bool,
}

/// What the checks compare the server's state against.
#[derive(Debug, Clone, PartialEq)]
struct Checks {
    role: Role,
    require_writable: bool,
    max_lag: Option<Duration>,
    degraded_lag: Option<Duration>,
    max_lag_bytes: Option<u64>,
    degraded_lag_bytes: Option<u64>,
    require_streaming: bool,
}

impl Checks {
    fn need_state(&self) -> bool {
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
const STATE_SQL: &str = "SELECT pg_is_in_recovery(), \
     current_setting('transaction_read_only'), \
     current_setting('default_transaction_read_only'), \
     pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint, \
     EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp()))::float8, \
     (SELECT count(*) FROM pg_stat_wal_receiver), \
     (SELECT status FROM pg_stat_wal_receiver LIMIT 1)";

/// What [`STATE_SQL`] found.
#[derive(Debug, Clone, PartialEq, Default)]
struct ServerState {
    in_recovery: bool,
    transaction_read_only: bool,
    default_transaction_read_only: bool,
    /// Received minus replayed WAL; `None` when nothing was received by streaming.
    lag_bytes: Option<i64>,
    /// Seconds since the last replayed transaction committed on the primary.
    replay_age: Option<f64>,
    wal_receiver: bool,
    /// `None` when there is no receiver or the user may not see it.
    wal_receiver_status: Option<String>,
}

fn parse_bool(text: Option<&str>) -> bool {
    matches!(text, Some("t" | "on" | "true"))
}

impl ServerState {
    fn from_row(row: &tokio_postgres::SimpleQueryRow) -> Result<Self, String> {
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
    fn lag_seconds(&self) -> Option<f64> {
        if self.lag_bytes.is_some_and(|bytes| bytes <= 0) {
            return Some(0.0);
        }
        self.replay_age.map(|age| age.max(0.0))
    }
}

fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs_f64())
}

/// Compare the server state with the checks: `None` when healthy.
fn evaluate(state: &ServerState, checks: &Checks) -> Option<Outcome> {
    match (checks.role, state.in_recovery) {
        (Role::Primary, true) => {
            return Some(Outcome::unhealthy(
                "server is a replica (in recovery), expected a primary",
            ));
        }
        (Role::Replica, false) => {
            return Some(Outcome::unhealthy(
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
            return Some(Outcome::unhealthy(format!(
                "server is read-only: transaction_read_only=on{why}"
            )));
        }
        if state.default_transaction_read_only {
            return Some(Outcome::unhealthy(
                "server is read-only: default_transaction_read_only=on",
            ));
        }
    }
    if !state.in_recovery {
        return None;
    }
    if checks.require_streaming {
        if !state.wal_receiver {
            return Some(Outcome::unhealthy(
                "WAL receiver not running: replica is not streaming",
            ));
        }
        match state.wal_receiver_status.as_deref() {
            Some("streaming") => {}
            Some(status) => {
                return Some(Outcome::unhealthy(format!(
                    "WAL receiver is {status}, not streaming"
                )));
            }
            None => {
                return Some(Outcome::unhealthy(
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
        return Some(Outcome::unhealthy(reason));
    }
    checks
        .degraded_lag_bytes
        .and_then(|limit| byte_reason(limit, "--degraded-lag-bytes"))
        .or_else(|| {
            checks
                .degraded_lag
                .and_then(|limit| time_reason(limit, "--degraded-lag"))
        })
        .map(Outcome::degraded)
}

/// A one-line reason for a server error, distinct per failure class (SQLSTATE).
fn describe_db_error(code: &str, message: &str) -> String {
    let class = match code {
        "53300" => "too many connections",
        "57P03" if message.contains("starting up") => "server is starting up",
        "57P03" if message.contains("shutting down") => "server is shutting down",
        "57P03" if message.contains("recovery mode") => "server is in crash recovery",
        "57P03" if message.contains("not yet accepting") => {
            "server is not accepting connections yet (recovery not consistent)"
        }
        "57P03" => "server is not accepting connections",
        "57P01" => "connection terminated by the server (shutdown or pg_terminate_backend)",
        "57P02" => "server crashed (connection terminated by crash shutdown)",
        "28P01" | "28000" => "authentication failed",
        "3D000" => "database does not exist",
        "57014" => "query canceled (statement_timeout)",
        "25006" => "server is read-only",
        _ => return format!("server error {code}: {message}"),
    };
    format!("{class} ({code}: {message})")
}

/// Errors after which the connection is useless: reconnect rather than report.
fn is_connection_lost(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        None => error.as_db_error().is_none(),
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || code.starts_with("57P")
        }
    }
}

fn describe_error(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return describe_db_error(db.code().code(), db.message());
    }
    if let Some(why) = exaprobe_tls::describe_chain(error) {
        return format!("TLS handshake failed: {why}");
    }
    let text = error_chain(error);
    if text.contains("password missing") {
        return "authentication failed: the server asks for a password and none is configured \
                (--password-file, PGPASSWORD or .pgpass)"
            .to_string();
    }
    text
}

/// The task driving a connection, stopped when dropped so that no connection outlives the
/// probe or a cancelled check.
struct Driver(tokio::task::JoinHandle<()>);

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An open connection and the task driving it.
struct Session {
    client: Client,
    driver: Driver,
}

impl Session {
    /// Close politely: the driver sends Terminate; give it a moment to do so, then stop it.
    async fn close(self) {
        let Session { client, mut driver } = self;
        drop(client);
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut driver.0).await;
    }

    /// Drop a connection in an unknown state (a check was cancelled mid-query).
    fn abandon(self) {
        drop(self);
    }
}

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

/// The resolved sslmode (libpq's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn parse(text: &str, source: &str) -> Result<Self> {
        Ok(match text {
            "disable" => Mode::Disable,
            // libpq's allow (plain first, TLS if the server insists) is treated as prefer.
            "allow" | "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            other => anyhow::bail!(
                "{source}: invalid sslmode '{other}' (use disable, prefer, require, verify-ca or verify-full)"
            ),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Disable => "disable",
            Mode::Prefer => "prefer",
            Mode::Require => "require",
            Mode::VerifyCa => "verify-ca",
            Mode::VerifyFull => "verify-full",
        }
    }
}

/// The connection settings after DSN, options and environment were combined.
struct Resolved {
    config: tokio_postgres::Config,
    tls: MakeRustls,
    mode: Mode,
}

fn home_file(env: &dyn Fn(&str) -> Option<String>, relative: &str) -> Option<PathBuf> {
    env("HOME").map(|home| Path::new(&home).join(relative))
}

fn resolve(
    options: &PostgresOptions,
    timeout: Duration,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved> {
    let raw = options.dsn.expose();
    let (clean, extras) =
        dsn::split_extras(raw).map_err(|e| anyhow::anyhow!("--dsn {}: {e}", dsn::redact(raw)))?;
    let mut config = if clean.trim().is_empty() {
        tokio_postgres::Config::new()
    } else {
        clean
            .parse::<tokio_postgres::Config>()
            .map_err(|e| anyhow::anyhow!("--dsn {}: {}", dsn::redact(raw), error_chain(&e)))?
    };
    exaprobe_core::secret::warn_password_on_command_line(
        "--password-file, PGPASSWORD, a .pgpass file, or the DSN in EXAPROBE_DSN or the --config file",
    );

    if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
        let hosts = env("PGHOST").filter(|h| !h.is_empty()).unwrap_or_else(|| {
            if Path::new("/var/run/postgresql").is_dir() {
                "/var/run/postgresql".to_string()
            } else {
                "localhost".to_string()
            }
        });
        for host in hosts.split(',') {
            if host.starts_with('/') {
                config.host_path(host);
            } else {
                config.host(host);
            }
        }
    }
    if config.get_ports().is_empty()
        && let Some(ports) = env("PGPORT").filter(|p| !p.is_empty())
    {
        for port in ports.split(',') {
            let port: u16 = port
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("PGPORT: invalid port '{port}'"))?;
            config.port(port);
        }
    }
    if config.get_user().is_none() {
        let user = env("PGUSER")
            .or_else(|| env("USER"))
            .or_else(|| env("LOGNAME"))
            .unwrap_or_else(|| "postgres".to_string());
        config.user(user);
    }
    if config.get_dbname().is_none()
        && let Some(db) = env("PGDATABASE").filter(|d| !d.is_empty())
    {
        config.dbname(db);
    }
    if config.get_application_name().is_none() {
        config.application_name(env("PGAPPNAME").unwrap_or_else(|| "exaprobe".to_string()));
    }
    if config.get_connect_timeout().is_none() {
        match env("PGCONNECT_TIMEOUT").filter(|t| !t.is_empty()) {
            Some(text) => {
                let secs: u64 = text.trim().parse().map_err(|_| {
                    anyhow::anyhow!("PGCONNECT_TIMEOUT: invalid number of seconds '{text}'")
                })?;
                if secs > 0 {
                    // libpq treats values below 2 as 2.
                    config.connect_timeout(Duration::from_secs(secs.max(2)));
                }
            }
            None => {
                config.connect_timeout(timeout);
            }
        }
    }

    // Password: --password-file, then the DSN, then PGPASSWORD, then .pgpass.
    if let Some(path) = &options.password_file {
        let password = exaprobe_core::secret::read_secret_file(path).context("--password-file")?;
        config.password(password);
    } else if config.get_password().is_none() {
        if let Some(password) = env("PGPASSWORD").filter(|p| !p.is_empty()) {
            config.password(password);
        } else {
            let passfile = extras
                .passfile
                .clone()
                .or_else(|| env("PGPASSFILE"))
                .map(PathBuf::from)
                .or_else(|| home_file(env, ".pgpass"));
            if let Some(password) = passfile.and_then(|path| read_pgpass(&path, &config)) {
                config.password(password);
            }
        }
    }

    let all_unix = config.get_hostaddrs().is_empty()
        && config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, Host::Unix(_)));
    let mode = match &extras.sslmode {
        Some(text) => Mode::parse(text, "--dsn sslmode")?,
        None => match env("PGSSLMODE").filter(|m| !m.is_empty()) {
            Some(text) => Mode::parse(&text, "PGSSLMODE")?,
            None => Mode::Prefer,
        },
    };
    // PostgreSQL has no TLS on Unix sockets; libpq ignores sslmode there.
    let effective = if all_unix { Mode::Disable } else { mode };
    config.ssl_mode(match effective {
        Mode::Disable => SslMode::Disable,
        Mode::Prefer => SslMode::Prefer,
        _ => SslMode::Require,
    });

    let pick = |option: &Option<PathBuf>, dsn_value: &Option<String>, var: &str| {
        option
            .clone()
            .or_else(|| dsn_value.clone().map(PathBuf::from))
            .or_else(|| env(var).filter(|v| !v.is_empty()).map(PathBuf::from))
    };
    let ca_file = pick(&options.ca_file, &extras.sslrootcert, "PGSSLROOTCERT");
    let client_cert = pick(&options.client_cert, &extras.sslcert, "PGSSLCERT");
    let client_key = pick(&options.client_key, &extras.sslkey, "PGSSLKEY");
    let verification = match effective {
        Mode::VerifyFull => Verification::Full,
        Mode::VerifyCa => Verification::Chain,
        // As libpq: require with an explicit root certificate verifies the chain.
        Mode::Require if ca_file.is_some() => Verification::Chain,
        _ => Verification::None,
    };
    let files = if effective == Mode::Disable {
        TlsFiles::default()
    } else {
        TlsFiles {
            ca_file: ca_file.as_deref(),
            client_cert: client_cert.as_deref(),
            client_key: client_key.as_deref(),
            // libpq never falls back to the system's CAs: verify-ca/full need sslrootcert.
            system_roots: false,
            server_name: None,
        }
    };
    let tls = MakeRustls::new(std::sync::Arc::new(exaprobe_tls::client_config(
        verification,
        &files,
    )?));
    Ok(Resolved { config, tls, mode })
}

fn read_pgpass(path: &Path, config: &tokio_postgres::Config) -> Option<String> {
    use exaprobe_core::files::{FileError, READ_TIMEOUT, SECRET_CAP, open_regular, read_opened};
    use std::os::unix::fs::PermissionsExt;
    // Only a small regular file: a FIFO or a device there must not hang or flood the probe.
    let (file, metadata) = match open_regular(path) {
        Ok(opened) => opened,
        Err(FileError::Missing) => return None,
        Err(error) => {
            tracing::warn!(file = %path.display(), %error, "cannot read password file");
            return None;
        }
    };
    if metadata.permissions().mode() & 0o077 != 0 {
        // libpq ignores such a file too.
        tracing::warn!(
            file = %path.display(),
            "password file has group or world access; permissions should be 0600 or less: ignored"
        );
        return None;
    }
    let text = match read_opened(file, &metadata, SECRET_CAP, READ_TIMEOUT)
        .map_err(|error| error.to_string())
        .and_then(|bytes| String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string()))
    {
        Ok(text) => text,
        Err(error) => {
            tracing::warn!(file = %path.display(), %error, "cannot read password file");
            return None;
        }
    };
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => config
            .get_hostaddrs()
            .first()
            .map(ToString::to_string)
            .unwrap_or_default(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or_default();
    let database = config.get_dbname().unwrap_or(user);
    dsn::pgpass_lookup(&text, &host, port, database, user)
}

/// `host:port` pairs (or socket paths) for reasons and the target line.
fn endpoints(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let port = |i: usize| {
        ports
            .get(i)
            .or_else(|| ports.first())
            .copied()
            .unwrap_or(5432)
    };
    let hosts: Vec<String> = if config.get_hosts().is_empty() {
        config
            .get_hostaddrs()
            .iter()
            .map(ToString::to_string)
            .collect()
    } else {
        config
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            })
            .collect()
    };
    hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            if host.starts_with('/') {
                format!("{host}/.s.PGSQL.{}", port(i))
            } else if host.contains(':') {
                format!("[{host}]:{}", port(i))
            } else {
                format!("{host}:{}", port(i))
            }
        })
        .collect::<Vec<_>>()
        .join(",")
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
        if let (Some(soft), Some(hard)) = (options.degraded_lag, options.max_lag)
            && soft >= hard
        {
            anyhow::bail!(
                "--degraded-lag ({}) must be below --max-lag ({})",
                seconds(soft),
                seconds(hard)
            );
        }
        if let (Some(soft), Some(hard)) = (options.degraded_lag_bytes, options.max_lag_bytes)
            && soft >= hard
        {
            anyhow::bail!("--degraded-lag-bytes ({soft}) must be below --max-lag-bytes ({hard})");
        }
        let resolved = resolve(options, timeout, env)?;
        let endpoint = endpoints(&resolved.config);
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
            in_flight: false,
        })
    }

    async fn connect(&mut self) -> Result<(), String> {
        let (client, connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|e| format!("connect {}: {}", self.endpoint, describe_error(&e)))?;
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
        if let Err(e) = session
            .client
            .batch_execute(&format!("SET statement_timeout = {millis}"))
            .await
        {
            session.abandon();
            return Err(format!(
                "set statement_timeout on {}: {}",
                self.endpoint,
                describe_error(&e)
            ));
        }
        tracing::debug!(endpoint = %self.endpoint, "connected to postgres");
        self.session = Some(session);
        Ok(())
    }

    /// The state and user queries on the current session. The error says whether a query of
    /// this check had already been answered (then it is not retried on a new connection).
    async fn inspect(
        client: &Client,
        checks: &Checks,
        query: &str,
        expect: Option<&str>,
    ) -> Result<Outcome, (tokio_postgres::Error, bool)> {
        let mut degraded = None;
        let mut answered = false;
        if checks.need_state() {
            let messages = client
                .simple_query(STATE_SQL)
                .await
                .map_err(|e| (e, false))?;
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
                Some(outcome @ Outcome::Unhealthy { .. }) => return Ok(outcome),
                other => degraded = other,
            }
        }
        let messages = client
            .simple_query(query)
            .await
            .map_err(|e| (e, answered))?;
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

    async fn run(&mut self) -> Outcome {
        if self.session.as_ref().is_some_and(|s| s.client.is_closed()) {
            self.session = None;
        }
        let reused = self.session.is_some();
        if !reused && let Err(reason) = self.connect().await {
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
            )
            .await
            {
                Ok(outcome) => return outcome,
                Err((error, answered)) if is_connection_lost(&error) => {
                    if let Some(session) = self.session.take() {
                        session.abandon();
                    }
                    // One retry, only for a kept connection that failed before this check got
                    // any answer on it (the server closed it while idle).
                    if reused && attempt == 0 && !answered {
                        tracing::debug!(%error, "reused postgres connection lost; reconnecting");
                        if let Err(reason) = self.connect().await {
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
                Err((error, _)) => {
                    return Outcome::unhealthy(format!("query failed: {}", describe_error(&error)));
                }
            }
        }
        Outcome::unhealthy(format!("{}: connection lost", self.endpoint))
    }
}

impl Probe for PostgresProbe {
    fn describe(&self) -> String {
        self.target.clone()
    }

    async fn check(&mut self, _deadline: tokio::time::Instant) -> Outcome {
        if self.in_flight {
            // The previous check was cancelled mid-way: its connection is in an unknown state.
            if let Some(session) = self.session.take() {
                session.abandon();
            }
        }
        self.in_flight = true;
        let outcome = self.run().await;
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
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        probe: PostgresOptions,
    }

    fn options(args: &[&str]) -> PostgresOptions {
        Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .unwrap()
            .probe
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn byte_sizes_use_the_shared_parser() {
        assert_eq!(
            options(&["--max-lag-bytes", "16MB"]).max_lag_bytes,
            Some(16 << 20)
        );
        assert_eq!(
            options(&["--degraded-lag-bytes", "512kB"]).degraded_lag_bytes,
            Some(512 * 1024)
        );
        assert_eq!(
            options(&["--max-lag-bytes", "1048576"]).max_lag_bytes,
            Some(1_048_576)
        );
    }

    #[test]
    fn bad_options_are_rejected_with_their_value() {
        let err = Cli::try_parse_from(["x", "--max-lag-bytes", "lots"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("'lots'"), "{err}");
        let err = Cli::try_parse_from(["x", "--dsn", "host='x password=s3cret"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unterminated"), "{err}");
        let err = Cli::try_parse_from(["x", "--dsn", "postgres://u:s3cret@h/db?nonsense=1"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("nonsense") && !err.contains("s3cret"), "{err}");
        assert!(Cli::try_parse_from(["x", "--query", " "]).is_err());
        assert!(Cli::try_parse_from(["x", "--client-cert", "/c"]).is_err());
        assert!(Cli::try_parse_from(["x", "--role", "leader"]).is_err());
        let err = PostgresProbe::with_env(
            &options(&["--degraded-lag", "5", "--max-lag", "2"]),
            Duration::from_secs(1),
            &no_env,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("--degraded-lag"), "{err}");
        let err = PostgresProbe::with_env(
            &options(&["--dsn", "host=h sslmode=verify-full"]),
            Duration::from_secs(1),
            &no_env,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("--ca-file"), "{err}");
        let err = PostgresProbe::with_env(
            &options(&["--dsn", "host=h sslmode=maybe"]),
            Duration::from_secs(1),
            &no_env,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("'maybe'"), "{err}");
    }

    #[test]
    fn dsn_debug_is_redacted() {
        let opts = options(&["--dsn", "postgresql://app:s3cret@db/app"]);
        assert!(!format!("{opts:?}").contains("s3cret"));
        let probe = PostgresProbe::with_env(&opts, Duration::from_secs(1), &no_env).unwrap();
        assert!(!probe.describe().contains("s3cret"));
        assert!(!format!("{probe:?}").contains("s3cret"));
        assert_eq!(
            probe.describe(),
            "postgres db:5432 user=app dbname=app sslmode=prefer"
        );
    }

    #[test]
    fn environment_fills_what_the_dsn_leaves_unset() {
        let env = |name: &str| {
            Some(
                match name {
                    "PGHOST" => "/run/pg,db2",
                    "PGPORT" => "5433",
                    "PGUSER" => "envuser",
                    "PGDATABASE" => "envdb",
                    "PGSSLMODE" => "require",
                    "PGAPPNAME" => "checker",
                    "PGPASSWORD" => "envpw",
                    "PGCONNECT_TIMEOUT" => "1",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let probe = PostgresProbe::with_env(&options(&[]), Duration::from_secs(3), &env).unwrap();
        assert_eq!(
            probe.describe(),
            "postgres /run/pg/.s.PGSQL.5433,db2:5433 user=envuser dbname=envdb sslmode=require"
        );
        assert_eq!(probe.config.get_application_name(), Some("checker"));
        assert_eq!(probe.config.get_password(), Some(&b"envpw"[..]));
        assert_eq!(
            probe.config.get_connect_timeout(),
            Some(&Duration::from_secs(2))
        );
        assert_eq!(probe.config.get_ssl_mode(), SslMode::Require);

        let probe = PostgresProbe::with_env(
            &options(&[
                "--dsn",
                "postgresql://u@[::1]:7/db?application_name=mine&sslmode=disable",
            ]),
            Duration::from_secs(3),
            &env,
        )
        .unwrap();
        assert_eq!(
            probe.describe(),
            "postgres [::1]:7 user=u dbname=db sslmode=disable"
        );
        assert_eq!(probe.config.get_application_name(), Some("mine"));
        assert_eq!(
            probe.config.get_connect_timeout(),
            Some(&Duration::from_secs(2))
        );

        let probe = PostgresProbe::with_env(
            &options(&["--dsn", "host=/sock sslmode=require", "--role", "primary"]),
            Duration::from_secs(3),
            &no_env,
        )
        .unwrap();
        assert_eq!(
            probe.config.get_ssl_mode(),
            SslMode::Disable,
            "no TLS on Unix sockets"
        );
        assert_eq!(probe.config.get_application_name(), Some("exaprobe"));
        assert_eq!(
            probe.config.get_connect_timeout(),
            Some(&Duration::from_secs(3))
        );
        assert!(
            probe.describe().ends_with("sslmode=require role=primary"),
            "{}",
            probe.describe()
        );
    }

    #[test]
    fn password_file_and_pgpass() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let pgpass = dir.path().join("pgpass");
        std::fs::write(&pgpass, "h:5432:db:u:frompass\n").unwrap();
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
        let pgpass_text = pgpass.display().to_string();
        let env = |name: &str| (name == "PGPASSFILE").then(|| pgpass_text.clone());
        let probe = PostgresProbe::with_env(
            &options(&["--dsn", "host=h user=u dbname=db"]),
            Duration::from_secs(1),
            &env,
        )
        .unwrap();
        assert_eq!(probe.config.get_password(), Some(&b"frompass"[..]));
        // World-readable .pgpass files are ignored, as libpq does.
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
        let probe = PostgresProbe::with_env(
            &options(&["--dsn", "host=h user=u dbname=db"]),
            Duration::from_secs(1),
            &env,
        )
        .unwrap();
        assert_eq!(probe.config.get_password(), None);

        let file = dir.path().join("pw");
        std::fs::write(&file, "fromfile\n").unwrap();
        let args = [
            "--dsn",
            "host=h user=u dbname=db password=indsn",
            "--password-file",
            file.to_str().unwrap(),
        ];
        let probe = PostgresProbe::with_env(&options(&args), Duration::from_secs(1), &env).unwrap();
        assert_eq!(probe.config.get_password(), Some(&b"fromfile"[..]));
        let err = PostgresProbe::with_env(
            &options(&["--password-file", "/nonexistent/pw"]),
            Duration::from_secs(1),
            &no_env,
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("--password-file"), "{err:#}");
    }

    fn replica() -> ServerState {
        ServerState {
            in_recovery: true,
            transaction_read_only: true,
            default_transaction_read_only: false,
            lag_bytes: Some(0),
            replay_age: Some(3600.0),
            wal_receiver: true,
            wal_receiver_status: Some("streaming".into()),
        }
    }

    fn checks() -> Checks {
        Checks {
            role: Role::Any,
            require_writable: false,
            max_lag: None,
            degraded_lag: None,
            max_lag_bytes: None,
            degraded_lag_bytes: None,
            require_streaming: false,
        }
    }

    #[test]
    fn roles_and_writability() {
        let primary = ServerState::default();
        assert_eq!(
            evaluate(
                &primary,
                &Checks {
                    role: Role::Primary,
                    ..checks()
                }
            ),
            None
        );
        assert_eq!(
            evaluate(
                &replica(),
                &Checks {
                    role: Role::Primary,
                    ..checks()
                }
            ),
            Some(Outcome::unhealthy(
                "server is a replica (in recovery), expected a primary"
            ))
        );
        assert_eq!(
            evaluate(
                &primary,
                &Checks {
                    role: Role::Replica,
                    ..checks()
                }
            ),
            Some(Outcome::unhealthy(
                "server is a primary (not in recovery), expected a replica"
            ))
        );
        let read_only = ServerState {
            default_transaction_read_only: true,
            ..ServerState::default()
        };
        assert_eq!(
            evaluate(
                &read_only,
                &Checks {
                    require_writable: true,
                    ..checks()
                }
            ),
            Some(Outcome::unhealthy(
                "server is read-only: default_transaction_read_only=on"
            ))
        );
        assert_eq!(
            evaluate(
                &read_only,
                &Checks {
                    role: Role::Primary,
                    ..checks()
                }
            ),
            None
        );
    }

    #[test]
    fn lag_of_an_idle_primary_is_zero() {
        // Everything received is replayed: the old last transaction says nothing.
        let limits = Checks {
            max_lag: Some(Duration::from_secs(10)),
            ..checks()
        };
        assert_eq!(evaluate(&replica(), &limits), None);
        let behind = ServerState {
            lag_bytes: Some(100),
            replay_age: Some(12.34),
            ..replica()
        };
        assert_eq!(
            evaluate(&behind, &limits),
            Some(Outcome::unhealthy(
                "replication lag 12.3s over --max-lag 10s"
            ))
        );
        let soft = Checks {
            degraded_lag: Some(Duration::from_secs(5)),
            max_lag: Some(Duration::from_secs(60)),
            ..checks()
        };
        assert_eq!(
            evaluate(&behind, &soft),
            Some(Outcome::degraded(
                "replication lag 12.3s over --degraded-lag 5s"
            ))
        );
    }

    #[test]
    fn byte_lag_thresholds() {
        let behind = ServerState {
            lag_bytes: Some(5000),
            ..replica()
        };
        let limits = Checks {
            degraded_lag_bytes: Some(1000),
            max_lag_bytes: Some(10_000),
            ..checks()
        };
        assert_eq!(
            evaluate(&behind, &limits),
            Some(Outcome::degraded(
                "replication lag 5000 bytes over --degraded-lag-bytes 1000"
            ))
        );
        let far = ServerState {
            lag_bytes: Some(20_000),
            ..replica()
        };
        assert_eq!(
            evaluate(&far, &limits),
            Some(Outcome::unhealthy(
                "replication lag 20000 bytes over --max-lag-bytes 10000"
            ))
        );
        let unknown = ServerState {
            lag_bytes: None,
            ..replica()
        };
        assert!(
            matches!(evaluate(&unknown, &limits), Some(Outcome::Unhealthy { reason }) if reason.contains("unknown"))
        );
        // Lag limits do not apply to a primary.
        assert_eq!(evaluate(&ServerState::default(), &limits), None);
    }

    #[test]
    fn streaming() {
        let limits = Checks {
            require_streaming: true,
            ..checks()
        };
        assert_eq!(evaluate(&replica(), &limits), None);
        let gone = ServerState {
            wal_receiver: false,
            wal_receiver_status: None,
            ..replica()
        };
        assert_eq!(
            evaluate(&gone, &limits),
            Some(Outcome::unhealthy(
                "WAL receiver not running: replica is not streaming"
            ))
        );
        let waiting = ServerState {
            wal_receiver_status: Some("waiting".into()),
            ..replica()
        };
        assert_eq!(
            evaluate(&waiting, &limits),
            Some(Outcome::unhealthy("WAL receiver is waiting, not streaming"))
        );
        let hidden = ServerState {
            wal_receiver_status: None,
            ..replica()
        };
        assert!(
            matches!(evaluate(&hidden, &limits), Some(Outcome::Unhealthy { reason }) if reason.contains("pg_monitor"))
        );
    }

    #[test]
    fn server_errors_have_distinct_reasons() {
        assert_eq!(
            describe_db_error("53300", "sorry, too many clients already"),
            "too many connections (53300: sorry, too many clients already)"
        );
        assert!(
            describe_db_error("57P03", "the database system is starting up")
                .starts_with("server is starting up")
        );
        assert!(
            describe_db_error("57P03", "the database system is shutting down")
                .starts_with("server is shutting down")
        );
        assert!(
            describe_db_error("57P03", "the database system is in recovery mode")
                .starts_with("server is in crash recovery")
        );
        assert!(
            describe_db_error("28P01", "password authentication failed for user \"x\"")
                .starts_with("authentication failed")
        );
        assert_eq!(
            describe_db_error("42601", "syntax error"),
            "server error 42601: syntax error"
        );
    }
}
