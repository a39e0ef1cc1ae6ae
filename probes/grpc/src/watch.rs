//! The gRPC watcher: `grpc.health.v1.Health/Watch` on the checked service, over a channel of
//! its own (same address, TLS and `--authority` as the check), so the route follows the
//! server's word at once instead of at the next `--interval`.
//!
//! - NOT_SERVING or SERVICE_UNKNOWN (also as the first message of a fresh stream, and an
//!   unknown service refused with NOT_FOUND) is authoritative: the server says so itself.
//! - Back to SERVING (or to UNKNOWN) after another status is a suspicion: the runner checks at
//!   once, and recovery goes through `--rise` checks. SERVING as the first message of a
//!   stream is news only when the last status heard was another.
//! - The stream ending or failing, or failing to open, is a suspicion once per outage (until a
//!   message comes again), then a reconnection after a doubling, bounded wait.
//! - UNIMPLEMENTED: the server has no Watch. The watcher says so once (info) and ends; the
//!   probe polls with Check only, and never asks for Watch again.

use std::time::Duration;

use exaprobe_core::kit::backoff::Backoff;
use exaprobe_core::kit::events::{EventKind, Events};
use tokio::time::timeout;
use tonic::Code;
use tonic::codec::Streaming;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use crate::answer::CheckedChannel;
use crate::connect::Dialer;
use crate::{MAX_ANSWER_BYTES, describe_error, verdict};

/// The serving status the protocol sends for a service the server does not know.
const SERVICE_UNKNOWN: i32 = ServingStatus::ServiceUnknown as i32;

/// What the watcher needs, cloned from the probe (it runs as a task of its own).
pub(crate) struct Watch {
    pub(crate) dialer: Dialer,
    pub(crate) service: String,
    /// Names the service and the address in every reason.
    pub(crate) subject: String,
    /// `--timeout`: bounds opening a stream (connect and the answer's headers).
    pub(crate) timeout: Duration,
}

/// A stream that could not be had.
enum Refusal {
    /// The server has no Watch (gRPC UNIMPLEMENTED).
    Unimplemented,
    /// The server answered with another gRPC status.
    Status(Code, String),
    /// No answer: connection, TLS, timeout, not gRPC.
    Failed(String),
}

impl Watch {
    /// Watch until the runner drops the task, or until the server says it has no Watch.
    pub(crate) async fn run(self, events: Events) {
        let mut backoff = Backoff::default();
        let mut heard = Heard::default();
        loop {
            let report = match self.open().await {
                Ok((_channel, mut stream)) => loop {
                    match stream.message().await {
                        Ok(Some(answer)) => {
                            backoff.reset();
                            if let Some((kind, reason)) = heard.status(answer.status, &self.subject)
                            {
                                events.report(kind, reason);
                            }
                        }
                        Ok(None) => {
                            break heard.lost(format!(
                                "{}: the server ended the Health/Watch stream",
                                self.subject
                            ));
                        }
                        Err(status) => break heard.lost(lost_reason(&self.subject, &status)),
                    }
                },
                Err(Refusal::Unimplemented) => {
                    tracing::info!(
                        subject = %self.subject,
                        "the server does not implement Health/Watch (UNIMPLEMENTED): checking at --interval only"
                    );
                    return;
                }
                Err(Refusal::Status(code, message)) => heard.refused(code, &message, &self.subject),
                Err(Refusal::Failed(reason)) => {
                    heard.lost(format!("{}: Health/Watch: {reason}", self.subject))
                }
            };
            if let Some((kind, reason)) = report {
                events.report(kind, reason);
            }
            let wait = backoff.next_wait();
            tracing::debug!(?wait, subject = %self.subject, "Health/Watch: reconnecting");
            tokio::time::sleep(wait).await;
        }
    }

