//! What a server's reply means for the routes, and the words for it. Pure (the reply and the
//! local clock's readings in, an [`Outcome`] out), so every case is tested without a server.
//!
//! In order: a kiss-o'-death (the server refuses to serve us: named by its code), leap
//! indicator 3 (unsynchronised), stratum 0 or above `--max-stratum`, then the root distance
//! and the offset against their degraded and down levels. Every reason but a kiss-o'-death's
//! ends with what the server said: stratum, reference id, offset and root distance.

use std::time::Duration;

use exaprobe_core::Outcome;
use exaprobe_core::kit::parse::{Level, Limits};

use crate::packet::{Reply, Timestamp};

/// The levels a reply is held to (validated pairs: a degraded level below its down level).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Thresholds {
    /// `--max-stratum`.
    pub max_stratum: u8,
    /// `--root-distance-degraded` and `--root-distance-down`, in seconds.
    pub root_distance: Limits<f64>,
    /// `--offset-degraded` and `--offset-down`, in seconds (against the offset's magnitude).
    pub offset: Limits<f64>,
}

/// The local clock's readings around the exchange: when the request left, when the reply came.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exchange {
    /// T1: the local clock just before sending (not the random transmit timestamp sent).
    pub sent: Timestamp,
    /// T4: the local clock when the reply was read.
    pub received: Timestamp,
}

impl Exchange {
    /// The server's clock minus ours (RFC 5905: ((T2 - T1) + (T3 - T4)) / 2), in seconds.
    pub(crate) fn offset(&self, reply: &Reply) -> f64 {
        (reply.receive.seconds_since(self.sent) + reply.transmit.seconds_since(self.received)) / 2.0
    }
}

/// The verdict on `reply` from `server`, received during `exchange`.
pub(crate) fn judge(
    reply: &Reply,
    exchange: Exchange,
    thresholds: &Thresholds,
    server: &str,
) -> Outcome {
    if let Some(code) = kiss_code(reply) {
        return Outcome::unhealthy(format!(
            "{server}: kiss-o'-death {code} ({})",
            kiss_meaning(&code)
        ));
    }
    let offset = exchange.offset(reply);
    let root_distance = reply.root_distance().as_secs_f64();
    let said = format!(
        "stratum {}, reference {}, offset {}, root distance {}",
        reply.stratum,
        reference(reply),
        signed_seconds(offset),
        signed_seconds(root_distance).trim_start_matches('+'),
    );
    if reply.leap == 3 {
        return Outcome::unhealthy(format!(
            "{server}: unsynchronised (leap indicator 3) ({said})"
        ));
    }
    if reply.stratum == 0 {
        return Outcome::unhealthy(format!(
            "{server}: stratum 0 (unspecified: no usable time) ({said})"
        ));
    }
    if reply.stratum > thresholds.max_stratum {
        return Outcome::unhealthy(format!(
            "{server}: stratum {} above --max-stratum {} ({said})",
            reply.stratum, thresholds.max_stratum
        ));
    }
    let measures = [
        (
            "root distance above",
            root_distance,
            &thresholds.root_distance,
            "--root-distance",
        ),
        (
            "offset beyond",
            offset.abs(),
            &thresholds.offset,
            "--offset",
        ),
    ];
    let mut over = Vec::new();
    let mut degraded = Vec::new();
    for (what, value, limits, option) in measures {
        match limits.level(value) {
            Level::Within => {}
            Level::Degraded => degraded.push(format!(
                "{what} {option}-degraded {}",
                shown(limits.degraded())
            )),
            Level::Over => over.push(format!("{what} {option}-down {}", shown(limits.hard()))),
        }
    }
    if !over.is_empty() {
        Outcome::unhealthy(format!("{server}: {} ({said})", over.join(", ")))
    } else if !degraded.is_empty() {
        Outcome::degraded(format!("{server}: {} ({said})", degraded.join(", ")))
    } else {
        Outcome::Healthy
    }
}

/// The kiss code of a kiss-o'-death: stratum 0 with four ASCII letters or digits in the
/// reference id (RFC 5905 section 7.4). Chrony's and ntpd's "unsynchronised" replies are also
/// stratum 0, with a reference id of zeros: not a kiss.
fn kiss_code(reply: &Reply) -> Option<String> {
    let code = &reply.reference_id;
    (reply.stratum == 0
        && code
            .iter()
            .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit()))
    .then(|| String::from_utf8_lossy(code).into_owned())
}

