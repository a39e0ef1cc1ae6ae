//! What the routes say: the health state (the hysteresis) plus the two routing-safety rules that
//! sit above it.
//!
//! - **Drain before a planned withdraw** (RFC 8326 GRACEFUL_SHUTDOWN): when maintenance starts
//!   while the prefixes are announced UP, they are first re-announced with the drain community
//!   (65535:0 by default) for `--drain`, so routers move traffic away before the final action.
//!   The same for prefixes a reload removes while UP ([`Router::retire`]). The checks go on
//!   during a drain: a service the hysteresis finds DOWN ends every drain at once (the final
//!   action now), so a failing service is never drained. Leaving maintenance during the drain
//!   continues the service's own hysteresis (UP stays UP, a failure counts towards `--fall`).
//!   On SIGTERM the drain is decided here too ([`Router::drain_on_exit`]: only from UP) and its
//!   length within the exit budget ([`exit_drain_until`]); the deliverer only carries it out
//!   (a second signal cuts it short).
//! - **Events** (`--events`): the service saying it is not serving is an observation
//!   (`Observation::NotServing`: DOWN at once, through damping and drains as a failure is); a
//!   suspicion ([`Router::suspect`]) changes no route and asks for `--fall` fast checks.
//! - **Flap damping**: more than `--flap-limit` changes between UP and DOWN within
//!   `--flap-window` hold the routes in the DOWN action for `--flap-hold`, whatever the checks
//!   say; then a fresh hysteresis starts from INIT.
//!
//! - **Required probes** (`--require`, see `crate::engine::require`): a required probe DOWN makes the
//!   routes say DOWN at once ([`Router::require`]), with no `--fall` on top (its own hysteresis
//!   confirmed it); the own hysteresis goes on underneath, so the return takes effect when the
//!   own check is UP too. A required probe DEGRADED adds its penalty to the UP MED.
//!
//! Pure and synchronous, like the hysteresis: time is a parameter and timers are deadlines the
//! caller waits for ([`Router::next_timer`], then [`Router::tick`]).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::health::{Hysteresis, Observation, State};
use crate::engine::render::Target;

/// Of SIGTERM's exit budget, what a drain leaves for the withdraws.
pub(crate) const WITHDRAW_RESERVE: Duration = Duration::from_millis(400);

/// When a SIGTERM drain (see [`Router::drain_on_exit`]) of `length` started at `now` must end
/// for the withdraws to fit before `deadline`; `None` when there is no time for one.
pub(crate) fn exit_drain_until(
    now: Instant,
    length: Duration,
    deadline: Instant,
) -> Option<Instant> {
    let until = (now + length).min(deadline.checked_sub(WITHDRAW_RESERVE)?);
    (until > now).then_some(until)
}

/// Flap damping limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FlapLimits {
    /// More changes than this within the window start a hold.
    pub(crate) limit: u32,
    /// How far back changes are counted.
    pub(crate) window: Duration,
    /// How long the routes stay down.
    pub(crate) hold: Duration,
}

/// The routing-safety options; both off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Safety {
    /// Drain before a planned withdraw, this long.
    pub(crate) drain: Option<Duration>,
    /// Damp flapping.
    pub(crate) flap: Option<FlapLimits>,
}

/// Something the caller logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// Draining started; the final action comes at `until`.
    DrainStarted {
        /// When the drain ends.
        until: Instant,
    },
    /// Maintenance ended during the drain: announced normally again.
    DrainCancelled,
    /// The drain is over: the final action now.
    DrainDone,
    /// Too many changes: held down until `until`.
    Held {
        /// Changes counted in the window.
        changes: u32,
        /// The window.
        window: Duration,
        /// When the hold ends.
        until: Instant,
    },
    /// The hold is over: a fresh hysteresis starts.
    Released,
    /// The service failed during a drain: the drain ended at once.
    DrainAborted,
    /// The drain of the prefixes a reload removed is over: withdraw them.
    RetiredDrainDone,
}

/// A drain in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Drain {
    until: Instant,
    penalty: u32,
}

/// The hysteresis, drain and damping together: observations and time in, a target out.
#[derive(Debug, Clone)]
pub(crate) struct Router {
    hysteresis: Hysteresis,
    safety: Safety,
    state: State,
    penalty: u32,
    decided: Option<Target>,
    drain: Option<Drain>,
    /// The last of UP and DOWN reached, to count changes between them.
    side: Option<State>,
    changes: VecDeque<Instant>,
    held_until: Option<Instant>,
    /// The service's own hysteresis while a maintenance drain runs (checks go on).
    service: State,
    /// Prefixes a reload removed are drained until then.
    retired_until: Option<Instant>,
    /// A required probe is DOWN: the routes say DOWN whatever the own hysteresis says.
    required_down: bool,
    /// The MED penalty a DEGRADED required probe adds.
    required_penalty: u32,
    /// Checks still to run at the fast interval after a suspicion (`--events`).
    suspected: u32,
}

