//! The only module that writes to stdout: stdout is ExaBGP's command pipe, and a stray byte on
//! it is a malformed command. A workspace lint (clippy.toml `disallowed-methods`, `print_stdout`)
//! rejects stdout writes anywhere else.
//!
//! Under ExaBGP, stdout is a pipe. [`CommandSink`] switches it to non-blocking mode and writes
//! chunks of at most `PIPE_BUF` bytes, each made of whole lines: POSIX makes such a write
//! all-or-nothing, so a command is never cut in half, whatever happens next (a stall, SIGTERM,
//! SIGKILL), and waiting for room can be abandoned at any moment without leaving a partial line.
//!
//! Anything else (a file or a terminal under `--dry-run`) is written synchronously, within the
//! one poll of [`CommandSink::write_chunk`] that starts it: a write handed to a background
//! thread (tokio's `Stdout`) goes on after its future is dropped, and the deliverer, told
//! nothing was written, writes the same commands again.

#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::io::{ErrorKind, Write as _};
use std::os::fd::AsFd;

use tokio::net::unix::pipe;

/// The size up to which a write to a pipe is atomic (Linux `PIPE_BUF`).
pub(crate) const PIPE_BUF: usize = libc::PIPE_BUF;

/// Where ExaBGP commands are written.
pub(crate) enum CommandSink {
    /// A pipe (ExaBGP's case): non-blocking, each chunk written whole or not at all.
    Pipe(pipe::Sender),
    /// Anything else (a terminal under `--dry-run`, a file): blocking writes, done before
    /// [`CommandSink::write_chunk`] first returns. A file takes a write at once; a terminal
    /// blocks only while a person holds its output (Ctrl-S), and then pausing the probe is
    /// what they asked for (Ctrl-C resumes the output and stops it).
    Other(std::io::Stdout),
    /// The runner's simulation: an in-memory pipe with the same all-or-nothing writes.
    #[cfg(test)]
    Memory(memory::MemoryPipe),
}

impl CommandSink {
    /// The process's stdout: a non-blocking pipe writer when it is a pipe.
    ///
    /// The descriptor is duplicated (close-on-exec), so no check or hook inherits it.
    pub(crate) fn stdout() -> Self {
        let pipe = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .and_then(pipe::Sender::from_owned_fd);
        match pipe {
            Ok(sender) => CommandSink::Pipe(sender),
            Err(_) => CommandSink::Other(std::io::stdout()),
        }
    }

    /// Write `chunk` (whole lines, at most [`PIPE_BUF`] bytes) entirely, or nothing at all.
    ///
    /// Cancel-safe: for a pipe, dropping the future while it waits for room writes nothing;
    /// anything else is written whole in the first poll, so there is nothing to drop.
    pub(crate) async fn write_chunk(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        debug_assert!(chunk.ends_with(b"\n"));
        match self {
            CommandSink::Pipe(sender) => {
                let mut rest = chunk;
                loop {
                    sender.writable().await?;
                    match sender.try_write(rest) {
                        Ok(written) if written == rest.len() => return Ok(()),
                        // Only possible for a single line longer than PIPE_BUF (refused by the
                        // settings): finish it before anything else.
                        Ok(written) => rest = &rest[written..],
                        Err(error) if error.kind() == ErrorKind::WouldBlock => {}
                        Err(error) => return Err(error),
                    }
                }
            }
            CommandSink::Other(stdout) => {
                let mut stdout = stdout.lock();
                stdout.write_all(chunk)?;
                stdout.flush()
            }
            #[cfg(test)]
            CommandSink::Memory(pipe) => pipe.write_chunk(chunk).await,
        }
    }
}

/// Print one line for a person (`--once` status, `--check-config` summary) and flush.
pub(crate) fn print_line(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// True when stdout is a terminal: a person is watching, not ExaBGP.
pub(crate) fn stdout_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
}

#[cfg(test)]
pub(crate) mod memory {
    //! An in-memory pipe for the runner's simulation: bounded like a pipe, each chunk written
    //! whole or not at all (waiting for room is cancel-safe), stamped with the paused clock's
    //! time it was written at, and readable or stalled at the test's will.

    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use tokio::sync::Notify;
    use tokio::time::Instant;

    #[derive(Default)]
    struct State {
        capacity: usize,
        buffered: usize,
        chunks: VecDeque<(Instant, Vec<u8>)>,
        reader_gone: bool,
    }

    /// Both ends of the pipe (clones share it).
    #[derive(Clone, Default)]
    pub(crate) struct MemoryPipe {
        state: Arc<Mutex<State>>,
        room: Arc<Notify>,
        data: Arc<Notify>,
    }

    impl MemoryPipe {
        /// A pipe holding at most `capacity` bytes.
        pub(crate) fn new(capacity: usize) -> Self {
            let pipe = MemoryPipe::default();
            pipe.state.lock().unwrap().capacity = capacity;
            pipe
        }

        /// Write `chunk` whole once there is room for it.
        pub(crate) async fn write_chunk(&self, chunk: &[u8]) -> std::io::Result<()> {
            loop {
                let room = self.room.notified();
                tokio::pin!(room);
                room.as_mut().enable();
                {
                    let mut state = self.state.lock().unwrap();
                    if state.reader_gone {
                        return Err(std::io::ErrorKind::BrokenPipe.into());
                    }
                    if state.buffered + chunk.len() <= state.capacity {
                        state.buffered += chunk.len();
                        state.chunks.push_back((Instant::now(), chunk.to_vec()));
                        self.data.notify_waiters();
                        return Ok(());
                    }
                }
                room.await;
            }
        }

        /// Everything written and not read yet, with the time each chunk was written.
        pub(crate) fn take(&self) -> Vec<(Instant, Vec<u8>)> {
            let mut state = self.state.lock().unwrap();
            state.buffered = 0;
            let taken = state.chunks.drain(..).collect();
            self.room.notify_waiters();
            taken
        }

        /// Wait until something is written.
        pub(crate) async fn readable(&self) {
            loop {
                let data = self.data.notified();
                tokio::pin!(data);
                data.as_mut().enable();
                if !self.state.lock().unwrap().chunks.is_empty() {
                    return;
                }
                data.await;
            }
        }
    }
}
