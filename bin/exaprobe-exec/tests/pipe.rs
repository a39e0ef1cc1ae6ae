//! The real exaprobe-exec binary driven through its pipes, this test playing ExaBGP: it reads
//! the commands on the probe's stdout and answers (or not) on its stdin.

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
    start_with(args, &[])
}

fn start_with(args: &[&str], env: &[(&str, &str)]) -> Spawned {
    Spawned::start(Command::new(BINARY).args(args).envs(env.iter().copied()))
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
fn route_follows_the_service_and_first_decisive_state_is_always_sent() {
    let dir = temp_dir();
    let (file, path) = flag_file(dir.path());
    let probe = start(&args(&["--prefix", "192.0.2.2/32"], &["test", "-f", &path]));
    // Failing from the start: DOWN is announced (corrects a route left by an earlier instance).
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.2/32 next-hop self med 1000"
    );
    probe.write(ACK);
    std::fs::write(&file, "").unwrap();
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.2/32 next-hop self med 100"
    );
    probe.write(ACK);
    std::fs::remove_file(&file).unwrap();
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.2/32 next-hop self med 1000"
    );
    probe.write(ACK);
    probe.wait_log("state change", WAIT);
}

#[test]
fn withdraw_on_down_and_disable_file() {
    let dir = temp_dir();
    let (file, path) = flag_file(dir.path());
    let disable = dir.path().join("maintenance");
    std::fs::write(&file, "").unwrap();
    let probe = start(&args(
        &[
            "--prefix",
            "192.0.2.3/32",
            "--withdraw-on-down",
            "--next-hop",
            "10.0.0.1",
            "--disable",
            disable.to_str().unwrap(),
        ],
        &["test", "-f", &path],
    ));
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.3/32 next-hop 10.0.0.1 med 100"
    );
    probe.write(ACK);
    std::fs::remove_file(&file).unwrap();
    assert_eq!(
        probe.line(NEXT),
        "withdraw route 192.0.2.3/32 next-hop 10.0.0.1"
    );
    probe.write(ACK);
    std::fs::write(&file, "").unwrap();
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.3/32 next-hop 10.0.0.1 med 100"
    );
    probe.write(ACK);
    std::fs::write(&disable, "").unwrap();
    assert_eq!(
        probe.line(NEXT),
        "withdraw route 192.0.2.3/32 next-hop 10.0.0.1"
    );
    probe.write(ACK);
    probe.wait_log("to=DISABLED", WAIT);
}

#[test]
fn disabled_metric_then_back_up() {
    let dir = temp_dir();
    let disable = dir.path().join("maintenance");
    std::fs::write(&disable, "").unwrap();
    let probe = start(&args(
        &[
            "--prefix",
            "192.0.2.4/32",
            "--disable",
            disable.to_str().unwrap(),
            "--disabled-community",
            "65000:666",
            "--community",
            "65000:1",
        ],
        &["true"],
    ));
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.4/32 next-hop self med 500 community [ 65000:666 ]"
    );
    probe.write(ACK);
    std::fs::remove_file(&disable).unwrap();
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.4/32 next-hop self med 100 community [ 65000:1 ]"
    );
    probe.write(ACK);
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
fn missing_ack_times_out_and_never_blocks_the_schedule() {
    let dir = temp_dir();
    let (file, path) = flag_file(dir.path());
    std::fs::write(&file, "").unwrap();
    let probe = start(&args(
        &["--prefix", "192.0.2.6/32", "--ack-timeout", "0.3"],
        &["test", "-f", &path],
    ));
    assert!(probe.line(NEXT).contains("med 100"));
    probe.wait_log("no ACK from ExaBGP in time", WAIT);
    std::fs::remove_file(&file).unwrap();
    assert!(probe.line(NEXT).contains("med 1000"));
    // The late ACK for the first command must not be taken for the second's.
    probe.write("done\n");
    probe.write(ACK);
    std::fs::write(&file, "").unwrap();
    assert!(probe.line(NEXT).contains("med 100"));
}