impl Router {
    /// A router in INIT with nothing decided.
    pub(crate) fn new(hysteresis: Hysteresis, safety: Safety) -> Self {
        Router {
            hysteresis,
            safety,
            state: State::Init,
            penalty: 0,
            decided: None,
            drain: None,
            side: None,
            changes: VecDeque::new(),
            held_until: None,
            service: State::Init,
            retired_until: None,
            required_down: false,
            required_penalty: 0,
            suspected: 0,
        }
    }

    /// New limits after a reload; the state and what was decided stay.
    pub(crate) fn reconfigure(&mut self, hysteresis: Hysteresis, safety: Safety) {
        self.hysteresis = hysteresis;
        self.safety = safety;
        if safety.drain.is_none() {
            self.drain = None;
            self.retired_until = None;
        }
        if safety.flap.is_none() {
            self.held_until = None;
        }
    }

    /// The hysteresis state (DOWN during a flap hold, and while a required probe is DOWN
    /// outside maintenance).
    pub(crate) fn state(&self) -> State {
        if self.required_down && self.state != State::Disabled {
            State::Down
        } else {
            self.state
        }
    }

    /// The required probes changed at `now`: `down` when they are DOWN (the routes say DOWN at
    /// once; when they return, the own hysteresis decides), `penalty` when DEGRADED.
    pub(crate) fn require(&mut self, now: Instant, down: bool, penalty: u32) -> Vec<Event> {
        let mut events = Vec::new();
        self.required_penalty = penalty;
        if down && !self.required_down {
            // A service that cannot serve is never drained: the final action now.
            let drained = self.drain.take().is_some();
            if drained {
                self.decided = Some(Target::Disabled);
            }
            if self.retired_until.take().is_some() || drained {
                events.push(Event::DrainAborted);
            }
        }
        self.required_down = down;
        self.release_if_due(now, &mut events);
        if self.held_until.is_none() {
            self.count_change(now, &mut events);
        }
        if self.held_until.is_none() {
            self.decide(now, &mut events);
        }
        events
    }

    /// What the routes should express, `None` before the first decisive state.
    pub(crate) fn target(&self) -> Option<Target> {
        self.decided
    }

    /// True during a flap hold.
    pub(crate) fn is_held(&self) -> bool {
        self.held_until.is_some()
    }

    /// The target a SIGTERM should drain from: the UP announcement, when draining is on.
    pub(crate) fn drain_on_exit(&self) -> Option<(Target, Duration)> {
        let drain = self.safety.drain?;
        match self.decided? {
            Target::Up { penalty } | Target::Draining { penalty } => {
                Some((Target::Draining { penalty }, drain))
            }
            _ => None,
        }
    }

    /// The next deadline at which [`Router::tick`] changes something.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        [
            self.drain.map(|drain| drain.until),
            self.held_until,
            self.retired_until,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether one more `observation` (a success with `penalty`), now or at any later time,
    /// would change nothing: UP or DOWN and kept there by it (a success's penalty the one
    /// announced), the flap count already on that side, nothing timed (drain, hold, retired
    /// drain), no suspicion's fast checks left, no required probe DOWN. The checker lets its
    /// autopilot repeat such checks without it (`runner/checker/steady.rs`).
    pub(crate) fn is_steady_under(&self, observation: Observation, penalty: u32) -> bool {
        let kept = match (self.state, observation) {
            (State::Up, Observation::Success) => penalty == self.penalty,
            (State::Down, Observation::Failure) => true,
            _ => false,
        };
        kept && self.hysteresis.next(self.state, observation) == self.state
            && self.side == Some(self.state)
            && self.next_timer().is_none()
            && self.suspected == 0
            && !self.required_down
            && self.decided
                == Some(match self.state {
                    State::Up => Target::Up {
                        penalty: self.penalty.max(self.required_penalty),
                    },
                    _ => Target::Down,
                })
    }

    /// Whether the checks must run in maintenance: a drain is under way (or starts with this
    /// maintenance), and a failing service must end it at once.
    pub(crate) fn checks_in_maintenance(&self) -> bool {
        let drain_starts = self.safety.drain.is_some()
            && self.state != State::Disabled
            && matches!(self.decided, Some(Target::Up { .. }));
        self.drain.is_some() || drain_starts
    }

    /// The state whose schedule the checks follow (the service's own during a drain, so a
    /// failure is confirmed at the fast interval).
    pub(crate) fn schedule_state(&self) -> State {
        if self.drain.is_some() {
            self.service
        } else {
            self.state
        }
    }

    /// A suspicion came (`--events`: a kept connection closed by the server, `+sdown`): the
    /// caller checks at once, and the next `--fall` checks follow the fast interval, so a
    /// failure is confirmed in `fall x fast-interval`. The routes do not change by it.
    pub(crate) fn suspect(&mut self) {
        self.suspected = self.hysteresis.fall;
    }

