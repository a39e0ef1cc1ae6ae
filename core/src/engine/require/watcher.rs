//! The required state files, watched: inotify on their directories (an atomic rename replaces
//! the file's inode, so watching the file itself would miss the next version), a poll every
//! [`LIVENESS_POLL`] for writers that died without a word and for directories that appear
//! later, and the verdict recomputed on every change.
//!
//! Reading happens inline: state files are small local files, read with the regular-file rules
//! of [`crate::kit::files`] (no FIFO can hang it) under its read deadline.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::inotify::{InitFlags, Inotify, InotifyEvent, WatchDescriptor};
use tokio::io::unix::AsyncFd;
use tokio::time::{Interval, MissedTickBehavior};

use super::RequireSettings;
use super::rule::{Named, combine};
use super::state::{Reading, RequiredState, read};
use crate::kit::dir_watch::{self, Seen};

/// How often writers are checked for life (and missing directories for existence): a writer
/// killed with SIGKILL is noticed within this, even if its file never changes again.
pub(crate) const LIVENESS_POLL: Duration = Duration::from_millis(500);
/// The most state files recorded as depended on (a chain of requirements is short).
const MAX_DEPENDS_ON: usize = 256;

/// The inotify descriptor, as tokio wants it.
struct Fd(Inotify);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// One required state file and what it said last.
#[derive(Debug)]
struct Required {
    file: PathBuf,
    reading: Reading,
    /// Part of a requirement cycle (logged once).
    in_cycle: bool,
}

/// A directory holding required files, watched once it exists.
struct Dir {
    path: PathBuf,
    names: Vec<OsString>,
    watch: Option<WatchDescriptor>,
}

/// What woke the watcher.
enum Woke {
    Events(Vec<InotifyEvent>),
    Poll,
}

/// The required probes of this probe and their current verdict.
pub(crate) struct Requirements {
    required: Vec<Required>,
    min: Option<usize>,
    /// This probe's own state file: a required probe depending on it is a cycle.
    own: Option<PathBuf>,
    verdict: RequiredState,
    inotify: Option<AsyncFd<Fd>>,
    dirs: Vec<Dir>,
    poll: Option<Interval>,
    /// Something may have changed: re-read before waiting again.
    dirty: bool,
}

impl std::fmt::Debug for Requirements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requirements")
            .field("required", &self.required)
            .field("verdict", &self.verdict)
            .finish_non_exhaustive()
    }
}

