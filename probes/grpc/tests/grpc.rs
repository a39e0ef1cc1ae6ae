//! The gRPC probe against a real tonic server with tonic-health started by the test on
//! loopback (testkit's `grpc` module): each serving status, an unknown service, the overall
//! health, a server stopped and restarted on the same port, TLS with the test CA and a name
//! mismatch that `--authority` fixes, a server that accepts TCP and never answers, and servers
//! answering SERVING in a way that is not gRPC (an HTTP error, another content type, a
//! compression the probe did not offer).

use std::time::{Duration, Instant};

use clap::Parser;
use exaprobe_core::{Outcome, Probe};
use exaprobe_grpc::{GrpcOptions, GrpcProbe};
use exaprobe_testkit::grpc::{Config, GrpcServer, Misbehaviour, ServingStatus};

mod common;
use common::{TIMEOUT, deadline, probe, tls_server};

fn reason(outcome: Outcome) -> String {
    match outcome {
        Outcome::Unhealthy { reason } => reason,
        other => panic!("expected unhealthy, got {other:?}"),
    }
}

fn plain() -> GrpcServer {
    GrpcServer::start(&Config::default())
}

#[tokio::test]
async fn each_serving_status_of_a_service() {
    let server = plain();
    let address = server.address.to_string();
    server.set("shop.Cart", ServingStatus::Serving);
    let mut cart = probe(&["--address", &address, "--service", "shop.Cart"]);
    assert_eq!(cart.check(deadline()).await, Outcome::Healthy);
    assert_eq!(
        cart.describe(),
        format!("grpc://{address} service \"shop.Cart\"")
    );
    server.set("shop.Cart", ServingStatus::NotServing);
    assert_eq!(
        reason(cart.check(deadline()).await),
        format!("service \"shop.Cart\" on {address}: NOT_SERVING")
    );
    server.set("shop.Cart", ServingStatus::Unknown);
    assert_eq!(
        cart.check(deadline()).await,
        Outcome::degraded(format!(
            "service \"shop.Cart\" on {address}: UNKNOWN (the server does not know its own health yet)"
        ))
    );
    server.set("shop.Cart", ServingStatus::Serving);
    assert_eq!(cart.check(deadline()).await, Outcome::Healthy);
}

#[tokio::test]
async fn an_unknown_service_is_unhealthy_with_a_clear_reason() {
    let server = plain();
    let address = server.address.to_string();
    assert_eq!(
        reason(
            probe(&["--address", &address, "--service", "shop.Nothing"])
                .check(deadline())
                .await
        ),
        format!(
            "service \"shop.Nothing\" on {address}: unknown service (gRPC NOT_FOUND: service not registered)"
        )
    );
}

#[tokio::test]
async fn overall_health_is_the_empty_service() {
    let server = plain();
    let address = server.address.to_string();
    server.set("shop.Cart", ServingStatus::NotServing);
    let mut overall = probe(&["--address", &address]);
    assert_eq!(
        overall.describe(),
        format!("grpc://{address} (overall health)")
    );
    assert_eq!(overall.check(deadline()).await, Outcome::Healthy);
    let mut empty = probe(&["--address", &address, "--service", ""]);
    assert_eq!(empty.check(deadline()).await, Outcome::Healthy);
    server.set("", ServingStatus::NotServing);
    assert_eq!(
        reason(overall.check(deadline()).await),
        format!("overall health of {address}: NOT_SERVING")
    );
    assert!(!empty.check(deadline()).await.is_serving());
}

#[tokio::test]
async fn a_stopped_server_is_unhealthy_and_a_restarted_one_healthy_again() {
    let server = plain();
    let address = server.address;
    let mut overall = probe(&["--address", &address.to_string()]);
    assert_eq!(overall.check(deadline()).await, Outcome::Healthy);
    assert_eq!(overall.check(deadline()).await, Outcome::Healthy);
    drop(server);
    let why = reason(overall.check(deadline()).await);
    assert_eq!(
        why,
        format!("overall health of {address}: connect {address}: connection refused")
    );
    let restarted = GrpcServer::start(&Config {
        port: address.port(),
        ..Config::default()
    });
    assert_eq!(overall.check(deadline()).await, Outcome::Healthy);
    // A restart between two checks: the kept connection is dead, the check is not fooled.
    drop(restarted);
    let _again = GrpcServer::start(&Config {
        port: address.port(),
        ..Config::default()
    });
    assert_eq!(overall.check(deadline()).await, Outcome::Healthy);
}

#[tokio::test]
async fn a_silent_server_does_not_hang_the_check() {
    let server = GrpcServer::start(&Config {
        silent: true,
        ..Config::default()
    });
    let address = server.address.to_string();
    let started = Instant::now();
    let why = reason(
        probe(&["--address", &address, "--service", "shop.Cart"])
            .check(deadline())
            .await,
    );
    assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());
    assert_eq!(
        why,
        format!("service \"shop.Cart\" on {address}: no answer within --timeout 1s")
    );
}

