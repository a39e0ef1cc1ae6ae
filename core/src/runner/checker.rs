//! The checker: runs the schedule (interval, fast interval, timeout, splay, check-now, the
//! disable file), feeds the hysteresis and publishes the routes it wants. It never waits for
//! ExaBGP: publishing is a `watch` send, which cannot block.
//!
//! Filesystem work (the disable file, a SIGHUP reload reading the config, secrets and CA
//! stores) runs on the blocking pool under a timeout, so a hung NFS mount delays nothing here.

use std::cell::RefCell;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};

use crate::health::{Observation, State};
use crate::hooks::Hooks;
use crate::probe::{Outcome, Probe};
use crate::render::Target;
use crate::route::Prefix;
use crate::runner::shared::{Desired, Status};
use crate::settings::{Settings, Timing};

/// How long the disable file may take to answer before the previous maintenance state is kept.
const DISABLE_FILE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a SIGHUP reload may take before the running configuration is kept.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of the disable file is read for the operator's note.
const NOTE_BYTES: usize = 512;

/// Reload callback: re-read the options and build a new probe (SIGHUP). Runs on the blocking
/// pool, so it may read files.
pub type Reload<P> = Box<dyn FnMut() -> Result<(Settings, P), String> + Send>;

/// What the supervisor forwards to the checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// SIGHUP: re-read the configuration.
    Reload,
    /// SIGUSR2: check now.
    CheckNow,
}

/// Run one check under the timeout, turning a slow healthy answer into a degraded one.
pub(crate) async fn timed_check<P: Probe>(probe: &mut P, timing: &Timing) -> (Outcome, Duration) {
    let started = Instant::now();
    let result = timeout(timing.timeout, probe.check()).await;
    let elapsed = started.elapsed();
    let outcome = match result {
        Err(_) => Outcome::unhealthy(format!("timed out after {}", millis(timing.timeout))),
        Ok(Outcome::Healthy) => match timing.degraded_latency {
            Some(limit) if elapsed > limit => Outcome::degraded(format!(
                "slow: answered in {}, over --degraded-latency {}",
                millis(elapsed),
                millis(limit)
            )),
            _ => Outcome::Healthy,
        },
        Ok(other) => other,
    };
    (outcome, elapsed)
}

/// `1234 ms`, for reasons and logs.
pub(crate) fn millis(duration: Duration) -> String {
    format!("{} ms", duration.as_millis())
}

/// A random delay in `0..=max` (no extra crate: std's randomly keyed hasher is enough here).
fn splay(max: Duration) -> Duration {
    use std::hash::{BuildHasher, RandomState};
    if max.is_zero() {
        return Duration::ZERO;
    }
    let random = RandomState::new().hash_one(std::time::SystemTime::now());
    max.mul_f64((random % 10_000) as f64 / 10_000.0)
}

/// The schedule, the hysteresis and the routes it implies.
pub(crate) struct Checker<P> {
    probe: P,
    settings: Settings,
    reload: Arc<Mutex<Reload<P>>>,
    reloading: Option<JoinHandle<Result<(Settings, P), String>>>,
    hooks: Hooks,
    desired: watch::Sender<Desired>,
    status: Rc<RefCell<Status>>,
    requests: mpsc::UnboundedReceiver<Request>,
    state: State,
    /// The target last published (kept through RISING/FALLING, re-planned on reload).
    decided: Option<Target>,
    /// A disable-file look-up still running (a hung file system): awaited, never duplicated.
    disable_lookup: Option<JoinHandle<Option<String>>>,
    /// The maintenance state last seen, kept when the disable file cannot be read in time.
    disabled_note: Option<String>,
}

