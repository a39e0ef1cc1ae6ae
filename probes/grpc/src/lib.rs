//! The gRPC check: the standard health protocol (`grpc.health.v1.Health/Check`) asked about one
//! service, or the server's overall health. SERVING is healthy, UNKNOWN degraded; NOT_SERVING,
//! SERVICE_UNKNOWN, an unknown service (NOT_FOUND), any other gRPC error, and no answer are
//! unhealthy, and so is an answer that is not gRPC (another HTTP status or content type, a
//! compression the probe did not ask for: see `answer`).
//!
//! The HTTP/2 connection (a tonic channel) is kept between checks, as gRPC clients do. A request
//! that fails on a kept connection before any answer is sent once more on a fresh one within the
//! same deadline (the server may have closed it); the failure of a fresh connection is the
//! verdict, and a connection that failed is never kept. The channel is held by the check while
//! it runs, so a check dropped at the runner's timeout drops it too.
//!
//! Between checks, the watcher (`watch`) follows `Health/Watch` on a channel of its own: the
//! server's NOT_SERVING takes the route down at once; the checks go on at `--interval` as the
//! liveness check of the server and of the stream.

mod answer;
mod connect;
mod options;
mod verdict;
mod watch;

use std::time::Duration;

use anyhow::{Context, Result};
use exaprobe_core::kit::events::Events;
use exaprobe_core::kit::reason::{caused_by, causes};
use exaprobe_core::{Outcome, Probe, Watcher};
use rustls::pki_types::ServerName;
use tokio::time::{Instant, timeout_at};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

pub use options::GrpcOptions;

use answer::{CheckedChannel, NotGrpc};
use connect::{ConnectFailure, Connector, Dialer};

/// The largest answer read: a HealthCheckResponse is a few bytes.
const MAX_ANSWER_BYTES: usize = 4096;

/// Asks a gRPC server's health service about one service, over a kept connection.
pub struct GrpcProbe {
    dialer: Dialer,
    service: String,
    /// Names the service and the address in every reason.
    subject: String,
    target: String,
    channel: Option<Channel>,
    /// `--timeout`, for reasons and for reconnects in tonic's background task.
    timeout: Duration,
}

/// Why a check got no answer from the health service.
enum Failure {
    /// The connection failed (refused, reset, TLS): worth one retry on a fresh connection
    /// when it was a kept one.
    Transport(String),
    /// The deadline passed.
    Timeout(String),
}

impl GrpcProbe {
    /// Build the probe; `timeout` (`--timeout`) bounds the reconnects tonic makes in the
    /// background, where no check's deadline reaches.
    pub fn new(options: &GrpcOptions, timeout: Duration) -> Result<Self> {
        if !options.tls
            && let Some(option) = options.tls_args.first_given()
        {
            anyhow::bail!("{option} needs --tls (the gRPC check speaks TLS only when asked)");
        }
        let address = &options.address;
        let service = options.service.clone().unwrap_or_default();
        let tls = if options.tls {
            Some(tls_config(options)?)
        } else {
            None
        };
        let scheme = if options.tls { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
            .with_context(|| format!("--address {address} does not make a valid URI"))?
            .user_agent(concat!("exaprobe-grpc/", env!("CARGO_PKG_VERSION")))
            .context("user agent")?;
        if let Some(authority) = &options.authority {
            let origin = format!("{scheme}://{authority}")
                .parse()
                .with_context(|| format!("--authority {authority} does not make a valid URI"))?;
            endpoint = endpoint.origin(origin);
        }
        let subject = if service.is_empty() {
            format!("overall health of {address}")
        } else {
            format!("service \"{service}\" on {address}")
        };
        let target = format!(
            "{}://{address} {}",
            if options.tls { "grpc+tls" } else { "grpc" },
            if service.is_empty() {
                "(overall health)".to_string()
            } else {
                format!("service \"{service}\"")
            }
        );
        Ok(GrpcProbe {
            dialer: Dialer {
                endpoint,
                connector: Connector::new(address.clone(), tls, timeout),
            },
            service,
            subject,
            target,
            channel: None,
            timeout,
        })
    }

    /// Ask once, on `channel` or on a new connection.
    async fn ask(
        &self,
        channel: Option<Channel>,
        deadline: Instant,
    ) -> Result<(Channel, Outcome), Failure> {
        let channel = match channel {
            Some(channel) => channel,
            None => self.open(deadline).await?,
        };
        let mut client = HealthClient::new(CheckedChannel(channel.clone()))
            .max_decoding_message_size(MAX_ANSWER_BYTES);
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: self.service.clone(),
        });
        // Sent as grpc-timeout, so the server gives up when we do.
        request.set_timeout(deadline.saturating_duration_since(Instant::now()));
        match timeout_at(deadline, client.check(request)).await {
            Err(_) => Err(Failure::Timeout(format!(
                "{}: no answer within --timeout {:?}",
                self.subject, self.timeout
            ))),
            Ok(Ok(answer)) => Ok((
                channel,
                verdict::of_response(answer.into_inner().status, &self.subject),
            )),
            // tonic's own timer for the grpc-timeout sent: our deadline, seen first by tonic.
            Ok(Err(status)) if caused_by::<tonic::TimeoutExpired>(&status) => {
                Err(Failure::Timeout(format!(
                    "{}: no answer within --timeout {:?}",
                    self.subject, self.timeout
                )))
            }
            // The server answered, but not in gRPC: the connection works, the answer does not.
            Ok(Err(status)) if caused_by::<NotGrpc>(&status) => Ok((
                channel,
                Outcome::unhealthy(format!("{}: {}", self.subject, describe_error(&status))),
            )),
            // A status with no source came from the server: the connection works.
            Ok(Err(status)) if std::error::Error::source(&status).is_none() => Ok((
                channel,
                verdict::of_status(status.code(), status.message(), &self.subject),
            )),
            Ok(Err(status)) => Err(Failure::Transport(format!(
                "{}: {}",
                self.subject,
                describe_error(&status)
            ))),
        }
    }

    /// A new channel, connected now (within the check's deadline, so dropping the check
    /// cancels the connection attempt).
    async fn open(&self, deadline: Instant) -> Result<Channel, Failure> {
        match timeout_at(deadline, self.dialer.channel()).await {
            Err(_) => Err(Failure::Timeout(format!(
                "{}: timeout connecting within --timeout {:?}",
                self.subject, self.timeout
            ))),
            Ok(Err(error)) => Err(Failure::Transport(format!(
                "{}: {}",
                self.subject,
                describe_error(&error)
            ))),
            Ok(Ok(channel)) => Ok(channel),
        }
    }
}

