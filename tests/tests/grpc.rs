//! The gRPC probe end to end: the release `exaprobe-grpc` under a real ExaBGP 5.0 peered with
//! GoBGP, asking a real tonic health server (testkit) that the test flips between SERVING,
//! UNKNOWN and NOT_SERVING; the route at the peer follows.

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
