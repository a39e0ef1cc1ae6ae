//! The TCP probe against real listeners on loopback started by the test: a banner server, a
//! line protocol, a listener that never writes, one that closes early, a closed port, and a
//! TLS server with a certificate made by the test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use exaprobe_core::{Outcome, Probe};
use exaprobe_tcp::{TcpOptions, TcpProbe};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

mod common;
use common::{TIMEOUT, deadline, probe};

fn reason(outcome: Outcome) -> String {
    match outcome {
        Outcome::Unhealthy { reason } => reason,
        other => panic!("expected unhealthy, got {other:?}"),
    }
}

/// A server running `behaviour` on each connection; returns its address.
async fn server<F, Fut>(behaviour: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let behaviour = Arc::new(behaviour);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(behaviour(stream));
        }
    });
    address
}

async fn smtp_banner(mut stream: tokio::net::TcpStream) {
    let _ = stream.write_all(b"220 mail.example ESMTP ready\r\n").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
}

async fn ping_pong(stream: tokio::net::TcpStream) {
    let mut lines = BufReader::new(stream);
    let mut line = String::new();
    while lines.read_line(&mut line).await.is_ok_and(|n| n > 0) {
        let answer: &[u8] = if line.trim() == "PING" {
            b"PONG\r\n"
        } else {
            b"ERR\r\n"
        };
        let _ = lines.get_mut().write_all(answer).await;
        line.clear();
    }
}

#[tokio::test]
async fn banner_and_line_protocol() {
    let smtp = server(smtp_banner).await;
    assert_eq!(
        probe(&["--address", &smtp, "--expect", "^220 "])
            .check(deadline())
            .await,
        Outcome::Healthy
    );
    let why = reason(
        probe(&["--address", &smtp, "--expect", "^554"])
            .check(deadline())
            .await,
    );
    assert!(
        why.contains("--expect '^554'") && why.contains("220 mail.example ESMTP ready"),
        "{why}"
    );
    let pong = server(ping_pong).await;
    assert_eq!(
        probe(&[
            "--address",
            &pong,
            "--send",
            r"PING\r\n",
            "--expect",
            "^PONG"
        ])
        .check(deadline())
        .await,
        Outcome::Healthy
    );
    let why = reason(
        probe(&[
            "--address",
            &pong,
            "--send",
            r"HELLO\r\n",
            "--expect",
            "^PONG",
        ])
        .check(deadline())
        .await,
    );
    assert!(why.contains("ERR"), "{why}");
    // Connect only.
    assert_eq!(
        probe(&["--address", &pong]).check(deadline()).await,
        Outcome::Healthy
    );
    assert_eq!(
        probe(&["--address", &pong]).describe(),
        format!("tcp://{pong}")
    );
}

#[tokio::test]
async fn silent_listener_closed_port_and_early_close() {
    let silent = server(|stream| async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(stream);
    })
    .await;
    let started = Instant::now();
    let why = reason(
        probe(&["--address", &silent, "--expect", "^220"])
            .check(deadline())
            .await,
    );
    assert_eq!(
        why,
        "timeout waiting for data matching --expect '^220' (got 0 bytes: '')"
    );
    assert!(started.elapsed() < TIMEOUT);
    let closed = format!("127.0.0.1:{}", exaprobe_testkit::free_port());
    assert_eq!(
        reason(probe(&["--address", &closed]).check(deadline()).await),
        format!("connect {closed}: connection refused")
    );
    let early = server(|mut stream| async move {
        let _ = stream.write_all(b"hello").await;
    })
    .await;
    let why = reason(
        probe(&["--address", &early, "--expect", "^220"])
            .check(deadline())
            .await,
    );
    assert_eq!(
        why,
        "connection closed after 5 bytes without a match for --expect '^220': got 'hello'"
    );
}

#[tokio::test]
async fn names_and_ipv6() {
    let smtp = server(smtp_banner).await;
    let port = smtp.rsplit_once(':').unwrap().1;
    assert_eq!(
        probe(&[
            "--address",
            &format!("localhost:{port}"),
            "--expect",
            "^220"
        ])
        .check(deadline())
        .await,
        Outcome::Healthy
    );
    if let Ok(listener) = TcpListener::bind("[::1]:0").await {
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(smtp_banner(stream));
            }
        });
        assert_eq!(
            probe(&["--address", &address.to_string(), "--expect", "^220"])
                .check(deadline())
                .await,
            Outcome::Healthy
        );
    } else {
        eprintln!("SKIPPED: no IPv6 loopback");
    }
}

