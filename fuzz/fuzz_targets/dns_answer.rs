//! The DNS answer matcher (`probes/dns/src/exchange.rs`): which packet is the reply to a query.
//!
//! Input: a query and a packet, split at the first `\xff\xfe` pair. Properties: never a panic
//! on any bytes; a packet accepted as the reply is a response (QR set) with the query's id,
//! opcode and question; the query itself, echoed back, is never accepted; the query turned into
//! a response (QR set) is always accepted.
#![no_main]

use exaprobe_dns::fuzzing::judge;
use hickory_proto::op::{Message, MessageType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.windows(2).position(|w| w == [0xff, 0xfe]);
    let (query, packet) = match split {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, data),
    };
    let Ok(verdict) = judge(query, packet) else {
        return;
    };
    let parsed_query = Message::from_vec(query).expect("judge parsed it");
    let parsed_packet = Message::from_vec(packet).expect("judge parsed it");
    if verdict.is_none() {
        assert_eq!(parsed_packet.metadata.message_type, MessageType::Response);
        assert_eq!(parsed_packet.metadata.id, parsed_query.metadata.id);
        assert_eq!(
            parsed_packet.metadata.op_code,
            parsed_query.metadata.op_code
        );
        assert_eq!(parsed_packet.queries, parsed_query.queries);
    }
    if parsed_query.metadata.message_type == MessageType::Query {
        let Ok(echo) = parsed_query.to_vec() else {
            return;
        };
        assert!(
            judge(&echo, &echo).unwrap_or(Some("unparsable")).is_some(),
            "an echoed query was accepted"
        );
        let mut reply = parsed_query.clone();
        reply.metadata.message_type = MessageType::Response;
        if let (Ok(query), Ok(reply)) = (parsed_query.to_vec(), reply.to_vec()) {
            assert_eq!(
                judge(&query, &reply),
                Ok(None),
                "the reply to {parsed_query:?} was refused"
            );
        }
    }
});