impl Requirements {
    /// Watch the files `settings` requires (call on the runtime); `own` is this probe's state
    /// file. Reads them once now.
    pub(crate) fn new(settings: &RequireSettings, own: Option<&Path>) -> Self {
        let mut requirements = Requirements {
            required: settings
                .files
                .iter()
                .map(|file| Required {
                    file: file.clone(),
                    reading: Reading {
                        probe: None,
                        state: RequiredState::Down("not read yet".into()),
                        depends_on: Vec::new(),
                        writer: None,
                    },
                    in_cycle: false,
                })
                .collect(),
            min: settings.min,
            own: own.map(super::options::absolute),
            verdict: RequiredState::Up,
            inotify: None,
            dirs: Vec::new(),
            poll: None,
            dirty: false,
        };
        if settings.files.is_empty() {
            return requirements;
        }
        for file in &settings.files {
            let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
                continue;
            };
            match requirements.dirs.iter_mut().find(|d| d.path == dir) {
                Some(known) => known.names.push(name.to_owned()),
                None => requirements.dirs.push(Dir {
                    path: dir.to_path_buf(),
                    names: vec![name.to_owned()],
                    watch: None,
                }),
            }
        }
        match Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(std::io::Error::from)
            .and_then(|inotify| {
                // SAFETY: the AsyncFd owns the Inotify, which owns the descriptor: it stays
                // open, and the same, until the AsyncFd drops (deregistering it first).
                #[allow(unsafe_code)]
                let registered = unsafe { AsyncFd::register(Fd(inotify)) };
                registered.map_err(std::io::Error::from)
            }) {
            Ok(inotify) => requirements.inotify = Some(inotify),
            Err(error) => tracing::warn!(
                %error,
                poll = ?LIVENESS_POLL,
                "cannot watch the required state files with inotify: reading them at every poll"
            ),
        }
        requirements.watch_dirs();
        requirements.refresh();
        requirements
    }

    /// True when nothing is required.
    pub(crate) fn is_empty(&self) -> bool {
        self.required.is_empty()
    }

    /// The combined verdict of the required probes (UP when none).
    pub(crate) fn verdict(&self) -> &RequiredState {
        &self.verdict
    }

    /// Each required probe: its name, its file and its state.
    pub(crate) fn each(&self) -> impl Iterator<Item = (String, &Path, &RequiredState)> {
        self.required
            .iter()
            .map(|r| (name_of(r), r.file.as_path(), &r.reading.state))
    }

    /// Every state file this probe depends on, directly or through the probes it requires.
    pub(crate) fn depends_on(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        let direct = self.required.iter().map(|r| r.file.display().to_string());
        let indirect = self
            .required
            .iter()
            .flat_map(|r| r.reading.depends_on.iter().cloned());
        for file in direct.chain(indirect) {
            if all.len() >= MAX_DEPENDS_ON {
                break;
            }
            if !all.contains(&file) {
                all.push(file);
            }
        }
        all
    }

    /// Wait until a required probe's state or the verdict changes. Cancel-safe: what was
    /// noticed is kept for the next call. Never returns when nothing is required.
    pub(crate) async fn changed(&mut self) {
        if self.required.is_empty() {
            return std::future::pending().await;
        }
        loop {
            if std::mem::take(&mut self.dirty) && self.refresh() {
                return;
            }
            let poll = self.poll.get_or_insert_with(|| {
                let mut poll = tokio::time::interval(LIVENESS_POLL);
                poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
                poll
            });
            let woke = tokio::select! {
                events = next_events(self.inotify.as_ref()) => Woke::Events(events),
                _ = poll.tick() => Woke::Poll,
            };
            match woke {
                Woke::Events(events) => self.dirty |= self.relevant(&events),
                Woke::Poll => {
                    let added = self.watch_dirs();
                    let gone = self.required.iter().any(|r| {
                        r.reading.writer.is_some_and(|(pid, start)| {
                            super::process::writer_gone(pid, start).is_some()
                        })
                    });
                    self.dirty |= added || gone || self.inotify.is_none();
                }
            }
        }
    }

    /// Re-read every file now; true when a state or the verdict changed.
    pub(crate) fn refresh(&mut self) -> bool {
        let mut changed = false;
        for required in &mut self.required {
            let mut reading = read(&required.file);
            let cycle = self
                .own
                .as_ref()
                .is_some_and(|own| reading.depends_on.iter().any(|d| Path::new(d) == own));
            if cycle {
                let own = self
                    .own
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                reading.state = RequiredState::Down(format!(
                    "requirement cycle: {} depends on this probe's own state file {own}",
                    required.file.display()
                ));
                if !required.in_cycle {
                    tracing::error!(
                        "requirement cycle: {} depends on this probe's own state file {own}; both stay DOWN until one stops requiring the other",
                        required.file.display()
                    );
                }
            }
            required.in_cycle = cycle;
            if reading != required.reading {
                changed |= reading.state != required.reading.state;
                required.reading = reading;
            }
        }
        let names: Vec<String> = self.required.iter().map(name_of).collect();
        let named: Vec<Named> = self
            .required
            .iter()
            .zip(&names)
            .map(|(r, name)| Named {
                name,
                state: &r.reading.state,
            })
            .collect();
        let verdict = combine(&named, self.min);
        if verdict != self.verdict {
            self.verdict = verdict;
            changed = true;
        }
        changed
    }

    /// Watch the directories not watched yet; true when one was added (its files may have
    /// appeared with it).
    fn watch_dirs(&mut self) -> bool {
        let Some(inotify) = &self.inotify else {
            return false;
        };
        let mut added = false;
        for dir in self.dirs.iter_mut().filter(|d| d.watch.is_none()) {
            if let Ok(watch) = inotify.get_ref().0.add_watch(&dir.path, dir_watch::ENTRIES) {
                dir.watch = Some(watch);
                added = true;
            }
        }
        added
    }

    /// Whether `events` concern a required file (or its directory went away).
    fn relevant(&mut self, events: &[InotifyEvent]) -> bool {
        let mut relevant = false;
        for event in events {
            let seen = dir_watch::seen(event);
            if seen == Seen::Overflow {
                relevant = true;
                continue;
            }
            let Some(dir) = self.dirs.iter_mut().find(|d| d.watch == Some(event.wd)) else {
                continue;
            };
            match seen {
                Seen::DirectoryLost => {
                    // Watch its path again once it exists.
                    if let (Some(inotify), Some(watch)) = (&self.inotify, dir.watch.take()) {
                        let _ = inotify.get_ref().0.rm_watch(watch);
                    }
                    relevant = true;
                }
                Seen::Entry(name) => relevant |= dir.names.iter().any(|n| n == name),
                Seen::Overflow | Seen::Nothing => {}
            }
        }
        relevant
    }
}

/// The name shown for a required probe: its `--name`, or its file until it says.
fn name_of(required: &Required) -> String {
    required
        .reading
        .probe
        .clone()
        .unwrap_or_else(|| required.file.display().to_string())
}

