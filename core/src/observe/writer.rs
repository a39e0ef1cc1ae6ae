//! Atomic file replacement on a thread of its own, latest content wins: the textfile and the
//! state file are written off the event loop, so a slow or hung file system never delays a check
//! or a route change, and a reader never sees half a file (temp file in the same directory,
//! fsync, rename, fsync of the directory).

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Wakes the writer thread, which renders the current content itself and writes it: any number
/// of pokes while it writes make one more write, so a burst of changes (a thousand ACKs) costs
/// the event loop a flag each and the disk one or two writes.
///
/// A change that matters (a state, a route, a check's result) is written at once ([`poke`]);
/// one that only moves a counter or a time is written within the refresh period
/// ([`poke_later`]): writing both files at every check cost a probe more than its check did
/// (temp file, two fsyncs, rename, and nine context switches per check).
///
/// [`poke`]: LatestWriter::poke
/// [`poke_later`]: LatestWriter::poke_later
#[derive(Debug, Clone)]
pub(crate) struct LatestWriter {
    slot: Arc<(Mutex<Due>, Condvar)>,
}

/// What the writer thread is asked for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Due {
    /// Write now.
    now: bool,
    /// Write within the refresh period of the last write.
    later: bool,
}

/// What the writer thread does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Write,
    WaitFor(Duration),
    Wait,
}

/// The writer's schedule: at once for `due.now`, at `written + refresh` for `due.later`.
fn next(due: Due, written: Instant, refresh: Duration, now: Instant) -> Next {
    if due.now {
        return Next::Write;
    }
    if !due.later {
        return Next::Wait;
    }
    match (written + refresh).checked_duration_since(now) {
        Some(left) if !left.is_zero() => Next::WaitFor(left),
        _ => Next::Write,
    }
}

/// What the writer thread calls for the content to write.
pub(crate) type Render = Box<dyn Fn() -> Vec<u8> + Send>;

