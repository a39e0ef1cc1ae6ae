//! A real gRPC server for tests (feature `grpc`): tonic serving tonic-health's standard
//! `grpc.health.v1.Health` (Check and the Watch stream, or Check only), whose per-service
//! status a test flips while the server runs; plain or TLS (a certificate from
//! [`crate::certs`]); a listener that accepts TCP and never answers; or an HTTP/2 server
//! answering SERVING in a way that is not gRPC ([`Misbehaviour`]). It runs on its own thread
//! and runtime, so sync tests (end-to-end) and async tests alike use it, and dropping it closes
//! the listener and every connection at once, the way a killed server would.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tonic::codegen::Service;
use tonic::codegen::http::Request;
use tonic_health::server::HealthReporter;

pub use tonic_health::ServingStatus;

/// How the server behaves.
#[derive(Clone, Default)]
pub struct Config {
    /// Port on 127.0.0.1; 0 picks a free one (give the old port to restart a server).
    pub port: u16,
    /// Serve TLS with this configuration (offer ALPN `h2`, as gRPC requires).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Accept TCP connections, read and discard what comes, never answer (a hung server).
    pub silent: bool,
    /// Answer every request with a SERVING message and `grpc-status: 0`, wrong in this way.
    pub misbehaviour: Option<Misbehaviour>,
    /// Serve `Health/Check` only: `Health/Watch` answers UNIMPLEMENTED, as servers built
    /// before Watch existed (or proxies that do not stream) do.
    pub without_watch: bool,
}

/// The path of the streaming health method.
const WATCH_PATH: &str = "/grpc.health.v1.Health/Watch";
/// The path of the one-shot health method.
const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// Answers that are not gRPC a client can read, each carrying a SERVING message and an OK
/// `grpc-status` trailer, so only the HTTP layer tells them from a healthy answer: a web server
/// or proxy in front of the service, or a server compressing what the client did not offer to
/// decompress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// HTTP status 500 with the gRPC content type.
    Status500,
    /// `content-type: text/html`.
    HtmlContentType,
    /// No content type at all.
    NoContentType,
    /// The message gzip-compressed (`grpc-encoding: gzip`), though the client offered none.
    Gzip,
}

/// A running server; dropping it stops it and closes every connection.
pub struct GrpcServer {
    /// Where it listens.
    pub address: SocketAddr,
    reporter: HealthReporter,
    open: Arc<AtomicUsize>,
    authority: Arc<Mutex<Option<String>>>,
    watches: Arc<AtomicUsize>,
    checks: Arc<AtomicUsize>,
    runtime: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GrpcServer {
    /// Start a server; the overall health (service `""`) starts SERVING, every other service
    /// is unknown (NOT_FOUND) until [`GrpcServer::set`] names it.
    pub fn start(config: &Config) -> GrpcServer {
        let listener = std::net::TcpListener::bind(("127.0.0.1", config.port))
            .expect("bind the gRPC test server's port");
        listener.set_nonblocking(true).expect("non-blocking");
        let address = listener.local_addr().expect("local address");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the gRPC test server");
        let handle = runtime.handle().clone();
        let (reporter, service) = tonic_health::server::health_reporter();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = config.clone();
        let open = Arc::new(AtomicUsize::new(0));
        let counted = open.clone();
        let authority = Arc::new(Mutex::new(None));
        let seen = authority.clone();
        let watches = Arc::new(AtomicUsize::new(0));
        let watched = watches.clone();
        let checks = Arc::new(AtomicUsize::new(0));
        let checked = checks.clone();
        let without_watch = config.without_watch;
        // Records each request's :authority and counts the Check and Watch requests, then lets
        // the health service answer (or refuses Watch when the server has none).
        let service = tower::service_fn(move |request: Request<tonic::body::Body>| {
            *seen.lock().expect("the authority lock") =
                request.uri().authority().map(|a| a.to_string());
            let watch = request.uri().path() == WATCH_PATH;
            if watch {
                watched.fetch_add(1, Ordering::SeqCst);
            }
            if request.uri().path() == CHECK_PATH {
                checked.fetch_add(1, Ordering::SeqCst);
            }
            let mut health = service.clone();
            async move {
                if watch && without_watch {
                    return Ok(tonic::Status::unimplemented("").into_http());
                }
                health.call(request).await
            }
        });
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("a tokio listener");
                if config.silent {
                    tokio::spawn(hold_silently(listener, counted));
                } else if let Some(misbehaviour) = config.misbehaviour {
                    tokio::spawn(misbehave(listener, misbehaviour));
                } else {
                    let (sender, receiver) = tokio::sync::mpsc::channel(16);
                    tokio::spawn(accept(listener, config.tls.clone(), sender));
                    let incoming = tokio_stream::wrappers::ReceiverStream::new(receiver);
                    tokio::spawn(
                        tonic::transport::Server::builder().serve_with_incoming(service, incoming),
                    );
                }
                let _ = stopped.await;
            });
            // Dropping the runtime drops every task: the listener and all connections close.
            drop(runtime);
        });
        GrpcServer {
            address,
            reporter,
            open,
            authority,
            watches,
            checks,
            runtime: handle,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Connections a silent server holds open now (the client has not closed them).
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// The `:authority` of the last request answered.
    pub fn last_authority(&self) -> Option<String> {
        self.authority.lock().expect("the authority lock").clone()
    }

    /// How many `Health/Watch` requests came (answered or refused).
    pub fn watch_requests(&self) -> usize {
        self.watches.load(Ordering::SeqCst)
    }

    /// How many `Health/Check` requests came: a test orders what it sees (a route withdrawn)
    /// against the checks made.
    pub fn check_requests(&self) -> usize {
        self.checks.load(Ordering::SeqCst)
    }

    /// Set what the health service answers for `service` (`""`: the overall health).
    pub fn set(&self, service: &str, status: ServingStatus) {
        let reporter = self.reporter.clone();
        let service = service.to_string();
        let (done, wait) = std::sync::mpsc::channel();
        self.runtime.spawn(async move {
            reporter.set_service_status(service, status).await;
            let _ = done.send(());
        });
        wait.recv().expect("the gRPC test server sets a status");
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections, completes TLS when configured, and hands them to tonic.
async fn accept(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    sender: tokio::sync::mpsc::Sender<Result<Connection, std::io::Error>>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    while let Ok((stream, _)) = listener.accept().await {
        let sender = sender.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let connection = match acceptor {
                None => Connection(Box::new(stream)),
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls) => Connection(Box::new(tls)),
                    Err(_) => return,
                },
            };
            let _ = sender.send(Ok(connection)).await;
        });
    }
}

