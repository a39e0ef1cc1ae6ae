//! The deliverer: converges what ExaBGP holds to what the checker wants, whatever ExaBGP does.
//!
//! It keeps, per prefix, what ExaBGP last accepted, and sends only the latest desired command
//! of a prefix that differs from it: no backlog builds up while ExaBGP is slow (a change that is
//! superseded before it could be written is never written), so memory stays bounded.
//!
//! - Whole lines only: commands go out in chunks of at most `PIPE_BUF` bytes made of whole lines,
//!   each written all-or-nothing by [`CommandSink::write_chunk`], so waiting for a stalled pipe
//!   can be abandoned at any moment (a newer command, SIGTERM) without cutting a line.
//! - A command counts as sent once its whole line is written and as accepted once ExaBGP
//!   answers `done` (or at once with `--no-ack`). ACKs come in order, so the in-flight queue
//!   maps each answer to its command; at most [`MAX_IN_FLIGHT`] lines wait for an answer.
//! - `error`: logged with the command (and ExaBGP 6's `error: <message>`), then retried with
//!   a backoff of 1 s doubling to 60 s until accepted or superseded.
//! - No ACK within `--ack-timeout`: the commands count as written but unconfirmed, their late
//!   ACKs are absorbed as they come, and delivery goes on.
//! - SIGTERM: a withdraw for every prefix, written as far as the pipe takes them before the
//!   deadline, then the ACKs awaited until the deadline.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use super::detect::{Decided, Detector};
use super::late::{LateVerdict, Owed};
use super::retry::Retries;
use crate::engine::dialect::ApiDialect;
use crate::engine::dialect::mismatch_hint;
use crate::engine::exabgp::{AckMode, PipeEnd, PipeEvent};
use crate::engine::output::{CommandSink, PIPE_BUF};
use crate::engine::render::RouteCommand;
use crate::engine::route::Prefix;
use crate::engine::runner::shared::{Delivered, Desired, Report, Settled};
use crate::observe::Answer;

/// Lines written and not yet answered, at most: bounds memory when ExaBGP stops answering.
pub(crate) const MAX_IN_FLIGHT: usize = 1024;
/// Candidates examined for one chunk, at most (a chunk of `PIPE_BUF` bytes holds fewer lines).
const CHUNK_CANDIDATES: usize = 256;

#[cfg(test)]
thread_local! {
    /// How many prefixes the deliverer examined (the cost test counts work, not time).
    pub(super) static EXAMINED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// What the supervisor can ask of the deliverer.
#[derive(Debug)]
pub(crate) enum Control {
    /// Withdraw everything, as far as possible before `deadline`, then finish.
    Terminate {
        /// When to give up and exit.
        deadline: Instant,
    },
    /// A second SIGTERM/SIGINT: end a drain at once and withdraw (still within the deadline).
    Hurry,
}

/// Why the deliverer finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// ExaBGP is gone or going: exit without writing.
    PipeEnded(PipeEnd),
    /// The withdraws of a SIGTERM/SIGINT were delivered (or the deadline passed).
    Terminated,
}

/// One line written and awaiting its ACK.
#[derive(Debug)]
pub(super) struct InFlight {
    pub(super) prefix: Prefix,
    pub(super) action: RouteCommand,
    pub(super) line: String,
    /// The last line of its action: the action is settled when this one is answered.
    pub(super) last: bool,
}

/// Lines to write in one all-or-nothing write, and which commands they carry.
struct Chunk {
    bytes: Vec<u8>,
    lines: Vec<(Prefix, RouteCommand, String, bool)>,
    /// An action whose remaining lines did not fit: (prefix, action, lines already included).
    rest: Option<(Prefix, RouteCommand, usize)>,
    /// The chunk is the version query (`--exabgp-api auto`).
    query: bool,
}

