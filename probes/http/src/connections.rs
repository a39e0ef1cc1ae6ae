//! Counting new connections, to tell a reused connection from a fresh one.
//!
//! reqwest does not say whether a request went over a pooled connection. A tower layer around
//! its connector counts every connection opened: when a request fails and the count did not
//! move, the request was sent on a reused connection, and one retry on a fresh connection is
//! safe and fair (the server may simply have closed an idle connection).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

/// Shared counter of connections opened; a `tower` layer for `ClientBuilder::connector_layer`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectCounter(Arc<AtomicU64>);

impl ConnectCounter {
    /// Connections opened so far.
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl<S> tower_layer::Layer<S> for ConnectCounter {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            count: self.0.clone(),
        }
    }
}

/// The connector, counting each connection it is asked to open.
#[derive(Debug, Clone)]
pub(crate) struct Counted<S> {
    inner: S,
    count: Arc<AtomicU64>,
}

impl<S, R> tower_service::Service<R> for Counted<S>
where
    S: tower_service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> S::Future {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.inner.call(request)
    }
}