    /// A new channel and a Watch stream on it (the channel is kept beside the stream, so the
    /// connection lives as long as the stream).
    async fn open(&self) -> Result<(Channel, Streaming<HealthCheckResponse>), Refusal> {
        let limit = self.timeout;
        let channel = match timeout(limit, self.dialer.channel()).await {
            Err(_) => {
                return Err(Refusal::Failed(format!(
                    "timeout connecting after {limit:?}"
                )));
            }
            Ok(Err(error)) => return Err(Refusal::Failed(describe_error(&error))),
            Ok(Ok(channel)) => channel,
        };
        let mut client = HealthClient::new(CheckedChannel(channel.clone()))
            .max_decoding_message_size(MAX_ANSWER_BYTES);
        let request = HealthCheckRequest {
            service: self.service.clone(),
        };
        match timeout(limit, client.watch(request)).await {
            Err(_) => Err(Refusal::Failed(format!("no answer within {limit:?}"))),
            Ok(Ok(stream)) => Ok((channel, stream.into_inner())),
            // A status with no source came from the server.
            Ok(Err(status)) if std::error::Error::source(&status).is_none() => {
                match status.code() {
                    Code::Unimplemented => Err(Refusal::Unimplemented),
                    code => Err(Refusal::Status(code, status.message().to_string())),
                }
            }
            Ok(Err(status)) => Err(Refusal::Failed(describe_error(&status))),
        }
    }
}

/// Why a stream broke, in one line naming the service.
fn lost_reason(subject: &str, status: &tonic::Status) -> String {
    if std::error::Error::source(status).is_some() {
        return format!(
            "{subject}: Health/Watch stream lost: {}",
            describe_error(status)
        );
    }
    let said = verdict::of_status(status.code(), status.message(), subject);
    format!(
        "{} (Health/Watch stream)",
        said.reason().unwrap_or_default()
    )
}

/// What the watcher has heard so far, and what each new thing heard means. Pure.
#[derive(Debug, Default)]
struct Heard {
    /// The last serving status heard (on a stream, or NOT_FOUND as SERVICE_UNKNOWN).
    status: Option<i32>,
    /// A loss was reported and no message came since: further failures of the same outage
    /// are not news.
    lost: bool,
}

impl Heard {
    /// A message on the stream said `status`.
    fn status(&mut self, status: i32, subject: &str) -> Option<(EventKind, String)> {
        self.lost = false;
        let previous = self.status.replace(status);
        let outcome = verdict::of_response(status, subject);
        let reason = format!("{} (Health/Watch)", outcome.reason().unwrap_or_default());
        if says_not_serving(status) {
            return Some((EventKind::Authoritative, reason));
        }
        if previous.is_none_or(|previous| previous == status) {
            return None;
        }
        if outcome.reason().is_none() {
            return Some((
                EventKind::Suspicion,
                format!("{subject}: SERVING again (Health/Watch)"),
            ));
        }
        Some((EventKind::Suspicion, reason))
    }

    /// The server refused the stream with a gRPC status (`code`, `message`).
    fn refused(&mut self, code: Code, message: &str, subject: &str) -> Option<(EventKind, String)> {
        let reason = verdict::of_status(code, message, subject)
            .reason()
            .unwrap_or_default()
            .to_string();
        if code == Code::NotFound {
            // The server does not know the service: its own word, as SERVICE_UNKNOWN is.
            self.lost = false;
            if self.status.replace(SERVICE_UNKNOWN) == Some(SERVICE_UNKNOWN) {
                return None;
            }
            return Some((EventKind::Authoritative, format!("{reason} (Health/Watch)")));
        }
        self.lost(format!("{reason} (Health/Watch)"))
    }

    /// The stream ended, failed, or could not be opened.
    fn lost(&mut self, reason: String) -> Option<(EventKind, String)> {
        if std::mem::replace(&mut self.lost, true) {
            return None;
        }
        Some((EventKind::Suspicion, reason))
    }
}

