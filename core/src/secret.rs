//! Secrets (database and Redis passwords) read from files, with a warning when the file is
//! readable by others. Secrets are never taken only from argv and never logged.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

/// Read a secret from a file: the first line, without its line ending.
///
/// Warns (once, at load) when the file is readable by group or others, as ssh does for keys.
pub fn read_secret_file(path: &Path) -> Result<String> {
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("cannot read secret file {}", path.display()))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            file = %path.display(),
            mode = format!("{:o}", metadata.permissions().mode() & 0o777),
            "secret file is readable by group or others; chmod 600 it"
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read secret file {}", path.display()))?;
    let secret = text.lines().next().unwrap_or("").to_string();
    if secret.is_empty() {
        anyhow::bail!("secret file {} is empty", path.display());
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
    fn missing_and_empty_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = read_secret_file(&dir.path().join("nope")).unwrap_err();
        assert!(format!("{missing:#}").contains("cannot read secret file"));
        let path = dir.path().join("empty");
        std::fs::write(&path, "").unwrap();
        assert!(format!("{:#}", read_secret_file(&path).unwrap_err()).contains("empty"));
    }
}
