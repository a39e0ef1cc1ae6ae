//! Delivery under a slow or silent ExaBGP, end to end through the release exaprobe-exec: the
//! test plays ExaBGP with `testkit::exabgp::SlowExabgp` and stalls its pipes. The same rules are
//! proved in-process with paused time in core/src/engine/runner/tests.rs; here they meet a real
//! process, real pipes and real signals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use exaprobe_e2e::release_binary;
use exaprobe_testkit::exabgp::{Received, SlowExabgp};
use exaprobe_testkit::temp_dir;
use nix::sys::signal::Signal;

/// `--prefix 192.0.2.N/32` for N in 0..count.
fn prefixes(count: usize) -> Vec<String> {
    (0..count)
        .flat_map(|i| ["--prefix".to_string(), format!("192.0.2.{i}/32")])
        .collect()
}

/// Start exaprobe-exec checking that `flag` exists, with `extra` options.
fn start(flag: &Path, count: usize, extra: &[&str]) -> SlowExabgp {
    let mut args: Vec<String> = prefixes(count);
    args.extend(
        [
            "--interval",
            "0.05",
            "--fast-interval",
            "0.05",
            "--rise",
            "1",
            "--fall",
            "1",
            "--exabgp-api",
            "4",
        ]
        .chunks(2)
        .filter(|pair| !extra.contains(&pair[0]))
        .flatten()
        .map(|s| s.to_string()),
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend([
        "--".into(),
        "test".into(),
        "-f".into(),
        flag.display().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    SlowExabgp::start(&release_binary("exaprobe-exec"), &args)
}

/// A thread that creates and removes `flag` every `every` until stopped: the service flaps.
struct Flapper {
    running: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flapper {
    fn start(flag: PathBuf, every: Duration) -> Flapper {
        let running = Arc::new(AtomicBool::new(true));
        let thread = {
            let running = Arc::clone(&running);
            std::thread::spawn(move || {
                while running.load(Ordering::Relaxed) {
                    if flag.exists() {
                        let _ = std::fs::remove_file(&flag);
                    } else {
                        let _ = std::fs::write(&flag, "");
                    }
                    std::thread::sleep(every);
                }
            })
        };
        Flapper {
            running,
            thread: Some(thread),
        }
    }

    fn stop(mut self) {
        self.running.store(false, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the flapper thread");
        }
    }
}

/// The last verb written per prefix.
fn last_per_prefix(commands: &[Received]) -> BTreeMap<String, String> {
    commands
        .iter()
        .map(|command| {
            let words: Vec<&str> = command.line.split_whitespace().collect();
            assert_eq!(words.get(1), Some(&"route"), "{}", command.line);
            (words[2].to_string(), words[0].to_string())
        })
        .collect()
}

#[test]
fn after_a_stall_exabgp_is_told_the_current_state() {
    let dir = temp_dir();
    let flag = dir.path().join("healthy");
    let exabgp = start(&flag, 20, &["--withdraw-on-down"]);
    exabgp.stall();
    let flapper = Flapper::start(flag.clone(), Duration::from_millis(50));
    std::thread::sleep(Duration::from_secs(3));
    flapper.stop();
    let _ = std::fs::remove_file(&flag);
    let resumed = Instant::now();
    exabgp.resume();
    let commands = exabgp.commands_until_quiet(Duration::from_secs(2));
    let last = last_per_prefix(&commands);
    assert_eq!(last.len(), 20, "{last:?}");
    assert!(
        last.values().all(|verb| verb == "withdraw"),
        "the service is down; ExaBGP was last told {last:?}\n{}",
        exabgp.log()
    );
    let converged = commands.last().map(|c| c.at - resumed).unwrap_or_default();
    eprintln!(
        "measured: {} commands read after the stall, converged {converged:?} after the pipe drained",
        commands.len()
    );
}

#[test]
fn sigterm_during_a_blocked_write_exits_in_time_without_a_partial_line() {
    let dir = temp_dir();
    let flag = dir.path().join("healthy");
    let mut exabgp = start(&flag, 50, &["--withdraw-on-down"]);
    exabgp.stall();
    let flapper = Flapper::start(flag.clone(), Duration::from_millis(50));
    std::thread::sleep(Duration::from_secs(2));
    flapper.stop();
    let asked = Instant::now();
    exabgp.child.signal(Signal::SIGTERM);
    let status = exabgp
        .child
        .wait_timeout(Duration::from_millis(1500))
        .unwrap_or_else(|| panic!("still running 1.5 s after SIGTERM:\n{}", exabgp.log()));
    let took = asked.elapsed();
    assert!(status.success(), "{status:?}");
    exabgp.resume();
    let rest = exabgp.commands_until_quiet(Duration::from_millis(500));
    assert!(!rest.is_empty(), "the pipe should have held commands");
    assert!(
        exabgp.partial_line().is_empty(),
        "a partial line was left: {:?}",
        String::from_utf8_lossy(&exabgp.partial_line())
    );
    for command in &rest {
        assert!(
            command.line.starts_with("announce route 192.0.2.")
                || command.line.starts_with("withdraw route 192.0.2."),
            "{:?}",
            command.line
        );
    }
    eprintln!("measured: exit {took:?} after SIGTERM with the command pipe full");
}

#[test]
fn checks_go_on_while_exabgp_sends_no_ack() {
    let dir = temp_dir();
    let flag = dir.path().join("healthy");
    let stamps = dir.path().join("checks");
    let check = format!(
        "date +%s%N >> {}; test -f {}",
        stamps.display(),
        flag.display()
    );
    let mut args = prefixes(2);
    args.extend(
        [
            "--interval",
            "0.2",
            "--fast-interval",
            "0.2",
            "--rise",
            "1",
            "--fall",
            "1",
            "--ack-timeout",
            "10",
            "--exabgp-api",
            "4",
            "--shell",
        ]
        .map(String::from),
    );
    args.push(check);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let exabgp = SlowExabgp::start(&release_binary("exaprobe-exec"), &args);
    exabgp.auto_ack(false);
    // Five state changes, none acknowledged: each must still reach the pipe at once.
    for round in 0..5 {
        if round % 2 == 0 {
            std::fs::write(&flag, "").unwrap();
        } else {
            std::fs::remove_file(&flag).unwrap();
        }
        let first = exabgp
            .command(Duration::from_secs(3))
            .unwrap_or_else(|| panic!("no command after change {round}:\n{}", exabgp.log()));
        let expected = if round % 2 == 0 {
            "med 100"
        } else {
            "med 1000"
        };
        assert!(first.line.contains(expected), "{}", first.line);
        exabgp.commands_until_quiet(Duration::from_millis(600));
    }
    let stamps: Vec<u128> = std::fs::read_to_string(&stamps)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let longest = stamps.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        longest < 1_000_000_000,
        "a gap of {} ms between checks while ACKs were missing",
        longest / 1_000_000
    );
}

#[test]
fn route_changes_stay_on_time_when_stderr_is_not_drained() {
    let dir = temp_dir();
    let flag = dir.path().join("healthy");
    std::fs::write(&flag, "").unwrap();
    let exabgp = start(
        &flag,
        1,
        &["-v", "--interval", "0.01", "--fast-interval", "0.01"],
    );
    assert!(
        exabgp
            .command(Duration::from_secs(3))
            .unwrap()
            .line
            .contains("med 100")
    );
    // ExaBGP stops draining stderr while the service flaps every 10 ms: each flap logs a few
    // lines, so the 4 KiB pipe and the probe's 1024-line queue overflow within seconds.
    exabgp.read_stderr(false);
    let flapper = Flapper::start(flag.clone(), Duration::from_millis(10));
    std::thread::sleep(Duration::from_secs(6));
    flapper.stop();
    std::fs::write(&flag, "").unwrap();
    exabgp.commands_until_quiet(Duration::from_millis(500));
    for (change, expected) in [(false, "med 1000"), (true, "med 100")] {
        if change {
            std::fs::write(&flag, "").unwrap();
        } else {
            std::fs::remove_file(&flag).unwrap();
        }
        let changed = Instant::now();
        let command = exabgp
            .command(Duration::from_secs(2))
            .expect("the route change arrives while stderr is stalled");
        assert!(command.line.contains(expected), "{}", command.line);
        eprintln!(
            "measured: route change {:?} after the check file changed, stderr stalled",
            command.at - changed
        );
    }
    exabgp.read_stderr(true);
    wait_for_log(&exabgp, "log lines while stderr was not drained");
}

fn wait_for_log(exabgp: &SlowExabgp, needle: &str) {
    exaprobe_testkit::wait_for(
        &format!("{needle:?} in the log"),
        Duration::from_secs(10),
        || exabgp.log().contains(needle).then_some(()),
    );
}
