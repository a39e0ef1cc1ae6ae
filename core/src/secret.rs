//! Secrets (database and Redis passwords) read from files, with a warning when the file is
//! readable by others. Secrets are never taken only from argv and never logged.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Result;

use crate::files::{READ_TIMEOUT, SECRET_CAP, open_regular, read_opened};

/// Read a secret from a file: the first line, without its line ending.
///
/// Only a regular file of at most 64 KiB is read (a directory, a FIFO or a device is one error,
/// before any permission warning). Warns (once, at load) when the file is readable by group or
/// others, as ssh does for keys.
pub fn read_secret_file(path: &Path) -> Result<String> {
    let shown = crate::escape::escape_controls(&path.to_string_lossy()).into_owned();
    let (file, metadata) =
        open_regular(path).map_err(|error| anyhow::anyhow!("secret file {shown}: {error}"))?;
    // Refuse what will not be read before warning about its permissions.
    if metadata.len() > SECRET_CAP {
        anyhow::bail!(
            "secret file {shown}: {}",
            crate::files::FileError::TooLarge { cap: SECRET_CAP }
        );
    }
    if metadata.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            file = %shown,
            mode = format!("{:o}", metadata.permissions().mode() & 0o777),
            "secret file is readable by group or others; chmod 600 it"
        );
    }
    let bytes = read_opened(file, &metadata, SECRET_CAP, READ_TIMEOUT)
        .map_err(|error| anyhow::anyhow!("secret file {shown}: {error}"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("secret file {shown}: it is not UTF-8 text"))?;
    let secret = text.lines().next().unwrap_or("").to_string();
    if secret.is_empty() {
        anyhow::bail!("secret file {shown} is empty");
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\nignored\n").unwrap();
        assert_eq!(read_secret_file(&path).unwrap(), "s3cret");
    }

    #[test]
    fn missing_empty_and_special_files_are_one_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let cases = [
            (
                missing.clone(),
                format!("secret file {}: it does not exist", missing.display()),
            ),
            (
                dir.path().to_path_buf(),
                format!(
                    "secret file {}: it is a directory, not a file",
                    dir.path().display()
                ),
            ),
            (
                "/dev/zero".into(),
                "secret file /dev/zero: it is a character device, not a regular file".to_string(),
            ),
        ];
        for (path, expected) in cases {
            let error = format!("{:#}", read_secret_file(&path).unwrap_err());
            assert_eq!(error, expected);
        }
        let path = dir.path().join("empty");
        std::fs::write(&path, "").unwrap();
        assert!(format!("{:#}", read_secret_file(&path).unwrap_err()).contains("empty"));
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 70_000]).unwrap();
        assert!(
            format!("{:#}", read_secret_file(&big).unwrap_err()).contains("larger than 64 KiB")
        );
    }
}
