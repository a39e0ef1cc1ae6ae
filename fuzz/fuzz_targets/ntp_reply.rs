//! The NTP reply parser, matcher and verdict (`probes/ntp/src/packet.rs`, `verdict.rs`).
//!
//! Input: 24 bytes, our transmit timestamp and the local clock when the request left and when
//! the packet came (big-endian u64 each), then the packet. Properties: never a panic (also not
//! in the offset and root distance arithmetic, whatever timestamps a server sends); a packet is
//! the reply exactly when it has an NTP header, mode 4 and our transmit timestamp as its
//! origin; the verdict's reason is one printable line naming the server.
#![no_main]

use exaprobe_ntp::fuzzing::judge;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((times, packet)) = data.split_first_chunk::<24>() else {
        return;
    };
    let word = |at: usize| u64::from_be_bytes(times[at..at + 8].try_into().expect("8 bytes"));
    let (sent, t1, t4) = (word(0), word(8), word(16));
    let verdict = judge(sent, t1, t4, packet);
    let is_reply = packet.len() >= 48 && packet[0] & 0b111 == 4 && packet[24..32] == times[..8];
    assert_eq!(verdict.is_ok(), is_reply, "{verdict:?}");
    if let Ok(outcome) = verdict
        && let Some(reason) = outcome.reason()
    {
        assert!(reason.starts_with("192.0.2.1:123: "), "{reason}");
        assert!(!reason.chars().any(char::is_control), "{reason:?}");
    }
});
