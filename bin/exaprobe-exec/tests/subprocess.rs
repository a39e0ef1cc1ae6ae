//! The real exaprobe-exec binary running real programs that misbehave: output far beyond a pipe
//! buffer, a blank `--shell`, grandchildren that leave the process group and hold the pipes,
//! checks that ignore SIGTERM. Afterwards nothing they started may be left: no process (found by
//! a marker in its command line, wherever it was reparented) and no zombie under the probe.

use std::process::{Command, Stdio};
use std::time::Duration;

use exaprobe_testkit::spawned::Spawned;
use exaprobe_testkit::{temp_dir, wait_for};

const BINARY: &str = env!("CARGO_BIN_EXE_exaprobe-exec");

/// Run the binary to completion: (exit code, stdout, stderr).
fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::new(BINARY)
        .args(args)
        .env_remove("EXAPROBE_SHELL")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A `sleep` whose command line carries a marker unique to this test run, so that a leftover is
/// found wherever it went.
struct Marker(String);

impl Marker {
    fn new(test: u32) -> Marker {
        Marker(format!("{}{:03}", std::process::id(), test))
    }

    /// `sleep N` with the marker as its duration (seconds: long enough to outlive any test).
    fn sleep(&self) -> String {
        format!("sleep {}", self.0)
    }

    /// Pids of live processes whose command line holds the marker.
    fn survivors(&self) -> Vec<i32> {
        let needle = format!("sleep\0{}\0", self.0);
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|cmdline| {
                        cmdline
                            .windows(needle.len())
                            .any(|w| w == needle.as_bytes())
                    })
                    .unwrap_or(false)
            })
            .collect()
    }

    fn assert_none_left(&self) {
        wait_for(
            "every marked process to be killed",
            Duration::from_secs(5),
            || self.survivors().is_empty().then_some(()),
        );
    }
}

/// The children of `pid` (all its threads) with their state letter.
fn children_of(pid: u32) -> Vec<(i32, char)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|kid| kid.parse::<i32>().ok())
                .collect::<Vec<_>>()
        })
        .filter_map(|kid| {
            let stat = std::fs::read_to_string(format!("/proc/{kid}/stat")).ok()?;
            let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            Some((kid, state))
        })
        .collect()
}

/// How long the probe's first command may take.
const NEXT: Duration = Duration::from_secs(20);

/// A probe run under this test as its ExaBGP (answering `done` is not needed: `--no-ack`).
fn start(args: &[&str]) -> Spawned {
    Spawned::start(
        Command::new(BINARY)
            .args([
                "--name",
                "subprocess",
                "--prefix",
                "192.0.2.13/32",
                "--next-hop",
                "self",
                "--no-ack",
                "--exabgp-api",
                "4",
            ])
            .args(args)
            .env_remove("EXAPROBE_SHELL"),
    )
}

/// Wait until the probe has no child that is not a running check (`sh`), and no zombie.
fn assert_no_leftover_children(probe: &Spawned) {
    let pid = probe.pid();
    wait_for(
        "the probe to have no zombie and no leftover child",
        Duration::from_secs(5),
        || children_of(pid).is_empty().then_some(()),
    );
}

#[test]
fn output_far_beyond_a_pipe_buffer_is_healthy_on_stdout_and_on_stderr() {
    for script in [
        "head -c 10000000 /dev/zero; exit 0",
        "head -c 10000000 /dev/zero >&2; exit 0",
    ] {
        let (code, out, err) = run(&["--once", "--timeout", "10", "--shell", script], &[]);
        assert_eq!(code, 0, "{script}: {out}{err}");
        assert!(out.contains("OK") && out.contains("healthy in"), "{out}");
    }
}

#[test]
fn a_failing_chatty_check_reports_only_the_tail_of_each_stream() {
    let script = "seq 1 200000; echo last words; seq 1 200000 >&2; echo complaint >&2; exit 1";
    let (code, out, _) = run(&["--once", "--timeout", "10", "--shell", script], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("exit 1: "), "{out}");
    let (stdout_tail, stderr_tail) = out
        .split_once(" | ")
        .expect("the stdout and stderr tails, joined");
    assert!(stdout_tail.ends_with("200000 last words"), "{out}");
    assert!(stderr_tail.contains("200000 complaint"), "{out}");
    assert!(
        !out.contains(" 1 2 3 "),
        "the head of the output was kept: {out}"
    );
    assert!(out.len() < 2 * 4096 + 500, "{} bytes", out.len());
}

