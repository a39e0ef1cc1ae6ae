//! Required probes end to end (`--require`), under ExaBGP 6.0 and 5.0 with GoBGP: an HTTP probe
//! requires a DNS probe and an uplink check, both `--no-routes` processes of the same
//! exabgp.conf that only publish their state files.
//!
//! The HTTP probe checks every 5 s: what it does in between follows from the required state
//! files alone (the DNS server stops: withdrawn; the DNS probe is SIGKILLed, its file left
//! behind: withdrawn; the uplink's disable file: drained with 65535:0, then withdrawn).

use std::time::Duration;

use exaprobe_e2e::{FAST_TIMERS, Process, Stack, StackOptions, Version};
use exaprobe_testkit::{free_port, http_server, unbound::unbound_on};
use nix::sys::signal::Signal;

const WAIT: Duration = Duration::from_secs(20);
const PREFIX: &str = "192.0.2.80/32";

macro_rules! for_each_exabgp {
    ($($scenario:ident),* $(,)?) => {
        mod exabgp_6_0 { $( #[test] fn $scenario() { super::$scenario(exaprobe_e2e::Version::V6) } )* }
        mod exabgp_5_0 { $( #[test] fn $scenario() { super::$scenario(exaprobe_e2e::Version::V5) } )* }
    };
}

for_each_exabgp!(http_route_follows_the_dns_probe_it_requires);

fn http_route_follows_the_dns_probe_it_requires(version: Version) {
    let states = exaprobe_testkit::temp_dir();
    let dns_state = states.path().join("dns.json");
    let uplink_state = states.path().join("uplink.json");
    let uplink_disable = states.path().join("uplink.disable");
    let (dns_port, http_port) = (free_port(), free_port());
    let Some(dns_server) = unbound_on(dns_port, Some(2026112501), None) else {
        return;
    };
    let site = exaprobe_testkit::temp_dir();
    std::fs::write(site.path().join("health"), "ok\n").unwrap();
    let Some(_http_server) = http_server(site.path(), http_port) else {
        return;
    };
    let dns_address = format!("127.0.0.1:{dns_port}");
    let url = format!("http://127.0.0.1:{http_port}/health");
    let mut dns_args: Vec<&str> = FAST_TIMERS.to_vec();
    dns_args.extend([
        "--no-routes",
        "--state-file",
        dns_state.to_str().unwrap(),
        "--server",
        &dns_address,
        "--query",
        "www.example.test",
        "--expect-answer",
        "192.0.2.80",
        "--recursion-desired",
        "off",
    ]);
    // The uplink check: healthy while its flag file exists.
    let uplink_ok = states.path().join("uplink.ok");
    std::fs::write(&uplink_ok, "").unwrap();
    let uplink = Process::exec_on_file(
        "uplink",
        &uplink_ok,
        &[
            "--no-routes",
            "--state-file",
            uplink_state.to_str().unwrap(),
            "--disable",
            uplink_disable.to_str().unwrap(),
        ],
    );
    let processes = vec![
        uplink,
        // Not respawned: its state file stays behind when it is killed.
        Process::probe("dns", "exaprobe-dns", &dns_args).without_respawn(),
        Process::probe(
            "web",
            "exaprobe-http",
            &[
                "--prefix",
                PREFIX,
                "--withdraw-on-down",
                "--interval",
                "5",
                "--rise",
                "1",
                "--drain",
                "2",
                "--url",
                &url,
                "--require",
                dns_state.to_str().unwrap(),
                "--require",
                uplink_state.to_str().unwrap(),
            ],
        ),
    ];
    let Some(stack) = Stack::start(StackOptions::new(version, processes)) else {
        return;
    };
    stack.wait_med(PREFIX, 100, WAIT);
    // The DNS server stops: the DNS probe goes DOWN (its --fall), the HTTP route goes at once.
    drop(dns_server);
    let took = stack.wait_absent(PREFIX, WAIT);
    eprintln!(
        "DNS server stopped -> HTTP route withdrawn in {} ms",
        took.as_millis()
    );
    let Some(_dns_server) = unbound_on(dns_port, Some(2026112501), None) else {
        return;
    };
    stack.wait_med(PREFIX, 100, WAIT);
    // The uplink's disable file: the HTTP route is drained (65535:0), then withdrawn.
    std::fs::write(&uplink_disable, "uplink maintenance\n").unwrap();
    stack.wait_route(PREFIX, WAIT, |route| {
        route.communities.iter().any(|c| c == "65535:0")
    });
    stack.wait_absent(PREFIX, WAIT);
    std::fs::remove_file(&uplink_disable).unwrap();
    stack.wait_med(PREFIX, 100, WAIT);
    // The DNS probe is SIGKILLed: its file stays, saying UP, but its writer is gone.
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dns_state).unwrap()).unwrap();
    assert_eq!(state["health"], "UP", "{state}");
    exaprobe_e2e::signal(stack.probe_pid("dns"), Signal::SIGKILL);
    let took = stack.wait_absent(PREFIX, WAIT);
    eprintln!(
        "DNS probe SIGKILLed -> HTTP route withdrawn in {} ms",
        took.as_millis()
    );
    stack.wait_or_dump("the web probe to log the dead writer", WAIT, || {
        stack.logs().contains("is gone").then_some(())
    });
}
