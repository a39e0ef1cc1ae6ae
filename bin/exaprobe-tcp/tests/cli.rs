//! The exaprobe-tcp binary: `--address` follows the shared HOST:PORT rule (IPv6 with a port in
//! brackets, `::1:80` refused with a hint) and `--max-read-bytes` takes units.

use std::path::Path;

use exaprobe_testkit::cli::run;

const BINARY: &str = env!("CARGO_BIN_EXE_exaprobe-tcp");

fn binary() -> &'static Path {
    Path::new(BINARY)
}

#[test]
fn ipv6_addresses_need_brackets_with_a_port() {
    let result = run(binary(), &["--address", "::1:80", "--once"], &[]);
    assert_eq!(result.code, Some(64), "{result:?}");
    assert!(
        result.stderr.contains("--address: ")
            && result.stderr.contains("[::1]:80")
            && result.stderr.contains("[::1:80]"),
        "{result:?}"
    );
    let result = run(binary(), &["--address", "::1", "--once"], &[]);
    assert_eq!(result.code, Some(64), "{result:?}");
    assert!(result.stderr.contains("[::1]:PORT"), "{result:?}");
    let result = run(
        binary(),
        &[
            "--address",
            "[::1]:80",
            "--check-config",
            "--prefix",
            "192.0.2.1/32",
        ],
        &[],
    );
    assert_eq!(result.code, Some(0), "{result:?}");
    assert!(
        result.stdout.contains("check: tcp://[::1]:80\n"),
        "{result:?}"
    );
}

#[test]
fn a_real_listener_is_checked_with_a_size_in_units() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let result = run(
        binary(),
        &["--address", &address, "--max-read-bytes", "4kB", "--once"],
        &[],
    );
    assert_eq!(result.code, Some(0), "{result:?}");
    assert!(
        result
            .stdout
            .starts_with(&format!("EXAPROBE-TCP OK - tcp://{address}: healthy")),
        "{result:?}"
    );
    let result = run(
        binary(),
        &["--address", &address, "--max-read-bytes", "4 parsecs"],
        &[],
    );
    assert_eq!(result.code, Some(64), "{result:?}");
    assert!(result.stderr.contains("unknown unit"), "{result:?}");
}
