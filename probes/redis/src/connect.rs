//! Opening connections: a stream to an endpoint (TCP, TLS over TCP, or a Unix socket) with the
//! handshake (AUTH, SELECT), as a command connection for checks or a pub/sub one for the
//! watcher. Every wait is bounded by the caller's deadline.

use std::sync::Arc;

use redis::RedisConnectionInfo;
use redis::aio::{MultiplexedConnection, PubSub};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, timeout_at};

use crate::describe;
use crate::target::Endpoint;

/// A byte stream to a Redis server, whatever carries it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How to reach and log in to a server: credentials, database and TLS. Cheap to clone (the
/// watcher takes its own copy).
#[derive(Clone)]
pub(crate) struct Connector {
    info: RedisConnectionInfo,
    tls: Option<tokio_rustls::TlsConnector>,
    /// `--tls-server-name`, else the host of the endpoint.
    server_name: Option<String>,
}

impl Connector {
    /// A connector with these credentials and TLS settings.
    pub(crate) fn new(
        info: RedisConnectionInfo,
        tls: Option<Arc<rustls::ClientConfig>>,
        server_name: Option<String>,
    ) -> Self {
        Connector {
            info,
            tls: tls.map(tokio_rustls::TlsConnector::from),
            server_name,
        }
    }

    /// A connector for Sentinels: no credentials, no TLS.
    pub(crate) fn plain() -> Self {
        Connector {
            info: RedisConnectionInfo::default(),
            tls: None,
            server_name: None,
        }
    }

    /// The transport to `endpoint` (TCP, TLS when configured, or a Unix socket).
    async fn stream(&self, endpoint: &Endpoint) -> Result<Box<dyn Io>, String> {
        match endpoint {
            Endpoint::Tcp { host, port } => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| {
                        format!(
                            "connect {endpoint}: {}",
                            exaprobe_core::kit::reason::io_error(&e)
                        )
                    })?;
                let Some(connector) = &self.tls else {
                    return Ok(Box::new(stream));
                };
                let name = self.server_name.clone().unwrap_or_else(|| host.clone());
                let name = rustls::pki_types::ServerName::try_from(name.clone())
                    .map_err(|_| format!("'{name}' is not a valid TLS server name"))?;
                let stream = connector.connect(name, stream).await.map_err(|e| {
                    let why = exaprobe_tls::describe_chain(&e).unwrap_or_else(|| e.to_string());
                    format!("TLS handshake with {endpoint} failed: {why}")
                })?;
                Ok(Box::new(stream))
            }
            Endpoint::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await.map_err(|e| {
                    format!(
                        "connect {}: {}",
                        path.display(),
                        exaprobe_core::kit::reason::io_error(&e)
                    )
                })?;
                Ok(Box::new(stream))
            }
        }
    }

    /// A command connection to `endpoint`, logged in, by `deadline`.
    pub(crate) async fn command(
        &self,
        endpoint: &Endpoint,
        deadline: Instant,
    ) -> Result<MultiplexedConnection, String> {
        let connected = timeout_at(deadline, async {
            let stream = self.stream(endpoint).await?;
            let (connection, driver) =
                MultiplexedConnection::new_with_config(&self.info, stream, connection_config())
                    .await
                    .map_err(|e| describe(&e))?;
            tokio::spawn(driver);
            Ok::<_, String>(connection)
        })
        .await;
        connected.unwrap_or_else(|_| Err(format!("timeout connecting to {endpoint}")))
    }

    /// A pub/sub connection to `endpoint`, logged in, by `deadline`.
    pub(crate) async fn pubsub(
        &self,
        endpoint: &Endpoint,
        deadline: Instant,
    ) -> Result<PubSub, String> {
        let connected = timeout_at(deadline, async {
            let stream = self.stream(endpoint).await?;
            PubSub::new(&self.info, stream)
                .await
                .map_err(|e| describe(&e))
        })
        .await;
        connected.unwrap_or_else(|_| Err(format!("timeout connecting to {endpoint}")))
    }
}

/// The crate's own deadlines (500 ms per response by default) are off: the probe's deadline,
/// derived from --timeout, governs every wait.
fn connection_config() -> redis::AsyncConnectionConfig {
    redis::AsyncConnectionConfig::new()
        .set_response_timeout(None)
        .set_connection_timeout(None)
}
