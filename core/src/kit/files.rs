//! Reading the small files an operator points the probe at (config, secrets, the disable file,
//! `.pgpass`) without letting a wrong path hurt it: only regular files are read (a FIFO with no
//! writer would hang, `/dev/zero` never ends), never more than a cap, and never for longer than a
//! deadline (a dead NFS mount). Errors are typed so each caller can phrase them in one line.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

/// Largest config file read: a probe's TOML is a few hundred bytes; 1 MiB is far beyond any real
/// one and small enough that a wrong path cannot balloon the process.
pub const CONFIG_CAP: u64 = 1 << 20;
/// Largest secret file read (a password, a `.pgpass`): 64 KiB.
pub const SECRET_CAP: u64 = 64 << 10;
/// How long reading one file may take before the probe gives up on it.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a file could not be read. Displays as the end of a sentence that starts with the file's
/// role and path (`config file /etc/x.toml: it is a directory, not a file`).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file does not exist.
    #[error("it does not exist")]
    Missing,
    /// The probe's user may not read it.
    #[error("permission denied")]
    PermissionDenied,
    /// Opening failed for another reason.
    #[error("cannot open it: {0}")]
    Open(std::io::Error),
    /// A directory where a file was expected.
    #[error("it is a directory, not a file")]
    Directory,
    /// A FIFO, socket or device: reading it could hang or never end.
    #[error("it is a {0}, not a regular file")]
    NotRegular(&'static str),
    /// Larger than the cap.
    #[error("it is larger than {} (the most read from such a file)", human_size(*cap))]
    TooLarge {
        /// The cap in bytes.
        cap: u64,
    },
    /// Reading failed.
    #[error("cannot read it: {0}")]
    Read(std::io::Error),
    /// Reading took longer than the deadline.
    #[error("reading it took longer than {} s", .0.as_secs_f64())]
    Timeout(Duration),
}

/// Open `path` for reading only if it is a regular file, and return it with its metadata (for
/// callers that check permissions before reading, like secret files).
///
/// The open is non-blocking, so a FIFO without a writer is refused instead of hanging.
pub fn open_regular(path: &Path) -> Result<(File, Metadata), FileError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => FileError::Missing,
            std::io::ErrorKind::PermissionDenied => FileError::PermissionDenied,
            _ => FileError::Open(error),
        })?;
    let metadata = file.metadata().map_err(FileError::Open)?;
    regular(metadata.file_type())?;
    Ok((file, metadata))
}

/// A regular file's type passes; anything else is the error naming what it is.
fn regular(kind: std::fs::FileType) -> Result<(), FileError> {
    if kind.is_dir() {
        return Err(FileError::Directory);
    }
    if kind.is_file() {
        return Ok(());
    }
    Err(FileError::NotRegular(if kind.is_fifo() {
        "FIFO"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_char_device() {
        "character device"
    } else if kind.is_block_device() {
        "block device"
    } else if kind.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    }))
}

/// Whether the probe may replace `path` with a file it writes (the state file, the metrics
/// textfile, the pid file): only a missing path or a regular file. A rename over a device or a
/// FIFO would replace it (a root probe given `/dev/null` would replace the host's), and a
/// symbolic link, planted where another user can write, is not followed nor replaced.
pub(crate) fn check_replaceable(path: &Path) -> Result<(), FileError> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) => regular(metadata.file_type()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(FileError::PermissionDenied)
        }
        Err(error) => Err(FileError::Open(error)),
    }
}

/// A clap `value_parser` for an output file: refused at parse (so the error names the option
/// and its source, at start and in `--check-config`) unless [`check_replaceable`].
pub(crate) fn parse_output_file(text: &str) -> Result<std::path::PathBuf, String> {
    let path = std::path::PathBuf::from(text);
    check_replaceable(&path).map_err(|error| format!("'{text}': {error}"))?;
    Ok(path)
}

