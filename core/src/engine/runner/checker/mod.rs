//! The checker: runs the schedule (interval, fast interval, timeout, splay, check-now, the
//! disable file), feeds the hysteresis and publishes the routes it wants. It never waits for
//! ExaBGP: publishing is a `watch` send, which cannot block. While a check's outcome would
//! change nothing, its autopilot repeats it on a thread of its own (`steady.rs` says when,
//! `autopilot.rs` how).
//!
//! Filesystem work (the disable file, a SIGHUP reload reading the config, secrets and CA
//! stores) runs on the blocking pool under a timeout, so a hung NFS mount delays nothing here.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

mod autopilot;
mod disable;
mod reload;
mod required;
mod steady;
mod timed;

use super::listening::{Heard, Listening};
use super::wake::sleep_until;
use autopilot::Autopilot;
pub(crate) use autopilot::Grounding;
use disable::DisableFile;
use reload::Retired;
pub(crate) use reload::{Reload, ReloadError};
use timed::splay;
pub(crate) use timed::{millis, timed_check};

use crate::config::settings::Settings;
use crate::engine::dialect::ApiDialect;
use crate::engine::health::{Observation, State};
use crate::engine::hooks::Hooks;
use crate::engine::render::{RouteCommand, Target};
use crate::engine::require::{RequiredState, Requirements};
use crate::engine::route::Prefix;
use crate::engine::routing::{Event, Router};
use crate::engine::runner::shared::{Desired, Report, Settled};
use crate::probe::{Outcome, Probe};

/// How long a SIGHUP reload may take before the running configuration is kept.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// What the supervisor forwards to the checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// SIGHUP: re-read the configuration.
    Reload,
    /// SIGUSR2: check now.
    CheckNow,
}

/// The schedule, the hysteresis and the routes it implies.
pub(crate) struct Checker<P> {
    probe: P,
    settings: Settings,
    reload: Arc<Mutex<Reload<P>>>,
    reloading: Option<JoinHandle<Result<(Settings, P), ReloadError>>>,
    hooks: Hooks,
    desired: watch::Sender<Desired>,
    status: Rc<RefCell<Report>>,
    requests: mpsc::UnboundedReceiver<Request>,
    /// The hysteresis with drain and flap damping: what the routes should say.
    router: Router,
    /// Prefixes a reload removed that ExaBGP may still hold: their drain (with `--drain`) and
    /// their withdraw, rendered under the configuration they came from.
    retired: BTreeMap<Prefix, Retired>,
    /// The dialect ExaBGP was found to speak with `--exabgp-api auto` (the deliverer asks),
    /// kept across reloads.
    detected: Option<ApiDialect>,
    dialect: watch::Receiver<Option<ApiDialect>>,
    /// The disable file's last answer (kept when it cannot be read in time), and when to look
    /// it up again.
    disable: DisableFile,
    /// The required probes (`--require`), watched; their verdict is applied at once.
    required: Requirements,
    /// Their verdict as last applied.
    required_verdict: RequiredState,
    /// The probe's watcher (`--events`) and what it heard.
    listening: Listening,
    /// The deliverer's reports of retired prefixes ExaBGP holds nothing for.
    settled: mpsc::UnboundedReceiver<Settled>,
    /// The configuration's generation ([`Desired::generation`]): a reload or a dialect
    /// change makes a new one.
    generation: u64,
    /// What the routes were last rendered from, to render them again only when it changes.
    rendered: Option<Rendered>,
    /// The probe's steady check, flown on a thread while nothing changes (`steady.rs`).
    autopilot: Autopilot,
    /// The last check's outcome (`None` after a disabled one or a reload), and whether it
    /// repeated the one before.
    last_outcome: Option<Outcome>,
    repeated: bool,
}

