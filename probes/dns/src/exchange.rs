//! Sending one DNS message to one server and reading its answer, over UDP or TCP.
//!
//! Done here with tokio rather than through a resolver library, so the probe sends exactly the
//! query it means to exactly the server it names (no search list, no cache, no retries on
//! other servers) and can tell a truncated UDP answer, a refusal and silence apart.
//!
//! Only a response (QR set) with the query's id, opcode and question, from the server's
//! address, is the answer. Other UDP packets are ignored while waiting, and when no answer
//! came in time the reason says how many were ignored and why.

use std::net::SocketAddr;

use hickory_proto::op::{Message, MessageType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout_at};

/// How the query travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// UDP, falling back to TCP when the answer is truncated.
    Udp,
    /// TCP only.
    Tcp,
}

/// Send `query` to `server`; returns the answer and the transport that produced it.
pub async fn exchange(
    query: &Message,
    server: SocketAddr,
    transport: Transport,
    deadline: Instant,
) -> Result<(Message, Transport), String> {
    let bytes = query
        .to_vec()
        .map_err(|e| format!("cannot encode the query: {e}"))?;
    if transport == Transport::Udp {
        let answer = over_udp(&bytes, query, server, deadline).await?;
        if !answer.metadata.truncation {
            return Ok((answer, Transport::Udp));
        }
        tracing::debug!(%server, "UDP answer truncated; asking again over TCP");
    }
    over_tcp(&bytes, query, server, deadline)
        .await
        .map(|answer| (answer, Transport::Tcp))
}

async fn over_udp(
    bytes: &[u8],
    query: &Message,
    server: SocketAddr,
    deadline: Instant,
) -> Result<Message, String> {
    let local: SocketAddr = if server.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    }
    .parse()
    .map_err(|_| "address")?;
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    socket
        .connect(server)
        .await
        .map_err(|e| format!("UDP to {server}: {e}"))?;
    socket
        .send(bytes)
        .await
        .map_err(|e| udp_error(server, &e))?;
    let mut buffer = vec![0u8; 65535];
    let mut ignored = Ignored::default();
    loop {
        let received = match timeout_at(deadline, socket.recv(&mut buffer)).await {
            Err(_) => {
                return Err(format!(
                    "timeout: no answer from {server} over UDP{}",
                    ignored.summary()
                ));
            }
            Ok(Err(error)) => return Err(udp_error(server, &error)),
            Ok(Ok(received)) => received,
        };
        let why = match Message::from_vec(&buffer[..received]) {
            Ok(answer) => match mismatch(query, &answer) {
                None => return Ok(answer),
                Some(why) => why,
            },
            Err(_) => "not a DNS message",
        };
        // A stray, spoofed or broken packet: keep waiting for ours, and remember why.
        tracing::debug!(%server, why, "ignored a UDP packet that is not the answer");
        ignored.add(why);
    }
}

/// Packets received over UDP that were not the answer, by reason, in the order first seen.
#[derive(Debug, Default)]
struct Ignored(Vec<(&'static str, usize)>);

impl Ignored {
    fn add(&mut self, why: &'static str) {
        match self.0.iter_mut().find(|(seen, _)| *seen == why) {
            Some((_, count)) => *count += 1,
            None => self.0.push((why, 1)),
        }
    }

    /// `""`, or `"; 2 packets ignored: QR bit clear (query echoed back)"`.
    fn summary(&self) -> String {
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

async fn over_tcp(
    bytes: &[u8],
    query: &Message,
    server: SocketAddr,
    deadline: Instant,
) -> Result<Message, String> {
    let mut stream = match timeout_at(deadline, TcpStream::connect(server)).await {
        Err(_) => return Err(format!("timeout connecting to {server} over TCP")),
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(format!("refused: nothing listening on {server} (TCP)"));
        }
        Ok(Err(error)) => return Err(format!("TCP to {server}: {error}")),
        Ok(Ok(stream)) => stream,
    };
    let length = u16::try_from(bytes.len()).map_err(|_| "query too long")?;
    let mut framed = length.to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    let exchange = async {
        stream.write_all(&framed).await?;
        let answer_length = stream.read_u16().await?;
        let mut answer = vec![0u8; usize::from(answer_length)];
        stream.read_exact(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = match timeout_at(deadline, exchange).await {
        Err(_) => return Err(format!("timeout: no answer from {server} over TCP")),
        Ok(Err(error)) => return Err(format!("TCP to {server}: {error}")),
        Ok(Ok(answer)) => answer,
    };
    let answer =
        Message::from_vec(&answer).map_err(|e| format!("malformed answer from {server}: {e}"))?;
    if let Some(why) = mismatch(query, &answer) {
        return Err(format!("invalid answer from {server} over TCP: {why}"));
    }
    Ok(answer)
}

/// Why `answer` is not the reply to `query`, or `None` when it is: a response (QR set) with
/// the query's id, opcode and question. (Its source address is the server's: the UDP socket
/// is connected to it, so the kernel drops datagrams from any other address or port.)
pub(crate) fn mismatch(query: &Message, answer: &Message) -> Option<&'static str> {
    if answer.metadata.message_type != MessageType::Response {
        return Some("QR bit clear (query echoed back)");
    }
    if answer.metadata.id != query.metadata.id {
        return Some("wrong id");
    }
    if answer.metadata.op_code != query.metadata.op_code {
        return Some("wrong opcode");
    }
    if answer.queries != query.queries {
        return Some("answers another question");
    }
    None
}

fn udp_error(server: SocketAddr, error: &std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::ConnectionRefused {
        format!("refused: nothing listening on {server} (UDP)")
    } else {
        format!("UDP to {server}: {error}")
    }
}
