//! The watcher (issue 27): a session of its own, kept open between checks, whose closing by
//! the server is news. A fast or immediate shutdown ends it with `57P01 admin_shutdown`, a
//! crash with `57P02`, a restart or a reset with EOF: one suspicion each (the check runs at
//! once). While the server is down, refused reconnections are no new event; the session comes
//! back when the server does. With `--listen-channel`, the session LISTENs and each NOTIFY is a
//! suspicion too. An `idle_session_timeout` ending the session (`57P05`) is no event: the
//! watcher reconnects quietly.

use std::future::poll_fn;
use std::time::Duration;

use exaprobe_core::kit::backoff::Backoff;
use exaprobe_core::kit::events::Events;
use tokio::time::{sleep, timeout};
use tokio_postgres::{AsyncMessage, Client, Connection, Socket};

use crate::errors::{describe_error, is_connection_lost};
use crate::tls::{MakeRustls, RustlsStream};

/// How long a login may take (besides the DSN's own connect_timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest NOTIFY payload shown in a reason.
const MAX_PAYLOAD: usize = 120;

/// What the watcher needs, copied out of the probe.
pub(crate) struct Watch {
    /// The check's connection settings.
    pub(crate) config: tokio_postgres::Config,
    /// The check's TLS.
    pub(crate) tls: MakeRustls,
    /// `host:port` for reasons.
    pub(crate) endpoint: String,
    /// `--listen-channel`.
    pub(crate) channel: Option<String>,
}

/// How a session ended.
enum Ended {
    /// The server closed it (or it broke): a suspicion with this reason.
    Closed(String),
    /// It ended in a way that says nothing about the server (idle_session_timeout).
    Quietly(String),
}

impl Watch {
    /// Run until dropped.
    pub(crate) async fn run(self, events: Events) {
        let mut backoff = Backoff::default();
        loop {
            match timeout(CONNECT_TIMEOUT, self.config.connect(self.tls.clone())).await {
                Ok(Ok((client, connection))) => {
                    backoff.reset();
                    tracing::debug!(endpoint = %self.endpoint, "watching a postgres session");
                    match self.session(client, connection, &events).await {
                        Ended::Closed(why) => {
                            events.suspicion(format!("postgres {}: {why}", self.endpoint));
                        }
                        Ended::Quietly(why) => {
                            tracing::debug!(endpoint = %self.endpoint, reason = %why, "watch session ended; reconnecting");
                        }
                    }
                }
                Ok(Err(error)) => {
                    tracing::debug!(endpoint = %self.endpoint, error = %describe_error(&error), "watch session refused")
                }
                Err(_) => {
                    tracing::debug!(endpoint = %self.endpoint, "timeout opening a watch session")
                }
            }
            sleep(backoff.next_wait()).await;
        }
    }

    /// Drive one session (LISTEN first, with a channel) until it ends.
    async fn session(
        &self,
        client: Client,
        mut connection: Connection<Socket, RustlsStream>,
        events: &Events,
    ) -> Ended {
        let listen = async {
            match &self.channel {
                Some(channel) => client.batch_execute(&format!("LISTEN \"{channel}\"")).await,
                None => Ok(()),
            }
        };
        tokio::pin!(listen);
        let mut listening = self.channel.is_none();
        loop {
            tokio::select! {
                message = poll_fn(|cx| connection.poll_message(cx)) => match message {
                    Some(Ok(AsyncMessage::Notification(notification))) => {
                        events.suspicion(format!(
                            "postgres {}: NOTIFY on {}: {}",
                            self.endpoint,
                            notification.channel(),
                            payload(notification.payload())
                        ));
                    }
                    Some(Ok(_notice)) => {}
                    Some(Err(error)) => return ended(&error),
                    None => return Ended::Closed("session closed by the server".into()),
                },
                result = &mut listen, if !listening => {
                    listening = true;
                    match result {
                        Ok(()) => tracing::debug!(endpoint = %self.endpoint, channel = ?self.channel, "listening"),
                        // The connection's own poll reports the loss.
                        Err(error) if is_connection_lost(&error) => {}
                        Err(error) => tracing::warn!(
                            endpoint = %self.endpoint,
                            channel = ?self.channel,
                            error = %describe_error(&error),
                            "cannot LISTEN; watching the session only"
                        ),
                    }
                }
            }
        }
    }
}

/// A session's end as a reason: `57P05` (idle_session_timeout) is quiet, the rest a suspicion.
fn ended(error: &tokio_postgres::Error) -> Ended {
    let why = if error.as_db_error().is_some() {
        describe_error(error)
    } else {
        format!("session closed: {}", describe_error(error))
    };
    match error.code().map(|code| code.code()) {
        Some("57P05") => Ended::Quietly(why),
        _ => Ended::Closed(why),
    }
}

/// A NOTIFY payload for a reason: one line, at most [`MAX_PAYLOAD`] characters.
fn payload(text: &str) -> String {
    if text.is_empty() {
        return "(no payload)".into();
    }
    exaprobe_core::kit::reason::one_line(text, MAX_PAYLOAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_one_short_line() {
        assert_eq!(payload(""), "(no payload)");
        assert_eq!(payload("role=replica\nnode=b"), "role=replica node=b");
        assert_eq!(payload(&"x".repeat(1000)).len(), MAX_PAYLOAD);
    }
}
