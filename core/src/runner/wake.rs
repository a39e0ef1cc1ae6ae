//! Sleeping until the next check with one wake-up.
//!
//! tokio's timer wheel wakes its thread once for every wheel level a long sleep crosses: three
//! times for a 5 s interval (at the 4 s and 64 ms slot boundaries, then on time), which was most
//! of an idle probe's context switches. A timerfd armed for the deadline wakes epoll exactly
//! once. The in-process tests run under tokio's paused clock, which a timerfd cannot see: there,
//! and if a timerfd cannot be made, tokio's own sleep is used.

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// Wait until `deadline`: one wake-up in production, tokio's clock under test.
pub(crate) async fn sleep_until(deadline: Instant) {
    if cfg!(test) {
        return tokio::time::sleep_until(deadline).await;
    }
    if let Err(error) = one_wake(deadline).await {
        tracing::debug!(%error, "timerfd unavailable; using tokio's timer");
        tokio::time::sleep_until(deadline).await;
    }
}

/// A one-shot timerfd for `deadline` (CLOCK_MONOTONIC, the clock of `Instant`), awaited
/// through the runtime's epoll.
async fn one_wake(deadline: Instant) -> std::io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        // A zero expiration would disarm the timer instead of firing it.
        return Ok(());
    }
    let timer = TimerFd::new(
        ClockId::CLOCK_MONOTONIC,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    )?;
    timer.set(
        Expiration::OneShot(TimeSpec::from_duration(left)),
        TimerSetTimeFlags::empty(),
    )?;
    let timer = OwnedFd::from(timer);
    // SAFETY: the AsyncFd owns the OwnedFd: the descriptor stays open, and the same, until the
    // AsyncFd drops (deregistering it first); nothing else holds or closes it.
    #[allow(unsafe_code)]
    let timer = unsafe { AsyncFd::register_with_interest(timer, Interest::READABLE) }
        .map_err(std::io::Error::from)?;
    loop {
        let mut ready = timer.readable().await?;
        match nix::unistd::read(ready.get_inner(), &mut [0u8; 8]) {
            Ok(_) => return Ok(()),
            Err(Errno::EAGAIN) => ready.clear_ready(),
            Err(error) => return Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The timerfd path itself, on the real clock (the runner's tests use tokio's paused one).
    #[tokio::test]
    async fn a_timerfd_sleep_ends_at_its_deadline_not_before() {
        let started = Instant::now();
        let deadline = started + std::time::Duration::from_millis(30);
        one_wake(deadline).await.unwrap();
        assert!(Instant::now() >= deadline);
        // A deadline already past returns at once (a zero timer would never fire).
        one_wake(started).await.unwrap();
    }
}