/// NOT_SERVING and SERVICE_UNKNOWN: the server's own word that the service must not get
/// traffic (an undefined value is not: it is a suspicion).
fn says_not_serving(status: i32) -> bool {
    matches!(
        ServingStatus::try_from(status),
        Ok(ServingStatus::NotServing | ServingStatus::ServiceUnknown)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBJECT: &str = "service \"a\" on 127.0.0.1:1";
    const SERVING: i32 = 1;
    const NOT_SERVING: i32 = 2;

    fn authoritative(reason: &str) -> Option<(EventKind, String)> {
        Some((EventKind::Authoritative, reason.to_string()))
    }

    fn suspicion(reason: &str) -> Option<(EventKind, String)> {
        Some((EventKind::Suspicion, reason.to_string()))
    }

    #[test]
    fn the_first_serving_is_no_news_a_not_serving_always_is() {
        let mut heard = Heard::default();
        assert_eq!(heard.status(SERVING, SUBJECT), None);
        assert_eq!(heard.status(SERVING, SUBJECT), None);
        let down = "service \"a\" on 127.0.0.1:1: NOT_SERVING (Health/Watch)";
        assert_eq!(heard.status(NOT_SERVING, SUBJECT), authoritative(down));
        // The first message of a fresh stream says it again: still the server's word.
        assert_eq!(heard.status(NOT_SERVING, SUBJECT), authoritative(down));
        assert_eq!(
            heard.status(SERVING, SUBJECT),
            suspicion("service \"a\" on 127.0.0.1:1: SERVING again (Health/Watch)")
        );
        assert_eq!(
            Heard::default().status(NOT_SERVING, SUBJECT),
            authoritative(down)
        );
    }

    #[test]
    fn service_unknown_is_authoritative_unknown_and_odd_values_are_suspicions() {
        let mut heard = Heard::default();
        assert_eq!(
            heard.status(SERVICE_UNKNOWN, SUBJECT),
            authoritative(
                "service \"a\" on 127.0.0.1:1: SERVICE_UNKNOWN (the server does not know this service) (Health/Watch)"
            )
        );
        assert_eq!(
            heard.status(SERVING, SUBJECT).unwrap().0,
            EventKind::Suspicion
        );
        assert_eq!(
            heard.status(0, SUBJECT),
            suspicion(
                "service \"a\" on 127.0.0.1:1: UNKNOWN (the server does not know its own health yet) (Health/Watch)"
            )
        );
        assert_eq!(
            heard.status(9, SUBJECT),
            suspicion("service \"a\" on 127.0.0.1:1: unexpected serving status 9 (Health/Watch)")
        );
        // UNKNOWN as the very first message is what the check will say: no news.
        assert_eq!(Heard::default().status(0, SUBJECT), None);
    }

    #[test]
    fn a_loss_is_news_once_per_outage() {
        let mut heard = Heard::default();
        heard.status(SERVING, SUBJECT);
        assert_eq!(heard.lost("ended".into()), suspicion("ended"));
        assert_eq!(heard.lost("connection refused".into()), None);
        assert_eq!(heard.refused(Code::Unavailable, "", SUBJECT), None);
        // Back: the first message is SERVING, as before the loss: no news.
        assert_eq!(heard.status(SERVING, SUBJECT), None);
        assert_eq!(heard.lost("reset".into()), suspicion("reset"));
    }

    #[test]
    fn an_unknown_service_refused_is_authoritative_once() {
        let mut heard = Heard::default();
        let unknown = heard.refused(Code::NotFound, "service not registered", SUBJECT);
        assert_eq!(
            unknown,
            authoritative(
                "service \"a\" on 127.0.0.1:1: unknown service (gRPC NOT_FOUND: service not registered) (Health/Watch)"
            )
        );
        assert_eq!(
            heard.refused(Code::NotFound, "service not registered", SUBJECT),
            None
        );
        assert_eq!(
            heard.status(SERVING, SUBJECT).unwrap().0,
            EventKind::Suspicion
        );
        assert_eq!(
            heard.refused(Code::PermissionDenied, "no", SUBJECT),
            suspicion(
                "service \"a\" on 127.0.0.1:1: gRPC error PERMISSION_DENIED: no (Health/Watch)"
            )
        );
    }
}
