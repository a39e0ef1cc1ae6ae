//! The DNS probe against real servers started by the test on loopback ports: Unbound (local
//! data, an authoritative zone, a refusing zone, CHAOS version.bind, a large TXT set, and a
//! second Unbound resolving through the first); plus a UDP socket that never answers.

use std::time::{Duration, Instant};

use clap::Parser;
use exaprobe_core::{Outcome, Probe};
use exaprobe_dns::{DnsOptions, DnsProbe};
use exaprobe_testkit::free_port;
use exaprobe_testkit::unbound::unbound;

const TIMEOUT: Duration = Duration::from_secs(2);

/// The deadline a check started now gets under TIMEOUT (the runner gives the same).
fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + TIMEOUT.mul_f64(0.95)
}

fn probe(args: &[String]) -> DnsProbe {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        dns: DnsOptions,
    }
    let argv = std::iter::once("exaprobe-dns".to_string()).chain(args.iter().cloned());
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}"));
    DnsProbe::new(&cli.dns).unwrap()
}

async fn check(server: u16, args: &[&str]) -> Outcome {
    let mut all = vec!["--server".to_string(), format!("127.0.0.1:{server}")];
    all.extend(args.iter().map(|a| a.to_string()));
    probe(&all).check(deadline()).await
}

fn reason(outcome: Outcome) -> String {
    match outcome {
        Outcome::Unhealthy { reason } => reason,
        other => panic!("expected unhealthy, got {other:?}"),
    }
}

#[tokio::test]
async fn answers_rcodes_and_flags() {
    let Some(server) = unbound(Some(2026112404), None) else {
        return;
    };
    let port = server.port;
    assert_eq!(
        check(
            port,
            &["--query", "www.local.test", "--expect-answer", "192.0.2.1"]
        )
        .await,
        Outcome::Healthy
    );
    let why = reason(
        check(
            port,
            &["--query", "www.local.test", "--expect-answer", "192.0.2.99"],
        )
        .await,
    );
    assert_eq!(why, "expected answer '192.0.2.99' missing (got 192.0.2.1)");
    assert_eq!(
        check(
            port,
            &[
                "--query",
                "WWW.Example.Test.",
                "--type",
                "aaaa",
                "--expect-answer",
                "2001:DB8:0::80"
            ]
        )
        .await,
        Outcome::Healthy
    );
    assert_eq!(
        reason(check(port, &["--query", "nx.local.test"]).await),
        "rcode NXDOMAIN, expected NOERROR"
    );
    assert_eq!(
        check(
            port,
            &[
                "--query",
                "nx.local.test",
                "--expect-rcode",
                "NXDOMAIN",
                "--expect-no-answer"
            ]
        )
        .await,
        Outcome::Healthy
    );
    assert_eq!(
        reason(check(port, &["--query", "www.refused.test"]).await),
        "rcode REFUSED, expected NOERROR"
    );
    let why = reason(
        check(
            port,
            &[
                "--query",
                "www.local.test",
                "--expect-answer-regex",
                r"^198\.",
            ],
        )
        .await,
    );
    assert!(why.contains("no answer matches"), "{why}");
    assert_eq!(
        reason(check(port, &["--query", "www.local.test", "--min-answers", "2"]).await),
        "1 A answers, expected at least 2"
    );
    let why = reason(check(port, &["--query", "www.local.test", "--expect-no-answer"]).await);
    assert_eq!(why, "expected no answer, got 192.0.2.1");
    // Authoritative zone: AA set, also over TCP, and without RD as for an authoritative server.
    assert_eq!(
        check(
            port,
            &[
                "--query",
                "www.example.test",
                "--require-authoritative",
                "--recursion-desired",
                "off",
                "--transport",
                "tcp"
            ]
        )
        .await,
        Outcome::Healthy
    );
    assert_eq!(
        check(
            port,
            &[
                "--query",
                "example.test",
                "--type",
                "SOA",
                "--expect-answer-regex",
                "2026112404"
            ]
        )
        .await,
        Outcome::Healthy
    );
    // CHAOS class.
    assert_eq!(
        check(
            port,
            &[
                "--query",
                "version.bind",
                "--class",
                "CH",
                "--type",
                "TXT",
                "--expect-answer-regex",
                "(?i)unbound"
            ]
        )
        .await,
        Outcome::Healthy
    );
}