/// The next batch of inotify events (never, without inotify).
async fn next_events(inotify: Option<&AsyncFd<Fd>>) -> Vec<InotifyEvent> {
    let Some(inotify) = inotify else {
        return std::future::pending().await;
    };
    loop {
        let Ok(mut guard) = inotify.readable().await else {
            return std::future::pending().await;
        };
        match guard.try_io(|fd| fd.get_ref().0.read_events().map_err(std::io::Error::from)) {
            Ok(Ok(events)) => return events,
            Ok(Err(error)) => {
                tracing::warn!(%error, "reading inotify events failed");
                return Vec::new();
            }
            Err(_would_block) => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::require::state::tests::{write_bytes, write_state};
    use proptest::prelude::*;

    /// One thing that happens to a required state file.
    #[derive(Debug, Clone)]
    enum Change {
        /// Its writer writes this health (by rename).
        Health(usize, &'static str),
        /// It is deleted.
        Delete(usize),
        /// Garbage replaces it.
        Malformed(usize),
        /// A future schema replaces it.
        OtherVersion(usize),
        /// It says UP, but its writer is dead.
        DeadWriter(usize),
    }

    fn change() -> impl Strategy<Value = Change> {
        let health = prop_oneof![
            Just("UP"),
            Just("DEGRADED"),
            Just("DOWN"),
            Just("MAINTENANCE")
        ];
        prop_oneof![
            4 => (0usize..3, health).prop_map(|(i, h)| Change::Health(i, h)),
            1 => (0usize..3).prop_map(Change::Delete),
            1 => (0usize..3).prop_map(Change::Malformed),
            1 => (0usize..3).prop_map(Change::OtherVersion),
            1 => (0usize..3).prop_map(Change::DeadWriter),
        ]
    }

    /// The model: what each file should count as (0 DOWN .. 3 UP).
    fn rank_of(health: &str) -> u8 {
        match health {
            "UP" => 3,
            "DEGRADED" => 2,
            "MAINTENANCE" => 1,
            _ => 0,
        }
    }

    /// The model's verdict rank: the best rank at least `needed` files reach.
    fn model_verdict(ranks: &[u8], needed: usize) -> u8 {
        let mut sorted = ranks.to_vec();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        sorted[needed - 1]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// After every change to the required files the verdict follows at once (well inside
        /// the liveness poll, with the clock paused: the inotify event, not a timer), and it is
        /// never better than N of the files allow: a dead, missing, malformed or unknown file
        /// never counts as serving.
        #[test]
        fn the_verdict_follows_every_change_at_once(
            count in 1usize..4,
            min in proptest::option::of(1usize..4),
            changes in proptest::collection::vec(change(), 1..25),
        ) {
            let dead = {
                let mut child = std::process::Command::new("true").spawn().unwrap();
                let pid = child.id();
                child.wait().unwrap();
                pid
            };
            let dir = tempfile::tempdir().unwrap();
            let files: Vec<PathBuf> = (0..count).map(|i| dir.path().join(format!("p{i}.json"))).collect();
            for file in &files {
                write_state(file, "UP", None, None, &[]);
            }
            let min = min.map(|n| n.min(count));
            let needed = min.unwrap_or(count);
            let settings = RequireSettings { files: files.clone(), min, no_routes: false };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut required = Requirements::new(&settings, None);
                let mut ranks = vec![3u8; count];
                prop_assert_eq!(required.verdict(), &RequiredState::Up);
                for change in changes {
                    match change {
                        Change::Health(i, health) => {
                            let i = i % count;
                            write_state(&files[i], health, Some("why"), None, &[]);
                            ranks[i] = rank_of(health);
                        }
                        Change::Delete(i) => {
                            let i = i % count;
                            let _ = std::fs::remove_file(&files[i]);
                            ranks[i] = 0;
                        }
                        Change::Malformed(i) => {
                            let i = i % count;
                            write_bytes(&files[i], b"{\"version\": 1, \"probe\"");
                            ranks[i] = 0;
                        }
                        Change::OtherVersion(i) => {
                            let i = i % count;
                            write_bytes(&files[i], b"{\"version\": 99}");
                            ranks[i] = 0;
                        }
                        Change::DeadWriter(i) => {
                            let i = i % count;
                            write_state(&files[i], "UP", None, Some((dead, 1)), &[]);
                            ranks[i] = 0;
                        }
                    }
                    let expected = model_verdict(&ranks, needed);
                    let started = tokio::time::Instant::now();
                    while required.verdict().rank() != expected {
                        let woke = tokio::time::timeout(Duration::from_millis(100), required.changed()).await;
                        prop_assert!(woke.is_ok(), "no re-decision {:?} after the change (verdict {:?}, expected rank {expected})", started.elapsed(), required.verdict());
                    }
                    // Never better than the files allow.
                    let serving = ranks.iter().filter(|r| **r >= 2).count();
                    prop_assert_eq!(required.verdict().rank() >= 2, serving >= needed);
                }
                Ok(())
            })?;
        }
    }
}
