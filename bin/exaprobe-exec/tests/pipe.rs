//! The real exaprobe-exec binary driven through its pipes, this test playing ExaBGP: it reads
//! the commands on the probe's stdout and answers (or not) on its stdin.
//!
//! Only what needs a real process is here: signals to its pid, pipes really closing, programs
//! and hooks really run, the binary's exit codes. The runner's decisions are proved by its own
//! tests (core/src/engine/runner/tests.rs, tests/, sim), start-up, `--check-config` and
//! `--once` in-process (core/src/app/tests.rs), bad configurations through every binary by the
//! `tests` crate's bad_config.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use exaprobe_testkit::spawned::Spawned;
use exaprobe_testkit::{ChildGuard, temp_dir, wait_for};
use nix::sys::signal::Signal;

const BINARY: &str = env!("CARGO_BIN_EXE_exaprobe-exec");
const FAST: &[&str] = &[
    "--interval",
    "0.2",
    "--fast-interval",
    "0.05",
    "--rise",
    "2",
    "--fall",
    "2",
    // This test plays an ExaBGP 5.0 that is not asked its version (the runner's own tests cover
    // `--exabgp-api auto`).
    "--exabgp-api",
    "4",
];

/// How long the next command may take.
const NEXT: Duration = Duration::from_secs(5);
/// How long an awaited log line may take.
const WAIT: Duration = Duration::from_secs(5);
/// ExaBGP's acknowledgement of a command.
const ACK: &str = "done\n";

/// The probe running with this test as its ExaBGP.
fn start(args: &[&str]) -> Spawned {
    Spawned::start(Command::new(BINARY).args(args))
}

