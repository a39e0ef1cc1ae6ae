//! Running a program (the exec check, a transition hook) so that whatever it writes cannot stall
//! it and nothing it starts outlives it.
//!
//! # What [`run_captured`] guarantees
//!
//! - stdout and stderr are read while the program runs, keeping only the last `tail` bytes of
//!   each: a program may write any amount and is judged by its exit status alone.
//! - The program runs in a process group of its own with stdin from `/dev/null`. When its own
//!   process exits, or when the future is dropped (the runner's timeout), the group is killed
//!   (SIGKILL) and so is every descendant that left it (`setsid`, `setpgid`): this process is a
//!   child subreaper (`PR_SET_CHILD_SUBREAPER`), so orphaned descendants are reparented to it
//!   instead of to init, where they can be found and killed. Everything killed is reaped: no
//!   zombie, no leftover.
//! - The pipes are never read to EOF: once the program's own process has exited, what is already
//!   in them is read without waiting, so a descendant holding them open cannot stall the caller.
//!
//! # Design: one reaper, statuses routed by pid
//!
//! Orphans can only be reaped with `waitpid(-1)`, which would steal the exit status of any child
//! waited for elsewhere (tokio::process, std's `Child::wait`). So this module owns all waiting
//! for children in the process: code in a process that uses it must not start children any
//! other way. (The probes and hooks do not; tests that spawn the binaries live in other
//! processes.)
//!
//! - A registry (a mutex-guarded list) holds the running jobs: the leader's pid, which is also
//!   the process group id, and once reaped its exit status.
//! - `reap` loops `waitpid(-1, WNOHANG)` under the lock: a registered pid's status is stored
//!   for its job, any other pid (an orphan) is simply reaped. Whichever task is awake reaps; there
//!   is no reaper thread or task, hence no thread hand-off.
//! - A job waits for its leader's exit on a pidfd (`pidfd_open`, readable once the process has
//!   exited), registered with the runtime: one `epoll_wait` return, and no signal at all, so no
//!   interrupted `epoll_wait`, signal handler and self-pipe per check. The pidfd is opened under
//!   the lock, before anyone can reap the leader, so the pid it names is the leader's. Where
//!   pidfds are not available (before Linux 5.3, a seccomp filter), the job waits on tokio's
//!   SIGCHLD stream, its listener made before the spawn. The cleanup rounds below wait on
//!   pidfds too (on SIGCHLD without them, its listener made before the first round): tokio's
//!   SIGCHLD handler, once installed, stays for the life of the process, and every later check
//!   would take a signal and three more syscalls.
//! - Spawning is `posix_spawn` (`clone` with `CLONE_VM | CLONE_VFORK`): the probe's address
//!   space is never copied. The program, its arguments and environment are converted once (a
//!   [`Program`]), the file actions once per thread for the pipes it reuses (`spawn.rs`).
//! - Output: the read ends of the pipes are registered with the runtime and read as data comes.
//!   We keep the write ends open until the leader is reaped, so the pipes never hang up while it
//!   runs or as it exits: a quiet program costs one wake-up (its SIGCHLD), not three. Pipes that
//!   end a run empty and held by nobody else are reused by the next run, still registered with
//!   the runtime (creating and registering a pipe is one of the dearer steps of a check); stdin
//!   is one `/dev/null` kept open.
//! - Cleanup, when the leader has been reaped: when this process has no child at all, `waitpid`
//!   says so (`ECHILD`) and nothing the leader started can be alive (an orphan is reparented to
//!   us, the subreaper, before its parent can be reaped): the common case costs no extra
//!   syscall. Otherwise SIGKILL its group at once (the group id cannot have been reused: the reap
//!   and the kill happen under one lock, and members keep the id alive). Then, round after round,
//!   list this process's children (`/proc/self/task/*/children`), SIGKILL each that is not a
//!   running job's leader or a member of a running job's group, wait until each has ended (a
//!   pidfd opened before the kill) and reap:
//!   killing a process reparents its children to us, so each round reaches one level deeper,
//!   until no such child is left.
//! - Attribution: an orphan in a running job's group belongs to that job and is left alone. An
//!   orphan that left every group (`setsid`) cannot be attributed: it is killed when a job ends
//!   and no other is running, so a hook running beside a check keeps its own escapees until it
//!   ends. In the usual case (no hook running) it is killed when the check ends.
//! - Without the runtime ([`run_blocking`], `blocking.rs`, for the runner's autopilot thread):
//!   the same registry, spawn and cleanup rounds, waiting in `ppoll` on the pidfd, the pipes
//!   and a stop descriptor instead of the runtime's epoll.
//! - On drop (a timeout): the job is unregistered, its group killed, and the same cleanup is
//!   spawned as a task on the runtime. [`shutdown`] kills and reaps whatever is left, for a
//!   process about to exit.