#[tokio::test]
async fn truncated_udp_answer_is_retried_over_tcp() {
    let Some(server) = unbound(None, None) else {
        return;
    };
    // 20 TXT records do not fit the 512 bytes of a plain UDP answer: all 20 arrive via TCP.
    assert_eq!(
        check(
            server.port,
            &[
                "--query",
                "big.local.test",
                "--type",
                "TXT",
                "--min-answers",
                "20"
            ]
        )
        .await,
        Outcome::Healthy
    );
}

#[tokio::test]
async fn resolver_answers_are_not_authoritative() {
    let Some(authoritative) = unbound(Some(7), None) else {
        return;
    };
    let Some(resolver) = unbound(None, Some(authoritative.port)) else {
        return;
    };
    assert_eq!(
        check(
            resolver.port,
            &[
                "--query",
                "www.example.test",
                "--expect-answer",
                "192.0.2.80"
            ]
        )
        .await,
        Outcome::Healthy
    );
    let why = reason(
        check(
            resolver.port,
            &["--query", "www.example.test", "--require-authoritative"],
        )
        .await,
    );
    assert!(why.starts_with("AA flag not set"), "{why}");
    assert_eq!(
        check(
            authoritative.port,
            &["--query", "www.example.test", "--require-authoritative"]
        )
        .await,
        Outcome::Healthy
    );
}

#[tokio::test]
async fn stopped_and_silent_servers() {
    let closed = free_port();
    let why = reason(check(closed, &["--query", "www.local.test"]).await);
    assert_eq!(
        why,
        format!("refused: nothing listening on 127.0.0.1:{closed} (UDP)")
    );
    let why = reason(check(closed, &["--query", "www.local.test", "--transport", "tcp"]).await);
    assert_eq!(
        why,
        format!("refused: nothing listening on 127.0.0.1:{closed} (TCP)")
    );
    // A server that reads queries and never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let why = reason(check(port, &["--query", "www.local.test"]).await);
    assert_eq!(
        why,
        format!("timeout: no answer from 127.0.0.1:{port} over UDP")
    );
    assert!(started.elapsed() < TIMEOUT);
    drop(silent);
}

/// A TCP server that reads the query and closes without an answer: the reason words the I/O
/// error as every probe does (`kit::reason::io_error`), not as the OS does ("early eof").
#[tokio::test]
async fn a_tcp_server_closing_without_an_answer_is_said_in_plain_words() {
    use tokio::io::AsyncReadExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let length = stream.read_u16().await.unwrap();
        let mut query = vec![0u8; usize::from(length)];
        stream.read_exact(&mut query).await.unwrap();
    });
    let why = reason(check(port, &["--query", "www.local.test", "--transport", "tcp"]).await);
    assert_eq!(
        why,
        format!("TCP to 127.0.0.1:{port}: connection closed early")
    );
    server.await.unwrap();
}

