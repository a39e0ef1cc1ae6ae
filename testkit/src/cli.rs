//! A probe binary run the way an operator runs it, for tests of what it prints: the `--once`
//! line, `--check-config`, the `starting` log line, command-line errors.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::ChildGuard;

/// What a finished run printed.
#[derive(Debug)]
pub struct Run {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
}

impl Run {
    /// stdout and stderr together, for "never anywhere" assertions.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Run `binary` with `args` and `env` to completion, stdin closed.
pub fn run(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(binary)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("EXAPROBE_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run the probe binary");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Start `binary` in its normal mode (add `--dry-run`), wait for its `starting` log line, then
/// stop it (SIGTERM) and return everything it wrote to stderr.
pub fn start_and_stop(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut guard = ChildGuard::spawn(
        Command::new(binary)
            .args(args)
            .envs(env.iter().copied())
            .env_remove("EXAPROBE_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let stderr = guard.child().stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("read stderr");
        let started = line.contains("starting");
        seen.push(line);
        if started {
            break;
        }
    }
    guard.signal(nix::sys::signal::Signal::SIGTERM);
    if guard.wait_timeout(Duration::from_secs(10)).is_none() {
        let _ = guard.child().kill();
    }
    seen.extend(lines.map_while(Result::ok));
    seen.join("\n")
}