impl Probe for GrpcProbe {
    fn describe(&self) -> String {
        exaprobe_core::redact::for_display(&self.target)
    }

    fn watch(&self, events: Events) -> Option<Watcher> {
        let watch = watch::Watch {
            dialer: self.dialer.clone(),
            service: self.service.clone(),
            subject: self.subject.clone(),
            timeout: self.timeout,
        };
        Some(Box::pin(watch.run(events)))
    }

    async fn check(&mut self, deadline: Instant) -> Outcome {
        // Taken out, not borrowed: if the runner drops this check, the channel goes with it.
        let kept = self.channel.take();
        let reused = kept.is_some();
        let answer = match self.ask(kept, deadline).await {
            Err(Failure::Transport(reason)) if reused && Instant::now() < deadline => {
                tracing::debug!(
                    reason,
                    "the kept connection failed; retrying once on a fresh connection"
                );
                self.ask(None, deadline).await
            }
            other => other,
        };
        match answer {
            Ok((channel, outcome)) => {
                self.channel = Some(channel);
                outcome
            }
            Err(Failure::Transport(reason) | Failure::Timeout(reason)) => {
                Outcome::unhealthy(reason)
            }
        }
    }
}

impl std::fmt::Debug for GrpcProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcProbe")
            .field("target", &self.describe())
            .finish_non_exhaustive()
    }
}

/// The rustls configuration and the name to verify, from the TLS options.
fn tls_config(options: &GrpcOptions) -> Result<(rustls::ClientConfig, ServerName<'static>)> {
    let tls = &options.tls_args;
    tls.warn_if_insecure(&options.address.to_string());
    let config = exaprobe_tls::client_config(tls.verification(), &tls.files(true))?;
    let name = match (&tls.tls_server_name, &options.authority) {
        (Some(name), _) => name.clone(),
        (None, Some(authority)) => options::authority_host(authority).to_string(),
        (None, None) => options.address.host_string(),
    };
    let server_name = ServerName::try_from(name.clone()).with_context(|| {
        format!("'{name}' is not a valid TLS server name (give --tls-server-name)")
    })?;
    Ok((config, server_name))
}

/// One line for a failure of the connection: our own connector's words when it failed,
/// else the innermost cause tonic or hyper gave.
fn describe_error(error: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = error;
    for cause in causes(error) {
        if let Some(failure) = cause.downcast_ref::<ConnectFailure>() {
            return failure.0.clone();
        }
        if let Some(refused) = cause.downcast_ref::<NotGrpc>() {
            return refused.0.clone();
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return exaprobe_core::kit::reason::io_error(io);
        }
        innermost = cause;
    }
    exaprobe_core::redact::escape_controls(&innermost.to_string())
}
