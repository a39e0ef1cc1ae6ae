//! Atomic file replacement on a thread of its own, latest content wins: the textfile and the
//! state file are written off the event loop, so a slow or hung file system never delays a check
//! or a route change, and a reader never sees half a file (temp file in the same directory,
//! fsync, rename, fsync of the directory).

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

/// Wakes the writer thread, which renders the current content itself and writes it: any number
/// of pokes while it writes make one more write, so a burst of changes (a thousand ACKs) costs
/// the event loop a flag each and the disk one or two writes.
#[derive(Debug, Clone)]
pub(crate) struct LatestWriter {
    slot: Arc<(Mutex<bool>, Condvar)>,
}

/// What the writer thread calls for the content to write.
pub(crate) type Render = Box<dyn Fn() -> Vec<u8> + Send>;

impl LatestWriter {
    /// Start the thread writing what `render` gives to `path`; `what` names the file in log
    /// lines, `probe` is the probe's name for them.
    pub(crate) fn spawn(path: PathBuf, what: &'static str, probe: String, render: Render) -> Self {
        let slot: Arc<(Mutex<bool>, Condvar)> = Arc::default();
        let shared = Arc::clone(&slot);
        let spawned = std::thread::Builder::new()
            .name(format!("exaprobe-{}", what.replace(' ', "-")))
            .spawn(move || {
                let span = tracing::info_span!("exaprobe", probe = %probe);
                let _entered = span.enter();
                let mut last_error: Option<String> = None;
                loop {
                    {
                        let (lock, ready) = &*shared;
                        let mut due = lock.lock().unwrap_or_else(|p| p.into_inner());
                        while !*due {
                            due = ready.wait(due).unwrap_or_else(|p| p.into_inner());
                        }
                        *due = false;
                    }
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

    /// Ask for a write of the current content. Never blocks on the file system.
    pub(crate) fn poke(&self) {
        let (lock, ready) = &*self.slot;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        ready.notify_one();
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
        let writer = LatestWriter::spawn(path.clone(), "test file", "test".into(), render);
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
}
