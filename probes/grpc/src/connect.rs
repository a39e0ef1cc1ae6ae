//! Opening the connection a gRPC channel runs on: resolve `--address`, connect to each address
//! in turn, complete a TLS handshake with exaprobe-tls's rustls configuration (so `--ca-file`,
//! `--client-cert`, `--insecure` mean what they mean in every probe). tonic's own TLS is not
//! used; its channel is given this connector instead.

use std::sync::Arc;
use std::time::Duration;

use exaprobe_core::address::HostPort;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint};

/// What the channel reads and writes: a TCP or TLS stream.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// A connection that could not be opened, said in one line for the reason.
#[derive(Debug)]
pub(crate) struct ConnectFailure(pub(crate) String);

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectFailure {}

/// What opens a channel to the server (the endpoint: URI, `--authority`, user agent; and the
/// connector), shared by the check and the watcher, which each open their own.
#[derive(Clone)]
pub(crate) struct Dialer {
    pub(crate) endpoint: Endpoint,
    pub(crate) connector: Connector,
}

impl Dialer {
    /// A new channel, connected now (unbounded: the caller sets the deadline).
    pub(crate) async fn channel(&self) -> Result<Channel, tonic::transport::Error> {
        let connector = self.connector.clone();
        let connect =
            tower::service_fn(move |_: tonic::codegen::http::Uri| connector.clone().connect());
        self.endpoint.connect_with_connector(connect).await
    }
}

/// Everything needed to open one connection; cloned into the channel.
#[derive(Clone)]
pub(crate) struct Connector {
    address: HostPort,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// Bounds a connection attempt the channel makes on its own (a reconnect happens in the
    /// channel's background task, where no check's deadline reaches).
    limit: Duration,
}

impl Connector {
    /// A connector to `address`, with TLS to `tls` when given; `limit` bounds each attempt.
    pub(crate) fn new(
        address: HostPort,
        tls: Option<(rustls::ClientConfig, ServerName<'static>)>,
        limit: Duration,
    ) -> Connector {
        let tls = tls.map(|(mut config, name)| {
            // gRPC servers may refuse TLS without ALPN h2 (grpc-go does since 1.67).
            config.alpn_protocols = vec![b"h2".to_vec()];
            (TlsConnector::from(Arc::new(config)), name)
        });
        Connector {
            address,
            tls,
            limit,
        }
    }

    /// Open a connection, within the limit.
    pub(crate) async fn connect(self) -> Result<TokioIo<Box<dyn Stream>>, ConnectFailure> {
        let limit = self.limit;
        match tokio::time::timeout(limit, self.open()).await {
            Err(_) => Err(ConnectFailure(format!(
                "timeout connecting to {} after {limit:?}",
                self.address
            ))),
            Ok(result) => result.map(TokioIo::new),
        }
    }

    async fn open(&self) -> Result<Box<dyn Stream>, ConnectFailure> {
        let stream = self.tcp().await?;
        let Some((connector, name)) = &self.tls else {
            return Ok(Box::new(stream));
        };
        match connector.connect(name.clone(), stream).await {
            Ok(tls) => Ok(Box::new(tls)),
            Err(error) => Err(ConnectFailure(format!(
                "TLS handshake failed: {}",
                exaprobe_tls::describe_chain(&error)
                    .unwrap_or_else(|| exaprobe_core::kit::reason::io_error(&error))
            ))),
        }
    }

    async fn tcp(&self) -> Result<TcpStream, ConnectFailure> {
        let host = self.address.host_string();
        let addresses = tokio::net::lookup_host((host.as_str(), self.address.port))
            .await
            .map_err(|error| ConnectFailure(format!("DNS: cannot resolve {host}: {error}")))?;
        let mut last = ConnectFailure(format!("DNS: {host} has no address"));
        for address in addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(error) => {
                    last = ConnectFailure(format!(
                        "connect {address}: {}",
                        exaprobe_core::kit::reason::io_error(&error)
                    ))
                }
            }
        }
        Err(last)
    }
}