fn args<'a>(extra: &[&'a str], command: &[&'a str]) -> Vec<&'a str> {
    // The fast timers, unless the test sets its own.
    let mut all: Vec<&str> = FAST
        .chunks(2)
        .filter(|pair| !extra.contains(&pair[0]))
        .flatten()
        .copied()
        .collect();
    all.extend_from_slice(extra);
    all.push("--");
    all.extend_from_slice(command);
    all
}

fn flag_file(dir: &Path) -> (PathBuf, String) {
    let file = dir.join("healthy");
    let text = file.to_str().unwrap().to_string();
    (file, text)
}

#[test]
fn announces_after_rise_stays_quiet_and_withdraws_on_sigterm() {
    let mut probe = start(&args(
        &[
            "--prefix",
            "192.0.2.1/32",
            "--ip",
            "2001:db8::1",
            // `--ip` sets the address up on lo, as the healthcheck does: not on this host.
            "--no-ip-setup",
            "--community",
            "65000:1",
        ],
        &["true"],
    ));
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.1/32 next-hop self med 100 community [ 65000:1 ]"
    );
    probe.write(ACK);
    assert_eq!(
        probe.line(NEXT),
        "announce route 2001:db8::1/128 next-hop self med 101 community [ 65000:1 ]"
    );
    probe.write(ACK);
    probe.quiet_for(Duration::from_millis(800));
    let started = Instant::now();
    probe.signal(Signal::SIGTERM);
    assert_eq!(
        probe.line(NEXT),
        "withdraw route 192.0.2.1/32 next-hop self"
    );
    assert_eq!(
        probe.line(NEXT),
        "withdraw route 2001:db8::1/128 next-hop self"
    );
    probe.write("done\ndone\n");
    let status = probe.exits_within(Duration::from_millis(1500));
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[test]
fn sigterm_exits_in_time_even_when_exabgp_never_acks() {
    let mut probe = start(&args(&["--prefix", "192.0.2.1/32"], &["true"]));
    probe.line(NEXT);
    probe.write(ACK);
    probe.signal(Signal::SIGTERM);
    assert!(probe.line(NEXT).starts_with("withdraw route 192.0.2.1/32"));
    let status = probe.exits_within(Duration::from_millis(1500));
    assert!(status.success());
}

#[test]
fn error_ack_is_logged_with_the_command_and_the_probe_goes_on() {
    let dir = temp_dir();
    let (file, path) = flag_file(dir.path());
    std::fs::write(&file, "").unwrap();
    let probe = start(&args(&["--prefix", "192.0.2.5/32"], &["test", "-f", &path]));
    let first = probe.line(NEXT);
    probe.write("error\n");
    probe.wait_log("ExaBGP rejected a command", WAIT);
    assert!(
        probe.log().contains(&first),
        "the log names the command:\n{}",
        probe.log()
    );
    std::fs::remove_file(&file).unwrap();
    assert!(probe.line(NEXT).contains("med 1000"));
}

#[test]
fn shutdown_line_ends_the_probe_without_writing() {
    for notice in [
        "shutdown 5230 1\n\n".to_string(),
        "{ \"exabgp\": \"5.0.0\", \"time\": 1.5, \"host\" : \"vm\", \"pid\" : 1, \"ppid\" : 1, \"type\": \"notification\", \"notification\": \"shutdown\" }\n".to_string(),
    ] {
        let mut probe = start(&args(&["--prefix", "192.0.2.8/32"], &["true"]));
        probe.line(NEXT);
        probe.write(ACK);
        probe.write(&notice);
        let status = probe.exits_within(Duration::from_secs(1));
        assert!(status.success());
        probe.quiet_for(Duration::from_millis(100));
        assert!(probe.log().contains("shutting down"), "{}", probe.log());
    }
}

#[test]
fn stdin_eof_ends_the_probe_without_writing() {
    let mut probe = start(&args(
        &["--prefix", "192.0.2.9/32", "--interval", "60"],
        &["true"],
    ));
    probe.line(NEXT);
    probe.write(ACK);
    probe.close_stdin();
    let status = probe.exits_within(Duration::from_secs(1));
    assert!(status.success());
    probe.quiet_for(Duration::from_millis(100));
}

#[test]
fn garbage_overlong_lines_and_invalid_utf8_are_survived() {
    let mut probe = start(&args(
        &["--prefix", "192.0.2.10/32", "--ack-timeout", "3"],
        &["true"],
    ));
    probe.line(NEXT);
    let mut junk = vec![b'x'; 10 * 1024 * 1024];
    junk.extend_from_slice(b"\n\xff\xfe\xfd garbage\n{ \"type\": \"state\" }\n{ broken json\n\nneighbor 127.0.0.1 up\n");
    probe.write(&junk);
    probe.write(ACK);
    probe.wait_log("overlong line", WAIT);
    // Still alive, and the ACK after the garbage was recognised (no ACK timeout).
    probe.quiet_for(Duration::from_millis(300));
    assert!(probe.is_running());
    assert!(!probe.log().contains("no ACK"), "{}", probe.log());
    assert!(!probe.log().contains("panicked"), "{}", probe.log());
}

#[test]
fn hanging_program_times_out_and_its_process_group_is_killed() {
    let dir = temp_dir();
    let marker = dir.path().join("pids");
    let script = format!("sleep 300 & echo $! >> {}; wait", marker.display());
    let mut probe = start(&args(
        &[
            "--prefix",
            "192.0.2.11/32",
            "--timeout",
            "0.3",
            "--fall",
            "1",
            "--shell",
            &script,
        ],
        &[],
    ));
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.11/32 next-hop self med 1000"
    );
    probe.write(ACK);
    probe.wait_log("timed out after 300 ms", WAIT);
    let pids = std::fs::read_to_string(&marker).unwrap();
    let first: i32 = pids.lines().next().unwrap().trim().parse().unwrap();
    let gone = |pid: i32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.is_empty() || stat.contains(") Z ")
    };
    wait_for(
        "the timed-out check's background sleep to be killed",
        Duration::from_secs(3),
        || gone(first).then_some(()),
    );
    // SIGTERM while a check hangs: the probe kills it and what it started before exiting (a
    // SIGKILL, the harness's drop, could not, and would leave them to init).
    probe.wait_log("timed out after 300 ms", WAIT);
    probe.signal(Signal::SIGTERM);
    assert!(probe.line(NEXT).starts_with("withdraw route 192.0.2.11/32"));
    probe.write(ACK);
    let status = probe.exits_within(Duration::from_secs(3));
    assert!(status.success(), "{status:?}");
    let pids: Vec<i32> = std::fs::read_to_string(&marker)
        .unwrap()
        .lines()
        .map(|pid| pid.trim().parse().unwrap())
        .collect();
    for pid in pids {
        wait_for(
            "every background sleep to be gone with the probe",
            Duration::from_secs(3),
            || gone(pid).then_some(()),
        );
    }
}

