//! One UDP request and its answer, for the probes whose protocol is a datagram each way (DNS,
//! NTP).
//!
//! The socket is connected to the server, so the kernel drops datagrams from any other address
//! or port. What does arrive is offered to the probe's matcher; a packet that is not the answer
//! (a stray, a spoof, garbage) is ignored and the wait goes on until the deadline, and when no
//! answer came the caller gets the packets ignored, counted by why, for its reason.

use std::net::SocketAddr;

use tokio::net::UdpSocket;
use tokio::time::{Instant, timeout_at};

/// The largest datagram read (a UDP payload cannot be larger).
const MAX_DATAGRAM: usize = 65_535;

/// Why no answer came back.
#[derive(Debug)]
pub enum UdpFailure {
    /// The deadline passed; these packets arrived and were not the answer.
    Timeout(Ignored),
    /// The socket failed (refused, unreachable, cannot be opened), worded for a reason.
    Socket(String),
}

/// Send `request` to `server` and wait until `deadline` for the packet `answer` accepts:
/// `answer` returns the answer, or `Err(why)` for a packet to ignore.
pub async fn exchange<T>(
    server: SocketAddr,
    request: &[u8],
    deadline: Instant,
    mut answer: impl FnMut(&[u8]) -> Result<T, &'static str>,
) -> Result<T, UdpFailure> {
    let local: SocketAddr = if server.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| UdpFailure::Socket(format!("cannot open a UDP socket: {e}")))?;
    socket
        .connect(server)
        .await
        .map_err(|e| UdpFailure::Socket(format!("UDP to {server}: {e}")))?;
    socket
        .send(request)
        .await
        .map_err(|e| UdpFailure::Socket(udp_error(server, &e)))?;
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    let mut ignored = Ignored::default();
    loop {
        let received = match timeout_at(deadline, socket.recv(&mut buffer)).await {
            Err(_) => return Err(UdpFailure::Timeout(ignored)),
            Ok(Err(error)) => return Err(UdpFailure::Socket(udp_error(server, &error))),
            Ok(Ok(received)) => received,
        };
        match answer(&buffer[..received]) {
            Ok(answer) => return Ok(answer),
            Err(why) => {
                // A stray, spoofed or broken packet: keep waiting for ours, and remember why.
                tracing::debug!(%server, why, "ignored a UDP packet that is not the answer");
                ignored.add(why);
            }
        }
    }
}

/// Packets received that were not the answer, by reason, in the order first seen.
#[derive(Debug, Default)]
pub struct Ignored(Vec<(&'static str, usize)>);

impl Ignored {
    fn add(&mut self, why: &'static str) {
        match self.0.iter_mut().find(|(seen, _)| *seen == why) {
            Some((_, count)) => *count += 1,
            None => self.0.push((why, 1)),
        }
    }

    /// `""`, or `"; 2 packets ignored: QR bit clear (query echoed back)"`, to append to the
    /// reason of a timeout.
    pub fn summary(&self) -> String {
        let total: usize = self.0.iter().map(|(_, count)| count).sum();
        if total == 0 {
            return String::new();
        }
        let kinds: Vec<String> = if self.0.len() == 1 {
            vec![self.0[0].0.to_string()]
        } else {
            self.0
                .iter()
                .map(|(why, count)| format!("{count} {why}"))
                .collect()
        };
        format!(
            "; {total} packet{} ignored: {}",
            if total == 1 { "" } else { "s" },
            kinds.join(", ")
        )
    }
}

/// An error of the connected socket, worded for a reason: refused is an ICMP port unreachable
/// coming back, i.e. nothing listens there.
fn udp_error(server: SocketAddr, error: &std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::ConnectionRefused {
        format!("refused: nothing listening on {server} (UDP)")
    } else {
        format!("UDP to {server}: {error}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_packets_are_summarised_by_reason() {
        let mut ignored = Ignored::default();
        assert_eq!(ignored.summary(), "");
        ignored.add("wrong id");
        assert_eq!(ignored.summary(), "; 1 packet ignored: wrong id");
        ignored.add("wrong id");
        ignored.add("garbage");
        assert_eq!(
            ignored.summary(),
            "; 3 packets ignored: 2 wrong id, 1 garbage"
        );
    }

    #[tokio::test]
    async fn strays_are_ignored_until_the_answer() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = server.local_addr().unwrap();
        let serve = std::thread::spawn(move || {
            let mut buffer = [0u8; 64];
            let (_, client) = server.recv_from(&mut buffer).unwrap();
            server.send_to(b"stray", client).unwrap();
            server.send_to(b"answer", client).unwrap();
        });
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let answer = exchange(address, b"ask", deadline, |packet| match packet {
            b"answer" => Ok(packet.len()),
            _ => Err("not the answer"),
        })
        .await
        .unwrap();
        assert_eq!(answer, 6);
        serve.join().unwrap();
    }
}
