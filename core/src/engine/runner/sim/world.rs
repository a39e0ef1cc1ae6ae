//! One simulated run: the case (options and steps), the service, the driver, and the model
//! that checks the invariants of `super`'s specification after every step.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use tokio::sync::mpsc;
use tokio::task::LocalSet;
use tokio::time::{Instant, sleep_until};

use super::Rng;
use super::exabgp::{Answering, FakeExabgp, Held, Version, VersionAnswer};
use crate::config::settings::{ModeFlags, Settings};
use crate::engine::output::CommandSink;
use crate::engine::output::memory::MemoryPipe;
use crate::engine::runner::{Reload, RunIo, Signal, run_with};
use crate::probe::{Outcome, Probe};

const UP_MED: u32 = 100;
const PENALTY: u32 = 200;
const DISABLED_MED: u32 = 500;
const DOWN_MED: u32 = 1000;
/// Scheduling slack the model allows on top of its bounds.
const SLACK: Duration = Duration::from_millis(60);

/// The simulated service's behaviour at a check's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Health {
    Healthy,
    Degraded,
    /// Healthy but slower than `--degraded-latency`.
    Slow,
    Failing,
    /// Never answers: the check times out.
    Hang,
}

impl Health {
    fn failing(self) -> bool {
        matches!(self, Health::Failing | Health::Hang)
    }

    fn degraded(self) -> bool {
        matches!(self, Health::Degraded | Health::Slow)
    }
}

/// One event of a sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// Let time pass.
    Advance(Duration),
    Service(Health),
    Answering(Answering),
    /// ExaBGP reads its pipe (true) or stalls (false).
    Reading(bool),
    /// ExaBGP closes the probe's stdin.
    Eof,
    Maintenance(bool),
    /// SIGHUP after changing the configuration to prefixes `first..first + count`.
    Reload {
        first: usize,
        count: usize,
    },
    Signal(Signal),
    /// SIGTERM and SIGINT together.
    TerminateAndInterrupt,
    /// The service says something between checks (`--events`).
    Says(Said),
}

/// What the simulated service says between checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Said {
    /// It is not serving (authoritative).
    NotServing,
    /// Something that may mean trouble (a suspicion).
    Suspicion,
}

/// Options and a sequence.
#[derive(Debug, Clone)]
pub(super) struct Case {
    #[allow(dead_code)]
    pub(crate) seed: u64,
    pub(crate) prefixes: usize,
    pub(crate) rise: u32,
    pub(crate) fall: u32,
    pub(crate) interval: Duration,
    pub(crate) fast_interval: Duration,
    pub(crate) down_interval: Option<Duration>,
    pub(crate) timeout: Duration,
    pub(crate) degraded_latency: Duration,
    pub(crate) ack_timeout: Duration,
    pub(crate) drain: Option<Duration>,
    /// Flap damping: limit (window 20 s, hold 3 s).
    pub(crate) flap: Option<u32>,
    pub(crate) withdraw_on_down: bool,
    /// `--events on` (else off), and whether the sequence has the service say things.
    pub(crate) events: bool,
    /// `--exabgp-api auto` (else the version's own dialect).
    pub(crate) auto: bool,
    pub(crate) version: Version,
    pub(crate) version_answer: VersionAnswer,
    pub(crate) steps: Vec<Step>,
}

const FLAP_HOLD: Duration = Duration::from_secs(3);

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

impl Case {
    /// The case a seed stands for.
    pub(crate) fn generate(seed: u64) -> Case {
        let mut rng = Rng::new(seed);
        let prefixes = if rng.chance(3) {
            rng.range(500, 2000) as usize
        } else {
            rng.range(1, 3) as usize
        };
        let interval = ms(rng.range(2, 10) * 100);
        let fast_interval = ms(rng.range(1, 4) * 50);
        let timeout = ms(rng.range(1, 4) * 100);
        let version = if rng.chance(50) {
            Version::Four
        } else {
            Version::Six
        };
        let ack_timeout = ms(rng.range(2, 10) * 100);
        let mut case = Case {
            seed,
            prefixes,
            rise: rng.range(1, 3) as u32,
            fall: rng.range(1, 3) as u32,
            interval,
            fast_interval,
            down_interval: rng.chance(20).then(|| ms(rng.range(1, 15) * 100)),
            timeout,
            degraded_latency: timeout / 2,
            ack_timeout,
            drain: rng.chance(50).then(|| ms(rng.range(5, 60) * 100)),
            flap: rng.chance(25).then(|| rng.range(2, 4) as u32),
            withdraw_on_down: rng.chance(40),
            auto: rng.chance(70),
            version,
            version_answer: if rng.chance(70) {
                VersionAnswer::Early
            } else {
                VersionAnswer::Late(ack_timeout + ms(rng.range(1, 30) * 100))
            },
            steps: Vec::new(),
            events: false,
        };
        let count = rng.range(20, 120);
        while case.steps.len() < count as usize {
            if rng.chance(8) {
                let episode = case.episode(&mut rng);
                case.steps.extend(episode);
            } else {
                let step = case.random_step(&mut rng);
                case.steps.push(step);
            }
        }
        case.add_events(seed);
        case
    }