#[test]
fn a_blank_shell_command_is_rejected_at_start() {
    let dir = temp_dir();
    let config = dir.path().join("probe.toml");
    std::fs::write(&config, "shell = \"  \"\n").unwrap();
    let base = [
        "--prefix",
        "192.0.2.13/32",
        "--next-hop",
        "self",
        "--dry-run",
    ];
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: [Case; 5] = [
        (&["--shell", ""], &[]),
        (&["--shell", "   "], &[]),
        (&["--shell", "\t\n"], &[]),
        // An empty EXAPROBE_* variable counts as unset (then the program is missing: 64); a
        // blank one is a blank --shell.
        (&[], &[("EXAPROBE_SHELL", "  ")]),
        (&["--config", config.to_str().unwrap()], &[]),
    ];
    for (extra, env) in cases {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let (code, out, err) = run(&args, env);
        assert_eq!(code, 78, "{extra:?} {env:?}: {out}{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains("--shell"), "{err}");
        assert!(out.is_empty(), "{out}");
    }
}

#[test]
fn a_grandchild_that_called_setsid_cannot_hold_the_pipe_or_survive() {
    let marker = Marker::new(1);
    for script in [
        // Double fork: the grandchild is reparented to the probe before the check ends.
        format!("( setsid {} & ); echo started; exit 0", marker.sleep()),
        // Its parent outlives the check's own process: reached one round deeper.
        format!(
            "sh -c 'setsid {} & exec sleep 30' & echo started; exit 0",
            marker.sleep()
        ),
    ] {
        let (code, out, err) = run(&["--once", "--timeout", "10", "--shell", &script], &[]);
        assert_eq!(code, 0, "{script}: {out}{err}");
        assert!(out.contains("OK"), "{out}");
        marker.assert_none_left();
    }
}

#[test]
fn a_timed_out_check_that_ignores_sigterm_leaves_nothing_behind() {
    let marker = Marker::new(2);
    let script = format!(
        "trap '' TERM; {0} & setsid {0} & ( setsid {0} & ); exec {0}",
        marker.sleep()
    );
    let probe = start(&[
        "--interval",
        "60",
        "--rise",
        "1",
        "--fall",
        "1",
        "--timeout",
        "0.5",
        "--shell",
        &script,
    ]);
    // The first check times out: DOWN, announced with the down metric.
    assert!(probe.line(NEXT).contains("med 1000"));
    marker.assert_none_left();
    assert_no_leftover_children(&probe);
}

#[test]
fn many_checks_leaving_children_behind_leave_nothing() {
    let marker = Marker::new(3);
    let dir = temp_dir();
    let stop = dir.path().join("stop");
    let count = dir.path().join("count");
    let script = format!(
        "printf x >> {count}; test -e {stop} && exit 0; {0} & setsid {0} & ( {0} & ); exit 0",
        marker.sleep(),
        count = count.display(),
        stop = stop.display(),
    );
    let mut probe = start(&[
        "--interval",
        "0.05",
        "--fast-interval",
        "0.05",
        "--rise",
        "1",
        "--shell",
        &script,
    ]);
    assert!(probe.line(NEXT).contains("med 100"));
    wait_for("30 checks", Duration::from_secs(30), || {
        (std::fs::metadata(&count).map(|m| m.len()).unwrap_or(0) >= 30).then_some(())
    });
    // Each check kills what it left before the next one starts: at most one check's worth.
    assert!(marker.survivors().len() <= 3, "{:?}", marker.survivors());
    std::fs::write(&stop, "").unwrap();
    marker.assert_none_left();
    // Checks keep running (a plain `sh` that exits at once): wait for a moment between two.
    assert_no_leftover_children(&probe);
    assert!(probe.is_running());
    // The cleanups waited on pidfds: a SIGCHLD handler, once installed, would stay and cost
    // every later check a signal and three syscalls.
    assert!(
        !catches_sigchld(probe.pid()),
        "the probe installed a SIGCHLD handler"
    );
}

/// Whether process `pid` has a handler for SIGCHLD (`SigCgt` in its status).
fn catches_sigchld(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let caught = status
        .lines()
        .find_map(|line| line.strip_prefix("SigCgt:"))
        .map(|mask| u64::from_str_radix(mask.trim(), 16).unwrap())
        .unwrap();
    caught & (1 << (nix::sys::signal::Signal::SIGCHLD as i32 - 1)) != 0
}

#[test]
fn hooks_get_the_same_guarantees() {
    let marker = Marker::new(4);
    let dir = temp_dir();
    let ran = dir.path().join("ran");
    let hook = format!(
        "head -c 10000000 /dev/zero; head -c 10000000 /dev/zero >&2; setsid {0} & {0} & echo $STATE >> {1}",
        marker.sleep(),
        ran.display()
    );
    let probe = start(&[
        "--interval",
        "60",
        "--rise",
        "1",
        "--execute",
        &hook,
        "--",
        "true",
    ]);
    assert!(probe.line(NEXT).contains("med 100"));
    wait_for("the hook to finish", Duration::from_secs(20), || {
        std::fs::read_to_string(&ran)
            .ok()
            .filter(|text| text.contains("UP"))
    });
    marker.assert_none_left();
    assert_no_leftover_children(&probe);
}