#[test]
fn no_ack_mode_sends_without_waiting() {
    let dir = temp_dir();
    let (file, path) = flag_file(dir.path());
    std::fs::write(&file, "").unwrap();
    let probe = start(&args(
        &["--prefix", "192.0.2.7/32", "--no-ack"],
        &["test", "-f", &path],
    ));
    assert!(probe.line(NEXT).contains("med 100"));
    std::fs::remove_file(&file).unwrap();
    assert!(probe.line(NEXT).contains("med 1000"));
    assert!(!probe.log().contains("no ACK"), "{}", probe.log());
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
    let probe = start(&args(
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
    wait_for(
        "the timed-out check's background sleep to be killed",
        Duration::from_secs(3),
        || {
            let stat = std::fs::read_to_string(format!("/proc/{first}/stat")).unwrap_or_default();
            (stat.is_empty() || stat.contains(") Z ")).then_some(())
        },
    );
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
fn environment_and_file_layering() {
    let dir = temp_dir();
    let config = dir.path().join("probe.toml");
    std::fs::write(
        &config,
        "prefix = '192.0.2.30/32'\nup-metric = 7\ndown-metric = 8\n",
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();
    let probe = start_with(
        &args(&["--config", config_arg, "--up-metric", "9"], &["true"]),
        &[
            ("EXAPROBE_UP_METRIC", "50"),
            ("EXAPROBE_LOCAL_PREFERENCE", "300"),
        ],
    );
    // command line (9) > env (50) > file (7); env (300) > default.
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.30/32 next-hop self med 9 local-preference 300"
    );
    probe.write(ACK);
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
fn bad_input_gets_clear_messages_and_distinct_exit_codes() {
    let (code, _, err) = run(&["--prefix", "192.0.2.1/32", "--rise", "lots", "--", "true"]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("--rise") && err.contains("lots"), "{err}");
    let (code, _, err) = run(&["--prefix", "192.0.2.7/24", "--", "true"]);
    assert_eq!(code, 64);
    assert!(err.contains("192.0.2.0/24"), "{err}");
    let (code, _, err) = run(&[
        "--prefix",
        "192.0.2.1/32\nannounce route 0.0.0.0/0",
        "--",
        "true",
    ]);
    assert_eq!(code, 64, "{err}");
    let (code, _, err) = run(&["--", "true"]);
    assert_eq!(code, 78);
    assert!(err.contains("no prefix"), "{err}");
    let (code, _, err) = run(&[
        "--prefix",
        "2001:db8::1",
        "--next-hop",
        "10.0.0.1",
        "--",
        "true",
    ]);
    assert_eq!(code, 78);
    assert!(err.contains("--next-hop6"), "{err}");
    let (code, _, err) = run(&[
        "--prefix",
        "192.0.2.1/32",
        "--community",
        "65000:1\nannounce route 0.0.0.0/0",
        "--",
        "true",
    ]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("'announce' is not a community"), "{err}");
    let dir = temp_dir();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "rise = 'often'\n").unwrap();
    let (code, _, err) = run(&[
        "--prefix",
        "192.0.2.1/32",
        "--config",
        config.to_str().unwrap(),
        "--",
        "true",
    ]);
    assert_eq!(code, 78);
    assert!(err.contains("bad.toml") && err.contains("often"), "{err}");
    std::fs::write(&config, "colour = 'blue'\n").unwrap();
    let (code, _, err) = run(&["--config", config.to_str().unwrap(), "--", "true"]);
    assert_eq!(code, 78);
    assert!(err.contains("unknown key 'colour'"), "{err}");
    let (code, _, err) = run(&["--prefix", "192.0.2.1/32"]);
    assert_eq!(code, 64, "{err}");
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("--withdraw-on-down") && out.contains("EXAPROBE_RISE"),
        "{out}"
    );
}

#[test]
fn check_config_prints_every_state() {
    let (code, out, err) = run(&[
        "--check-config",
        "--prefix",
        "192.0.2.1/32",
        "--exabgp-api",
        "6",
        "--neighbor",
        "127.0.0.1",
        "--",
        "true",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("UP       peer 127.0.0.1 announce route 192.0.2.1/32 next-hop self med 100"),
        "{out}"
    );
    assert!(
        out.contains("EXIT     peer 127.0.0.1 withdraw route 192.0.2.1/32 next-hop self"),
        "{out}"
    );
}

/// An option of one value given twice is taken, the last one winning, as `exabgp healthcheck`
/// (argparse) does; list options still add up; in a `-F` file, the command line still wins.
#[test]
fn an_option_given_twice_takes_the_last_value_as_the_healthcheck_does() {
    let (code, out, err) = run(&[
        "--check-config",
        "--debounce",
        "--debounce",
        "--interval",
        "5",
        "--interval",
        "6",
        "--ip",
        "192.0.2.1",
        "--up-metric",
        "10",
        "--up-metric",
        "50",
        "--community",
        "65000:1",
        "--community",
        "65000:2",
        "--ip",
        "192.0.2.2",
        "--cmd",
        "true",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("UP       announce route 192.0.2.1/32 next-hop self med 50 community [ 65000:1 65000:2 ]"),
        "{out}"
    );
    assert!(
        out.contains("announce route 192.0.2.2/32 next-hop self med 51"),
        "{out}"
    );
    assert!(out.contains("interval 6s"), "{out}");

    let dir = temp_dir();
    let file = dir.path().join("healthcheck.conf");
    std::fs::write(
        &file,
        "debounce\ndebounce\nup-metric = 20\nup-metric = 30\ndown-metric = 700\n\
         down-metric = 800\nip = 192.0.2.3\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let (code, out, err) = run(&[
        "--check-config",
        "-F",
        file,
        "--up-metric",
        "60",
        "--ip",
        "192.0.2.1",
        "--cmd",
        "true",
    ]);
    assert_eq!(code, 0, "{err}");
    // The command line's value over the file's; the file's last over its first; lists add up,
    // the file's first (as the healthcheck reads it: its ips [192.0.2.3, 192.0.2.1], up-metric
    // 60, down-metric 800).
    for line in [
        "UP       announce route 192.0.2.3/32 next-hop self med 60",
        "UP       announce route 192.0.2.1/32 next-hop self med 61",
        "DOWN     announce route 192.0.2.3/32 next-hop self med 800",
    ] {
        assert!(out.contains(line), "{line}:\n{out}");
    }
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
