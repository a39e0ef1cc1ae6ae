//! The ICMP check against real namespaces: a veth pair between a namespace the test enters
//! (the probe's) and one standing for the upstream, whose kernel answers pings, or whose
//! firewall drops them (nftables), or whose kernel is silenced while a misbehaving responder
//! of testkit answers (late, from a wrong address, with a wrong sequence number).

use std::net::IpAddr;
use std::time::Duration;

use clap::Parser;
use exaprobe_core::{Outcome, Probe};
use exaprobe_icmp::{IcmpOptions, IcmpProbe, SocketKind};
use exaprobe_testkit::netns::{Behaviour, Link, Responder};
use tokio::time::Instant;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    icmp: IcmpOptions,
}

fn options(args: &[&str]) -> IcmpOptions {
    Cli::try_parse_from(std::iter::once("exaprobe-icmp").chain(args.iter().copied()))
        .unwrap()
        .icmp
}

fn start(args: &[&str]) -> IcmpProbe {
    IcmpProbe::new(&options(args)).unwrap()
}

/// One check with `millis` to run.
async fn check(probe: &mut IcmpProbe, millis: u64) -> Outcome {
    probe
        .check(Instant::now() + Duration::from_millis(millis))
        .await
}

const FAR: &str = "198.51.100.2";
const FAR6: &str = "2001:db8:1::2";

fn reason(outcome: &Outcome) -> &str {
    outcome.reason().unwrap_or("")
}

#[tokio::test]
async fn a_reachable_target_is_healthy_over_a_raw_socket() {
    if !exaprobe_testkit::netns::available() {
        return;
    }
    let link = Link::new("icmp-up");
    link.near.enter();
    let mut probe = start(&["--target", FAR, "--target", FAR6]);
    // A new namespace's ping_group_range admits nobody: root gets raw sockets.
    assert_eq!(
        probe.socket_kind(&FAR.parse().unwrap()),
        Some(SocketKind::Raw)
    );
    assert_eq!(check(&mut probe, 500).await, Outcome::Healthy);
    assert_eq!(check(&mut probe, 500).await, Outcome::Healthy);
}

#[tokio::test]
async fn datagram_sockets_where_ping_group_range_allows() {
    if !exaprobe_testkit::netns::available() {
        return;
    }
    let link = Link::new("icmp-dgram");
    link.near
        .sysctl("net.ipv4.ping_group_range", "0 2147483647");
    link.near.enter();
    let mut probe = start(&["--target", FAR, "--target", FAR6]);
    assert_eq!(
        probe.socket_kind(&FAR.parse().unwrap()),
        Some(SocketKind::Datagram)
    );
    assert!(
        probe.describe().contains("datagram"),
        "{}",
        probe.describe()
    );
    assert_eq!(check(&mut probe, 500).await, Outcome::Healthy);
    link.far.drop_echo_requests(100);
    assert_eq!(
        check(&mut probe, 300).await,
        Outcome::unhealthy(
            "0 of 2 targets reachable, --min-reachable 2: 198.51.100.2: no reply to 3 echo requests; 2001:db8:1::2: no reply to 3 echo requests"
        )
    );
}

#[tokio::test]
async fn all_requests_dropped_is_unhealthy() {
    if !exaprobe_testkit::netns::available() {
        return;
    }
    let link = Link::new("icmp-drop");
    link.far.drop_echo_requests(100);
    link.near.enter();
    let mut probe = start(&["--target", FAR]);
    let started = Instant::now();
    assert_eq!(
        check(&mut probe, 300).await,
        Outcome::unhealthy("198.51.100.2: no reply to 3 echo requests")
    );
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "ends by its deadline"
    );
}