use std::cell::RefCell;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
mod blocking;
mod output;
mod spawn;

pub use blocking::{Ended, Pipes, run_blocking, runs_without_runtime};
pub use spawn::Program;

use output::{Capture, OutputPipe, dev_null, join_tails};
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe::Receiver;
use tokio::signal::unix::{SignalKind, signal};

/// How much of each of stdout and stderr is kept for a reason or a log line.
pub const TAIL_BYTES: usize = 4096;

/// How a captured program ended.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// The kept tails of its stdout and stderr, lossily decoded, control characters dropped,
    /// whitespace collapsed, joined by ` | `.
    pub output_tail: String,
}

/// Run `program` in a new process group with stdin from `/dev/null`, reading stdout and stderr as
/// they come and keeping the last `tail` bytes of each. When the program's own process exits,
/// everything it started is killed and reaped before this returns; dropping the future kills
/// everything too (the reaping then finishes on a task of its own).
pub async fn run_captured(program: &Program, tail: usize) -> std::io::Result<Finished> {
    // Without pidfds, the SIGCHLD listener must exist before the child does, or the signal
    // could be missed.
    let mut sigchld = if pidfds_work() {
        None
    } else {
        Some(signal(SignalKind::child())?)
    };
    let out = OutputPipe::take()?;
    let err = OutputPipe::take()?;
    let mut job = Job::spawn(
        program,
        [dev_null()?.as_fd(), out.write.as_fd(), err.write.as_fd()],
    )?;
    let mut stdout = Capture::new(out, tail);
    let mut stderr = Capture::new(err, tail);
    let mut exited = false;
    let status = loop {
        if exited {
            if let Some(status) = job.take_status() {
                break status;
            }
            exited = false;
        }
        tokio::select! {
            biased;
            notice = job.exit(sigchld.as_mut()) => {
                notice?;
                exited = true;
            }
            () = stdout.fill(), if stdout.is_open() => {}
            () = stderr.fill(), if stderr.is_open() => {}
        }
    };
    // The program is gone; a descendant may still hold the pipes: take what is there, no more.
    // The pidfd's readiness is this program's exit alone; SIGCHLD may be another child's.
    let exit_from_pidfd = job.pidfd.is_some();
    let drained = stdout.drain_now(exit_from_pidfd) & stderr.drain_now(exit_from_pidfd);
    if job.children_left {
        settle(Scope::Ending(job.pid)).await;
    }
    job.settled();
    let output_tail = join_tails(&[stdout.tail.text(), stderr.tail.text()]);
    // A process left at the reap could have written after the drain (or still hold a write
    // end): then the pipes are not reused.
    if drained && !job.children_left {
        // Empty, and no process is left that could hold a write end: fit for the next run. In
        // the reverse order of taking, so the next run gets the same pipes in the same roles and
        // its spawn the file actions already made for them.
        stderr.recycle();
        stdout.recycle();
    }
    Ok(Finished {
        status,
        output_tail,
    })
}

/// Kill every program still running (checks, hooks, what they left behind) and reap them,
/// waiting at most `grace`. For a process about to exit: without it, a descendant that a
/// timed-out check left outside its process group would outlive the probe.
pub async fn shutdown(grace: Duration) {
    {
        let jobs = registry();
        for job in jobs.iter().filter(|job| job.status.is_none()) {
            let _ = killpg(job.pid, Signal::SIGKILL);
        }
    }
    let _ = tokio::time::timeout(grace, settle(Scope::Everything)).await;
}

/// Describe an exit status for a log line: `exit 3`, `killed by signal 9`.
pub fn describe_status(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "ended".to_string(),
    }
}

// ---- the registry and the reaper ----------------------------------------------------------------

/// A running job: its leader (= process group) and, once reaped, how it ended.
struct Entry {
    pid: Pid,
    status: Option<ExitStatus>,
}

static JOBS: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

