//! `--keep-open`: one connection to `--address` held between checks, so a server that goes away
//! is noticed when it closes the connection, not at the next `--interval`.
//!
//! The connection is opened as the check opens its own (TLS handshake with `--tls`) and nothing
//! is ever sent on it (`--send` is the check's alone); what the server sends (a banner) is read
//! and dropped. The server closing it (EOF) or resetting it is a suspicion: the runner checks at
//! once. Then the watcher reconnects after a doubling, bounded wait; the outage (the loss and
//! every failed reconnection until one succeeds) is one suspicion, not one per attempt. The
//! wait goes back to its first step only once a connection stayed open for the longest wait,
//! so a server that accepts and closes at once costs a suspicion every few seconds, not a loop.

use std::time::Duration;

use exaprobe_core::kit::backoff::Backoff;
use exaprobe_core::kit::events::Events;
use exaprobe_core::kit::reason::io_error;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use crate::connect::{Stream, Target};

/// Hold a connection to `target` until the runner drops the task; `limit` (`--timeout`)
/// bounds each attempt to open it.
pub(crate) async fn run(target: Target, limit: Duration, events: Events) {
    let mut backoff = Backoff::default();
    let mut outage = Outage::default();
    let subject = format!("kept connection to {}", target.address);
    loop {
        match target.open(Instant::now() + limit).await {
            Ok(stream) => {
                outage.over();
                let opened = Instant::now();
                let end = hold(stream).await;
                if opened.elapsed() >= backoff.max() {
                    backoff.reset();
                }
                if let Some(reason) = outage.begins(format!("{subject} {end}")) {
                    events.suspicion(reason);
                }
            }
            Err(reason) => {
                tracing::debug!(reason, "{subject}: cannot open it");
                if let Some(reason) = outage.begins(format!("{subject}: {reason}")) {
                    events.suspicion(reason);
                }
            }
        }
        tokio::time::sleep(backoff.next_wait()).await;
    }
}

/// Read and drop what the server sends until it closes the connection; how it ended.
async fn hold(mut stream: Box<dyn Stream>) -> String {
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) => return "closed by the server".into(),
            Ok(_) => {}
            Err(error) => return ended(&error),
        }
    }
}

/// How a read error ended the connection, after "kept connection to ADDRESS".
fn ended(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::ConnectionReset => "reset by the server".into(),
        // TLS without close_notify: the server closed the TCP connection.
        std::io::ErrorKind::UnexpectedEof => "closed by the server".into(),
        _ => format!("lost: {}", io_error(error)),
    }
}

/// Whether the current outage was reported: one suspicion per outage.
#[derive(Debug, Default)]
struct Outage {
    reported: bool,
}

impl Outage {
    /// The connection is lost or could not be opened: the reason to report, if this starts an
    /// outage.
    fn begins(&mut self, reason: String) -> Option<String> {
        (!std::mem::replace(&mut self.reported, true)).then_some(reason)
    }

    /// A connection is open again: the next loss is news.
    fn over(&mut self) {
        self.reported = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_suspicion_per_outage() {
        let mut outage = Outage::default();
        assert_eq!(outage.begins("closed".into()).as_deref(), Some("closed"));
        assert_eq!(outage.begins("refused".into()), None);
        assert_eq!(outage.begins("refused".into()), None);
        outage.over();
        assert_eq!(outage.begins("reset".into()).as_deref(), Some("reset"));
    }

    #[test]
    fn endings_in_words() {
        use std::io::{Error, ErrorKind};
        assert_eq!(
            ended(&Error::from(ErrorKind::ConnectionReset)),
            "reset by the server"
        );
        assert_eq!(
            ended(&Error::from(ErrorKind::UnexpectedEof)),
            "closed by the server"
        );
        assert_eq!(
            ended(&Error::from(ErrorKind::ConnectionAborted)),
            "lost: connection aborted"
        );
    }
}
