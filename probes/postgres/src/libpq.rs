//! libpq's rules for what a DSN leaves unset: environment variables, `.pgpass`, service
//! files, sslmode and the TLS files, resolved once at start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::dsn;
use crate::errors::error_chain;
use anyhow::{Context, Result};
use exaprobe_tls::{TlsFiles, Verification};
use tokio_postgres::config::{Host, SslMode};

use crate::options::*;
use crate::tls::MakeRustls;

/// The resolved sslmode (libpq's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    pub(crate) fn parse(text: &str, source: &str) -> Result<Self> {
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

    pub(crate) fn name(self) -> &'static str {
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
pub(crate) struct Resolved {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) tls: MakeRustls,
    pub(crate) mode: Mode,
}

pub(crate) fn home_file(env: &dyn Fn(&str) -> Option<String>, relative: &str) -> Option<PathBuf> {
    env("HOME").map(|home| Path::new(&home).join(relative))
}

pub(crate) fn resolve(
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
    let ca_file = pick(&options.tls.ca_file, &extras.sslrootcert, "PGSSLROOTCERT");
    let client_cert = pick(&options.tls.client_cert, &extras.sslcert, "PGSSLCERT");
    let client_key = pick(&options.tls.client_key, &extras.sslkey, "PGSSLKEY");
    let verification = match effective {
        _ if options.tls.insecure => Verification::None,
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
            server_name: options.tls.tls_server_name.as_deref(),
        }
    };
    let tls = MakeRustls::new(std::sync::Arc::new(exaprobe_tls::client_config(
        verification,
        &files,
    )?));
    Ok(Resolved { config, tls, mode })
}

pub(crate) fn read_pgpass(path: &Path, config: &tokio_postgres::Config) -> Option<String> {
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
pub(crate) fn endpoints(config: &tokio_postgres::Config) -> String {
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
