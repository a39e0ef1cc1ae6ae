//! Real Unbound DNS servers for tests, on free loopback ports, configured so that no query can
//! ever leave the machine.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{ChildGuard, free_port, require_tool, tcp_port_open, temp_dir, wait_for};

/// A running Unbound; killed on drop.
pub struct Server {
    /// Its UDP and TCP port on 127.0.0.1.
    pub port: u16,
    _child: ChildGuard,
    _dir: tempfile::TempDir,
}

/// The example.test. zone with SOA serial `serial`.
pub fn zone(serial: u32) -> String {
    format!(
        "$ORIGIN example.test.\n$TTL 300\n@ IN SOA ns1.example.test. hostmaster.example.test. ( {serial} 3600 600 86400 300 )\n\
         @ IN NS ns1.example.test.\nns1 IN A 192.0.2.53\nwww IN A 192.0.2.80\nwww IN AAAA 2001:db8::80\n"
    )
}

/// Unbound on a free port with local data (local.test.), a refusing zone, and example.test.:
/// served authoritatively with SOA serial `serial`, or (`stub` = a port) resolved from another
/// server, as a resolver does. Recursion for anything else goes to a closed loopback port, so
/// no query ever leaves the machine.
pub fn unbound(serial: Option<u32>, stub: Option<u16>) -> Option<Server> {
    unbound_on(free_port(), serial, stub)
}

/// The same on a given port (to restart a server where it was).
pub fn unbound_on(port: u16, serial: Option<u32>, stub: Option<u16>) -> Option<Server> {
    let unbound = require_tool(
        "unbound",
        "Debian package unbound",
        &[Path::new("/usr/sbin")],
    )?;
    let dir = temp_dir();
    let mut lines = vec![
        "server:".to_string(),
        format!("interface: 127.0.0.1@{port}"),
        format!("port: {port}"),
        "do-daemonize: no".into(),
        "username: \"\"".into(),
        "chroot: \"\"".into(),
        format!("directory: \"{}\"", dir.path().display()),
        format!("pidfile: \"{}/unbound.pid\"", dir.path().display()),
        "use-syslog: no".into(),
        "logfile: \"\"".into(),
        "do-ip6: no".into(),
        "access-control: 127.0.0.0/8 allow".into(),
        "hide-version: no".into(),
        "module-config: \"iterator\"".into(),
        "do-not-query-localhost: no".into(),
        "local-zone: \"test.\" nodefault".into(),
        "local-zone: \"local.test.\" static".into(),
        "local-data: \"www.local.test. IN A 192.0.2.1\"".into(),
        "local-zone: \"refused.test.\" refuse".into(),
    ];
    lines.extend((0..20).map(|i| {
        format!("local-data: 'big.local.test. IN TXT \"record {i:02} padding padding padding padding padding padding\"'")
    }));
    lines.extend([
        "forward-zone:".into(),
        "name: \".\"".into(),
        "forward-addr: 127.0.0.1@1".into(),
    ]);
    if let Some(serial) = serial {
        std::fs::write(dir.path().join("example.test.zone"), zone(serial)).unwrap();
        lines.extend([
            "auth-zone:".to_string(),
            "name: \"example.test.\"".into(),
            format!("zonefile: \"{}/example.test.zone\"", dir.path().display()),
            "for-downstream: yes".into(),
            "for-upstream: no".into(),
        ]);
    }
    if let Some(stub) = stub {
        lines.extend([
            "stub-zone:".to_string(),
            "name: \"example.test.\"".into(),
            format!("stub-addr: 127.0.0.1@{stub}"),
        ]);
    }
    let config_file = dir.path().join("unbound.conf");
    std::fs::write(&config_file, lines.join("\n") + "\n").unwrap();
    let child = ChildGuard::spawn(
        Command::new(unbound)
            .arg("-d")
            .arg("-c")
            .arg(&config_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_for("unbound to listen", Duration::from_secs(10), || {
        tcp_port_open(port).then_some(())
    });
    Some(Server {
        port,
        _child: child,
        _dir: dir,
    })
}