impl<P: Probe + Send + 'static> Checker<P> {
    /// A checker of `probe`, publishing to `desired`.
    pub(crate) fn new(
        probe: P,
        settings: Settings,
        reload: Reload<P>,
        desired: watch::Sender<Desired>,
        status: Rc<RefCell<Status>>,
        requests: mpsc::UnboundedReceiver<Request>,
    ) -> Self {
        let hooks = Hooks::start(settings.timing.hook_timeout);
        Checker {
            probe,
            settings,
            reload: Arc::new(Mutex::new(reload)),
            reloading: None,
            hooks,
            desired,
            status,
            requests,
            state: State::Init,
            decided: None,
            disable_lookup: None,
            disabled_note: None,
        }
    }

    /// Check forever (the supervisor stops polling this future to stop).
    pub(crate) async fn run(mut self) -> Infallible {
        tracing::info!(
            target = %self.probe.target(),
            prefixes = self.settings.routes.prefixes.len(),
            rise = self.settings.hysteresis.rise,
            fall = self.settings.hysteresis.fall,
            interval = ?self.settings.timing.interval,
            ack = ?self.settings.ack,
            "starting"
        );
        let mut next_check = Instant::now();
        loop {
            loop {
                tokio::select! {
                    biased;
                    Some(request) = self.requests.recv() => match request {
                        Request::Reload => self.reload().await,
                        Request::CheckNow => {
                            tracing::info!("SIGUSR2: checking now");
                            next_check = Instant::now();
                        }
                    },
                    _ = sleep_until(next_check) => break,
                }
            }
            let started = Instant::now();
            let disabled = self.disabled().await;
            let mut reload_pending = false;
            let result = if disabled.is_some() {
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
                        }
                        result = &mut check => break Some(result),
                    }
                }
            };
            self.observe(result, disabled);
            crate::logging::report_dropped_lines();
            if reload_pending {
                self.reload().await;
            }
            let interval = if self.state.is_transitional() {
                self.settings.timing.fast_interval
            } else {
                self.settings.timing.interval
            };
            next_check =
                (started + interval + splay(self.settings.timing.splay)).max(Instant::now());
        }
    }

    /// `Some(reason)` when the disable file exists, looked up off the runtime thread.
    async fn disabled(&mut self) -> Option<String> {
        let file = self.settings.disable_file.clone()?;
        let mut lookup = self
            .disable_lookup
            .take()
            .unwrap_or_else(|| tokio::task::spawn_blocking(move || look_up_disable_file(&file)));
        match timeout(DISABLE_FILE_TIMEOUT, &mut lookup).await {
            Ok(Ok(note)) => self.disabled_note = note,
            Ok(Err(error)) => tracing::error!(%error, "the disable file look-up failed"),
            Err(_) => {
                tracing::warn!(
                    timeout = ?DISABLE_FILE_TIMEOUT,
                    "the disable file did not answer in time; keeping the previous maintenance state"
                );
                self.disable_lookup = Some(lookup);
            }
        }
        self.disabled_note.clone()
    }

    /// Feed one result (None = disabled) to the state machine; publish what to announce.
    fn observe(&mut self, result: Option<(Outcome, Duration)>, disabled: Option<String>) {
        let observation = match &result {
            None => Observation::Disabled,
            Some((outcome, _)) if outcome.is_serving() => Observation::Success,
            Some(_) => Observation::Failure,
        };
        if let Some((outcome, elapsed)) = &result {
            self.log_outcome(outcome, *elapsed);
            if outcome.is_serving() {
                let penalty = match outcome {
                    Outcome::Degraded { penalty, .. } => {
                        penalty.unwrap_or(self.settings.timing.degraded_penalty)
                    }
                    _ => 0,
                };
                self.status.borrow_mut().penalty = penalty;
            }
        }
        let next = self.settings.hysteresis.next(self.state, observation);
        if next.differs_from(self.state) {
            let reason = match &result {
                Some((outcome, _)) => outcome.reason().map(str::to_owned),
                None => disabled,
            };
            tracing::info!(
                from = %self.state,
                to = %next,
                reason = reason.as_deref().unwrap_or("check passed"),
                "state change"
            );
            self.hooks.transition(&self.settings.hooks, next);
        }
        self.state = next;
        self.status.borrow_mut().state = next;
        let penalty = self.status.borrow().penalty;
        let target = match self.state {
            State::Up => Some(Target::Up { penalty }),
            State::Down => Some(Target::Down),
            State::Disabled => Some(Target::Disabled),
            _ => None,
        };
        if target.is_some() {
            self.decided = target;
        }
        self.publish();
    }

    /// Publish the routes of the decided target under the current settings.
    fn publish(&mut self) {
        let Some(target) = self.decided else {
            return;
        };
        let plan = self.settings.routes.plan(target);
        self.desired.send_if_modified(|desired| {
            if desired.routes.as_ref() == Some(&plan) {
                return false;
            }
            desired.routes = Some(plan);
            true
        });
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
            Outcome::Unhealthy { reason } if changed || !matches!(self.state, State::Down) => {
                tracing::warn!(elapsed = %millis(elapsed), reason, "check failed")
            }
            _ => tracing::debug!(elapsed = %millis(elapsed), reason = reason.as_deref(), "check"),
        }
        if changed && outcome == &Outcome::Healthy && status.last_reason.is_some() {
            tracing::info!(elapsed = %millis(elapsed), "check healthy again");
        }
        status.last_reason = reason;
    }

    /// SIGHUP: re-read the options off the runtime thread; withdraw removed prefixes and
    /// re-plan the rest. A failed or hung reload keeps the running configuration.
    async fn reload(&mut self) {
        if self
            .reloading
            .as_ref()
            .is_some_and(|job| !job.is_finished())
        {
            tracing::warn!("SIGHUP: the previous reload is still running; ignored");
            return;
        }
        let mut job = match self.reloading.take() {
            Some(finished) => finished,
            None => {
                let reload = Arc::clone(&self.reload);
                tokio::task::spawn_blocking(move || {
                    let mut reload = reload
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    reload()
                })
            }
        };
        let loaded = match timeout(RELOAD_TIMEOUT, &mut job).await {
            Ok(Ok(Ok(loaded))) => loaded,
            Ok(Ok(Err(message))) => {
                tracing::error!(error = %message, "reload failed; keeping the running configuration");
                return;
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "reload failed; keeping the running configuration");
                return;
            }
            Err(_) => {
                tracing::error!(
                    timeout = ?RELOAD_TIMEOUT,
                    "reload did not finish in time (a hung file system?); keeping the running configuration"
                );
                self.reloading = Some(job);
                return;
            }
        };
        self.apply(loaded);
    }

    fn apply(&mut self, (settings, probe): (Settings, P)) {
        let old = std::mem::replace(&mut self.settings, settings);
        self.probe = probe;
        let withdraws = old.routes.plan(Target::Gone);
        let kept = |prefix: &Prefix| self.settings.routes.prefixes.contains(prefix);
        let accepted = self.status.borrow().accepted.clone();
        let mut retired = self.desired.borrow().retired.clone();
        // Forget withdraws already delivered, so reloads cannot grow this without bound.
        retired.retain(|prefix, _| {
            !kept(prefix) && accepted.get(prefix).is_some_and(|d| d.action.announce)
        });
        let removed: Vec<Prefix> = old
            .routes
            .prefixes
            .iter()
            .filter(|prefix| !kept(prefix))
            .copied()
            .collect();
        for prefix in &removed {
            if let Some(action) = withdraws.get(prefix) {
                retired.insert(*prefix, action.clone());
            }
        }
        tracing::info!(
            target = %self.probe.target(),
            prefixes = self.settings.routes.prefixes.len(),
            removed = removed.len(),
            "configuration reloaded"
        );
        let routes = self.decided.map(|target| self.settings.routes.plan(target));
        let settings = &self.settings;
        self.desired.send_modify(|desired| {
            desired.routes = routes;
            desired.retired = retired;
            desired.farewell = settings.routes.plan(Target::Gone);
            desired.ack = settings.ack;
            desired.refresh = settings.timing.refresh_interval;
        });
    }
}

/// `Some(reason)` when `file` exists: "disable file X exists", with the first line of the file
/// when it has one (the operator's note). Reads only a regular file, and only its first bytes.
fn look_up_disable_file(file: &Path) -> Option<String> {
    use std::io::Read as _;
    let metadata = std::fs::metadata(file).ok()?;
    let mut note = String::new();
    if metadata.is_file()
        && let Ok(opened) = std::fs::File::open(file)
    {
        let mut bytes = Vec::with_capacity(NOTE_BYTES);
        let _ = opened.take(NOTE_BYTES as u64).read_to_end(&mut bytes);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        note = text
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
    }
    let file = PathBuf::from(file);
    Some(if note.is_empty() {
        format!("disable file {} exists", file.display())
    } else {
        format!("disable file {} exists: {note}", file.display())
    })
}