#[test]
fn sighup_reloads_the_config_file_and_applies_the_difference() {
    let dir = temp_dir();
    let config = dir.path().join("probe.toml");
    std::fs::write(
        &config,
        "prefix = ['192.0.2.20/32', '192.0.2.21/32']\nup-metric = 10\n",
    )
    .unwrap();
    let mut probe = start(&args(&["--config", config.to_str().unwrap()], &["true"]));
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.20/32 next-hop self med 10"
    );
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.21/32 next-hop self med 11"
    );
    probe.write("done\ndone\n");
    std::fs::write(
        &config,
        "prefix = ['192.0.2.21/32', '192.0.2.22/32']\nup-metric = 10\n",
    )
    .unwrap();
    probe.signal(Signal::SIGHUP);
    assert_eq!(
        probe.line(NEXT),
        "withdraw route 192.0.2.20/32 next-hop self"
    );
    probe.write(ACK);
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.21/32 next-hop self med 10"
    );
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.22/32 next-hop self med 11"
    );
    probe.write("done\ndone\n");
    // A broken file on reload keeps the running configuration.
    std::fs::write(&config, "prefix = 'not a prefix'\n").unwrap();
    probe.signal(Signal::SIGHUP);
    probe.wait_log("reload failed", WAIT);
    probe.quiet_for(Duration::from_millis(300));
    assert!(probe.is_running());
    // An emptied prefix list never falls back to lo's addresses (issue 24): refused, and the
    // running prefixes stay announced.
    std::fs::write(&config, "up-metric = 10\n").unwrap();
    probe.signal(Signal::SIGHUP);
    probe.wait_log("refusing to switch to the addresses of lo", WAIT);
    probe.quiet_for(Duration::from_millis(300));
    assert!(probe.is_running());
}

#[test]
fn refresh_interval_reasserts_the_state() {
    let probe = start(&args(
        &["--prefix", "192.0.2.23/32", "--refresh-interval", "0.3"],
        &["true"],
    ));
    let first = probe.line(NEXT);
    probe.write(ACK);
    assert_eq!(probe.line(NEXT), first);
    probe.write(ACK);
}

#[test]
fn hooks_run_with_state_in_the_environment() {
    let dir = temp_dir();
    let log = dir.path().join("hooks");
    let up = format!("echo up-$STATE >> {}", log.display());
    let any = format!("echo any-$STATE >> {}", log.display());
    let probe = start(&args(
        &[
            "--prefix",
            "192.0.2.24/32",
            "--up-execute",
            &up,
            "--execute",
            &any,
        ],
        &["true"],
    ));
    probe.line(NEXT);
    probe.write(ACK);
    let text = wait_for("hooks to run", Duration::from_secs(5), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("up-UP").then_some(text)
    });
    assert!(
        text.contains("any-RISING") && text.contains("any-UP"),
        "{text}"
    );
}

#[test]
fn dry_run_prints_without_waiting_for_acks() {
    let probe = start(&args(
        &[
            "--prefix",
            "192.0.2.31/32",
            "--prefix",
            "192.0.2.32/32",
            "--dry-run",
        ],
        &["true"],
    ));
    assert!(probe.line(NEXT).starts_with("announce route 192.0.2.31/32"));
    assert!(probe.line(NEXT).starts_with("announce route 192.0.2.32/32"));
}

