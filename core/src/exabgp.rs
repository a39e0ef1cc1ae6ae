//! The ExaBGP pipe: what comes in on stdin and how commands go out on stdout.
//!
//! A reader task ALWAYS drains stdin, whatever the ACK mode: ExaBGP writes ACKs and events with
//! blocking writes, and a child that stops reading stalls ExaBGP's whole reactor (its issues
//! #867, #932, #1034). Lines are bounded in length, invalid UTF-8 is tolerated, and only three
//! things matter: ACKs (`done`/`error`), the shutdown notice and EOF. Everything else is logged
//! at debug level and dropped.
//!
//! [`Pipe::send`] writes a batch of commands at once and, with ACKs on, collects one ACK per
//! command in order, with a deadline that restarts whenever ExaBGP makes progress.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

use crate::output::CommandOutput;

/// Lines longer than this are discarded (ExaBGP's ACKs and shutdown notices are a few bytes).
pub const MAX_LINE: usize = 256 * 1024;

/// What one line from ExaBGP means to a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `done`: the last unanswered command was accepted.
    Done,
    /// `error`: the last unanswered command was rejected.
    Error,
    /// ExaBGP is shutting down (text `shutdown <pid> <ppid>` or the JSON notification).
    Shutdown,
    /// Anything else: events, command output, blank lines.
    Other,
}

/// Classify one line (without its newline).
pub fn classify(line: &str) -> Message {
    let line = line.trim();
    match line {
        "done" => return Message::Done,
        "error" => return Message::Error,
        "shutdown" => return Message::Shutdown,
        _ => {}
    }
    if line.starts_with("shutdown ") {
        return Message::Shutdown;
    }
    if line.starts_with('{')
        && let Ok(value) = serde_json::from_str::<serde_json::Value>(line)
    {
        match value.get("answer").and_then(|a| a.as_str()) {
            Some("done") => return Message::Done,
            Some("error") => return Message::Error,
            Some("shutdown") => return Message::Shutdown,
            _ => {}
        }
        if value.get("type").and_then(|t| t.as_str()) == Some("notification")
            && value.get("notification").and_then(|n| n.as_str()) == Some("shutdown")
        {
            return Message::Shutdown;
        }
    }
    Message::Other
}

/// Splits a byte stream into lines, discarding lines longer than a limit without buffering them.
#[derive(Debug)]
pub struct LineSplitter {
    buffer: Vec<u8>,
    discarding: bool,
    max: usize,
}

/// One item out of a [`LineSplitter`].
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// A complete line (lossily decoded, without `\n` or `\r`).
    Line(String),
    /// A line longer than the limit was dropped.
    Overlong,
}

impl LineSplitter {
    /// A splitter that drops lines longer than `max` bytes.
    pub fn new(max: usize) -> Self {
        LineSplitter {
            buffer: Vec::new(),
            discarding: false,
            max,
        }
    }

    /// Feed bytes; returns the pieces they complete.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<Piece> {
        let mut pieces = Vec::new();
        while !bytes.is_empty() {
            match bytes.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    if self.discarding {
                        self.discarding = false;
                    } else if self.buffer.len() + end > self.max {
                        self.buffer.clear();
                        pieces.push(Piece::Overlong);
                    } else {
                        self.buffer.extend_from_slice(&bytes[..end]);
                        let line = String::from_utf8_lossy(&self.buffer)
                            .trim_end_matches('\r')
                            .to_string();
                        self.buffer.clear();
                        pieces.push(Piece::Line(line));
                    }
                    bytes = &bytes[end + 1..];
                }
                None => {
                    if !self.discarding {
                        if self.buffer.len() + bytes.len() > self.max {
                            self.buffer.clear();
                            self.discarding = true;
                            pieces.push(Piece::Overlong);
                        } else {
                            self.buffer.extend_from_slice(bytes);
                        }
                    }
                    bytes = &[];
                }
            }
        }
        pieces
    }
}

/// What the reader task reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipeEvent {
    /// An ACK: true for `done`, false for `error`.
    Ack(bool),
    /// ExaBGP announced its shutdown.
    Shutdown,
    /// stdin closed (or failed): ExaBGP is gone.
    Eof,
}

/// Start the task that drains `input` forever, reporting ACKs, the shutdown notice and EOF.
pub fn spawn_reader<R>(mut input: R) -> mpsc::UnboundedReceiver<PipeEvent>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut splitter = LineSplitter::new(MAX_LINE);
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let read = match input.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(error) => {
                    tracing::warn!(%error, "reading stdin failed; treating it as ExaBGP gone");
                    break;
                }
            };
            for piece in splitter.feed(&chunk[..read]) {
                let line = match piece {
                    Piece::Line(line) => line,
                    Piece::Overlong => {
                        tracing::warn!(max = MAX_LINE, "discarded an overlong line on stdin");
                        continue;
                    }
                };
                let event = match classify(&line) {
                    Message::Done => PipeEvent::Ack(true),
                    Message::Error => PipeEvent::Ack(false),
                    Message::Shutdown => PipeEvent::Shutdown,
                    Message::Other => {
                        if !line.is_empty() {
                            tracing::trace!(line = %truncate(&line, 200), "ignored input from ExaBGP");
                        }
                        continue;
                    }
                };
                if sender.send(event).is_err() {
                    return;
                }
            }
        }
        let _ = sender.send(PipeEvent::Eof);
    });
    receiver
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}

