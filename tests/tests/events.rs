//! Events end to end (issue 27): the release `exaprobe-redis` and `exaprobe-postgres` under a
//! real ExaBGP 5.0 peered with GoBGP, with `--interval 3600`, so that a route that changes
//! during the test can only have changed by an event, before the next interval check.

use std::time::{Duration, Instant};

use exaprobe_e2e::{Process, Stack, StackOptions, Version};
use exaprobe_testkit::redis::{replica_of, start};
use exaprobe_testkit::sentinel::Sentinels;

const WAIT: Duration = Duration::from_secs(20);

/// An hour between checks once UP or DOWN (RISING and FALLING use the fast interval): no
/// interval check comes within the test.
const SLOW_TIMERS: &[&str] = &[
    "--interval",
    "3600",
    "--fast-interval",
    "0.1",
    "--rise",
    "2",
    "--fall",
    "2",
    "--timeout",
    "1",
];

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn probe(name: &str, binary: &str, timers: &[&str], args: &[&str]) -> Process {
    Process::probe(name, binary, &[timers, args].concat())
}

#[test]
fn redis_sentinel_failover_withdraws_the_old_master_at_once() {
    let Some(master) = start(&[]) else { return };
    let Some(replica) = replica_of(&master) else {
        return;
    };
    let Some(sentinels) = Sentinels::start(&master, 1, "cache") else {
        return;
    };
    // Repeated, not a comma-separated list: ExaBGP splits a `run` line at commas.
    let sentinel_args: Vec<String> = sentinels
        .ports
        .iter()
        .flat_map(|port| ["--sentinel".to_string(), format!("127.0.0.1:{port}")])
        .collect();
    let node = |port: u16, prefix: &'static str| {
        let mut args = vec![
            "--prefix".to_string(),
            prefix.to_string(),
            "--url".to_string(),
            format!("redis://127.0.0.1:{port}"),
            "--role".into(),
            "master".into(),
            "--master-name".into(),
            "cache".into(),
            "--withdraw-on-down".into(),
        ];
        args.extend(sentinel_args.iter().cloned());
        args
    };
    let (old, new, polled) = (
        node(master.port, "192.0.2.65/32"),
        node(replica.port, "192.0.2.66/32"),
        node(master.port, "192.0.2.67/32"),
    );
    let mut polled = strs(&polled);
    polled.extend(["--events", "off"]);
    let processes = vec![
        probe("cache-a", "exaprobe-redis", SLOW_TIMERS, &strs(&old)),
        probe("cache-b", "exaprobe-redis", SLOW_TIMERS, &strs(&new)),
        // The same node with --events off and fast polling: it follows by its checks alone.
        probe(
            "cache-a-polled",
            "exaprobe-redis",
            exaprobe_e2e::FAST_TIMERS,
            &polled,
        ),
    ];
    let Some(stack) = Stack::start(StackOptions::new(Version::V5, processes)) else {
        return;
    };
    stack.wait_med("192.0.2.65/32", 100, WAIT);
    stack.wait_med("192.0.2.67/32", 100, WAIT);
    assert!(
        !stack.rib().contains_key("192.0.2.66/32"),
        "the replica must not announce the write VIP"
    );
    // The watchers of cache-a and cache-b; cache-a-polled has none.
    sentinels.wait_subscribed(2);

    let switched = switch_master_seen(sentinels.ports[0]);
    let failover = Instant::now();
    sentinels.failover();
    // cache-a's next interval check is an hour away: only +switch-master can withdraw it.
    stack.wait_absent("192.0.2.65/32", WAIT);
    let withdrawn = Instant::now();
    let switched = switched
        .recv_timeout(WAIT)
        .expect("the test's own subscriber saw +switch-master");
    eprintln!(
        "SENTINEL FAILOVER -> +switch-master {} ms -> old master's VIP withdrawn at the peer {} ms later",
        switched.duration_since(failover).as_millis(),
        withdrawn.saturating_duration_since(switched).as_millis()
    );
    // cache-b, DOWN with an hour to its next check, announces after the suspicion's check
    // and its --rise checks.
    stack.wait_med("192.0.2.66/32", 100, WAIT);
    // Polling (--events off) sees it too, by its checks.
    stack.wait_absent("192.0.2.67/32", WAIT);
    let subscribed: usize = sentinels
        .ports
        .iter()
        .map(|&port| exaprobe_testkit::redis::subscribed_clients(port))
        .sum();
    assert_eq!(subscribed, 2, "--events off runs no watcher");
}

/// When a subscriber of the test's own (redis-cli) sees `+switch-master` on the Sentinel at
/// `port` (for the measurement printed; the subscription is made before this returns).
fn switch_master_seen(port: u16) -> std::sync::mpsc::Receiver<Instant> {
    use std::io::BufRead;
    let mut child = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string(), "SUBSCRIBE", "+switch-master"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("redis-cli");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // "subscribe", "+switch-master", "1": subscribed.
    for _ in 0..3 {
        lines.next();
    }
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _child = exaprobe_testkit::ChildGuard::new(child);
        for line in lines.map_while(Result::ok) {
            if line == "message" {
                let _ = sender.send(Instant::now());
                return;
            }
        }
    });
    receiver
}

#[test]
fn postgres_fast_shutdown_withdraws_before_the_next_interval_check() {
    let Some(postgres) = exaprobe_testkit::postgres::Installation::find() else {
        return;
    };
    let dir = postgres.directory();
    let mut server = postgres.primary(dir.path(), "data", &[]);
    let dsn = server.socket_dsn();
    let processes = vec![
        probe(
            "db",
            "exaprobe-postgres",
            SLOW_TIMERS,
            &[
                "--prefix",
                "192.0.2.52/32",
                "--dsn",
                &dsn,
                "--withdraw-on-down",
            ],
        ),
        probe(
            "db-polled",
            "exaprobe-postgres",
            SLOW_TIMERS,
            &[
                "--prefix",
                "192.0.2.53/32",
                "--dsn",
                &dsn,
                "--withdraw-on-down",
                "--events",
                "off",
            ],
        ),
    ];
    let Some(stack) = Stack::start(StackOptions::new(Version::V5, processes)) else {
        return;
    };
    stack.wait_med("192.0.2.52/32", 100, WAIT);
    stack.wait_med("192.0.2.53/32", 100, WAIT);
    let stopped = Instant::now();
    server.stop_fast();
    // The next interval check is an hour away: the suspicion (57P01) started the checks that
    // confirmed the failure at the fast interval.
    stack.wait_absent("192.0.2.52/32", WAIT);
    eprintln!(
        "pg_ctl stop -m fast -> VIP withdrawn at the peer in {} ms",
        stopped.elapsed().as_millis()
    );
    // --events off: still announced (its next check is an hour away).
    assert!(stack.rib().contains_key("192.0.2.53/32"));
}
