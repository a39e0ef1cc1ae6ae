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