#[cfg(test)]
thread_local! {
    /// How many retired prefixes the checker keeps (a test checks reloads cannot grow it).
    pub(in crate::engine::runner) static RETIRED_KEPT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The inputs of the last rendered routes: the same inputs give the same commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rendered {
    target: Option<Target>,
    drain_on_exit: Option<(Target, Duration)>,
    retired_draining: bool,
    generation: u64,
    retired_count: usize,
}

/// The checker's ends of what joins it to the supervisor and the deliverer.
pub(crate) struct Links {
    /// Where it publishes the routes it wants.
    pub(crate) desired: watch::Sender<Desired>,
    /// Where it reports for the state dump.
    pub(crate) status: Rc<RefCell<Report>>,
    /// What the supervisor forwards (SIGHUP, SIGUSR2).
    pub(crate) requests: mpsc::UnboundedReceiver<Request>,
    /// The dialect the deliverer found ExaBGP speaks.
    pub(crate) dialect: watch::Receiver<Option<ApiDialect>>,
    /// Retired prefixes the deliverer found ExaBGP holds nothing for.
    pub(crate) settled: mpsc::UnboundedReceiver<Settled>,
}

impl<P: Probe + Send + 'static> Checker<P> {
    /// A checker of `probe`, publishing to `links.desired`.
    pub(crate) fn new(probe: P, settings: Settings, reload: Reload<P>, links: Links) -> Self {
        let Links {
            desired,
            status,
            requests,
            dialect,
            settled,
        } = links;
        let hooks = Hooks::start(settings.timing.hook_timeout);
        let router = Router::new(settings.hysteresis, settings.safety);
        let required = Requirements::new(&settings.require, settings.observe.state_file.as_deref());
        let listening = Listening::start(&probe, settings.timing.events);
        let autopilot = Autopilot::new(probe.steady(), Grounding::default());
        Checker {
            probe,
            settings,
            reload: Arc::new(Mutex::new(reload)),
            reloading: None,
            hooks,
            desired,
            status,
            requests,
            router,
            retired: BTreeMap::new(),
            detected: None,
            dialect,
            disable: DisableFile::default(),
            required,
            required_verdict: RequiredState::Up,
            listening,
            settled,
            generation: 0,
            rendered: None,
            autopilot,
            last_outcome: None,
            repeated: false,
        }
    }

    /// What stops the autopilot's checks from outside (the supervisor at SIGTERM).
    pub(crate) fn grounding(&self) -> Grounding {
        self.autopilot.grounding()
    }

    /// Check forever (the supervisor stops polling this future to stop).
    pub(crate) async fn run(mut self) -> Infallible {
        tracing::info!(
            target = %self.probe.describe(),
            prefixes = self.settings.routes.prefixes.len(),
            rise = self.settings.hysteresis.rise,
            fall = self.settings.hysteresis.fall,
            interval = ?self.settings.timing.interval,
            ack = ?self.settings.ack,
            "starting"
        );
        let mut next_check = Instant::now();
        if !self.required.is_empty() {
            self.required_changed();
        }
        loop {
            loop {
                self.fly_if_steady(next_check);
                let timer = self.next_timer();
                let flying = self.autopilot.is_flying();
                // Every branch but the autopilot's own landing first lands it (`steady.rs`).
                tokio::select! {
                    biased;
                    Some(request) = self.requests.recv() => {
                        self.land(&mut next_check).await;
                        match request {
                            Request::Reload => self.reload().await,
                            Request::CheckNow => {
                                tracing::info!("SIGUSR2: checking now");
                                next_check = Instant::now();
                            }
                        }
                    }
                    Ok(()) = self.dialect.changed() => {
                        self.land(&mut next_check).await;
                        self.dialect_found();
                    }
                    // Guarded: with nothing to watch, each poll would still cost a lock at every
                    // check.
                    () = self.required.changed(), if !self.required.is_empty() => {
                        self.land(&mut next_check).await;
                        if self.required_changed() {
                            next_check = Instant::now();
                        }
                    }
                    heard = self.listening.next(), if self.listening.may_hear() => {
                        self.land(&mut next_check).await;
                        if self.hear(heard) {
                            next_check = Instant::now();
                        }
                    }
                    Some(settled) = self.settled.recv() => {
                        self.land(&mut next_check).await;
                        self.forget_retired(settled);
                    }
                    _ = sleep_until(timer.unwrap_or(next_check)), if timer.is_some_and(|t| t < next_check) => {
                        self.land(&mut next_check).await;
                        self.on_timer();
                    }
                    landing = self.autopilot.landed(), if flying => self.touch_down(landing, &mut next_check),
                    _ = sleep_until(next_check), if !flying => break,
                }
            }
            let started = Instant::now();
            let disabled = self
                .disabled()
                .await
                .or_else(|| self.required_maintenance());
            let mut reload_pending = false;
            let mut check_now = false;
            let mut required_down = false;
            let mut required_pending = false;
            let mut heard = Heard::default();
            // In maintenance the check runs only while a drain does (a failure ends it).
            let result = if disabled.is_some() && !self.router.checks_in_maintenance() {
                None
            } else {
                let timing = self.settings.timing;
                let check = timed_check(&mut self.probe, &timing);
                tokio::pin!(check);
                loop {
                    tokio::select! {
                        biased;
                        Some(request) = self.requests.recv() => {
                            reload_pending |= request == Request::Reload;
                            check_now |= request == Request::CheckNow;
                        }
                        // A required probe going DOWN fails the route now, not when the check
                        // ends (only going: a DOWN one's new reason must not starve the check).
                        () = self.required.changed(), if !self.required.is_empty() => {
                            required_pending = true;
                            if matches!(self.required.verdict(), RequiredState::Down(_))
                                && !matches!(self.required_verdict, RequiredState::Down(_))
                            {
                                required_down = true;
                                break None;
                            }
                        }
                        // A check that answered is taken first: it has started, so the next
                        // one is scheduled from it.
                        result = &mut check => break Some(result),
                        // The service saying it is not serving drops the check in flight (its
                        // result would be older than that word); a suspicion waits for it.
                        batch = self.listening.next(), if self.listening.may_hear() => {
                            let not_serving = batch.not_serving.is_some();
                            heard.merge(batch);
                            if not_serving {
                                break None;
                            }
                        }
                    }
                }
            };
            let dropped_for_not_serving = heard.not_serving.is_some() && result.is_none();
            // A required probe changed during the check: apply it now. When it went DOWN the
            // check in flight was dropped: check again at once (the own hysteresis goes on).
            let required_check_now = required_pending && self.required_changed();
            if required_down {
                self.hear(heard);
                // A SIGHUP that came during the dropped check is still served.
                if reload_pending {
                    self.reload().await;
                }
                next_check = Instant::now();
                continue;
            }
            if dropped_for_not_serving {
                self.hear(heard);
                if reload_pending {
                    self.reload().await;
                }
                // A SIGUSR2 that came during the dropped check is still served.
                next_check = if check_now {
                    Instant::now()
                } else {
                    started + self.settings.timing.down_interval
                };
                continue;
            }
            self.observe(result, disabled);
            let heard_check_now = self.hear(heard);
            crate::observe::logging::report_dropped_lines();
            if self.dialect.has_changed().unwrap_or(false) {
                self.dialect_found();
            }
            if reload_pending {
                self.reload().await;
            }
            next_check = self.next_check_after(started);
            if check_now {
                tracing::info!("SIGUSR2: checking now");
                next_check = Instant::now();
            }
            if required_check_now || heard_check_now {
                next_check = Instant::now();
            }
        }
    }

    /// The interval the router's state asks for: fast while it moves, `--down-interval` DOWN.
    fn interval(&self) -> Duration {
        let timing = &self.settings.timing;
        if self.router.wants_fast_checks() {
            timing.fast_interval
        } else if self.router.schedule_state() == State::Down {
            timing.down_interval
        } else {
            timing.interval
        }
    }

    /// When the check after one that started at `started` is due.
    fn next_check_after(&self, started: Instant) -> Instant {
        (started + self.interval() + splay(self.settings.timing.splay)).max(Instant::now())
    }

    /// `Some(reason)` when the disable file exists (`disable.rs`).
    async fn disabled(&mut self) -> Option<String> {
        let file = self.settings.disable_file.as_deref();
        self.disable.look(file).await
    }

    /// Log, report and hook a change of state by name since `from`.
    fn transitioned(&mut self, from: State, reason: &str) {
        let to = self.router.state();
        if to.differs_from(from) {
            tracing::info!(from = %from, to = %to, reason, "state change");
            self.status.borrow().observer.transition(to);
            self.hooks.transition(&self.settings.hooks, to);
        }
    }

    /// The deliverer found (or changed) the dialect ExaBGP speaks: render the routes in it.
    fn dialect_found(&mut self) {
        let Some(dialect) = *self.dialect.borrow_and_update() else {
            return;
        };
        self.detected = Some(dialect);
        if self.settings.routes.dialect == dialect {
            return;
        }
        self.settings.routes.dialect = dialect;
        self.generation += 1;
        let settings = &self.settings;
        let generation = self.generation;
        self.retired.clear();
        self.desired.send_modify(|desired| {
            desired.dialect = dialect;
            desired.farewell = settings.routes.plan(Target::Gone);
            desired.generation = generation;
        });
        self.publish();
    }

    /// Feed one result (None = disabled) to the router; publish what to announce.
    fn observe(&mut self, result: Option<(Outcome, Duration)>, disabled: Option<String>) {
        let (checked, penalty) = match &result {
            None => (Observation::Disabled, 0),
            Some((outcome, _)) => {
                steady::observation_of(outcome, self.settings.timing.degraded_penalty)
            }
        };
        let observation = if disabled.is_some() {
            Observation::Disabled
        } else {
            checked
        };
        if let Some((outcome, elapsed)) = &result {
            self.log_outcome(outcome, *elapsed);
        }
        self.remember(
            result.as_ref().map(|(outcome, _)| outcome),
            disabled.is_some(),
        );
        let from = self.router.state();
        let (to, mut events) = self.router.observe(Instant::now(), observation, penalty);
        if disabled.is_some() {
            events.extend(self.router.observe_during_drain(checked, penalty));
        }
        let (held, gauges) = (self.router.is_held(), self.probe.gauges());
        (self.status.borrow().observer).checked(
            result.as_ref(),
            disabled.as_deref(),
            to,
            held,
            gauges,
        );
        if to.differs_from(from) {
            let reason = match &result {
                _ if to == State::Down
                    && matches!(self.required_verdict, RequiredState::Down(_)) =>
                {
                    self.required_verdict.reason().map(str::to_owned)
                }
                Some((outcome, _)) if disabled.is_none() => outcome.reason().map(str::to_owned),
                _ => disabled,
            };
            tracing::info!(
                from = %from,
                to = %to,
                reason = reason.as_deref().unwrap_or("check passed"),
                "state change"
            );
            self.status.borrow().observer.transition(to);
            self.hooks.transition(&self.settings.hooks, to);
        }
        self.log_events(&events);
        self.publish();
    }

    /// Apply what the watcher heard (`--events`): the service saying it is not serving is
    /// DOWN at once (a failure seen during a maintenance drain ends it); a suspicion asks for
    /// a check now and `--fall` fast ones, once per suspicion window (a flood of them is one
    /// check, then the fast schedule). Returns whether to check now.
    fn hear(&mut self, heard: Heard) -> bool {
        let observer = self.status.borrow().observer.clone();
        for (kind, count, reason) in heard.each() {
            observer.event(kind, count, reason);
        }
        if let Some(reason) = &heard.not_serving {
            let from = self.router.state();
            let events = if from == State::Disabled {
                self.router.observe_during_drain(Observation::NotServing, 0)
            } else {
                self.router
                    .observe(Instant::now(), Observation::NotServing, 0)
                    .1
            };
            if self.router.state().differs_from(from) || !events.is_empty() {
                tracing::warn!(kind = "authoritative", events = heard.counts[0], reason = %reason, "the service says it is not serving");
            } else {
                tracing::debug!(kind = "authoritative", events = heard.counts[0], reason = %reason, "event");
            }
            self.transitioned(from, reason);
            self.log_events(&events);
            self.publish();
        }
        let Some(reason) = &heard.suspicion else {
            return false;
        };
        let in_window = self.router.wants_fast_checks();
        self.router.suspect();
        if in_window {
            tracing::debug!(kind = "suspicion", events = heard.counts[1], reason = %reason, "event");
            return false;
        }
        tracing::info!(kind = "suspicion", events = heard.counts[1], reason = %reason, "event: checking now");
        true
    }

    /// The next drain or hold deadline.
    fn next_timer(&self) -> Option<Instant> {
        self.router.next_timer()
    }

    /// A drain or a hold ended: apply the final action now, without waiting for a check.
    fn on_timer(&mut self) {
        let now = Instant::now();
        let from = self.router.state();
        let events = self.router.tick(now);
        self.transitioned(from, "flap hold over");
        self.log_events(&events);
        self.publish();
    }

    fn log_events(&self, events: &[Event]) {
        for event in events {
            match event {
                Event::DrainStarted { until } => tracing::info!(
                    drain = ?until.saturating_duration_since(Instant::now()),
                    community = %self.settings.routes.drain_community,
                    "maintenance: draining (graceful shutdown community) before the final action"
                ),
                Event::DrainCancelled => {
                    tracing::info!("maintenance ended during the drain: announcing normally")
                }
                Event::DrainDone => tracing::info!("drain over: applying the maintenance action"),
                Event::Held {
                    changes,
                    window,
                    until,
                } => {
                    let hold = until.saturating_duration_since(Instant::now());
                    let held_until = wall_clock_after(hold);
                    tracing::warn!(
                        "flapping: {changes} changes in {window:?}, held down until {held_until}"
                    );
                }
                Event::Released => tracing::info!("flap hold over: starting afresh from INIT"),
                Event::DrainAborted => {
                    tracing::warn!("the service failed during the drain: ending the drain now")
                }
                Event::RetiredDrainDone => tracing::info!(
                    "drain of the prefixes removed by the reload is over: withdrawing them"
                ),
            }
        }
        let mut status = self.status.borrow_mut();
        status.state = self.router.state();
        status.held = self.router.is_held();
    }

    /// Publish the routes of the decided target under the current settings.
    fn publish(&mut self) {
        let target = self.router.target();
        if let Some(Target::Up { penalty } | Target::Draining { penalty }) = target {
            self.status.borrow_mut().penalty = penalty;
        }
        self.publish_health(target);
        let draining = matches!(self.router.retired_target(), Target::Draining { .. });
        // Most checks change nothing: render the commands only when what they come from did.
        let rendered = Some(Rendered {
            target,
            drain_on_exit: self.router.drain_on_exit(),
            retired_draining: draining,
            generation: self.generation,
            retired_count: self.retired.len(),
        });
        #[cfg(test)]
        RETIRED_KEPT.with(|kept| kept.set(self.retired.len()));
        if self.rendered == rendered {
            return;
        }
        self.rendered = rendered;
        let plan = target.map(|target| self.settings.routes.plan(target));
        let drain_on_exit = self
            .router
            .drain_on_exit()
            .map(|(target, length)| (self.settings.routes.plan(target), length));
        let retired: BTreeMap<Prefix, RouteCommand> = self
            .retired
            .iter()
            .map(|(prefix, plans)| {
                let action = match (&plans.drain, draining) {
                    (Some(drain), true) => drain.clone(),
                    _ => plans.withdraw.clone(),
                };
                (*prefix, action)
            })
            .collect();
        self.desired.send_if_modified(|desired| {
            let changed = desired.routes != plan
                || desired.drain_on_exit != drain_on_exit
                || desired.retired != retired;
            desired.routes = plan;
            desired.drain_on_exit = drain_on_exit;
            desired.retired = retired;
            changed
        });
    }

    /// The deliverer found that ExaBGP holds nothing of ours for a retired prefix: forget it
    /// (its withdraw leaves the SIGTERM farewell too), so reloads cannot grow what is kept.
    fn forget_retired(&mut self, settled: Settled) {
        if settled.generation != self.generation || self.retired.remove(&settled.prefix).is_none() {
            return;
        }
        let prefix = settled.prefix;
        let configured = self.settings.routes.prefixes.contains(&prefix);
        self.desired.send_modify(|desired| {
            if !configured {
                desired.farewell.remove(&prefix);
            }
        });
        self.publish();
    }

    /// What the routes say, in the state file, for the probes requiring this one.
    fn publish_health(&self, target: Option<Target>) {
        let status = self.status.borrow();
        let required = self.required_verdict.reason().map(str::to_owned);
        let reason = match target {
            Some(Target::Disabled | Target::Draining { .. }) => {
                self.disable.note().map(str::to_owned).or(required)
            }
            Some(Target::Down) if matches!(self.required_verdict, RequiredState::Down(_)) => {
                required
            }
            Some(Target::Up { .. }) => status.last_reason.clone().or(required),
            _ => status.last_reason.clone(),
        };
        status
            .observer
            .health(&RequiredState::of_target(target, reason.as_deref()));
    }

    fn log_outcome(&mut self, outcome: &Outcome, elapsed: Duration) {
        let reason = outcome.reason().map(str::to_owned);
        let mut status = self.status.borrow_mut();
        let changed = reason != status.last_reason;
        match outcome {
            Outcome::Healthy => tracing::debug!(elapsed = %millis(elapsed), "check healthy"),
            Outcome::Degraded { reason, .. } if changed => {
                tracing::warn!(elapsed = %millis(elapsed), reason, "check degraded")
            }
            Outcome::Unhealthy { reason } if changed || self.router.state() != State::Down => {
                tracing::warn!(elapsed = %millis(elapsed), reason, "check failed")
            }
            _ => tracing::debug!(elapsed = %millis(elapsed), reason = reason.as_deref(), "check"),
        }
        if changed && outcome == &Outcome::Healthy && status.last_reason.is_some() {
            tracing::info!(elapsed = %millis(elapsed), "check healthy again");
        }
        status.last_reason = reason;
    }
}

/// Run file-system work on the blocking pool, so a hung mount delays no check or signal. Under
/// the in-process tests (tokio's paused clock) it runs as a task instead: a blocking thread's
/// completion races the paused clock's auto-advance, which would make a simulated run depend
/// on the machine's load instead of its seed.
fn off_the_runtime<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> JoinHandle<R> {
    if cfg!(test) {
        tokio::task::spawn(async move { work() })
    } else {
        tokio::task::spawn_blocking(work)
    }
}

/// The UTC wall-clock time `after` from now, `2026-11-25T19:30:00Z`, for the flap-hold log line.
fn wall_clock_after(after: Duration) -> String {
    crate::observe::clock::rfc3339(std::time::SystemTime::now() + after)
}
