//! What the TCP probe's test files share: the probe from argv and the deadline the runner gives.

use std::time::Duration;

use clap::Parser;
use exaprobe_tcp::{TcpOptions, TcpProbe};

/// The probes' `--timeout`.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(1);

/// The deadline a check started now gets under TIMEOUT (the runner gives the same).
pub(crate) fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + TIMEOUT.mul_f64(0.95)
}

/// A probe from its command-line options.
pub(crate) fn probe(args: &[&str]) -> TcpProbe {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        tcp: TcpOptions,
    }
    let mut argv = vec!["exaprobe-tcp"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}"));
    TcpProbe::new(&cli.tcp, TIMEOUT).unwrap()
}
