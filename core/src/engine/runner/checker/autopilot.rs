//! The autopilot: a steady check repeated on a thread of its own, without the runtime.
//!
//! Once a check's outcome has repeated and repeating it again would change nothing (the router
//! is UP or DOWN for good, nothing is timed, no option needs the checker at every check, see
//! `Checker::may_fly`), the checker hands the schedule to this thread and sleeps. The thread
//! sleeps, runs the probe's [`SteadyCheck`], and goes on while the outcome is the expected one;
//! the first that differs (a failure, a new reason, a timeout, a slow answer turned degraded) it
//! hands back, and lands. The checker observes it as if it had run the check itself.
//!
//! The checker lands it itself before it acts on anything else (a signal, the dialect, ...):
//! [`Autopilot::land`] stops the thread (a check in flight is killed, and the checker checks
//! again at once) and returns where the schedule was. So the checker and the thread never
//! check at the same time, and the router sees every check that could change it, in order.
//!
//! Why: an exec check costs the probe little besides its wake-ups, but each wake-up of the
//! runtime (its driver, the runner's futures, the checker's state, all cold after the pause)
//! cost as much as the spawn itself. On the thread a steady check touches a few pages.

use std::cell::RefCell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::time::TimeSpec;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::timed::{judged, splay, timed_out};
use crate::probe::{Outcome, SteadyCheck, SteadyEnd};

/// What the thread is to do: check from `first` on, every `interval` (plus up to `splay`),
/// under `timeout`, while the outcome is `expected`.
#[derive(Debug, Clone)]
pub(crate) struct Flight {
    pub(crate) first: Instant,
    pub(crate) interval: Duration,
    pub(crate) splay: Duration,
    pub(crate) timeout: Duration,
    pub(crate) degraded_latency: Option<Duration>,
    pub(crate) expected: Outcome,
}

/// How a flight ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Landing {
    /// The check whose outcome was not the expected one: outcome, time taken, start.
    pub(crate) diverged: Option<(Outcome, Duration, Instant)>,
    /// When the next check is due (now, when a check in flight was stopped).
    pub(crate) next: Instant,
}

/// The probe's steady check, on the ground or flying.
pub(crate) struct Autopilot {
    grounded: Option<Box<dyn SteadyCheck>>,
    flying: Option<Flying>,
    grounding: Grounding,
}

/// Stops a flight from outside the checker: the supervisor at SIGTERM, when the checker is
/// no longer polled and so cannot land it (no check may start while the routes are withdrawn).
/// Shared by the checker's autopilots, the one a reload makes included.
#[derive(Clone, Default)]
pub(crate) struct Grounding(Rc<RefCell<Option<Rc<OwnedFd>>>>);

impl Grounding {
    /// Stop the flight under way, if any (it lands on its own; nothing waits for it here).
    pub(crate) fn stop(&self) {
        if let Some(stop) = self.0.borrow().as_ref() {
            let _ = nix::unistd::write(&**stop, b"x");
        }
    }
}

