//! The gRPC watcher (`Probe::watch`) against a real tonic-health server started by the test on
//! loopback: NOT_SERVING on `Health/Watch` is authoritative and names the service, SERVING again
//! a suspicion; a server without Watch gives no event and the watcher ends while the checks go
//! on; a restarted server is a suspicion and the stream comes back; TLS with `--authority`; a
//! flood of toggles is coalesced and the watcher keeps up.
//!
//! The tokio timeouts here are guards against a hang, not assertions on speed.

use exaprobe_core::kit::events::{EventKind, Events, TakenEvents};
use exaprobe_core::{Outcome, Probe};
use exaprobe_grpc::GrpcProbe;
use exaprobe_testkit::grpc::{Config, GrpcServer, ServingStatus};
use exaprobe_testkit::wait::{guarded, until};
use tokio::task::JoinHandle;

mod common;
use common::{deadline, probe, tls_server};

/// The probe's watcher, running as the runner runs it: a task of its own.
fn spawn_watcher(probe: &GrpcProbe, events: &Events) -> JoinHandle<()> {
    let watcher = probe
        .watch(events.clone())
        .expect("the gRPC probe has a watcher");
    tokio::spawn(watcher)
}

/// The next events reported.
async fn next(events: &Events, what: &str) -> TakenEvents {
    guarded(what, events.next()).await
}

#[tokio::test]
async fn not_serving_is_authoritative_and_serving_again_a_suspicion() {
    let server = GrpcServer::start(&Config::default());
    server.set("shop.Cart", ServingStatus::Serving);
    let address = server.address.to_string();
    let probe = probe(&["--address", &address, "--service", "shop.Cart"]);
    let events = Events::new();
    let watcher = spawn_watcher(&probe, &events);
    until("the Watch stream opened", || server.watch_requests() == 1).await;

    server.set("shop.Cart", ServingStatus::NotServing);
    let taken = next(&events, "NOT_SERVING on Watch").await;
    assert_eq!(
        taken.authoritative(),
        Some(format!("service \"shop.Cart\" on {address}: NOT_SERVING (Health/Watch)").as_str())
    );
    // The first SERVING of the stream was no news.
    assert_eq!(taken.suspicion(), None, "{taken:?}");
    assert_eq!(taken.count(), 1);

    server.set("shop.Cart", ServingStatus::Serving);
    let taken = next(&events, "SERVING again on Watch").await;
    assert_eq!(
        taken.suspicion(),
        Some(format!("service \"shop.Cart\" on {address}: SERVING again (Health/Watch)").as_str())
    );
    assert_eq!(taken.authoritative(), None);

    server.set("shop.Cart", ServingStatus::Unknown);
    let taken = next(&events, "UNKNOWN on Watch").await;
    assert_eq!(
        taken.suspicion(),
        Some(
            format!(
                "service \"shop.Cart\" on {address}: UNKNOWN (the server does not know its own health yet) (Health/Watch)"
            )
            .as_str()
        )
    );
    // One stream all along.
    assert_eq!(server.watch_requests(), 1);
    assert!(!watcher.is_finished());
    watcher.abort();
}

#[tokio::test]
async fn a_server_without_watch_gives_no_event_and_the_checks_go_on() {
    let server = GrpcServer::start(&Config {
        without_watch: true,
        ..Config::default()
    });
    server.set("shop.Cart", ServingStatus::Serving);
    let address = server.address.to_string();
    let mut probe = probe(&["--address", &address, "--service", "shop.Cart"]);
    let events = Events::new();
    let watcher = spawn_watcher(&probe, &events);
    guarded("the watcher ends on UNIMPLEMENTED", watcher)
        .await
        .unwrap();
    // Asked once, never again.
    assert_eq!(server.watch_requests(), 1);
    assert_eq!(probe.check(deadline()).await, Outcome::Healthy);
    server.set("shop.Cart", ServingStatus::NotServing);
    assert_eq!(
        probe.check(deadline()).await,
        Outcome::unhealthy(format!("service \"shop.Cart\" on {address}: NOT_SERVING"))
    );
    assert_eq!(events.total(EventKind::Authoritative), 0);
    assert_eq!(events.total(EventKind::Suspicion), 0);
    assert_eq!(server.watch_requests(), 1);
}

