//! The observability options (`--metrics-listen`, `--metrics-textfile`, `--state-file`,
//! `--syslog`, `--syslog-facility`), flattened into every probe's command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Options that make a probe's view visible to monitoring. Field docs are the `--help` text.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ObserveOptions {
    /// Serve Prometheus metrics on http://ADDR:PORT/metrics (GET only; off by default; use a loopback or management address).
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_listen, help_heading = "Observability")]
    pub metrics_listen: Option<SocketAddr>,
    /// After every check, write the metrics to DIR/exaprobe-<name>.prom atomically, for node_exporter's textfile collector.
    #[arg(long, value_name = "DIR", help_heading = "Observability")]
    pub metrics_textfile: Option<PathBuf>,
    /// Write the probe's state as JSON to this file atomically on every change (schema in the README).
    #[arg(long, value_name = "FILE", value_parser = crate::kit::files::parse_output_file, help_heading = "Observability")]
    pub state_file: Option<PathBuf>,
    /// Send the log events to the local syslog socket (/dev/log) instead of stderr, tagged with --name.
    #[arg(long, help_heading = "Observability")]
    pub syslog: bool,
    /// Syslog facility for --syslog.
    #[arg(
        long,
        value_enum,
        default_value = "daemon",
        value_name = "FACILITY",
        help_heading = "Observability"
    )]
    pub syslog_facility: Facility,
    /// For tests: the datagram socket --syslog sends to instead of /dev/log.
    #[arg(long, hide = true, value_name = "PATH")]
    pub syslog_socket: Option<PathBuf>,
}

/// A syslog facility a daemon may log under.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum Facility {
    /// System daemons (ExaBGP's healthcheck default).
    #[default]
    Daemon,
    /// Local use 0.
    Local0,
    /// Local use 1.
    Local1,
    /// Local use 2.
    Local2,
    /// Local use 3.
    Local3,
    /// Local use 4.
    Local4,
    /// Local use 5.
    Local5,
    /// Local use 6.
    Local6,
    /// Local use 7.
    Local7,
}

impl Facility {
    /// The facility's number in the syslog priority (RFC 5424 table 1).
    pub(crate) fn code(self) -> u8 {
        match self {
            Facility::Daemon => 3,
            Facility::Local0 => 16,
            Facility::Local1 => 17,
            Facility::Local2 => 18,
            Facility::Local3 => 19,
            Facility::Local4 => 20,
            Facility::Local5 => 21,
            Facility::Local6 => 22,
            Facility::Local7 => 23,
        }
    }
}

/// `ADDR:PORT` with the project's IPv6 rule (`[::1]:9101`); a port is required.
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.trim()
        .parse::<SocketAddr>()
        .map_err(|_| format!("'{text}' is not ADDR:PORT (e.g. 127.0.0.1:9101 or [::1]:9101)"))
}
