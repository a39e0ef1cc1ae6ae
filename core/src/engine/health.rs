//! The hysteresis state machine, with ExaBGP healthcheck's states and meaning.
//!
//! Pure and synchronous: [`Hysteresis::next`] maps a state and one observation to the next
//! state. The runner decides what to announce from the state; nothing here does I/O.

use std::fmt;

/// Where the service stands after the checks so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Just started: nothing decided, nothing announced.
    Init,
    /// Succeeding, not yet `rise` times in a row (the count so far).
    Rising(u32),
    /// Serving.
    Up,
    /// Failing, not yet `fall` times in a row (the count so far).
    Falling(u32),
    /// Not serving.
    Down,
    /// The disable file exists: maintenance, the check is not run.
    Disabled,
}

impl State {
    /// The state's name as ExaBGP's healthcheck spells it (used in logs and the hooks' `STATE`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Rising(_) => "RISING",
            State::Up => "UP",
            State::Falling(_) => "FALLING",
            State::Down => "DOWN",
            State::Disabled => "DISABLED",
        }
    }

    /// RISING and FALLING use the fast interval.
    pub(crate) fn is_transitional(self) -> bool {
        matches!(self, State::Rising(_) | State::Falling(_))
    }

    /// True when `other` is a different state by name (a count step is not a transition).
    pub(crate) fn differs_from(self, other: State) -> bool {
        self.name() != other.name()
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One input to the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observation {
    /// The disable file exists (the check was not run).
    Disabled,
    /// The check passed (healthy or degraded).
    Success,
    /// The check failed or timed out.
    Failure,
    /// The service itself said it is not serving (an authoritative event): DOWN at once.
    NotServing,
}

/// Rise and fall counts: how many consecutive results it takes to change sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hysteresis {
    /// Consecutive successes needed for UP (at least 1).
    pub rise: u32,
    /// Consecutive failures needed for DOWN (at least 1).
    pub fall: u32,
}

impl Hysteresis {
    /// The state after observing `observation` in `state`.
    ///
    /// As ExaBGP's healthcheck, with one difference: leaving DISABLED starts over from INIT with
    /// the same check's result (the healthcheck drops that result and waits one more interval).
    pub(crate) fn next(&self, state: State, observation: Observation) -> State {
        match (state, observation) {
            (_, Observation::Disabled) => State::Disabled,
            (State::Disabled, result) => self.next(State::Init, result),
            (State::Init | State::Falling(_) | State::Down, Observation::Success) => self.rising(1),
            (State::Rising(count), Observation::Success) => self.rising(count.saturating_add(1)),
            (State::Up, Observation::Success) => State::Up,
            (State::Init | State::Rising(_) | State::Up, Observation::Failure) => self.falling(1),
            (State::Falling(count), Observation::Failure) => self.falling(count.saturating_add(1)),
            (State::Down, Observation::Failure) => State::Down,
            (_, Observation::NotServing) => State::Down,
        }
    }

    fn rising(&self, count: u32) -> State {
        if count >= self.rise {
            State::Up
        } else {
            State::Rising(count)
        }
    }

    fn falling(&self, count: u32) -> State {
        if count >= self.fall {
            State::Down
        } else {
            State::Falling(count)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::Observation::{Disabled, Failure, NotServing, Success};
    use super::State::*;
    use super::*;

    const H: Hysteresis = Hysteresis { rise: 3, fall: 2 };

    #[test]
    fn every_transition() {
        let cases = [
            (Init, Success, Rising(1)),
            (Init, Failure, Falling(1)),
            (Init, Disabled, State::Disabled),
            (Rising(1), Success, Rising(2)),
            (Rising(2), Success, Up),
            (Rising(2), Failure, Falling(1)),
            (Rising(1), Disabled, State::Disabled),
            (Up, Success, Up),
            (Up, Failure, Falling(1)),
            (Up, Disabled, State::Disabled),
            (Falling(1), Failure, Down),
            (Falling(1), Success, Rising(1)),
            (Falling(1), Disabled, State::Disabled),
            (Down, Failure, Down),
            (Down, Success, Rising(1)),
            (Down, Disabled, State::Disabled),
            (State::Disabled, Disabled, State::Disabled),
            (State::Disabled, Success, Rising(1)),
            (State::Disabled, Failure, Falling(1)),
            (Init, NotServing, Down),
            (Rising(2), NotServing, Down),
            (Up, NotServing, Down),
            (Falling(1), NotServing, Down),
            (Down, NotServing, Down),
            (State::Disabled, NotServing, Down),
        ];
        for (from, observation, to) in cases {
            assert_eq!(H.next(from, observation), to, "{from:?} + {observation:?}");
        }
    }

    #[test]
    fn rise_and_fall_of_one_skip_the_transitional_states() {
        let h = Hysteresis { rise: 1, fall: 1 };
        assert_eq!(h.next(Init, Success), Up);
        assert_eq!(h.next(Init, Failure), Down);
        assert_eq!(h.next(Up, Failure), Down);
        assert_eq!(h.next(Down, Success), Up);
        assert_eq!(h.next(State::Disabled, Success), Up);
    }

    #[test]
    fn names_and_kinds() {
        assert_eq!(Rising(2).to_string(), "RISING");
        assert!(Falling(1).is_transitional() && !Up.is_transitional());
        assert!(!Rising(1).differs_from(Rising(2)));
        assert!(Rising(2).differs_from(Up));
    }

    /// Any observation, for property tests here and in `routing`.
    pub(crate) fn observation() -> impl proptest::strategy::Strategy<Value = Observation> {
        proptest::prop_oneof![
            proptest::strategy::Just(Success),
            proptest::strategy::Just(Failure),
            proptest::strategy::Just(Disabled),
            proptest::strategy::Just(NotServing),
        ]
    }

    proptest::proptest! {
        /// UP is reached exactly after `rise` consecutive successes (outside DISABLED), DOWN after
        /// `fall` consecutive failures; never sooner.
        #[test]
        fn up_and_down_need_consecutive_results(
            rise in 1u32..6, fall in 1u32..6,
            observations in proptest::collection::vec(observation(), 0..60),
        ) {
            let h = Hysteresis { rise, fall };
            let mut state = Init;
            let (mut successes, mut failures) = (0u32, 0u32);
            for observation in observations {
                let before = state;
                state = h.next(state, observation);
                match observation {
                    Success => { successes += 1; failures = 0; }
                    Failure => { failures += 1; successes = 0; }
                    Disabled => { successes = 0; failures = 0; }
                    // The service's own word stands for the `fall` confirmations.
                    NotServing => { failures = fall; successes = 0; }
                }
                if observation == NotServing {
                    proptest::prop_assert_eq!(state, Down);
                }
                if state == Up && before != Up {
                    proptest::prop_assert!(successes >= rise);
                }
                if state == Down && before != Down {
                    proptest::prop_assert!(failures >= fall);
                }
                if observation == Disabled {
                    proptest::prop_assert_eq!(state, State::Disabled);
                }
            }
        }
    }
}
