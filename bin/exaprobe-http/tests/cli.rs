//! The exaprobe-http binary as an operator runs it: a password in --url reaches the server as
//! basic auth but no output (the `--once` line, `--check-config`, the `starting` log line,
//! clap's errors); a URL with a control character or an unbracketed IPv6 address is refused.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;

use exaprobe_testkit::cli::{run, start_and_stop};

const BINARY: &str = env!("CARGO_BIN_EXE_exaprobe-http");

/// A real HTTP/1.1 server on loopback answering 200 to each request; sends the request's
/// Authorization header (or "none") on the channel.
fn server() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (seen, received) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut authorization = "none".to_string();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("authorization:") {
                    authorization = line[line.len() - value.len()..].trim().to_string();
                }
            }
            let _ = seen.send(authorization);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (port, received)
}

fn binary() -> &'static Path {
    Path::new(BINARY)
}

#[test]
fn a_url_password_is_sent_but_never_shown() {
    let (port, received) = server();
    let url = format!("http://user:SECRETPW@127.0.0.1:{port}/");
    let shown = format!("GET http://user:***@127.0.0.1:{port}/");

    let once = run(binary(), &["--url", &url, "--once"], &[]);
    assert_eq!(once.code, Some(0), "{once:?}");
    assert!(
        once.stdout
            .starts_with(&format!("EXAPROBE-HTTP OK - {shown}: healthy")),
        "{once:?}"
    );
    assert!(
        once.stderr
            .contains("password is on the command line (--url)")
            && once.stderr.contains("--password-file"),
        "{once:?}"
    );
    assert!(!once.all().contains("SECRETPW"), "{once:?}");
    // The server did get the password (basic auth of user:SECRETPW).
    assert_eq!(received.recv().unwrap(), "Basic dXNlcjpTRUNSRVRQVw==");

    let check = run(
        binary(),
        &["--url", &url, "--check-config", "--prefix", "192.0.2.1/32"],
        &[],
    );
    assert_eq!(check.code, Some(0), "{check:?}");
    assert!(
        check.stdout.contains(&format!("check: {shown}\n")),
        "{check:?}"
    );
    assert!(!check.all().contains("SECRETPW"), "{check:?}");

    let log = start_and_stop(
        binary(),
        &[
            "--url",
            &url,
            "--dry-run",
            "--prefix",
            "192.0.2.1/32",
            "--name",
            "web",
        ],
        &[],
    );
    assert!(
        log.lines()
            .any(|l| l.contains("starting") && l.contains(&format!("target={shown}"))),
        "{log}"
    );
    assert!(!log.contains("SECRETPW"), "{log}");
}

#[test]
fn a_password_file_is_the_quiet_alternative() {
    let (port, received) = server();
    let dir = exaprobe_testkit::temp_dir();
    let file = dir.path().join("pw");
    std::fs::write(&file, "FILEPW\n").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let url = format!("http://user@127.0.0.1:{port}/");
    let once = run(
        binary(),
        &[
            "--url",
            &url,
            "--password-file",
            file.to_str().unwrap(),
            "--once",
        ],
        &[],
    );
    assert_eq!(once.code, Some(0), "{once:?}");
    assert_eq!(received.recv().unwrap(), "Basic dXNlcjpGSUxFUFc=");
    assert!(
        once.stdout.contains("http://user:***@127.0.0.1"),
        "{once:?}"
    );
    assert!(!once.all().contains("FILEPW"), "{once:?}");
    assert!(!once.stderr.contains("command line"), "{once:?}");
    // The same URL from the environment is not on the command line: no warning.
    let from_env = format!("http://user:SECRETPW@127.0.0.1:{port}/");
    let once = run(binary(), &["--once"], &[("EXAPROBE_URL", &from_env)]);
    assert_eq!(once.code, Some(0), "{once:?}");
    assert!(!once.stderr.contains("command line"), "{once:?}");
    assert!(!once.all().contains("SECRETPW"), "{once:?}");
}

#[test]
fn an_invalid_url_is_echoed_without_its_password() {
    for url in [
        "http://user:SECRETPW@127.0.0.1:notaport/",
        "http://user:SECRET PW@127.0.0.1:notaport/",
        "http://user:SECRET/PW@127.0.0.1/",
    ] {
        let result = run(binary(), &["--url", url, "--once"], &[]);
        assert_eq!(result.code, Some(64), "{url}: {result:?}");
        assert!(result.stderr.contains("--url: "), "{result:?}");
        assert!(!result.all().contains("SECRET"), "{url}: {result:?}");
    }
    let result = run(
        binary(),
        &["--url=http://user:SECRETPW@127.0.0.1:x/", "--once"],
        &[],
    );
    assert_eq!(result.code, Some(64), "{result:?}");
    assert!(!result.all().contains("SECRETPW"), "{result:?}");
}

#[test]
fn control_characters_and_bare_ipv6_are_refused_naming_the_option() {
    for url in [
        "http://127.0.0.1/hea\nlth",
        "http://127.0.0.1/\tx",
        "http://127.0.0.1/\r",
    ] {
        let result = run(binary(), &["--url", url, "--once"], &[]);
        assert_eq!(result.code, Some(64), "{result:?}");
        let first = result.stderr.lines().next().unwrap_or_default();
        assert!(
            first.contains("--url: ") && first.contains("control character"),
            "{result:?}"
        );
        assert!(!result.stdout.contains("OK"), "{result:?}");
    }
    let result = run(binary(), &["--url", "http://::1:8080/", "--once"], &[]);
    assert_eq!(result.code, Some(64), "{result:?}");
    assert!(result.stderr.contains("[::1]:8080"), "{result:?}");
}
