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

use exaprobe_core::kit::reason::io_error;
use exaprobe_core::kit::udp::{self, UdpFailure};
use hickory_proto::op::{Message, MessageType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
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
pub(crate) async fn exchange(
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
    let answer = |packet: &[u8]| match Message::from_vec(packet) {
        Ok(answer) => match mismatch(query, &answer) {
            None => Ok(answer),
            Some(why) => Err(why),
        },
        Err(_) => Err("not a DNS message"),
    };
    udp::exchange(server, bytes, deadline, answer)
        .await
        .map_err(|failure| match failure {
            UdpFailure::Timeout(ignored) => format!(
                "timeout: no answer from {server} over UDP{}",
                ignored.summary()
            ),
            UdpFailure::Socket(reason) => reason,
        })
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
        Ok(Err(error)) => return Err(format!("TCP to {server}: {}", io_error(&error))),
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
        Ok(Err(error)) => return Err(format!("TCP to {server}: {}", io_error(&error))),
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
