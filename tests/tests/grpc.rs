//! The gRPC probe end to end: the release `exaprobe-grpc` under a real ExaBGP 5.0 peered with
//! GoBGP, asking a real tonic health server (testkit) that the test flips between SERVING,
//! UNKNOWN and NOT_SERVING; the route at the peer follows. With events (the default), the
//! server's NOT_SERVING on Health/Watch withdraws before a second check; `--events off` polls.

use std::time::Duration;

use exaprobe_e2e::{FAST_TIMERS, Process, Stack, StackOptions, Version};
use exaprobe_testkit::grpc::{Config, GrpcServer, ServingStatus};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn grpc_route_follows_the_health_service() {
    let server = GrpcServer::start(&Config::default());
    server.set("shop.v1.Cart", ServingStatus::Serving);
    let address = server.address.to_string();
    let mut args: Vec<&str> = FAST_TIMERS.to_vec();
    args.extend_from_slice(&[
        "--prefix",
        "192.0.2.70/32",
        "--address",
        &address,
        "--service",
        "shop.v1.Cart",
        "--withdraw-on-down",
    ]);
    let processes = vec![Process::probe("cart", "exaprobe-grpc", &args)];
    let Some(stack) = Stack::start(StackOptions::new(Version::V5, processes)) else {
        return;
    };
    stack.wait_med("192.0.2.70/32", 100, WAIT);
    // UNKNOWN: still announced, with the degraded penalty (200 by default).
    server.set("shop.v1.Cart", ServingStatus::Unknown);
    stack.wait_med("192.0.2.70/32", 300, WAIT);
    // NOT_SERVING: withdrawn.
    server.set("shop.v1.Cart", ServingStatus::NotServing);
    stack.wait_absent("192.0.2.70/32", WAIT);
    // SERVING again: back, over the connection the probe kept.
    server.set("shop.v1.Cart", ServingStatus::Serving);
    stack.wait_med("192.0.2.70/32", 100, WAIT);
}

/// `--interval 5 --fast-interval 1 --fall 3` (the timers an operator keeps; `--rise 1` only to
/// start quickly), with `--events` as given.
fn operator_timers(events: &'static str) -> Vec<&'static str> {
    vec![
        "--interval",
        "5",
        "--fast-interval",
        "1",
        "--rise",
        "1",
        "--fall",
        "3",
        "--events",
        events,
        "--withdraw-on-down",
    ]
}

/// Two probes side by side, each asking its own server: `watched` (events on, the default) and
/// `polled` (`--events off`). Both servers switch to NOT_SERVING at once. The watched route is
/// withdrawn on the server's word before a second check of it, while the polled one, which
/// needs `--fall` 3 checks, is still announced; then the polled route goes after its three
/// checks. Order, not wall time: what each server counted when the peer saw each withdraw.
#[test]
fn grpc_not_serving_on_watch_withdraws_before_a_second_check_and_events_off_polls() {
    let watched = GrpcServer::start(&Config::default());
    let polled = GrpcServer::start(&Config::default());
    let (watched_address, polled_address) =
        (watched.address.to_string(), polled.address.to_string());
    let mut watched_args = operator_timers("on");
    watched_args.extend(["--prefix", "192.0.2.72/32", "--address", &watched_address]);
    let mut polled_args = operator_timers("off");
    polled_args.extend(["--prefix", "192.0.2.73/32", "--address", &polled_address]);
    let processes = vec![
        Process::probe("watched", "exaprobe-grpc", &watched_args),
        Process::probe("polled", "exaprobe-grpc", &polled_args),
    ];
    let Some(stack) = Stack::start(StackOptions::new(Version::V5, processes)) else {
        return;
    };
    stack.wait_med("192.0.2.72/32", 100, WAIT);
    stack.wait_med("192.0.2.73/32", 100, WAIT);
    stack.wait_or_dump("the watched probe's Watch stream", WAIT, || {
        (watched.watch_requests() == 1).then_some(())
    });

    let (watched_before, polled_before) = (watched.check_requests(), polled.check_requests());
    watched.set("", ServingStatus::NotServing);
    polled.set("", ServingStatus::NotServing);
    let watched_gone = stack.wait_absent("192.0.2.72/32", WAIT);
    let watched_checks = watched.check_requests() - watched_before;
    let polled_checks = polled.check_requests() - polled_before;
    let rib = stack.rib();
    assert!(
        watched_checks <= 1,
        "the watched route was withdrawn after {watched_checks} checks, not on the event"
    );
    assert!(
        polled_checks < 3 && rib.contains_key("192.0.2.73/32"),
        "the polled route ({polled_checks} checks since NOT_SERVING) went first: {rib:?}"
    );

    let polled_gone = stack.wait_absent("192.0.2.73/32", WAIT);
    let polled_checks = polled.check_requests() - polled_before;
    // For the record only (the assertions are on order): how long each took to be seen gone.
    eprintln!(
        "withdrawn at the peer: on the event after {watched_gone:?} ({watched_checks} checks), \
         polled after {:?} ({polled_checks} checks)",
        watched_gone + polled_gone
    );
    assert!(
        polled_checks >= 3,
        "--events off withdrew after {polled_checks} checks, not --fall 3"
    );
    // --events off never opened a Watch stream.
    assert_eq!(polled.watch_requests(), 0);

    // SERVING again: a suspicion, a check at once, back after --rise 1.
    watched.set("", ServingStatus::Serving);
    stack.wait_med("192.0.2.72/32", 100, WAIT);
}
