//! NTP packets (RFC 5905 section 7.3): the 48-byte header a client sends and a server answers
//! with. Pure: bytes in, fields out, so the parser is fuzzed (`fuzz/fuzz_targets/ntp_reply.rs`).
//!
//! # Format
//!
//! ```text
//!  0: LI (2 bits) | VN (3 bits) | Mode (3 bits)     1: stratum   2: poll   3: precision
//!  4: root delay (16.16 s)        8: root dispersion (16.16 s)    12: reference id (4 bytes)
//! 16: reference timestamp        24: origin timestamp
//! 32: receive timestamp          40: transmit timestamp           (each 32.32 s since 1900)
//! 48: extension fields and a MAC may follow (ignored)
//! ```
//!
//! Written here rather than taken from a crate: the client side needs these 48 bytes only, and
//! the NTP crates are either whole clients with their own sockets and exchange (sntpc, which
//! hides the root delay, dispersion and reference id this check judges) or a daemon's internals
//! (ntp-proto).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The length of the header, the whole of a client's request.
pub(crate) const HEADER_LEN: usize = 48;

/// NTP's mode of a client's request.
const MODE_CLIENT: u8 = 3;

/// NTP's mode of a server's reply.
pub(crate) const MODE_SERVER: u8 = 4;

/// Seconds from NTP's epoch (1900) to Unix's (1970).
const UNIX_OFFSET: u64 = 2_208_988_800;

/// An NTP timestamp: seconds since 1900 in 32.32 fixed point (era 0 until 2036, then wrapping:
/// differences are taken modulo 2^64, right within 68 years either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timestamp(pub u64);

impl Timestamp {
    /// The NTP timestamp of a moment of the local clock.
    pub(crate) fn from_system_time(time: SystemTime) -> Timestamp {
        // Before 1970 the local clock is broken anyway: such a moment reads as the epoch.
        let since_unix = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let seconds = since_unix.as_secs().wrapping_add(UNIX_OFFSET);
        let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
        Timestamp((seconds << 32) | fraction)
    }

    /// `self - earlier` in seconds, signed (within 68 years, through an era change too).
    pub(crate) fn seconds_since(self, earlier: Timestamp) -> f64 {
        self.0.wrapping_sub(earlier.0) as i64 as f64 / 4_294_967_296.0
    }
}

/// What a server's reply says (the header; any extension field is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reply {
    /// Leap indicator: 0-2 a leap second warning, 3 the server's clock is unsynchronised.
    pub leap: u8,
    /// The NTP version (a server answers in the client's).
    pub version: u8,
    /// 4 for a server's reply.
    pub mode: u8,
    /// 1 a primary reference, 2-15 a server that far from one, 16 unsynchronised, 0 a
    /// kiss-o'-death (or unspecified).
    pub stratum: u8,
    /// The round trip to the server's reference, 16.16 seconds.
    pub root_delay: u32,
    /// The server's error bound against its reference, 16.16 seconds.
    pub root_dispersion: u32,
    /// The server's reference: a 4-letter source at stratum 1, an IPv4 address (or an IPv6
    /// address's hash) above, a kiss code in a kiss-o'-death.
    pub reference_id: [u8; 4],
    /// Our transmit timestamp, copied back: how a client knows the reply is to its request.
    pub origin: Timestamp,
    /// When the request reached the server (its clock).
    pub receive: Timestamp,
    /// When the reply left the server (its clock).
    pub transmit: Timestamp,
}

impl Reply {
    /// Root delay / 2 + root dispersion: how far the server's time may be from its reference's
    /// (RFC 5905's root distance, without the client's own path).
    pub(crate) fn root_distance(&self) -> Duration {
        short_format(self.root_delay) / 2 + short_format(self.root_dispersion)
    }
}

/// A 16.16 fixed-point duration as a `Duration`.
fn short_format(value: u32) -> Duration {
    Duration::from_secs(u64::from(value >> 16))
        + Duration::from_nanos((u64::from(value & 0xffff) * 1_000_000_000) >> 16)
}

/// A client's request (NTPv4, mode 3) carrying `transmit` and nothing else: no field tells
/// the server anything about the client (RFC 9109's data minimisation).
pub(crate) fn request(transmit: Timestamp) -> [u8; HEADER_LEN] {
    let mut packet = [0u8; HEADER_LEN];
    packet[0] = (4 << 3) | MODE_CLIENT;
    packet[40..48].copy_from_slice(&transmit.0.to_be_bytes());
    packet
}

