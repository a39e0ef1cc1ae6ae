//! The disable file (`--disable`): whether it exists, and its first line as the operator's note,
//! before each check.
//!
//! Looking it up is file-system work, done off the runtime thread under a timeout so that a hung
//! NFS mount delays nothing. That hand-off cost an exec check more than the rest of its own work
//! (four context switches and a third more CPU per check), so it is done only when the answer
//! may have changed: inotify watches the file's directory, and a check whose directory reported
//! nothing about the file since the last look-up reuses its answer (one non-blocking `read`).
//!
//! The answer is reused only where inotify is sure to tell:
//! - the watch was made before the look-up (a change after it is then reported);
//! - the directory is on a local file system (inotify does not see what another NFS client
//!   does) and no component of its path is a symbolic link (one could be pointed elsewhere);
//! - the file is not a symbolic link (its target may change in another directory).
//!
//! Otherwise, and from the moment the watch is lost (the directory removed or moved, the event
//! queue overflowed), the file is looked up at every check, as before. Not seen: an ancestor of
//! the directory renamed and a new directory made in its place.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::inotify::{InitFlags, Inotify, WatchDescriptor};
use nix::sys::statfs::{self, FsType};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::off_the_runtime;
use crate::kit::dir_watch::{self, Seen};

/// How long the disable file may take to answer before the previous maintenance state is kept.
const DISABLE_FILE_TIMEOUT: Duration = Duration::from_secs(1);
/// How much of the disable file is read for the operator's note.
const NOTE_BYTES: usize = 512;

/// The disable file's last answer, and what says when it must be looked up again.
#[derive(Default)]
pub(super) struct DisableFile {
    /// The file the answer is for (a reload may name another).
    path: Option<PathBuf>,
    /// Made at the first look-up; `None` when inotify cannot be had (every check looks).
    inotify: Option<Arc<Inotify>>,
    /// The watch on the file's directory, while it lasts.
    watch: Option<WatchDescriptor>,
    /// Whether the answer may be reused until inotify reports a change.
    trusted: bool,
    /// A look-up still running (a hung file system): awaited, never duplicated.
    lookup: Option<JoinHandle<Looked>>,
    /// The last answer: `Some(reason)` while the file exists.
    note: Option<String>,
    /// Look-ups made (a test counts them).
    #[cfg(test)]
    lookups: usize,
}

/// What a look-up found.
struct Looked {
    note: Option<String>,
    watch: Option<WatchDescriptor>,
    trusted: bool,
}

impl DisableFile {
    /// `Some(reason)` while `file` exists; the previous answer while it cannot be looked up in
    /// time.
    pub(super) async fn look(&mut self, file: Option<&Path>) -> Option<String> {
        if self.path.as_deref() != file {
            self.forget(file);
        }
        let file = self.path.clone()?;
        let changed = self.changed();
        if self.trusted && !changed && self.lookup.is_none() {
            return self.note.clone();
        }
        self.trusted = false;
        // A look-up that did not answer in time last check is awaited again; what it finds may
        // predate changes just taken from inotify, so it is used but not trusted.
        let resumed = self.lookup.is_some();
        let mut lookup = match self.lookup.take() {
            Some(lookup) => lookup,
            None => {
                #[cfg(test)]
                {
                    self.lookups += 1;
                }
                let inotify = self.inotify().cloned();
                let watch = self.watch;
                off_the_runtime(move || look_up(&file, inotify.as_deref(), watch))
            }
        };
        match timeout(DISABLE_FILE_TIMEOUT, &mut lookup).await {
            Ok(Ok(looked)) => {
                self.note = looked.note;
                self.watch = looked.watch;
                self.trusted = looked.trusted && !resumed;
            }
            Ok(Err(error)) => tracing::error!(%error, "the disable file look-up failed"),
            Err(_) => {
                tracing::warn!(
                    timeout = ?DISABLE_FILE_TIMEOUT,
                    "the disable file did not answer in time; keeping the previous maintenance state"
                );
                self.lookup = Some(lookup);
            }
        }
        self.note.clone()
    }

    /// The last answer, as the state dump and the health report show it.
    pub(super) fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// A reload named another file (or none): nothing known about it yet.
    fn forget(&mut self, file: Option<&Path>) {
        if let (Some(inotify), Some(watch)) = (&self.inotify, self.watch.take()) {
            let _ = inotify.rm_watch(watch);
        }
        self.path = file.map(Path::to_path_buf);
        self.trusted = false;
        self.lookup = None;
        self.note = None;
    }

