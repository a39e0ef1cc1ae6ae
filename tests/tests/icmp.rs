//! The ICMP probe end to end: the release `exaprobe-icmp` under a real ExaBGP 5.0 peered with
//! GoBGP, run inside a network namespace of the test's own (`ip netns exec` is its argv) and
//! pinging its default gateway across a veth pair; the route at the peer follows the gateway as
//! it answers, answers late (a responder of testkit, the kernel's echo replies off) and goes
//! away with the link.

use std::time::Duration;

use exaprobe_e2e::{FAST_TIMERS, Process, Stack, StackOptions, Version};
use exaprobe_testkit::netns::{Behaviour, Link, Responder};

const WAIT: Duration = Duration::from_secs(20);
const PREFIX: &str = "192.0.2.72/32";

#[test]
fn icmp_route_follows_the_default_gateway() {
    if !exaprobe_testkit::netns::available() {
        return;
    }
    let link = Link::new("icmp-e2e");
    let mut args: Vec<&str> = FAST_TIMERS.to_vec();
    args.extend_from_slice(&[
        "--timeout",
        "0.6",
        "--prefix",
        PREFIX,
        "--gateway",
        "--rtt-degraded",
        "100ms",
        "--withdraw-on-down",
    ]);
    let mut process = Process::probe("uplink", "exaprobe-icmp", &args);
    let mut argv: Vec<String> = ["ip", "netns", "exec", &link.near.name]
        .map(String::from)
        .to_vec();
    argv.append(&mut process.argv);
    process.argv = argv;
    let Some(stack) = Stack::start(StackOptions::new(Version::V5, vec![process])) else {
        return;
    };
    stack.wait_med(PREFIX, 100, WAIT);
    // The gateway answers, slowly: still announced, with the degraded penalty (200).
    link.silence_far_kernel();
    let slow = Responder::start(
        &link.far,
        Behaviour {
            delay: Duration::from_millis(150),
            ..Behaviour::default()
        },
    );
    stack.wait_med(PREFIX, 300, WAIT);
    drop(slow);
    link.far.sysctl("net.ipv4.icmp_echo_ignore_all", "0");
    stack.wait_med(PREFIX, 100, WAIT);
    // The uplink goes down (and its default route with it): withdrawn.
    link.near.ip(&["link", "set", "veth0", "down"]);
    stack.wait_absent(PREFIX, WAIT);
    // Back up with its default route: announced again.
    link.near.ip(&["link", "set", "veth0", "up"]);
    link.near
        .ip(&["route", "replace", "default", "via", "198.51.100.2"]);
    stack.wait_med(PREFIX, 100, WAIT);
}
