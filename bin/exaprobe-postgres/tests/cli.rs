//! The exaprobe-postgres binary: a password in the DSN is shown nowhere and warned about, a
//! newline cannot forge a log line (refused in a DSN value, escaped when it comes from the
//! environment), byte sizes take units, and a URL's IPv6 host needs brackets.

use std::path::Path;

use exaprobe_testkit::cli::{run, start_and_stop};

const BINARY: &str = env!("CARGO_BIN_EXE_exaprobe-postgres");

fn binary() -> &'static Path {
    Path::new(BINARY)
}

/// A port nothing listens on: the check fails, the target line is still printed.
fn closed_port() -> u16 {
    exaprobe_testkit::free_port()
}

#[test]
fn a_dsn_password_is_shown_nowhere() {
    let dsn = format!(
        "postgresql://app:SECRETPW@127.0.0.1:{}/app?sslmode=disable",
        closed_port()
    );
    let once = run(binary(), &["--dsn", &dsn, "--once"], &[]);
    assert_eq!(once.code, Some(2), "{once:?}");
    assert!(
        once.stdout.contains("CRITICAL - postgres 127.0.0.1:"),
        "{once:?}"
    );
    assert!(
        once.stderr
            .contains("password is on the command line (--dsn)")
            && once.stderr.contains("--password-file")
            && once.stderr.contains("PGPASSWORD"),
        "{once:?}"
    );
    assert!(!once.all().contains("SECRETPW"), "{once:?}");
    let log = start_and_stop(
        binary(),
        &["--dsn", &dsn, "--dry-run", "--prefix", "192.0.2.1/32"],
        &[],
    );
    assert!(log.contains("starting"), "{log}");
    assert!(!log.contains("SECRETPW"), "{log}");
    let bad = run(
        binary(),
        &[
            "--dsn",
            "host=127.0.0.1 password=SECRETPW nonsense",
            "--once",
        ],
        &[],
    );
    assert_eq!(bad.code, Some(64), "{bad:?}");
    assert!(!bad.all().contains("SECRETPW"), "{bad:?}");
}

#[test]
fn a_newline_cannot_forge_a_log_line() {
    let result = run(
        binary(),
        &["--dsn", "host=127.0.0.1 user='x\nINFO forged'", "--once"],
        &[],
    );
    assert_eq!(result.code, Some(64), "{result:?}");
    assert!(
        result.stderr.contains("--dsn: ") && result.stderr.contains("control character"),
        "{result:?}"
    );
    assert!(!result.all().contains("\nINFO forged"), "{result:?}");
    // From the environment the value is not refused, but the target shows it escaped.
    let port = closed_port().to_string();
    let env = [("PGUSER", "x\nINFO forged"), ("PGPORT", port.as_str())];
    let check = run(
        binary(),
        &[
            "--dsn",
            "host=127.0.0.1",
            "--check-config",
            "--prefix",
            "192.0.2.1/32",
        ],
        &env,
    );
    assert_eq!(check.code, Some(0), "{check:?}");
    assert!(check.stdout.contains("user=x\\nINFO forged"), "{check:?}");
    assert!(!check.all().contains("\nINFO forged"), "{check:?}");
    let log = start_and_stop(
        binary(),
        &[
            "--dsn",
            "host=127.0.0.1",
            "--dry-run",
            "--prefix",
            "192.0.2.1/32",
        ],
        &env,
    );
    assert!(
        log.contains("starting") && log.contains("user=x\\nINFO forged"),
        "{log}"
    );
    assert!(!log.contains("\nINFO forged"), "{log}");
}

#[test]
fn byte_sizes_and_ipv6_hosts() {
    let result = run(
        binary(),
        &[
            "--max-lag-bytes",
            "64MiB",
            "--degraded-lag-bytes",
            "16MB",
            "--check-config",
            "--prefix",
            "192.0.2.1/32",
        ],
        &[],
    );
    assert_eq!(result.code, Some(0), "{result:?}");
    let result = run(
        binary(),
        &["--dsn", "postgresql://app@::1:5432/app", "--check-config"],
        &[],
    );
    assert_eq!(result.code, Some(64), "{result:?}");
    assert!(result.stderr.contains("[::1]:5432"), "{result:?}");
}