    /// Half the seeds have `--events on` and the service saying things between checks (one
    /// step in eight, and some before the failure they announce), drawn from a second
    /// generator so the rest of the sequence is what the seed gave before events existed.
    fn add_events(&mut self, seed: u64) {
        let mut rng = Rng::new(seed ^ 0x6576_656e_7473);
        self.events = rng.chance(50);
        if !self.events {
            return;
        }
        let mut steps = Vec::with_capacity(self.steps.len() * 9 / 8 + 1);
        for step in std::mem::take(&mut self.steps) {
            if rng.chance(12) {
                steps.push(Step::Says(if rng.chance(50) {
                    Said::NotServing
                } else {
                    Said::Suspicion
                }));
            }
            let fails = matches!(step, Step::Service(Health::Failing | Health::Hang));
            steps.push(step);
            // A failing service usually says so (a closed session, NOT_SERVING).
            if fails && rng.chance(60) {
                steps.push(Step::Says(if rng.chance(50) {
                    Said::NotServing
                } else {
                    Said::Suspicion
                }));
            }
        }
        self.steps = steps;
    }

    /// The same case without events (`--events off`, nothing said): the regression seeds
    /// replay what found their defect.
    pub(crate) fn without_events(mut self) -> Case {
        self.events = false;
        self.steps.retain(|step| !matches!(step, Step::Says(_)));
        self
    }

    /// A short episode that single random steps rarely line up: a long rejection period
    /// then a change and back (retries), or late rejections then quiet (late `error`s).
    fn episode(&self, rng: &mut Rng) -> Vec<Step> {
        let health = |rng: &mut Rng| {
            if rng.chance(50) {
                Health::Healthy
            } else {
                Health::Failing
            }
        };
        let first = health(rng);
        match rng.range(0, 1) {
            0 => vec![
                Step::Service(first),
                Step::Answering(if rng.chance(50) {
                    Answering::Error
                } else {
                    Answering::Error6
                }),
                Step::Advance(ms(rng.range(30, 200) * 100)),
                Step::Service(if first == Health::Healthy {
                    Health::Failing
                } else {
                    Health::Healthy
                }),
                Step::Answering(Answering::Done),
                Step::Advance(ms(rng.range(5, 30) * 100)),
                Step::Service(first),
                Step::Advance(ms(rng.range(5, 30) * 100)),
            ],
            _ => vec![
                Step::Answering(Answering::LateError(
                    self.ack_timeout + ms(rng.range(1, 20) * 100),
                )),
                Step::Service(first),
                Step::Advance(ms(rng.range(5, 30) * 100)),
                Step::Answering(Answering::Done),
            ],
        }
    }

    fn random_step(&self, rng: &mut Rng) -> Step {
        match rng.range(0, 99) {
            0..=29 => Step::Advance(ms(rng.range(1, 40) * 100)),
            30..=47 => Step::Service(match rng.range(0, 9) {
                0..=3 => Health::Healthy,
                4 => Health::Degraded,
                5 => Health::Slow,
                6..=8 => Health::Failing,
                _ => Health::Hang,
            }),
            48..=57 => Step::Answering(match rng.range(0, 10) {
                0..=4 => Answering::Done,
                5 => Answering::Late(self.ack_timeout + ms(rng.range(1, 20) * 100)),
                10 => Answering::LateError(self.ack_timeout + ms(rng.range(1, 20) * 100)),
                6 => Answering::Error,
                7 => Answering::Error6,
                _ => Answering::ErrorOnce,
            }),
            58..=65 => Step::Reading(rng.chance(60)),
            66..=73 => Step::Maintenance(rng.chance(50)),
            74..=79 => {
                let count = if self.prefixes > 3 {
                    rng.range(self.prefixes as u64 / 2, self.prefixes as u64) as usize
                } else {
                    rng.range(0, 3) as usize
                };
                Step::Reload {
                    first: rng.range(0, 2) as usize,
                    count,
                }
            }
            80..=87 => Step::Signal(Signal::CheckNow),
            88..=92 => Step::Signal(Signal::DumpState),
            93..=94 => Step::Signal(Signal::Terminate),
            95..=96 => Step::Signal(Signal::Interrupt),
            97 => Step::TerminateAndInterrupt,
            _ => Step::Eof,
        }
    }

