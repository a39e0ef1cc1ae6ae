//! The signals a probe serves, as one stream of events, so the supervisor takes them as a
//! parameter (the real ones in production, a channel in tests).

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// A signal the probe acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGTERM: withdraw everything and exit.
    Terminate,
    /// SIGINT: as SIGTERM.
    Interrupt,
    /// SIGHUP: reload the configuration.
    Hangup,
    /// SIGUSR1: log the state.
    DumpState,
    /// SIGUSR2: check now.
    CheckNow,
}

impl Signal {
    /// The signal's name, for logs.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Signal::Terminate => "SIGTERM",
            Signal::Interrupt => "SIGINT",
            Signal::Hangup => "SIGHUP",
            Signal::DumpState => "SIGUSR1",
            Signal::CheckNow => "SIGUSR2",
        }
    }
}

/// Install the handlers and forward every signal to the returned channel.
pub(crate) fn listen() -> std::io::Result<mpsc::UnboundedReceiver<Signal>> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut user1 = signal(SignalKind::user_defined1())?;
    let mut user2 = signal(SignalKind::user_defined2())?;
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let received = tokio::select! {
                _ = terminate.recv() => Signal::Terminate,
                _ = interrupt.recv() => Signal::Interrupt,
                _ = hangup.recv() => Signal::Hangup,
                _ = user1.recv() => Signal::DumpState,
                _ = user2.recv() => Signal::CheckNow,
            };
            if sender.send(received).is_err() {
                return;
            }
        }
    });
    Ok(receiver)
}
