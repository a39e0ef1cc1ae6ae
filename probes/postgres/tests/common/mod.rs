//! Helpers for the PostgreSQL probe's tests; the servers come from `exaprobe_testkit::postgres`.

#![allow(dead_code, missing_docs)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use exaprobe_core::{Outcome, Probe};
use exaprobe_postgres::{PostgresOptions, PostgresProbe};
pub(crate) use exaprobe_testkit::postgres::*;

pub(crate) const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Parse probe options as the binary would.
#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    probe: PostgresOptions,
}

pub(crate) fn options(args: &[&str]) -> PostgresOptions {
    Cli::try_parse_from(std::iter::once("exaprobe-postgres").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .probe
}

pub(crate) fn probe(args: &[&str]) -> PostgresProbe {
    PostgresProbe::new(&options(args), CHECK_TIMEOUT).unwrap_or_else(|e| panic!("{args:?}: {e:#}"))
}

/// A password file readable by its owner only.
pub(crate) fn password_file(dir: &Path, name: &str, password: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("{password}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// One check under the runner's deadline.
pub(crate) async fn check(probe: &mut PostgresProbe) -> Outcome {
    tokio::time::timeout(
        CHECK_TIMEOUT,
        probe.check(tokio::time::Instant::now() + CHECK_TIMEOUT),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{} check did not finish within {CHECK_TIMEOUT:?}",
            probe.describe()
        )
    })
}

/// Check until `accept` holds (state that settles asynchronously, e.g. replication), or panic
/// with the last outcome after `limit`.
pub(crate) async fn check_until(
    probe: &mut PostgresProbe,
    limit: Duration,
    accept: impl Fn(&Outcome) -> bool,
) -> Outcome {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let outcome = check(probe).await;
        if accept(&outcome) {
            return outcome;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: still {outcome:?} after {limit:?}",
            probe.describe()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn unhealthy_reason(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Unhealthy { reason } => reason,
        other => panic!("expected unhealthy, got {other:?}"),
    }
}
