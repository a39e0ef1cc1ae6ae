//! The autopilot (core/src/engine/runner/checker/autopilot.rs) in the real binary: steady
//! checks run on a thread of their own, and everything that must reach the checker still does.
//! This test plays ExaBGP (it answers `done` to every command).
//!
//! Each test first waits until the probe has its `autopilot` thread, so what follows happens
//! while it flies.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use exaprobe_testkit::spawned::Spawned;
use exaprobe_testkit::{temp_dir, wait_for};
use nix::sys::signal::Signal;

const BINARY: &str = env!("CARGO_BIN_EXE_exaprobe-exec");
const NEXT: Duration = Duration::from_secs(5);
const WAIT: Duration = Duration::from_secs(10);

/// The probe, answered as ExaBGP 4/5 would, checking `script` through `sh -c`.
fn start(script: &str, extra: &[&str]) -> Spawned {
    let mut command = Command::new(BINARY);
    command.args([
        "--prefix",
        "192.0.2.30/32",
        "--exabgp-api",
        "4",
        "--rise",
        "2",
        "--fall",
        "2",
        "--interval",
        "0.05",
        "--fast-interval",
        "0.05",
    ]);
    command.args(extra).args(["--shell", script]);
    Spawned::answering(&mut command, "done\n")
}

/// Whether process `pid` has a thread named `autopilot`.
fn flying(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("comm"))
            .is_ok_and(|comm| comm.trim() == "autopilot")
    })
}

fn wait_flying(probe: &Spawned) {
    wait_for("the autopilot to take off", WAIT, || {
        flying(probe.pid()).then_some(())
    });
}

/// Whether `pid` is running (not gone, not a zombie).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
    })
}

fn count(file: &Path) -> usize {
    std::fs::metadata(file).map_or(0, |meta| meta.len() as usize)
}

#[test]
fn a_failure_seen_by_the_autopilot_reaches_the_routes_and_it_flies_again() {
    let dir = temp_dir();
    let flag = dir.path().join("healthy");
    std::fs::write(&flag, "").unwrap();
    let probe = start(&format!("test -f {}", flag.display()), &[]);
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.30/32 next-hop self med 100"
    );
    wait_flying(&probe);
    std::fs::remove_file(&flag).unwrap();
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.30/32 next-hop self med 1000"
    );
    // Steady DOWN: it flies again, and a recovery lands it.
    wait_flying(&probe);
    std::fs::write(&flag, "").unwrap();
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.30/32 next-hop self med 100"
    );
    assert!(probe.log().contains("check failed"), "{}", probe.log());
}

#[test]
fn sigusr2_checks_at_once_while_the_autopilot_flies() {
    let dir = temp_dir();
    let counter = dir.path().join("checks");
    // One check every minute: only SIGUSR2 makes the next ones.
    let probe = start(
        &format!("printf x >> {}", counter.display()),
        &["--rise", "1", "--interval", "60"],
    );
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.30/32 next-hop self med 100"
    );
    probe.signal(Signal::SIGUSR2);
    wait_for("the second check", WAIT, || {
        (count(&counter) >= 2).then_some(())
    });
    // Two equal outcomes in a row: it flies.
    wait_flying(&probe);
    let before = count(&counter);
    probe.signal(Signal::SIGUSR2);
    wait_for("the check SIGUSR2 asks for", WAIT, || {
        (count(&counter) > before).then_some(())
    });
    probe.quiet_for(Duration::from_millis(200));
}

#[test]
fn sigterm_kills_a_check_hanging_on_the_autopilot_and_withdraws() {
    let dir = temp_dir();
    let hang = dir.path().join("hang");
    let pidfile = dir.path().join("pid");
    let script = format!(
        "if [ -f {} ]; then echo $$ > {}; exec sleep 60; fi",
        hang.display(),
        pidfile.display()
    );
    let mut probe = start(&script, &["--timeout", "30"]);
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.30/32 next-hop self med 100"
    );
    wait_flying(&probe);
    std::fs::write(&hang, "").unwrap();
    let sleeper: i32 = wait_for("the check to hang", WAIT, || {
        std::fs::read_to_string(&pidfile).ok()?.trim().parse().ok()
    });
    assert!(alive(sleeper));
    probe.signal(Signal::SIGTERM);
    assert_eq!(
        probe.line(NEXT),
        "withdraw route 192.0.2.30/32 next-hop self"
    );
    assert!(probe.exits_within(WAIT).success());
    wait_for("the hanging check to be killed", WAIT, || {
        (!alive(sleeper)).then_some(())
    });
}

#[test]
fn a_check_timing_out_on_the_autopilot_is_killed_and_fails() {
    let dir = temp_dir();
    let hang = dir.path().join("hang");
    let pidfile = dir.path().join("pids");
    let script = format!(
        "if [ -f {} ]; then echo $$ >> {}; exec sleep 60; fi",
        hang.display(),
        pidfile.display()
    );
    let probe = start(&script, &["--timeout", "0.2"]);
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.30/32 next-hop self med 100"
    );
    wait_flying(&probe);
    std::fs::write(&hang, "").unwrap();
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.30/32 next-hop self med 1000"
    );
    probe.wait_log("timed out after 200 ms", WAIT);
    let sleepers: Vec<i32> = std::fs::read_to_string(&pidfile)
        .unwrap()
        .split_whitespace()
        .map(|pid| pid.parse().unwrap())
        .collect();
    assert!(!sleepers.is_empty());
    // Each timed-out check's program was killed when its check ended (one may be running now).
    let running = sleepers.iter().filter(|&&pid| alive(pid)).count();
    assert!(running <= 1, "{running} of {sleepers:?} still run");
}

#[test]
fn no_check_runs_after_sigterm_while_the_routes_drain() {
    let dir = temp_dir();
    let counter = dir.path().join("checks");
    // A drain on exit keeps the probe 0.8 s after SIGTERM: at 50 ms, sixteen checks' time.
    let mut probe = start(
        &format!("printf x >> {}", counter.display()),
        &["--drain", "1"],
    );
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.30/32 next-hop self med 100"
    );
    wait_flying(&probe);
    let before = count(&counter);
    probe.signal(Signal::SIGTERM);
    let drain = probe.line(NEXT);
    assert!(drain.contains("65535:0"), "the drain first: {drain}");
    assert_eq!(
        probe.line(NEXT),
        "withdraw route 192.0.2.30/32 next-hop self"
    );
    assert!(probe.exits_within(WAIT).success());
    // At most the check under way when the signal came.
    let after = count(&counter);
    assert!(
        after <= before + 1,
        "{} checks after SIGTERM",
        after - before
    );
}