fn registry() -> MutexGuard<'static, Vec<Entry>> {
    JOBS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reap every child that has ended, storing the statuses of registered leaders. Returns false
/// when this process has no child left at all.
fn reap(jobs: &mut [Entry]) -> bool {
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return true,
            Ok(WaitStatus::Exited(pid, code)) => {
                record(jobs, pid, ExitStatus::from_raw((code & 0xff) << 8))
            }
            Ok(WaitStatus::Signaled(pid, signal, core)) => record(
                jobs,
                pid,
                ExitStatus::from_raw(signal as i32 | if core { 0x80 } else { 0 }),
            ),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) => return false,
            Err(_) => return true,
        }
    }
}

fn record(jobs: &mut [Entry], pid: Pid, status: ExitStatus) {
    if let Some(job) = jobs.iter_mut().find(|job| job.pid == pid) {
        job.status = Some(status);
    }
}

/// Which children a cleanup round may kill.
#[derive(Clone, Copy)]
enum Scope {
    /// After the job led by this pid: its group's members, and escapees when no job is running.
    Ending(Pid),
    /// Before exiting: every child.
    Everything,
}

/// What a cleanup round left.
enum Round {
    /// No child that this scope may kill (none at all, or other jobs', or deferred escapees).
    Done,
    /// Something was killed or is a zombie: wait until it has ended and go again. With pidfds,
    /// one per such process (each turns readable as it ends); `None` without (SIGCHLD tells) or
    /// when one could not be opened (a short pause instead).
    Wait(Option<Vec<OwnedFd>>),
}

impl Round {
    /// This round must also wait for `kid`, a child not yet reaped (under the registry's lock,
    /// before it is killed: its pid is still its own).
    fn and_wait_for(self, kid: i32) -> Round {
        let exits = match self {
            Round::Done => pidfds_work().then(Vec::new),
            Round::Wait(exits) => exits,
        };
        Round::Wait(exits.and_then(|mut exits| {
            exits.push(pidfd_open(Pid::from_raw(kid)).ok()?);
            Some(exits)
        }))
    }
}

/// How long a cleanup waits before looking again when it cannot be told (a pidfd could not be
/// opened, descriptors exhausted).
const CLEANUP_PAUSE: Duration = Duration::from_millis(10);

/// Reap, then kill the children `scope` allows.
fn cleanup_round(scope: Scope) -> Round {
    let mut jobs = registry();
    if !reap(&mut jobs) {
        return Round::Done;
    }
    let running = |pid: i32| {
        jobs.iter()
            .any(|job| job.pid.as_raw() == pid && job.status.is_none())
    };
    let any_running = jobs.iter().any(|job| job.status.is_none());
    let me = std::process::id() as i32;
    let mut round = Round::Done;
    for kid in children() {
        if matches!(scope, Scope::Ending(_)) && running(kid) {
            continue;
        }
        // Still our child? (We hold the lock: nobody else reaps it, its pid cannot be reused.)
        let Some((state, parent, group)) = process_stat(kid) else {
            continue;
        };
        if parent != me {
            continue;
        }
        if state == 'Z' {
            round = round.and_wait_for(kid);
            continue;
        }
        let killable = match scope {
            Scope::Everything => true,
            Scope::Ending(ended) => !running(group) && (group == ended.as_raw() || !any_running),
        };
        if killable {
            round = round.and_wait_for(kid);
            let _ = kill(Pid::from_raw(kid), Signal::SIGKILL);
        }
    }
    round
}

/// Kill and reap, round after round, until `scope` leaves nothing to wait for.
///
/// With pidfds, no SIGCHLD handler is installed: tokio's stays for the life of the process once
/// made, and every later check would pay for it (a signal, its handler's write and the runtime's
/// reads: three more syscalls per check after the first cleanup).
async fn settle(scope: Scope) {
    // Without pidfds SIGCHLD tells, its listener made before the first kill.
    let mut sigchld = if pidfds_work() {
        None
    } else {
        match signal(SignalKind::child()) {
            Ok(sigchld) => Some(sigchld),
            Err(_) => return,
        }
    };
    loop {
        match cleanup_round(scope) {
            Round::Done => return,
            Round::Wait(Some(exits)) => {
                for exit in exits {
                    match register(exit) {
                        Ok(exit) => drop(exit.readable().await),
                        Err(_) => tokio::time::sleep(CLEANUP_PAUSE).await,
                    }
                }
            }
            Round::Wait(None) => match sigchld.as_mut() {
                Some(sigchld) => {
                    if sigchld.recv().await.is_none() {
                        return;
                    }
                }
                None => tokio::time::sleep(CLEANUP_PAUSE).await,
            },
        }
    }
}

