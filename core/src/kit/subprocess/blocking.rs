//! Running a program on a thread of its own, without the async runtime: the runner's autopilot
//! repeats a steady exec check this way (`engine/runner/autopilot.rs`).
//!
//! The same guarantees as [`run_captured`](super::run_captured): a process group of its own,
//! stdin from `/dev/null`, stdout and stderr read as they come (their last bytes kept), and
//! nothing it started left behind. The waits are `ppoll` on the leader's pidfd, the pipes and a
//! stop descriptor: one wake-up for the program's exit, none for the runtime. The cleanup of
//! leftovers is bounded ([`SETTLE_LIMIT`]): a process that does not die of SIGKILL (stuck in
//! the kernel) is reaped later, by any other reap, instead of holding the thread.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::time::TimeSpec;

use super::output::{READS_PER_WAKE, Tail, join_tails, read_direct};
use super::*;

/// The longest a cleanup after a run waits for what it killed.
const SETTLE_LIMIT: Duration = Duration::from_secs(1);

/// How a run without the runtime ended.
#[derive(Debug)]
pub enum Ended {
    /// The program exited (or was killed by someone else).
    Finished(Finished),
    /// The deadline came first: everything it started was killed.
    TimedOut,
    /// The stop descriptor turned readable first: everything it started was killed.
    Stopped,
}

/// The stdout and stderr pipes of runs on one thread, kept between runs while they end clean.
#[derive(Default)]
pub struct Pipes {
    kept: Option<[(OwnedFd, OwnedFd); 2]>,
}

impl Pipes {
    fn take(&mut self) -> std::io::Result<[(OwnedFd, OwnedFd); 2]> {
        if let Some(pipes) = self.kept.take() {
            return Ok(pipes);
        }
        let pipe = || -> std::io::Result<(OwnedFd, OwnedFd)> {
            let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
            fcntl(&read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
            Ok((read, write))
        };
        Ok([pipe()?, pipe()?])
    }
}

/// Whether [`run_blocking`] can run programs here: it waits on pidfds (Linux 5.3 and later,
/// unless a seccomp filter refuses them). Where it cannot, checks stay with the runtime.
pub fn runs_without_runtime() -> bool {
    pidfds_work()
}

/// Run `program` until it exits, `deadline`, or `stop` turns readable, keeping the last `tail`
/// bytes of each of its stdout and stderr. Blocks the calling thread; never call it on the
/// runtime's.
pub fn run_blocking(
    program: &Program,
    tail: usize,
    deadline: Instant,
    stop: BorrowedFd<'_>,
    pipes: &mut Pipes,
) -> std::io::Result<Ended> {
    let [(out_read, out_write), (err_read, err_write)] = pipes.take()?;
    let mut job = Job::spawn(
        program,
        [dev_null()?.as_fd(), out_write.as_fd(), err_write.as_fd()],
    )?;
    let pid = job.pid;
    let pidfd = match job.pidfd.take() {
        Some(Pidfd::Open(pidfd)) => pidfd,
        _ => {
            abandon(job);
            return Err(std::io::Error::other("no pidfd for the program"));
        }
    };
    let mut tails = [Tail::new(tail), Tail::new(tail)];
    let reads = [out_read.as_fd(), err_read.as_fd()];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            abandon(job);
            return Ok(Ended::TimedOut);
        }
        // The pidfd first: `ppoll` looks at the descriptors in order, so when it finds the
        // leader exited, the pipes are looked at after every write the leader made.
        let mut fds = [
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(reads[0], PollFlags::POLLIN),
            PollFd::new(reads[1], PollFlags::POLLIN),
            PollFd::new(stop, PollFlags::POLLIN),
        ];
        match ppoll(&mut fds, Some(TimeSpec::from_duration(left)), None) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(error) => {
                abandon(job);
                return Err(error.into());
            }
        }
        let ready = fds
            .each_ref()
            .map(|fd| fd.revents().is_some_and(|events| !events.is_empty()));
        for (index, tail) in tails.iter_mut().enumerate() {
            if ready[index + 1] {
                read_direct(reads[index], tail, READS_PER_WAKE);
            }
        }
        if ready[0] {
            break;
        }
        if ready[3] {
            abandon(job);
            return Ok(Ended::Stopped);
        }
    }
    // Exited (its pidfd said so): reaped here, or by another reap that kept its status.
    let Some(status) = job.take_status() else {
        abandon(job);
        return Err(std::io::Error::other("its exit status was lost"));
    };
    // Whatever the leader wrote was read above; a descendant may have written since.
    let drained = reads
        .iter()
        .zip(&mut tails)
        .all(|(read, tail)| read_direct(*read, tail, 2 * READS_PER_WAKE));
    if job.children_left {
        settle_blocking(Scope::Ending(pid));
    }
    job.settled();
    if drained && !job.children_left {
        pipes.kept = Some([(out_read, out_write), (err_read, err_write)]);
    }
    let output_tail = join_tails(&[tails[0].text(), tails[1].text()]);
    Ok(Ended::Finished(Finished {
        status,
        output_tail,
    }))
}

/// Give up on the running `job`: dropped, it is unregistered and its group killed (without a
/// runtime its drop spawns no cleanup); then everything it left is killed and reaped here.
fn abandon(job: Job) {
    let pid = job.pid;
    drop(job);
    settle_blocking(Scope::Ending(pid));
}

/// [`settle`] on this thread, for at most [`SETTLE_LIMIT`].
fn settle_blocking(scope: Scope) {
    let deadline = Instant::now() + SETTLE_LIMIT;
    while Instant::now() < deadline {
        match cleanup_round(scope) {
            Round::Done => return,
            Round::Wait(Some(exits)) => {
                for exit in exits {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let mut fds = [PollFd::new(exit.as_fd(), PollFlags::POLLIN)];
                    let _ = ppoll(&mut fds, Some(TimeSpec::from_duration(left)), None);
                }
            }
            Round::Wait(None) => std::thread::sleep(CLEANUP_PAUSE),
        }
    }
}