    /// Whether the next check follows `--fast-interval`: a transitional state (the service's
    /// own during a drain), or a suspicion not yet checked `--fall` times.
    pub(crate) fn wants_fast_checks(&self) -> bool {
        self.schedule_state().is_transitional() || self.suspected > 0
    }

    /// A reload removed prefixes at `now`: with `--drain` while UP they are drained until
    /// the returned deadline (then withdrawn); `None`: withdraw them at once.
    pub(crate) fn retire(&mut self, now: Instant) -> Option<Instant> {
        let length = self.safety.drain?;
        match self.decided? {
            Target::Up { .. } | Target::Draining { .. } if self.state() != State::Down => {
                let until = now + length;
                self.retired_until = Some(self.retired_until.map_or(until, |u| u.max(until)));
                self.retired_until
            }
            _ => None,
        }
    }

    /// What the prefixes a reload removed should express: drained while their drain runs,
    /// withdrawn otherwise.
    pub(crate) fn retired_target(&self) -> Target {
        match (self.retired_until, self.decided) {
            (Some(_), Some(Target::Up { penalty } | Target::Draining { penalty })) => {
                Target::Draining { penalty }
            }
            (Some(_), _) => Target::Draining {
                penalty: self.penalty,
            },
            (None, _) => Target::Gone,
        }
    }

    /// A check's result during a maintenance drain (the router is in DISABLED): the service's
    /// own hysteresis goes on, and a service it finds DOWN ends the drain at once.
    pub(crate) fn observe_during_drain(
        &mut self,
        observation: Observation,
        penalty: u32,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        if self.drain.is_none() || observation == Observation::Disabled {
            return events;
        }
        self.checked_once_more(observation);
        if observation == Observation::Success {
            self.penalty = penalty;
            if let Some(drain) = self.drain.as_mut() {
                drain.penalty = penalty;
            }
        }
        self.service = self.hysteresis.next(self.service, observation);
        if self.service == State::Down {
            self.drain = None;
            self.retired_until = None;
            self.decided = Some(Target::Disabled);
            events.push(Event::DrainAborted);
        }
        events
    }

    /// Feed one check result (`penalty`: the MED penalty of a degraded success).
    pub(crate) fn observe(
        &mut self,
        now: Instant,
        observation: Observation,
        penalty: u32,
    ) -> (State, Vec<Event>) {
        let mut events = Vec::new();
        self.checked_once_more(observation);
        self.release_if_due(now, &mut events);
        if self.held_until.is_some() {
            // Held down: checks go on (the caller logs them), the routes do not follow them.
            return (self.state(), events);
        }
        if observation == Observation::Success {
            self.penalty = penalty;
        }
        let from = match (self.state, self.drain) {
            // Leaving maintenance during its drain: the service's hysteresis, kept through
            // the drain, goes on (a failure seen then is not forgotten).
            (State::Disabled, Some(_)) if observation != Observation::Disabled => self.service,
            (state, _) => state,
        };
        if observation == Observation::Disabled && self.state != State::Disabled {
            self.service = self.state;
        }
        self.state = self.hysteresis.next(from, observation);
        self.count_change(now, &mut events);
        if self.held_until.is_none() {
            self.decide(now, &mut events);
        }
        (self.state(), events)
    }

    /// One more observation: a suspicion's fast checks count down (the service's own word
    /// ends them: DOWN follows its own schedule).
    fn checked_once_more(&mut self, observation: Observation) {
        self.suspected = match observation {
            Observation::NotServing => 0,
            _ => self.suspected.saturating_sub(1),
        };
    }

    /// Let the timers act at `now` (drain over, hold over).
    pub(crate) fn tick(&mut self, now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        if self.retired_until.is_some_and(|until| now >= until) {
            self.retired_until = None;
            events.push(Event::RetiredDrainDone);
        }
        self.release_if_due(now, &mut events);
        if self.held_until.is_none() {
            self.decide(now, &mut events);
        }
        events
    }

    fn release_if_due(&mut self, now: Instant, events: &mut Vec<Event>) {
        if self.held_until.is_some_and(|until| now >= until) {
            self.held_until = None;
            self.state = State::Init;
            self.side = None;
            self.changes.clear();
            events.push(Event::Released);
        }
    }

    /// Count a change between UP and DOWN; start a hold when there are too many.
    fn count_change(&mut self, now: Instant, events: &mut Vec<Event>) {
        let state = self.state();
        if !matches!(state, State::Up | State::Down) {
            return;
        }
        let changed = self.side.is_some_and(|side| side != state);
        self.side = Some(state);
        let Some(limits) = self.safety.flap.filter(|limits| limits.limit > 0) else {
            return;
        };
        if !changed {
            return;
        }
        self.changes.push_back(now);
        while self
            .changes
            .front()
            .is_some_and(|&at| now.duration_since(at) > limits.window)
        {
            self.changes.pop_front();
        }
        let count = u32::try_from(self.changes.len()).unwrap_or(u32::MAX);
        if count > limits.limit {
            let until = now + limits.hold;
            self.held_until = Some(until);
            self.state = State::Down;
            self.drain = None;
            self.retired_until = None;
            self.decided = Some(Target::Down);
            self.changes.clear();
            events.push(Event::Held {
                changes: count,
                window: limits.window,
                until,
            });
        }
    }

