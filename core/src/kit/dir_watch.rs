//! Watching a file through its directory with inotify: a file replaced by a rename is a new
//! inode, so a watch on the file itself would miss the next version. What is watched, and what
//! an event means, shared by the required state files and the disable file.

use std::ffi::OsStr;

use nix::sys::inotify::{AddWatchFlags, InotifyEvent};

/// Everything that makes, removes, replaces or rewrites an entry of the directory (a rewrite is
/// seen when the writer closes it), and the directory itself going away.
pub(crate) const ENTRIES: AddWatchFlags = AddWatchFlags::IN_CLOSE_WRITE
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_CREATE)
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_ATTRIB)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF)
    .union(AddWatchFlags::IN_ONLYDIR);

/// What one event says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen<'a> {
    /// The queue overflowed: events were lost, anything may have changed.
    Overflow,
    /// The watched directory is gone or moved: its path must be watched again.
    DirectoryLost,
    /// This entry of the directory changed.
    Entry(&'a OsStr),
    /// Nothing about an entry.
    Nothing,
}

/// Read `event`.
pub(crate) fn seen(event: &InotifyEvent) -> Seen<'_> {
    if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
        Seen::Overflow
    } else if event.mask.intersects(
        AddWatchFlags::IN_IGNORED | AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF,
    ) {
        Seen::DirectoryLost
    } else {
        event.name.as_deref().map_or(Seen::Nothing, Seen::Entry)
    }
}