/// Converges ExaBGP to the [`Desired`] routes.
pub(crate) struct Deliverer {
    sink: CommandSink,
    events: mpsc::UnboundedReceiver<PipeEvent>,
    desired: watch::Receiver<Desired>,
    desired_open: bool,
    status: Rc<RefCell<Report>>,
    /// Per prefix, the last action written and not yet answered (ACK mode).
    written: BTreeMap<Prefix, RouteCommand>,
    in_flight: VecDeque<InFlight>,
    /// Prefixes with a line answered `error` in the action being settled.
    failing: BTreeSet<Prefix>,
    /// ACKs of lines that timed out, still to come before any newer ACK.
    owed: Owed,
    ack_deadline: Option<Instant>,
    retries: Retries,
    /// Prefixes that may need a command: every one after the desired routes change, then the
    /// ones an answer, a retry or a refresh concerns. Work per event is bounded by what it
    /// touches, so thousands of prefixes cost linear time, not a scan per ACK.
    todo: BTreeSet<Prefix>,
    /// The next chunk to write, built once and kept until written or outdated.
    chunk: Option<Chunk>,
    /// An action longer than one chunk, partly written: its remaining lines go next.
    partial: Option<(Prefix, RouteCommand, usize)>,
    refresh_every: Option<Duration>,
    refresh_at: Option<Instant>,
    /// Accepted prefixes to re-send (the refresh timer fired).
    stale: BTreeSet<Prefix>,
    /// ExaBGP 6's explanation of the `error` that comes next.
    error_detail: Option<String>,
    /// Whether ExaBGP has answered anything yet (the first answer can reveal a wrong dialect).
    answered: bool,
    stdin_open: bool,
    /// stdin's end is not ExaBGP's (`--no-routes` outside ExaBGP): go on until a signal.
    keep_on_eof: bool,
    /// Which dialect ExaBGP speaks (asked of it with `--exabgp-api auto`).
    detector: Detector,
    /// Where the checker learns the dialect, to render its routes in it.
    dialect: watch::Sender<Option<ApiDialect>>,
    /// Where the checker learns that a retired prefix needs nothing more.
    settled: mpsc::UnboundedSender<Settled>,
}

impl Deliverer {
    /// A deliverer writing to `sink`, reading ExaBGP's answers from `events`.
    pub(crate) fn new(
        sink: CommandSink,
        events: mpsc::UnboundedReceiver<PipeEvent>,
        desired: watch::Receiver<Desired>,
        status: Rc<RefCell<Report>>,
        detector: Detector,
        dialect: watch::Sender<Option<ApiDialect>>,
        settled: mpsc::UnboundedSender<Settled>,
    ) -> Self {
        let refresh_every = desired.borrow().refresh;
        Deliverer {
            sink,
            events,
            desired,
            desired_open: true,
            status,
            written: BTreeMap::new(),
            in_flight: VecDeque::new(),
            failing: BTreeSet::new(),
            owed: Owed::default(),
            ack_deadline: None,
            retries: Retries::default(),
            todo: BTreeSet::new(),
            chunk: None,
            partial: None,
            refresh_every,
            refresh_at: refresh_every.map(|every| Instant::now() + every),
            stale: BTreeSet::new(),
            error_detail: None,
            answered: false,
            stdin_open: true,
            keep_on_eof: false,
            detector,
            dialect,
            settled,
        }
    }

    /// Go on after stdin's end (it is not ExaBGP's).
    pub(crate) fn keep_on_eof(&mut self, keep: bool) {
        self.keep_on_eof = keep;
    }