#[test]
fn broken_stdout_ends_the_probe_quietly() {
    let mut command = Command::new(BINARY);
    command
        .args(args(
            &["--prefix", "192.0.2.33/32", "--rise", "1"],
            &["true"],
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = ChildGuard::spawn(&mut command);
    drop(child.child().stdout.take());
    let status = child
        .wait_timeout(Duration::from_secs(5))
        .expect("exits on EPIPE");
    assert!(status.success(), "{status:?}");
}

fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(BINARY)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn once_mode_uses_nagios_codes() {
    let (code, out, _) = run(&["--once", "--", "true"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("EXAPROBE-EXEC OK - true: healthy in"),
        "{out}"
    );
    let (code, out, _) = run(&["--once", "--shell", "echo broken disk; exit 4"]);
    assert_eq!(code, 2);
    assert!(
        out.contains("CRITICAL") && out.contains("exit 4: broken disk"),
        "{out}"
    );
    let (code, out, _) = run(&["--once", "--degraded-exit-code", "4", "--shell", "exit 4"]);
    assert_eq!(code, 1);
    assert!(out.contains("WARNING"), "{out}");
    let (code, out, _) = run(&["--once", "--timeout", "0.2", "--", "sleep", "10"]);
    assert_eq!(code, 2);
    assert!(out.contains("timed out after 200 ms"), "{out}");
    let (code, out, _) = run(&["--once", "--", "/nonexistent/program"]);
    assert_eq!(code, 2);
    assert!(out.contains("cannot run /nonexistent/program"), "{out}");
}

#[test]
fn sigterm_while_waiting_for_an_ack_still_withdraws_in_time() {
    let mut probe = start(&args(
        &["--prefix", "192.0.2.40/32", "--ack-timeout", "30"],
        &["true"],
    ));
    assert!(probe.line(NEXT).starts_with("announce route 192.0.2.40/32"));
    // No ACK: the probe is waiting (up to 30 s) when SIGTERM arrives.
    let started = Instant::now();
    probe.signal(Signal::SIGTERM);
    assert_eq!(
        probe.line(NEXT),
        "withdraw route 192.0.2.40/32 next-hop self"
    );
    let status = probe.exits_within(Duration::from_millis(1500));
    assert!(status.success());
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[test]
fn json_logs_carry_the_name_on_every_line() {
    let probe = start(&args(
        &[
            "--prefix",
            "192.0.2.41/32",
            "--log-format",
            "json",
            "--name",
            "web",
        ],
        &["true"],
    ));
    probe.line(NEXT);
    probe.write(ACK);
    probe.wait_log("sending routes", WAIT);
    let log = probe.log();
    for line in log.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(value["span"]["probe"], "web", "{line}");
    }
}

#[test]
fn sigusr1_dumps_state_and_sigusr2_checks_now_and_disable_note_is_logged() {
    let dir = temp_dir();
    let (file, path) = flag_file(dir.path());
    let disable = dir.path().join("maintenance");
    std::fs::write(&file, "").unwrap();
    let probe = start(&args(
        &[
            "--prefix",
            "192.0.2.42/32",
            "--interval",
            "60",
            "--rise",
            "1",
            "--fall",
            "1",
            "--disable",
            disable.to_str().unwrap(),
        ],
        &["test", "-f", &path],
    ));
    assert!(probe.line(NEXT).contains("med 100"));
    probe.write(ACK);
    // The dump reports what ExaBGP accepted: ask until the ACK has been read.
    wait_for(
        "a state dump with the route announced",
        Duration::from_secs(5),
        || {
            let dumps = probe.log().matches("SIGUSR1: state dump").count();
            probe.signal(Signal::SIGUSR1);
            wait_for("the dump", Duration::from_secs(5), || {
                (probe.log().matches("SIGUSR1: state dump").count() > dumps).then_some(())
            });
            let log = probe.log();
            let last = log
                .lines()
                .rfind(|l| l.contains("state dump"))
                .unwrap_or("");
            (last.contains("announced=192.0.2.42/32") && last.contains("out_of_sync=0"))
                .then_some(())
        },
    );
    // The next check is a minute away; SIGUSR2 runs it now.
    std::fs::remove_file(&file).unwrap();
    probe.signal(Signal::SIGUSR2);
    assert!(probe.line(Duration::from_secs(3)).contains("med 1000"));
    probe.write(ACK);
    std::fs::write(&disable, "kernel upgrade, ticket OPS-42\nmore text\n").unwrap();
    probe.signal(Signal::SIGUSR2);
    assert!(probe.line(Duration::from_secs(3)).contains("med 500"));
    probe.wait_log("kernel upgrade, ticket OPS-42", WAIT);
}

/// A `--no-routes` probe (it only publishes its state for others to `--require`) may run outside
/// ExaBGP, with stdin /dev/null: that end is not ExaBGP's, so it keeps checking until a signal.
#[test]
fn a_no_routes_probe_outside_exabgp_outlives_its_stdin() {
    let dir = temp_dir();
    let state = dir.path().join("uplink.json");
    let state_arg = state.to_str().unwrap().to_string();
    let all = args(&["--no-routes", "--state-file", &state_arg], &["true"]);
    let mut command = Command::new(BINARY);
    command
        .args(&all)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = ChildGuard::spawn(&mut command);
    // UP takes --rise checks: the probe outlived its stdin's end by then.
    wait_for("the state file to say UP", Duration::from_secs(5), || {
        let text = std::fs::read_to_string(&state).ok()?;
        text.contains("\"state\": \"UP\"").then_some(())
    });
    assert!(child.child().try_wait().unwrap().is_none(), "exited");
    child.signal(Signal::SIGTERM);
    let status = wait_for("the exit", Duration::from_secs(2), || {
        child.child().try_wait().unwrap()
    });
    assert!(status.success(), "{status:?}");
}
