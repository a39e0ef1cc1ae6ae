//! Real redis-server processes for tests, on free loopback ports, with no persistence.

use std::path::Path;
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
}

/// redis-server on a free port with `extra` arguments; `None` (after a message) when missing.
pub fn start(extra: &[&str]) -> Option<Redis> {
    let server = require_tool(
        "redis-server",
        "Debian package redis-server",
        &[Path::new("/usr/bin")],
    )?;
    let dir = temp_dir();
    let port = free_port();
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
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_for("redis-server to listen", Duration::from_secs(10), || {
        tcp_port_open(port).then_some(())
    });
    Some(Redis { port, child, dir })
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
