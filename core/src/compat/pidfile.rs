//! `--pid FILE` (`-p`): the process id written at start, as `exabgp healthcheck` writes it
//! (`PID\n`, before addresses are set up and privileges dropped, left in place at exit).
//!
//! Unlike the healthcheck's `open(path, 'w')`, which follows a symbolic link another user
//! planted (in /tmp, say) and truncates whatever it points to as root, the pid is written to
//! a temporary file created exclusively without following links, then renamed over the path;
//! a path that is a link, a device, a FIFO or a directory is refused.

use std::path::Path;

/// Write this process's id to `path`; a message naming the option on failure.
pub(crate) fn write(path: &Path) -> Result<(), crate::compat::error::CompatError> {
    crate::kit::files::replace_regular(path, format!("{}\n", std::process::id()).as_bytes())
        .map_err(|error| crate::compat::error::CompatError::PidFile {
            path: path.to_path_buf(),
            error,
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_the_pid_and_names_the_option_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probe.pid");
        super::write(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        // A stale pid file is replaced.
        std::fs::write(&path, "1\n").unwrap();
        super::write(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        let error = super::write(&dir.path().join("missing/probe.pid"))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("--pid "), "{error}");
        assert!(error.contains("cannot write it"), "{error}");
    }

    /// A link planted at the pid file's path is neither followed nor replaced.
    #[test]
    fn a_planted_symbolic_link_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let path = dir.path().join("probe.pid");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let error = super::write(&path).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "--pid {0}: cannot write it: {0}: it is a symbolic link, not a regular file",
                path.display()
            )
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(
            std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}