/// The header of a packet, or why it is not an NTP packet.
pub(crate) fn parse(bytes: &[u8]) -> Result<Reply, &'static str> {
    let header: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|header| header.try_into().ok())
        .ok_or("shorter than an NTP header (48 bytes)")?;
    let u32_at = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let timestamp_at =
        |at: usize| Timestamp((u64::from(u32_at(at)) << 32) | u64::from(u32_at(at + 4)));
    Ok(Reply {
        leap: header[0] >> 6,
        version: (header[0] >> 3) & 0b111,
        mode: header[0] & 0b111,
        stratum: header[1],
        root_delay: u32_at(4),
        root_dispersion: u32_at(8),
        reference_id: [header[12], header[13], header[14], header[15]],
        origin: timestamp_at(24),
        receive: timestamp_at(32),
        transmit: timestamp_at(40),
    })
}

/// Why `packet` is not the reply to the request that carried `sent`, or the reply: a server's
/// (mode 4) whose origin timestamp is our transmit timestamp. (It came from the server's address
/// and port: the socket is connected, so the kernel drops datagrams from anywhere else.)
pub(crate) fn reply_to(sent: Timestamp, packet: &[u8]) -> Result<Reply, &'static str> {
    let reply = parse(packet)?;
    if reply.mode != MODE_SERVER {
        return Err("not a server's reply (mode is not 4)");
    }
    if reply.origin != sent {
        return Err("origin timestamp is not our transmit timestamp");
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply as chrony sent it (unsynchronised: leap 3, stratum 0), origin 0xd2d2ae47f942575a.
    const CHRONY_UNSYNCHRONISED: &str = "e40000e60001000000010000000000000000000000000000\
                                         d2d2ae47f942575aeebff0b80c583fe5eebff0b80c5f59be";

    fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn a_real_reply_is_read_field_by_field() {
        let reply = parse(&bytes(CHRONY_UNSYNCHRONISED)).unwrap();
        assert_eq!(
            (reply.leap, reply.version, reply.mode, reply.stratum),
            (3, 4, 4, 0)
        );
        assert_eq!(reply.root_delay, 0x0001_0000);
        assert_eq!(reply.root_dispersion, 0x0001_0000);
        assert_eq!(reply.root_distance(), Duration::from_millis(1500));
        assert_eq!(reply.reference_id, [0; 4]);
        assert_eq!(reply.origin, Timestamp(0xd2d2_ae47_f942_575a));
        assert_eq!(reply.receive, Timestamp(0xeebf_f0b8_0c58_3fe5));
        assert_eq!(reply.transmit, Timestamp(0xeebf_f0b8_0c5f_59be));
        assert_eq!(
            reply_to(
                Timestamp(0xd2d2_ae47_f942_575a),
                &bytes(CHRONY_UNSYNCHRONISED)
            ),
            Ok(reply)
        );
        assert_eq!(
            reply_to(Timestamp(1), &bytes(CHRONY_UNSYNCHRONISED)),
            Err("origin timestamp is not our transmit timestamp")
        );
    }

    #[test]
    fn a_request_is_ntpv4_mode_3_with_only_the_transmit_timestamp() {
        let packet = request(Timestamp(0x0102_0304_0506_0708));
        assert_eq!(packet[0], 0x23);
        assert!(packet[1..40].iter().all(|&byte| byte == 0));
        assert_eq!(&packet[40..], &[1, 2, 3, 4, 5, 6, 7, 8]);
        // Echoed back by a server that is not one: mode 3 is not a reply.
        assert_eq!(
            reply_to(Timestamp(0), &packet),
            Err("not a server's reply (mode is not 4)")
        );
    }

    #[test]
    fn short_packets_are_not_ntp() {
        assert_eq!(
            parse(&[0x24; 47]),
            Err("shorter than an NTP header (48 bytes)")
        );
        assert!(parse(&[0x24; 68]).is_ok(), "extension fields are ignored");
    }

    #[test]
    fn root_distance_is_half_the_delay_plus_the_dispersion() {
        let mut reply = parse(&bytes(CHRONY_UNSYNCHRONISED)).unwrap();
        reply.root_delay = 0x0001_0000; // 1 s
        reply.root_dispersion = 0x0000_8000; // 0.5 s
        assert_eq!(reply.root_distance(), Duration::from_secs(1));
    }

    #[test]
    fn timestamps_follow_the_local_clock_and_subtract_across_eras() {
        let unix = UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(
            Timestamp::from_system_time(unix),
            Timestamp(((UNIX_OFFSET + 1) << 32) | (1 << 31))
        );
        let before_wrap = Timestamp(u64::MAX - (1 << 31) + 1); // 0.5 s before 2036's wrap
        let after_wrap = Timestamp(1 << 31); // 0.5 s after it
        assert_eq!(after_wrap.seconds_since(before_wrap), 1.0);
        assert_eq!(before_wrap.seconds_since(after_wrap), -1.0);
    }
}