    fn prefix_args(first: usize, count: usize) -> Vec<String> {
        (first..first + count)
            .flat_map(|i| {
                [
                    "--prefix".to_string(),
                    format!("10.{}.{}.{}/32", i / 65536 % 256, i / 256 % 256, i % 256),
                ]
            })
            .collect()
    }

    /// The options the probe runs with (the prefixes apart), as a command line.
    pub(crate) fn args(&self) -> Vec<String> {
        let secs = |d: Duration| format!("{}", d.as_secs_f64());
        let mut args = vec![
            "--rise".to_string(),
            self.rise.to_string(),
            "--fall".into(),
            self.fall.to_string(),
            "--interval".into(),
            secs(self.interval),
            "--fast-interval".into(),
            secs(self.fast_interval),
            "--timeout".into(),
            secs(self.timeout),
            "--degraded-latency".into(),
            secs(self.degraded_latency),
            "--degraded-penalty".into(),
            PENALTY.to_string(),
            "--ack-timeout".into(),
            secs(self.ack_timeout),
            "--up-metric".into(),
            UP_MED.to_string(),
            "--disabled-metric".into(),
            DISABLED_MED.to_string(),
            "--down-metric".into(),
            DOWN_MED.to_string(),
            "--increase".into(),
            "0".into(),
            "--next-hop".into(),
            "192.0.2.254".into(),
            "--exabgp-api".into(),
            match (self.auto, self.version) {
                (true, _) => "auto",
                (false, Version::Four) => "4",
                (false, Version::Six) => "6",
            }
            .into(),
        ];
        if let Some(down) = self.down_interval {
            args.extend(["--down-interval".into(), secs(down)]);
        }
        if let Some(drain) = self.drain {
            args.extend(["--drain".into(), secs(drain)]);
        }
        if let Some(limit) = self.flap {
            args.extend([
                "--flap-limit".into(),
                limit.to_string(),
                "--flap-window".into(),
                "20".into(),
                "--flap-hold".into(),
                secs(FLAP_HOLD),
            ]);
        }
        if self.withdraw_on_down {
            args.push("--withdraw-on-down".into());
        }
        if !self.events {
            args.extend(["--events".into(), "off".into()]);
        }
        args.push(format!(
            "prefixes: {}; ExaBGP {:?}, version answer {:?}",
            self.prefixes, self.version, self.version_answer
        ));
        args
    }

    /// The steps, one a line.
    pub(crate) fn describe_steps(&self) -> String {
        let mut text = String::new();
        for step in &self.steps {
            let _ = writeln!(text, "  {step:?}");
        }
        text
    }

    /// The longest the hysteresis takes to confirm a change of the service: the check under
    /// way, the next one at its interval, then `rise`/`fall` more at the fast interval.
    fn confirm(&self) -> Duration {
        let longest = self.interval.max(self.down_interval.unwrap_or_default());
        let fast = self.fast_interval.max(self.timeout);
        self.timeout + longest + self.timeout + fast * self.rise.max(self.fall) + SLACK
    }

    /// The longest the hysteresis takes to confirm that a serving service fails.
    fn confirm_fall(&self) -> Duration {
        let fast = self.fast_interval.max(self.timeout);
        self.timeout + self.interval + self.timeout + fast * (self.fall - 1) + SLACK
    }

    /// The longest the hysteresis takes to confirm a failure after a suspicion: the check in
    /// flight, the check it starts at once, then `fall - 1` more at the fast interval.
    fn confirm_suspicion(&self) -> Duration {
        let fast = self.fast_interval.max(self.timeout);
        self.timeout * 2 + fast * (self.fall - 1) + SLACK
    }

    /// The longest a good ExaBGP (reading, answering `done` at once) takes to accept what is
    /// desired: the pipe, nothing else (a retry's wait is part of ExaBGP's bad period, see
    /// [`retry_allowance`]).
    fn delivery(&self) -> Duration {
        SLACK + Duration::from_micros(50) * u32::try_from(self.prefixes).unwrap_or(u32::MAX)
    }

    fn live(&self) -> Duration {
        let hold = if self.flap.is_some() {
            FLAP_HOLD
        } else {
            Duration::ZERO
        };
        self.confirm() * 2 + self.drain.unwrap_or_default() + hold + self.delivery()
    }

    fn settings(&self, prefixes: &[String], disable_file: &std::path::Path) -> Settings {
        #[derive(Parser)]
        struct Options {
            #[command(flatten)]
            common: crate::config::options::CommonOptions,
        }
        let mut argv = vec!["exaprobe-sim".to_string()];
        let mut args = self.args();
        args.pop(); // the description
        argv.extend(args);
        argv.extend(prefixes.iter().cloned());
        argv.extend(["--disable".into(), disable_file.display().to_string()]);
        let options = Options::try_parse_from(&argv).expect("valid simulation options");
        let modes = ModeFlags {
            dry_run: false,
            routes_optional: false,
        };
        Settings::resolve(&options.common, "sim", modes).expect("valid simulation settings")
    }
}

