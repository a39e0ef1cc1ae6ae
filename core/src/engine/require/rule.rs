//! The combination rule: the required probes' states and `--require-min N` in, one verdict out.
//!
//! With M required probes and N = `--require-min` (default M), counting from the best:
//!
//! | the required probes                                 | verdict                  |
//! |-----------------------------------------------------|--------------------------|
//! | at least N are UP                                   | UP (changes nothing)     |
//! | at least N are UP or DEGRADED                       | DEGRADED (the penalty)   |
//! | at least N are UP, DEGRADED or in MAINTENANCE       | MAINTENANCE              |
//! | fewer than N are even that                          | DOWN, naming them        |
//!
//! A missing, malformed, stale or unknown state file is DOWN before it gets here, so it never
//! counts towards N. Improving one probe's state never worsens the verdict (monotonic).

use super::state::RequiredState;

/// One required probe as the rule sees it: its name (for reasons) and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Named<'a> {
    /// `"dns"`, or the file's path while the file does not say.
    pub(crate) name: &'a str,
    /// Its state.
    pub(crate) state: &'a RequiredState,
}

/// The verdict for `required` with at least `min` of them serving (`None`: all of them).
pub(crate) fn combine(required: &[Named<'_>], min: Option<usize>) -> RequiredState {
    if required.is_empty() {
        return RequiredState::Up;
    }
    let needed = min.unwrap_or(required.len()).clamp(1, required.len());
    let at_least = |rank: u8| required.iter().filter(|r| r.state.rank() >= rank).count();
    let worst_below = |rank: u8| -> String {
        required
            .iter()
            .filter(|r| r.state.rank() < rank)
            .map(|r| format!("required \"{}\" is {}", r.name, r.state))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let short = |rank: u8| {
        let why = worst_below(rank);
        if needed == required.len() {
            why
        } else {
            format!(
                "{} of {} required probes serving, --require-min {needed}: {why}",
                at_least(2),
                required.len()
            )
        }
    };
    if at_least(3) >= needed {
        RequiredState::Up
    } else if at_least(2) >= needed {
        RequiredState::Degraded(short(3))
    } else if at_least(1) >= needed {
        RequiredState::Maintenance(short(2))
    } else {
        RequiredState::Down(short(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn up() -> RequiredState {
        RequiredState::Up
    }
    fn degraded() -> RequiredState {
        RequiredState::Degraded("slow".into())
    }
    fn maintenance() -> RequiredState {
        RequiredState::Maintenance("disable file /d exists".into())
    }
    fn down() -> RequiredState {
        RequiredState::Down("refused".into())
    }

    fn verdict(states: &[RequiredState], min: Option<usize>) -> RequiredState {
        let names = ["uplink", "dns", "db"];
        let named: Vec<Named> = states
            .iter()
            .zip(names)
            .map(|(state, name)| Named { name, state })
            .collect();
        combine(&named, min)
    }

    /// One case per row of the semantics table.
    #[test]
    fn each_row() {
        assert_eq!(verdict(&[], None), up(), "nothing required");
        assert_eq!(verdict(&[up(), up()], None), up());
        assert_eq!(
            verdict(&[up(), degraded()], None),
            RequiredState::Degraded("required \"dns\" is DEGRADED: slow".into())
        );
        assert_eq!(
            verdict(&[up(), down()], None),
            RequiredState::Down("required \"dns\" is DOWN: refused".into())
        );
        assert_eq!(
            verdict(&[maintenance(), up()], None),
            RequiredState::Maintenance(
                "required \"uplink\" is MAINTENANCE: disable file /d exists".into()
            )
        );
        assert_eq!(
            verdict(&[maintenance(), down()], None).name(),
            "DOWN",
            "a DOWN probe wins when maintenance alone would not reach N"
        );
        // N of M.
        assert_eq!(verdict(&[down(), up(), down()], Some(1)), up(), "any");
        assert_eq!(
            verdict(&[down(), degraded(), up()], Some(2)),
            RequiredState::Degraded(
                "2 of 3 required probes serving, --require-min 2: required \"uplink\" is DOWN: refused; required \"dns\" is DEGRADED: slow".into()
            )
        );
        assert_eq!(
            verdict(&[down(), down(), up()], Some(2)),
            RequiredState::Down(
                "1 of 3 required probes serving, --require-min 2: required \"uplink\" is DOWN: refused; required \"dns\" is DOWN: refused".into()
            )
        );
        assert_eq!(verdict(&[up(), up()], Some(5)), up(), "N above M means all");
        assert_eq!(
            verdict(&[down(), up()], Some(0)),
            up(),
            "N of 0 means at least one"
        );
    }

    fn state() -> impl Strategy<Value = RequiredState> {
        prop_oneof![
            Just(up()),
            Just(degraded()),
            Just(maintenance()),
            Just(down())
        ]
    }

    proptest! {
        /// A DOWN dependency never counts as serving; improving one dependency or lowering N
        /// never worsens the verdict; the verdict is UP only with N of them UP.
        #[test]
        fn never_healthy_beyond_n_and_monotonic(
            states in proptest::collection::vec(state(), 1..6),
            min in proptest::option::of(0usize..8),
            which in 0usize..6,
        ) {
            let m = states.len();
            let needed = min.unwrap_or(m).clamp(1, m);
            let now = verdict_of(&states, min);
            let serving = states.iter().filter(|s| s.rank() >= 2).count();
            prop_assert_eq!(now.rank() >= 2, serving >= needed);
            let ups = states.iter().filter(|s| **s == RequiredState::Up).count();
            prop_assert_eq!(now == RequiredState::Up, ups >= needed);
            // Improve one.
            let mut better = states.clone();
            let i = which % m;
            better[i] = match better[i].rank() {
                0 => maintenance(),
                1 => degraded(),
                _ => up(),
            };
            prop_assert!(verdict_of(&better, min).rank() >= now.rank());
            // Ask for fewer.
            let fewer = Some(needed.saturating_sub(1));
            prop_assert!(verdict_of(&states, fewer).rank() >= now.rank());
        }
    }

    fn verdict_of(states: &[RequiredState], min: Option<usize>) -> RequiredState {
        let names: Vec<String> = (0..states.len()).map(|i| format!("p{i}")).collect();
        let named: Vec<Named> = states
            .iter()
            .zip(&names)
            .map(|(state, name)| Named { name, state })
            .collect();
        combine(&named, min)
    }
}
