//! `--pid FILE` (`-p`): the process id written at start, as `exabgp healthcheck` writes it
//! (`PID\n`, before addresses are set up and privileges dropped, left in place at exit).

use std::path::Path;

/// Write this process's id to `path`; a message naming the option on failure.
pub(crate) fn write(path: &Path) -> Result<(), String> {
    std::fs::write(path, format!("{}\n", std::process::id()))
        .map_err(|error| format!("--pid {}: cannot write it: {error}", path.display()))
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
        let error = super::write(&dir.path().join("missing/probe.pid")).unwrap_err();
        assert!(error.starts_with("--pid "), "{error}");
        assert!(error.contains("cannot write it"), "{error}");
    }
}
