//! Opening a connection to `--address`: resolve, try each address in turn, complete the TLS
//! handshake with `--tls`; each phase bounded by the deadline and named in the reason. Shared
//! by the check and the kept connection of `--keep-open`.

use std::sync::Arc;

use exaprobe_core::address::HostPort;
use exaprobe_core::kit::reason::io_error;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsConnector;

/// A plain or TLS connection.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// Where to connect and how; cheap to clone (the watcher takes its own).
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) address: HostPort,
    host: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Target {
    /// `address`, with TLS by `tls` (a client configuration and the name to verify) if given.
    pub(crate) fn new(
        address: HostPort,
        tls: Option<(rustls::ClientConfig, ServerName<'static>)>,
    ) -> Target {
        Target {
            host: address.host_string(),
            address,
            tls: tls.map(|(config, name)| (TlsConnector::from(Arc::new(config)), name)),
        }
    }

    /// Whether the connection speaks TLS.
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A connection, after the TLS handshake with `--tls`, by `deadline`.
    pub(crate) async fn open(&self, deadline: Instant) -> Result<Box<dyn Stream>, String> {
        let stream = self.connect(deadline).await?;
        let Some((connector, name)) = &self.tls else {
            return Ok(Box::new(stream));
        };
        match timeout_at(deadline, connector.connect(name.clone(), stream)).await {
            Err(_) => Err("timeout in the TLS handshake".to_string()),
            Ok(Err(error)) => Err(format!(
                "TLS handshake failed: {}",
                exaprobe_tls::describe_chain(&error).unwrap_or_else(|| io_error(&error))
            )),
            Ok(Ok(stream)) => Ok(Box::new(stream)),
        }
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
}
