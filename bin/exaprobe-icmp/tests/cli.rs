//! The exaprobe-icmp binary inside a namespace of the test's own: which socket it gets as root
//! and as an unprivileged user, the one error when it can have neither, and a name resolved
//! again on SIGHUP.

use std::process::Stdio;
use std::time::Duration;

use exaprobe_testkit::netns::{Link, Netns};
use exaprobe_testkit::spawned::Spawned;

const BINARY: &str = env!("CARGO_BIN_EXE_exaprobe-icmp");
const FAR: &str = "198.51.100.2";

/// What `BINARY ARGS` printed, run inside `netns`, as `nobody` when `unprivileged`.
fn run_inside(netns: &Netns, unprivileged: bool, args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = netns.command(if unprivileged { "setpriv" } else { BINARY });
    if unprivileged {
        command.args([
            "--reuid",
            "nobody",
            "--regid",
            "nogroup",
            "--clear-groups",
            BINARY,
        ]);
    }
    let output = command
        .args(args)
        .env_remove("EXAPROBE_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn root_gets_a_raw_socket_and_checks_once() {
    if !exaprobe_testkit::netns::available() {
        return;
    }
    let link = Link::new("icmpcli-raw");
    let (code, stdout, stderr) = run_inside(
        &link.near,
        false,
        &[
            "--target",
            FAR,
            "--check-config",
            "--prefix",
            "192.0.2.1/32",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(
            "check: ping 198.51.100.2: 3 echo requests per target and check, IPv4 over a raw socket\n"
        ),
        "{stdout}"
    );
    let (code, stdout, _) = run_inside(&link.near, false, &["--target", FAR, "--once"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.starts_with("EXAPROBE-ICMP OK - ping 198.51.100.2"),
        "{stdout}"
    );
    link.far.drop_echo_requests(100);
    let (code, stdout, _) = run_inside(
        &link.near,
        false,
        &["--target", FAR, "--once", "--timeout", "0.5"],
    );
    assert_eq!(code, Some(2), "{stdout}");
    assert!(
        stdout.contains("198.51.100.2: no reply to 3 echo requests"),
        "{stdout}"
    );
}

#[test]
fn an_unprivileged_user_pings_where_ping_group_range_allows_it() {
    if !exaprobe_testkit::netns::available() {
        return;
    }
    let link = Link::new("icmpcli-user");
    link.near.sysctl("net.ipv4.ping_group_range", "65534 65534");
    let (code, stdout, stderr) = run_inside(
        &link.near,
        true,
        &["--target", FAR, "--target", "2001:db8:1::2", "--once"],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("EXAPROBE-ICMP OK - ping 198.51.100.2, 2001:db8:1::2: 3 echo requests per target and check, IPv4 over a datagram (unprivileged ping) socket, IPv6 over a datagram (unprivileged ping) socket"),
        "{stdout}"
    );
}

#[test]
fn neither_socket_is_one_configuration_error_naming_both_remedies() {
    if !exaprobe_testkit::netns::available() {
        return;
    }
    let link = Link::new("icmpcli-none");
    let (code, stdout, stderr) = run_inside(
        &link.near,
        true,
        &[
            "--target",
            FAR,
            "--check-config",
            "--prefix",
            "192.0.2.1/32",
        ],
    );
    assert_eq!(code, Some(78), "{stdout}{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("exaprobe-icmp: configuration error: cannot open an IPv4 ICMP socket: a datagram (ping) socket was refused")
            && stderr.contains("group 65534 is not in net.ipv4.ping_group_range \"1 0\"")
            && stderr.contains("sysctl -w net.ipv4.ping_group_range=\"65534 65534\"")
            && stderr.contains("setcap cap_net_raw+ep "),
        "{stderr}"
    );
}

#[test]
fn a_name_is_resolved_again_on_sighup() {
    if !exaprobe_testkit::netns::available() {
        return;
    }
    let link = Link::new("icmpcli-hup");
    link.add_far_address("198.51.100.3".parse().unwrap());
    link.far.nft(
        "table inet only_second {\n chain input {\n  type filter hook input priority 0; policy accept;\n  ip daddr 198.51.100.2 icmp type echo-request drop\n }\n}\n",
    );
    link.near.hosts_file("198.51.100.2 upstream.test\n");
    let mut command = link.near.command(BINARY);
    command
        .args([
            "--target",
            "upstream.test",
            "--prefix",
            "192.0.2.10/32",
            "--next-hop",
            "198.51.100.1",
            "--interval",
            "0.3",
            "--fast-interval",
            "0.2",
            "--timeout",
            "0.3",
            "--rise",
            "1",
            "--fall",
            "1",
            "--withdraw-on-down",
            "--dry-run",
        ])
        .env_remove("EXAPROBE_LOG");
    let probe = Spawned::start(&mut command);
    let wait_line = |word: &str| {
        let line = probe.line(Duration::from_secs(10));
        assert!(
            line.contains(word) && line.contains("192.0.2.10/32"),
            "{word}: {line}"
        );
    };
    // The name's address drops pings: withdrawn.
    wait_line("withdraw");
    link.near.hosts_file("198.51.100.3 upstream.test\n");
    probe.signal(nix::sys::signal::Signal::SIGHUP);
    // Resolved again to the address that answers: announced.
    wait_line("announce");
}
