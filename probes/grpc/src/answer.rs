//! Whether an HTTP answer is a gRPC answer the probe can read, before tonic decodes it.
//!
//! tonic reads a message and trailers whatever the HTTP status and content type, so a web
//! server or proxy answering 500 or `text/html` with a body that happens to decode as SERVING
//! would pass for healthy. A gRPC answer is HTTP 200 with `content-type: application/grpc`
//! (or `application/grpc+<codec>`); anything else is refused with the reason. An answer
//! compressed with an encoding the probe never offered is refused in its own words (tonic
//! calls it UNIMPLEMENTED, which reads as "no health service").

use std::error::Error;
use std::fmt;

use exaprobe_core::kit::reason::preview;
use tonic::body::Body;
use tonic::codegen::http::header::CONTENT_TYPE;
use tonic::codegen::http::{HeaderMap, Request, Response, StatusCode};
use tonic::codegen::{Context, Future, Pin, Poll, Service, StdError};
use tonic::transport::Channel;

/// The response header naming the compression of the messages (gRPC over HTTP/2).
const ENCODING_HEADER: &str = "grpc-encoding";

/// A channel whose answers are checked to be gRPC before tonic reads them.
#[derive(Clone)]
pub(crate) struct CheckedChannel(pub(crate) Channel);

/// Why an answer was refused: the server answered, but not in gRPC the probe reads.
#[derive(Debug)]
pub(crate) struct NotGrpc(pub(crate) String);

impl fmt::Display for NotGrpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for NotGrpc {}

impl Service<Request<Body>> for CheckedChannel {
    type Response = Response<Body>;
    type Error = StdError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, StdError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StdError>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let answer = self.0.call(request);
        Box::pin(async move {
            let response = answer.await?;
            match refusal(response.status(), response.headers()) {
                Some(reason) => Err(NotGrpc(reason).into()),
                None => Ok(response),
            }
        })
    }
}

/// Why an answer with `status` and `headers` is not one the probe reads, if it is not.
pub(crate) fn refusal(status: StatusCode, headers: &HeaderMap) -> Option<String> {
    if status != StatusCode::OK {
        return Some(format!(
            "HTTP status {status} instead of 200: not a gRPC answer"
        ));
    }
    let Some(content_type) = headers.get(CONTENT_TYPE) else {
        return Some("no content-type: not a gRPC answer (application/grpc)".into());
    };
    if !is_grpc(content_type.as_bytes()) {
        return Some(format!(
            "content-type {}: not a gRPC answer (application/grpc)",
            preview(content_type.as_bytes())
        ));
    }
    match headers.get(ENCODING_HEADER) {
        Some(encoding) if encoding.as_bytes() != b"identity" => Some(format!(
            "the answer is compressed ({ENCODING_HEADER}: {}), which the probe did not ask \
             for and does not read",
            preview(encoding.as_bytes())
        )),
        _ => None,
    }
}

/// `application/grpc`, alone, with a codec (`+proto`) or with parameters, in any case.
fn is_grpc(content_type: &[u8]) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    content_type.len() >= GRPC.len()
        && content_type[..GRPC.len()].eq_ignore_ascii_case(GRPC)
        && matches!(content_type.get(GRPC.len()), None | Some(b'+' | b';'))
}

#[cfg(test)]
mod tests {
    use tonic::codegen::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn grpc_answers_pass() {
        for content_type in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC+json",
            "application/grpc; charset=utf-8",
        ] {
            let map = headers(&[("content-type", content_type)]);
            assert_eq!(refusal(StatusCode::OK, &map), None, "{content_type}");
        }
        let identity = headers(&[
            ("content-type", "application/grpc"),
            ("grpc-encoding", "identity"),
        ]);
        assert_eq!(refusal(StatusCode::OK, &identity), None);
    }

    #[test]
    fn other_answers_are_refused_with_the_reason() {
        let grpc = headers(&[("content-type", "application/grpc")]);
        assert_eq!(
            refusal(StatusCode::INTERNAL_SERVER_ERROR, &grpc).as_deref(),
            Some("HTTP status 500 Internal Server Error instead of 200: not a gRPC answer")
        );
        assert_eq!(
            refusal(StatusCode::OK, &HeaderMap::new()).as_deref(),
            Some("no content-type: not a gRPC answer (application/grpc)")
        );
        for content_type in ["text/html", "application/grpcx", "application/gr"] {
            let map = headers(&[("content-type", content_type)]);
            assert_eq!(
                refusal(StatusCode::OK, &map),
                Some(format!(
                    "content-type {content_type}: not a gRPC answer (application/grpc)"
                ))
            );
        }
        let gzip = headers(&[
            ("content-type", "application/grpc"),
            ("grpc-encoding", "gzip"),
        ]);
        assert_eq!(
            refusal(StatusCode::OK, &gzip).as_deref(),
            Some(
                "the answer is compressed (grpc-encoding: gzip), which the probe did not ask for and does not read"
            )
        );
    }
}