    /// Converge until ExaBGP goes away or the supervisor asks to terminate.
    pub(crate) async fn run(mut self, mut control: mpsc::UnboundedReceiver<Control>) -> Finish {
        loop {
            let now = Instant::now();
            // The chunk in hand stays valid until the desired routes change: rebuilt per event,
            // it would cost a scan per ACK while the pipe is full.
            if self.chunk.is_none() {
                self.chunk = self.next_chunk(now);
            }
            let writing = self.chunk.is_some();
            if !writing || self.in_flight.is_empty() {
                let out_of_sync = self.todo.len() + self.written.len();
                self.status.borrow_mut().out_of_sync = out_of_sync;
            }
            let retry_at = self.retries.next_due();
            let ack_deadline = self.ack_deadline;
            let detect_deadline = self.detector.deadline();
            let refresh_at = self.refresh_at;
            tokio::select! {
                biased;
                Some(control_message) = control.recv() => {
                    if let Control::Terminate { deadline } = control_message {
                        return self.terminate(deadline, control).await;
                    }
                }
                event = self.events.recv(), if self.stdin_open => {
                    if let Some(end) = self.on_event(event) {
                        return Finish::PipeEnded(end);
                    }
                }
                changed = self.desired.changed(), if self.desired_open => match changed {
                    Ok(()) => self.on_desired_changed(),
                    Err(_) => self.desired_open = false,
                },
                _ = sleep_until(ack_deadline.unwrap_or(now)), if ack_deadline.is_some() => {
                    self.on_ack_timeout();
                }
                _ = sleep_until(detect_deadline.unwrap_or(now)), if detect_deadline.is_some() => {
                    let (decided, owed) = self.detector.timed_out(Instant::now());
                    self.owed.count(u64::from(owed));
                    self.decided(decided);
                    // A query still unwritten is abandoned: written later, its ACK would be
                    // taken for a route command's.
                    if self.chunk.as_ref().is_some_and(|chunk| chunk.query) {
                        self.chunk = None;
                    }
                }
                written = self.sink.write_chunk(self.chunk.as_ref().map_or(&[][..], |c| &c.bytes)), if writing => {
                    match written {
                        Ok(()) => {
                            let chunk = self.chunk.take().expect("guarded by the branch condition");
                            self.record(chunk);
                        }
                        Err(error) => return Finish::PipeEnded(broken(&error)),
                    }
                }
                _ = sleep_until(retry_at.unwrap_or(now)), if retry_at.is_some() => {
                    self.todo.extend(self.retries.take_due(Instant::now()));
                }
                _ = sleep_until(refresh_at.unwrap_or(now)), if refresh_at.is_some() => {
                    self.on_refresh();
                }
            }
        }
    }

    fn ack_mode(&self) -> AckMode {
        self.desired.borrow().ack
    }

    /// Whether `action` must be written for `prefix` now.
    fn needs(&self, prefix: &Prefix, action: &RouteCommand, now: Instant) -> bool {
        match self.written.get(prefix) {
            Some(written) if written == action => return false,
            Some(_) => return true,
            None => {}
        }
        if self
            .partial
            .as_ref()
            .is_some_and(|(p, a, _)| p == prefix && a == action)
        {
            return true;
        }
        let holds_it = self
            .status
            .borrow()
            .accepted
            .get(prefix)
            .is_some_and(|delivered| &delivered.action == action);
        if holds_it {
            return self.stale.contains(prefix);
        }
        !self
            .retries
            .get(prefix)
            .is_some_and(|retry| &retry.action == action && now < retry.at)
    }

    /// Whether ExaBGP may hold an announce for `prefix` (so a retired prefix needs a withdraw).
    fn may_hold(&self, prefix: &Prefix) -> bool {
        // An unconfirmed withdraw may still be rejected (late): ExaBGP may hold the route.
        let accepted = self
            .status
            .borrow()
            .accepted
            .get(prefix)
            .is_some_and(|delivered| delivered.action.announces() || !delivered.confirmed);
        // A rejected command (one waiting for its retry) leaves what ExaBGP holds unknown.
        accepted
            || self.written.get(prefix).is_some_and(|a| a.announces())
            || self.retries.contains(prefix)
    }