/// Accepts connections and reads them to their end without ever writing, counting the open ones.
async fn hold_silently(listener: TcpListener, open: Arc<AtomicUsize>) {
    while let Ok((mut stream, _)) = listener.accept().await {
        open.fetch_add(1, Ordering::SeqCst);
        let open = open.clone();
        tokio::spawn(async move {
            let mut buffer = [0u8; 4096];
            while matches!(stream.read(&mut buffer).await, Ok(1..)) {}
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// A HealthCheckResponse{status: SERVING} in protobuf: field 1, varint 1.
const SERVING: [u8; 2] = [0x08, 0x01];
/// [`SERVING`] gzip-compressed (Python's `gzip.compress(b"\x08\x01", mtime=0)`).
const SERVING_GZIP: [u8; 22] = [
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xe3, 0x60, 0x04, 0x00, 0x61, 0xa8,
    0x07, 0xfe, 0x02, 0x00, 0x00, 0x00,
];

/// Serves HTTP/2 on `listener`, answering every request as `misbehaviour` says.
async fn misbehave(listener: TcpListener, misbehaviour: Misbehaviour) {
    use http_body_util::StreamBody;
    use hyper::body::{Bytes, Frame};
    use tonic::codegen::http::{HeaderMap, HeaderValue, Response, StatusCode};

    while let Ok((stream, _)) = listener.accept().await {
        let service = hyper::service::service_fn(move |_request| {
            let (compressed, message) = match misbehaviour {
                Misbehaviour::Gzip => (1, &SERVING_GZIP[..]),
                _ => (0, &SERVING[..]),
            };
            // The gRPC frame: compressed flag, big-endian length, message.
            let mut frame = vec![compressed];
            frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
            frame.extend_from_slice(message);
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from_static("0"));
            let frames = [
                Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(frame))),
                Ok(Frame::trailers(trailers)),
            ];
            let mut response = Response::new(StreamBody::new(tokio_stream::iter(frames)));
            if misbehaviour == Misbehaviour::Status500 {
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            }
            let headers = response.headers_mut();
            match misbehaviour {
                Misbehaviour::Status500 => {
                    headers.insert("content-type", HeaderValue::from_static("application/grpc"));
                }
                Misbehaviour::HtmlContentType => {
                    headers.insert("content-type", HeaderValue::from_static("text/html"));
                }
                Misbehaviour::NoContentType => {}
                Misbehaviour::Gzip => {
                    headers.insert("content-type", HeaderValue::from_static("application/grpc"));
                    headers.insert("grpc-encoding", HeaderValue::from_static("gzip"));
                }
            }
            async move { Ok::<_, std::convert::Infallible>(response) }
        });
        tokio::spawn(
            hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
        );
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// A plain or TLS connection, as tonic's server takes it.
struct Connection(Box<dyn Stream>);

impl tonic::transport::server::Connected for Connection {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}
