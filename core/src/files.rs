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
    let kind = metadata.file_type();
    if kind.is_dir() {
        return Err(FileError::Directory);
    }
    if !kind.is_file() {
        return Err(FileError::NotRegular(if kind.is_fifo() {
            "FIFO"
        } else if kind.is_socket() {
            "socket"
        } else if kind.is_char_device() {
            "character device"
        } else if kind.is_block_device() {
            "block device"
        } else {
            "special file"
        }));
    }
    Ok((file, metadata))
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
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(CONFIG_CAP), "1 MiB");
        assert_eq!(human_size(SECRET_CAP), "64 KiB");
        assert_eq!(human_size(100), "100 bytes");
    }
}
