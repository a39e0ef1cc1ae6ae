//! The `--metrics-listen` endpoint: `GET /metrics` and `GET /`, nothing else.
//!
//! It can change nothing and costs the probe little whatever a client does: one request per
//! connection (no keep-alive), request heads capped at [`MAX_HEAD_BYTES`] (hyper answers 431
//! above it) and never a body read, at most [`MAX_CONNECTIONS`] connections at once, the head
//! due within [`HEAD_TIMEOUT`] and the whole exchange within [`CONNECTION_TIMEOUT`]. The
//! exposition is encoded synchronously from the live series, so no lock is held across an
//! await and a slow scraper delays no check or route change.
//!
//! A new connection is always taken: when every slot is held, the oldest connection that has
//! not sent its request head yet is closed for it (else the oldest of all). Idle or slow
//! clients, however many and however often they reconnect, never keep a scraper out: a scraper
//! sends its head at once, and would lose its slot only to [`MAX_CONNECTIONS`] newer
//! connections arriving in that instant. A timeout alone (the head's) would leave every slot to
//! whoever reconnects fastest; refusing at accept, as before, left them to the first comers.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::observe::metrics::{Metrics, OPENMETRICS_TYPE, TEXT_TYPE};

/// Connections served at once; a new one closes the oldest idle one beyond this.
const MAX_CONNECTIONS: usize = 8;
/// The request line and headers must arrive within this.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection is closed after this, whatever it is doing.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head read (hyper's smallest buffer).
const MAX_HEAD_BYTES: usize = 8192;
/// Between attempts to bind the address when it is taken.
const BIND_RETRY: Duration = Duration::from_secs(5);

/// Serve `metrics` on `listen` forever. A failed bind is logged and retried (the probe never
/// exits over its metrics: ExaBGP would stop after a few respawns), unless it can never
/// succeed (a privileged port without root).
pub(crate) async fn serve(listen: SocketAddr, metrics: Arc<Metrics>, name: String) {
    let Some(listener) = bind(listen).await else {
        return;
    };
    tracing::info!(address = %listen, "serving metrics at http://{listen}/metrics");
    let connections = Arc::new(Mutex::new(Connections::default()));
    let index: Arc<str> = format!("exaprobe probe {name}: metrics at /metrics\n").into();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, say: back off a little rather than spin.
                tracing::debug!(%error, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (id, answering, mut closed) = lock(&connections).admit();
        let metrics = Arc::clone(&metrics);
        let index = Arc::clone(&index);
        let connections = Arc::clone(&connections);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                answering.store(true, Ordering::Relaxed);
                let response = respond(&request, &metrics, &index);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .keep_alive(false)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection) => {}
                // Closed for a newer connection: dropping it closes the socket.
                _ = &mut closed => {}
            }
            lock(&connections).remove(id);
        });
    }
}

fn lock(connections: &Mutex<Connections>) -> std::sync::MutexGuard<'_, Connections> {
    connections
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The connections being served, oldest first.
#[derive(Default)]
struct Connections {
    next_id: u64,
    open: VecDeque<Slot>,
}

/// One connection being served.
struct Slot {
    id: u64,
    /// Set once its request head is in: it is being answered.
    answering: Arc<AtomicBool>,
    /// Held, never sent on: dropping it closes the connection.
    _close: oneshot::Sender<()>,
}

impl Connections {
    /// Take a new connection, closing one to make room when every slot is held. Returns its
    /// id, the flag to set once its head is in, and what resolves when it must close.
    fn admit(&mut self) -> (u64, Arc<AtomicBool>, oneshot::Receiver<()>) {
        if self.open.len() >= MAX_CONNECTIONS {
            let victim = self
                .open
                .iter()
                .position(|slot| !slot.answering.load(Ordering::Relaxed))
                .unwrap_or(0);
            // Dropping the sender closes the connection.
            self.open.remove(victim);
        }
        let id = self.next_id;
        self.next_id += 1;
        let answering = Arc::new(AtomicBool::new(false));
        let (close, closed) = oneshot::channel();
        self.open.push_back(Slot {
            id,
            answering: Arc::clone(&answering),
            _close: close,
        });
        (id, answering, closed)
    }

