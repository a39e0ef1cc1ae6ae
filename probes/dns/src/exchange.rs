//! Sending one DNS message to one server and reading its answer, over UDP or TCP.
//!
//! Done here with tokio rather than through a resolver library, so the probe sends exactly the
//! query it means to exactly the server it names (no search list, no cache, no retries on
//! other servers) and can tell a truncated UDP answer, a refusal and silence apart.

use std::net::SocketAddr;

use hickory_proto::op::Message;
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
    loop {
        let received = match timeout_at(deadline, socket.recv(&mut buffer)).await {
            Err(_) => return Err(format!("timeout: no answer from {server} over UDP")),
            Ok(Err(error)) => return Err(udp_error(server, &error)),
            Ok(Ok(received)) => received,
        };
        match Message::from_vec(&buffer[..received]) {
            Ok(answer) if answers(query, &answer) => return Ok(answer),
            // A stray or spoofed packet: keep waiting for ours.
            Ok(_) | Err(_) => {
                tracing::debug!(%server, "ignored a UDP packet that is not the answer")
            }
        }
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
    if !answers(query, &answer) {
        return Err(format!("the answer from {server} does not match the query"));
    }
    Ok(answer)
}

/// Is `answer` the reply to `query` (same id, same question)?
fn answers(query: &Message, answer: &Message) -> bool {
    answer.metadata.id == query.metadata.id && answer.queries == query.queries
}

fn udp_error(server: SocketAddr, error: &std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::ConnectionRefused {
        format!("refused: nothing listening on {server} (UDP)")
    } else {
        format!("UDP to {server}: {error}")
    }
}