    fn inotify(&mut self) -> Option<&Arc<Inotify>> {
        if self.inotify.is_none() {
            match Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC) {
                Ok(inotify) => self.inotify = Some(Arc::new(inotify)),
                Err(error) => {
                    tracing::debug!(%error, "no inotify: the disable file is looked up at every check")
                }
            }
        }
        self.inotify.as_ref()
    }

    /// Take what inotify queued, without waiting: whether any of it may change the answer.
    fn changed(&mut self) -> bool {
        let Some(inotify) = &self.inotify else {
            return true;
        };
        let name = self.path.as_deref().and_then(Path::file_name);
        let mut changed = false;
        loop {
            let events = match inotify.read_events() {
                Ok(events) => events,
                Err(Errno::EAGAIN) => return changed,
                Err(_) => return true,
            };
            for event in events {
                match dir_watch::seen(&event) {
                    Seen::Overflow => changed = true,
                    // A watch already given up (a reload named another file).
                    _ if Some(event.wd) != self.watch => {}
                    Seen::DirectoryLost => {
                        // The next look-up watches its path again.
                        if let Some(watch) = self.watch.take() {
                            let _ = inotify.rm_watch(watch);
                        }
                        changed = true;
                    }
                    Seen::Entry(entry) => changed |= Some(entry) == name,
                    Seen::Nothing => {}
                }
            }
        }
    }
}

/// Watch `file`'s directory (unless `watch` still does), then look the file up. Off the
/// runtime thread: any of it may hang on a network file system.
fn look_up(file: &Path, inotify: Option<&Inotify>, watch: Option<WatchDescriptor>) -> Looked {
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let watch = match (inotify, watch) {
        (Some(inotify), None) => inotify.add_watch(dir, dir_watch::ENTRIES).ok(),
        (_, watch) => watch,
    };
    let note = look_up_disable_file(file);
    let trusted = watch.is_some() && told_by_inotify(dir) && !is_symlink(file);
    Looked {
        note,
        watch,
        trusted,
    }
}

/// Whether inotify on `dir` reports every change of its entries: a local file system, and a
/// path without a symbolic link.
fn told_by_inotify(dir: &Path) -> bool {
    const ZFS_SUPER_MAGIC: FsType = FsType(0x2fc1_2fc1);
    let local = [
        statfs::EXT4_SUPER_MAGIC,
        statfs::XFS_SUPER_MAGIC,
        statfs::BTRFS_SUPER_MAGIC,
        statfs::TMPFS_MAGIC,
        statfs::OVERLAYFS_SUPER_MAGIC,
        statfs::F2FS_SUPER_MAGIC,
        statfs::REISERFS_SUPER_MAGIC,
        ZFS_SUPER_MAGIC,
    ];
    let Ok(found) = statfs::statfs(dir) else {
        return false;
    };
    let no_link = std::path::absolute(dir)
        .ok()
        .zip(dir.canonicalize().ok())
        .is_some_and(|(absolute, resolved)| absolute == resolved);
    no_link && local.contains(&found.filesystem_type())
}

fn is_symlink(file: &Path) -> bool {
    file.symlink_metadata()
        .is_ok_and(|meta| meta.file_type().is_symlink())
}

/// `Some(reason)` when `file` exists: "disable file X exists", with the first line of the file
/// when it has one (the operator's note). Reads only a regular file (`files::open_regular`:
/// no FIFO or device can hang it), and only its first bytes.
fn look_up_disable_file(file: &Path) -> Option<String> {
    if !file.exists() {
        return None;
    }
    let mut note = String::new();
    if let Ok((opened, _)) = crate::kit::files::open_regular(file) {
        let mut bytes = Vec::with_capacity(NOTE_BYTES);
        let _ = opened.take(NOTE_BYTES as u64).read_to_end(&mut bytes);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        note = text
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
    }
    Some(if note.is_empty() {
        format!("disable file {} exists", file.display())
    } else {
        format!("disable file {} exists: {note}", file.display())
    })
}

