//! Sleeping until the next check with one wake-up.
//!
//! tokio's timer wheel wakes its thread once for every wheel level a long sleep crosses: three
//! times for a 5 s interval (at the 4 s and 64 ms slot boundaries, then on time), which was most
//! of an idle probe's context switches. A timerfd armed for the deadline wakes epoll exactly
//! once. The in-process tests run under tokio's paused clock, which a timerfd cannot see: there,
//! and if a timerfd cannot be made, tokio's own sleep is used.

use std::cell::{Cell, RefCell};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::timerfd::{ClockId, TimerFd, TimerFlags};
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
/// through the runtime's epoll. The timerfd is kept for the next sleep (see [`Lease`]): made
/// and registered once, each sleep is one `timerfd_settime` and one wake-up. It is never read:
/// re-arming zeroes its expiration count, and epoll (edge-triggered) reports every expiration
/// anew; whether a readiness is this sleep's or left from an earlier one, the clock says.
async fn one_wake(deadline: Instant) -> std::io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        // A zero expiration would disarm the timer instead of firing it.
        return Ok(());
    }
    let lease = Lease::take()?;
    let timer = lease.timer()?;
    settime(timer.get_ref(), left)?;
    loop {
        let mut ready = match timer.readable().await {
            Ok(ready) => ready,
            Err(error) => {
                lease.broken.set(true);
                return Err(error);
            }
        };
        // Fired (the timer and `Instant` share CLOCK_MONOTONIC, and it was armed after `left`
        // was measured) or left over from an earlier use: wait for the next edge either way.
        ready.clear_ready();
        if Instant::now() >= deadline {
            return Ok(());
        }
    }
}

/// Arm `timer` once for `left` from now.
fn settime(timer: &OwnedFd, left: std::time::Duration) -> nix::Result<()> {
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        },
    };
    // SAFETY: a valid descriptor we own, a valid itimerspec, and a null old value.
    #[allow(unsafe_code)]
    let result =
        unsafe { libc::timerfd_settime(timer.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
    Errno::result(result).map(drop)
}

/// Timerfds registered with this thread's runtime, idle. A probe sleeps on one at a time (two
/// during a drain or a flap hold), so a couple are kept. Per thread because a registration
/// belongs to the runtime driving this thread (a current-thread runtime in the binaries); one
/// from a runtime that has since shut down fails its first wait and is discarded.
const SPARES_KEPT: usize = 2;

thread_local! {
    static SPARES: RefCell<Vec<AsyncFd<OwnedFd>>> = const { RefCell::new(Vec::new()) };
}

/// A timerfd lent to one sleep, given back when the sleep ends or is dropped. One dropped before
/// it fired (a check that ended before its timeout) is not disarmed: the next sleep re-arms it,
/// sooner than it was due, and should it fire first, that sleep's clock check sees through it.
struct Lease {
    timer: Option<AsyncFd<OwnedFd>>,
    broken: Cell<bool>,
}

impl Lease {
    fn take() -> std::io::Result<Lease> {
        let spare = SPARES.with(|spares| spares.borrow_mut().pop());
        let timer = match spare {
            Some(timer) => timer,
            None => new_timer()?,
        };
        Ok(Lease {
            timer: Some(timer),
            broken: Cell::new(false),
        })
    }

    fn timer(&self) -> std::io::Result<&AsyncFd<OwnedFd>> {
        self.timer
            .as_ref()
            .ok_or_else(|| std::io::Error::other("no timer"))
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(timer) = self.timer.take() else {
            return;
        };
        if self.broken.get() {
            return;
        }
        // `try_with`: the thread may be exiting, its pool already gone.
        let _ = SPARES.try_with(|spares| {
            let mut spares = spares.borrow_mut();
            if spares.len() < SPARES_KEPT {
                spares.push(timer);
            }
        });
    }
}

/// A new non-blocking timerfd on CLOCK_MONOTONIC, registered with the runtime.
fn new_timer() -> std::io::Result<AsyncFd<OwnedFd>> {
    let timer = TimerFd::new(
        ClockId::CLOCK_MONOTONIC,
        TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
    )?;
    let timer = OwnedFd::from(timer);
    // SAFETY: the AsyncFd owns the OwnedFd: the descriptor stays open, and the same, until the
    // AsyncFd drops (deregistering it first); nothing else holds or closes it.
    #[allow(unsafe_code)]
    let timer = unsafe { AsyncFd::register_with_interest(timer, Interest::READABLE) }
        .map_err(std::io::Error::from)?;
    Ok(timer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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

    /// A timer given back armed (its sleep dropped) is not disarmed: when it is reused, neither
    /// the old deadline (passed while it waited as a spare) nor readiness left from earlier uses
    /// ends the new sleep early.
    #[tokio::test]
    async fn a_reused_timer_waits_for_its_own_deadline() {
        let abandoned = one_wake(Instant::now() + Duration::from_millis(20));
        assert!(
            tokio::time::timeout(Duration::from_millis(1), abandoned)
                .await
                .is_err()
        );
        assert_eq!(SPARES.with(|spares| spares.borrow().len()), 1);
        // Let the abandoned deadline pass: a timer still armed would fire now.
        tokio::time::sleep(Duration::from_millis(40)).await;
        for _ in 0..3 {
            let deadline = Instant::now() + Duration::from_millis(30);
            one_wake(deadline).await.unwrap();
            assert!(Instant::now() >= deadline);
            assert_eq!(
                SPARES.with(|spares| spares.borrow().len()),
                1,
                "one timer, reused"
            );
        }
    }

    /// A sleep on a timer abandoned with a later deadline ends at its own, earlier, deadline
    /// (re-arming replaces the old one), and the old deadline does not end the next sleep.
    #[tokio::test]
    async fn re_arming_replaces_an_abandoned_deadline() {
        let abandoned = one_wake(Instant::now() + Duration::from_secs(60));
        assert!(
            tokio::time::timeout(Duration::from_millis(1), abandoned)
                .await
                .is_err()
        );
        let deadline = Instant::now() + Duration::from_millis(20);
        tokio::time::timeout(Duration::from_secs(10), one_wake(deadline))
            .await
            .expect("the new deadline, not the abandoned one")
            .unwrap();
        assert!(Instant::now() >= deadline);
    }
}
