//! The exaprobe-redis binary as an operator runs it, against a real redis-server requiring a
//! password: the password in --url works but is shown nowhere, clap's errors hide it, byte
//! sizes take units, and HOST:PORT follows the shared IPv6 rule.

use std::path::Path;

use exaprobe_testkit::cli::{run, start_and_stop};

const BINARY: &str = env!("CARGO_BIN_EXE_exaprobe-redis");

fn binary() -> &'static Path {
    Path::new(BINARY)
}

#[test]
fn a_url_password_authenticates_but_is_never_shown() {
    let Some(redis) = exaprobe_testkit::redis::start(&["--requirepass", "SECRETPW"]) else {
        return;
    };
    let url = format!("redis://:SECRETPW@127.0.0.1:{}", redis.port);
    let once = run(binary(), &["--url", &url, "--once"], &[]);
    assert_eq!(once.code, Some(0), "{once:?}");
    assert!(
        once.stdout.starts_with(&format!(
            "EXAPROBE-REDIS OK - redis://127.0.0.1:{}/0: healthy",
            redis.port
        )),
        "{once:?}"
    );
    assert!(
        once.stderr
            .contains("password is on the command line (--url)")
            && once.stderr.contains("REDISCLI_AUTH"),
        "{once:?}"
    );
    assert!(!once.all().contains("SECRETPW"), "{once:?}");

    let check = run(
        binary(),
        &["--url", &url, "--check-config", "--prefix", "192.0.2.1/32"],
        &[],
    );
    assert_eq!(check.code, Some(0), "{check:?}");
    assert!(!check.all().contains("SECRETPW"), "{check:?}");

    let log = start_and_stop(
        binary(),
        &["--url", &url, "--dry-run", "--prefix", "192.0.2.1/32"],
        &[],
    );
    assert!(
        log.lines()
            .any(|l| l.contains("starting") && l.contains("target=redis://127.0.0.1")),
        "{log}"
    );
    assert!(!log.contains("SECRETPW"), "{log}");

    // REDISCLI_AUTH: authenticated, no warning.
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let once = run(
        binary(),
        &["--url", &url, "--once"],
        &[("REDISCLI_AUTH", "SECRETPW")],
    );
    assert_eq!(once.code, Some(0), "{once:?}");
    assert!(!once.stderr.contains("command line"), "{once:?}");
}

#[test]
fn an_invalid_url_is_echoed_without_its_password() {
    for url in [
        "redis://:SECRETPW@127.0.0.1:notaport",
        "redis://u:SECRET PW@127.0.0.1:x/0",
        "redis://:SECRETPW@::1:6379",
    ] {
        let result = run(binary(), &["--url", url, "--once"], &[]);
        assert_eq!(result.code, Some(64), "{result:?}");
        assert!(result.stderr.contains("--url: "), "{result:?}");
        assert!(!result.all().contains("SECRET"), "{url}: {result:?}");
    }
    let result = run(
        binary(),
        &["--url", "redis://127.0.0.1:6379/0\nFORGED", "--once"],
        &[],
    );
    assert_eq!(result.code, Some(64), "{result:?}");
    assert!(result.stderr.contains("control character"), "{result:?}");
    assert!(!result.stderr.contains("\nFORGED"), "{result:?}");
}

#[test]
fn byte_sizes_take_units_and_addresses_follow_the_ipv6_rule() {
    for (size, ok) in [
        ("16MB", true),
        ("64MiB", true),
        ("1k", true),
        ("123", true),
        ("lots", false),
    ] {
        let result = run(
            binary(),
            &[
                "--max-lag-bytes",
                size,
                "--check-config",
                "--prefix",
                "192.0.2.1/32",
            ],
            &[],
        );
        assert_eq!(
            result.code,
            Some(if ok { 0 } else { 64 }),
            "{size}: {result:?}"
        );
    }
    let result = run(
        binary(),
        &[
            "--degraded-lag-bytes",
            "16MB",
            "--max-lag-bytes",
            "1MB",
            "--check-config",
            "--prefix",
            "192.0.2.1/32",
        ],
        &[],
    );
    assert_eq!(result.code, Some(78), "{result:?}");
    assert!(result.stderr.contains("16777216"), "{result:?}");
    let result = run(
        binary(),
        &[
            "--sentinel",
            "::1:26379",
            "--master-name",
            "m",
            "--check-config",
        ],
        &[],
    );
    assert_eq!(result.code, Some(64), "{result:?}");
    assert!(result.stderr.contains("[::1]:26379"), "{result:?}");
    let result = run(binary(), &["--url", "redis://::1", "--check-config"], &[]);
    assert_eq!(result.code, Some(64), "{result:?}");
    assert!(result.stderr.contains("[::1]"), "{result:?}");
}