/// Replace `path` with `content` atomically: readers see the old file or the new one, whole
/// (temporary file created exclusively in the same directory, fsync, rename, fsync of the
/// directory). Refuses a `path` that is not a regular file or missing ([`check_replaceable`]).
pub(crate) fn replace_regular(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    check_replaceable(path).with_context(|| format!("{}", path.display()))?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary = directory.join(temporary_name);
    let _ = std::fs::remove_file(&temporary);
    let result = (|| -> anyhow::Result<()> {
        // create_new (O_EXCL): never follows a symlink planted at the temporary name.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temporary)
            .with_context(|| format!("create {}", temporary.display()))?;
        file.write_all(content)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("write {}", temporary.display()))?;
        // Checked again just before the rename: the path may have changed since.
        check_replaceable(path).with_context(|| format!("{}", path.display()))?;
        std::fs::rename(&temporary, path)
            .with_context(|| format!("rename to {}", path.display()))?;
        // Make the rename itself durable; a failure here loses nothing already visible.
        let _ = File::open(directory).and_then(|d| d.sync_all());
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// Read a regular file of at most `cap` bytes, within [`READ_TIMEOUT`].
pub fn read_regular_file(path: &Path, cap: u64) -> Result<Vec<u8>, FileError> {
    let (file, metadata) = open_regular(path)?;
    read_opened(file, &metadata, cap, READ_TIMEOUT)
}

/// Read an already opened regular file (from [`open_regular`]) of at most `cap` bytes within
/// `timeout`.
///
/// The read runs on its own thread: a read stuck in the kernel (a hung network file system)
/// cannot be interrupted, but the probe stops waiting for it.
pub fn read_opened(
    file: File,
    metadata: &Metadata,
    cap: u64,
    timeout: Duration,
) -> Result<Vec<u8>, FileError> {
    if metadata.len() > cap {
        return Err(FileError::TooLarge { cap });
    }
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("exaprobe-read-file".into())
        .spawn(move || {
            let mut bytes = Vec::new();
            // One byte more than the cap tells a file that grew since fstat from one at the cap.
            let result = file
                .take(cap.saturating_add(1))
                .read_to_end(&mut bytes)
                .map(|_| bytes);
            let _ = sender.send(result);
        })
        .map_err(FileError::Read)?;
    let bytes = match receiver.recv_timeout(timeout) {
        Ok(result) => result.map_err(FileError::Read)?,
        Err(_) => return Err(FileError::Timeout(timeout)),
    };
    if bytes.len() as u64 > cap {
        return Err(FileError::TooLarge { cap });
    }
    Ok(bytes)
}

/// `1 MiB`, `64 KiB`, `100 bytes`: caps as an operator reads them.
fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_small_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "hello\n").unwrap();
        assert_eq!(read_regular_file(&path, 100).unwrap(), b"hello\n");
        // Exactly at the cap is fine.
        assert_eq!(read_regular_file(&path, 6).unwrap(), b"hello\n");
    }

    #[test]
    fn refuses_what_is_not_a_small_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 2048]).unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let cases: [(&Path, &str); 5] = [
            (dir.path(), "it is a directory, not a file"),
            (&fifo, "it is a FIFO, not a regular file"),
            (
                Path::new("/dev/zero"),
                "it is a character device, not a regular file",
            ),
            (
                &big,
                "it is larger than 1 KiB (the most read from such a file)",
            ),
            (&dir.path().join("nope"), "it does not exist"),
        ];
        for (path, expected) in cases {
            let error = read_regular_file(path, 1024).unwrap_err();
            assert_eq!(error.to_string(), expected, "{}", path.display());
        }
    }

    #[test]
    fn a_read_that_never_ends_times_out() {
        // A FIFO whose writer stays open and silent: a blocking read would wait forever.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let _writer = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        let reader = File::open(&fifo).unwrap();
        let metadata = reader.metadata().unwrap();
        let error = read_opened(reader, &metadata, 1024, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(error, FileError::Timeout(_)), "{error:?}");
        assert_eq!(error.to_string(), "reading it took longer than 0.05 s");
    }

    #[test]
    fn replaces_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        replace_regular(&path, b"first").unwrap();
        replace_regular(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
        let error = replace_regular(&dir.path().join("missing/state.json"), b"x").unwrap_err();
        assert!(format!("{error:#}").contains("missing"), "{error:#}");
    }

    /// A FIFO, a device, a symbolic link or a directory at the path is refused and left as it
    /// was (the device is one of the test's own, made with mknod when root).
    #[test]
    fn only_a_regular_file_or_nothing_is_replaced() {
        use std::os::unix::fs::FileTypeExt as _;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "kept").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let mut cases = vec![
            (fifo.clone(), "it is a FIFO, not a regular file"),
            (link.clone(), "it is a symbolic link, not a regular file"),
            (dir.path().join("sub"), "it is a directory, not a file"),
        ];
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let null = dir.path().join("null");
        let device = nix::sys::stat::mknod(
            &null,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        );
        if device.is_ok() {
            cases.push((null.clone(), "it is a character device, not a regular file"));
        } else {
            eprintln!("SKIPPED: the device case needs root (mknod)");
        }
        for (path, expected) in &cases {
            let error = replace_regular(path, b"x").unwrap_err();
            assert!(format!("{error:#}").ends_with(expected), "{error:#}");
            assert_eq!(
                parse_output_file(&path.display().to_string()).unwrap_err(),
                format!("'{}': {expected}", path.display())
            );
        }
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "kept");
        if device.is_ok() {
            assert!(
                std::fs::metadata(&null)
                    .unwrap()
                    .file_type()
                    .is_char_device()
            );
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
        assert!(parse_output_file(&dir.path().join("new").display().to_string()).is_ok());
        assert!(parse_output_file(&target.display().to_string()).is_ok());
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(CONFIG_CAP), "1 MiB");
        assert_eq!(human_size(SECRET_CAP), "64 KiB");
        assert_eq!(human_size(100), "100 bytes");
    }
}