    /// Forget a connection that ended (or was closed already).
    fn remove(&mut self, id: u64) {
        self.open.retain(|slot| slot.id != id);
    }
}

/// Bind `listen`, retrying every [`BIND_RETRY`] while it fails (logged once); `None` when it
/// never can: a privileged port refused to a probe that does not run as root (any more).
async fn bind(listen: SocketAddr) -> Option<TcpListener> {
    let mut logged = false;
    loop {
        match TcpListener::bind(listen).await {
            Ok(listener) => return Some(listener),
            Err(error) => {
                if let Some(why) = never_bindable(listen, &error) {
                    tracing::error!(address = %listen, "{why}");
                    return None;
                }
                if !logged {
                    tracing::error!(
                        address = %listen,
                        %error,
                        "--metrics-listen: cannot listen; retrying every {BIND_RETRY:?}"
                    );
                    logged = true;
                }
                tokio::time::sleep(BIND_RETRY).await;
            }
        }
    }
}

/// Why binding `listen` can never succeed, when `error` says so: a port below the kernel's
/// first unprivileged one, refused to a process that is not root. Root dropped with `--user`
/// does not come back, so retrying would only hide the cause.
fn never_bindable(listen: SocketAddr, error: &std::io::Error) -> Option<String> {
    let first_unprivileged =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .ok()
            .and_then(|text| text.trim().parse::<u16>().ok())
            .unwrap_or(1024);
    let uid = nix::unistd::Uid::effective();
    (error.kind() == std::io::ErrorKind::PermissionDenied
        && listen.port() < first_unprivileged
        && !uid.is_root())
    .then(|| {
        format!(
            "--metrics-listen {listen}: port {} is privileged (below {first_unprivileged}) and the \
             probe runs as uid {uid}, not root (--user drops root before the endpoint opens): \
             give a port of {first_unprivileged} or more; metrics are not served",
            listen.port()
        )
    })
}

