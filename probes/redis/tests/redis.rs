//! The Redis probe against real redis-server processes started by the test on loopback ports:
//! a master and a replica, password and ACL authentication, a frozen server (SIGSTOP), a slow
//! one (DEBUG SLEEP), TLS with test-made certificates, a Sentinel, and a Unix socket.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use exaprobe_core::{Outcome, Probe};
use exaprobe_redis::{RedisOptions, RedisProbe};
use exaprobe_testkit::redis::{cli, replica_of, start};
use exaprobe_testkit::{ChildGuard, free_port, require_tool, tcp_port_open, temp_dir, wait_for};
use nix::sys::signal::Signal;

const TIMEOUT: Duration = Duration::from_secs(1);

/// The deadline a check started now gets under TIMEOUT (the runner gives the same).
fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + TIMEOUT.mul_f64(0.95)
}

fn probe(args: &[String]) -> RedisProbe {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        redis: RedisOptions,
    }
    let argv = std::iter::once("exaprobe-redis".to_string()).chain(args.iter().cloned());
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}"));
    RedisProbe::new(&cli.redis).unwrap()
}

async fn check(url: &str, args: &[&str]) -> Outcome {
    let mut all = vec!["--url".to_string(), url.to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    probe(&all).check(deadline()).await
}

fn reason(outcome: Outcome) -> String {
    match outcome {
        Outcome::Unhealthy { reason } => reason,
        other => panic!("expected unhealthy, got {other:?}"),
    }
}

fn url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}")
}