    /// The next chunk to write, if anything is due and the in-flight window has room.
    fn next_chunk(&mut self, now: Instant) -> Option<Chunk> {
        if let Some(query) = self.detector.query() {
            return Some(Chunk {
                bytes: format!("{query}\n").into_bytes(),
                lines: Vec::new(),
                rest: None,
                query: true,
            });
        }
        if self.detector.known() != Some(self.desired.borrow().dialect) {
            // Nothing in a dialect ExaBGP may reject: wait for the answer, or for the checker
            // to render the routes in the dialect found.
            return None;
        }
        let acks = matches!(self.ack_mode(), AckMode::Wait(_));
        let room = if acks {
            MAX_IN_FLIGHT.saturating_sub(self.in_flight.len())
        } else {
            usize::MAX
        };
        if room == 0 {
            return None;
        }
        let mut chunk = Chunk {
            bytes: Vec::new(),
            lines: Vec::new(),
            rest: None,
            query: false,
        };
        let mut queue: Vec<(Prefix, RouteCommand, usize)> = Vec::new();
        if let Some((prefix, action, done)) = &self.partial
            && self.still_wanted(prefix, action)
        {
            queue.push((*prefix, action.clone(), *done));
        }
        let settled = self.due_from_todo(now, &mut queue, room.min(CHUNK_CANDIDATES));
        for prefix in settled {
            self.todo.remove(&prefix);
        }
        'actions: for (prefix, action, done) in queue {
            for (index, line) in action.lines.iter().enumerate().skip(done) {
                let full =
                    chunk.bytes.len() + line.len() + 1 > PIPE_BUF || chunk.lines.len() >= room;
                if full && !chunk.lines.is_empty() {
                    if index > done || chunk.lines.iter().any(|(p, ..)| *p == prefix) {
                        chunk.rest = Some((prefix, action.clone(), index));
                    }
                    break 'actions;
                }
                chunk.bytes.extend_from_slice(line.as_bytes());
                chunk.bytes.push(b'\n');
                let last = index + 1 == action.lines.len();
                chunk
                    .lines
                    .push((prefix, action.clone(), line.clone(), last));
            }
        }
        (!chunk.lines.is_empty()).then_some(chunk)
    }

    /// Whether `action` is still what the checker wants for `prefix`.
    fn still_wanted(&self, prefix: &Prefix, action: &RouteCommand) -> bool {
        let desired = self.desired.borrow();
        desired
            .routes
            .as_ref()
            .and_then(|routes| routes.get(prefix))
            .or_else(|| desired.retired.get(prefix))
            == Some(action)
    }

    /// Add to `queue` up to `limit` commands due now, from the prefixes that may need one (a
    /// reload's withdraws included, for prefixes ExaBGP may still hold). Returns the prefixes
    /// examined that need nothing, to drop from the to-do set.
    fn due_from_todo(
        &self,
        now: Instant,
        queue: &mut Vec<(Prefix, RouteCommand, usize)>,
        limit: usize,
    ) -> Vec<Prefix> {
        let desired = self.desired.borrow();
        let mut settled = Vec::new();
        for prefix in &self.todo {
            if queue.len() >= limit {
                break;
            }
            #[cfg(test)]
            EXAMINED.with(|examined| examined.set(examined.get() + 1));
            if queue.first().is_some_and(|(p, ..)| p == prefix) {
                continue; // the partly written action, already first
            }
            let configured = desired
                .routes
                .as_ref()
                .and_then(|routes| routes.get(prefix));
            let action = match configured {
                Some(action) => Some(action),
                None => desired
                    .retired
                    .get(prefix)
                    .filter(|_| self.may_hold(prefix)),
            };
            match action {
                Some(action) if self.needs(prefix, action, now) => {
                    queue.push((*prefix, action.clone(), 0));
                }
                _ => settled.push(*prefix),
            }
        }
        settled
    }

    /// A chunk was written whole: account for its lines.
    fn record(&mut self, chunk: Chunk) {
        let now = Instant::now();
        if chunk.query {
            self.detector.written(now);
            return;
        }
        let first = chunk.lines.first().map(|(_, _, line, _)| line.clone());
        tracing::info!(
            state = %self.status.borrow().state,
            commands = chunk.lines.len(),
            first = first.as_deref().unwrap_or(""),
            "sending routes"
        );
        self.partial = chunk.rest;
        let ack_timeout = match self.ack_mode() {
            AckMode::Wait(timeout) => Some(timeout),
            AckMode::Off | AckMode::DryRun => None,
        };
        for (prefix, action, line, last) in chunk.lines {
            if last {
                self.stale.remove(&prefix);
                if self.partial.as_ref().is_some_and(|(p, ..)| *p == prefix) {
                    self.partial = None;
                }
            }
            match ack_timeout {
                Some(_) => {
                    if last {
                        self.written.insert(prefix, action.clone());
                    }
                    self.in_flight.push_back(InFlight {
                        prefix,
                        action,
                        line,
                        last,
                    });
                }
                None if last => self.settle(prefix, action, false),
                None => {}
            }
        }
        if let Some(timeout) = ack_timeout
            && self.ack_deadline.is_none()
            && !self.in_flight.is_empty()
        {
            self.ack_deadline = Some(now + timeout);
        }
    }

    /// ExaBGP took `action` for `prefix` (answered `done`, or no answer is expected).
    fn settle(&mut self, prefix: Prefix, action: RouteCommand, confirmed: bool) {
        // A retry of this action is done; a retry of an older one is superseded (left, it
        // would hold that action back if it became desired again).
        self.retries.remove(&prefix);
        // The checker may want something else by now.
        self.todo.insert(prefix);
        self.status
            .borrow()
            .observer
            .accepted(&prefix, &action, confirmed);
        let withdrawn = confirmed && !action.announces();
        self.status
            .borrow_mut()
            .accepted
            .insert(prefix, Delivered { action, confirmed });
        if withdrawn {
            self.report_settled(std::iter::once(prefix));
        }
    }

    /// Tell the checker which of `prefixes`, retired in the desired routes, ExaBGP holds
    /// nothing of ours for (nothing more to send for them).
    fn report_settled(&self, prefixes: impl Iterator<Item = Prefix>) {
        let desired = self.desired.borrow();
        for prefix in prefixes {
            if desired.retired.contains_key(&prefix) && !self.may_hold(&prefix) {
                let _ = self.settled.send(Settled {
                    prefix,
                    generation: desired.generation,
                });
            }
        }
    }

    /// Handle one report of the stdin reader. Returns the end of the pipe, if it ended.
    fn on_event(&mut self, event: Option<PipeEvent>) -> Option<PipeEnd> {
        match event {
            Some(PipeEvent::Ack(ok)) => {
                self.on_ack(ok);
                None
            }
            Some(PipeEvent::ErrorDetail(detail)) => {
                self.error_detail = Some(detail);
                None
            }
            Some(PipeEvent::Version(detected)) => {
                let decided = self.detector.answered(&detected);
                self.decided(decided);
                None
            }
            Some(PipeEvent::Shutdown) => Some(PipeEnd::Shutdown),
            Some(PipeEvent::NeighborUp(peer)) => {
                // A session that came up after the routes were sent (ExaBGP started it, or a
                // reload added the neighbour) has none of them: send the current state again.
                self.resend_all();
                tracing::info!(%peer, commands = self.stale.len(), "ExaBGP reports a session up: re-sending the current routes");
                None
            }
            Some(PipeEvent::Eof) | None => {
                if self.ack_mode() == AckMode::DryRun || self.keep_on_eof {
                    // A person ran us with stdin closed: keep going until a signal.
                    self.stdin_open = false;
                    None
                } else {
                    Some(PipeEnd::Eof)
                }
            }
        }
    }

    fn on_ack(&mut self, ok: bool) {
        let detail = self.error_detail.take();
        if self.detector.takes_next_ack() {
            let decided = self.detector.acked();
            self.decided(decided);
            return;
        }
        if let Some(verdict) = self.owed.answer(ok) {
            tracing::debug!(ok, "late ACK for an earlier command");
            if let LateVerdict::Settled {
                prefix,
                action,
                accepted,
            } = verdict
            {
                self.late_settled(prefix, action, accepted);
            }
            return;
        }
        let Some(flight) = self.in_flight.pop_front() else {
            if self.ack_mode() != AckMode::Off {
                tracing::debug!(ok, "ACK without a command outstanding");
            }
            return;
        };
        let now = Instant::now();
        self.ack_deadline = match self.ack_mode() {
            AckMode::Wait(timeout) if !self.in_flight.is_empty() => Some(now + timeout),
            _ => None,
        };
        self.conclude(flight, ok, detail, now);
        // Counted after the route it settles is recorded: a state file or textfile that shows
        // the answer shows its route too (their writer thread may render between two updates).
        let answer = if ok { Answer::Done } else { Answer::Error };
        self.status.borrow().observer.answered(answer, 1);
    }

    /// What ExaBGP's answer `ok` to `flight` means: a rejection logged and retried, the last
    /// command for a prefix settled.
    fn conclude(&mut self, flight: InFlight, ok: bool, detail: Option<String>, now: Instant) {
        let first_answer = !std::mem::replace(&mut self.answered, true);
        if !ok {
            tracing::error!(
                command = %flight.line,
                detail = detail.as_deref().unwrap_or("none given"),
                "ExaBGP rejected a command"
            );
            if first_answer {
                let dialect = self.desired.borrow().dialect;
                if let Some(hint) = mismatch_hint(dialect, &flight.line, detail.as_deref()) {
                    tracing::error!("{hint}");
                }
            }
            self.failing.insert(flight.prefix);
        }
        if !flight.last {
            return;
        }
        if self.written.get(&flight.prefix) == Some(&flight.action) {
            self.written.remove(&flight.prefix);
        }
        if self.failing.remove(&flight.prefix) {
            self.schedule_retry(flight.prefix, flight.action, now);
        } else {
            self.settle(flight.prefix, flight.action, true);
            // ExaBGP takes commands again: what it rejected earlier is worth sending now,
            // not after a backoff grown while it was rejecting everything.
            self.todo.extend(self.retries.release(now));
        }
    }

    /// A late answer (after `--ack-timeout`) to the whole of `action` for `prefix`: confirm
    /// what was counted as unconfirmed, or, for a rejection, take it back and retry.
    fn late_settled(&mut self, prefix: Prefix, action: RouteCommand, accepted: bool) {
        let holds = self
            .status
            .borrow()
            .accepted
            .get(&prefix)
            .is_some_and(|delivered| delivered.action == action);
        if !holds {
            return; // superseded meanwhile
        }
        if accepted {
            self.settle(prefix, action, true);
            return;
        }
        tracing::error!(
            %prefix,
            "ExaBGP rejected a command after --ack-timeout: it does not hold the route"
        );
        self.status.borrow_mut().accepted.remove(&prefix);
        self.status.borrow().observer.not_held(&prefix);
        let now = Instant::now();
        self.schedule_retry(prefix, action, now);
        // It was waited on for --ack-timeout and more already: send it again now.
        self.retries.due_now(&prefix, now);
        self.todo.insert(prefix);
    }

    fn schedule_retry(&mut self, prefix: Prefix, action: RouteCommand, now: Instant) {
        let backoff = self.retries.schedule(prefix, action, now);
        tracing::warn!(
            %prefix,
            retry_in = ?backoff,
            "ExaBGP does not hold the desired route; sending the command again later"
        );
    }

    fn on_ack_timeout(&mut self) {
        self.ack_deadline = None;
        let Some(first) = self.in_flight.front() else {
            return;
        };
        let timeout = match self.ack_mode() {
            AckMode::Wait(timeout) => timeout,
            AckMode::Off | AckMode::DryRun => Duration::ZERO,
        };
        tracing::warn!(
            missing = self.in_flight.len(),
            first = %first.line,
            ?timeout,
            "no ACK from ExaBGP in time (is exabgp.api.ack=false? then use --no-ack); going on"
        );
        let missing = self.in_flight.len();
        self.failing.clear();
        let flights = std::mem::take(&mut self.in_flight);
        for flight in flights.iter().filter(|flight| flight.last) {
            if self.written.get(&flight.prefix) == Some(&flight.action) {
                self.written.remove(&flight.prefix);
            }
            self.settle(flight.prefix, flight.action.clone(), false);
        }
        // Their answers may still come, in order: each is matched to its line then.
        self.owed.lines(flights);
        // After the routes, as in on_ack.
        self.status
            .borrow()
            .observer
            .answered(Answer::Timeout, missing);
    }

    /// Tell the checker which dialect to render routes in.
    fn decided(&mut self, decided: Decided) {
        if let Decided::Dialect(dialect) = decided {
            self.dialect.send_replace(Some(dialect));
        }
    }

    fn on_desired_changed(&mut self) {
        self.chunk = None;
        let desired = self.desired.borrow_and_update();
        let refresh = desired.refresh;
        self.todo.extend(desired.retired.keys().copied());
        if let Some(routes) = &desired.routes {
            self.todo.extend(routes.keys().copied());
        }
        let retired: Vec<Prefix> = desired.retired.keys().copied().collect();
        drop(desired);
        self.report_settled(retired.into_iter());
        if refresh != self.refresh_every {
            self.refresh_every = refresh;
            self.refresh_at = refresh.map(|every| Instant::now() + every);
        }
    }

    fn on_refresh(&mut self) {
        self.refresh_at = self.refresh_every.map(|every| Instant::now() + every);
        self.resend_all();
        tracing::debug!(
            commands = self.stale.len(),
            "refresh: re-sending the current state"
        );
    }

    /// Send what ExaBGP accepted again (a refresh, a session up).
    fn resend_all(&mut self) {
        self.stale = self.status.borrow().accepted.keys().copied().collect();
        self.todo.extend(self.stale.iter().copied());
        self.chunk = None;
    }

    /// SIGTERM/SIGINT: withdraw every prefix, as far as ExaBGP takes it before `deadline`;
    /// with `--drain` while UP, first announce with the drain community for what the budget
    /// allows.
    async fn terminate(
        mut self,
        deadline: Instant,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) -> Finish {
        if self.detector.known() != Some(self.desired.borrow().dialect) {
            // Nothing was written in a dialect ExaBGP takes: nothing of ours to withdraw.
            tracing::info!("stopping before ExaBGP's dialect was known: nothing to withdraw");
            return Finish::Terminated;
        }
        let (drain, farewell) = {
            let desired = self.desired.borrow();
            let drain = desired.drain_on_exit.as_ref().map(|(plan, length)| {
                let lines: VecDeque<String> = plan
                    .iter()
                    .filter(|(prefix, _)| self.may_hold(prefix))
                    .flat_map(|(_, action)| action.lines.iter().cloned())
                    .collect();
                (lines, *length)
            });
            // Every configured prefix (a route an earlier instance left is withdrawn too), and
            // the prefixes a reload removed that ExaBGP may still hold.
            let configured = |prefix: &Prefix| !desired.retired.contains_key(prefix);
            let farewell: VecDeque<String> = desired
                .farewell
                .iter()
                .filter(|(prefix, _)| configured(prefix) || self.may_hold(prefix))
                .flat_map(|(_, action)| action.lines.iter().cloned())
                .collect();
            (drain, farewell)
        };
        let drain = drain.and_then(|(lines, length)| {
            let until = crate::engine::routing::exit_drain_until(Instant::now(), length, deadline)?;
            (!lines.is_empty()).then_some((lines, until))
        });
        if let Some((lines, until)) = drain {
            tracing::info!(
                drain = ?until.saturating_duration_since(Instant::now()),
                "terminating: draining (graceful shutdown community) before withdrawing"
            );
            if let Err(finish) = self.send_until(lines, until, Some(&mut control)).await {
                return finish;
            }
        }
        tracing::info!(
            withdraws = farewell.len(),
            "terminating: withdrawing every prefix"
        );
        match self.send_until(farewell, deadline, None).await {
            Ok(()) | Err(_) => Finish::Terminated,
        }
    }

    /// Write `queue` as the pipe takes it and await its ACKs, until `until` at the latest. A
    /// drain passes the `control` channel: it holds until `until` (or a [`Control::Hurry`]),
    /// whatever was answered. `Err` when ExaBGP went away.
    async fn send_until(
        &mut self,
        mut queue: VecDeque<String>,
        until: Instant,
        mut control: Option<&mut mpsc::UnboundedReceiver<Control>>,
    ) -> Result<(), Finish> {
        let hold = control.is_some();
        let acks = matches!(self.ack_mode(), AckMode::Wait(_));
        // Answers still due for earlier commands come before ours.
        let mut earlier = self.owed.forget_all() + self.in_flight.len() as u64;
        self.in_flight.clear();
        let mut ours: u64 = 0;
        loop {
            if !hold && queue.is_empty() && (!acks || ours == 0) {
                return Ok(());
            }
            let mut chunk = Vec::new();
            let mut count = 0;
            for line in &queue {
                if !chunk.is_empty() && chunk.len() + line.len() + 1 > PIPE_BUF {
                    break;
                }
                chunk.extend_from_slice(line.as_bytes());
                chunk.push(b'\n');
                count += 1;
            }
            tokio::select! {
                biased;
                Some(Control::Hurry) = async {
                    match control.as_mut() {
                        Some(control) => control.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    tracing::info!("drain cut short by a second signal: withdrawing now");
                    self.owed.count(earlier + if acks { ours } else { 0 });
                    return Ok(());
                }
                _ = sleep_until(until) => {
                    if hold && queue.is_empty() {
                        // The drain's time is up; its unanswered ACKs come before the next ones.
                        self.owed.count(earlier + if acks { ours } else { 0 });
                        return Ok(());
                    }
                    if queue.is_empty() {
                        tracing::warn!(missing = ours, "exiting before every command was acknowledged");
                    } else {
                        tracing::warn!(unsent = queue.len(), "exiting before every command was written: ExaBGP is not reading");
                    }
                    self.owed.count(earlier + ours);
                    return Ok(());
                }
                event = self.events.recv(), if self.stdin_open => match event {
                    Some(PipeEvent::Ack(_)) if earlier > 0 => earlier -= 1,
                    Some(PipeEvent::Ack(_)) => ours = ours.saturating_sub(1),
                    Some(PipeEvent::ErrorDetail(_) | PipeEvent::NeighborUp(_)) => {}
                    Some(PipeEvent::Version(found)) => {
                        if self.detector.answered(&found) != Decided::Nothing {
                            // A late answer names another dialect: everything written so far
                            // was in the fallback dialect, which this ExaBGP rejected, so it
                            // holds nothing of ours. Stop rather than write more of it.
                            tracing::info!("nothing of ours was accepted in the other dialect: nothing to withdraw");
                            return Err(Finish::Terminated);
                        }
                    }
                    Some(PipeEvent::Shutdown | PipeEvent::Eof) | None => return Err(Finish::Terminated),
                },
                written = self.sink.write_chunk(&chunk), if !chunk.is_empty() => match written {
                    Ok(()) => {
                        queue.drain(..count);
                        if acks {
                            ours += count as u64;
                        }
                    }
                    Err(_) => return Err(Finish::Terminated),
                },
            }
        }
    }
}

/// The pipe's end after a failed write.
fn broken(error: &std::io::Error) -> PipeEnd {
    if error.kind() != std::io::ErrorKind::BrokenPipe {
        tracing::error!(%error, "writing to ExaBGP failed");
    }
    PipeEnd::Broken
}