#[tokio::test]
async fn partial_loss_is_degraded_between_the_limits() {
    if !exaprobe_testkit::netns::available() {
        return;
    }
    let link = Link::new("icmp-loss");
    link.far.drop_echo_requests(50);
    link.near.enter();
    // 20 requests at 50 % loss: 3 to 17 lost but in a few in a million runs.
    let mut probe = start(&[
        "--target",
        FAR,
        "--count",
        "20",
        "--loss-degraded",
        "10",
        "--loss-down",
        "90",
    ]);
    let outcome = check(&mut probe, 600).await;
    assert!(
        matches!(outcome, Outcome::Degraded { .. })
            && reason(&outcome).contains("above --loss-degraded 10%"),
        "{outcome:?}"
    );
    // The same loss against a lower hard limit: unreachable.
    let mut strict = start(&["--target", FAR, "--count", "20", "--loss-down", "5"]);
    let outcome = check(&mut strict, 600).await;
    assert!(
        reason(&outcome).contains("above --loss-down 5%") && !outcome.is_serving(),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_slow_target_is_degraded_then_down_by_its_median_rtt() {
    if !exaprobe_testkit::netns::available() {
        return;
    }
    let link = Link::new("icmp-slow");
    link.silence_far_kernel();
    let responder = Responder::start(
        &link.far,
        Behaviour {
            delay: Duration::from_millis(150),
            ..Behaviour::default()
        },
    );
    link.near.enter();
    let mut probe = start(&["--target", FAR, "--rtt-degraded", "100ms"]);
    let outcome = check(&mut probe, 900).await;
    assert!(
        matches!(outcome, Outcome::Degraded { .. })
            && reason(&outcome).starts_with("198.51.100.2: median RTT ")
            && reason(&outcome).ends_with("ms above --rtt-degraded 100ms"),
        "{outcome:?}"
    );
    let mut strict = start(&[
        "--target",
        FAR6,
        "--rtt-degraded",
        "50ms",
        "--rtt-down",
        "100ms",
    ]);
    let outcome = check(&mut strict, 900).await;
    assert!(
        !outcome.is_serving() && reason(&outcome).ends_with("ms above --rtt-down 100ms"),
        "{outcome:?}"
    );
    assert!(responder.answered() >= 6);
}

#[tokio::test]
async fn late_replies_count_as_lost_in_this_check_and_the_next() {
    if !exaprobe_testkit::netns::available() {
        return;
    }
    let link = Link::new("icmp-late");
    link.silence_far_kernel();
    let responder = Responder::start(
        &link.far,
        Behaviour {
            delay: Duration::from_millis(400),
            ..Behaviour::default()
        },
    );
    link.near.enter();
    let mut probe = start(&["--target", FAR]);
    for _ in 0..3 {
        // The replies to one check arrive during the next: never counted there either.
        assert_eq!(
            check(&mut probe, 300).await,
            Outcome::unhealthy("198.51.100.2: no reply to 3 echo requests")
        );
    }
    assert!(responder.answered() >= 3, "the responder did answer, late");
}

/// Replies from the wrong address or with the wrong sequence number never count, whichever the
/// socket (raw: surge-ping matches everything; datagram: the kernel the identifier, surge-ping
/// the rest).
async fn forged_replies_never_count(datagram: bool) {
    if !exaprobe_testkit::netns::available() {
        return;
    }
    let link = Link::new("icmp-forged");
    if datagram {
        link.near
            .sysctl("net.ipv4.ping_group_range", "0 2147483647");
    }
    link.silence_far_kernel();
    let wrong: IpAddr = "198.51.100.3".parse().unwrap();
    link.add_far_address(wrong);
    link.near.enter();
    let cases = [
        Behaviour {
            source: Some(wrong),
            ..Behaviour::default()
        },
        Behaviour {
            sequence_offset: 1000,
            ..Behaviour::default()
        },
    ];
    for behaviour in cases {
        let responder = Responder::start(&link.far, behaviour.clone());
        let mut probe = start(&["--target", FAR]);
        let kind = if datagram {
            SocketKind::Datagram
        } else {
            SocketKind::Raw
        };
        assert_eq!(probe.socket_kind(&FAR.parse().unwrap()), Some(kind));
        assert_eq!(
            check(&mut probe, 300).await,
            Outcome::unhealthy("198.51.100.2: no reply to 3 echo requests"),
            "{behaviour:?} {kind:?}"
        );
        assert!(responder.answered() >= 3, "{behaviour:?}: it did answer");
    }
    // The same responder answering properly is counted: the test can fail.
    let _responder = Responder::start(&link.far, Behaviour::default());
    let mut probe = start(&["--target", FAR]);
    assert_eq!(check(&mut probe, 300).await, Outcome::Healthy);
}

#[tokio::test]
async fn forged_replies_never_count_on_a_raw_socket() {
    forged_replies_never_count(false).await;
}

#[tokio::test]
async fn forged_replies_never_count_on_a_datagram_socket() {
    forged_replies_never_count(true).await;
}

#[tokio::test]
async fn the_gateway_is_followed_when_removed_and_changed() {
    if !exaprobe_testkit::netns::available() {
        return;
    }
    let link = Link::new("icmp-gw");
    link.add_far_address("198.51.100.3".parse().unwrap());
    // Only the second address answers from now on: a healthy check pinged it.
    link.far.nft(
        "table inet only_second {\n chain input {\n  type filter hook input priority 0; policy accept;\n  ip daddr 198.51.100.2 icmp type echo-request drop\n }\n}\n",
    );
    link.near.enter();
    let mut probe = start(&["--gateway"]);
    assert_eq!(
        check(&mut probe, 300).await,
        Outcome::unhealthy("IPv4 default gateway 198.51.100.2: no reply to 3 echo requests")
    );
    link.near.ip(&["route", "del", "default"]);
    assert_eq!(
        check(&mut probe, 300).await,
        Outcome::unhealthy("no IPv4 default route")
    );
    link.near
        .ip(&["route", "add", "default", "via", "198.51.100.3"]);
    assert_eq!(check(&mut probe, 300).await, Outcome::Healthy);
    link.near
        .ip(&["route", "replace", "default", "via", "198.51.100.9"]);
    let outcome = check(&mut probe, 300).await;
    assert!(
        reason(&outcome)
            .starts_with("IPv4 default gateway 198.51.100.9: no reply to 3 echo requests")
            && !outcome.is_serving(),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn the_ipv6_gateway_and_a_link_local_target() {
    if !exaprobe_testkit::netns::available() {
        return;
    }
    let link = Link::new("icmp-gw6");
    link.near.enter();
    let mut probe = start(&["--gateway6"]);
    assert_eq!(check(&mut probe, 300).await, Outcome::Healthy);
    assert!(
        probe.describe().contains("IPv6 default gateway"),
        "{}",
        probe.describe()
    );
    let far_link_local = link.far.ip(&[
        "-6", "-o", "address", "show", "dev", "veth1", "scope", "link",
    ]);
    let address = far_link_local
        .split_whitespace()
        .skip_while(|word| *word != "inet6")
        .nth(1)
        .and_then(|with_prefix| with_prefix.split('/').next())
        .expect("a link-local address on veth1")
        .to_string();
    let target = format!("{address}%veth0");
    let mut probe = start(&["--target", &target]);
    assert_eq!(check(&mut probe, 300).await, Outcome::Healthy);
    link.near.ip(&["-6", "route", "del", "default"]);
    let mut probe = start(&["--gateway6"]);
    assert_eq!(
        check(&mut probe, 300).await,
        Outcome::unhealthy("no IPv6 default route")
    );
}

#[tokio::test]
async fn min_reachable_over_several_targets() {
    if !exaprobe_testkit::netns::available() {
        return;
    }
    let link = Link::new("icmp-min");
    link.near.enter();
    let nobody = "198.51.100.9";
    let mut all = start(&["--target", FAR, "--target", nobody]);
    let outcome = check(&mut all, 300).await;
    assert!(
        reason(&outcome).starts_with(
            "1 of 2 targets reachable, --min-reachable 2: 198.51.100.9: no reply to 3 echo requests"
        ) && !outcome.is_serving(),
        "{outcome:?}"
    );
    let gauge = |probe: &IcmpProbe, name: &str| {
        probe
            .gauges()
            .into_iter()
            .find(|gauge| gauge.name == name)
            .map(|gauge| gauge.value)
    };
    assert_eq!(gauge(&all, "exaprobe_icmp_reachable_targets"), Some(1.0));
    assert_eq!(gauge(&all, "exaprobe_icmp_loss_ratio"), Some(1.0));
    assert!(gauge(&all, "exaprobe_icmp_rtt_seconds").is_some_and(|rtt| rtt < 0.3));
    let mut one = start(&["--target", FAR, "--target", nobody, "--min-reachable", "1"]);
    let outcome = check(&mut one, 300).await;
    assert!(
        matches!(outcome, Outcome::Degraded { .. })
            && reason(&outcome).starts_with("1 of 2 targets reachable: 198.51.100.9: no reply"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn source_and_interface_bind_the_socket() {
    if !exaprobe_testkit::netns::available() {
        return;
    }
    let link = Link::new("icmp-bind");
    link.near.ip(&[
        "link", "add", "side0", "type", "veth", "peer", "name", "side1",
    ]);
    link.near.ip(&["link", "set", "side0", "up"]);
    link.near.enter();
    let mut bound = start(&[
        "--target",
        FAR,
        "--source",
        "198.51.100.1",
        "--interface",
        "veth0",
    ]);
    assert_eq!(check(&mut bound, 300).await, Outcome::Healthy);
    // Bound to an interface that does not lead there: nothing comes back.
    let mut elsewhere = start(&["--target", FAR, "--interface", "side0"]);
    assert!(!check(&mut elsewhere, 300).await.is_serving());
    let error = IcmpProbe::new(&options(&["--target", FAR, "--source", "192.0.2.200"]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "cannot use --source 192.0.2.200: not an address of this host"
    );
    let error = IcmpProbe::new(&options(&["--target", FAR, "--source", "2001:db8:1::1"]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "--source 2001:db8:1::1 is not an IPv4 address, and an IPv4 target needs one"
    );
    let error = format!(
        "{:#}",
        IcmpProbe::new(&options(&["--target", FAR, "--interface", "nosuch0"])).unwrap_err()
    );
    assert!(
        error.starts_with("--interface nosuch0: no interface nosuch0"),
        "{error}"
    );
}

#[test]
fn bad_options_are_refused_at_start() {
    let refused = |args: &[&str]| format!("{:#}", IcmpProbe::new(&options(args)).unwrap_err());
    assert_eq!(
        refused(&[]),
        "nothing to ping: give --target HOST (repeatable), --gateway or --gateway6"
    );
    assert_eq!(
        refused(&["--target", "192.0.2.1", "--min-reachable", "2"]),
        "--min-reachable 2 is more than the 1 target given"
    );
    assert_eq!(
        refused(&[
            "--target",
            "192.0.2.1",
            "--loss-degraded",
            "50",
            "--loss-down",
            "50"
        ]),
        "--loss-degraded (50%) must be below --loss-down (50%)"
    );
    assert_eq!(
        refused(&[
            "--target",
            "192.0.2.1",
            "--rtt-degraded",
            "1s",
            "--rtt-down",
            "500ms"
        ]),
        "--rtt-degraded (1000ms) must be below --rtt-down (500ms)"
    );
    assert!(
        refused(&["--target", "no-such-host.invalid"])
            .starts_with("--target no-such-host.invalid: cannot resolve the name"),
    );
}