#[tokio::test]
async fn master_replica_roles_link_lag_and_promotion() {
    let Some(mut master) = start(&[]) else { return };
    let Some(replica) = replica_of(&master) else {
        return;
    };
    assert_eq!(
        check(&url(master.port), &["--role", "master"]).await,
        Outcome::Healthy
    );
    assert_eq!(
        check(
            &url(replica.port),
            &[
                "--role",
                "replica",
                "--max-link-age",
                "10",
                "--max-lag-bytes",
                "1000000"
            ]
        )
        .await,
        Outcome::Healthy
    );
    assert_eq!(
        reason(check(&url(replica.port), &["--role", "master"]).await),
        "role is replica, --role master wanted"
    );
    assert_eq!(
        reason(check(&url(master.port), &["--role", "replica"]).await),
        "role is master, --role replica wanted"
    );
    // A canary key written on the master, read on the replica.
    cli(master.port, &["SET", "canary", "ok"]);
    wait_for("the canary to replicate", Duration::from_secs(10), || {
        (cli(replica.port, &["GET", "canary"]) == "ok").then_some(())
    });
    assert_eq!(
        check(&url(replica.port), &["--expect-key", "canary=ok"]).await,
        Outcome::Healthy
    );
    assert_eq!(
        reason(check(&url(replica.port), &["--expect-key", "canary=bad"]).await),
        "key canary is \"ok\", expected \"bad\""
    );
    assert_eq!(
        reason(check(&url(replica.port), &["--expect-key", "missing=x"]).await),
        "key missing does not exist"
    );
    // The master stops: the replica's link goes down.
    master.child.signal(Signal::SIGKILL);
    master.child.wait_timeout(Duration::from_secs(5));
    let mut replica_probe = probe(&[
        "--url".into(),
        url(replica.port),
        "--role".into(),
        "replica".into(),
    ]);
    let why = loop {
        match replica_probe.check(deadline()).await {
            Outcome::Unhealthy { reason } => break reason,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert!(
        why.starts_with(&format!(
            "replica's link to master 127.0.0.1:{} is down",
            master.port
        )),
        "{why}"
    );
    // Promotion flips the role.
    cli(replica.port, &["REPLICAOF", "NO", "ONE"]);
    assert_eq!(
        check(&url(replica.port), &["--role", "master"]).await,
        Outcome::Healthy
    );
}

#[tokio::test]
async fn passwords_and_acl_users() {
    let Some(server) = start(&["--requirepass", "s3cret"]) else {
        return;
    };
    let dir = server.dir.path();
    let write = |name: &str, secret: &str| {
        let path = dir.join(name);
        std::fs::write(&path, format!("{secret}\n")).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        path.display().to_string()
    };
    let (good, bad) = (write("good", "s3cret"), write("bad", "wrong"));
    assert!(reason(check(&url(server.port), &[]).await).contains("NOAUTH"));
    let why = reason(check(&url(server.port), &["--password-file", &bad]).await);
    assert!(why.contains("WRONGPASS"), "{why}");
    assert_eq!(
        check(&url(server.port), &["--password-file", &good]).await,
        Outcome::Healthy
    );
    cli(
        server.port,
        &[
            "-a",
            "s3cret",
            "--no-auth-warning",
            "ACL",
            "SETUSER",
            "probe",
            "on",
            ">pw2",
            "+ping",
            "+info",
            "+get",
            "~*",
        ],
    );
    let user_file = write("user", "pw2");
    assert_eq!(
        check(
            &url(server.port),
            &["--username", "probe", "--password-file", &user_file]
        )
        .await,
        Outcome::Healthy
    );
    let target = probe(&[
        "--url".into(),
        format!("redis://probe:pw2@127.0.0.1:{}", server.port),
    ])
    .describe();
    assert!(!target.contains("pw2"), "{target}");
}

#[tokio::test]
async fn frozen_server_times_out_then_recovers() {
    let Some(server) = start(&[]) else { return };
    let mut p = probe(&["--url".into(), url(server.port)]);
    assert_eq!(p.check(deadline()).await, Outcome::Healthy);
    server.child.signal(Signal::SIGSTOP);
    let started = Instant::now();
    assert_eq!(
        reason(p.check(deadline()).await),
        "timeout waiting for PING"
    );
    assert!(started.elapsed() < TIMEOUT);
    server.child.signal(Signal::SIGCONT);
    assert_eq!(p.check(deadline()).await, Outcome::Healthy);
}

#[tokio::test]
async fn slow_ping_still_answers() {
    let Some(server) = start(&["--enable-debug-command", "yes"]) else {
        return;
    };
    let port = server.port;
    // One client puts the server to sleep; wait until it really sleeps (a PING goes unanswered).
    let mut sleeper = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(&mut sleeper, b"DEBUG SLEEP 0.6\r\n").unwrap();
    wait_for("the server to sleep", Duration::from_secs(5), || {
        let mut ping = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        ping.set_read_timeout(Some(Duration::from_millis(50)))
            .ok()?;
        std::io::Write::write_all(&mut ping, b"PING\r\n").ok()?;
        let mut answer = [0u8; 7];
        std::io::Read::read(&mut ping, &mut answer)
            .is_err()
            .then_some(())
    });
    let started = Instant::now();
    assert_eq!(check(&url(port), &[]).await, Outcome::Healthy);
    // The runner turns this into degraded with --degraded-latency below the sleep.
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn tls_and_unix_socket() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let dir = temp_dir();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "exaprobe redis test CA");
    let ca = params.self_signed(&key).unwrap();
    let issuer = rcgen::Issuer::new(params, key);
    let server_key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(path("ca.pem"), ca.pem()).unwrap();
    std::fs::write(path("server.pem"), cert.pem()).unwrap();
    std::fs::write(path("server.key"), server_key.serialize_pem()).unwrap();
    let tls_port = free_port();
    let socket = path("redis.sock");
    let Some(server) = start(&[
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &path("server.pem"),
        "--tls-key-file",
        &path("server.key"),
        "--tls-ca-cert-file",
        &path("ca.pem"),
        "--tls-auth-clients",
        "no",
        "--unixsocket",
        &socket,
        "--unixsocketperm",
        "700",
    ]) else {
        return;
    };
    wait_for("the TLS port", Duration::from_secs(10), || {
        tcp_port_open(tls_port).then_some(())
    });
    let tls_url = format!("rediss://127.0.0.1:{tls_port}");
    assert_eq!(
        check(
            &tls_url,
            &[
                "--ca-file",
                &path("ca.pem"),
                "--tls-server-name",
                "localhost"
            ]
        )
        .await,
        Outcome::Healthy
    );
    let why = reason(
        check(
            &tls_url,
            &[
                "--ca-file",
                &path("ca.pem"),
                "--tls-server-name",
                "other.example",
            ],
        )
        .await,
    );
    assert!(
        why.contains("TLS handshake")
            && why.ends_with("name mismatch: certificate is for localhost, not other.example"),
        "{why}"
    );
    assert_eq!(
        check(&format!("unix://{socket}"), &["--role", "master"]).await,
        Outcome::Healthy
    );
    drop(server);
}

#[tokio::test]
async fn sentinel_decides_who_is_master() {
    let Some(master) = start(&[]) else { return };
    let Some(replica) = replica_of(&master) else {
        return;
    };
    let Some(server) = require_tool("redis-server", "Debian package redis-server", &[]) else {
        return;
    };
    let dir = temp_dir();
    let sentinel_port = free_port();
    let config = dir.path().join("sentinel.conf");
    std::fs::write(
        &config,
        format!(
            "port {sentinel_port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {} 1\n",
            master.port
        ),
    )
    .unwrap();
    let _sentinel = ChildGuard::spawn(
        Command::new(server)
            .arg(&config)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_for("the sentinel to listen", Duration::from_secs(10), || {
        tcp_port_open(sentinel_port).then_some(())
    });
    let sentinel = format!("127.0.0.1:{sentinel_port}");
    let args = ["--sentinel", sentinel.as_str(), "--master-name", "mymaster"];
    assert_eq!(check(&url(master.port), &args).await, Outcome::Healthy);
    let why = reason(check(&url(replica.port), &args).await);
    assert_eq!(
        why,
        format!(
            "sentinel {sentinel} says the master of mymaster is 127.0.0.1:{}, not this node (127.0.0.1:{})",
            master.port, replica.port
        )
    );
    let why = reason(
        check(
            &url(master.port),
            &["--sentinel", &sentinel, "--master-name", "nosuch"],
        )
        .await,
    );
    assert!(why.contains("knows no master named nosuch"), "{why}");
}

#[tokio::test]
async fn nothing_listening() {
    let port = free_port();
    assert_eq!(
        reason(check(&url(port), &[]).await),
        format!("connect 127.0.0.1:{port}: connection refused")
    );
    assert_eq!(
        reason(check("unix:///nonexistent/redis.sock", &[]).await),
        "connect /nonexistent/redis.sock: no such socket"
    );
}

#[tokio::test]
async fn busy_script_is_reported() {
    let Some(server) = start(&["--busy-reply-threshold", "100"]) else {
        return;
    };
    let port = server.port;
    // A Lua script that never ends: after 100 ms Redis answers every other client -BUSY.
    let script = std::thread::spawn(move || cli(port, &["EVAL", "while true do end", "0"]));
    let mut p = probe(&["--url".into(), url(port), "--fresh-connection".into()]);
    let why = loop {
        match p.check(deadline()).await {
            Outcome::Unhealthy { reason } if reason.contains("BUSY") => break reason,
            Outcome::Healthy => tokio::time::sleep(Duration::from_millis(20)).await,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(why, "Redis is busy running a script (BUSY)");
    cli(port, &["SCRIPT", "KILL"]);
    script.join().unwrap();
    assert_eq!(p.check(deadline()).await, Outcome::Healthy);
}

#[tokio::test]
async fn connection_closed_by_the_server_idle_timeout_is_replaced_within_the_check() {
    use exaprobe_testkit::redis::{connected_clients, connections_received, with_idle_timeout};
    let Some(server) = with_idle_timeout(1) else {
        return;
    };
    let mut p = probe(&["--url".to_string(), url(server.port)]);
    for round in 1..=3 {
        assert_eq!(p.check(deadline()).await, Outcome::Healthy, "round {round}");
        // The server closes the probe's idle connection: only the asking redis-cli remains.
        wait_for(
            "the server to close the idle connection",
            Duration::from_secs(10),
            || (connected_clients(server.port) == 1).then_some(()),
        );
        let before = connections_received(server.port);
        assert_eq!(
            p.check(deadline()).await,
            Outcome::Healthy,
            "round {round}, kept connection closed"
        );
        // One redis-cli connection for the count itself, one for the probe's new connection.
        assert_eq!(
            connections_received(server.port),
            before + 2,
            "round {round}"
        );
    }
}

#[tokio::test]
async fn failure_on_a_fresh_connection_is_not_retried() {
    use exaprobe_testkit::http::{Reset, resetting_server};
    // A TCP server that resets every connection as soon as a command arrives.
    let server = resetting_server(Reset::Always);
    let mut p = probe(&["--url".to_string(), format!("redis://{}", server.address)]);
    let _ = reason(p.check(deadline()).await);
    assert_eq!(
        server.connections.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "a failure on a fresh connection is the verdict"
    );
}
