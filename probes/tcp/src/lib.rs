//! The TCP check: connect to an address; optionally complete a TLS handshake, send a string,
//! and expect the first bytes read to match a regex (an SMTP `220` banner, a line protocol's
//! answer). Each phase is named in the failure reason, and the probe's own deadline sits just
//! inside the runner's, so a timeout says where it happened.

use std::sync::Arc;

use anyhow::{Context, Result};
use exaprobe_core::address::{HostPort, Syntax, parse_host_port};
use exaprobe_core::kit::reason::{io_error, preview};
use exaprobe_core::{Outcome, Probe};
use exaprobe_tls::TlsArgs;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// Options of the TCP check.
#[derive(Debug, Clone, clap::Args)]
pub struct TcpOptions {
    /// Where to connect: HOST:PORT, IP:PORT or [IPV6]:PORT. Every address of a name is tried.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_address, help_heading = "TCP check")]
    pub address: HostPort,
    /// Send this after connecting (escapes: \r \n \t \\ \xHH).
    #[arg(long, value_name = "TEXT", help_heading = "TCP check")]
    pub send: Option<Payload>,
    /// The first bytes read must match this regular expression (e.g. '^220 ' for SMTP).
    #[arg(long, value_name = "REGEX", value_parser = exaprobe_core::kit::parse::bytes_regex, help_heading = "TCP check")]
    pub expect: Option<regex::bytes::Regex>,
    /// Read at most this many bytes looking for --expect (units: 4kB, 1MiB, ...).
    #[arg(long, default_value = "4096", value_parser = exaprobe_core::kit::parse::parse_byte_size_usize, value_name = "BYTES", help_heading = "TCP check")]
    pub max_read_bytes: usize,
    /// Complete a TLS handshake after connecting (then send/expect go over TLS).
    #[arg(long, help_heading = "TCP check")]
    pub tls: bool,
    /// Whom to trust and how much to verify with --tls.
    #[command(flatten)]
    pub tls_args: TlsArgs,
}

/// `--address` by the shared `HOST:PORT` rule: the port is required, IPv6 in brackets.
fn parse_address(text: &str) -> Result<HostPort, String> {
    parse_host_port(text, None, Syntax::Option)
}

/// The bytes of `--send`, escapes decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload(pub Vec<u8>);

impl std::str::FromStr for Payload {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        parse_escaped(text).map(Payload)
    }
}

/// Decode `\r \n \t \\ \0 \xHH` in `--send`.
pub fn parse_escaped(text: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buffer = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => bytes.push(b'\r'),
            Some('n') => bytes.push(b'\n'),
            Some('t') => bytes.push(b'\t'),
            Some('0') => bytes.push(0),
            Some('\\') => bytes.push(b'\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let byte = u8::from_str_radix(&hex, 16)
                    .map_err(|_| format!("'\\x{hex}' in '{text}' is not a hex byte"))?;
                bytes.push(byte);
            }
            Some(other) => return Err(format!("unknown escape '\\{other}' in '{text}'")),
            None => return Err(format!("'{text}' ends with a lone backslash")),
        }
    }
    Ok(bytes)
}

/// Connects (and talks) once per check; keeps no connection between checks.
pub struct TcpProbe {
    address: HostPort,
    host: String,
    send: Option<Payload>,
    expect: Option<regex::bytes::Regex>,
    max_read_bytes: usize,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

impl TcpProbe {
    /// Build the probe; `timeout` is the check deadline (the probe's own sits just inside it).
    pub fn new(options: &TcpOptions) -> Result<Self> {
        let host = options.address.host_string();
        let tls_args = &options.tls_args;
        if !options.tls
            && let Some(option) = tls_args.first_given()
        {
            anyhow::bail!("{option} needs --tls (the TCP check speaks TLS only when asked)");
        }
        let tls = if options.tls {
            tls_args.warn_if_insecure(&options.address.to_string());
            let config =
                exaprobe_tls::client_config(tls_args.verification(), &tls_args.files(true))?;
            let name = tls_args
                .tls_server_name
                .clone()
                .unwrap_or_else(|| host.clone());
            let server_name = ServerName::try_from(name.clone()).with_context(|| {
                format!("'{name}' is not a valid TLS server name (give --tls-server-name)")
            })?;
            Some((
                tokio_rustls::TlsConnector::from(Arc::new(config)),
                server_name,
            ))
        } else {
            None
        };
        Ok(TcpProbe {
            address: options.address.clone(),
            host,
            send: options.send.clone(),
            expect: options.expect.clone(),
            max_read_bytes: options.max_read_bytes,
            tls,
        })
    }

