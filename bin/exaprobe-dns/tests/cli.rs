//! The exaprobe-dns binary: `--server` follows the shared HOST:PORT rule: a bare IPv6 address
//! is on port 53, `[::1]:5353` has a port, `::1:53` (ambiguous) is refused with both spellings.

use std::path::Path;

use exaprobe_testkit::cli::run;

const BINARY: &str = env!("CARGO_BIN_EXE_exaprobe-dns");

fn binary() -> &'static Path {
    Path::new(BINARY)
}

fn check_line(server: &str) -> Result<String, String> {
    let result = run(
        binary(),
        &[
            "--server",
            server,
            "--query",
            "example.com",
            "--check-config",
            "--prefix",
            "192.0.2.1/32",
        ],
        &[],
    );
    match result.code {
        Some(0) => Ok(result
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("check: "))
            .unwrap_or_default()
            .to_string()),
        _ => Err(result.stderr),
    }
}

#[test]
fn one_ipv6_rule() {
    assert_eq!(
        check_line("::1").as_deref(),
        Ok("example.com. IN A @[::1]:53")
    );
    assert_eq!(
        check_line("[::1]:5353").as_deref(),
        Ok("example.com. IN A @[::1]:5353")
    );
    assert_eq!(
        check_line("127.0.0.1").as_deref(),
        Ok("example.com. IN A @127.0.0.1:53")
    );
    let error = check_line("::1:53").unwrap_err();
    assert!(
        error.contains("--server: ") && error.contains("[::1]:53") && error.contains("[::1:53]"),
        "{error}"
    );
    assert!(
        check_line("dns.example:53")
            .unwrap_err()
            .contains("not IP or IP:PORT")
    );
}
