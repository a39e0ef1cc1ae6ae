//! A model-based simulation of the whole runner: the real checker, router, deliverer and
//! supervisor, driven on tokio's paused clock by long random sequences of events from a seed,
//! against a simulated service and a simulated ExaBGP that are part of the sequence.
//!
//! # The specification (checked after every step)
//!
//! The world is the service's health over time, the maintenance (disable) file, the configured
//! prefixes, how ExaBGP reads and answers, and the operator's signals. ExaBGP is *good* while it
//! reads, answers `done` at once, its stdin is open, and (with `--exabgp-api auto`) its version
//! answer has been given. From the options the model derives two bounds: CONFIRM, the longest
//! the hysteresis may take to confirm a change (the next check, then `rise`/`fall` checks at
//! their intervals, each up to `--timeout`), and DELIVERY, the longest a good ExaBGP may take to
//! accept what is desired (an ACK wait, a retry, the pipe).
//!
//! 1. **Safety.** While the service has been failing since `tf` and ExaBGP good since `tg`,
//!    after `max(tf, tg) + CONFIRM + DELIVERY` ExaBGP holds no prefix at the UP level or with
//!    the drain community (a maintenance drain, a reload's drain): the hysteresis has DOWN, and
//!    no drain or pending state keeps the route. Once ExaBGP's version answer is given, no route
//!    command in a dialect it rejects is written.
//! 2. **Liveness.** Once the world has been stable (health, maintenance, configuration, good
//!    ExaBGP) for `LIVE = 2 * CONFIRM + drain + flap hold + DELIVERY`, what ExaBGP holds is
//!    exactly what the model wants: every configured prefix at its level (UP, UP + penalty
//!    when degraded, the disabled or down MED, or withdrawn with `--withdraw-on-down`), nothing
//!    else. No retry timer, stale entry or backlog may hold a change back longer.
//! 3. **Exit.** After any number and order of SIGTERM/SIGINT, the run ends within 1.5 s of the
//!    first; when ExaBGP was good, it then holds nothing (a withdraw for every prefix was
//!    written); the pipe never ends on a partial line. After stdin's EOF the run ends within 1 s.
//! 4. **Checks never wait.** Outside maintenance, a check starts within the schedule (the
//!    longest interval plus `--timeout`) of the previous one or of the start, whatever ExaBGP
//!    does (including while the version query is unanswered); SIGUSR2 starts a check, SIGHUP a
//!    reload, within `--timeout`; SIGUSR1 logs the state at once: no signal is dropped.
//! 5. **Events** (`--events`, half the seeds: the service also says things between checks,
//!    from a second generator so the rest of a seed's sequence is unchanged). While the service
//!    has been failing since `tf` and ExaBGP good since `tg`: after it said it is not serving at
//!    `te >= tf`, ExaBGP holds no prefix at the UP level or drained after `max(te, tg) +
//!    DELIVERY` (no `--fall`); after a suspicion at `ts >= tf`, none after `max(ts, tg) +` the
//!    check in flight, the check at once and `fall - 1` fast checks `+ DELIVERY`. Invariants 1-4
//!    hold with events too (an authoritative event while the service is healthy is a change of
//!    the world for liveness: the route comes back after `--rise` checks).
//!
//! # Running it
//!
//! `cargo test -p exaprobe-core runner::sim` replays the regression seeds (sequences that found a
//! defect before its fix), then runs `EXAPROBE_SIM_CASES` sequences (default 1000)
//! from `EXAPROBE_SIM_SEED` (default 1, a fixed seed: CI replays the same sequences);
//! `EXAPROBE_SIM_SECONDS=N` keeps going with new seeds for N seconds (`scripts/fuzz` does, with a
//! random seed). A failure prints the seed, the options and the sequence shrunk to a minimal one
//! that still fails; `EXAPROBE_SIM_SEED=<seed> EXAPROBE_SIM_CASES=1` replays it.

mod exabgp;
mod world;

use world::{Case, Failure, run_case};

use std::time::Instant as WallInstant;

/// A small deterministic generator (SplitMix64): the same seed gives the same sequence.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    pub(crate) fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }

    /// True with probability `percent` / 100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Shrink a failing case to a shorter sequence that still fails the same invariant.
fn shrink(case: &Case, failure: &Failure) -> (Case, Failure) {
    let mut best = (case.clone(), failure.clone());
    let mut chunk = best.0.steps.len().div_ceil(2).max(1);
    while chunk >= 1 {
        let mut start = 0;
        let mut shrunk = false;
        while start < best.0.steps.len() {
            let mut candidate = best.0.clone();
            let end = (start + chunk).min(candidate.steps.len());
            candidate.steps.drain(start..end);
            match run_case(&candidate) {
                Err(found) if found.invariant == failure.invariant => {
                    best = (candidate, found);
                    shrunk = true;
                }
                _ => start += chunk,
            }
        }
        if !shrunk {
            if chunk == 1 {
                break;
            }
            chunk /= 2;
        }
    }
    best
}

