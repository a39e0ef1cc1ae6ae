//! Answers ExaBGP still owes: the ACKs of lines that were not answered within `--ack-timeout`
//! (and of the version query). ExaBGP answers in order, so the late answers come before any
//! newer one; each is matched to the line it answers, so a late `error` un-settles the route it
//! rejected (it is re-sent) instead of being absorbed while the state file says it is held.
//!
//! Memory is bounded: past [`MAX_REMEMBERED`] lines, the oldest are only counted.

use std::collections::{BTreeSet, VecDeque};

use super::deliverer::InFlight;
use crate::engine::render::RouteCommand;
use crate::engine::route::Prefix;

/// Late lines remembered one by one, at most (beyond, only counted).
const MAX_REMEMBERED: usize = 4096;

/// What a late answer settled.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum LateVerdict {
    /// Nothing to do (an answer to a line that settles nothing, or one only counted).
    Absorbed,
    /// The whole action for `prefix` was answered: `accepted` when every line got `done`.
    Settled {
        prefix: Prefix,
        action: RouteCommand,
        accepted: bool,
    },
}

/// The answers still owed, in the order ExaBGP gives them.
#[derive(Debug, Default)]
pub(super) struct Owed {
    /// Answers owed before any remembered line (the version query's, forgotten lines).
    counted: u64,
    lines: VecDeque<InFlight>,
    /// Prefixes with a line answered `error` in the action being answered.
    failing: BTreeSet<Prefix>,
}

impl Owed {
    /// How many answers are owed.
    pub(super) fn total(&self) -> u64 {
        self.counted + self.lines.len() as u64
    }

    /// Owe `count` answers that settle nothing.
    pub(super) fn count(&mut self, count: u64) {
        if self.lines.is_empty() {
            self.counted += count;
        } else {
            // Behind remembered lines: keep the order by forgetting them (rare: a query is
            // only asked first, and `forget_all` is for the exit).
            self.counted += self.lines.len() as u64 + count;
            self.lines.clear();
        }
    }

    /// Owe the answers of `lines` (timed out), after those already owed.
    pub(super) fn lines(&mut self, lines: impl IntoIterator<Item = InFlight>) {
        self.lines.extend(lines);
        while self.lines.len() > MAX_REMEMBERED {
            self.lines.pop_front();
            self.counted += 1;
        }
    }

    /// Turn everything owed into a count (the exit counts answers, it settles nothing).
    pub(super) fn forget_all(&mut self) -> u64 {
        let total = self.total();
        *self = Owed::default();
        total
    }

    /// ExaBGP's next answer, if it is owed: `None` when nothing is owed.
    pub(super) fn answer(&mut self, ok: bool) -> Option<LateVerdict> {
        if self.counted > 0 {
            self.counted -= 1;
            return Some(LateVerdict::Absorbed);
        }
        let line = self.lines.pop_front()?;
        if !ok {
            self.failing.insert(line.prefix);
        }
        if !line.last {
            return Some(LateVerdict::Absorbed);
        }
        let accepted = !self.failing.remove(&line.prefix);
        Some(LateVerdict::Settled {
            prefix: line.prefix,
            action: line.action,
            accepted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::render::RouteAction;

    fn line(prefix: &str, med: u32, last: bool) -> InFlight {
        InFlight {
            prefix: prefix.parse().unwrap(),
            action: RouteCommand {
                action: RouteAction::Announce { med },
                lines: vec![format!("announce route {prefix} med {med}")],
            },
            line: format!("announce route {prefix} med {med}"),
            last,
        }
    }

    #[test]
    fn late_answers_settle_their_own_lines_in_order() {
        let mut owed = Owed::default();
        owed.count(1);
        owed.lines([
            line("192.0.2.1/32", 100, true),
            line("192.0.2.2/32", 100, false),
            line("192.0.2.2/32", 100, true),
        ]);
        assert_eq!(owed.total(), 4);
        assert_eq!(
            owed.answer(true),
            Some(LateVerdict::Absorbed),
            "the query's"
        );
        assert!(matches!(
            owed.answer(false),
            Some(LateVerdict::Settled {
                accepted: false,
                ..
            })
        ));
        assert_eq!(owed.answer(false), Some(LateVerdict::Absorbed));
        let Some(LateVerdict::Settled {
            prefix, accepted, ..
        }) = owed.answer(true)
        else {
            panic!("the action's last line settles it");
        };
        assert_eq!(prefix.to_string(), "192.0.2.2/32");
        assert!(!accepted, "one of its lines was rejected");
        assert_eq!(owed.answer(true), None, "nothing owed any more");
    }

    #[test]
    fn memory_is_bounded_and_order_kept() {
        let mut owed = Owed::default();
        owed.lines((0..MAX_REMEMBERED + 10).map(|_| line("192.0.2.1/32", 100, true)));
        assert_eq!(owed.total(), MAX_REMEMBERED as u64 + 10);
        for _ in 0..10 {
            assert_eq!(owed.answer(false), Some(LateVerdict::Absorbed));
        }
        assert!(matches!(
            owed.answer(false),
            Some(LateVerdict::Settled { .. })
        ));
        assert_eq!(owed.forget_all(), MAX_REMEMBERED as u64 - 1);
        assert_eq!(owed.answer(true), None);
    }
}
