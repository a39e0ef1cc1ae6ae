//! The fuzz targets' entry point (feature `fuzzing`): a packet as a socket hands it over, decoded
//! as the probe's receive path decodes it (surge-ping) and judged as the check judges it.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use socket2::Type;
use surge_ping::{IcmpPacket, Icmpv4Packet, Icmpv6Packet};

/// What the probe makes of one received packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The identifier it is matched on (a raw socket's; the kernel matched a datagram one's).
    pub identifier: u16,
    /// The sequence number it is matched on.
    pub sequence: u16,
    /// The address it is matched on: the request's destination.
    pub destination: IpAddr,
    /// True when it counts as an echo reply (else it is an ICMP error about a request).
    pub is_reply: bool,
}

/// Decode `packet` received from `source` on an IPv4 or IPv6, raw or datagram socket; `None`
/// when the receive path drops it.
pub fn receive(packet: &[u8], v6: bool, raw: bool, source: IpAddr) -> Option<Received> {
    let decoded = if v6 {
        let source = match source {
            IpAddr::V6(v6) => v6,
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        };
        IcmpPacket::V6(Icmpv6Packet::decode(packet, source).ok()?)
    } else {
        let source = match source {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(_) => Ipv4Addr::LOCALHOST,
        };
        let kind = if raw { Type::RAW } else { Type::DGRAM };
        IcmpPacket::V4(Icmpv4Packet::decode(packet, kind, source, Ipv4Addr::UNSPECIFIED).ok()?)
    };
    let identifier = decoded.get_identifier().into_u16();
    let sequence = decoded.get_sequence().into_u16();
    let destination = decoded.real_destination();
    let is_reply = matches!(
        crate::answer(Ok((decoded, Duration::ZERO))),
        crate::Answer::Reply(_)
    );
    Some(Received {
        identifier,
        sequence,
        destination,
        is_reply,
    })
}
