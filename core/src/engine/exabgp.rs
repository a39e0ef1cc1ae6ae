//! What ExaBGP writes to the probe's stdin, and what it means.
//!
//! A reader task ALWAYS drains stdin, whatever the ACK mode: ExaBGP writes ACKs and events with
//! blocking writes, and a child that stops reading stalls ExaBGP's whole reactor (its issues
//! #867, #932, #1034). Lines are bounded in length, invalid UTF-8 is tolerated, and only a few
//! things matter: ACKs (`done`/`error`, and the `error: <message>` line ExaBGP 6 sends before
//! `error`), the shutdown notice and EOF. Everything else is logged at trace level and dropped.
//! The deliverer (`runner::deliverer`) consumes what the reader reports.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::engine::dialect::{DetectedExabgp, parse_version_answer};

/// Lines longer than this are discarded (ExaBGP's ACKs and shutdown notices are a few bytes).
pub(crate) const MAX_LINE: usize = 256 * 1024;

/// What one line from ExaBGP means to a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// `done`: the last unanswered command was accepted.
    Done,
    /// `error`: the last unanswered command was rejected.
    Error,
    /// `error: <message>`: why the next `error` will come (ExaBGP 6 explains a parse failure).
    ErrorDetail(String),
    /// ExaBGP's answer to `system version`.
    Version(DetectedExabgp),
    /// ExaBGP is shutting down (text `shutdown <pid> <ppid>` or the JSON notification).
    Shutdown,
    /// A BGP session came up (with `neighbor-changes;` in the process's `api` block): text
    /// `neighbor <ip> up`, or API 6's JSON `state` message with `"state": "up"`.
    NeighborUp(String),
    /// Anything else: events, command output, blank lines.
    Other,
}

/// Classify one line (without its newline).
pub(crate) fn classify(line: &str) -> Message {
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
    if let Some(peer) = line
        .strip_prefix("neighbor ")
        .and_then(|rest| rest.strip_suffix(" up"))
        .filter(|peer| is_word(peer))
    {
        return Message::NeighborUp(peer.to_string());
    }
    if let Some(detected) = parse_version_answer(line) {
        return Message::Version(detected);
    }
    if let Some(detail) = line.strip_prefix("error:") {
        return Message::ErrorDetail(truncate(detail.trim(), 300).to_string());
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
        if value.get("type").and_then(|t| t.as_str()) == Some("state") {
            let neighbor = value.get("neighbor");
            if neighbor
                .and_then(|n| n.get("state"))
                .and_then(|s| s.as_str())
                == Some("up")
            {
                let peer = neighbor
                    .and_then(|n| n.pointer("/address/peer"))
                    .and_then(|p| p.as_str())
                    .filter(|peer| is_word(peer))
                    .unwrap_or("?");
                return Message::NeighborUp(peer.to_string());
            }
        }
    }
    Message::Other
}

/// Splits a byte stream into lines, discarding lines longer than a limit without buffering them.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    buffer: Vec<u8>,
    discarding: bool,
    max: usize,
}

/// One item out of a [`LineSplitter`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    /// A complete line (lossily decoded, without `\n` or `\r`).
    Line(String),
    /// A line longer than the limit was dropped.
    Overlong,
}

impl LineSplitter {
    /// A splitter that drops lines longer than `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        LineSplitter {
            buffer: Vec::new(),
            discarding: false,
            max,
        }
    }

    /// Feed bytes; returns the pieces they complete.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) -> Vec<Piece> {
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
pub(crate) enum PipeEvent {
    /// An ACK: true for `done`, false for `error`.
    Ack(bool),
    /// The explanation ExaBGP 6 gives on the line before an `error`.
    ErrorDetail(String),
    /// ExaBGP's answer to `system version`.
    Version(DetectedExabgp),
    /// ExaBGP announced its shutdown.
    Shutdown,
    /// A BGP session came up: what ExaBGP was told before it existed must be told again.
    NeighborUp(String),
    /// stdin closed (or failed): ExaBGP is gone.
    Eof,
}

/// The process's stdin as an async reader: a non-blocking pipe reader on the runtime's own
/// event loop when it is a pipe (ExaBGP's case: no thread hand-off per read), tokio's
/// blocking-pool reader otherwise.
pub(crate) fn stdin_reader() -> Box<dyn AsyncRead + Unpin + Send> {
    use std::os::fd::AsFd;
    let pipe = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(tokio::net::unix::pipe::Receiver::from_owned_fd);
    match pipe {
        Ok(receiver) => Box::new(receiver),
        Err(_) => Box::new(tokio::io::stdin()),
    }
}

/// Start the task that drains `input` forever, reporting ACKs, the shutdown notice and EOF.
pub(crate) fn spawn_reader<R>(mut input: R) -> mpsc::UnboundedReceiver<PipeEvent>
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
                    Message::ErrorDetail(detail) => PipeEvent::ErrorDetail(detail),
                    Message::Version(detected) => PipeEvent::Version(detected),
                    Message::Shutdown => PipeEvent::Shutdown,
                    Message::NeighborUp(peer) => PipeEvent::NeighborUp(peer),
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

/// A peer's address as ExaBGP writes it: one short printable word (safe in a log line).
fn is_word(text: &str) -> bool {
    !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_graphic())
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}

/// How commands are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckMode {
    /// Wait for `done`/`error` after each command, at most this long without progress.
    Wait(Duration),
    /// ExaBGP runs with `exabgp.api.ack=false`: nothing to wait for.
    Off,
    /// Print commands for a person (`--dry-run` or a terminal): no ACKs.
    DryRun,
}

/// Why the pipe can no longer be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PipeEnd {
    /// ExaBGP sent its shutdown notice.
    Shutdown,
    /// stdin reached EOF.
    Eof,
    /// stdout is closed (EPIPE).
    Broken,
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
            r#"{ "type": "state", "neighbor": { "state": "down" } }"#,
            "{ not json",
            "doneish",
        ] {
            assert_eq!(classify(other), Message::Other, "{other}");
        }
    }

    /// Session state with `neighbor-changes;`: 5.0's text as seen on loopback, 6.0's JSON.
    #[test]
    fn classifies_a_session_coming_up() {
        assert_eq!(
            classify("neighbor 127.0.0.1 up"),
            Message::NeighborUp("127.0.0.1".into())
        );
        assert_eq!(
            classify(
                r#"{"exabgp": "6.0.0", "time": 1.0, "type": "state", "neighbor": {"address": {"local": "127.0.0.1", "peer": "127.0.0.2"}, "asn": {"local": 65001, "peer": 65002}, "state": "up"}}"#
            ),
            Message::NeighborUp("127.0.0.2".into())
        );
        for other in [
            "neighbor 127.0.0.1 connected",
            "neighbor 127.0.0.1 down - peer reset",
            "neighbor up",
            "neighbor a b up",
            r#"{"type": "state", "neighbor": {"state": "connected"}}"#,
        ] {
            assert_eq!(classify(other), Message::Other, "{other}");
        }
    }

    #[test]
    fn classifies_version_answers_and_error_details() {
        assert!(
            matches!(classify("exabgp 5.0.13"), Message::Version(found) if found.version == "5.0.13")
        );
        assert_eq!(
            classify("error: Could not parse route: route 192.0.2.9/32 next-hop banana"),
            Message::ErrorDetail(
                "Could not parse route: route 192.0.2.9/32 next-hop banana".into()
            )
        );
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