struct Flying {
    /// Written to stop the thread (its read end is the thread's).
    stop: Rc<OwnedFd>,
    landed: oneshot::Receiver<(Landing, Box<dyn SteadyCheck>)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Autopilot {
    /// An autopilot for `check` (`None`: the probe has no steady check; it never flies),
    /// stopped by `grounding` too.
    pub(crate) fn new(check: Option<Box<dyn SteadyCheck>>, grounding: Grounding) -> Self {
        Autopilot {
            grounded: check,
            flying: None,
            grounding,
        }
    }

    /// What stops its flights from outside.
    pub(crate) fn grounding(&self) -> Grounding {
        self.grounding.clone()
    }

    /// Whether the thread has the schedule.
    pub(crate) fn is_flying(&self) -> bool {
        self.flying.is_some()
    }

    /// Whether it could take off (the probe has a steady check, on the ground).
    pub(crate) fn can_fly(&self) -> bool {
        self.grounded.is_some()
    }

    /// Hand the schedule to the thread. Stays on the ground if the thread cannot start.
    pub(crate) fn take_off(&mut self, flight: Flight) {
        let Some(check) = self.grounded.take() else {
            return;
        };
        let (stop_read, stop) = match nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK) {
            Ok(pipe) => pipe,
            Err(error) => {
                tracing::debug!(%error, "autopilot: no stop pipe; checking on the runtime");
                self.grounded = Some(check);
                return;
            }
        };
        let (landing, landed) = oneshot::channel();
        let (check_back, check_kept) = std::sync::mpsc::sync_channel::<Box<dyn SteadyCheck>>(1);
        let spawned = std::thread::Builder::new()
            .name("autopilot".to_string())
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut check = match check_kept.recv() {
                    Ok(check) => check,
                    Err(_) => return,
                };
                let landed = fly(&flight, &mut *check, stop_read.as_fd());
                let _ = landing.send((landed, check));
            });
        match spawned {
            Ok(thread) => {
                let _ = check_back.send(check);
                let stop = Rc::new(stop);
                *self.grounding.0.borrow_mut() = Some(Rc::clone(&stop));
                self.flying = Some(Flying {
                    stop,
                    landed,
                    thread: Some(thread),
                });
            }
            Err(error) => {
                tracing::debug!(%error, "autopilot: cannot start its thread; checking on the runtime");
                self.grounded = Some(check);
            }
        }
    }

    /// Wait until the thread lands on its own (an outcome that differs). Cancel-safe; pending
    /// for ever on the ground.
    pub(crate) async fn landed(&mut self) -> Landing {
        let returned = match self.flying.as_mut() {
            Some(flying) => (&mut flying.landed).await,
            None => return std::future::pending().await,
        };
        self.grounding.0.borrow_mut().take();
        if let Some(thread) = self
            .flying
            .take()
            .and_then(|mut flying| flying.thread.take())
        {
            let _ = thread.join();
        }
        match returned {
            Ok((landing, check)) => {
                self.grounded = Some(check);
                landing
            }
            Err(_) => {
                // The thread is gone without its check (it panicked): never fly again.
                tracing::error!(
                    "autopilot: its thread ended without landing; checking on the runtime from now on"
                );
                Landing {
                    diverged: None,
                    next: Instant::now(),
                }
            }
        }
    }

    /// Stop the thread and wait for its landing (`None` on the ground). A check in flight is
    /// killed: the landing then says to check now.
    pub(crate) async fn land(&mut self) -> Option<Landing> {
        let flying = self.flying.as_ref()?;
        let _ = nix::unistd::write(&*flying.stop, b"x");
        Some(self.landed().await)
    }
}

