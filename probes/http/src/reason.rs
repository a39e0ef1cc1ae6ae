//! Failure reasons that say which phase failed: DNS, connect, TLS (and why), timeout, ...
//!
//! reqwest wraps hyper, which wraps io and rustls errors; the useful part is deep in the source
//! chain, so the chain is walked and the most specific cause named.

use std::error::Error as _;

use exaprobe_core::kit::reason::{error_chain, io_kind};

/// One line describing a request error. `phase` names what was being waited for.
pub(crate) fn describe(error: &reqwest::Error, phase: &str) -> String {
    let chain = error_chain(error);
    if error.is_timeout() {
        let phase = if error.is_connect() {
            "connecting"
        } else {
            phase
        };
        return format!("timeout {phase}");
    }
    if let Some(why) = exaprobe_tls::describe_chain(error) {
        return format!("TLS handshake failed: {why}");
    }
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && let Some(what) = io_kind(io.kind())
        {
            let stage = if error.is_connect() { "connect" } else { phase };
            return format!("{stage}: {what}");
        }
        source = cause.source();
    }
    // rustls errors wrapped in io errors hide from the walk above (io::Error::source skips its
    // payload): recognise their messages.
    const TLS_MARKERS: [&str; 5] = [
        "invalid peer certificate",
        "corrupt message",
        "received fatal alert",
        "handshake",
        "certificate",
    ];
    if TLS_MARKERS.iter().any(|marker| chain.contains(marker)) {
        let last = chain.rsplit(": ").next().unwrap_or(&chain);
        return format!("TLS handshake failed: {last}");
    }
    if chain.contains("dns error") || chain.contains("failed to lookup address") {
        return format!("DNS: {chain}");
    }
    if error.is_connect() {
        return format!("connect: {chain}");
    }
    chain
}

/// Did the request fail on its connection before any response arrived (a reset, a close, a
/// broken pipe), rather than by a timeout, a refused connection or a bad request? Only such a
/// failure is worth one retry on a fresh connection.
pub(crate) fn before_response(error: &reqwest::Error) -> bool {
    error.is_request() && !error.is_timeout() && !error.is_connect() && !error.is_builder()
}
