//! What the routes say: the health state (the hysteresis) plus the two routing-safety rules that
//! sit above it.
//!
//! - **Drain before a planned withdraw** (RFC 8326 GRACEFUL_SHUTDOWN): when maintenance starts
//!   while the prefixes are announced UP, they are first re-announced with the drain community
//!   (65535:0 by default) for `--drain`, so routers move traffic away before the final action.
//!   Leaving maintenance during the drain cancels it and re-announces normally. A failing service
//!   is never drained: it is withdrawn (or given the down metric) at once.
//! - **Flap damping**: more than `--flap-limit` changes between UP and DOWN within
//!   `--flap-window` hold the routes in the DOWN action for `--flap-hold`, whatever the checks
//!   say; then a fresh hysteresis starts from INIT.
//!
//! Pure and synchronous, like the hysteresis: time is a parameter and timers are deadlines the
//! caller waits for ([`Router::next_timer`], then [`Router::tick`]).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::health::{Hysteresis, Observation, State};
use crate::render::Target;

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
        }
    }

    /// New limits after a reload; the state and what was decided stay.
    pub(crate) fn reconfigure(&mut self, hysteresis: Hysteresis, safety: Safety) {
        self.hysteresis = hysteresis;
        self.safety = safety;
        if safety.drain.is_none() {
            self.drain = None;
        }
        if safety.flap.is_none() {
            self.held_until = None;
        }
    }

    /// The hysteresis state (DOWN during a flap hold).
    pub(crate) fn state(&self) -> State {
        self.state
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
        match (self.drain, self.held_until) {
            (Some(drain), Some(held)) => Some(drain.until.min(held)),
            (Some(drain), None) => Some(drain.until),
            (None, held) => held,
        }
    }

    /// Feed one check result (`penalty`: the MED penalty of a degraded success).
    pub(crate) fn observe(
        &mut self,
        now: Instant,
        observation: Observation,
        penalty: u32,
    ) -> (State, Vec<Event>) {
        let mut events = Vec::new();
        self.release_if_due(now, &mut events);
        if self.held_until.is_some() {
            // Held down: checks go on (the caller logs them), the routes do not follow them.
            return (self.state, events);
        }
        if observation == Observation::Success {
            self.penalty = penalty;
        }
        self.state = self.hysteresis.next(self.state, observation);
        self.count_change(now, &mut events);
        if self.held_until.is_none() {
            self.decide(now, &mut events);
        }
        (self.state, events)
    }

    /// Let the timers act at `now` (drain over, hold over).
    pub(crate) fn tick(&mut self, now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
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
        if !matches!(self.state, State::Up | State::Down) {
            return;
        }
        let changed = self.side.is_some_and(|side| side != self.state);
        self.side = Some(self.state);
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
        match self.state {
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
                    penalty: self.penalty,
                });
            }
            State::Down => {
                if self.drain.take().is_some() {
                    events.push(Event::DrainCancelled);
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
    use crate::health::tests::observation;
    use Observation::{Disabled, Failure, Success};

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
        assert_eq!(state, State::Rising(1));
        assert_eq!(events, [Event::DrainCancelled]);
        assert_eq!(r.target(), Some(Target::Up { penalty: 50 }));
        assert_eq!(r.next_timer(), None);
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

    proptest::proptest! {
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
