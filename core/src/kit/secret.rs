//! Secrets (database, Redis and HTTP passwords) read from files, with a warning when the file is
//! readable by others, and a warning when a password sits on the command line instead. Secrets
//! are never logged (see [`crate::kit::redact`]).

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Once;

use anyhow::Result;

use crate::kit::files::{READ_TIMEOUT, SECRET_CAP, open_regular, read_opened};

/// Read a secret from a file: the first line, without its line ending.
///
/// Only a regular file of at most 64 KiB is read (a directory, a FIFO or a device is one error,
/// before any permission warning). Warns (once, at load) when the file is readable by group or
/// others, as ssh does for keys.
pub fn read_secret_file(path: &Path) -> Result<String> {
    let shown = crate::kit::escape::escape_controls(&path.to_string_lossy()).into_owned();
    let (file, metadata) =
        open_regular(path).map_err(|error| anyhow::anyhow!("secret file {shown}: {error}"))?;
    // Refuse what will not be read before warning about its permissions.
    if metadata.len() > SECRET_CAP {
        anyhow::bail!(
            "secret file {shown}: {}",
            crate::kit::files::FileError::TooLarge { cap: SECRET_CAP }
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

/// The options of `args` (a command line, program name first) whose value holds a password,
/// as `--url`; a password in a positional argument is named `a command-line argument`.
pub fn passwords_in_args(args: &[OsString]) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending_option: Option<String> = None;
    for arg in args.iter().skip(1) {
        let arg = arg.to_string_lossy();
        let option = pending_option.take();
        if arg == "--" {
            continue;
        }
        if let Some(long) = arg.strip_prefix("--") {
            match long.split_once('=') {
                Some((name, value)) => {
                    if crate::kit::redact::contains_password(value) {
                        found.push(format!("--{name}"));
                    }
                }
                None => pending_option = Some(format!("--{long}")),
            }
            continue;
        }
        if crate::kit::redact::contains_password(&arg) {
            found.push(option.unwrap_or_else(|| "a command-line argument".to_string()));
        }
    }
    found.dedup();
    found
}

/// Warn (once per process, one line) when the command line holds a password: every local user
/// can read it with `ps`. `alternatives` names where the probe takes it instead, e.g.
/// `--password-file, REDISCLI_AUTH, or the URL in EXAPROBE_URL or the --config file`.
pub fn warn_password_on_command_line(alternatives: &str) {
    static WARNED: Once = Once::new();
    let options = passwords_in_args(&std::env::args_os().collect::<Vec<_>>());
    if options.is_empty() {
        return;
    }
    WARNED.call_once(|| {
        tracing::warn!(
            "a password is on the command line ({}), where every local user can read it (ps): use {alternatives} instead",
            options.join(", ")
        );
    });
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
    fn passwords_on_the_command_line_are_found() {
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            passwords_in_args(&args(&["p", "--url", "redis://:pw@h", "--name", "x"])),
            ["--url"]
        );
        assert_eq!(
            passwords_in_args(&args(&["p", "--dsn=host=h password=pw", "--once"])),
            ["--dsn"]
        );
        assert!(
            passwords_in_args(&args(&[
                "p",
                "--url",
                "http://u@h/",
                "--password-file",
                "/f"
            ]))
            .is_empty()
        );
        assert_eq!(
            passwords_in_args(&args(&["p", "--", "curl", "http://u:pw@h/"])),
            ["a command-line argument"]
        );
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