/// A broken invariant.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// Which invariant (1-4 of the specification, with a name).
    pub(crate) invariant: &'static str,
    pub(crate) detail: String,
    pub(crate) transcript_tail: String,
}

/// What the simulated service and the reload hook share with the driver.
#[derive(Default)]
struct Service {
    health: Option<Health>,
    checks: Vec<Instant>,
    reloads: usize,
    prefixes: Vec<String>,
    /// Where the runner's watcher listens (the latest probe's, once asked).
    events: Option<crate::kit::events::Events>,
}

struct SimProbe {
    service: Arc<Mutex<Service>>,
    latency: Duration,
}

impl Probe for SimProbe {
    fn describe(&self) -> String {
        "the simulated service".into()
    }

    async fn check(&mut self, _deadline: Instant) -> Outcome {
        let health = {
            let mut service = self.service.lock().unwrap();
            service.checks.push(Instant::now());
            service.health.unwrap_or(Health::Healthy)
        };
        match health {
            Health::Healthy => Outcome::Healthy,
            Health::Degraded => Outcome::degraded("simulated"),
            Health::Slow => {
                tokio::time::sleep(self.latency + ms(1)).await;
                Outcome::Healthy
            }
            Health::Failing => Outcome::unhealthy("simulated"),
            Health::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Outcome::Healthy
            }
        }
    }

    /// The driver reports what the service says: the watcher only hands the latch over.
    fn watch(&self, events: crate::kit::events::Events) -> Option<crate::probe::Watcher> {
        self.service.lock().unwrap().events = Some(events);
        Some(Box::pin(std::future::pending()))
    }
}

/// Counts the SIGUSR1 dumps logged.
#[derive(Clone, Default)]
struct DumpCounter(Arc<Mutex<usize>>);

