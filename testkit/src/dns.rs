//! Hostile DNS servers over UDP: each answers every query in one wrong way (the query echoed
//! back with the QR bit clear, another id, another question, another opcode, garbage bytes),
//! optionally followed by the right answer, so a probe can be shown to ignore the wrong
//! packets, say why, and still take the right one.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// What the server sends back for each query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// The query itself (QR bit clear), as a UDP echo service does.
    Echo,
    /// A response (QR set) with the id plus one.
    WrongId,
    /// A response for another name (the first letter of the name changed).
    WrongQuestion,
    /// A response with opcode STATUS instead of QUERY.
    WrongOpcode,
    /// Bytes that are not a DNS message.
    Garbage,
}

/// A running responder; stops when dropped.
pub struct HostileDns {
    /// Its address on 127.0.0.1.
    pub address: SocketAddr,
    /// Queries received.
    pub queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for HostileDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Start a responder sending `wrong` for each query, then the right (empty, NOERROR) answer
/// when `then_answer`.
pub fn hostile_dns(wrong: Misbehaviour, then_answer: bool) -> HostileDns {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback UDP port");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    let server = HostileDns {
        address: socket.local_addr().expect("local address"),
        queries: Arc::default(),
        stop: Arc::default(),
    };
    let (queries, stop) = (server.queries.clone(), server.stop.clone());
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while !stop.load(Ordering::SeqCst) {
            let Ok((length, peer)) = socket.recv_from(&mut buffer) else {
                continue;
            };
            let query = &buffer[..length];
            if length < 12 {
                continue;
            }
            queries.fetch_add(1, Ordering::SeqCst);
            let _ = socket.send_to(&misbehave(query, wrong), peer);
            if then_answer {
                let _ = socket.send_to(&response(query), peer);
            }
        }
    });
    server
}

/// The right answer: the query with QR set (no records, NOERROR).
fn response(query: &[u8]) -> Vec<u8> {
    let mut answer = query.to_vec();
    answer[2] |= 0x80;
    answer
}

fn misbehave(query: &[u8], how: Misbehaviour) -> Vec<u8> {
    let mut packet = response(query);
    match how {
        Misbehaviour::Echo => packet = query.to_vec(),
        Misbehaviour::WrongId => {
            let id = u16::from_be_bytes([packet[0], packet[1]]).wrapping_add(1);
            packet[..2].copy_from_slice(&id.to_be_bytes());
        }
        Misbehaviour::WrongQuestion => {
            // Byte 12 is the first label's length, byte 13 its first letter.
            if packet.len() > 13 {
                packet[13] = if packet[13] == b'x' { b'y' } else { b'x' };
            }
        }
        Misbehaviour::WrongOpcode => packet[2] = (packet[2] & 0x87) | (2 << 3),
        Misbehaviour::Garbage => packet = b"\xde\xad\xbe\xef not DNS".to_vec(),
    }
    packet
}