#[tokio::test]
async fn tls_handshake_verification() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let dir = exaprobe_testkit::temp_dir();
    let make_ca = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        (cert, rcgen::Issuer::new(params, key))
    };
    let (ca, issuer) = make_ca("exaprobe tcp test CA");
    let (other_ca, _) = make_ca("another CA");
    let ca_file = dir.path().join("ca.pem");
    let other_file = dir.path().join("other.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&other_file, other_ca.pem()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["svc.example".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let address = server(move |stream| {
        let acceptor = acceptor.clone();
        async move {
            if let Ok(mut tls) = acceptor.accept(stream).await {
                let _ = tls.write_all(b"* OK IMAP ready\r\n").await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    })
    .await;
    let ca_arg = ca_file.display().to_string();
    let good = [
        "--address",
        &address,
        "--tls",
        "--tls-server-name",
        "svc.example",
        "--ca-file",
        &ca_arg,
        "--expect",
        r"^\* OK",
    ];
    assert_eq!(probe(&good).check(deadline()).await, Outcome::Healthy);
    assert_eq!(probe(&good).describe(), format!("tls://{address}"));
    let why = reason(
        probe(&[
            "--address",
            &address,
            "--tls",
            "--tls-server-name",
            "wrong.example",
            "--ca-file",
            &ca_arg,
        ])
        .check(deadline())
        .await,
    );
    assert_eq!(
        why,
        "TLS handshake failed: name mismatch: certificate is for svc.example, not wrong.example"
    );
    let other_arg = other_file.display().to_string();
    let why = reason(
        probe(&[
            "--address",
            &address,
            "--tls",
            "--tls-server-name",
            "svc.example",
            "--ca-file",
            &other_arg,
        ])
        .check(deadline())
        .await,
    );
    assert_eq!(
        why,
        "TLS handshake failed: certificate is not trusted: its issuer (CN=exaprobe tcp test CA) is not a trusted CA"
    );
    assert_eq!(
        probe(&[
            "--address",
            &address,
            "--tls",
            "--insecure",
            "--tls-server-name",
            "x.example"
        ])
        .check(deadline())
        .await,
        Outcome::Healthy
    );
    // TLS against a plain-text server fails in the handshake, not later.
    let smtp = server(smtp_banner).await;
    let why = reason(
        probe(&[
            "--address",
            &smtp,
            "--tls",
            "--insecure",
            "--tls-server-name",
            "x.example",
        ])
        .check(deadline())
        .await,
    );
    assert_eq!(
        why,
        "TLS handshake failed: the server does not speak TLS on this port (unexpected handshake bytes)"
    );
}

/// A TLS server presenting `identity` and then a banner.
async fn tls_server(identity: &exaprobe_testkit::certs::Identity) -> String {
    let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config(&[]));
    server(move |stream| {
        let acceptor = acceptor.clone();
        async move {
            if let Ok(mut tls) = acceptor.accept(stream).await {
                let _ = tls.write_all(b"* OK IMAP ready\r\n").await;
            }
        }
    })
    .await
}

#[tokio::test]
async fn tls_reasons_for_hostile_certificates() {
    use exaprobe_testkit::certs::{Pki, self_signed};
    let pki = Pki::new("exaprobe hostile CA");
    let ca = pki.ca_file.display().to_string();
    let why = |address: String, extra: &'static [&'static str]| {
        let ca = ca.clone();
        async move {
            let mut args = vec![
                "--address",
                &address,
                "--tls",
                "--tls-server-name",
                "svc.example",
                "--ca-file",
                &ca,
            ];
            args.extend_from_slice(extra);
            reason(probe(&args).check(deadline()).await)
        }
    };
    let own = tls_server(&self_signed(pki.dir.path(), &["svc.example"])).await;
    assert_eq!(
        why(own, &[]).await,
        "TLS handshake failed: certificate is self-signed and not trusted (CN=svc.example)"
    );
    let ca_server = tls_server(pki.ca_as_end_entity()).await;
    assert_eq!(
        why(ca_server, &[]).await,
        "TLS handshake failed: the server presented a CA certificate (CN=exaprobe hostile CA), not a server certificate"
    );
    let expired = tls_server(&pki.server(&["svc.example"], (-30, -2))).await;
    let verified = why(expired.clone(), &[]).await;
    assert!(
        verified.starts_with("TLS handshake failed: certificate has expired on 20"),
        "{verified}"
    );
    // --insecure skips the chain and the name, never the validity period.
    let mut args = vec!["--address", &expired, "--tls", "--insecure"];
    args.extend(["--tls-server-name", "svc.example"]);
    let insecure = reason(probe(&args).check(deadline()).await);
    assert!(
        insecure.starts_with("TLS handshake failed: certificate has expired on 20"),
        "{insecure}"
    );
}

#[test]
fn bad_options_are_rejected() {
    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        tcp: TcpOptions,
    }
    for (args, needle) in [
        (vec!["--address", "nohost"], "HOST:PORT"),
        (vec!["--address", "h:70000"], "not a port"),
        (
            vec!["--address", "h:1", "--expect", "("],
            "not a valid regex",
        ),
        (vec!["--address", "h:1", "--send", r"\q"], "unknown escape"),
    ] {
        let mut argv = vec!["exaprobe-tcp"];
        argv.extend(args);
        let error = Cli::try_parse_from(argv).unwrap_err().to_string();
        assert!(error.contains(needle), "{error}");
    }
    // The shared TLS options parse anywhere; without --tls the probe refuses them at start.
    let cli = Cli::try_parse_from(["exaprobe-tcp", "--address", "h:1", "--ca-file", "/x"]).unwrap();
    let error = TcpProbe::new(&cli.tcp, TIMEOUT).unwrap_err().to_string();
    assert!(error.contains("needs --tls"), "{error}");
}