impl std::io::Write for DumpCounter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(bytes);
        *self.0.lock().unwrap() += text.matches("SIGUSR1: state dump").count();
        if std::env::var_os("EXAPROBE_SIM_LOG").is_some() {
            eprint!("{text}");
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The model's view of the world over time.
struct Model {
    case: Case,
    start: Instant,
    health: Health,
    failing_since: Option<Instant>,
    health_changed: Instant,
    maintenance: bool,
    maintenance_changed: Instant,
    configured: Vec<String>,
    config_changed: Instant,
    reading_since: Option<Instant>,
    /// Since when ExaBGP answers `done` at once.
    answering_done_since: Option<Instant>,
    /// When each period of bad answers started.
    bad_periods: Vec<Instant>,
    /// When every retry left from the last bad period is due.
    retries_due: Instant,
    terminated_at: Option<Instant>,
    /// ExaBGP was good when the first SIGTERM/SIGINT came and stayed so.
    good_through_exit: bool,
    eof_at: Option<Instant>,
    /// Reference for the check schedule: the last check start, maintenance end or start.
    schedule_from: Instant,
    seen_checks: usize,
    check_now_asked: Option<Instant>,
    reload_asked: Option<(Instant, usize)>,
    dump_asked: Option<(Instant, usize)>,
    /// When the failing service last said it is not serving, and a suspicion came (`--events`).
    said_not_serving: Option<Instant>,
    suspected: Option<Instant>,
}

impl Model {
    /// Since when ExaBGP has been good: reading, answering `done` at once, stdin open, its
    /// version answered (with `auto`).
    fn good_raw(&self, exabgp: &FakeExabgp) -> Option<Instant> {
        if exabgp.closed() {
            return None;
        }
        let mut since = self.reading_since?.max(self.answering_done_since?);
        if self.case.auto {
            since = since.max(exabgp.version_given_at?);
        }
        Some(since)
    }

    /// From when the model expects ExaBGP to hold what is desired for `prefix` within its
    /// bounds. Once a command for the prefix was written after ExaBGP became good, the
    /// deliverer is converging it and nothing may hold it back; before, what was rejected (or
    /// unanswered) while ExaBGP was bad may wait for its retry.
    fn good_for(&self, exabgp: &FakeExabgp, prefix: &str) -> Option<Instant> {
        let mut raw = self.good_raw(exabgp)?;
        // A late `error` is news only when it comes: the deliverer re-sends from then.
        if let Some(late) = exabgp.last_late_error {
            raw = raw.max(late + SLACK);
        }
        if exabgp.last_command.get(prefix).is_some_and(|at| *at > raw) {
            Some(raw)
        } else {
            Some(raw.max(self.retries_due))
        }
    }

    /// ExaBGP is good (for the exit invariant).
    fn good_since(&self, exabgp: &FakeExabgp) -> Option<Instant> {
        self.good_raw(exabgp)
    }

    fn fail(&self, invariant: &'static str, detail: String, exabgp: &FakeExabgp) -> Failure {
        let keep = if std::env::var_os("EXAPROBE_SIM_TRACE").is_some() {
            usize::MAX
        } else {
            12
        };
        let tail: Vec<&String> = exabgp.transcript.iter().rev().take(keep).collect();
        let mut transcript_tail = String::new();
        for line in tail.into_iter().rev() {
            let _ = writeln!(transcript_tail, "  {line}");
        }
        let at =
            |instant: Option<Instant>| instant.map(|i| i.saturating_duration_since(self.start));
        Failure {
            invariant,
            detail: format!(
                "at {:?} into the run: {detail} [model: good {:?}, retries due {:?}, bad periods {:?}, last done {:?}, failing since {:?}]",
                self.elapsed(),
                at(self.good_raw(exabgp)),
                at(Some(self.retries_due)),
                self.bad_periods
                    .iter()
                    .map(|p| at(Some(*p)))
                    .collect::<Vec<_>>(),
                at(exabgp.last_done),
                at(self.failing_since),
            ),
            transcript_tail,
        }
    }

    fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.started())
    }

    fn started(&self) -> Instant {
        self.start
    }

    fn expected(&self, prefix: &str) -> Option<Held> {
        let med = if self.maintenance {
            DISABLED_MED
        } else if self.health.failing() {
            DOWN_MED
        } else if self.health.degraded() {
            return Some(Held {
                med: Some(UP_MED + PENALTY),
                drain: false,
            });
        } else {
            return Some(Held {
                med: Some(UP_MED),
                drain: false,
            });
        };
        let _ = prefix;
        (!self.case.withdraw_on_down).then_some(Held {
            med: Some(med),
            drain: false,
        })
    }

    /// Invariants 1, 2 and 4 at this instant.
    fn check(
        &mut self,
        exabgp: &FakeExabgp,
        service: &Service,
        dumps: usize,
    ) -> Result<(), Failure> {
        let now = Instant::now();
        // 1. Safety.
        let unsafe_hold = |(prefix, held): &(&String, &Held)| {
            let serving_level = held.drain || held.med.is_some_and(|m| m < DISABLED_MED);
            let late = match (self.failing_since, self.good_for(exabgp, prefix)) {
                (Some(failing), Some(good)) => {
                    now > failing.max(good) + self.case.confirm_fall() + self.case.delivery()
                }
                _ => false,
            };
            serving_level && late
        };
        if self.terminated_at.is_none()
            && let Some(failing) = self.failing_since
            && let Some((prefix, held)) = exabgp.rib.iter().find(|entry| unsafe_hold(entry))
        {
            let good = self.good_for(exabgp, prefix).unwrap_or(now);
            return Err(self.fail(
                "1 safety",
                format!(
                    "ExaBGP holds {prefix} at {held:?} while the service has failed for {:?} \
                     (ExaBGP good for {:?})",
                    now - failing,
                    now - good
                ),
                exabgp,
            ));
        }
        // 5. Events: the service's own word is DOWN within the pipe's delay, a suspicion
        //    within `fall` checks from at once.
        if self.terminated_at.is_none()
            && let Some(failing) = self.failing_since
        {
            let bound = |said: Option<Instant>, confirm: Duration, prefix: &String| {
                let good = self.good_for(exabgp, prefix)?;
                let said = said.filter(|said| *said >= failing)?;
                Some(said.max(good) + confirm + self.case.delivery())
            };
            for (prefix, held) in &exabgp.rib {
                if !(held.drain || held.med.is_some_and(|m| m < DISABLED_MED)) {
                    continue;
                }
                let late = [
                    ("authoritative", bound(self.said_not_serving, SLACK, prefix)),
                    (
                        "suspicion",
                        bound(self.suspected, self.case.confirm_suspicion(), prefix),
                    ),
                ]
                .into_iter()
                .find(|(_, due)| due.is_some_and(|due| now > due));
                if let Some((kind, due)) = late {
                    return Err(self.fail(
                        "5 events",
                        format!(
                            "ExaBGP holds {prefix} at {held:?} {:?} past the bound of a {kind} event                              while the service fails",
                            now - due.expect("found")
                        ),
                        exabgp,
                    ));
                }
            }
        }
        if let Some((written, line)) = exabgp.wrong_dialect_after_answer.first() {
            return Err(self.fail(
                "1 safety (dialect)",
                format!(
                    "{line:?} written {:?} after ExaBGP's version answer",
                    written.saturating_duration_since(exabgp.version_given_at.unwrap_or(now))
                ),
                exabgp,
            ));
        }
        // 2. Liveness.
        if self.good_raw(exabgp).is_some() && self.terminated_at.is_none() {
            let world = self
                .health_changed
                .max(self.maintenance_changed)
                .max(self.config_changed);
            let stable = |prefix: &str| {
                self.good_for(exabgp, prefix)
                    .map(|good| good.max(world))
                    .filter(|stable| now > *stable + self.case.live())
            };
            {
                for prefix in self.configured.iter().filter(|p| stable(p).is_some()) {
                    let stable = stable(prefix).expect("filtered");
                    let expected = self.expected(prefix);
                    let held = exabgp.rib.get(prefix);
                    if held != expected.as_ref() {
                        return Err(self.fail(
                            "2 liveness",
                            format!(
                                "stable for {:?}: ExaBGP holds {prefix} as {held:?}, the model wants {expected:?} \
                                 (health {:?}, maintenance {})",
                                now - stable,
                                self.health,
                                self.maintenance
                            ),
                            exabgp,
                        ));
                    }
                }
                if let Some(stray) = exabgp
                    .rib
                    .keys()
                    .filter(|prefix| stable(prefix).is_some())
                    .find(|prefix| !self.configured.contains(prefix))
                {
                    return Err(self.fail(
                        "2 liveness",
                        format!("ExaBGP still holds {stray}, which the configuration removed"),
                        exabgp,
                    ));
                }
            }
        }
        // 4. Checks never wait; signals are served.
        if self.terminated_at.is_none() && self.eof_at.is_none() {
            if service.checks.len() > self.seen_checks {
                let last = *service.checks.last().expect("checked");
                self.schedule_from = self.schedule_from.max(last);
                if self.check_now_asked.is_some_and(|asked| last >= asked) {
                    self.check_now_asked = None;
                }
                self.seen_checks = service.checks.len();
            }
            let longest = self
                .case
                .interval
                .max(self.case.down_interval.unwrap_or_default());
            let bound = self.schedule_from + longest + self.case.timeout + SLACK;
            if !self.maintenance && now > bound {
                return Err(self.fail(
                    "4 checks never wait",
                    format!(
                        "no check for {:?} (schedule: {:?} + timeout {:?})",
                        now - self.schedule_from,
                        longest,
                        self.case.timeout
                    ),
                    exabgp,
                ));
            }
            if let Some(asked) = self.check_now_asked
                && !self.maintenance
                && now > asked + self.case.timeout + SLACK
            {
                return Err(self.fail(
                    "4 signals (SIGUSR2)",
                    format!("no check {:?} after SIGUSR2", now - asked),
                    exabgp,
                ));
            }
            if let Some((asked, before)) = self.reload_asked {
                if service.reloads > before {
                    self.reload_asked = None;
                } else if now > asked + self.case.timeout + SLACK {
                    return Err(self.fail(
                        "4 signals (SIGHUP)",
                        format!("no reload {:?} after SIGHUP", now - asked),
                        exabgp,
                    ));
                }
            }
            if let Some((asked, before)) = self.dump_asked {
                if dumps > before {
                    self.dump_asked = None;
                } else if now > asked + SLACK {
                    return Err(self.fail(
                        "4 signals (SIGUSR1)",
                        format!("no state dump {:?} after SIGUSR1", now - asked),
                        exabgp,
                    ));
                }
            }
        }
        Ok(())
    }
}

