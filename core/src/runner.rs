//! The loop that ties a probe to ExaBGP: schedule, check under a deadline, hysteresis, routes,
//! signals, the disable file, reload, and shutdown.
//!
//! One single-threaded tokio runtime. Every wait (the next check, the check itself, an ACK) is
//! raced against the events that end or change the run: SIGTERM/SIGINT (withdraw everything,
//! exit within 1.5 s), stdin EOF or ExaBGP's shutdown notice (exit at once, write nothing),
//! SIGHUP (reload the options and apply the difference), SIGUSR1 (log the current state),
//! SIGUSR2 (check now) and the refresh timer.

use std::collections::BTreeMap;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::{Instant, sleep_until, timeout};

use crate::exabgp::{Pipe, PipeEnd, spawn_reader};
use crate::health::{Observation, State};
use crate::hooks::Hooks;
use crate::probe::{Outcome, Probe};
use crate::render::{RouteAction, Target};
use crate::route::Prefix;
use crate::settings::{Settings, Timing};

/// How long after SIGTERM the withdraws may take: ExaBGP SIGKILLs its children after 2 s.
const TERMINATE_BUDGET: Duration = Duration::from_millis(1200);

/// Run one check under the timeout, turning a slow healthy answer into a degraded one.
pub async fn timed_check<P: Probe>(probe: &mut P, timing: &Timing) -> (Outcome, Duration) {
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

/// A random delay in `0..=max` (no extra crate: std's randomly keyed hasher is enough here).
fn splay(max: Duration) -> Duration {
    use std::hash::{BuildHasher, RandomState};
    if max.is_zero() {
        return Duration::ZERO;
    }
    let random = RandomState::new().hash_one(std::time::SystemTime::now());
    max.mul_f64((random % 10_000) as f64 / 10_000.0)
}

/// `1234 ms`, for reasons and logs.
pub fn millis(duration: Duration) -> String {
    format!("{} ms", duration.as_millis())
}

/// What interrupted a wait.
enum Interrupt {
    Terminate(&'static str),
    PipeEnded(PipeEnd),
    Reload,
    Refresh,
    DumpState,
    CheckNow,
}

/// Everything that can interrupt a wait, and the pipe.
struct Events {
    pipe: Pipe,
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
    user1: Signal,
    user2: Signal,
    refresh_at: Option<Instant>,
}

impl Events {
    /// Await `work`, unless something that ends or changes the run comes first.
    async fn race<T>(&mut self, work: impl Future<Output = T>) -> Result<T, Interrupt> {
        let refresh_at = self.refresh_at;
        tokio::select! {
            biased;
            _ = self.terminate.recv() => Err(Interrupt::Terminate("SIGTERM")),
            _ = self.interrupt.recv() => Err(Interrupt::Terminate("SIGINT")),
            end = self.pipe.idle_event() => Err(Interrupt::PipeEnded(end)),
            _ = self.hangup.recv() => Err(Interrupt::Reload),
            _ = self.user1.recv() => Err(Interrupt::DumpState),
            _ = self.user2.recv() => Err(Interrupt::CheckNow),
            _ = sleep_until(refresh_at.unwrap_or_else(Instant::now)), if refresh_at.is_some() => Err(Interrupt::Refresh),
            value = work => Ok(value),
        }
    }
}

/// The run's state apart from the probe (so a check can borrow the probe while this is used).
struct Core {
    settings: Settings,
    events: Events,
    hooks: Hooks,
    state: State,
    penalty: u32,
    last_reason: Option<String>,
    /// What ExaBGP was last told about each prefix.
    sent: BTreeMap<Prefix, RouteAction>,
}

/// Reload callback: re-read the options and build a new probe (SIGHUP).
pub type Reload<P> = Box<dyn FnMut() -> Result<(Settings, P), String>>;

/// Run `probe` under ExaBGP until a signal, EOF or the shutdown notice. Never returns otherwise.
pub async fn run<P: Probe>(mut probe: P, settings: Settings, mut reload: Reload<P>) -> ExitCode {
    let signals = (|| -> std::io::Result<_> {
        Ok((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
            signal(SignalKind::hangup())?,
            signal(SignalKind::user_defined1())?,
            signal(SignalKind::user_defined2())?,
        ))
    })();
    let (terminate, interrupt, hangup, user1, user2) = match signals {
        Ok(signals) => signals,
        Err(error) => {
            tracing::error!(%error, "cannot install signal handlers");
            return ExitCode::from(crate::app::EX_SOFTWARE);
        }
    };
    let pipe = Pipe::new(spawn_reader(tokio::io::stdin()), settings.ack);
    let refresh_at = settings
        .timing
        .refresh_interval
        .map(|every| Instant::now() + every);
    let hooks = Hooks::start(settings.timing.hook_timeout);
    let mut core = Core {
        events: Events {
            pipe,
            terminate,
            interrupt,
            hangup,
            user1,
            user2,
            refresh_at,
        },
        hooks,
        state: State::Init,
        penalty: 0,
        last_reason: None,
        sent: BTreeMap::new(),
        settings,
    };
    tracing::info!(
        target = %probe.target(),
        prefixes = core.settings.routes.prefixes.len(),
        rise = core.settings.hysteresis.rise,
        fall = core.settings.hysteresis.fall,
        interval = ?core.settings.timing.interval,
        ack = ?core.settings.ack,
        "starting"
    );
    let mut next_check = Instant::now();
    loop {
        match core.events.race(sleep_until(next_check)).await {
            Ok(()) => {}
            Err(Interrupt::Reload) => {
                if let Some(code) = core.reload(&mut probe, &mut reload).await {
                    return code;
                }
                continue;
            }
            Err(Interrupt::CheckNow) => {
                tracing::info!("SIGUSR2: checking now");
                next_check = Instant::now();
                continue;
            }
            Err(other) => match core.handle(other).await {
                Some(code) => return code,
                None => continue,
            },
        }
        let started = Instant::now();
        let disabled = core
            .settings
            .disable_file
            .as_deref()
            .is_some_and(|file| file.exists());
        let mut reload_pending = false;
        let outcome = if disabled {
            None
        } else {
            let timing = core.settings.timing;
            let check = timed_check(&mut probe, &timing);
            tokio::pin!(check);
            loop {
                match core.events.race(&mut check).await {
                    Ok(result) => break Some(result),
                    Err(Interrupt::Reload) => reload_pending = true,
                    Err(Interrupt::CheckNow) => {}
                    Err(other) => {
                        if let Some(code) = core.handle(other).await {
                            return code;
                        }
                    }
                }
            }
        };
        if let Some(code) = core.observe(outcome).await {
            return code;
        }
        if reload_pending && let Some(code) = core.reload(&mut probe, &mut reload).await {
            return code;
        }
        let interval = if core.state.is_transitional() {
            core.settings.timing.fast_interval
        } else {
            core.settings.timing.interval
        };
        next_check = (started + interval + splay(core.settings.timing.splay)).max(Instant::now());
    }
}

impl Core {
    /// Handle an interrupt that needs no probe. Returns the exit code when the run is over.
    async fn handle(&mut self, interrupt: Interrupt) -> Option<ExitCode> {
        match interrupt {
            Interrupt::Terminate(signal) => {
                let deadline = Instant::now() + TERMINATE_BUDGET;
                let lines: Vec<String> = self
                    .settings
                    .routes
                    .plan(Target::Gone)
                    .into_values()
                    .flat_map(|action| action.lines)
                    .collect();
                tracing::info!(
                    signal,
                    withdraws = lines.len(),
                    "terminating: withdrawing every prefix"
                );
                match self.events.pipe.send(&lines, Some(deadline)).await {
                    Ok(report) if report.missing > 0 => {
                        tracing::warn!(
                            missing = report.missing,
                            "exiting before every withdraw was acknowledged"
                        )
                    }
                    Ok(_) | Err(_) => {}
                }
                Some(ExitCode::SUCCESS)
            }
            Interrupt::PipeEnded(end) => {
                match end {
                    PipeEnd::Shutdown => tracing::info!("ExaBGP is shutting down; exiting"),
                    PipeEnd::Eof => tracing::info!("stdin closed: ExaBGP is gone; exiting"),
                    PipeEnd::Broken => tracing::debug!("stdout closed; exiting"),
                }
                Some(ExitCode::SUCCESS)
            }
            Interrupt::Refresh => {
                self.events.refresh_at = self
                    .settings
                    .timing
                    .refresh_interval
                    .map(|every| Instant::now() + every);
                let lines: Vec<String> = self
                    .sent
                    .values()
                    .flat_map(|action| action.lines.iter().cloned())
                    .collect();
                if !lines.is_empty() {
                    tracing::debug!(
                        commands = lines.len(),
                        "refresh: re-sending the current state"
                    );
                    return self.deliver(&lines).await;
                }
                None
            }
            Interrupt::DumpState => {
                let announced: Vec<String> = self
                    .sent
                    .iter()
                    .filter(|(_, action)| action.announce)
                    .map(|(prefix, _)| prefix.to_string())
                    .collect();
                tracing::info!(
                    state = %self.state,
                    last_reason = self.last_reason.as_deref().unwrap_or("none"),
                    penalty = self.penalty,
                    announced = %announced.join(" "),
                    "SIGUSR1: state dump"
                );
                None
            }
            Interrupt::Reload | Interrupt::CheckNow => None,
        }
    }

    /// Feed one result (None = disabled) to the state machine; announce what changed.
    async fn observe(&mut self, result: Option<(Outcome, Duration)>) -> Option<ExitCode> {
        let observation = match &result {
            None => Observation::Disabled,
            Some((outcome, _)) if outcome.is_serving() => Observation::Success,
            Some(_) => Observation::Failure,
        };
        if let Some((outcome, elapsed)) = &result {
            self.log_outcome(outcome, *elapsed);
            if outcome.is_serving() {
                self.penalty = match outcome {
                    Outcome::Degraded { penalty, .. } => {
                        penalty.unwrap_or(self.settings.timing.degraded_penalty)
                    }
                    _ => 0,
                };
            }
        }
        let next = self.settings.hysteresis.next(self.state, observation);
        if next.differs_from(self.state) {
            let reason = result
                .as_ref()
                .and_then(|(o, _)| o.reason().map(str::to_owned));
            let reason = reason.or_else(|| result.is_none().then(|| self.disable_reason()));
            tracing::info!(
                from = %self.state,
                to = %next,
                reason = reason.as_deref().unwrap_or("check passed"),
                "state change"
            );
            self.hooks.transition(&self.settings.hooks, next);
        }
        self.state = next;
        self.sync().await
    }

    /// "disable file X exists", with the file's first line when it has one (the operator's note).
    fn disable_reason(&self) -> String {
        let Some(file) = self.settings.disable_file.as_deref() else {
            return "disabled".into();
        };
        let note = std::fs::read(file)
            .map(|bytes| {
                let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
                let first = text.lines().next().unwrap_or("").trim().to_string();
                first
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            })
            .unwrap_or_default();
        if note.is_empty() {
            format!("disable file {} exists", file.display())
        } else {
            format!("disable file {} exists: {note}", file.display())
        }
    }

    fn log_outcome(&mut self, outcome: &Outcome, elapsed: Duration) {
        let reason = outcome.reason().map(str::to_owned);
        let changed = reason != self.last_reason;
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
        if changed && outcome == &Outcome::Healthy && self.last_reason.is_some() {
            tracing::info!(elapsed = %millis(elapsed), "check healthy again");
        }
        self.last_reason = reason;
    }

    /// What the routes should say now, if the state decides it.
    fn target(&self) -> Option<Target> {
        match self.state {
            State::Up => Some(Target::Up {
                penalty: self.penalty,
            }),
            State::Down => Some(Target::Down),
            State::Disabled => Some(Target::Disabled),
            _ => None,
        }
    }

    /// Send the commands for every prefix whose action differs from what ExaBGP was last told.
    async fn sync(&mut self) -> Option<ExitCode> {
        let target = self.target()?;
        let plan = self.settings.routes.plan(target);
        let changed: Vec<(Prefix, RouteAction)> = plan
            .into_iter()
            .filter(|(prefix, action)| self.sent.get(prefix) != Some(action))
            .collect();
        if changed.is_empty() {
            return None;
        }
        let lines: Vec<String> = changed
            .iter()
            .flat_map(|(_, a)| a.lines.iter().cloned())
            .collect();
        tracing::info!(
            state = %self.state,
            commands = lines.len(),
            first = %lines[0],
            "sending routes"
        );
        self.sent.extend(changed);
        self.deliver(&lines).await
    }

    /// Write `lines` and collect their ACKs; SIGTERM/SIGINT during the wait are served at once.
    async fn deliver(&mut self, lines: &[String]) -> Option<ExitCode> {
        let interrupt = match self.events.pipe.write(lines, None).await {
            Err(end) => Interrupt::PipeEnded(end),
            Ok(false) => return None,
            Ok(true) => {
                let events = &mut self.events;
                tokio::select! {
                    biased;
                    _ = events.terminate.recv() => Interrupt::Terminate("SIGTERM"),
                    _ = events.interrupt.recv() => Interrupt::Terminate("SIGINT"),
                    result = events.pipe.acks(lines, None) => match result {
                        Ok(report) => {
                            if report.errors > 0 {
                                tracing::error!(errors = report.errors, "ExaBGP rejected some commands (see above)");
                            }
                            return None;
                        }
                        Err(end) => Interrupt::PipeEnded(end),
                    },
                }
            }
        };
        Box::pin(self.handle(interrupt)).await
    }

    /// SIGHUP: re-read options; withdraw removed prefixes, (re)announce the rest as the state says.
    async fn reload<P: Probe>(
        &mut self,
        probe: &mut P,
        reload: &mut Reload<P>,
    ) -> Option<ExitCode> {
        let (settings, new_probe) = match reload() {
            Ok(loaded) => loaded,
            Err(message) => {
                tracing::error!(error = %message, "reload failed; keeping the running configuration");
                return None;
            }
        };
        let old_routes = std::mem::replace(&mut self.settings, settings).routes;
        *probe = new_probe;
        self.events.pipe.set_ack_mode(self.settings.ack);
        let gone: Vec<Prefix> = self
            .sent
            .keys()
            .filter(|prefix| !self.settings.routes.prefixes.contains(prefix))
            .copied()
            .collect();
        let withdraws = old_routes.plan(Target::Gone);
        let lines: Vec<String> = gone
            .iter()
            .filter(|prefix| self.sent.get(prefix).is_some_and(|a| a.announce))
            .filter_map(|prefix| withdraws.get(prefix))
            .flat_map(|action| action.lines.iter().cloned())
            .collect();
        for prefix in &gone {
            self.sent.remove(prefix);
        }
        tracing::info!(
            target = %probe.target(),
            prefixes = self.settings.routes.prefixes.len(),
            withdrawn = lines.len(),
            "configuration reloaded"
        );
        if let Some(code) = self.deliver(&lines).await {
            return Some(code);
        }
        self.events.refresh_at = self
            .settings
            .timing
            .refresh_interval
            .map(|every| Instant::now() + every);
        self.sync().await
    }
}

/// `--once`: run the check one time and print a Nagios-style status line.
pub async fn once<P: Probe>(mut probe: P, settings: &Settings) -> ExitCode {
    let label = settings.name.to_uppercase();
    if let Some(file) = settings.disable_file.as_deref().filter(|f| f.exists()) {
        crate::output::print_line(&format!(
            "{label} WARNING - disabled: maintenance file {} exists",
            file.display()
        ));
        return ExitCode::from(1);
    }
    let (outcome, elapsed) = timed_check(&mut probe, &settings.timing).await;
    let perf = format!("| time={:.3}s", elapsed.as_secs_f64());
    let target = probe.target();
    let (code, line) = match &outcome {
        Outcome::Healthy => (
            0,
            format!(
                "{label} OK - {target}: healthy in {} {perf}",
                millis(elapsed)
            ),
        ),
        Outcome::Degraded { reason, .. } => {
            (1, format!("{label} WARNING - {target}: {reason} {perf}"))
        }
        Outcome::Unhealthy { reason } => {
            (2, format!("{label} CRITICAL - {target}: {reason} {perf}"))
        }
    };
    crate::output::print_line(&line);
    ExitCode::from(code)
}