#[tokio::test]
async fn a_check_dropped_at_the_runners_timeout_closes_its_connection() {
    let server = GrpcServer::start(&Config {
        silent: true,
        ..Config::default()
    });
    let mut probe = probe(&["--address", &server.address.to_string()]);
    // The runner drops a check that outlives its timeout; here, well before the probe's own.
    let dropped = tokio::time::timeout(Duration::from_millis(300), probe.check(deadline())).await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert_eq!(server.open_connections(), 1);
    let started = Instant::now();
    while server.open_connections() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the dropped check's connection is still open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_serving_message_in_an_answer_that_is_not_grpc_is_refused() {
    for (misbehaviour, expected) in [
        (
            Misbehaviour::Status500,
            "HTTP status 500 Internal Server Error instead of 200: not a gRPC answer",
        ),
        (
            Misbehaviour::HtmlContentType,
            "content-type text/html: not a gRPC answer (application/grpc)",
        ),
        (
            Misbehaviour::NoContentType,
            "no content-type: not a gRPC answer (application/grpc)",
        ),
        (
            Misbehaviour::Gzip,
            "the answer is compressed (grpc-encoding: gzip), which the probe did not ask for and does not read",
        ),
    ] {
        let server = GrpcServer::start(&Config {
            misbehaviour: Some(misbehaviour),
            ..Config::default()
        });
        let address = server.address.to_string();
        let mut overall = probe(&["--address", &address]);
        // Twice: on a new connection, then on the kept one.
        for _ in 0..2 {
            assert_eq!(
                overall.check(deadline()).await,
                Outcome::unhealthy(format!("overall health of {address}: {expected}")),
                "{misbehaviour:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_closed_port_is_refused() {
    let closed = format!("127.0.0.1:{}", exaprobe_testkit::free_port());
    assert_eq!(
        reason(probe(&["--address", &closed]).check(deadline()).await),
        format!("overall health of {closed}: connect {closed}: connection refused")
    );
}

#[tokio::test]
async fn tls_with_the_test_ca_and_the_authority() {
    let (pki, server) = tls_server();
    let address = server.address.to_string();
    let ca = pki.ca_file.display().to_string();
    // Verified against the host of --address (127.0.0.1): the certificate is for svc.example.
    let why = reason(
        probe(&["--address", &address, "--tls", "--ca-file", &ca])
            .check(deadline())
            .await,
    );
    assert_eq!(
        why,
        format!(
            "overall health of {address}: TLS handshake failed: name mismatch: certificate is for svc.example, not 127.0.0.1"
        )
    );
    let mut named = probe(&[
        "--address",
        &address,
        "--tls",
        "--ca-file",
        &ca,
        "--authority",
        "svc.example",
        "--service",
        "shop.Cart",
    ]);
    assert_eq!(named.check(deadline()).await, Outcome::Healthy);
    assert_eq!(server.last_authority().as_deref(), Some("svc.example"));
    assert_eq!(
        named.describe(),
        format!("grpc+tls://{address} service \"shop.Cart\"")
    );
    server.set("shop.Cart", ServingStatus::NotServing);
    assert_eq!(
        reason(named.check(deadline()).await),
        format!("service \"shop.Cart\" on {address}: NOT_SERVING")
    );
    // --tls-server-name is the TLS name only, the same as in the other probes.
    assert_eq!(
        probe(&[
            "--address",
            &address,
            "--tls",
            "--ca-file",
            &ca,
            "--tls-server-name",
            "svc.example"
        ])
        .check(deadline())
        .await,
        Outcome::Healthy
    );
    assert_eq!(server.last_authority(), Some(address.clone()));
    // --insecure skips the name and the chain.
    assert_eq!(
        probe(&["--address", &address, "--tls", "--insecure"])
            .check(deadline())
            .await,
        Outcome::Healthy
    );
    // Plain text against the TLS port, and TLS against a plain-text server, both fail.
    assert!(
        !probe(&["--address", &address])
            .check(deadline())
            .await
            .is_serving()
    );
    let plain = plain();
    let plain_address = plain.address.to_string();
    let why = reason(
        probe(&["--address", &plain_address, "--tls", "--insecure"])
            .check(deadline())
            .await,
    );
    assert_eq!(
        why,
        format!(
            "overall health of {plain_address}: TLS handshake failed: the server does not speak TLS on this port (unexpected handshake bytes)"
        )
    );
}

#[test]
fn bad_options_are_rejected() {
    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        grpc: GrpcOptions,
    }
    for (args, needle) in [
        (vec!["--address", "nohost"], "HOST:PORT"),
        (vec!["--address", "::1:80"], "[::1]:80"),
        (
            vec!["--address", "h:1", "--authority", "u@svc.example"],
            "without user@",
        ),
        (
            vec!["--address", "h:1", "--service", "a\nb"],
            "control character",
        ),
    ] {
        let mut argv = vec!["exaprobe-grpc"];
        argv.extend(args);
        let error = Cli::try_parse_from(argv).unwrap_err().to_string();
        assert!(error.contains(needle), "{error}");
    }
    // The shared TLS options parse anywhere; without --tls the probe refuses them at start.
    for tls_only in [&["--ca-file", "/x"][..], &["--insecure"][..]] {
        let mut argv = vec!["exaprobe-grpc", "--address", "h:1"];
        argv.extend(tls_only);
        let cli = Cli::try_parse_from(argv).unwrap();
        let error = GrpcProbe::new(&cli.grpc, TIMEOUT).unwrap_err().to_string();
        assert!(error.contains("needs --tls"), "{error}");
    }
}