#[tokio::test]
async fn a_restarted_server_is_a_suspicion_and_the_stream_comes_back() {
    // The overall health: SERVING from the first moment a server starts, so the restarted
    // server never answers for an unregistered service.
    let server = GrpcServer::start(&Config::default());
    let address = server.address;
    let probe = probe(&["--address", &address.to_string()]);
    let events = Events::new();
    let _watcher = spawn_watcher(&probe, &events);
    until("the Watch stream opened", || server.watch_requests() == 1).await;

    drop(server);
    let taken = next(&events, "the stream lost").await;
    let lost = taken.suspicion().expect("a suspicion");
    assert!(
        lost.starts_with(&format!("overall health of {address}: "))
            && lost.contains("Health/Watch"),
        "{lost}"
    );
    assert_eq!(taken.authoritative(), None);

    let restarted = GrpcServer::start(&Config {
        port: address.port(),
        ..Config::default()
    });
    until("the Watch stream back", || restarted.watch_requests() == 1).await;
    restarted.set("", ServingStatus::NotServing);
    let taken = next(&events, "NOT_SERVING on the new stream").await;
    assert_eq!(
        taken.authoritative(),
        Some(format!("overall health of {address}: NOT_SERVING (Health/Watch)").as_str())
    );
    // One suspicion for the whole outage, however many reconnections it took.
    assert_eq!(events.total(EventKind::Suspicion), 1);
}

#[tokio::test]
async fn the_watch_stream_speaks_tls_with_the_checks_options() {
    let (pki, server) = tls_server();
    let address = server.address.to_string();
    let ca = pki.ca_file.display().to_string();
    let probe = probe(&[
        "--address",
        &address,
        "--service",
        "shop.Cart",
        "--tls",
        "--ca-file",
        &ca,
        "--authority",
        "svc.example:443",
    ]);
    let events = Events::new();
    let _watcher = spawn_watcher(&probe, &events);
    until("the Watch stream opened", || server.watch_requests() == 1).await;
    server.set("shop.Cart", ServingStatus::NotServing);
    let taken = next(&events, "NOT_SERVING over TLS").await;
    assert!(taken.authoritative().is_some(), "{taken:?}");
    assert_eq!(server.last_authority().as_deref(), Some("svc.example:443"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_toggles_is_coalesced_and_the_watcher_keeps_up() {
    let server = GrpcServer::start(&Config::default());
    server.set("shop.Cart", ServingStatus::Serving);
    let address = server.address.to_string();
    let probe = probe(&["--address", &address, "--service", "shop.Cart"]);
    let events = Events::new();
    let _watcher = spawn_watcher(&probe, &events);
    until("the Watch stream opened", || server.watch_requests() == 1).await;

    const TOGGLES: u64 = 1000;
    let flood = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        for n in 0..TOGGLES {
            let status = if n % 2 == 0 {
                ServingStatus::NotServing
            } else {
                ServingStatus::Serving
            };
            server.set("shop.Cart", status);
        }
        eprintln!("{TOGGLES} toggles in {:?}", started.elapsed());
        server
    });
    let server = guarded("the flood", flood).await.unwrap();
    // Nobody took the events during the flood: they wait in the latch, one reason per kind.
    // Then a status the flood never set: the watcher has kept up when it is heard.
    server.set("shop.Cart", ServingStatus::Unknown);
    let mut taken = Vec::new();
    guarded("UNKNOWN after the flood", async {
        loop {
            let events = events.next().await;
            let last = events
                .suspicion()
                .is_some_and(|reason| reason.contains("UNKNOWN"));
            taken.push(events);
            if last {
                break;
            }
        }
    })
    .await;
    let authoritative = events.total(EventKind::Authoritative);
    let suspicion = events.total(EventKind::Suspicion);
    eprintln!(
        "{authoritative} authoritative and {suspicion} suspicion events, taken in {} wake-ups",
        taken.len()
    );
    // At most one event per status sent (the server's watch channel may coalesce too), each
    // kind seen, and the latch never held more than the latest reason of each kind.
    assert!(
        (2..=TOGGLES / 2 + 1).contains(&authoritative),
        "{authoritative}"
    );
    assert!((2..=TOGGLES / 2 + 1).contains(&suspicion), "{suspicion}");
    let counted: u64 = taken.iter().map(TakenEvents::count).sum();
    assert_eq!(counted, authoritative + suspicion);
    assert_eq!(events.take().count(), 0);
}
