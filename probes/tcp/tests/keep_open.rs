//! `--keep-open` (the TCP probe's watcher) against real servers on loopback: testkit's holding
//! server closing (FIN) or resetting (RST) the kept connection, stopped and started again on the
//! same port, started only after the watcher; a TLS server with a certificate from the test CA.
//! Each loss is a suspicion naming the address, one per outage, and the watcher reconnects;
//! nothing is sent on the kept connection, whatever `--send` says.
//!
//! The tokio timeouts here are guards against a hang, not assertions on speed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use exaprobe_core::kit::events::{EventKind, Events, TakenEvents};
use exaprobe_core::{Outcome, Probe};
use exaprobe_tcp::TcpProbe;
use exaprobe_testkit::certs::Pki;
use exaprobe_testkit::tcp::HoldingServer;
use exaprobe_testkit::wait::{guarded, until};
use tokio::task::JoinHandle;

mod common;
use common::{deadline, probe};

/// The probe's watcher, running as the runner runs it: a task of its own.
fn spawn_watcher(probe: &TcpProbe, events: &Events) -> JoinHandle<()> {
    let watcher = probe
        .watch(events.clone())
        .expect("--keep-open gives a watcher");
    tokio::spawn(watcher)
}

/// The next events reported: a suspicion and nothing authoritative (the only kind a kept
/// connection reports).
async fn next_suspicion(events: &Events, what: &str) -> String {
    let taken: TakenEvents = guarded(what, events.next()).await;
    assert_eq!(taken.authoritative(), None, "{taken:?}");
    taken
        .suspicion()
        .unwrap_or_else(|| panic!("{what}: {taken:?}"))
        .to_string()
}

#[tokio::test]
async fn without_keep_open_there_is_no_watcher() {
    let server = HoldingServer::start(0, b"");
    let probe = probe(&["--address", &server.address.to_string()]);
    assert!(probe.watch(Events::new()).is_none());
}

#[tokio::test]
async fn a_kept_connection_closed_by_the_server_is_a_suspicion_and_it_reconnects() {
    let server = HoldingServer::start(0, b"220 mail.example ESMTP\r\n");
    let address = server.address.to_string();
    let probe = probe(&["--address", &address, "--keep-open"]);
    let events = Events::new();
    let _watcher = spawn_watcher(&probe, &events);
    until("the kept connection", || server.held() == 1).await;

    server.close_all();
    assert_eq!(
        next_suspicion(&events, "the closed connection").await,
        format!("kept connection to {address} closed by the server")
    );
    until("the connection kept again", || {
        server.accepted() == 2 && server.held() == 1
    })
    .await;
    // A new outage, a new suspicion.
    server.close_all();
    next_suspicion(&events, "the second close").await;
    assert_eq!(events.total(EventKind::Suspicion), 2);
}

#[tokio::test]
async fn a_kept_connection_reset_by_the_server_is_a_suspicion_and_it_reconnects() {
    let server = HoldingServer::start(0, b"");
    let address = server.address.to_string();
    let probe = probe(&["--address", &address, "--keep-open"]);
    let events = Events::new();
    let _watcher = spawn_watcher(&probe, &events);
    until("the kept connection", || server.held() == 1).await;

    server.reset_all();
    assert_eq!(
        next_suspicion(&events, "the reset connection").await,
        format!("kept connection to {address} reset by the server")
    );
    until("the connection kept again", || {
        server.accepted() == 2 && server.held() == 1
    })
    .await;
    assert_eq!(events.total(EventKind::Suspicion), 1);
}

