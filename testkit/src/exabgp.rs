//! A slow ExaBGP: runs a probe binary as ExaBGP would (commands on its stdout, answers on its
//! stdin, logs on its stderr) and misbehaves on demand: stops reading the command pipe, stops
//! reading stderr, never answers, answers `error`.
//!
//! Both pipes are shrunk to 4 KiB (the smallest a pipe can be) so a stall fills them quickly.
//! A reader thread reads the commands only while reading is allowed ([`SlowExabgp::stall`],
//! [`SlowExabgp::resume`]), and acknowledges each one with `done` when auto-ACK is on.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::ChildGuard;

/// What the reader thread may do.
#[derive(Debug, Clone, Copy)]
struct Reading {
    allowed: bool,
    auto_ack: bool,
}

/// A command the probe wrote, and when this side read it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The line, without its newline.
    pub line: String,
    /// When it was read.
    pub at: Instant,
}

/// A probe under a controllable, misbehaving ExaBGP.
pub struct SlowExabgp {
    /// The probe process.
    pub child: ChildGuard,
    stdin: Arc<Mutex<Option<ChildStdin>>>,
    reading: Arc<(Mutex<Reading>, Condvar)>,
    commands: Receiver<Received>,
    /// Bytes of a last line that had no newline when the pipe closed.
    partial: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<String>>,
    stderr_read: Arc<(Mutex<bool>, Condvar)>,
}

fn shrink_pipe(fd: impl AsFd) {
    nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096))
        .expect("shrink the pipe to 4 KiB");
}

impl SlowExabgp {
    /// Start `binary` with `args`, reading and acknowledging its commands, reading its stderr.
    pub fn start(binary: &Path, args: &[&str]) -> SlowExabgp {
        SlowExabgp::start_with(binary, args, true)
    }

    /// The same, acknowledging each command with `done` only when `auto_ack` (otherwise the
    /// test answers with [`SlowExabgp::answer`], say a version query as ExaBGP 6 does).
    pub fn start_with(binary: &Path, args: &[&str], auto_ack: bool) -> SlowExabgp {
        let mut command = Command::new(binary);
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = ChildGuard::spawn(&mut command);
        let stdout = child.child().stdout.take().expect("piped stdout");
        let stderr = child.child().stderr.take().expect("piped stderr");
        let stdin = child.child().stdin.take().expect("piped stdin");
        shrink_pipe(&stdout);
        shrink_pipe(&stderr);
        let stdin = Arc::new(Mutex::new(Some(stdin)));
        let reading = Arc::new((
            Mutex::new(Reading {
                allowed: true,
                auto_ack,
            }),
            Condvar::new(),
        ));
        let partial = Arc::new(Mutex::new(Vec::new()));
        let (sender, commands) = channel();
        {
            let reading = Arc::clone(&reading);
            let stdin = Arc::clone(&stdin);
            let partial = Arc::clone(&partial);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stdout);
                loop {
                    let auto_ack = {
                        let (lock, ready) = &*reading;
                        let mut state = lock.lock().unwrap();
                        while !state.allowed {
                            state = ready.wait(state).unwrap();
                        }
                        state.auto_ack
                    };
                    let mut line = Vec::new();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if !line.ends_with(b"\n") => {
                            *partial.lock().unwrap() = line;
                            return;
                        }
                        Ok(_) => {}
                    }
                    if auto_ack && let Some(stdin) = stdin.lock().unwrap().as_mut() {
                        let _ = stdin.write_all(b"done\n");
                    }
                    let line = String::from_utf8_lossy(&line).trim_end().to_string();
                    if sender
                        .send(Received {
                            line,
                            at: Instant::now(),
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
        let log = Arc::new(Mutex::new(String::new()));
        let stderr_read = Arc::new((Mutex::new(true), Condvar::new()));
        {
            let log = Arc::clone(&log);
            let stderr_read = Arc::clone(&stderr_read);
            std::thread::spawn(move || {
                let mut stderr = stderr;
                let mut chunk = [0u8; 4096];
                loop {
                    {
                        let (lock, ready) = &*stderr_read;
                        let mut allowed = lock.lock().unwrap();
                        while !*allowed {
                            allowed = ready.wait(allowed).unwrap();
                        }
                    }
                    match stderr.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => log
                            .lock()
                            .unwrap()
                            .push_str(&String::from_utf8_lossy(&chunk[..n])),
                    }
                }
            });
        }
        SlowExabgp {
            child,
            stdin,
            reading,
            commands,
            partial,
            stderr: log,
            stderr_read,
        }
    }

    fn set_reading(&self, change: impl FnOnce(&mut Reading)) {
        let (lock, ready) = &*self.reading;
        change(&mut lock.lock().unwrap());
        ready.notify_all();
    }

    /// Stop reading the command pipe (the probe's writes fill it and then stall).
    pub fn stall(&self) {
        self.set_reading(|r| r.allowed = false);
    }

    /// Read the command pipe again.
    pub fn resume(&self) {
        self.set_reading(|r| r.allowed = true);
    }

    /// Acknowledge each command read with `done` (on by default), or answer nothing.
    pub fn auto_ack(&self, on: bool) {
        self.set_reading(|r| r.auto_ack = on);
    }

    /// Stop or restart reading the probe's stderr.
    pub fn read_stderr(&self, on: bool) {
        let (lock, ready) = &*self.stderr_read;
        *lock.lock().unwrap() = on;
        ready.notify_all();
    }

    /// Write `text` to the probe's stdin (answers, events).
    pub fn answer(&self, text: &str) {
        if let Some(stdin) = self.stdin.lock().unwrap().as_mut() {
            let _ = stdin.write_all(text.as_bytes());
        }
    }

    /// The next command read within `within`.
    pub fn command(&self, within: Duration) -> Option<Received> {
        self.commands.recv_timeout(within).ok()
    }

    /// Every command read until none comes for `quiet`.
    pub fn commands_until_quiet(&self, quiet: Duration) -> Vec<Received> {
        std::iter::from_fn(|| self.command(quiet)).collect()
    }

    /// The bytes of a last line left without its newline when the probe's stdout closed.
    pub fn partial_line(&self) -> Vec<u8> {
        self.partial.lock().unwrap().clone()
    }

    /// What the probe logged so far (what was read of it).
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}
