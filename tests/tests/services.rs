//! One end-to-end scenario per service probe under a real ExaBGP (6.0 and 5.0) and GoBGP: the
//! route follows a real service (Python's http.server for HTTP and TCP, Unbound for DNS, a PostgreSQL
//! primary and streaming replica for the database VIP across a failover).

use std::time::Duration;

use exaprobe_e2e::{FAST_TIMERS, Process, Stack, StackOptions, Version};
use exaprobe_testkit::{free_port, http_server};

const WAIT: Duration = Duration::from_secs(20);

/// Every service scenario runs under ExaBGP 6.0 (`--exabgp-api 6`) and 5.0.
macro_rules! for_each_exabgp {
    ($($scenario:ident),* $(,)?) => {
        mod exabgp_6_0 { $( #[test] fn $scenario() { super::$scenario(exaprobe_e2e::Version::V6) } )* }
        mod exabgp_5_0 { $( #[test] fn $scenario() { super::$scenario(exaprobe_e2e::Version::V5) } )* }
    };
}

for_each_exabgp!(
    http_and_tcp_routes_follow_the_server,
    primary_vip_follows_a_postgres_failover,
    dns_route_follows_the_server,
    redis_write_vip_follows_the_master_role,
);

fn probe(name: &str, binary: &str, args: &[&str]) -> Process {
    let mut all: Vec<&str> = FAST_TIMERS.to_vec();
    all.extend_from_slice(args);
    Process::probe(name, binary, &all)
}

fn http_and_tcp_routes_follow_the_server(version: Version) {
    let site = exaprobe_testkit::temp_dir();
    std::fs::write(site.path().join("health"), "ok\n").unwrap();
    let port = free_port();
    let Some(server) = http_server(site.path(), port) else {
        return;
    };
    let url = format!("http://127.0.0.1:{port}/health");
    let address = format!("127.0.0.1:{port}");
    let processes = vec![
        probe(
            "web",
            "exaprobe-http",
            &[
                "--prefix",
                "192.0.2.40/32",
                "--url",
                &url,
                "--expect-body",
                "^ok",
            ],
        ),
        probe(
            "port",
            "exaprobe-tcp",
            &[
                "--prefix",
                "192.0.2.41/32",
                "--address",
                &address,
                "--withdraw-on-down",
            ],
        ),
    ];
    let Some(stack) = Stack::start(StackOptions::new(version, processes)) else {
        return;
    };
    stack.wait_med("192.0.2.40/32", 100, WAIT);
    stack.wait_med("192.0.2.41/32", 100, WAIT);
    // The page goes away (404): HTTP down, TCP still fine.
    std::fs::remove_file(site.path().join("health")).unwrap();
    stack.wait_med("192.0.2.40/32", 1000, WAIT);
    assert_eq!(stack.rib()["192.0.2.41/32"].med, Some(100));
    // The server stops: TCP withdraws.
    drop(server);
    stack.wait_absent("192.0.2.41/32", WAIT);
    // Back, with the page.
    std::fs::write(site.path().join("health"), "ok\n").unwrap();
    let Some(_server) = http_server(site.path(), port) else {
        return;
    };
    stack.wait_med("192.0.2.40/32", 100, WAIT);
    stack.wait_med("192.0.2.41/32", 100, WAIT);
}

fn primary_vip_follows_a_postgres_failover(version: Version) {
    let Some(postgres) = exaprobe_testkit::postgres::Installation::find() else {
        return;
    };
    let dir = postgres.directory();
    let mut primary = postgres.primary(dir.path(), "primary", &[]);
    let replica = postgres.replica(dir.path(), "replica", &primary);
    // Each database node's probe announces the read-write VIP only while its node is primary.
    // (One ExaBGP here, so node A's and node B's announcements are two prefixes.)
    let node_a = primary.socket_dsn();
    let node_b = replica.socket_dsn();
    let processes = vec![
        probe(
            "db-a",
            "exaprobe-postgres",
            &[
                "--prefix",
                "192.0.2.50/32",
                "--dsn",
                &node_a,
                "--role",
                "primary",
                "--withdraw-on-down",
            ],
        ),
        probe(
            "db-b",
            "exaprobe-postgres",
            &[
                "--prefix",
                "192.0.2.51/32",
                "--dsn",
                &node_b,
                "--role",
                "primary",
                "--withdraw-on-down",
            ],
        ),
    ];
    let Some(stack) = Stack::start(StackOptions::new(version, processes)) else {
        return;
    };
    stack.wait_med("192.0.2.50/32", 100, WAIT);
    assert!(
        !stack.rib().contains_key("192.0.2.51/32"),
        "the replica must not announce the primary VIP"
    );
    // Failover: the primary dies, the replica is promoted.
    primary.stop();
    stack.wait_absent("192.0.2.50/32", WAIT);
    replica.execute_local("SELECT pg_promote()");
    let took = stack.wait_med("192.0.2.51/32", 100, WAIT);
    eprintln!(
        "promotion -> primary VIP announced from node B in {} ms",
        took.as_millis()
    );
}

fn dns_route_follows_the_server(version: Version) {
    let port = free_port();
    let Some(server) = exaprobe_testkit::unbound::unbound_on(port, Some(2026112501), None) else {
        return;
    };
    let address = format!("127.0.0.1:{port}");
    let processes = vec![probe(
        "dns",
        "exaprobe-dns",
        &[
            "--prefix",
            "192.0.2.53/32",
            "--withdraw-on-down",
            "--server",
            &address,
            "--query",
            "www.example.test",
            "--expect-answer",
            "192.0.2.80",
            "--require-authoritative",
            "--recursion-desired",
            "off",
        ],
    )];
    let Some(stack) = Stack::start(StackOptions::new(version, processes)) else {
        return;
    };
    stack.wait_med("192.0.2.53/32", 100, WAIT);
    drop(server);
    stack.wait_absent("192.0.2.53/32", WAIT);
    let Some(_server) = exaprobe_testkit::unbound::unbound_on(port, Some(2026112501), None) else {
        return;
    };
    stack.wait_med("192.0.2.53/32", 100, WAIT);
}

fn redis_write_vip_follows_the_master_role(version: Version) {
    use exaprobe_testkit::redis::{cli, replica_of, start};
    let Some(master) = start(&[]) else { return };
    let Some(replica) = replica_of(&master) else {
        return;
    };
    let processes = vec![
        probe(
            "cache-a",
            "exaprobe-redis",
            &[
                "--prefix",
                "192.0.2.63/32",
                "--url",
                &format!("redis://127.0.0.1:{}", master.port),
                "--role",
                "master",
                "--withdraw-on-down",
            ],
        ),
        probe(
            "cache-b",
            "exaprobe-redis",
            &[
                "--prefix",
                "192.0.2.64/32",
                "--url",
                &format!("redis://127.0.0.1:{}", replica.port),
                "--role",
                "master",
                "--withdraw-on-down",
            ],
        ),
    ];
    let Some(stack) = Stack::start(StackOptions::new(version, processes)) else {
        return;
    };
    stack.wait_med("192.0.2.63/32", 100, WAIT);
    assert!(
        !stack.rib().contains_key("192.0.2.64/32"),
        "the replica must not announce the write VIP"
    );
    // Failover: the master dies, the replica is promoted.
    master.child.signal(nix::sys::signal::Signal::SIGKILL);
    stack.wait_absent("192.0.2.63/32", WAIT);
    assert_eq!(cli(replica.port, &["REPLICAOF", "NO", "ONE"]), "OK");
    stack.wait_med("192.0.2.64/32", 100, WAIT);
}
