//! The wait between a watcher's reconnection attempts: short at first (a restarted server is
//! back within a moment), doubling to a bound (a server down for long costs one attempt every
//! few seconds, not a busy loop), back to short once the service answered again.

use std::time::Duration;

/// The first wait of [`Backoff::default`].
const FIRST: Duration = Duration::from_millis(100);
/// The longest wait of [`Backoff::default`].
const MAX: Duration = Duration::from_secs(5);

/// A doubling, bounded wait between reconnection attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Waits of `first`, doubling up to `max`.
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first.min(max),
        }
    }

    /// The wait before the next attempt (each call doubles the following one, up to the bound).
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// The service answered: the next wait is the first one again.
    pub fn reset(&mut self) {
        self.next = self.first.min(self.max);
    }

    /// The longest wait.
    pub fn max(&self) -> Duration {
        self.max
    }
}

impl Default for Backoff {
    /// 100 ms doubling to 5 s: what the probes' watchers use.
    fn default() -> Backoff {
        Backoff::new(FIRST, MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_bound_and_resets() {
        let mut backoff = Backoff::default();
        let waits: Vec<u64> = (0..8)
            .map(|_| backoff.next_wait().as_millis() as u64)
            .collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next_wait(), FIRST);
        assert_eq!(backoff.max(), MAX);
    }
}