    /// Derive the target from the state, the drain and the time.
    fn decide(&mut self, now: Instant, events: &mut Vec<Event>) {
        match self.state() {
            State::Disabled => {
                if let (Some(length), None, Some(Target::Up { penalty })) =
                    (self.safety.drain, self.drain, self.decided)
                {
                    let until = now + length;
                    self.drain = Some(Drain { until, penalty });
                    events.push(Event::DrainStarted { until });
                }
                match self.drain {
                    Some(drain) if now < drain.until => {
                        self.decided = Some(Target::Draining {
                            penalty: drain.penalty,
                        });
                    }
                    Some(_) => {
                        self.drain = None;
                        events.push(Event::DrainDone);
                        self.decided = Some(Target::Disabled);
                    }
                    None => self.decided = Some(Target::Disabled),
                }
            }
            State::Up => {
                if self.drain.take().is_some() {
                    events.push(Event::DrainCancelled);
                }
                self.decided = Some(Target::Up {
                    penalty: self.penalty.max(self.required_penalty),
                });
            }
            State::Down => {
                if self.drain.take().is_some() {
                    events.push(Event::DrainCancelled);
                }
                if self.retired_until.take().is_some() {
                    events.push(Event::DrainAborted);
                }
                self.decided = Some(Target::Down);
            }
            State::Init | State::Rising(_) | State::Falling(_) => {
                if let Some(drain) = self.drain.take() {
                    // Maintenance ended during the drain: announce normally again.
                    events.push(Event::DrainCancelled);
                    self.decided = Some(Target::Up {
                        penalty: drain.penalty,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::health::tests::observation;
    use Observation::{Disabled, Failure, NotServing, Success};

    const SECOND: Duration = Duration::from_secs(1);

    fn router(rise: u32, fall: u32, safety: Safety) -> Router {
        Router::new(Hysteresis { rise, fall }, safety)
    }

    fn drain(seconds: u64) -> Safety {
        Safety {
            drain: Some(Duration::from_secs(seconds)),
            flap: None,
        }
    }

    fn damping(limit: u32) -> Safety {
        Safety {
            drain: None,
            flap: Some(FlapLimits {
                limit,
                window: Duration::from_secs(60),
                hold: Duration::from_secs(300),
            }),
        }
    }

    #[test]
    fn without_safety_the_target_follows_the_state() {
        let t0 = Instant::now();
        let mut r = router(2, 1, Safety::default());
        assert_eq!(r.observe(t0, Success, 0).0, State::Rising(1));
        assert_eq!(
            r.target(),
            None,
            "nothing decided before the first decisive state"
        );
        r.observe(t0, Success, 30);
        assert_eq!(r.target(), Some(Target::Up { penalty: 30 }));
        r.observe(t0, Failure, 0);
        assert_eq!(r.target(), Some(Target::Down));
        r.observe(t0, Success, 0);
        assert_eq!(r.state(), State::Rising(1));
        assert_eq!(
            r.target(),
            Some(Target::Down),
            "RISING keeps what was decided"
        );
        r.observe(t0, Disabled, 0);
        assert_eq!(r.target(), Some(Target::Disabled), "no drain when not UP");
        assert_eq!(r.next_timer(), None);
    }

    #[test]
    fn maintenance_while_up_drains_then_disables() {
        let t0 = Instant::now();
        let mut r = router(1, 1, drain(2));
        r.observe(t0, Success, 0);
        let (_, events) = r.observe(t0, Disabled, 0);
        assert_eq!(
            events,
            [Event::DrainStarted {
                until: t0 + 2 * SECOND
            }]
        );
        assert_eq!(r.target(), Some(Target::Draining { penalty: 0 }));
        assert_eq!(r.next_timer(), Some(t0 + 2 * SECOND));
        // Still disabled at the next check, before the end: still draining.
        assert!(r.observe(t0 + SECOND, Disabled, 0).1.is_empty());
        assert_eq!(r.target(), Some(Target::Draining { penalty: 0 }));
        assert_eq!(r.tick(t0 + 2 * SECOND), [Event::DrainDone]);
        assert_eq!(r.target(), Some(Target::Disabled));
        assert_eq!(r.next_timer(), None);
        // Maintenance goes on: no second drain.
        assert!(r.observe(t0 + 3 * SECOND, Disabled, 0).1.is_empty());
        assert_eq!(r.target(), Some(Target::Disabled));
    }

    #[test]
    fn leaving_maintenance_during_the_drain_announces_normally() {
        let t0 = Instant::now();
        let mut r = router(3, 3, drain(10));
        r.observe(t0, Success, 0);
        r.observe(t0, Success, 0);
        r.observe(t0, Success, 50);
        r.observe(t0, Disabled, 0);
        assert_eq!(r.target(), Some(Target::Draining { penalty: 50 }));
        let (state, events) = r.observe(t0 + SECOND, Success, 0);
        assert_eq!(
            state,
            State::Up,
            "the service's hysteresis went on through the drain"
        );
        assert_eq!(events, [Event::DrainCancelled]);
        assert_eq!(r.target(), Some(Target::Up { penalty: 0 }));
        assert_eq!(r.next_timer(), None);
    }

    #[test]
    fn a_service_failing_during_a_maintenance_drain_ends_it_at_once() {
        let t0 = Instant::now();
        let mut r = router(1, 2, drain(30));
        r.observe(t0, Success, 0);
        r.observe(t0, Disabled, 0);
        assert!(
            r.checks_in_maintenance(),
            "the checks go on during the drain"
        );
        assert!(r.observe_during_drain(Failure, 0).is_empty());
        assert_eq!(
            r.schedule_state(),
            State::Falling(1),
            "confirmed at the fast interval"
        );
        assert_eq!(r.target(), Some(Target::Draining { penalty: 0 }));
        assert_eq!(r.observe_during_drain(Failure, 0), [Event::DrainAborted]);
        assert_eq!(r.target(), Some(Target::Disabled));
        assert!(!r.checks_in_maintenance());
        assert_eq!(r.next_timer(), None);
    }

    #[test]
    fn leaving_maintenance_mid_drain_keeps_the_failures_seen_during_it() {
        let t0 = Instant::now();
        let mut r = router(1, 2, drain(30));
        r.observe(t0, Success, 0);
        r.observe(t0, Disabled, 0);
        r.observe_during_drain(Failure, 0);
        // The disable file goes while the service still fails: DOWN, never the UP MED.
        let (state, _) = r.observe(t0 + SECOND, Failure, 0);
        assert_eq!(state, State::Down);
        assert_eq!(r.target(), Some(Target::Down));
    }

    #[test]
    fn prefixes_removed_while_up_drain_until_the_service_fails() {
        let t0 = Instant::now();
        let mut r = router(1, 1, drain(10));
        assert_eq!(r.retire(t0), None, "nothing decided: withdraw at once");
        r.observe(t0, Success, 7);
        assert_eq!(r.retire(t0), Some(t0 + 10 * SECOND));
        assert_eq!(r.retired_target(), Target::Draining { penalty: 7 });
        let (_, events) = r.observe(t0 + SECOND, Failure, 0);
        assert_eq!(events, [Event::DrainAborted]);
        assert_eq!(r.retired_target(), Target::Gone);
        // And when the service stays up, the drain ends at its deadline.
        let mut r = router(1, 1, drain(10));
        r.observe(t0, Success, 0);
        r.retire(t0);
        assert_eq!(r.tick(t0 + 10 * SECOND), [Event::RetiredDrainDone]);
        assert_eq!(r.retired_target(), Target::Gone);
    }

    #[test]
    fn a_failing_service_is_never_drained() {
        let t0 = Instant::now();
        let mut r = router(1, 1, drain(5));
        r.observe(t0, Success, 0);
        r.observe(t0, Failure, 0);
        assert_eq!(r.target(), Some(Target::Down));
        assert!(r.observe(t0, Disabled, 0).1.is_empty());
        assert_eq!(r.target(), Some(Target::Disabled));
        assert_eq!(
            r.drain_on_exit(),
            None,
            "SIGTERM while DISABLED withdraws at once"
        );
    }

    #[test]
    fn sigterm_drains_only_from_up() {
        let t0 = Instant::now();
        let mut r = router(1, 1, drain(5));
        assert_eq!(r.drain_on_exit(), None);
        r.observe(t0, Success, 7);
        assert_eq!(
            r.drain_on_exit(),
            Some((Target::Draining { penalty: 7 }, 5 * SECOND))
        );
        let mut off = router(1, 1, Safety::default());
        off.observe(t0, Success, 0);
        assert_eq!(off.drain_on_exit(), None);
    }

    #[test]
    fn the_service_saying_not_serving_is_down_at_once_and_up_again_after_rise() {
        let t0 = Instant::now();
        let mut r = router(3, 3, Safety::default());
        for _ in 0..3 {
            r.observe(t0, Success, 0);
        }
        assert_eq!(r.target(), Some(Target::Up { penalty: 0 }));
        r.observe(t0, NotServing, 0);
        assert_eq!(r.state(), State::Down);
        assert_eq!(
            r.target(),
            Some(Target::Down),
            "no --fall on the service's own word"
        );
        r.observe(t0, Success, 0);
        r.observe(t0, Success, 0);
        assert_eq!(
            r.target(),
            Some(Target::Down),
            "the return needs --rise checks"
        );
        r.observe(t0, Success, 0);
        assert_eq!(r.target(), Some(Target::Up { penalty: 0 }));
    }

    #[test]
    fn not_serving_during_a_maintenance_drain_ends_it() {
        let t0 = Instant::now();
        let mut r = router(1, 3, drain(30));
        r.observe(t0, Success, 0);
        r.observe(t0, Disabled, 0);
        assert!(matches!(r.target(), Some(Target::Draining { .. })));
        assert_eq!(
            r.observe_during_drain(NotServing, 0),
            vec![Event::DrainAborted]
        );
        assert_eq!(r.target(), Some(Target::Disabled));
    }

    #[test]
    fn a_suspicion_changes_no_route_and_asks_for_fall_fast_checks() {
        let t0 = Instant::now();
        let mut r = router(1, 3, Safety::default());
        r.observe(t0, Success, 0);
        assert!(!r.wants_fast_checks());
        r.suspect();
        assert_eq!(r.target(), Some(Target::Up { penalty: 0 }));
        for n in 0..3 {
            assert!(r.wants_fast_checks(), "check {n} after the suspicion");
            r.observe(t0, Success, 0);
        }
        assert!(!r.wants_fast_checks(), "cleared by --fall passing checks");
        r.suspect();
        r.observe(t0, Failure, 0);
        r.observe(t0, Failure, 0);
        r.observe(t0, Failure, 0);
        assert_eq!(
            r.target(),
            Some(Target::Down),
            "confirmed by the fast checks"
        );
    }

    #[test]
    fn a_sigterm_drain_leaves_the_withdraws_their_reserve() {
        let now = Instant::now();
        let budget = now + Duration::from_millis(1200);
        assert_eq!(
            exit_drain_until(now, Duration::from_secs(30), budget),
            Some(budget - WITHDRAW_RESERVE)
        );
        assert_eq!(
            exit_drain_until(now, Duration::from_millis(100), budget),
            Some(now + Duration::from_millis(100))
        );
        assert_eq!(exit_drain_until(now, SECOND, now + WITHDRAW_RESERVE), None);
    }

    #[test]
    fn flapping_holds_down_then_starts_afresh() {
        let t0 = Instant::now();
        let mut r = router(1, 1, damping(3));
        let mut at = t0;
        let mut held = None;
        for (i, observation) in [Success, Failure, Success, Failure, Success]
            .into_iter()
            .enumerate()
        {
            at = t0 + SECOND * u32::try_from(i).unwrap();
            let (_, events) = r.observe(at, observation, 0);
            if !events.is_empty() {
                held = Some(events);
            }
        }
        // UP, then 4 changes: the 4th is more than 3.
        assert_eq!(
            held,
            Some(vec![Event::Held {
                changes: 4,
                window: Duration::from_secs(60),
                until: at + Duration::from_secs(300)
            }])
        );
        assert!(r.is_held());
        assert_eq!(r.target(), Some(Target::Down));
        assert_eq!(r.state(), State::Down);
        // Checks during the hold change nothing.
        for _ in 0..10 {
            r.observe(at + SECOND, Success, 0);
            assert_eq!(r.target(), Some(Target::Down));
        }
        assert_eq!(r.next_timer(), Some(at + Duration::from_secs(300)));
        assert_eq!(r.tick(at + Duration::from_secs(300)), [Event::Released]);
        assert_eq!(r.state(), State::Init);
        assert_eq!(
            r.target(),
            Some(Target::Down),
            "kept until the fresh hysteresis decides"
        );
        r.observe(at + Duration::from_secs(301), Success, 0);
        assert_eq!(r.target(), Some(Target::Up { penalty: 0 }));
    }

    #[test]
    fn changes_outside_the_window_do_not_count() {
        let t0 = Instant::now();
        let mut r = router(1, 1, damping(2));
        for i in 0..20u32 {
            let observation = if i % 2 == 0 { Success } else { Failure };
            r.observe(t0 + Duration::from_secs(31) * i, observation, 0);
            assert!(!r.is_held(), "a change every 31 s is at most 2 per minute");
        }
    }

    // ---- required probes (`--require`) ----------------------------------------------------

    #[test]
    fn a_required_probe_down_is_down_at_once_and_its_return_follows_the_own_checks() {
        let t0 = Instant::now();
        let mut r = router(2, 3, Safety::default());
        r.observe(t0, Success, 0);
        r.observe(t0, Success, 0);
        assert_eq!(r.target(), Some(Target::Up { penalty: 0 }));
        r.require(t0, true, 0);
        assert_eq!(r.state(), State::Down, "no --fall on top");
        assert_eq!(r.target(), Some(Target::Down));
        // The own checks go on underneath and change nothing while it is DOWN.
        r.observe(t0, Success, 0);
        assert_eq!(r.target(), Some(Target::Down));
        r.require(t0, false, 0);
        assert_eq!(
            r.target(),
            Some(Target::Up { penalty: 0 }),
            "own UP: back at once"
        );
        // When the own check failed meanwhile, the return waits for its rise.
        r.require(t0, true, 0);
        r.observe(t0, Failure, 0);
        r.require(t0, false, 0);
        assert_eq!(r.state(), State::Falling(1));
        assert_eq!(
            r.target(),
            Some(Target::Down),
            "FALLING keeps what was decided"
        );
        r.observe(t0, Success, 0);
        r.observe(t0, Success, 0);
        assert_eq!(r.target(), Some(Target::Up { penalty: 0 }));
    }

    #[test]
    fn a_degraded_required_probe_adds_its_penalty() {
        let t0 = Instant::now();
        let mut r = router(1, 1, Safety::default());
        r.observe(t0, Success, 0);
        r.require(t0, false, 200);
        assert_eq!(r.target(), Some(Target::Up { penalty: 200 }));
        r.observe(t0, Success, 300);
        assert_eq!(r.target(), Some(Target::Up { penalty: 300 }), "the larger");
        r.require(t0, false, 0);
        assert_eq!(r.target(), Some(Target::Up { penalty: 300 }));
    }

    #[test]
    fn a_required_probe_down_ends_a_maintenance_drain() {
        let t0 = Instant::now();
        let mut r = router(1, 1, drain(30));
        r.observe(t0, Success, 0);
        r.observe(t0, Disabled, 0);
        assert_eq!(r.target(), Some(Target::Draining { penalty: 0 }));
        assert_eq!(r.require(t0, true, 0), [Event::DrainAborted]);
        assert_eq!(r.target(), Some(Target::Disabled));
        assert_eq!(r.next_timer(), None);
    }

    proptest::proptest! {
        /// Whatever the checks, maintenance, drains and required probes do: never an UP or
        /// draining target while a required probe is DOWN, and never DOWN without a reason
        /// (a DOWN required probe or the own hysteresis or a hold).
        #[test]
        fn never_up_while_a_required_probe_is_down(
            rise in 1u32..4, fall in 1u32..4, drain_secs in 0u64..4,
            steps in proptest::collection::vec((input(), proptest::option::of(proptest::bool::ANY), 0u64..3_000), 1..200),
        ) {
            let safety = Safety { drain: (drain_secs > 0).then(|| Duration::from_secs(drain_secs)), flap: None };
            let mut r = router(rise, fall, safety);
            let mut now = Instant::now();
            let mut required_down = false;
            for (input, require, millis) in steps {
                now += Duration::from_millis(millis);
                if let Some(down) = require {
                    required_down = down;
                    r.require(now, down, 0);
                }
                match input {
                    Input::Observe(observation) => { r.observe(now, observation, 0); }
                    Input::DrainCheck(observation) => { r.observe_during_drain(observation, 0); }
                    Input::Retire => { r.retire(now); }
                    Input::Suspect => r.suspect(),
                    Input::Tick => {}
                }
                if r.next_timer().is_some_and(|at| at <= now) {
                    r.tick(now);
                }
                if required_down {
                    let serving = matches!(r.target(), Some(Target::Up { .. } | Target::Draining { .. }));
                    proptest::prop_assert!(!serving, "{:?} while a required probe is DOWN", r.target());
                    proptest::prop_assert_eq!(r.retired_target(), Target::Gone);
                }
            }
        }
    }

    proptest::proptest! {
        /// Invariant of the autopilot (`runner/checker/steady.rs`): whatever came before, when
        /// the router says it is steady under an observation, that observation at any later
        /// time (any number of times) changes nothing: no event, the same state, target, timers
        /// and schedule, the same answer to the same question.
        #[test]
        fn a_steady_router_is_unchanged_by_the_same_observation(
            rise in 1u32..4, fall in 1u32..4, limit in 0u32..4, drain_secs in 0u64..4,
            steps in proptest::collection::vec((input(), proptest::option::of(proptest::bool::ANY), 0u64..30_000), 1..120),
            penalty in 0u32..3, repeats in 1usize..5, later in 0u64..1_000_000,
        ) {
            let safety = Safety {
                drain: (drain_secs > 0).then(|| Duration::from_secs(drain_secs)),
                flap: (limit > 0).then(|| FlapLimits { limit, window: Duration::from_secs(60), hold: Duration::from_secs(300) }),
            };
            let mut r = router(rise, fall, safety);
            let mut now = Instant::now();
            for (input, require, millis) in steps {
                now += Duration::from_millis(millis);
                if let Some(down) = require {
                    r.require(now, down, penalty);
                }
                match input {
                    Input::Observe(observation) => { r.observe(now, observation, penalty); }
                    Input::DrainCheck(observation) => { r.observe_during_drain(observation, penalty); }
                    Input::Retire => { r.retire(now); }
                    Input::Suspect => r.suspect(),
                    Input::Tick => {}
                }
                if r.next_timer().is_some_and(|at| at <= now) {
                    r.tick(now);
                }
                for observation in [Success, Failure] {
                    for asked in [0, penalty] {
                        if !r.is_steady_under(observation, asked) {
                            continue;
                        }
                        let before = format!("{r:?}");
                        let mut repeated = r.clone();
                        let mut at = now;
                        for _ in 0..repeats {
                            at += Duration::from_millis(later);
                            let (state, events) = repeated.observe(at, observation, asked);
                            proptest::prop_assert!(events.is_empty(), "{:?} after {}", events, before);
                            proptest::prop_assert_eq!(state, r.state());
                            proptest::prop_assert!(repeated.tick(at).is_empty());
                        }
                        proptest::prop_assert_eq!(format!("{repeated:?}"), before);
                    }
                }
            }
        }
    }

    /// One step of the router's property test.
    #[derive(Debug, Clone)]
    enum Input {
        Observe(Observation),
        DrainCheck(Observation),
        Retire,
        Suspect,
        Tick,
    }

    fn input() -> impl proptest::strategy::Strategy<Value = Input> {
        use proptest::prelude::*;
        prop_oneof![
            4 => observation().prop_map(Input::Observe),
            2 => observation().prop_map(Input::DrainCheck),
            1 => Just(Input::Retire),
            1 => Just(Input::Suspect),
            1 => Just(Input::Tick),
        ]
    }

    proptest::proptest! {
        /// Whatever the order of checks, maintenance, reloads and time: no drain and no UP
        /// target while the service is DOWN, no drain once a check in maintenance found it
        /// DOWN, and every drain ends by its deadline.
        #[test]
        fn a_down_service_is_never_drained_nor_up(
            rise in 1u32..4, fall in 1u32..4, drain_secs in 1u64..5,
            steps in proptest::collection::vec((input(), 0u64..3_000), 1..200),
        ) {
            let mut r = router(rise, fall, drain(drain_secs));
            let mut now = Instant::now();
            for (input, millis) in steps {
                now += Duration::from_millis(millis);
                let says_not_serving = matches!(input, Input::Observe(NotServing));
                match input {
                    Input::Observe(observation) => { r.observe(now, observation, 0); }
                    Input::DrainCheck(observation) => { r.observe_during_drain(observation, 0); }
                    Input::Retire => { r.retire(now); }
                    Input::Suspect => {
                        let before = (r.target(), r.retired_target(), r.state());
                        r.suspect();
                        proptest::prop_assert!(r.wants_fast_checks());
                        proptest::prop_assert_eq!(before, (r.target(), r.retired_target(), r.state()));
                    }
                    Input::Tick => {}
                }
                if r.next_timer().is_some_and(|at| at <= now) {
                    r.tick(now);
                }
                if says_not_serving && r.held_until.is_none() {
                    // The service's own word: DOWN at once, whatever came before.
                    proptest::prop_assert_eq!(r.state(), State::Down);
                }
                if r.state() == State::Down {
                    proptest::prop_assert_eq!(r.target(), Some(Target::Down));
                    proptest::prop_assert_eq!(r.retired_target(), Target::Gone);
                }
                if r.schedule_state() == State::Down {
                    let draining = matches!(r.target(), Some(Target::Draining { .. }));
                    proptest::prop_assert!(!draining);
                    proptest::prop_assert_eq!(r.retired_target(), Target::Gone);
                }
                if let Some(at) = r.next_timer() {
                    proptest::prop_assert!(at <= now + Duration::from_secs(drain_secs));
                }
            }
        }

        /// No sequence of check results makes a damped probe announce UP (or drain) during a
        /// hold, and a hold always ends at its deadline.
        #[test]
        fn never_up_during_a_hold(
            rise in 1u32..4, fall in 1u32..4, limit in 1u32..5, drain_secs in 0u64..4,
            steps in proptest::collection::vec((observation(), 0u64..30_000), 1..200),
        ) {
            let safety = Safety {
                drain: (drain_secs > 0).then(|| Duration::from_secs(drain_secs)),
                flap: Some(FlapLimits { limit, window: Duration::from_secs(60), hold: Duration::from_secs(300) }),
            };
            let mut r = router(rise, fall, safety);
            let mut now = Instant::now();
            let mut hold_until: Option<Instant> = None;
            for (observation, millis) in steps {
                now += Duration::from_millis(millis);
                let (_, mut events) = r.observe(now, observation, 0);
                events.extend(r.tick(now));
                for event in &events {
                    if let Event::Held { until, .. } = event {
                        hold_until = Some(*until);
                    }
                    if event == &Event::Released {
                        proptest::prop_assert!(hold_until.is_some_and(|until| now >= until));
                        hold_until = None;
                    }
                }
                if hold_until.is_some_and(|until| now < until) {
                    proptest::prop_assert_eq!(r.target(), Some(Target::Down));
                }
            }
        }
    }
}
