//! The exaprobe-ntp binary: `--check-config` shows the server with its default port, `--once`
//! asks a real chronyd (exit 0) and testkit's hostile server (a shifted clock: exit 1 with
//! `--offset-degraded`; a kiss-o'-death: exit 2), each with the Nagios-style line.

use std::path::Path;

use exaprobe_testkit::cli::run;
use exaprobe_testkit::ntp::{Behaviour, Header, HostileNtp, chrony};

const BINARY: &str = env!("CARGO_BIN_EXE_exaprobe-ntp");

fn binary() -> &'static Path {
    Path::new(BINARY)
}

#[test]
fn check_config_names_the_server_on_port_123_by_default() {
    let result = run(
        binary(),
        &[
            "--server",
            "::1",
            "--check-config",
            "--prefix",
            "192.0.2.1/32",
        ],
        &[],
    );
    assert_eq!(result.code, Some(0), "{result:?}");
    assert!(
        result.stdout.contains("check: ntp://[::1]:123\n"),
        "{result:?}"
    );
    let result = run(binary(), &["--server", "::1:123", "--once"], &[]);
    assert_eq!(result.code, Some(64), "{result:?}");
    assert!(
        result.stderr.contains("--server: ") && result.stderr.contains("[::1]:123"),
        "{result:?}"
    );
}

#[test]
fn once_against_chrony() {
    let Some(chrony) = chrony(Some(2)) else {
        return;
    };
    let server = chrony.address().to_string();
    let result = run(binary(), &["--server", &server, "--once"], &[]);
    assert_eq!(result.code, Some(0), "{result:?}");
    assert!(
        result
            .stdout
            .starts_with(&format!("EXAPROBE-NTP OK - ntp://{server}: healthy")),
        "{result:?}"
    );
}

#[test]
fn once_against_a_misbehaving_server() {
    let hostile = HostileNtp::start(Behaviour::Answer(Header {
        offset: 2.0,
        ..Header::default()
    }));
    let server = hostile.address.to_string();
    let args = ["--server", &server, "--offset-degraded", "1s", "--once"];
    let result = run(binary(), &args, &[]);
    assert_eq!(result.code, Some(1), "{result:?}");
    assert!(
        result.stdout.contains(&format!(
            "{server}: offset beyond --offset-degraded 1s (stratum 2, reference 192.0.2.1, offset +"
        )) && result.stdout.contains("s, root distance 1.488ms)"),
        "{result:?}"
    );
    hostile.set(Behaviour::Answer(Header::kiss(b"DENY")));
    let result = run(binary(), &args, &[]);
    assert_eq!(result.code, Some(2), "{result:?}");
    assert!(
        result.stdout.contains(&format!(
            "{server}: kiss-o'-death DENY (access denied by the server)"
        )),
        "{result:?}"
    );
}
