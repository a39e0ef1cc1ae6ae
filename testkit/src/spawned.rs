//! A probe binary spawned with pipes, the test playing ExaBGP: each line the probe writes on
//! stdout is handed over through a channel the test reads with a deadline, what it logs on
//! stderr is kept for the test and for the failure messages, and the test answers on stdin
//! (or a reader thread answers each line, as an ExaBGP that acknowledges every command).
//!
//! Written once for the tests that drive a binary through its pipes; [`crate::exabgp`] is the
//! misbehaving variant (stalled pipes, 4 KiB buffers), [`crate::cli`] the run-to-completion one.

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::{ChildGuard, wait_for};

/// A running binary whose stdout lines this test reads, killed when dropped.
pub struct Spawned {
    child: ChildGuard,
    stdin: Arc<Mutex<Option<ChildStdin>>>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Spawned {
    /// Spawn `command` with its three pipes; the test answers on stdin itself
    /// ([`Spawned::write`]), which stays open until [`Spawned::close_stdin`] or the drop.
    pub fn start(command: &mut Command) -> Spawned {
        Spawned::spawn(command, None)
    }

    /// Spawn `command` with its three pipes, writing `answer` (say `"done\n"`) on its stdin
    /// after each line it writes and before the test gets that line.
    pub fn answering(command: &mut Command, answer: &'static str) -> Spawned {
        Spawned::spawn(command, Some(answer))
    }

    fn spawn(command: &mut Command, answer: Option<&'static str>) -> Spawned {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = ChildGuard::spawn(command);
        let stdout = child.child().stdout.take().expect("piped stdout");
        let stderr = child.child().stderr.take().expect("piped stderr");
        let stdin = Arc::new(Mutex::new(child.child().stdin.take()));
        let (sender, lines) = channel();
        {
            let stdin = Arc::clone(&stdin);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(answer) = answer
                        && write_to(&stdin, answer.as_bytes()).is_err()
                    {
                        break;
                    }
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let log = Arc::new(Mutex::new(String::new()));
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        Spawned {
            child,
            stdin,
            lines,
            stderr: log,
        }
    }

    /// The next stdout line within `within`; a failure shows what the binary logged.
    pub fn line(&self, within: Duration) -> String {
        self.lines.recv_timeout(within).unwrap_or_else(|error| {
            panic!(
                "no line on stdout within {within:?} ({error:?}); stderr:\n{}",
                self.log()
            )
        })
    }

    /// The next stdout line within `within`, `None` when none came (or stdout closed).
    pub fn try_line(&self, within: Duration) -> Option<String> {
        self.lines.recv_timeout(within).ok()
    }

    /// Assert that no stdout line comes within `window`.
    pub fn quiet_for(&self, window: Duration) {
        if let Some(line) = self.try_line(window) {
            panic!("unexpected line {line:?}; stderr:\n{}", self.log());
        }
    }

    /// Write `bytes` on the binary's stdin (answers, events, garbage).
    pub fn write(&self, bytes: impl AsRef<[u8]>) {
        write_to(&self.stdin, bytes.as_ref()).expect("write to the binary's stdin");
    }

    /// Close the binary's stdin (ExaBGP gone).
    pub fn close_stdin(&self) {
        drop(
            self.stdin
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }

    /// What the binary logged on stderr so far.
    pub fn log(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Wait until the log holds `needle`.
    pub fn wait_log(&self, needle: &str, within: Duration) {
        wait_for(&format!("{needle:?} in the log"), within, || {
            self.log().contains(needle).then_some(())
        });
    }

    /// Its exit status, which must come within `within`; a failure shows what it logged.
    pub fn exits_within(&mut self, within: Duration) -> ExitStatus {
        match self.child.wait_timeout(within) {
            Some(status) => status,
            None => panic!("still running after {within:?}; stderr:\n{}", self.log()),
        }
    }

    /// True while it has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child
            .child()
            .try_wait()
            .expect("query the child's status")
            .is_none()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Send it `signal`.
    pub fn signal(&self, signal: Signal) {
        self.child.signal(signal);
    }
}

fn write_to(stdin: &Mutex<Option<ChildStdin>>, bytes: &[u8]) -> std::io::Result<()> {
    let mut stdin = stdin.lock().unwrap_or_else(PoisonError::into_inner);
    let stdin = stdin
        .as_mut()
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
    stdin.write_all(bytes)?;
    stdin.flush()
}
