//! The ICMP probe's receive path (`probes/icmp`): a packet as a socket hands it over, decoded by
//! surge-ping and judged as the check judges it.
//!
//! Input: one byte choosing the socket (bit 0: IPv6, bit 1: raw), four source address bytes,
//! then the packet. Properties: never a panic on any bytes; what counts as an echo reply is an
//! echo reply on the wire (type 0 or 129 where the socket puts the ICMP header), matched on the
//! identifier, sequence number and source it carries; an echo request never counts.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use exaprobe_icmp::fuzzing::receive;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some((source, packet)) = rest.split_at_checked(4) else {
        return;
    };
    let (v6, raw) = (mode & 1 == 1, mode & 2 == 2);
    let source4 = Ipv4Addr::new(source[0], source[1], source[2], source[3]);
    let source = if v6 {
        IpAddr::V6(source4.to_ipv6_mapped())
    } else {
        IpAddr::V4(source4)
    };
    let Some(received) = receive(packet, v6, raw, source) else {
        return;
    };
    // Where the ICMP header starts, and who sent it, as the socket hands them over: an IPv4 raw
    // socket gives the IP header too (its source is in it), the others the ICMP message alone.
    let (icmp, sender) = if !v6 && raw {
        // The header's length as the decoder reads it: at least 20 bytes (the kernel never
        // hands over a header shorter than that; the decoder reads one as 20).
        let header = (usize::from(packet[0] & 0x0f) * 4).max(20);
        let sender = IpAddr::V4(Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]));
        (packet.get(header..).unwrap_or_default(), sender)
    } else {
        (packet, source)
    };
    let echo_request = if v6 { 128 } else { 8 };
    assert_ne!(icmp.first(), Some(&echo_request), "an echo request was decoded: {received:?}");
    if received.is_reply {
        assert_eq!(icmp[0], if v6 { 129 } else { 0 }, "{received:?}");
        assert_eq!(received.destination, sender, "matched on another source");
        assert_eq!(
            (received.identifier, received.sequence),
            (
                u16::from_be_bytes([icmp[4], icmp[5]]),
                u16::from_be_bytes([icmp[6], icmp[7]])
            ),
            "matched on other numbers than the packet's"
        );
    }
});
