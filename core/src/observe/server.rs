//! The `--metrics-listen` endpoint: `GET /metrics` and `GET /`, nothing else.
//!
//! It can change nothing and costs the probe little whatever a client does: one request per
//! connection (no keep-alive), request heads capped at [`MAX_HEAD_BYTES`] (hyper answers 431
//! above it) and never a body read, at most [`MAX_CONNECTIONS`] connections at once (more are
//! closed at accept), the head due within [`HEAD_TIMEOUT`] and the whole exchange within
//! [`CONNECTION_TIMEOUT`]. The exposition is encoded synchronously from the live series, so
//! no lock is held across an await and a slow scraper delays no check or route change.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::observe::metrics::{Metrics, OPENMETRICS_TYPE, TEXT_TYPE};

/// Connections served at once; more are closed as soon as they are accepted.
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
/// exits over its metrics: ExaBGP would stop after a few respawns).
pub(crate) async fn serve(listen: SocketAddr, metrics: Arc<Metrics>, name: String) {
    let listener = bind(listen).await;
    tracing::info!(address = %listen, "serving metrics at http://{listen}/metrics");
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
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
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let metrics = Arc::clone(&metrics);
        let index = Arc::clone(&index);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = respond(&request, &metrics, &index);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .keep_alive(false)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
            drop(slot);
        });
    }
}

/// Bind `listen`, retrying every [`BIND_RETRY`] while it fails (logged once).
async fn bind(listen: SocketAddr) -> TcpListener {
    let mut logged = false;
    loop {
        match TcpListener::bind(listen).await {
            Ok(listener) => return listener,
            Err(error) => {
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
    use super::*;

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