/// The answer to one request.
fn respond<B>(request: &Request<B>, metrics: &Metrics, index: &str) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET is served\n".into(),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    match request.uri().path() {
        "/metrics" => {
            let openmetrics = request
                .headers()
                .get_all(ACCEPT)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .any(|value| value.contains("application/openmetrics-text"));
            let (body, content_type) = if openmetrics {
                (metrics.openmetrics(), OPENMETRICS_TYPE)
            } else {
                (metrics.text(), TEXT_TYPE)
            };
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        "/" => plain(StatusCode::OK, index.to_string()),
        _ => plain(StatusCode::NOT_FOUND, "not found: see /metrics\n".into()),
    }
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// What happens to the endpoint's connections.
    #[derive(Debug, Clone)]
    enum Event {
        /// A client connects.
        Connect,
        /// The `n`-th open connection (modulo) sends its request head.
        HeadIn(usize),
        /// The `n`-th open connection (modulo) ends.
        End(usize),
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            3 => Just(Event::Connect),
            1 => any::<usize>().prop_map(Event::HeadIn),
            1 => any::<usize>().prop_map(Event::End),
        ]
    }

    proptest! {
        /// After every event: at most MAX_CONNECTIONS open, oldest first; a connection is
        /// always taken; what is closed for it is the oldest idle one, or the oldest when all
        /// are answering; nothing else is closed.
        #[test]
        fn a_new_connection_closes_the_oldest_idle_one(
            events in proptest::collection::vec(event(), 1..200)
        ) {
            let mut connections = Connections::default();
            let mut waiting: BTreeMap<u64, (Arc<AtomicBool>, oneshot::Receiver<()>)> =
                BTreeMap::new();
            for event in events {
                let open: Vec<u64> = connections.open.iter().map(|slot| slot.id).collect();
                match event {
                    Event::Connect => {
                        let expected = (open.len() >= MAX_CONNECTIONS).then(|| {
                            open.iter()
                                .copied()
                                .find(|id| !waiting[id].0.load(Ordering::Relaxed))
                                .unwrap_or(open[0])
                        });
                        let (id, answering, closed) = connections.admit();
                        prop_assert!(open.iter().all(|&old| old < id));
                        if let Some(victim) = expected {
                            let (_, mut receiver) = waiting.remove(&victim).unwrap();
                            prop_assert!(receiver.try_recv().is_err_and(|e| e == oneshot::error::TryRecvError::Closed));
                        }
                        waiting.insert(id, (answering, closed));
                    }
                    Event::HeadIn(n) if !open.is_empty() => {
                        waiting[&open[n % open.len()]].0.store(true, Ordering::Relaxed);
                    }
                    Event::End(n) if !open.is_empty() => {
                        let id = open[n % open.len()];
                        connections.remove(id);
                        waiting.remove(&id);
                    }
                    Event::HeadIn(_) | Event::End(_) => {}
                }
                prop_assert!(connections.open.len() <= MAX_CONNECTIONS);
                let ids: Vec<u64> = connections.open.iter().map(|slot| slot.id).collect();
                prop_assert!(ids.is_sorted());
                prop_assert_eq!(ids, waiting.keys().copied().collect::<Vec<_>>());
                for (_, receiver) in waiting.values_mut() {
                    prop_assert_eq!(receiver.try_recv(), Err(oneshot::error::TryRecvError::Empty));
                }
            }
        }
    }

    #[test]
    fn a_privileged_port_refused_without_root_is_never_retried() {
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let privileged: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let unprivileged: SocketAddr = "127.0.0.1:9100".parse().unwrap();
        let taken = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        assert_eq!(never_bindable(unprivileged, &denied), None);
        assert_eq!(never_bindable(privileged, &taken), None);
        let why = never_bindable(privileged, &denied);
        if nix::unistd::Uid::effective().is_root() {
            assert_eq!(why, None);
        } else {
            let why = why.expect("a privileged port without root");
            assert!(
                why.starts_with("--metrics-listen 127.0.0.1:80: port 80 is privileged"),
                "{why}"
            );
            assert!(why.contains("--user"), "{why}");
        }
    }

    fn request(method: Method, path: &str, accept: Option<&str>) -> Request<()> {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(accept) = accept {
            builder = builder.header(ACCEPT, accept);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn answers_get_only_and_negotiates_the_format() {
        let metrics = Metrics::new("web", "http", 0.0);
        let index = "exaprobe probe web: metrics at /metrics\n";
        let post = respond(&request(Method::POST, "/metrics", None), &metrics, index);
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[ALLOW], "GET");
        for method in [Method::PUT, Method::DELETE, Method::HEAD, Method::OPTIONS] {
            let response = respond(&request(method.clone(), "/", None), &metrics, index);
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method}"
            );
        }
        let classic = respond(&request(Method::GET, "/metrics", None), &metrics, index);
        assert_eq!(classic.status(), StatusCode::OK);
        assert_eq!(classic.headers()[CONTENT_TYPE], TEXT_TYPE);
        let open = respond(
            &request(
                Method::GET,
                "/metrics",
                Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
            ),
            &metrics,
            index,
        );
        assert_eq!(open.headers()[CONTENT_TYPE], OPENMETRICS_TYPE);
        assert_eq!(
            respond(&request(Method::GET, "/", None), &metrics, index).status(),
            StatusCode::OK
        );
        assert_eq!(
            respond(&request(Method::GET, "/admin", None), &metrics, index).status(),
            StatusCode::NOT_FOUND
        );
    }
}
