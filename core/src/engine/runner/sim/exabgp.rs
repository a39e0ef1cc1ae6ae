//! The simulated ExaBGP: reads the probe's commands from the in-memory pipe when the sequence
//! lets it, answers them in order (at once, late, `error` in one or two lines, an `error` once
//! then `done`) and keeps the routes it accepted, as a BGP peer would see them.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::time::Instant;

use crate::engine::output::memory::MemoryPipe;

/// Which command dialect this ExaBGP understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    /// 4.2/5.0: `announce route ...`, text version answer.
    Four,
    /// 6.0 (API 6): `peer * announce route ...`, JSON version answer.
    Six,
}

/// How the version query is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum VersionAnswer {
    /// With the first answers.
    Early,
    /// This long after the query was read (a busy start).
    Late(Duration),
}

/// How route commands are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answering {
    /// `done` at once.
    Done,
    /// `done` this long after the command was read (applied then).
    Late(Duration),
    /// `error` (4.x form).
    Error,
    /// `error: <message>` then `error` (6.x form).
    Error6,
    /// `error` for a command seen for the first time, `done` when it is sent again.
    ErrorOnce,
    /// `error` this long after the command was read (after `--ack-timeout`).
    LateError(Duration),
}

/// What a peer holds for a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Held {
    pub(super) med: Option<u32>,
    pub(super) drain: bool,
}

/// One answer due at a time.
struct Due {
    at: Instant,
    lines: Vec<String>,
    /// The route change it applies when given.
    apply: Option<(String, Option<Held>)>,
    /// The answer to the version query.
    version: bool,
    /// An `error` given after `--ack-timeout`.
    late_error: bool,
}

/// The simulated ExaBGP.
pub(super) struct FakeExabgp {
    pub(super) version: Version,
    pub(super) version_answer: VersionAnswer,
    pub(super) answering: Answering,
    pub(super) reading: bool,
    pipe: MemoryPipe,
    answers: Option<DuplexStream>,
    due: VecDeque<Due>,
    partial: Vec<u8>,
    /// What the peer holds.
    pub(super) rib: BTreeMap<String, Held>,
    /// Commands seen once (for [`Answering::ErrorOnce`]).
    seen: std::collections::HashSet<String>,
    /// When ExaBGP's version answer was given.
    pub(super) version_given_at: Option<Instant>,
    /// Route commands in a dialect this ExaBGP rejects, written after its version answer was
    /// given (with the time written): the dialect invariant.
    pub(super) wrong_dialect_after_answer: Vec<(Instant, String)>,
    /// Every line read, for the report.
    pub(super) transcript: Vec<String>,
    /// When a route command for each prefix was last read.
    pub(super) last_command: BTreeMap<String, Instant>,
    /// When a route command was last answered `done`.
    pub(super) last_done: Option<Instant>,
    /// When a late `error` (after `--ack-timeout`) was last given.
    pub(super) last_late_error: Option<Instant>,
}

impl FakeExabgp {
    pub(super) fn new(
        version: Version,
        version_answer: VersionAnswer,
        pipe: MemoryPipe,
        answers: DuplexStream,
    ) -> Self {
        FakeExabgp {
            version,
            version_answer,
            answering: Answering::Done,
            reading: true,
            pipe,
            answers: Some(answers),
            due: VecDeque::new(),
            partial: Vec::new(),
            rib: BTreeMap::new(),
            seen: Default::default(),
            version_given_at: None,
            wrong_dialect_after_answer: Vec::new(),
            transcript: Vec::new(),
            last_command: BTreeMap::new(),
            last_done: None,
            last_late_error: None,
        }
    }

    /// True once stdin is closed (EOF sent).
    pub(super) fn closed(&self) -> bool {
        self.answers.is_none()
    }

    /// Close the probe's stdin.
    pub(super) fn close(&mut self) {
        self.answers = None;
    }