#[cfg(test)]
mod tests {
    //! Invariants, checked after every step of random sequences of what an operator (or a
    //! deployment tool) does to the file and its directory, on a real file system with real
    //! inotify:
    //! 1. the answer is always what looking the file up now says (never stale);
    //! 2. while the answer is trusted, a step that did not touch the file (or its directory)
    //!    makes no look-up: the watch saves the hand-off.

    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        /// Write the file (empty, or with a note) where it is.
        Write(Option<u8>),
        /// Write a new version beside it and rename it over (what config tools do).
        Replace(u8),
        Remove,
        /// Touch another file in the same directory.
        Unrelated,
        RemoveDir,
        MakeDir,
        /// Make the file a symbolic link to a file in another directory.
        Link,
        /// Change the link's target.
        WriteTarget(Option<u8>),
        /// A reload naming the other file.
        SwitchFile,
        /// Just another check.
        Check,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            proptest::option::of(0u8..3).prop_map(Step::Write),
            (0u8..3).prop_map(Step::Replace),
            Just(Step::Remove),
            Just(Step::Unrelated),
            Just(Step::RemoveDir),
            Just(Step::MakeDir),
            Just(Step::Link),
            proptest::option::of(0u8..3).prop_map(Step::WriteTarget),
            Just(Step::SwitchFile),
            Just(Step::Check),
            Just(Step::Check),
        ]
    }

    fn write(path: &Path, note: Option<u8>) {
        let text = note
            .map(|n| format!("maintenance {n}\n"))
            .unwrap_or_default();
        let _ = std::fs::write(path, text);
    }

    /// Apply `step`; true when it can have changed nothing about the file in use.
    fn apply(step: &Step, file: &Path, target: &Path, switch: &mut bool) -> bool {
        let dir = file.parent().unwrap();
        match step {
            Step::Write(note) => write(file, *note),
            Step::Replace(note) => {
                let beside = dir.join(".disable.new");
                write(&beside, Some(*note));
                let _ = std::fs::rename(&beside, file);
            }
            Step::Remove => {
                let _ = std::fs::remove_file(file);
            }
            Step::Unrelated => {
                write(&dir.join("unrelated"), Some(0));
                return true;
            }
            Step::RemoveDir => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Step::MakeDir => {
                let _ = std::fs::create_dir(dir);
            }
            Step::Link => {
                let _ = std::fs::remove_file(file);
                let _ = std::os::unix::fs::symlink(target, file);
            }
            Step::WriteTarget(note) => write(target, *note),
            Step::SwitchFile => *switch = !*switch,
            Step::Check => return true,
        }
        false
    }

    fn run(steps: &[Step]) -> Result<(), TestCaseError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let root = tempfile::tempdir().unwrap();
        let files = [root.path().join("a/disable"), root.path().join("b/disable")];
        let target = root.path().join("target");
        for file in &files {
            std::fs::create_dir(file.parent().unwrap()).unwrap();
        }
        prop_assert!(
            told_by_inotify(root.path()),
            "the temporary directory is on a file system where inotify is not trusted"
        );
        let mut disable = DisableFile::default();
        let mut switch = false;
        runtime.block_on(async {
            disable.look(Some(&files[0])).await;
            for step in steps {
                let trusted = disable.trusted;
                let before = disable.lookups;
                let in_use = &files[usize::from(switch)];
                let untouched = apply(step, in_use, &target, &mut switch);
                let in_use = &files[usize::from(switch)];
                let answer = disable.look(Some(in_use)).await;
                prop_assert_eq!(&answer, &look_up_disable_file(in_use), "after {:?}", step);
                if trusted && untouched {
                    prop_assert_eq!(disable.lookups, before, "a look-up after {:?}", step);
                }
            }
            Ok(())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn the_answer_is_never_stale_and_a_quiet_directory_costs_no_look_up(
            steps in proptest::collection::vec(step(), 1..40)
        ) {
            run(&steps)?;
        }
    }

    /// The case the watch exists for: checks with nothing happening make one look-up in all.
    #[tokio::test]
    async fn checks_reuse_the_answer_until_the_file_changes() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("disable");
        let mut disable = DisableFile::default();
        for _ in 0..10 {
            assert_eq!(disable.look(Some(&file)).await, None);
        }
        assert_eq!(disable.lookups, 1);
        std::fs::write(&file, "kernel upgrade OPS-42\n").unwrap();
        let expected = format!(
            "disable file {} exists: kernel upgrade OPS-42",
            file.display()
        );
        assert_eq!(disable.look(Some(&file)).await, Some(expected.clone()));
        assert_eq!(disable.look(Some(&file)).await, Some(expected));
        assert_eq!(disable.lookups, 2);
        std::fs::remove_file(&file).unwrap();
        assert_eq!(disable.look(Some(&file)).await, None);
        assert_eq!(disable.lookups, 3);
    }

    /// Where inotify cannot be trusted (here: a link in the path), every check looks.
    #[tokio::test]
    async fn a_link_in_the_path_means_a_look_up_at_every_check() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("real")).unwrap();
        std::os::unix::fs::symlink(root.path().join("real"), root.path().join("link")).unwrap();
        let file = root.path().join("link/disable");
        let mut disable = DisableFile::default();
        for _ in 0..3 {
            assert_eq!(disable.look(Some(&file)).await, None);
        }
        assert_eq!(disable.lookups, 3);
    }
}