/// This process's children, from every thread's `/proc/self/task/TID/children`.
fn children() -> Vec<i32> {
    let mut kids = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return kids;
    };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            kids.extend(
                text.split_ascii_whitespace()
                    .filter_map(|pid| pid.parse::<i32>().ok()),
            );
        }
    }
    kids
}

/// State, parent and process group of `pid`, from `/proc/PID/stat`.
fn process_stat(pid: i32) -> Option<(char, i32, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    let group = fields.next()?.parse().ok()?;
    Some((state, parent, group))
}

/// Make this process the reaper of its orphaned descendants (asked once per process). Returns
/// whether it is.
fn become_subreaper() -> bool {
    static SUBREAPER: OnceLock<bool> = OnceLock::new();
    *SUBREAPER.get_or_init(|| match nix::sys::prctl::set_child_subreaper(true) {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, "cannot become a child subreaper: programs that detach from their process group may outlive their check");
            false
        }
    })
}

// ---- one job ------------------------------------------------------------------------------------

enum Stage {
    /// The leader has not been reaped yet.
    Running,
    /// The leader was reaped and its group killed; leftovers may remain.
    Reaped,
    /// Everything it started is gone.
    Settled,
}

/// A spawned program. Dropping it before it settled kills what is left and reaps it later.
struct Job {
    pid: Pid,
    stage: Stage,
    /// Whether this process still had children when the leader was reaped.
    children_left: bool,
    /// Readable once the leader has exited (`None` without pidfds: SIGCHLD tells).
    pidfd: Option<Pidfd>,
}

/// A leader's pidfd, registered with the runtime when its exit is first awaited there (a run
/// without the runtime, `blocking.rs`, waits on it with `ppoll`).
enum Pidfd {
    Open(OwnedFd),
    Registered(AsyncFd<OwnedFd>),
}

/// Whether this kernel gives pidfds (asked once, of this process's own pid).
fn pidfds_work() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| pidfd_open(Pid::this()).is_ok())
}

/// A pidfd for `pid` (close-on-exec, non-blocking), readable once the process has exited.
fn pidfd_open(pid: Pid) -> std::io::Result<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid.as_raw())
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    Ok(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::NONBLOCK,
    )?)
}

/// `pidfd` registered with the runtime, to await its readiness.
fn register(pidfd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns the OwnedFd: the descriptor stays open, and the same, until the
    // AsyncFd drops (deregistering it first); nothing else holds or closes it.
    #[allow(unsafe_code)]
    let registered =
        unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) };
    registered.map_err(std::io::Error::from)
}