/// How long after ExaBGP answers well again a command it rejected (or did not answer in time)
/// may wait for its retry: the deliverer's backoff doubles from 1 s up to 60 s while the
/// rejections go on, so it is at most twice the bad period, within those limits.
fn retry_allowance(bad_for: Duration) -> Duration {
    (bad_for * 2).clamp(Duration::from_secs(1), Duration::from_secs(60)) + SLACK
}

/// Run one case; `Err` names the first broken invariant.
pub(crate) fn run_case(case: &Case) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let dumps = DumpCounter::default();
    let writer = dumps.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let local = LocalSet::new();
    local.block_on(&runtime, drive(case.clone(), dumps))
}

async fn drive(case: Case, dumps: DumpCounter) -> Result<(), Failure> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let disable_file = dir.path().join("disable");
    let start = Instant::now();
    let configured: Vec<String> = (0..case.prefixes)
        .map(|i| format!("10.{}.{}.{}/32", i / 65536 % 256, i / 256 % 256, i % 256))
        .collect();
    let service = Arc::new(Mutex::new(Service {
        health: Some(Health::Healthy),
        prefixes: Case::prefix_args(0, case.prefixes),
        ..Service::default()
    }));
    let settings = case.settings(&Case::prefix_args(0, case.prefixes), &disable_file);
    let pipe = MemoryPipe::new(4096);
    let (answers, stdin) = tokio::io::duplex(64 * 1024);
    let (signals, signal_receiver) = mpsc::unbounded_channel();
    let io = RunIo {
        stdin: Box::new(stdin),
        stdout: CommandSink::Memory(pipe.clone()),
        signals: signal_receiver,
        stdin_is_pipe: true,
    };
    let reload_case = case.clone();
    let reload_service = Arc::clone(&service);
    let reload_disable = disable_file.clone();
    let latency = case.degraded_latency;
    let reload: Reload<SimProbe> = Box::new(move || {
        let prefixes = {
            let mut service = reload_service.lock().unwrap();
            service.reloads += 1;
            service.prefixes.clone()
        };
        let settings = reload_case.settings(&prefixes, &reload_disable);
        Ok((
            settings,
            SimProbe {
                service: Arc::clone(&reload_service),
                latency,
            },
        ))
    });
    let probe = SimProbe {
        service: Arc::clone(&service),
        latency,
    };
    let mut run = Box::pin(run_with(probe, settings, reload, io));
    let mut exabgp = FakeExabgp::new(case.version, case.version_answer, pipe.clone(), answers);
    let mut model = Model {
        case: case.clone(),
        start,
        health: Health::Healthy,
        failing_since: None,
        health_changed: start,
        maintenance: false,
        maintenance_changed: start,
        configured,
        config_changed: start,
        reading_since: Some(start),
        answering_done_since: Some(start),
        bad_periods: Vec::new(),
        retries_due: start,
        terminated_at: None,
        good_through_exit: false,
        eof_at: None,
        schedule_from: start,
        seen_checks: 0,
        check_now_asked: None,
        reload_asked: None,
        dump_asked: None,
        said_not_serving: None,
        suspected: None,
    };
    let mut exited: Option<(Instant, ExitCode)> = None;
    let mut terminate_seen = false;
    let mut steps = case.steps.clone();
    // Every sequence ends with time for the invariants to act, then a SIGTERM.
    steps.push(Step::Advance(
        case.live() + retry_allowance(Duration::from_secs(60)) + Duration::from_secs(1),
    ));
    steps.push(Step::Signal(Signal::Terminate));
    steps.push(Step::Advance(Duration::from_secs(2)));
    for step in steps {
        if exited.is_some() {
            break;
        }
        let now = Instant::now();
        let mut advance = Duration::ZERO;
        match step {
            Step::Advance(by) => advance = by,
            Step::Service(health) => {
                if health.failing() != model.health.failing()
                    || health.degraded() != model.health.degraded()
                {
                    model.health_changed = now;
                }
                if health.failing() && !model.health.failing() {
                    model.failing_since = Some(now);
                } else if !health.failing() {
                    model.failing_since = None;
                }
                model.health = health;
                service.lock().unwrap().health = Some(health);
            }
            Step::Answering(answering) => {
                let done = answering == Answering::Done;
                if done && exabgp.answering != Answering::Done {
                    // The deliverer's backoff grows from the first rejection after the last
                    // `done`, across bad periods with no command accepted between them.
                    // (A bad period running through the last `done` counts from that done.)
                    let last_done = exabgp.last_done;
                    let streak = model
                        .bad_periods
                        .iter()
                        .map(|&start| match last_done {
                            Some(done) if start < done => done,
                            _ => start,
                        })
                        .min()
                        .unwrap_or(now);
                    model.answering_done_since = Some(now);
                    model.retries_due = now + retry_allowance(now - streak);
                } else if !done && exabgp.answering == Answering::Done {
                    model.answering_done_since = None;
                    model.bad_periods.push(now);
                }
                exabgp.answering = answering;
            }
            Step::Reading(reading) => {
                if reading && !exabgp.reading {
                    model.reading_since = Some(now);
                } else if !reading {
                    model.reading_since = None;
                }
                exabgp.reading = reading;
            }
            Step::Eof => {
                exabgp.close();
                model.eof_at.get_or_insert(now);
            }
            Step::Maintenance(on) => {
                if on != model.maintenance {
                    model.maintenance = on;
                    model.maintenance_changed = now;
                    if !on {
                        model.schedule_from = model.schedule_from.max(now);
                    }
                    if on {
                        // No check runs in maintenance: a pending SIGUSR2 is served by the
                        // disable file's look-up.
                        model.check_now_asked = None;
                        std::fs::write(&disable_file, "simulated maintenance\n").unwrap();
                    } else {
                        let _ = std::fs::remove_file(&disable_file);
                    }
                }
            }
            Step::Reload { first, count } => {
                if count > 0 {
                    let prefixes = Case::prefix_args(first, count);
                    service.lock().unwrap().prefixes = prefixes;
                    model.configured = (first..first + count)
                        .map(|i| format!("10.{}.{}.{}/32", i / 65536 % 256, i / 256 % 256, i % 256))
                        .collect();
                    model.config_changed = now;
                    let reloads = service.lock().unwrap().reloads;
                    model.reload_asked.get_or_insert((now, reloads));
                    let _ = signals.send(Signal::Hangup);
                }
            }
            Step::Signal(signal) => {
                match signal {
                    Signal::Terminate | Signal::Interrupt => {
                        model.terminated_at.get_or_insert(now);
                    }
                    Signal::CheckNow if !model.maintenance => {
                        model.check_now_asked.get_or_insert(now);
                    }
                    Signal::CheckNow => {}
                    Signal::DumpState => {
                        let before = *dumps.0.lock().unwrap();
                        model.dump_asked.get_or_insert((now, before));
                    }
                    Signal::Hangup => {}
                }
                let _ = signals.send(signal);
            }
            Step::TerminateAndInterrupt => {
                model.terminated_at.get_or_insert(now);
                let _ = signals.send(Signal::Terminate);
                let _ = signals.send(Signal::Interrupt);
            }
            Step::Says(said) => {
                let events = service.lock().unwrap().events.clone();
                if let Some(events) = events.filter(|_| case.events) {
                    match said {
                        Said::NotServing => {
                            // The route goes DOWN even if the service is fine: the world changed.
                            model.health_changed = now;
                            model.said_not_serving = Some(now);
                            events.not_serving("NOT_SERVING (simulated)");
                        }
                        Said::Suspicion => {
                            model.suspected = Some(now);
                            events.suspicion("connection closed (simulated)");
                        }
                    }
                }
            }
        }
        let terminating_now = matches!(
            step,
            Step::Signal(Signal::Terminate | Signal::Interrupt) | Step::TerminateAndInterrupt
        );
        if terminating_now && !terminate_seen {
            terminate_seen = true;
            model.good_through_exit = model.good_since(&exabgp).is_some();
        } else if matches!(step, Step::Answering(_) | Step::Reading(_) | Step::Eof) {
            model.good_through_exit = false;
        }
        // Let the world run until `now + advance` (at least one round).
        let until = now + advance;
        loop {
            let wake = [Some(until), exabgp.next_due()]
                .into_iter()
                .flatten()
                .filter(|at| *at > Instant::now())
                .min()
                .unwrap_or(until);
            let reading = exabgp.reading;
            tokio::select! {
                biased;
                code = &mut run => {
                    exited = Some((Instant::now(), code));
                }
                _ = pipe.readable(), if reading => {}
                _ = sleep_until(wake) => {}
            }
            exabgp.step().await;
            let dumps_now = *dumps.0.lock().unwrap();
            {
                let service = service.lock().unwrap();
                model.check(&exabgp, &service, dumps_now)?;
            }
            if let Some(failure) = check_exit(&model, &mut exabgp, exited.as_ref()) {
                return Err(failure);
            }
            if exited.is_some() || Instant::now() >= until {
                break;
            }
        }
    }
    if exited.is_none() {
        return Err(model.fail(
            "3 exit",
            "the run did not end after the final SIGTERM".into(),
            &exabgp,
        ));
    }
    Ok(())
}

