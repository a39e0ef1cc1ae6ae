//! Routes under a real ExaBGP 5.0 and GoBGP while the service misbehaves the way real ones do:
//! Redis closing idle connections (`timeout 1`), an HTTP server resetting a reused keep-alive
//! connection. The probes must reach UP and stay there (strict `--fall 1`): such a closed
//! connection says nothing about the service's health.

use std::sync::atomic::Ordering;
use std::time::Duration;

use exaprobe_e2e::{Process, Stack, StackOptions, Version};
use exaprobe_testkit::wait_for;

const WAIT: Duration = Duration::from_secs(20);

/// Start the stack with one probe.
fn stack(process: Process) -> Option<Stack> {
    Stack::start(StackOptions::new(Version::V5, vec![process]))
}

/// Poll until `done`, asserting at every poll that `prefix` is still announced with MED 100.
fn stays_up(stack: &Stack, prefix: &str, what: &str, done: impl Fn() -> bool) {
    wait_for(what, Duration::from_secs(30), || {
        let med = stack.rib().get(prefix).and_then(|route| route.med);
        assert_eq!(med, Some(100), "{prefix} left UP:\n{}", stack.logs());
        done().then_some(())
    });
}

#[test]
fn redis_closing_idle_connections_is_up_and_stays_up() {
    use exaprobe_testkit::redis::{cli, with_idle_timeout};
    let Some(server) = with_idle_timeout(1) else {
        return;
    };
    let pings = || -> u64 {
        cli(server.port, &["INFO", "commandstats"])
            .lines()
            .find_map(|line| {
                let rest = line.trim().strip_prefix("cmdstat_ping:calls=")?;
                rest.split(',').next()?.parse().ok()
            })
            .unwrap_or(0)
    };
    let url = format!("redis://127.0.0.1:{}", server.port);
    let probe = Process::probe(
        "cache-idle",
        "exaprobe-redis",
        &[
            "--prefix",
            "192.0.2.70/32",
            "--url",
            &url,
            "--interval",
            "2",
            "--fast-interval",
            "2",
            "--rise",
            "2",
            "--fall",
            "1",
            "--withdraw-on-down",
        ],
    );
    let Some(stack) = stack(probe) else { return };
    stack.wait_med("192.0.2.70/32", 100, WAIT);
    // Three more checks, each on a connection the server closed while the probe waited.
    let start = pings();
    stays_up(&stack, "192.0.2.70/32", "three more checks", || {
        pings() >= start + 3
    });
}

#[test]
fn http_server_resetting_reused_connections_is_up_and_stays_up() {
    use exaprobe_testkit::http::{Reset, resetting_server};
    let server = resetting_server(Reset::OnReuse);
    let url = format!("http://{}/", server.address);
    let probe = Process::probe(
        "web-reset",
        "exaprobe-http",
        &[
            "--prefix",
            "192.0.2.71/32",
            "--url",
            &url,
            "--interval",
            "0.3",
            "--fast-interval",
            "0.1",
            "--rise",
            "2",
            "--fall",
            "1",
            "--withdraw-on-down",
        ],
    );
    let Some(stack) = stack(probe) else { return };
    stack.wait_med("192.0.2.71/32", 100, WAIT);
    let start = server.resets.load(Ordering::SeqCst);
    stays_up(&stack, "192.0.2.71/32", "three more resets", || {
        server.resets.load(Ordering::SeqCst) >= start + 3
    });
}
