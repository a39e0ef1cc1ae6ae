//! The run under ExaBGP: two loops joined by the desired routes, so that no wait on ExaBGP can
//! delay a check and no check can delay a signal.
//!
//! - [`checker`]: the schedule, the hysteresis, the disable file and reloads; publishes the
//!   routes it wants ([`shared::Desired`]) and never waits for the pipe. A steady check it
//!   hands to its autopilot, a thread of its own, until the outcome differs
//!   (`checker/autopilot.rs`, `checker/steady.rs`).
//! - [`deliverer`]: converges ExaBGP to the desired routes: latest command per prefix only,
//!   whole lines only, ACKs matched in order, retries after `error`, goes on after a stall or a
//!   missing ACK.
//! - This module, the supervisor: serves signals whatever either loop is doing. SIGTERM/SIGINT
//!   stop the checks (the autopilot's too) and have the deliverer withdraw everything within [`TERMINATE_BUDGET`]
//!   (ExaBGP SIGKILLs its children 2 s after asking them to stop); stdin EOF or ExaBGP's
//!   shutdown notice end the run at once without writing; SIGHUP and SIGUSR2 go to the checker;
//!   SIGUSR1 logs the state both loops report.
//!
//! I/O and signals are parameters ([`RunIo`]) and the clock is tokio's, so the whole run is
//! tested in-process with real pipes and paused time.

mod checker;
mod deliverer;
mod detect;
mod late;
mod listening;
mod once;
mod retry;
mod shared;
mod signals;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
mod wake;

use std::cell::RefCell;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::AsyncRead;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::config::settings::Settings;
use crate::engine::exabgp::{PipeEnd, spawn_reader, stdin_reader};
use crate::engine::output::CommandSink;
use crate::probe::Probe;

use checker::{Checker, Request};
pub(crate) use checker::{Reload, ReloadError};
use deliverer::{Control, Deliverer, Finish};
use detect::Detector;
pub(crate) use once::once;
use shared::{Desired, Report};
use signals::Signal;

/// How long after SIGTERM the withdraws may take: ExaBGP SIGKILLs its children after 2 s.
const TERMINATE_BUDGET: Duration = Duration::from_millis(1200);

/// What the run reads and writes: stdin, stdout and the signals.
pub(crate) struct RunIo {
    /// ExaBGP's answers and events.
    pub(crate) stdin: Box<dyn AsyncRead + Unpin + Send>,
    /// ExaBGP's command pipe.
    pub(crate) stdout: CommandSink,
    /// The signals to serve.
    pub(crate) signals: mpsc::UnboundedReceiver<Signal>,
    /// stdin is a pipe, as ExaBGP gives its processes (its end means ExaBGP is gone).
    pub(crate) stdin_is_pipe: bool,
}

/// Run `probe` under ExaBGP until a signal, EOF or the shutdown notice. Never returns otherwise.
pub(crate) async fn run<P: Probe + Send + 'static>(
    probe: P,
    settings: Settings,
    reload: Reload<P>,
) -> ExitCode {
    let signals = match signals::listen() {
        Ok(signals) => signals,
        Err(error) => {
            tracing::error!(%error, "cannot install signal handlers");
            return crate::config::exit::Exit::Software.into();
        }
    };
    let stdin_is_pipe = nix::sys::stat::fstat(std::io::stdin())
        .is_ok_and(|stat| stat.st_mode & libc::S_IFMT == libc::S_IFIFO);
    let io = RunIo {
        stdin: stdin_reader(),
        stdout: CommandSink::stdout(),
        signals,
        stdin_is_pipe,
    };
    run_with(probe, settings, reload, io).await
}

/// [`run`] with its I/O given: the supervisor.
pub(crate) async fn run_with<P: Probe + Send + 'static>(
    probe: P,
    settings: Settings,
    reload: Reload<P>,
    io: RunIo,
) -> ExitCode {
    let events = spawn_reader(io.stdin);
    let stdout = io.stdout;
    let mut signals = io.signals;
    let detector = Detector::new(
        settings.detect_dialect,
        settings.routes.dialect,
        settings.ack,
        Instant::now(),
    );
    let (dialect_sender, dialect) = watch::channel(detector.known());
    let observer = crate::observe::start(&settings.observe, &settings.name);
    let status = Rc::new(RefCell::new(Report {
        observer,
        ..Report::default()
    }));
    let (desired_sender, desired) = watch::channel(Desired::undecided(&settings));
    let (requests, requests_receiver) = mpsc::unbounded_channel();
    let (control, control_receiver) = mpsc::unbounded_channel();
    let (settled_sender, settled) = mpsc::unbounded_channel();
    // A probe that only publishes its state (`--no-routes`) may run outside ExaBGP, its stdin
    // /dev/null or a terminal: their end is not ExaBGP's.
    let keep_on_eof = settings.require.no_routes && !io.stdin_is_pipe;
    let mut deliverer = Deliverer::new(
        stdout,
        events,
        desired,
        Rc::clone(&status),
        detector,
        dialect_sender,
        settled_sender,
    );
    deliverer.keep_on_eof(keep_on_eof);
    let links = checker::Links {
        desired: desired_sender,
        status: Rc::clone(&status),
        requests: requests_receiver,
        dialect,
        settled,
    };
    let checker = Checker::new(probe, settings, reload, links);
    let grounding = checker.grounding();
    let checking = checker.run();
    let delivering = deliverer.run(control_receiver);
    tokio::pin!(checking, delivering);
    let mut terminating = false;
    loop {
        tokio::select! {
            biased;
            Some(signal) = signals.recv() => match signal {
                Signal::Terminate | Signal::Interrupt if terminating => {
                    // The withdraws still go out within the budget: a second signal (or SIGTERM
                    // and SIGINT together, as a service manager may send) only cuts a drain short.
                    tracing::info!(signal = signal.name(), "second signal: withdrawing now, without waiting for the drain");
                    let _ = control.send(Control::Hurry);
                }
                Signal::Terminate | Signal::Interrupt => {
                    tracing::info!(signal = signal.name(), "stopping");
                    terminating = true;
                    // The checker is no longer polled: its checks on the autopilot stop too.
                    grounding.stop();
                    let deadline = Instant::now() + TERMINATE_BUDGET;
                    let _ = control.send(Control::Terminate { deadline });
                }
                Signal::Hangup => {
                    let _ = requests.send(Request::Reload);
                }
                Signal::CheckNow => {
                    let _ = requests.send(Request::CheckNow);
                }
                Signal::DumpState => status.borrow().log_dump(),
            },
            finish = &mut delivering => {
                match finish {
                    Finish::PipeEnded(PipeEnd::Shutdown) => tracing::info!("ExaBGP is shutting down; exiting"),
                    Finish::PipeEnded(PipeEnd::Eof) => tracing::info!("stdin closed: ExaBGP is gone; exiting"),
                    Finish::PipeEnded(PipeEnd::Broken) => tracing::debug!("stdout closed; exiting"),
                    Finish::Terminated => {}
                }
                return crate::config::exit::Exit::Ok.into();
            }
            never = &mut checking, if !terminating => match never {},
        }
    }
}
