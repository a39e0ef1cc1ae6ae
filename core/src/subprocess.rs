//! Running a program in its own process group, so a timeout kills everything it started.
//!
//! Used by the exec probe (the check) and by the transition hooks. The runner enforces
//! deadlines by dropping futures; [`GroupGuard`] makes sure that dropping also kills the group.

use std::process::{ExitStatus, Stdio};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// Kills a process group (SIGKILL) when dropped, unless disarmed.
#[derive(Debug)]
pub struct GroupGuard {
    group: Option<Pid>,
}

impl GroupGuard {
    /// Guard the group led by `pid`.
    pub fn new(pid: u32) -> Self {
        GroupGuard {
            group: i32::try_from(pid).ok().map(Pid::from_raw),
        }
    }

    /// Kill the group now.
    pub fn kill(&mut self) {
        if let Some(group) = self.group.take() {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }

    /// Stop guarding (the group exited by itself and may keep background children).
    pub fn disarm(&mut self) {
        self.group = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How a captured program ended.
#[derive(Debug)]
pub struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// The last bytes of its stdout and stderr, lossily decoded, whitespace collapsed.
    pub output_tail: String,
}

/// Run `command` in a new process group with stdin closed, capturing the last `tail` bytes of
/// stdout and stderr. When the program exits, what is left of its group is killed (so a
/// background child holding the pipes cannot stall the check). Dropping the future kills the
/// group too.
pub async fn run_captured(mut command: Command, tail: usize) -> std::io::Result<Finished> {
    command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    let mut guard = GroupGuard::new(child.id().unwrap_or(0));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let status = child.wait().await?;
    // The leader is gone: kill its stragglers so the pipes close, then read what is left.
    guard.kill();
    let (out, err) = tokio::join!(read_tail(stdout, tail), read_tail(stderr, tail));
    let mut combined = String::new();
    for part in [out, err] {
        let part = part.split_whitespace().collect::<Vec<_>>().join(" ");
        if !part.is_empty() {
            if !combined.is_empty() {
                combined.push_str(" | ");
            }
            combined.push_str(&part);
        }
    }
    Ok(Finished {
        status,
        output_tail: combined,
    })
}

/// Run `command` in a new process group with stdin and stdout closed (stderr goes to ours, so to
/// ExaBGP's log). The group is killed only if the future is dropped (timeout).
pub async fn run_detached(mut command: Command) -> std::io::Result<ExitStatus> {
    command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    let mut guard = GroupGuard::new(child.id().unwrap_or(0));
    let status = child.wait().await?;
    guard.disarm();
    Ok(status)
}

async fn read_tail<R: AsyncRead + Unpin>(reader: Option<R>, keep: usize) -> String {
    let Some(mut reader) = reader else {
        return String::new();
    };
    let mut kept: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    while let Ok(n) = reader.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&chunk[..n]);
        if kept.len() > keep {
            kept.drain(..kept.len() - keep);
        }
    }
    let text = String::from_utf8_lossy(&kept);
    text.chars()
        .filter(|c| !c.is_control() || *c == ' ' || *c == '\n')
        .collect()
}

/// Describe an exit status for a log line: `exit 3`, `killed by signal 9`.
pub fn describe_status(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "ended".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.arg("-c").arg(script);
        command
    }

    #[tokio::test]
    async fn captures_status_and_tail() {
        let finished = run_captured(sh("echo hello; echo oops >&2; exit 3"), 100)
            .await
            .unwrap();
        assert_eq!(finished.status.code(), Some(3));
        assert_eq!(finished.output_tail, "hello | oops");
        let long = run_captured(sh("seq 1 1000"), 10).await.unwrap();
        assert!(long.output_tail.ends_with("1000"), "{}", long.output_tail);
        assert!(long.output_tail.len() <= 10);
    }

    #[tokio::test]
    async fn background_children_do_not_stall_the_check() {
        let started = std::time::Instant::now();
        let finished = run_captured(sh("sleep 30 & echo started"), 100)
            .await
            .unwrap();
        assert!(finished.status.success());
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn dropping_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
        let run = run_captured(sh(&script), 100);
        let waited = tokio::time::timeout(Duration::from_millis(500), run).await;
        assert!(waited.is_err(), "the script should still be running");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let gone = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.is_empty() || stat.contains(") Z ")
        });
        assert!(gone, "the background sleep {pid} survived the timeout");
    }

    #[test]
    fn describes_statuses() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(describe_status(&ExitStatus::from_raw(3 << 8)), "exit 3");
        assert_eq!(
            describe_status(&ExitStatus::from_raw(9)),
            "killed by signal 9"
        );
    }
}