impl Job {
    fn spawn(program: &Program, stdio: [std::os::fd::BorrowedFd<'_>; 3]) -> std::io::Result<Job> {
        become_subreaper();
        let mut jobs = registry();
        let pid = spawn::spawn(program, stdio)?;
        jobs.push(Entry { pid, status: None });
        // Under the lock: nobody can have reaped the leader, so the pid is still its.
        let pidfd = if pidfds_work() {
            pidfd_open(pid).ok().map(Pidfd::Open)
        } else {
            None
        };
        Ok(Job {
            pid,
            stage: Stage::Running,
            children_left: true,
            pidfd,
        })
    }

    /// Wait until the leader may have exited: its pidfd is readable, or (without one) a
    /// SIGCHLD came. Then [`Job::take_status`] says.
    async fn exit(
        &mut self,
        sigchld: Option<&mut tokio::signal::unix::Signal>,
    ) -> std::io::Result<()> {
        let shutting_down = || std::io::Error::other("the runtime is shutting down");
        if let Some(pidfd) = self.watched_pidfd() {
            // Readable for good once it exited: the status is then there to take.
            let _ready = pidfd.readable().await?;
            return Ok(());
        }
        match sigchld {
            Some(sigchld) => sigchld.recv().await.ok_or_else(shutting_down),
            None => {
                // pidfd_open failed for this child alone (descriptors exhausted): SIGCHLD
                // from now on, and a look at the status now in case it came before.
                let mut sigchld = signal(SignalKind::child())?;
                if self.has_status() {
                    return Ok(());
                }
                sigchld.recv().await.ok_or_else(shutting_down)
            }
        }
    }

    /// The leader's pidfd registered with the runtime (on first use); `None` without one, or
    /// when it cannot be registered (descriptors exhausted: SIGCHLD tells then).
    fn watched_pidfd(&mut self) -> Option<&AsyncFd<OwnedFd>> {
        if let Some(Pidfd::Open(fd)) = self.pidfd.take_if(|pidfd| matches!(pidfd, Pidfd::Open(_))) {
            self.pidfd = register(fd).ok().map(Pidfd::Registered);
        }
        match &self.pidfd {
            Some(Pidfd::Registered(pidfd)) => Some(pidfd),
            _ => None,
        }
    }

    /// Whether the leader's status is there to take (reaping what has ended).
    fn has_status(&self) -> bool {
        let mut jobs = registry();
        reap(&mut jobs);
        jobs.iter()
            .any(|job| job.pid == self.pid && job.status.is_some())
    }

    /// Reap what has ended; if the leader has, unregister it, kill its group, return its status.
    fn take_status(&mut self) -> Option<ExitStatus> {
        let mut jobs = registry();
        // Not a subreaper (refused), orphans are not ours to see: assume some are left.
        self.children_left = reap(&mut jobs) || !become_subreaper();
        let index = jobs.iter().position(|job| job.pid == self.pid)?;
        let status = jobs[index].status?;
        jobs.swap_remove(index);
        // Under the same lock as the reap: members keep the group id alive, so this cannot hit a
        // group that reused the number. When this process, a subreaper, has no child at all,
        // nothing the leader started is alive (an orphan is reparented to us before its parent
        // can be reaped), so there is nothing to kill.
        if self.children_left {
            let _ = killpg(self.pid, Signal::SIGKILL);
        }
        self.stage = Stage::Reaped;
        Some(status)
    }

    fn settled(&mut self) {
        self.stage = Stage::Settled;
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        match self.stage {
            Stage::Settled => return,
            Stage::Running => {
                let mut jobs = registry();
                jobs.retain(|job| job.pid != self.pid);
                // The leader is not reaped (we hold the lock), so the group id is still ours.
                let _ = killpg(self.pid, Signal::SIGKILL);
            }
            Stage::Reaped => {}
        }
        let group = self.pid;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(settle(Scope::Ending(group)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// `shutdown` kills every job of the process: under `cargo test` (one process, tests in
    /// threads) it must not run beside the other tests, which hold this shared.
    static EXCLUSIVE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

    fn shell(script: &str) -> Program {
        Program::shell(script).unwrap()
    }

    /// True once `pid` is neither running nor a zombie (reaped).
    fn gone(pid: i32) -> bool {
        process_stat(pid).is_none()
    }

    fn read_pids(file: &std::path::Path) -> Vec<i32> {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .split_whitespace()
            .map(|pid| pid.parse().unwrap())
            .collect()
    }

    /// Poll until every pid is reaped; the cleanup after a drop runs on a task of its own.
    /// Whether this process catches SIGCHLD (`SigCgt` in `/proc/self/status`). With pidfds,
    /// nothing here may install a handler: tokio's stays for good, a cost at every later check.
    fn sigchld_handled() -> bool {
        assert!(
            pidfds_work(),
            "this kernel gives no pidfds: the SIGCHLD fallback is in use"
        );
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let caught = status
            .lines()
            .find_map(|line| line.strip_prefix("SigCgt:"))
            .map(|mask| u64::from_str_radix(mask.trim(), 16).unwrap())
            .unwrap();
        caught & (1 << (libc::SIGCHLD - 1)) != 0
    }

    async fn all_gone(pids: &[i32]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pids.iter().all(|&pid| gone(pid)) {
            assert!(Instant::now() < deadline, "left behind: {pids:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn captures_status_and_tail() {
        let _shared = EXCLUSIVE.read().await;
        let finished = run_captured(&shell("echo hello; echo oops >&2; exit 3"), 100)
            .await
            .unwrap();
        assert_eq!(finished.status.code(), Some(3));
        assert_eq!(finished.output_tail, "hello | oops");
        let long = run_captured(&shell("seq 1 1000"), 10).await.unwrap();
        assert!(long.output_tail.ends_with("1000"), "{}", long.output_tail);
        assert!(long.output_tail.len() <= 10);
    }

    #[tokio::test]
    async fn output_far_beyond_a_pipe_buffer_is_read_while_the_program_runs() {
        let _shared = EXCLUSIVE.read().await;
        for script in [
            "head -c 10000000 /dev/zero; echo; echo the end",
            "head -c 10000000 /dev/zero >&2; echo >&2; echo the end >&2",
        ] {
            let program = shell(script);
            let run = run_captured(&program, TAIL_BYTES);
            let finished = tokio::time::timeout(Duration::from_secs(20), run)
                .await
                .expect("a chatty program must not block on its pipe")
                .unwrap();
            assert!(finished.status.success(), "{script}");
            assert!(finished.output_tail.ends_with("the end"), "{script}");
            assert!(finished.output_tail.len() <= TAIL_BYTES, "{script}");
        }
    }

    #[tokio::test]
    async fn background_children_are_killed_when_the_program_exits() {
        let _shared = EXCLUSIVE.read().await;
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let script = format!(
            "sleep 30 & echo $! >> {0}; setsid sleep 30 & echo $! >> {0}; echo started",
            pids.display()
        );
        let program = shell(&script);
        let run = run_captured(&program, 100);
        let finished = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("a child holding the pipes must not stall the run")
            .unwrap();
        assert!(finished.status.success());
        assert_eq!(finished.output_tail, "started");
        let pids = read_pids(&pids);
        assert_eq!(pids.len(), 2);
        // The group member is killed and reaped before the run returns; the escapee too when no
        // other job runs (other tests of this binary may be running jobs beside this one).
        assert!(gone(pids[0]), "the background sleep {} survived", pids[0]);
        all_gone(&pids).await;
        assert!(
            !sigchld_handled(),
            "the cleanup installed a SIGCHLD handler"
        );
    }

    #[tokio::test]
    async fn a_grandchild_that_left_the_group_cannot_hold_the_pipe() {
        let _shared = EXCLUSIVE.read().await;
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        // The grandchild's parent outlives the leader: it is reparented only once that parent is
        // killed, one round deeper.
        let script = format!(
            "sh -c 'setsid sleep 30 & echo $! >> {0}; sleep 30' & echo $! >> {0}; sleep 0.2; exit 0",
            pids.display()
        );
        let program = shell(&script);
        let run = run_captured(&program, 100);
        let finished = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("the run must end when its leader exits")
            .unwrap();
        assert!(finished.status.success());
        let pids = read_pids(&pids);
        assert_eq!(pids.len(), 2, "{pids:?}");
        all_gone(&pids).await;
    }

    #[tokio::test]
    async fn dropping_kills_everything_even_what_ignores_sigterm() {
        let _shared = EXCLUSIVE.read().await;
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let started = dir.path().join("started");
        let script = format!(
            "trap '' TERM; sleep 60 & echo $! >> {0}; setsid sleep 60 & echo $! >> {0}; echo $$ >> {0}; touch {1}; wait",
            pids.display(),
            started.display()
        );
        let program = shell(&script);
        let mut run = Box::pin(run_captured(&program, 100));
        let until_started = async {
            while !started.exists() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::select! {
            _ = &mut run => panic!("the script should still be running"),
            () = until_started => {}
        }
        let pids = read_pids(&pids);
        assert_eq!(pids.len(), 3);
        drop(run);
        all_gone(&pids).await;
        assert!(
            !sigchld_handled(),
            "the cleanup installed a SIGCHLD handler"
        );
    }

    #[tokio::test]
    async fn shutdown_kills_and_reaps_a_running_job() {
        let _exclusive = EXCLUSIVE.write().await;
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("echo $$ > {}; exec sleep 60", pidfile.display());
        let program = shell(&script);
        let job = tokio::spawn(async move { run_captured(&program, 100).await });
        while read_pids(&pidfile).is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        shutdown(Duration::from_secs(5)).await;
        let finished = tokio::time::timeout(Duration::from_secs(10), job)
            .await
            .expect("the job ends once killed")
            .unwrap()
            .unwrap();
        assert_eq!(describe_status(&finished.status), "killed by signal 9");
        all_gone(&read_pids(&pidfile)).await;
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error_not_a_status() {
        let _shared = EXCLUSIVE.read().await;
        let error = run_captured(&Program::new("/nonexistent/program", [""; 0]).unwrap(), 100)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn a_reused_pipe_carries_nothing_over() {
        let _shared = EXCLUSIVE.read().await;
        for i in 0..100 {
            let script = format!("echo out{i}; echo err{i} >&2; exit {}", i % 2);
            let finished = run_captured(&shell(&script), 100).await.unwrap();
            assert_eq!(finished.output_tail, format!("out{i} | err{i}"));
            assert_eq!(finished.status.code(), Some(i % 2));
            let quiet = run_captured(&shell("exit 0"), 100).await.unwrap();
            assert_eq!(quiet.output_tail, "");
        }
    }

    /// A descendant still writing when the program exits is killed after the drain: what it
    /// wrote in between must not reach the next run through a reused pipe.
    #[tokio::test]
    async fn output_written_after_the_drain_does_not_reach_the_next_run() {
        let _shared = EXCLUSIVE.read().await;
        let noisy = shell("(while :; do echo junk; echo junk >&2; done) & sleep 0.02; exit 0");
        let clean = shell("echo clean; echo clean >&2");
        for _ in 0..20 {
            run_captured(&noisy, 100).await.unwrap();
            let finished = run_captured(&clean, 100).await.unwrap();
            assert_eq!(finished.output_tail, "clean | clean");
        }
    }

    /// One command run again and again: every run is a fresh process with its own output.
    #[tokio::test]
    async fn a_command_runs_again_with_fresh_output() {
        let _shared = EXCLUSIVE.read().await;
        let command = shell("echo pid $$; echo err >&2; exit 4");
        let mut pids = Vec::new();
        for _ in 0..3 {
            let finished = run_captured(&command, 100).await.unwrap();
            assert_eq!(finished.status.code(), Some(4));
            let (out, err) = finished.output_tail.split_once(" | ").unwrap();
            assert_eq!(err, "err");
            pids.push(out.strip_prefix("pid ").unwrap().to_string());
        }
        pids.dedup();
        assert_eq!(pids.len(), 3, "{pids:?}");
    }

    /// Spare pipes stay registered with the runtime that made them: one left by a runtime that
    /// has shut down (a second runtime on the same thread) is made afresh, not read blind.
    #[test]
    fn a_pipe_from_a_finished_runtime_is_not_reused() {
        let _shared = EXCLUSIVE.blocking_read();
        for round in 0..3 {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let script = format!("echo out{round}; echo err{round} >&2");
            let finished = runtime
                .block_on(run_captured(&shell(&script), 100))
                .unwrap();
            assert_eq!(finished.output_tail, format!("out{round} | err{round}"));
        }
    }

    /// The program starts as std's `Command` started it: no signal blocked, SIGPIPE at its
    /// default (Rust ignores it in this process, and an ignored signal stays ignored across
    /// exec), in a process group of its own, with this process's environment.
    #[tokio::test]
    async fn the_program_starts_with_default_signals_its_own_group_and_our_environment() {
        let _shared = EXCLUSIVE.read().await;
        let blocked = run_captured(&shell("grep SigBlk /proc/self/status"), 100)
            .await
            .unwrap();
        assert_eq!(blocked.output_tail, "SigBlk: 0000000000000000");
        let piped = run_captured(&shell("kill -PIPE $$; echo survived"), 100)
            .await
            .unwrap();
        assert_eq!(describe_status(&piped.status), "killed by signal 13");
        let group = run_captured(&shell("cut -d' ' -f5 /proc/$$/stat; echo $$"), 100)
            .await
            .unwrap();
        let numbers: Vec<&str> = group.output_tail.split_whitespace().collect();
        assert_eq!(numbers.len(), 2, "{}", group.output_tail);
        assert_eq!(numbers[0], numbers[1], "the shell leads its own group");
        let path = std::env::var("PATH").unwrap_or_default();
        let environment = run_captured(&shell("echo \"$PATH\""), TAIL_BYTES)
            .await
            .unwrap();
        assert_eq!(environment.output_tail, path);
    }

    #[test]
    fn describes_statuses() {
        assert_eq!(describe_status(&ExitStatus::from_raw(3 << 8)), "exit 3");
        assert_eq!(
            describe_status(&ExitStatus::from_raw(9)),
            "killed by signal 9"
        );
    }
}
