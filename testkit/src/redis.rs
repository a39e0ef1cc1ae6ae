//! Real redis-server processes for tests, on free loopback ports, with no persistence.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{ChildGuard, free_port, require_tool, tcp_port_open, temp_dir, wait_for};

/// A running redis-server; killed on drop.
pub struct Redis {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The process (to signal it).
    pub child: ChildGuard,
    /// Its working directory (for certificates, sockets, password files).
    pub dir: tempfile::TempDir,
    /// The program and the extra arguments it was started with (for a restart).
    server: PathBuf,
    extra: Vec<String>,
}

/// redis-server on a free port with `extra` arguments; `None` (after a message) when missing.
pub fn start(extra: &[&str]) -> Option<Redis> {
    let server = server_program()?;
    let dir = temp_dir();
    let port = free_port();
    let extra: Vec<String> = extra.iter().map(ToString::to_string).collect();
    let child = spawn_server(&server, port, dir.path(), &extra);
    Some(Redis {
        port,
        child,
        dir,
        server,
        extra,
    })
}

impl Redis {
    /// Stop the server (SIGTERM: it closes every client connection and exits) and wait for it.
    pub fn stop(&mut self) {
        self.child.signal(nix::sys::signal::Signal::SIGTERM);
        assert!(
            self.child.wait_timeout(Duration::from_secs(10)).is_some(),
            "redis-server did not stop"
        );
    }

    /// Start the server again on the same port, with the same arguments.
    pub fn restart(&mut self) {
        self.child = spawn_server(&self.server, self.port, self.dir.path(), &self.extra);
    }
}

/// The redis-server program (Sentinels are the same program); `None` after a message when
/// it is missing outside CI.
pub(crate) fn server_program() -> Option<PathBuf> {
    require_tool(
        "redis-server",
        "Debian package redis-server",
        &[Path::new("/usr/bin")],
    )
}

/// redis-server on `port`, listening when this returns.
fn spawn_server(server: &Path, port: u16, dir: &Path, extra: &[String]) -> ChildGuard {
    let child = ChildGuard::spawn(
        Command::new(server)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_for("redis-server to listen", Duration::from_secs(10), || {
        tcp_port_open(port).then_some(())
    });
    child
}

/// Start a replica of `master` and wait until its link is up.
pub fn replica_of(master: &Redis) -> Option<Redis> {
    let replica = start(&["--replicaof", "127.0.0.1", &master.port.to_string()])?;
    wait_for(
        "the replica's link to come up",
        Duration::from_secs(15),
        || {
            cli(replica.port, &["INFO", "replication"])
                .contains("master_link_status:up")
                .then_some(())
        },
    );
    Some(replica)
}

/// Run redis-cli against `port`; returns its trimmed stdout.
pub fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli (Debian package redis-tools)");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// redis-server that closes a client's connection after `seconds` idle (redis.conf `timeout`),
/// as many production servers are configured: a kept connection goes stale between checks.
pub fn with_idle_timeout(seconds: u32) -> Option<Redis> {
    start(&["--timeout", &seconds.to_string()])
}

/// How many connections the server has accepted so far (INFO stats).
pub fn connections_received(port: u16) -> u64 {
    info_number(port, "stats", "total_connections_received")
}

/// How many clients are connected now (INFO clients; counts the asking redis-cli too).
pub fn connected_clients(port: u16) -> u64 {
    info_number(port, "clients", "connected_clients")
}

fn info_number(port: u16, section: &str, field: &str) -> u64 {
    cli(port, &["INFO", section])
        .lines()
        .find_map(|line| line.trim().strip_prefix(&format!("{field}:"))?.parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no {field}"))
}

/// The clients of the server on `port` subscribed to at least one channel (`CLIENT LIST`'s
/// `sub=N` with N > 0): a watcher's subscription, seen from the server.
pub fn subscribed_clients(port: u16) -> usize {
    cli(port, &["CLIENT", "LIST"])
        .lines()
        .filter(|line| {
            line.split_whitespace()
                .find_map(|field| field.strip_prefix("sub="))
                .is_some_and(|n| n != "0")
        })
        .count()
}