/// How commands are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// Wait for `done`/`error` after each command, at most this long without progress.
    Wait(Duration),
    /// ExaBGP runs with `exabgp.api.ack=false`: nothing to wait for.
    Off,
    /// Print commands for a person (`--dry-run` or a terminal): no ACKs.
    DryRun,
}

/// Why the pipe can no longer be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipeEnd {
    /// ExaBGP sent its shutdown notice.
    Shutdown,
    /// stdin reached EOF.
    Eof,
    /// stdout is closed (EPIPE).
    Broken,
}

/// Counts of one batch's ACKs, for the runner's log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchReport {
    /// Commands ExaBGP answered `done`.
    pub done: usize,
    /// Commands ExaBGP answered `error`.
    pub errors: usize,
    /// Commands whose ACK did not come in time.
    pub missing: usize,
}

/// The two ends of the pipe to ExaBGP, owned by the runner.
pub struct Pipe {
    output: CommandOutput,
    events: mpsc::UnboundedReceiver<PipeEvent>,
    mode: AckMode,
    /// ACKs due and not yet received (including those whose wait timed out or was cancelled):
    /// arriving ACKs are matched to the oldest command first.
    owed: usize,
    ended: Option<PipeEnd>,
}

impl Pipe {
    /// A pipe writing to stdout and reading events from `events`.
    pub fn new(events: mpsc::UnboundedReceiver<PipeEvent>, mode: AckMode) -> Self {
        Pipe {
            output: CommandOutput::new(),
            events,
            mode,
            owed: 0,
            ended: None,
        }
    }

    /// Change the ACK mode (after a reload).
    pub fn set_ack_mode(&mut self, mode: AckMode) {
        self.mode = mode;
    }

    /// Why the pipe ended, once it has.
    pub fn ended(&self) -> Option<PipeEnd> {
        self.ended
    }

    /// Wait for the next event while idle (no command outstanding). Returns the end reason when
    /// the pipe ends; stray ACKs are absorbed.
    pub async fn idle_event(&mut self) -> PipeEnd {
        loop {
            match self.events.recv().await {
                Some(PipeEvent::Ack(ok)) => self.absorb_stray_ack(ok),
                Some(PipeEvent::Shutdown) => return self.end(PipeEnd::Shutdown),
                Some(PipeEvent::Eof) | None => {
                    if self.mode == AckMode::DryRun {
                        // A person ran us with stdin closed: keep going until a signal.
                        std::future::pending::<()>().await;
                    }
                    return self.end(PipeEnd::Eof);
                }
            }
        }
    }

    fn end(&mut self, end: PipeEnd) -> PipeEnd {
        *self.ended.get_or_insert(end)
    }

    fn absorb_stray_ack(&mut self, ok: bool) {
        if self.owed > 0 {
            self.owed -= 1;
            tracing::debug!(ok, "late ACK for an earlier command");
        } else if self.mode != AckMode::Off {
            tracing::debug!(ok, "ACK without a command outstanding");
        }
    }

    /// Write `lines` as one batch and, with ACKs on, wait for one ACK per line.
    ///
    /// `deadline` bounds the whole call (used on shutdown); the per-ACK wait is the ACK timeout.
    /// Returns the pipe's end when it ended during the call.
    pub async fn send(
        &mut self,
        lines: &[String],
        deadline: Option<Instant>,
    ) -> Result<BatchReport, PipeEnd> {
        if !self.write(lines, deadline).await? {
            return Ok(BatchReport {
                missing: lines.len(),
                ..BatchReport::default()
            });
        }
        self.acks(lines, deadline).await
    }