/// Seeds that found a defect before its fix (issue 24), replayed on every run whatever the
/// range: each stands for the interleaving its comment names.
const REGRESSIONS: &[(u64, &str)] = &[
    (1, "SIGHUP dropped while the version query was unanswered"),
    (284, "the first check delayed by the version query"),
    (
        15,
        "SIGTERM and SIGINT together: exit with nothing withdrawn",
    ),
    (
        32,
        "a late ExaBGP 6 version answer: the 4.x dialect kept for good",
    ),
    (
        72,
        "a service failing during a maintenance drain kept at the drain level",
    ),
    (
        152,
        "the cycle that starts a maintenance drain ran no check",
    ),
    (
        164,
        "SIGTERM during a reload's drain re-sent the drain instead of withdrawing",
    ),
    (
        495,
        "a late version answer during the SIGTERM drain: lines in the rejected dialect",
    ),
    (
        48,
        "a retry's backoff, grown while ExaBGP rejected, held a withdraw after it recovered",
    ),
    (
        67,
        "a retry of a superseded command held a later change back",
    ),
    (346, "a late error absorbed: the route never re-sent"),
    (277, "a late-rejected withdraw forgotten by a reload"),
    (
        540,
        "a retired prefix of unknown state dropped by a second reload",
    ),
    (847, "an unconfirmed withdraw skipped at exit"),
];

/// Seeds with events (`--events`, issue 27) that found a defect before its fix, replayed as
/// generated.
const EVENT_REGRESSIONS: &[(u64, &str)] = &[
    (
        280,
        "NOT_SERVING as a check was due: the check dropped before it started, the next one late",
    ),
    (
        980,
        "NOT_SERVING just before a SIGHUP: dropped with the old watcher, the route kept UP",
    ),
];

/// Run many sequences; panic with the seed and the shrunk sequence on the first failure.
#[test]
fn the_runner_keeps_its_promises_under_random_interleavings() {
    for (seed, defect) in REGRESSIONS {
        if let Err(failure) = run_case(&Case::generate(*seed).without_events()) {
            panic!(
                "regression seed {seed} ({defect}) breaks invariant {}: {}",
                failure.invariant, failure.detail
            );
        }
    }
    for (seed, defect) in EVENT_REGRESSIONS {
        let case = Case::generate(*seed);
        assert!(
            case.events,
            "seed {seed} has no events: the generator changed"
        );
        if let Err(failure) = run_case(&case) {
            panic!(
                "regression seed {seed} ({defect}) breaks invariant {}: {}",
                failure.invariant, failure.detail
            );
        }
    }
    let first = env_u64("EXAPROBE_SIM_SEED").unwrap_or(1);
    let cases = env_u64("EXAPROBE_SIM_CASES").unwrap_or(1000);
    let for_seconds = env_u64("EXAPROBE_SIM_SECONDS");
    let survey = std::env::var_os("EXAPROBE_SIM_SURVEY").is_some();
    let started = WallInstant::now();
    let mut seed = first;
    let mut ran = 0u64;
    loop {
        let done = match for_seconds {
            Some(seconds) => started.elapsed().as_secs() >= seconds,
            None => ran >= cases,
        };
        if done {
            break;
        }
        let case = Case::generate(seed);
        let result = run_case(&case);
        if let (Err(failure), true) = (&result, survey) {
            // A survey lists every failing seed without stopping (for triage).
            eprintln!("seed {seed}: {}: {}", failure.invariant, failure.detail);
        } else if let Err(failure) = result {
            let (shrunk, failure) = if std::env::var_os("EXAPROBE_SIM_NO_SHRINK").is_some() {
                (case.clone(), failure)
            } else {
                shrink(&case, &failure)
            };
            panic!(
                "seed {seed} breaks invariant {}: {}\nreplay: EXAPROBE_SIM_SEED={seed} EXAPROBE_SIM_CASES=1\n\
                 options: {}\nshrunk sequence ({} of {} steps):\n{}\nlast commands ExaBGP read:\n{}",
                failure.invariant,
                failure.detail,
                shrunk.args().join(" "),
                shrunk.steps.len(),
                case.steps.len(),
                shrunk.describe_steps(),
                failure.transcript_tail,
            );
        }
        ran += 1;
        seed = seed.wrapping_add(1);
    }
    eprintln!(
        "runner simulation: {ran} sequences from seed {first} in {:?}",
        started.elapsed()
    );
}