#[tokio::test]
async fn soa_serial_behind_the_reference() {
    let Some(secondary) = unbound(Some(2026112401), None) else {
        return;
    };
    let Some(primary) = unbound(Some(2026112404), None) else {
        return;
    };
    let reference = format!("127.0.0.1:{}", primary.port);
    let base = [
        "--query",
        "example.test",
        "--type",
        "SOA",
        "--serial-reference",
        &reference,
    ];
    let with = |extra: &[&'static str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        args
    };
    assert_eq!(
        check(secondary.port, &with(&["--max-serial-lag", "5"])).await,
        Outcome::Healthy
    );
    let why = reason(check(secondary.port, &with(&["--max-serial-lag", "1"])).await);
    assert_eq!(
        why,
        "SOA serial 2026112401 is 3 behind the reference's 2026112404 (max 1)"
    );
    match check(
        secondary.port,
        &with(&["--degraded-serial-lag", "2", "--max-serial-lag", "10"]),
    )
    .await
    {
        Outcome::Degraded { reason, .. } => assert!(
            reason.contains("3 behind") && reason.contains("degraded over 2"),
            "{reason}"
        ),
        other => panic!("expected degraded, got {other:?}"),
    }
    // The lag is the probe's own metrics series, known only after a check that compared.
    let mut args = vec![
        "--server".to_string(),
        format!("127.0.0.1:{}", secondary.port),
    ];
    args.extend(
        with(&["--max-serial-lag", "1"])
            .iter()
            .map(|a| a.to_string()),
    );
    let mut lagging = probe(&args);
    assert_eq!(lagging.gauges(), Vec::new());
    lagging.check(deadline()).await;
    assert_eq!(
        lagging.gauges(),
        vec![exaprobe_core::Gauge {
            name: "exaprobe_dns_serial_lag",
            help: "SOA serials this server was behind --serial-reference at the last check",
            value: 3.0,
        }]
    );
    // The primary itself is never behind.
    assert_eq!(
        check(primary.port, &with(&["--max-serial-lag", "0"])).await,
        Outcome::Healthy
    );
}

#[test]
fn bad_options_are_rejected() {
    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        dns: DnsOptions,
    }
    for (args, needle) in [
        (vec!["--query", "x.test", "--type", "BOGUS"], "record type"),
        (
            vec!["--query", "x.test", "--server", "dns.example"],
            "not IP",
        ),
        (
            vec!["--query", "x.test", "--expect-rcode", "FINE"],
            "response code",
        ),
        (
            vec!["--query", "x.test", "--max-serial-lag", "3"],
            "--serial-reference",
        ),
        (
            vec![
                "--query",
                "x.test",
                "--expect-no-answer",
                "--expect-answer",
                "1.2.3.4",
            ],
            "cannot be used",
        ),
    ] {
        let mut argv = vec!["exaprobe-dns"];
        argv.extend(args);
        let error = Cli::try_parse_from(argv).unwrap_err().to_string();
        assert!(error.contains(needle), "{error}");
    }
}

#[tokio::test]
async fn misbehaving_servers_are_ignored_and_the_reason_says_why() {
    use exaprobe_testkit::dns::{Misbehaviour, hostile_dns};
    let cases = [
        (Misbehaviour::Echo, "QR bit clear (query echoed back)"),
        (Misbehaviour::WrongId, "wrong id"),
        (Misbehaviour::WrongQuestion, "answers another question"),
        (Misbehaviour::WrongOpcode, "wrong opcode"),
        (Misbehaviour::Garbage, "not a DNS message"),
    ];
    let servers: Vec<_> = cases
        .iter()
        .map(|(how, _)| hostile_dns(*how, false))
        .collect();
    // All at once: each waits for the whole deadline.
    let mut checks = tokio::task::JoinSet::new();
    for (index, server) in servers.iter().enumerate() {
        let port = server.address.port();
        checks.spawn(async move {
            let args = [
                "--query",
                "www.example.test",
                "--type",
                "SOA",
                "--recursion-desired",
                "off",
            ];
            (index, check(port, &args).await)
        });
    }
    let mut outcomes: Vec<_> = checks.join_all().await;
    outcomes.sort_by_key(|(index, _)| *index);
    for (((_, why), server), (_, outcome)) in cases.iter().zip(&servers).zip(outcomes) {
        assert_eq!(
            reason(outcome),
            format!(
                "timeout: no answer from {} over UDP; 1 packet ignored: {why}",
                server.address
            )
        );
    }
}

#[tokio::test]
async fn the_right_answer_after_wrong_packets_is_taken() {
    use exaprobe_testkit::dns::{Misbehaviour, hostile_dns};
    for how in [
        Misbehaviour::Echo,
        Misbehaviour::WrongId,
        Misbehaviour::WrongQuestion,
        Misbehaviour::WrongOpcode,
        Misbehaviour::Garbage,
    ] {
        let server = hostile_dns(how, true);
        assert_eq!(
            check(server.address.port(), &["--query", "www.example.test"]).await,
            Outcome::Healthy,
            "{how:?} then the answer"
        );
        assert_eq!(server.queries.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