/// What a kiss code asks of the client (RFC 5905 section 7.4, RFC 8915 for NTSN).
fn kiss_meaning(code: &str) -> &'static str {
    match code {
        "RATE" => "rate exceeded: the server asks us to ask less often",
        "DENY" => "access denied by the server",
        "RSTR" => "access restricted by the server",
        "DROP" => "the server drops our requests",
        "ACST" => "unicast server association",
        "AUTH" => "server authentication failed",
        "AUTO" => "autokey sequence failed",
        "BCST" => "broadcast server association",
        "CRYP" => "cryptographic authentication or identification failed",
        "INIT" => "the association has not synchronised yet",
        "MCST" => "dynamically discovered server association",
        "NKEY" => "no key found",
        "NTSN" => "NTS negative acknowledgement",
        "RMOT" => "alteration of association from a remote host",
        "STEP" => "a step change in system time has occurred",
        _ => "an unknown kiss code",
    }
}

/// The reference id as NTP tools show it: a source name (GPS, PPS, LOCL) at stratum 0 and 1, an
/// IPv4 address (or an IPv6 address's hash, which reads the same) above.
fn reference(reply: &Reply) -> String {
    let id = reply.reference_id;
    if reply.stratum >= 2 {
        return std::net::Ipv4Addr::from(id).to_string();
    }
    let name = id.iter().take_while(|&&byte| byte != 0).copied();
    let name: Vec<u8> = name.collect();
    if name.is_empty() {
        "none".to_string()
    } else if name.iter().all(|byte| byte.is_ascii_graphic()) {
        String::from_utf8_lossy(&name).into_owned()
    } else {
        format!("0x{:08x}", u32::from_be_bytes(id))
    }
}

/// A measured value in seconds: `+1.234ms`, `-2.500s`.
fn signed_seconds(seconds: f64) -> String {
    if seconds.abs() >= 1.0 {
        format!("{seconds:+.3}s")
    } else {
        format!("{:+.3}ms", seconds * 1000.0)
    }
}