#[tokio::test]
async fn a_server_down_then_up_is_one_suspicion_and_the_connection_comes_back() {
    let port = exaprobe_testkit::free_port();
    let server = HoldingServer::start(port, b"");
    let address = server.address.to_string();
    let probe = probe(&["--address", &address, "--keep-open"]);
    let events = Events::new();
    let _watcher = spawn_watcher(&probe, &events);
    until("the kept connection", || server.held() == 1).await;

    drop(server);
    assert_eq!(
        next_suspicion(&events, "the server stopping").await,
        format!("kept connection to {address} closed by the server")
    );
    // Not synchronisation: time for reconnections (100, 200, 400 ms apart) to be refused,
    // none of which is news.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(events.total(EventKind::Suspicion), 1);

    let server = HoldingServer::start(port, b"");
    until("the connection kept again", || server.held() == 1).await;
    assert_eq!(events.total(EventKind::Suspicion), 1);
    server.close_all();
    next_suspicion(&events, "the next outage").await;
    assert_eq!(events.total(EventKind::Suspicion), 2);
}

#[tokio::test]
async fn a_server_not_up_yet_is_one_suspicion() {
    let port = exaprobe_testkit::free_port();
    let address = format!("127.0.0.1:{port}");
    let probe = probe(&["--address", &address, "--keep-open"]);
    let events = Events::new();
    let _watcher = spawn_watcher(&probe, &events);
    assert_eq!(
        next_suspicion(&events, "the refused connection").await,
        format!("kept connection to {address}: connect {address}: connection refused")
    );
    let server = HoldingServer::start(port, b"");
    until("the kept connection", || server.held() == 1).await;
    assert_eq!(events.total(EventKind::Suspicion), 1);
}

#[tokio::test]
async fn the_kept_connection_sends_nothing_while_the_check_sends_its_text() {
    let server = HoldingServer::start(0, b"220 mail.example ESMTP\r\n");
    let address = server.address.to_string();
    let mut probe = probe(&[
        "--address",
        &address,
        "--keep-open",
        "--send",
        r"EHLO probe\r\n",
        "--expect",
        "^220 ",
    ]);
    let events = Events::new();
    let _watcher = spawn_watcher(&probe, &events);
    until("the kept connection", || server.held() == 1).await;
    // The first kept connection lives and ends without a byte from the probe.
    server.close_all();
    next_suspicion(&events, "the closed connection").await;
    until("the connection kept again", || server.accepted() == 2).await;
    assert_eq!(server.received(), 0);
    // The check still talks, on its own connection.
    assert_eq!(probe.check(deadline()).await, Outcome::Healthy);
    assert_eq!(server.received(), "EHLO probe\r\n".len());
}

#[tokio::test]
async fn the_kept_connection_speaks_tls_as_the_check_does() {
    let pki = Pki::new("exaprobe tcp keep-open test CA");
    let identity = pki.server(&["svc.example"], (-1, 30));
    let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config(&[]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let held = Arc::new(Mutex::new(Vec::new()));
    let holding = held.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            if let Ok(tls) = acceptor.accept(stream).await {
                holding.lock().unwrap().push(tls);
            }
        }
    });
    let ca = pki.ca_file.display().to_string();
    let tls = ["--tls", "--tls-server-name", "svc.example"];
    let mut args = vec!["--address", &address, "--keep-open", "--ca-file", &ca];
    args.extend(tls);
    let events = Events::new();
    let _watcher = spawn_watcher(&probe(&args), &events);
    until("the kept TLS connection", || {
        held.lock().unwrap().len() == 1
    })
    .await;
    // Dropped without close_notify: the TCP connection closes under TLS.
    held.lock().unwrap().clear();
    assert_eq!(
        next_suspicion(&events, "the closed TLS connection").await,
        format!("kept connection to {address} closed by the server")
    );

    // The certificate is verified as the check verifies it.
    let other = Pki::new("another CA");
    let other_ca = other.ca_file.display().to_string();
    let mut args = vec!["--address", &address, "--keep-open", "--ca-file", &other_ca];
    args.extend(tls);
    let refused = Events::new();
    let _watcher = spawn_watcher(&probe(&args), &refused);
    let reason = next_suspicion(&refused, "the refused certificate").await;
    assert!(
        reason.starts_with(&format!(
            "kept connection to {address}: TLS handshake failed: certificate is not trusted"
        )),
        "{reason}"
    );
}