impl LatestWriter {
    /// Start the thread writing what `render` gives to `path`, what [`LatestWriter::poke_later`]
    /// asks for within `refresh`; `what` names the file in log lines, `probe` is the probe's
    /// name for them.
    pub(crate) fn spawn(
        path: PathBuf,
        what: &'static str,
        probe: String,
        refresh: Duration,
        render: Render,
    ) -> Self {
        let slot: Arc<(Mutex<Due>, Condvar)> = Arc::default();
        let shared = Arc::clone(&slot);
        let spawned = std::thread::Builder::new()
            .name(format!("exaprobe-{}", what.replace(' ', "-")))
            .spawn(move || {
                let span = tracing::info_span!("exaprobe", probe = %probe);
                let _entered = span.enter();
                let mut last_error: Option<String> = None;
                let mut written = Instant::now();
                loop {
                    {
                        let (lock, ready) = &*shared;
                        let mut due = lock.lock().unwrap_or_else(|p| p.into_inner());
                        loop {
                            due = match next(*due, written, refresh, Instant::now()) {
                                Next::Write => break,
                                Next::WaitFor(left) => {
                                    ready
                                        .wait_timeout(due, left)
                                        .unwrap_or_else(|p| p.into_inner())
                                        .0
                                }
                                Next::Wait => ready.wait(due).unwrap_or_else(|p| p.into_inner()),
                            };
                        }
                        *due = Due::default();
                    }
                    written = Instant::now();
                    match crate::kit::files::replace_regular(&path, &render()) {
                        Ok(()) if last_error.take().is_some() => {
                            tracing::info!(file = %path.display(), "the {what} is written again");
                        }
                        Ok(()) => {}
                        Err(error) => {
                            let error = format!("{error:#}");
                            if last_error.as_ref() != Some(&error) {
                                tracing::error!(file = %path.display(), %error, "cannot write the {what}");
                            }
                            last_error = Some(error);
                        }
                    }
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the {what} writer");
        }
        LatestWriter { slot }
    }

    /// Ask for a write of the current content now. Never blocks on the file system.
    pub(crate) fn poke(&self) {
        let (lock, ready) = &*self.slot;
        lock.lock().unwrap_or_else(|p| p.into_inner()).now = true;
        ready.notify_one();
    }

    /// Ask for a write within the refresh period. The thread is woken only when nothing was
    /// asked for yet (to start its wait for the period): at most once per write.
    pub(crate) fn poke_later(&self) {
        let (lock, ready) = &*self.slot;
        let mut due = lock.lock().unwrap_or_else(|p| p.into_inner());
        if *due == Due::default() {
            due.later = true;
            ready.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_writes_the_latest_content() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.prom");
        let version = Arc::new(AtomicUsize::new(0));
        let current = Arc::clone(&version);
        let render: Render =
            Box::new(move || format!("content {}\n", current.load(Ordering::SeqCst)).into_bytes());
        let writer = LatestWriter::spawn(
            path.clone(),
            "test file",
            "test".into(),
            Duration::from_secs(3600),
            render,
        );
        for n in 1..=100 {
            version.store(n, Ordering::SeqCst);
            writer.poke();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if std::fs::read_to_string(&path).is_ok_and(|c| c == "content 100\n") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// A write asked for later comes within the refresh period, not at once; one asked for now
    /// takes it along.
    #[test]
    fn later_waits_for_the_period_and_now_takes_it_along() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let wait_for = |path: &std::path::Path, content: &str| {
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::fs::read_to_string(path).ok().as_deref() != Some(content) {
                assert!(Instant::now() < deadline, "{content:?} never written");
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        let rendered = Arc::new(AtomicUsize::new(0));
        let writer = |name: &str, refresh: Duration| {
            let count = Arc::clone(&rendered);
            let render: Render = Box::new(move || {
                format!("render {}\n", count.fetch_add(1, Ordering::SeqCst) + 1).into_bytes()
            });
            LatestWriter::spawn(
                dir.path().join(name),
                "test file",
                "test".into(),
                refresh,
                render,
            )
        };
        let quick = writer("quick", Duration::from_millis(50));
        quick.poke_later();
        wait_for(&dir.path().join("quick"), "render 1\n");
        let slow = writer("slow", Duration::from_secs(3600));
        for _ in 0..10 {
            slow.poke_later();
        }
        slow.poke();
        wait_for(&dir.path().join("slow"), "render 2\n");
        assert_eq!(
            rendered.load(Ordering::SeqCst),
            2,
            "the later writes were not merged"
        );
    }

    proptest::proptest! {
        /// The writer thread, run on a clock of its own against random pokes, woken as the real
        /// one is (by `poke`, by the first `poke_later`, by its timeout). After every step: a
        /// write asked for now is done before the clock moves; one asked for later is done by
        /// the end of the refresh period after the previous write (or at once when that is
        /// over), and never before it; nothing is written that was not asked for.
        #[test]
        fn the_schedule_keeps_its_promises(
            steps in proptest::collection::vec((0u8..3, 0u64..3000), 1..60)
        ) {
            let refresh = Duration::from_millis(1000);
            let mut thread = Model { now: Instant::now(), written: Instant::now(), due: Due::default(), asked_later: None, timer: None };
            thread.run(refresh)?;
            for (poke, millis) in steps {
                match poke {
                    0 => {
                        thread.due.now = true;
                        thread.run(refresh)?;
                    }
                    1 => {
                        thread.asked_later.get_or_insert(thread.now);
                        if thread.due == Due::default() {
                            thread.due.later = true;
                            thread.run(refresh)?;
                        }
                    }
                    _ => {}
                }
                proptest::prop_assert!(!thread.due.now, "a write asked for now is still waiting");
                let target = thread.now + Duration::from_millis(millis);
                if let Some(at) = thread.timer.filter(|at| *at <= target) {
                    thread.now = at;
                    thread.run(refresh)?;
                }
                thread.now = target;
                if let Some(asked) = thread.asked_later {
                    let by = (thread.written + refresh).max(asked);
                    proptest::prop_assert!(thread.now < by, "a later write overdue: asked {:?} after the write, now {:?}",
                        asked - thread.written, thread.now - thread.written);
                }
            }
        }
    }

    /// The writer thread on a clock of its own.
    struct Model {
        now: Instant,
        written: Instant,
        due: Due,
        asked_later: Option<Instant>,
        /// When its timed wait ends, if it is in one.
        timer: Option<Instant>,
    }

    impl Model {
        /// Woken: write as `next` says until it waits.
        fn run(&mut self, refresh: Duration) -> Result<(), proptest::test_runner::TestCaseError> {
            loop {
                match next(self.due, self.written, refresh, self.now) {
                    Next::Write => {
                        proptest::prop_assert!(
                            self.due != Due::default(),
                            "a write nobody asked for"
                        );
                        if !self.due.now {
                            proptest::prop_assert!(
                                self.now >= self.written + refresh,
                                "a later write before the period"
                            );
                        }
                        self.due = Due::default();
                        self.written = self.now;
                        self.asked_later = None;
                    }
                    Next::WaitFor(left) => {
                        self.timer = Some(self.now + left);
                        return Ok(());
                    }
                    Next::Wait => {
                        self.timer = None;
                        return Ok(());
                    }
                }
            }
        }
    }
}
