//! `--exabgp-api auto`: ask ExaBGP which dialect it speaks before the first route command.
//!
//! Every ExaBGP version answers `system version` with one line before its ACK (4.2 and 5.0 in
//! text, 6.0 in JSON; see `crate::dialect`). Nothing can be announced before the dialect is
//! known, so this runs before the checker and the deliverer start, racing the signals and the
//! end of the pipe, and falls back to the 4.2/5.0 dialect when no answer comes in time.

use std::process::ExitCode;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout_at};

use crate::dialect::{DetectedExabgp, VERSION_COMMAND};
use crate::exabgp::{AckMode, PipeEvent};
use crate::output::CommandSink;
use crate::runner::signals::Signal;

/// How long to wait for the answer when ACKs are off (with ACKs on: `--ack-timeout`).
const NO_ACK_WAIT: Duration = Duration::from_secs(5);

/// What the query found out.
pub(super) enum Detection {
    /// ExaBGP answered; `owed` ACKs of the query are still to come.
    Found {
        /// Version and dialect.
        found: DetectedExabgp,
        /// ACKs to absorb before the first command's.
        owed: u64,
    },
    /// No usable answer: speak the 4.2/5.0 dialect.
    Fallback {
        /// Why, for the log.
        why: &'static str,
        /// ACKs to absorb before the first command's.
        owed: u64,
    },
    /// A signal or the end of the pipe came first: exit with this code.
    Exit(ExitCode),
}

/// Write `system version` and read the answer.
pub(super) async fn detect(
    sink: &mut CommandSink,
    events: &mut mpsc::UnboundedReceiver<PipeEvent>,
    signals: &mut mpsc::UnboundedReceiver<Signal>,
    ack: AckMode,
) -> Detection {
    let (acks, wait) = match ack {
        AckMode::Wait(timeout) => (true, timeout),
        AckMode::Off | AckMode::DryRun => (false, NO_ACK_WAIT),
    };
    let deadline = Instant::now() + wait;
    let query = format!("{VERSION_COMMAND}\n");
    let write = timeout_at(deadline, sink.write_chunk(query.as_bytes()));
    tokio::pin!(write);
    loop {
        tokio::select! {
            biased;
            Some(signal) = signals.recv() => {
                if terminates(signal) {
                    return stopping(signal);
                }
            }
            written = &mut write => match written {
                Ok(Ok(())) => break,
                Ok(Err(_)) => return Detection::Exit(crate::exit::Exit::Ok.into()),
                Err(_) => {
                    return Detection::Fallback { why: "ExaBGP did not read the version query", owed: 0 };
                }
            },
        }
    }
    loop {
        tokio::select! {
            biased;
            Some(signal) = signals.recv() => {
                if terminates(signal) {
                    return stopping(signal);
                }
                tracing::info!(signal = signal.name(), "ignored while asking ExaBGP for its version");
            }
            event = events.recv() => match event {
                Some(PipeEvent::Version(found)) => {
                    return Detection::Found { found, owed: u64::from(acks) };
                }
                Some(PipeEvent::Ack(_)) => {
                    return Detection::Fallback {
                        why: "ExaBGP answered the version query without a version",
                        owed: 0,
                    };
                }
                Some(PipeEvent::ErrorDetail(_)) => {}
                Some(PipeEvent::Shutdown | PipeEvent::Eof) | None => {
                    return Detection::Exit(crate::exit::Exit::Ok.into());
                }
            },
            _ = sleep_until(deadline) => {
                return Detection::Fallback {
                    why: "ExaBGP did not answer the version query in time",
                    owed: u64::from(acks),
                };
            }
        }
    }
}

fn terminates(signal: Signal) -> bool {
    matches!(signal, Signal::Terminate | Signal::Interrupt)
}

fn stopping(signal: Signal) -> Detection {
    tracing::info!(
        signal = signal.name(),
        "stopping before anything was announced"
    );
    Detection::Exit(crate::exit::Exit::Ok.into())
}
