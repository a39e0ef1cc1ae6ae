//! The NTP probe against a real chronyd started by the test on loopback (synchronised to its
//! own clock with `local stratum`, unsynchronised, stopped) and against testkit's hostile NTP
//! server: a shifted clock, kiss-o'-death, leap 3, too high a stratum, too large a root
//! distance, the wrong origin, garbage, an answer from another port, silence, and strays
//! before the real answer.

use std::time::Duration;

use clap::Parser;
use exaprobe_core::{Outcome, Probe};
use exaprobe_ntp::{NtpOptions, NtpProbe};
use exaprobe_testkit::ntp::{Behaviour, Header, HostileNtp, chrony};

/// Short, so that silence costs little; a reply on loopback takes well under a millisecond,
/// and a busy machine gets a second.
const TIMEOUT: Duration = Duration::from_secs(1);

/// The deadline a check started now gets under TIMEOUT (the runner gives the same).
fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + TIMEOUT.mul_f64(0.95)
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    ntp: NtpOptions,
}

fn build(args: &[&str]) -> anyhow::Result<NtpProbe> {
    let mut argv = vec!["exaprobe-ntp"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}"));
    NtpProbe::new(&cli.ntp, TIMEOUT)
}

fn probe(server: &str, args: &[&str]) -> NtpProbe {
    let mut argv = vec!["--server", server];
    argv.extend_from_slice(args);
    build(&argv).unwrap()
}

fn unhealthy(outcome: Outcome) -> String {
    match outcome {
        Outcome::Unhealthy { reason } => reason,
        other => panic!("expected unhealthy, got {other:?}"),
    }
}

/// `reason` with the measured offset's figure replaced by `~` (it moves with the round trip).
fn without_offset(reason: &str) -> String {
    let Some(at) = reason.find("offset +").or_else(|| reason.find("offset -")) else {
        return reason.to_string();
    };
    let figure = at + "offset ".len();
    let end = reason[figure..]
        .find(',')
        .map_or(reason.len(), |end| figure + end);
    format!("{}~{}", &reason[..figure], &reason[end..])
}

/// The offset the last check measured (the gauge `exaprobe_ntp_offset_seconds`).
fn measured_offset(ntp: &NtpProbe) -> f64 {
    ntp.gauges()
        .iter()
        .find(|gauge| gauge.name == "exaprobe_ntp_offset_seconds")
        .map(|gauge| gauge.value)
        .expect("an offset gauge")
}

#[tokio::test]
async fn chrony_synchronised_to_its_local_clock_is_healthy() {
    let Some(chrony) = chrony(Some(3)) else {
        return;
    };
    let server = chrony.address().to_string();
    let mut ntp = probe(&server, &[]);
    assert_eq!(ntp.describe(), format!("ntp://{server}"));
    assert_eq!(ntp.check(deadline()).await, Outcome::Healthy);
    let gauges = ntp.gauges();
    assert_eq!(gauges[0].name, "exaprobe_ntp_stratum");
    assert_eq!(gauges[0].value, 3.0);
    // The same host clock on both sides: the offset is the exchange's asymmetry, microseconds.
    assert!(gauges[1].value.abs() < 0.01, "{gauges:?}");
    // Stratum 3 is one too many for a server that must be at most 2 from a reference.
    let mut strict = probe(&server, &["--max-stratum", "2"]);
    let reason = without_offset(&unhealthy(strict.check(deadline()).await));
    // chrony's own clock as its reference: no root delay, a root dispersion of its precision.
    let expected = format!(
        "{server}: stratum 3 above --max-stratum 2 (stratum 3, reference 127.127.1.1, offset ~, \
         root distance 0.0"
    );
    assert!(
        reason.starts_with(&expected) && reason.ends_with("ms)"),
        "{reason}"
    );
}