/// Invariant 3 at this instant.
fn check_exit(
    model: &Model,
    exabgp: &mut FakeExabgp,
    exited: Option<&(Instant, ExitCode)>,
) -> Option<Failure> {
    let now = Instant::now();
    if let Some(asked) = model.terminated_at {
        match exited {
            None if now > asked + Duration::from_millis(1500) => {
                return Some(model.fail(
                    "3 exit",
                    format!("still running {:?} after SIGTERM/SIGINT", now - asked),
                    exabgp,
                ));
            }
            Some((at, _)) => {
                if let Err(partial) = exabgp.read_rest() {
                    return Some(model.fail("3 exit", partial, exabgp));
                }
                if model.good_through_exit
                    && let Some((prefix, held)) = exabgp.rib.iter().next()
                {
                    return Some(model.fail(
                        "3 exit",
                        format!(
                            "exited {:?} after SIGTERM/SIGINT leaving {prefix} announced ({held:?}) \
                             with ExaBGP reading",
                            *at - asked
                        ),
                        exabgp,
                    ));
                }
            }
            None => {}
        }
    }
    if let Some(eof) = model.eof_at
        && exited.is_none()
        && now > eof + Duration::from_secs(1)
    {
        return Some(model.fail(
            "3 exit",
            format!("still running {:?} after stdin's EOF", now - eof),
            exabgp,
        ));
    }
    None
}