    /// The earliest answer still to give.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.due.front().map(|due| due.at)
    }

    /// Read what the probe wrote (when reading) and give the answers that are due.
    pub(super) async fn step(&mut self) {
        if self.reading {
            self.read_pipe();
        }
        self.answer_due().await;
    }

    /// Read every whole line written so far.
    fn read_pipe(&mut self) {
        for (written, bytes) in self.pipe.take() {
            self.partial.extend_from_slice(&bytes);
            while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.partial.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line[..end]).into_owned();
                self.read_line(written, line);
            }
        }
    }

    /// After the probe exited: read everything it left in the pipe, answering at once.
    pub(super) fn read_rest(&mut self) -> Result<(), String> {
        self.read_pipe();
        while let Some(due) = self.due.pop_front() {
            if let Some((prefix, held)) = due.apply {
                apply(&mut self.rib, prefix, held);
            }
        }
        if self.partial.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "a partial line was left in the pipe: {:?}",
                String::from_utf8_lossy(&self.partial)
            ))
        }
    }

    fn read_line(&mut self, written: Instant, line: String) {
        let now = Instant::now();
        if std::env::var_os("EXAPROBE_SIM_TRACE").is_some() {
            self.transcript
                .push(format!("{:?} {line} ({:?})", now, self.answering));
        } else {
            self.transcript.push(line.clone());
        }
        let last = self.due.back().map_or(now, |due| due.at).max(now);
        if line == crate::engine::dialect::VERSION_COMMAND {
            let at = match self.version_answer {
                VersionAnswer::Early => last,
                VersionAnswer::Late(after) => last.max(now + after),
            };
            let answer = match self.version {
                Version::Four => "exabgp 5.0.15".to_string(),
                Version::Six => r#"{"version": "6.0.0-sim", "application": "exabgp"}"#.to_string(),
            };
            self.due.push_back(Due {
                at,
                lines: vec![answer, "done".into()],
                apply: None,
                version: true,
                late_error: false,
            });
            return;
        }
        let Some(command) = self.understood(&line) else {
            if self.version_given_at.is_some_and(|given| written > given) {
                self.wrong_dialect_after_answer
                    .push((written, line.clone()));
            }
            self.due.push_back(Due {
                at: last,
                lines: vec!["error".into()],
                apply: None,
                version: false,
                late_error: false,
            });
            return;
        };
        let change = parse_route(command);
        if let Some((prefix, _)) = &change {
            self.last_command.insert(prefix.clone(), now);
        }
        let (at, lines, apply) = match self.answering {
            Answering::Done => (last, vec!["done".to_string()], change),
            Answering::Late(after) => (last.max(now + after), vec!["done".to_string()], change),
            Answering::Error => (last, vec!["error".to_string()], None),
            Answering::LateError(after) => (last.max(now + after), vec!["error".to_string()], None),
            Answering::Error6 => (
                last,
                vec![
                    "error: could not parse route (simulated)".to_string(),
                    "error".to_string(),
                ],
                None,
            ),
            Answering::ErrorOnce => {
                if self.seen.insert(line.clone()) {
                    (last, vec!["error".to_string()], None)
                } else {
                    (last, vec!["done".to_string()], change)
                }
            }
        };
        let late_error = matches!(self.answering, Answering::LateError(_));
        self.due.push_back(Due {
            at,
            lines,
            apply,
            version: false,
            late_error,
        });
    }

    /// The route command without its dialect's selector, if this ExaBGP understands the form.
    fn understood<'a>(&self, line: &'a str) -> Option<&'a str> {
        match self.version {
            Version::Six => line.strip_prefix("peer * "),
            Version::Four if line.starts_with("peer ") => None,
            Version::Four => Some(line.strip_prefix("neighbor * ").unwrap_or(line)),
        }
    }

    async fn answer_due(&mut self) {
        let now = Instant::now();
        let mut text = String::new();
        while self.due.front().is_some_and(|due| due.at <= now) {
            let due = self.due.pop_front().expect("checked");
            if due.version {
                self.version_given_at.get_or_insert(now);
            }
            if let Some((prefix, held)) = due.apply {
                apply(&mut self.rib, prefix, held);
                self.last_done = Some(now);
            }
            if due.late_error {
                self.last_late_error = Some(now);
            }
            for line in due.lines {
                text.push_str(&line);
                text.push('\n');
            }
        }
        if text.is_empty() {
            return;
        }
        if let Some(answers) = self.answers.as_mut()
            && answers.write_all(text.as_bytes()).await.is_err()
        {
            self.answers = None;
        }
    }
}

fn apply(rib: &mut BTreeMap<String, Held>, prefix: String, held: Option<Held>) {
    match held {
        Some(held) => {
            rib.insert(prefix, held);
        }
        None => {
            rib.remove(&prefix);
        }
    }
}

/// `announce route P ... med N ... community [ .. 65535:0 .. ]` or `withdraw route P ...`.
fn parse_route(command: &str) -> Option<(String, Option<Held>)> {
    let mut words = command.split_whitespace();
    let verb = words.next()?;
    if words.next()? != "route" {
        return None;
    }
    let prefix = words.next()?.to_string();
    let rest: Vec<&str> = words.collect();
    match verb {
        "withdraw" => Some((prefix, None)),
        "announce" => {
            let med = rest
                .iter()
                .position(|w| *w == "med")
                .and_then(|i| rest.get(i + 1))
                .and_then(|m| m.parse().ok());
            let drain = rest.contains(&"65535:0");
            Some((prefix, Some(Held { med, drain })))
        }
        _ => None,
    }
}