#[tokio::test]
async fn chrony_without_a_reference_answers_unsynchronised() {
    let Some(chrony) = chrony(None) else {
        return;
    };
    let server = chrony.address().to_string();
    let reason = unhealthy(probe(&server, &[]).check(deadline()).await);
    // chrony's answer with no source: leap 3, stratum 0, no reference, root delay and
    // dispersion 1 s each.
    assert_eq!(
        without_offset(&reason),
        format!(
            "{server}: unsynchronised (leap indicator 3) (stratum 0, reference none, offset ~, \
             root distance 1.500s)"
        )
    );
}

#[tokio::test]
async fn a_stopped_chrony_is_refused() {
    let Some(chrony) = chrony(Some(2)) else {
        return;
    };
    let server = chrony.address().to_string();
    let mut ntp = probe(&server, &[]);
    assert_eq!(ntp.check(deadline()).await, Outcome::Healthy);
    drop(chrony);
    assert_eq!(
        unhealthy(ntp.check(deadline()).await),
        format!("{server}: refused: nothing listening on {server} (UDP)")
    );
    assert!(ntp.gauges().is_empty(), "no reply, no gauge");
}

#[tokio::test]
async fn the_offset_against_the_local_clock_degrades_then_withdraws() {
    let server = HostileNtp::start(Behaviour::Answer(Header {
        offset: 1.5,
        ..Header::default()
    }));
    let address = server.address.to_string();
    let mut ntp = probe(
        &address,
        &["--offset-degraded", "1s", "--offset-down", "3s"],
    );
    // Root delay and dispersion of 1 ms each, in 16.16 fixed point: 65/65536 s. The measured
    // offset is the server's shift give or take half the round trip, so it is read apart.
    let outcome = ntp.check(deadline()).await;
    assert!(matches!(outcome, Outcome::Degraded { .. }), "{outcome:?}");
    assert_eq!(
        without_offset(outcome.reason().unwrap()),
        format!(
            "{address}: offset beyond --offset-degraded 1s (stratum 2, reference 192.0.2.1, \
             offset ~, root distance 1.488ms)"
        )
    );
    assert!(
        (measured_offset(&ntp) - 1.5).abs() < 0.1,
        "{:?}",
        ntp.gauges()
    );
    server.set(Behaviour::Answer(Header {
        offset: -4.0,
        ..Header::default()
    }));
    assert_eq!(
        without_offset(&unhealthy(ntp.check(deadline()).await)),
        format!(
            "{address}: offset beyond --offset-down 3s (stratum 2, reference 192.0.2.1, offset ~, \
             root distance 1.488ms)"
        )
    );
    assert!(
        (measured_offset(&ntp) + 4.0).abs() < 0.1,
        "{:?}",
        ntp.gauges()
    );
    // Off by default: the same server is healthy to a probe without offset levels.
    assert_eq!(
        probe(&address, &[]).check(deadline()).await,
        Outcome::Healthy
    );
}

#[tokio::test]
async fn the_root_distance_degrades_then_withdraws() {
    let server = HostileNtp::start(Behaviour::Answer(Header {
        root_dispersion: 0.25,
        ..Header::default()
    }));
    let address = server.address.to_string();
    let mut ntp = probe(&address, &["--root-distance-degraded", "100ms"]);
    let outcome = ntp.check(deadline()).await;
    let reason = outcome.reason().unwrap_or_default().to_string();
    assert_eq!(
        outcome,
        Outcome::degraded(reason.clone()),
        "degraded expected: {outcome:?}"
    );
    assert!(
        reason.starts_with(&format!(
            "{address}: root distance above --root-distance-degraded 100ms (stratum 2, reference 192.0.2.1, offset "
        )) && reason.ends_with(", root distance 250.496ms)"),
        "{reason}"
    );
    // Beyond the default --root-distance-down of 1.5 s.
    server.set(Behaviour::Answer(Header {
        root_dispersion: 2.0,
        ..Header::default()
    }));
    let reason = unhealthy(ntp.check(deadline()).await);
    assert!(
        reason.starts_with(&format!(
            "{address}: root distance above --root-distance-down 1.5s ("
        )),
        "{reason}"
    );
}