/// An operator's level as given (`1.5s`, `100ms`).
fn shown(level: Option<f64>) -> String {
    level.map_or_else(String::new, |seconds| {
        format!("{:?}", Duration::from_secs_f64(seconds))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "127.0.0.1:123";
    /// A moment of the local clock, in NTP time.
    const T1: u64 = 0xeebf_f0b8_0000_0000;
    const MILLISECOND: u64 = (1 << 32) / 1000;

    fn limits(degraded: Option<f64>, down: Option<f64>) -> Limits<f64> {
        Limits::new(degraded, down, ("a", "b"), |v| v.to_string()).unwrap()
    }

    fn thresholds() -> Thresholds {
        Thresholds {
            max_stratum: 15,
            root_distance: limits(Some(0.1), Some(1.5)),
            offset: limits(Some(0.05), Some(0.5)),
        }
    }

    /// A reply from a stratum 3 server 2 ms away whose clock is ours plus `offset_ms`, with a
    /// root delay of 31.25 ms and no root dispersion (root distance 15.625 ms).
    fn a_reply(offset_ms: i64) -> (Reply, Exchange) {
        let shift = |t: u64| t.wrapping_add_signed(offset_ms * MILLISECOND as i64);
        let reply = Reply {
            leap: 0,
            version: 4,
            mode: 4,
            stratum: 3,
            root_delay: 2048,
            root_dispersion: 0,
            reference_id: [192, 0, 2, 1],
            origin: Timestamp(0x1234),
            receive: Timestamp(shift(T1 + MILLISECOND)),
            transmit: Timestamp(shift(T1 + MILLISECOND)),
        };
        let exchange = Exchange {
            sent: Timestamp(T1),
            received: Timestamp(T1 + 2 * MILLISECOND),
        };
        (reply, exchange)
    }

    fn verdict(reply: &Reply, exchange: Exchange) -> Outcome {
        judge(reply, exchange, &thresholds(), SERVER)
    }

    #[test]
    fn a_synchronised_server_near_our_clock_is_healthy() {
        let (reply, exchange) = a_reply(3);
        assert!((exchange.offset(&reply) - 0.003).abs() < 1e-6);
        assert_eq!(verdict(&reply, exchange), Outcome::Healthy);
    }

    #[test]
    fn kiss_o_death_is_named() {
        for (code, meaning) in [
            (
                "RATE",
                "rate exceeded: the server asks us to ask less often",
            ),
            ("DENY", "access denied by the server"),
            ("RSTR", "access restricted by the server"),
            ("XY12", "an unknown kiss code"),
        ] {
            let (mut reply, exchange) = a_reply(0);
            reply.stratum = 0;
            reply.reference_id = code.as_bytes().try_into().unwrap();
            assert_eq!(
                verdict(&reply, exchange),
                Outcome::unhealthy(format!("127.0.0.1:123: kiss-o'-death {code} ({meaning})"))
            );
        }
    }

    #[test]
    fn leap_indicator_3_is_unsynchronised() {
        // As chrony answers without a reference: leap 3, stratum 0, reference id zero.
        let (mut reply, exchange) = a_reply(0);
        reply.leap = 3;
        reply.stratum = 0;
        reply.reference_id = [0; 4];
        assert_eq!(
            verdict(&reply, exchange),
            Outcome::unhealthy(
                "127.0.0.1:123: unsynchronised (leap indicator 3) (stratum 0, reference none, \
                 offset +0.000ms, root distance 15.625ms)"
            )
        );
    }

    #[test]
    fn stratum_0_without_a_kiss_code_is_unhealthy() {
        let (mut reply, exchange) = a_reply(0);
        reply.stratum = 0;
        reply.reference_id = *b"x\0\0\0";
        assert_eq!(
            verdict(&reply, exchange),
            Outcome::unhealthy(
                "127.0.0.1:123: stratum 0 (unspecified: no usable time) (stratum 0, reference x, \
                 offset +0.000ms, root distance 15.625ms)"
            )
        );
    }

    #[test]
    fn a_stratum_above_the_maximum_is_unhealthy() {
        let (mut reply, exchange) = a_reply(0);
        reply.stratum = 16;
        assert_eq!(
            verdict(&reply, exchange),
            Outcome::unhealthy(
                "127.0.0.1:123: stratum 16 above --max-stratum 15 (stratum 16, reference \
                 192.0.2.1, offset +0.000ms, root distance 15.625ms)"
            )
        );
        reply.stratum = 15;
        assert_eq!(verdict(&reply, exchange), Outcome::Healthy);
    }

    #[test]
    fn root_distance_degrades_then_withdraws() {
        let (mut reply, exchange) = a_reply(0);
        reply.root_dispersion = 1 << 15; // 0.5 s: root distance 515.625 ms
        assert_eq!(
            verdict(&reply, exchange),
            Outcome::degraded(
                "127.0.0.1:123: root distance above --root-distance-degraded 100ms (stratum 3, \
                 reference 192.0.2.1, offset +0.000ms, root distance 515.625ms)"
            )
        );
        reply.root_dispersion = 2 << 16; // 2 s
        assert_eq!(
            verdict(&reply, exchange),
            Outcome::unhealthy(
                "127.0.0.1:123: root distance above --root-distance-down 1.5s (stratum 3, \
                 reference 192.0.2.1, offset +0.000ms, root distance 2.016s)"
            )
        );
    }

    #[test]
    fn offset_either_way_degrades_then_withdraws() {
        let (reply_ahead, exchange) = a_reply(80);
        assert_eq!(
            verdict(&reply_ahead, exchange),
            Outcome::degraded(
                "127.0.0.1:123: offset beyond --offset-degraded 50ms (stratum 3, reference \
                 192.0.2.1, offset +80.000ms, root distance 15.625ms)"
            )
        );
        let (reply_behind, exchange) = a_reply(-2500);
        assert_eq!(
            verdict(&reply_behind, exchange),
            Outcome::unhealthy(
                "127.0.0.1:123: offset beyond --offset-down 500ms (stratum 3, reference \
                 192.0.2.1, offset -2.500s, root distance 15.625ms)"
            )
        );
    }

    #[test]
    fn every_measure_over_its_level_is_named_and_the_worst_decides() {
        let (mut reply, exchange) = a_reply(-80);
        reply.root_dispersion = 2 << 16;
        assert_eq!(
            verdict(&reply, exchange).reason(),
            Some(
                "127.0.0.1:123: root distance above --root-distance-down 1.5s (stratum 3, \
                 reference 192.0.2.1, offset -80.000ms, root distance 2.016s)"
            )
        );
        let (mut reply, exchange) = a_reply(-80);
        reply.root_dispersion = 1 << 15;
        assert_eq!(
            verdict(&reply, exchange),
            Outcome::degraded(
                "127.0.0.1:123: root distance above --root-distance-degraded 100ms, offset beyond \
                 --offset-degraded 50ms (stratum 3, reference 192.0.2.1, offset -80.000ms, root \
                 distance 515.625ms)"
            )
        );
    }

    #[test]
    fn levels_off_judge_nothing() {
        let (mut reply, exchange) = a_reply(-100_000);
        reply.root_dispersion = u32::MAX;
        let off = Thresholds {
            max_stratum: 15,
            root_distance: limits(None, None),
            offset: limits(None, None),
        };
        assert_eq!(judge(&reply, exchange, &off, SERVER), Outcome::Healthy);
    }

    #[test]
    fn references_read_as_ntp_tools_show_them() {
        let (mut reply, _) = a_reply(0);
        reply.stratum = 1;
        reply.reference_id = *b"GPS\0";
        assert_eq!(reference(&reply), "GPS");
        reply.reference_id = [0x7f, 0x7f, 0x01, 0x01];
        assert_eq!(reference(&reply), "0x7f7f0101");
        reply.stratum = 2;
        assert_eq!(reference(&reply), "127.127.1.1");
    }
}