impl Drop for Autopilot {
    /// The checker is going (the probe is exiting): stop the thread, and wait for it, so that
    /// nothing it started outlives the probe's own cleanup.
    fn drop(&mut self) {
        if let Some(mut flying) = self.flying.take() {
            self.grounding.0.borrow_mut().take();
            let _ = nix::unistd::write(&*flying.stop, b"x");
            if let Some(thread) = flying.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// The thread: check at each due time while the outcome is the expected one.
fn fly(flight: &Flight, check: &mut dyn SteadyCheck, stop: BorrowedFd<'_>) -> Landing {
    let mut next = flight.first;
    loop {
        if stopped_before(next, stop) {
            return Landing {
                diverged: None,
                next,
            };
        }
        let started = Instant::now();
        let end = check.check((started + flight.timeout).into_std(), stop);
        let elapsed = started.elapsed();
        let outcome = match end {
            SteadyEnd::Checked(outcome) => judged(outcome, elapsed, flight.degraded_latency),
            SteadyEnd::TimedOut => timed_out(flight.timeout),
            SteadyEnd::Stopped => {
                return Landing {
                    diverged: None,
                    next: started,
                };
            }
        };
        if outcome != flight.expected {
            return Landing {
                diverged: Some((outcome, elapsed, started)),
                next: started,
            };
        }
        next = (started + flight.interval + splay(flight.splay)).max(Instant::now());
    }
}

/// Sleep until `deadline`; true when `stop` turned readable first.
fn stopped_before(deadline: Instant, stop: BorrowedFd<'_>) -> bool {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(stop, PollFlags::POLLIN)];
        match ppoll(&mut fds, Some(TimeSpec::from_duration(left)), None) {
            Ok(0) if Instant::now() >= deadline => return false,
            Ok(0) | Err(nix::errno::Errno::EINTR) => {}
            Ok(_) | Err(_) => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The autopilot against a model: a scripted steady check on the real thread.
    //!
    //! Invariants, checked for every script:
    //! 1. It lands at the first outcome that differs from the expected one, with that outcome,
    //!    and checks no more after it.
    //! 2. Landed by the checker during a check, it kills that check (`Stopped`) and says to
    //!    check again from that check's start; during a pause, it says the due time it was
    //!    waiting for. Either way it reports no outcome it did not see differ.
    //! 3. Never two checks at once, none after a landing, and the check is back on the
    //!    ground (it can fly again) once landed.
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::mpsc;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Step {
        Answer(Outcome),
        TimeOut,
        /// Hang until stopped.
        Hang,
    }

    struct Scripted {
        steps: VecDeque<Step>,
        done: usize,
        busy: Arc<AtomicBool>,
        checks: Arc<AtomicUsize>,
        /// (check index, started) as each check is entered.
        entered: mpsc::Sender<usize>,
    }

    impl SteadyCheck for Scripted {
        fn check(&mut self, _deadline: std::time::Instant, stop: BorrowedFd<'_>) -> SteadyEnd {
            assert!(
                !self.busy.swap(true, Ordering::SeqCst),
                "two checks at once"
            );
            self.checks.fetch_add(1, Ordering::SeqCst);
            let step = self.steps.pop_front().unwrap_or(Step::Hang);
            let _ = self.entered.send(self.done);
            self.done += 1;
            let end = match step {
                Step::Answer(outcome) => SteadyEnd::Checked(outcome),
                Step::TimeOut => SteadyEnd::TimedOut,
                Step::Hang => {
                    let mut fds = [PollFd::new(stop, PollFlags::POLLIN)];
                    while !matches!(ppoll(&mut fds, None, None), Ok(n) if n > 0) {}
                    SteadyEnd::Stopped
                }
            };
            self.busy.store(false, Ordering::SeqCst);
            end
        }
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            8 => Just(Step::Answer(Outcome::Healthy)),
            1 => (0u8..2).prop_map(|n| Step::Answer(Outcome::unhealthy(format!("exit {n}")))),
            1 => Just(Step::Answer(Outcome::degraded("slow"))),
            1 => Just(Step::TimeOut),
            1 => Just(Step::Hang),
        ]
    }

    /// How the checker ends the flight in a case.
    #[derive(Debug, Clone, Copy)]
    enum Ending {
        /// Waits for the thread to land on its own (or lands it once it hangs).
        OnItsOwn,
        /// Lands it at once, racing the thread.
        AtOnce,
        /// Lands it while it waits for the next check (after the first, a long interval).
        InThePause,
    }

    fn ending() -> impl Strategy<Value = Ending> {
        prop_oneof![
            Just(Ending::OnItsOwn),
            Just(Ending::AtOnce),
            Just(Ending::InThePause)
        ]
    }

    const TIMEOUT: Duration = Duration::from_secs(5);

    /// `landing`, or a failure naming the hang (a landing never comes).
    async fn guard<T>(landing: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(20), landing)
            .await
            .expect("the autopilot never landed")
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn the_autopilot_lands_on_the_first_difference_and_only_then(
            steps in proptest::collection::vec(step(), 0..12),
            expected_healthy in proptest::bool::ANY,
            ending in ending(),
        ) {
            let expected = if expected_healthy { Outcome::Healthy } else { Outcome::unhealthy("exit 0") };
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let busy = Arc::new(AtomicBool::new(false));
                let checks = Arc::new(AtomicUsize::new(0));
                let (entered_tx, entered) = mpsc::channel();
                let script = Scripted {
                    steps: steps.iter().cloned().collect(),
                    done: 0,
                    busy: Arc::clone(&busy),
                    checks: Arc::clone(&checks),
                    entered: entered_tx,
                };
                // The model: what each check comes to, the first that differs, the first hang.
                let ends: Vec<Option<Outcome>> = steps.iter().map(|step| match step {
                    Step::Answer(outcome) => Some(outcome.clone()),
                    Step::TimeOut => Some(timed_out(TIMEOUT)),
                    Step::Hang => None,
                }).collect();
                let first_hang = ends.iter().position(Option::is_none).unwrap_or(ends.len());
                let differs = ends[..first_hang].iter().position(|end| end.as_ref() != Some(&expected));
                let long_pause = matches!(ending, Ending::InThePause);
                let mut autopilot = Autopilot::new(Some(Box::new(script)), Grounding::default());
                let first = Instant::now();
                autopilot.take_off(Flight {
                    first,
                    interval: if long_pause { Duration::from_secs(3600) } else { Duration::ZERO },
                    splay: Duration::ZERO,
                    timeout: TIMEOUT,
                    degraded_latency: None,
                    expected: expected.clone(),
                });
                prop_assert!(autopilot.is_flying());
                let landing = match ending {
                    Ending::AtOnce => guard(autopilot.land()).await.unwrap(),
                    Ending::InThePause => {
                        // The first check ran; unless it differed, the thread waits an hour.
                        entered.recv().unwrap();
                        if differs == Some(0) {
                            guard(autopilot.landed()).await
                        } else {
                            guard(autopilot.land()).await.unwrap()
                        }
                    }
                    Ending::OnItsOwn => match differs {
                        Some(_) => guard(autopilot.landed()).await,
                        None => {
                            // It hangs at `first_hang` (or past the script): land it there.
                            while entered.recv().unwrap() < first_hang {}
                            guard(autopilot.land()).await.unwrap()
                        }
                    },
                };
                let ran = checks.load(Ordering::SeqCst);
                prop_assert!(!busy.load(Ordering::SeqCst), "a check still running after the landing");
                prop_assert!(!autopilot.is_flying());
                prop_assert!(autopilot.can_fly(), "the check must be back on the ground");
                match &landing.diverged {
                    Some((outcome, _, started)) => {
                        // Invariant 1: the first difference, and nothing after it.
                        let at = differs.expect("a divergence the model does not have");
                        prop_assert_eq!(Some(outcome), ends[at].as_ref());
                        prop_assert_eq!(ran, at + 1);
                        prop_assert!(*started >= first);
                        prop_assert_eq!(landing.next, *started);
                    }
                    None => {
                        // Invariant 2: stopped; no difference was seen before the stop.
                        if let Some(at) = differs {
                            prop_assert!(ran <= at, "checked past the difference at {} ({} checks)", at, ran);
                        }
                        prop_assert!(landing.next <= Instant::now() + Duration::from_secs(3600));
                        if long_pause && ran == 1 && first_hang > 0 {
                            // Landed in the pause: the due time it waited for.
                            prop_assert!(landing.next > Instant::now());
                        } else {
                            prop_assert!(landing.next <= Instant::now());
                        }
                    }
                }
                // Invariant 3: no check after the landing.
                drop(autopilot);
                prop_assert_eq!(checks.load(Ordering::SeqCst), ran);
                Ok(())
            })?;
        }
    }

    #[test]
    fn a_slow_healthy_answer_is_a_difference_when_latency_matters() {
        let latency = Some(Duration::from_millis(10));
        assert_eq!(
            judged(Outcome::Healthy, Duration::from_millis(5), latency),
            Outcome::Healthy
        );
        let slow = judged(Outcome::Healthy, Duration::from_millis(50), latency);
        assert!(matches!(slow, Outcome::Degraded { .. }), "{slow:?}");
        assert_ne!(slow, Outcome::Healthy);
    }
}