#[tokio::test]
async fn kiss_o_death_codes_are_named() {
    let server = HostileNtp::start(Behaviour::Silent);
    let address = server.address.to_string();
    let mut ntp = probe(&address, &[]);
    for (code, meaning) in [
        (
            b"RATE",
            "rate exceeded: the server asks us to ask less often",
        ),
        (b"DENY", "access denied by the server"),
        (b"RSTR", "access restricted by the server"),
    ] {
        server.set(Behaviour::Answer(Header::kiss(code)));
        assert_eq!(
            unhealthy(ntp.check(deadline()).await),
            format!(
                "{address}: kiss-o'-death {} ({meaning})",
                String::from_utf8_lossy(code)
            )
        );
    }
}

#[tokio::test]
async fn leap_indicator_3_and_too_high_a_stratum_are_unhealthy() {
    let server = HostileNtp::start(Behaviour::Answer(Header {
        leap: 3,
        ..Header::default()
    }));
    let address = server.address.to_string();
    let mut ntp = probe(&address, &[]);
    let reason = unhealthy(ntp.check(deadline()).await);
    assert!(
        reason.starts_with(&format!(
            "{address}: unsynchronised (leap indicator 3) (stratum 2, reference 192.0.2.1, offset "
        )),
        "{reason}"
    );
    server.set(Behaviour::Answer(Header {
        stratum: 16,
        ..Header::default()
    }));
    let reason = unhealthy(ntp.check(deadline()).await);
    assert!(
        reason.starts_with(&format!(
            "{address}: stratum 16 above --max-stratum 15 (stratum 16, reference 192.0.2.1, offset "
        )),
        "{reason}"
    );
}

#[tokio::test]
async fn packets_that_are_not_the_reply_are_ignored_until_the_deadline() {
    let server = HostileNtp::start(Behaviour::WrongOrigin);
    let address = server.address.to_string();
    let mut ntp = probe(&address, &[]);
    assert_eq!(
        unhealthy(ntp.check(deadline()).await),
        format!(
            "{address}: no reply within --timeout 1s; 1 packet ignored: origin timestamp is not our transmit timestamp"
        )
    );
    server.set(Behaviour::Garbage);
    assert_eq!(
        unhealthy(ntp.check(deadline()).await),
        format!(
            "{address}: no reply within --timeout 1s; 1 packet ignored: shorter than an NTP header (48 bytes)"
        )
    );
    // The kernel drops a datagram from another port of the server: the socket is connected.
    server.set(Behaviour::FromAnotherPort);
    assert_eq!(
        unhealthy(ntp.check(deadline()).await),
        format!("{address}: no reply within --timeout 1s")
    );
    server.set(Behaviour::Silent);
    assert_eq!(
        unhealthy(ntp.check(deadline()).await),
        format!("{address}: no reply within --timeout 1s")
    );
    assert_eq!(server.requests(), 4, "one request per check");
}

#[tokio::test]
async fn the_reply_after_strays_is_taken() {
    let server = HostileNtp::start(Behaviour::StraysThenAnswer);
    let mut ntp = probe(&server.address.to_string(), &[]);
    assert_eq!(ntp.check(deadline()).await, Outcome::Healthy);
    assert_eq!(server.requests(), 1);
}

#[test]
fn a_degraded_level_must_be_below_its_down_level() {
    let error = build(&["--server", "127.0.0.1", "--root-distance-degraded", "2s"])
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "--root-distance-degraded (2s) must be below --root-distance-down (1.5s)"
    );
    let error = build(&[
        "--server",
        "127.0.0.1",
        "--offset-degraded",
        "1s",
        "--offset-down",
        "500ms",
    ])
    .unwrap_err()
    .to_string();
    assert_eq!(
        error,
        "--offset-degraded (1s) must be below --offset-down (500ms)"
    );
    assert!(Cli::try_parse_from(["x", "--server", "127.0.0.1", "--max-stratum", "16"]).is_err());
}
