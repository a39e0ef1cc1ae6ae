//! The PostgreSQL check's options: the DSN (checked early, never echoed), the role and the
//! limits, each validated when parsed.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::dsn;
use crate::errors::error_chain;
use anyhow::Result;

use exaprobe_core::kit::parse::parse_positive_duration;

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
pub(crate) struct DsnParser;

/// Syntax check of a DSN, with the redacted value in the error: no control character inside a
/// value (it would reach the target line), no unbracketed IPv6 address with a port in a URL.
pub(crate) fn validate_dsn(text: &str) -> Result<(), String> {
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

pub(crate) fn parse_query(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("the query must not be empty".into());
    }
    Ok(text.to_string())
}

/// `--listen-channel`: a plain identifier (a letter or `_`, then letters, digits, `_` or `$`;
/// at most 63 bytes, PostgreSQL's NAMEDATALEN - 1), so it can be quoted as is.
pub(crate) fn parse_channel(text: &str) -> Result<String, String> {
    let mut chars = text.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !starts_well || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
        return Err(format!(
            "'{}' is not a channel name (a letter or _, then letters, digits, _ or $)",
            exaprobe_core::redact::escape_controls(text)
        ));
    }
    if text.len() > 63 {
        return Err(format!(
            "'{text}' is longer than PostgreSQL's 63 bytes for a name"
        ));
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

    /// Whom to trust (libpq's sslrootcert, sslcert, sslkey, which these override) and how
    /// much to verify: sslmode decides; --insecure turns verification off for every mode that
    /// encrypts, --tls-server-name verifies against another name than the host.
    #[command(flatten)]
    pub tls: exaprobe_tls::TlsArgs,

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
    #[arg(long, value_name = "SIZE", value_parser = exaprobe_core::kit::parse::parse_byte_size, help_heading = "Postgres check")]
    pub max_lag_bytes: Option<u64>,

    /// On a replica, degraded when received WAL not yet replayed exceeds this size.
    #[arg(long, value_name = "SIZE", value_parser = exaprobe_core::kit::parse::parse_byte_size, help_heading = "Postgres check")]
    pub degraded_lag_bytes: Option<u64>,

    /// On a replica, unhealthy unless its WAL receiver is streaming from the upstream server
    /// (pg_stat_wal_receiver.status; needs superuser, pg_monitor or pg_read_all_stats).
    #[arg(long, help_heading = "Postgres check")]
    pub require_streaming: bool,

    /// Open a new connection for every check instead of reusing one (tests the whole login
    /// path, costs a backend fork per check).
    #[arg(long, help_heading = "Postgres check")]
    pub fresh_connection: bool,

    /// The event watcher LISTENs on this channel: a NOTIFY on it (from a cluster manager's
    /// callback, say) starts a check at once. Taken as written (quoted): NOTIFY it in the same
    /// case. Not on a standby, where LISTEN is refused.
    #[arg(long, value_name = "NAME", value_parser = parse_channel, help_heading = "Postgres check")]
    pub listen_channel: Option<String>,
}
