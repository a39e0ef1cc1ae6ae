//! The TCP check: connect to an address; optionally complete a TLS handshake, send a string,
//! and expect the first bytes read to match a regex (an SMTP `220` banner, a line protocol's
//! answer). Each phase is named in the failure reason, and the probe's own deadline sits just
//! inside the runner's, so a timeout says where it happened.
//!
//! With `--keep-open`, the watcher (`keep`) holds one more connection open between checks and
//! reports the server closing or resetting it; the check itself is the same.

mod connect;
mod keep;
mod options;

use std::time::Duration;

use anyhow::{Context, Result};
use exaprobe_core::kit::events::Events;
use exaprobe_core::kit::reason::{io_error, preview};
use exaprobe_core::{Outcome, Probe, Watcher};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};

pub use options::{Payload, TcpOptions, parse_escaped};

use connect::Target;

/// Connects (and talks) once per check; keeps no connection between checks (the watcher of
/// `--keep-open` keeps its own).
pub struct TcpProbe {
    target: Target,
    send: Option<Payload>,
    expect: Option<regex::bytes::Regex>,
    max_read_bytes: usize,
    keep_open: bool,
    /// `--timeout`: bounds each attempt of the kept connection, where no check's deadline
    /// reaches.
    timeout: Duration,
}

impl TcpProbe {
    /// Build the probe; `timeout` (`--timeout`) bounds the kept connection's attempts.
    pub fn new(options: &TcpOptions, timeout: Duration) -> Result<Self> {
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
                .unwrap_or_else(|| options.address.host_string());
            let server_name = ServerName::try_from(name.clone()).with_context(|| {
                format!("'{name}' is not a valid TLS server name (give --tls-server-name)")
            })?;
            Some((config, server_name))
        } else {
            None
        };
        Ok(TcpProbe {
            target: Target::new(options.address.clone(), tls),
            send: options.send.clone(),
            expect: options.expect.clone(),
            max_read_bytes: options.max_read_bytes,
            keep_open: options.keep_open,
            timeout,
        })
    }

    /// Send `--send`, then read until `--expect` matches (or fails to).
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
        let scheme = if self.target.is_tls() {
            "tls://"
        } else {
            "tcp://"
        };
        exaprobe_core::redact::for_display(&format!("{scheme}{}", self.target.address))
    }

    fn watch(&self, events: Events) -> Option<Watcher> {
        if !self.keep_open {
            return None;
        }
        Some(Box::pin(keep::run(
            self.target.clone(),
            self.timeout,
            events,
        )))
    }

    async fn check(&mut self, deadline: Instant) -> Outcome {
        let result = match self.target.open(deadline).await {
            Ok(mut stream) => self.converse(&mut stream, deadline).await,
            Err(reason) => Err(reason),
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