    async fn connect(&self, deadline: Instant) -> Result<TcpStream, String> {
        let addresses = match timeout_at(
            deadline,
            tokio::net::lookup_host((self.host.as_str(), self.address.port)),
        )
        .await
        {
            Err(_) => return Err(format!("timeout resolving {}", self.host)),
            Ok(Err(error)) => return Err(format!("DNS: cannot resolve {}: {error}", self.host)),
            Ok(Ok(addresses)) => addresses.collect::<Vec<_>>(),
        };
        let mut last_error = format!("DNS: {} has no address", self.host);
        for address in addresses {
            match timeout_at(deadline, TcpStream::connect(address)).await {
                Err(_) => return Err(format!("timeout connecting to {address}")),
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(error)) => last_error = format!("connect {address}: {}", io_error(&error)),
            }
        }
        Err(last_error)
    }

    async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        deadline: Instant,
    ) -> Result<(), String> {
        if let Some(Payload(payload)) = &self.send {
            match timeout_at(deadline, stream.write_all(payload)).await {
                Err(_) => return Err("timeout sending --send".into()),
                Ok(Err(error)) => return Err(format!("sending: {}", io_error(&error))),
                Ok(Ok(())) => {}
            }
        }
        let Some(pattern) = &self.expect else {
            return Ok(());
        };
        let mut received = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            if pattern.is_match(&received) {
                return Ok(());
            }
            if received.len() >= self.max_read_bytes {
                return Err(format!(
                    "no match for --expect '{pattern}' in the first {} bytes: got '{}'",
                    self.max_read_bytes,
                    preview(&received)
                ));
            }
            let read = match timeout_at(deadline, stream.read(&mut chunk)).await {
                Err(_) => {
                    return Err(format!(
                        "timeout waiting for data matching --expect '{pattern}' (got {} bytes: '{}')",
                        received.len(),
                        preview(&received)
                    ));
                }
                Ok(Err(error)) => return Err(format!("reading: {}", io_error(&error))),
                Ok(Ok(read)) => read,
            };
            if read == 0 {
                return Err(format!(
                    "connection closed after {} bytes without a match for --expect '{pattern}': got '{}'",
                    received.len(),
                    preview(&received)
                ));
            }
            let room = self.max_read_bytes - received.len();
            received.extend_from_slice(&chunk[..read.min(room)]);
        }
    }
}

impl Probe for TcpProbe {
    fn describe(&self) -> String {
        let tls = if self.tls.is_some() {
            "tls://"
        } else {
            "tcp://"
        };
        exaprobe_core::redact::for_display(&format!("{tls}{}", self.address))
    }

    async fn check(&mut self, deadline: Instant) -> Outcome {
        let stream = match self.connect(deadline).await {
            Ok(stream) => stream,
            Err(reason) => return Outcome::unhealthy(reason),
        };
        let result = match &self.tls {
            None => {
                let mut stream = stream;
                self.converse(&mut stream, deadline).await
            }
            Some((connector, name)) => {
                match timeout_at(deadline, connector.connect(name.clone(), stream)).await {
                    Err(_) => Err("timeout in the TLS handshake".to_string()),
                    Ok(Err(error)) => Err(format!(
                        "TLS handshake failed: {}",
                        exaprobe_tls::describe_chain(&error).unwrap_or_else(|| io_error(&error))
                    )),
                    Ok(Ok(mut stream)) => self.converse(&mut stream, deadline).await,
                }
            }
        };
        match result {
            Ok(()) => Outcome::Healthy,
            Err(reason) => Outcome::unhealthy(reason),
        }
    }
}

impl std::fmt::Debug for TcpProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpProbe")
            .field("target", &self.describe())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(parse_escaped(r"PING\r\n").unwrap(), b"PING\r\n");
        assert_eq!(parse_escaped(r"a\\b\t\x41\0").unwrap(), b"a\\b\tA\0");
        assert!(parse_escaped(r"\q").is_err());
        assert!(parse_escaped(r"\xZZ").is_err());
        assert!(parse_escaped("end\\").is_err());
    }

    #[test]
    fn addresses() {
        for good in [
            "127.0.0.1:25",
            "[::1]:53",
            "mail.example:587",
            "localhost:1",
        ] {
            assert_eq!(
                parse_address(good).map(|a| a.to_string()),
                Ok(good.to_string())
            );
        }
        let error = parse_address("::1:80").unwrap_err();
        assert!(error.contains("[::1]:80"), "{error}");
        assert!(parse_address("::1").unwrap_err().contains("[::1]:PORT"));
        for bad in [
            "127.0.0.1",
            "host:0",
            "host:99999",
            ":25",
            "a b:25",
            "[]:25",
        ] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
    }
}