    /// Write `lines` as one batch. Returns false when the write timed out (ExaBGP not reading).
    ///
    /// Not to be cancelled halfway: a half-written line would corrupt the next command.
    pub async fn write(
        &mut self,
        lines: &[String],
        deadline: Option<Instant>,
    ) -> Result<bool, PipeEnd> {
        if let Some(end) = self.ended {
            return Err(end);
        }
        if lines.is_empty() {
            return Ok(true);
        }
        let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        let write_deadline = deadline.unwrap_or_else(|| Instant::now() + self.write_timeout());
        match timeout_at(write_deadline, self.output.write_lines(&text)).await {
            Ok(Ok(())) => Ok(true),
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                Err(self.end(PipeEnd::Broken))
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "writing to ExaBGP failed");
                Err(self.end(PipeEnd::Broken))
            }
            Err(_) => {
                tracing::error!(
                    commands = lines.len(),
                    "writing to ExaBGP timed out: is it reading?"
                );
                Ok(false)
            }
        }
    }

    /// With ACKs on, wait for one ACK per line just written, in order. Cancel-safe: ACKs that
    /// were not collected are owed, and matched to these commands when they arrive.
    pub async fn acks(
        &mut self,
        lines: &[String],
        deadline: Option<Instant>,
    ) -> Result<BatchReport, PipeEnd> {
        let AckMode::Wait(ack_timeout) = self.mode else {
            return Ok(BatchReport {
                done: lines.len(),
                ..BatchReport::default()
            });
        };
        self.owed += lines.len();
        let mut report = BatchReport::default();
        let mut pending: VecDeque<&String> = lines.iter().collect();
        while let Some(line) = pending.front() {
            let mut wait_until = Instant::now() + ack_timeout;
            if let Some(deadline) = deadline {
                wait_until = wait_until.min(deadline);
            }
            match timeout_at(wait_until, self.events.recv()).await {
                Ok(Some(PipeEvent::Ack(ok))) => {
                    self.owed -= 1;
                    if self.owed >= pending.len() {
                        // Still paying off ACKs of earlier commands that timed out.
                        continue;
                    }
                    if ok {
                        report.done += 1;
                    } else {
                        report.errors += 1;
                        tracing::error!(command = %line, "ExaBGP rejected a command");
                    }
                    pending.pop_front();
                }
                Ok(Some(PipeEvent::Shutdown)) => return Err(self.end(PipeEnd::Shutdown)),
                Ok(Some(PipeEvent::Eof) | None) => return Err(self.end(PipeEnd::Eof)),
                Err(_) => {
                    report.missing = pending.len();
                    tracing::warn!(
                        missing = pending.len(),
                        first = %line,
                        timeout = ?ack_timeout,
                        "no ACK from ExaBGP in time (is exabgp.api.ack=false? then use --no-ack)"
                    );
                    break;
                }
            }
        }
        Ok(report)
    }

    fn write_timeout(&self) -> Duration {
        match self.mode {
            AckMode::Wait(ack_timeout) => ack_timeout,
            AckMode::Off | AckMode::DryRun => Duration::from_secs(10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_acks_and_shutdown() {
        assert_eq!(classify("done"), Message::Done);
        assert_eq!(classify("error"), Message::Error);
        assert_eq!(classify("shutdown 5230 1"), Message::Shutdown);
        assert_eq!(
            classify(r#"{ "answer": "done", "message": "command completed" }"#),
            Message::Done
        );
        assert_eq!(
            classify(r#"{ "answer": "error", "message": "x" }"#),
            Message::Error
        );
        assert_eq!(
            classify(
                r#"{ "exabgp": "5.0.0", "time": 1.0, "host" : "vm", "pid" : 1, "ppid" : 1, "type": "notification", "notification": "shutdown" }"#
            ),
            Message::Shutdown
        );
        for other in [
            "",
            "neighbor 127.0.0.1 down - closing connection",
            "neighbor 127.0.0.1 receive update announced 192.0.2.10/32 next-hop 127.0.0.1 med 100",
            "exabgp 5.0.13",
            r#"{ "type": "state", "neighbor": { "state": "down" } }"#,
            "{ not json",
            "doneish",
        ] {
            assert_eq!(classify(other), Message::Other, "{other}");
        }
    }

    #[test]
    fn splits_lines_across_chunks() {
        let mut s = LineSplitter::new(10);
        assert_eq!(s.feed(b"do"), vec![]);
        assert_eq!(
            s.feed(b"ne\r\n\nerr"),
            vec![Piece::Line("done".into()), Piece::Line(String::new())]
        );
        assert_eq!(s.feed(b"or\n"), vec![Piece::Line("error".into())]);
    }

    #[test]
    fn discards_overlong_lines_and_recovers() {
        let mut s = LineSplitter::new(8);
        assert_eq!(s.feed(b"0123456789"), vec![Piece::Overlong]);
        assert_eq!(s.feed(b"still the same line"), vec![]);
        assert_eq!(s.feed(b"...\ndone\n"), vec![Piece::Line("done".into())]);
        assert_eq!(s.feed(b"123456789\n"), vec![Piece::Overlong]);
        assert_eq!(
            s.feed(b"\xff\xfe\n"),
            vec![Piece::Line("\u{fffd}\u{fffd}".into())]
        );
    }

    proptest::proptest! {
        /// However the bytes are chunked, the same short lines come out.
        #[test]
        fn chunking_does_not_matter(lines in proptest::collection::vec("[a-z ]{0,12}", 0..20), cut in 1usize..7) {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let mut s = LineSplitter::new(64);
            let mut out = Vec::new();
            for chunk in text.as_bytes().chunks(cut) {
                out.extend(s.feed(chunk));
            }
            let expected: Vec<Piece> = lines.into_iter().map(Piece::Line).collect();
            proptest::prop_assert_eq!(out, expected);
        }
    }
}
