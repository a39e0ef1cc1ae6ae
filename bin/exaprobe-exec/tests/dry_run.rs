//! `--dry-run` with stdout on a regular file and on a terminal (a pseudo-terminal here), the
//! two places a person points it at: under churn (hundreds of prefixes, the state flipping at
//! every check, so the deliverer often abandons a write for a newer state), every command is
//! written exactly once and whole.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exaprobe_testkit::{ChildGuard, temp_dir, wait_for};
use nix::sys::signal::Signal;

const BINARY: &str = env!("CARGO_BIN_EXE_exaprobe-exec");
/// Enough prefixes that one state change takes several chunks to write.
const PREFIXES: usize = 200;
/// State changes to see before stopping the probe.
const CHANGES: usize = 60;

/// A dry-run probe writing to `stdout` whose service flips between healthy and failing at
/// every check (a file created by one check and removed by the next).
fn churning_probe(stdout: Stdio, dir: &Path) -> ChildGuard {
    let flip = dir.join("flip");
    let script = format!(
        "if [ -e '{0}' ]; then rm '{0}'; exit 1; fi; : > '{0}'",
        flip.display()
    );
    let mut command = Command::new(BINARY);
    for i in 0..PREFIXES {
        command.args(["--prefix", &format!("192.0.2.{i}/32")]);
    }
    command
        .args([
            "--dry-run",
            "--exabgp-api",
            "4",
            "--interval",
            "0.01",
            "--fast-interval",
            "0.01",
            "--rise",
            "1",
            "--fall",
            "1",
            "--shell",
            &script,
        ])
        // Held open: end of input would end the probe.
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap());
    ChildGuard::spawn(&mut command)
}

/// Commands written twice in a row for the same prefix (the deliverer writes a prefix's
/// command only when it differs from the last one written, so each is a repeated write), and
/// the number of changes seen. Panics on a line that is not a whole command.
fn repeats(output: &str) -> (Vec<String>, usize) {
    let mut last: HashMap<&str, &str> = HashMap::new();
    let mut repeated = Vec::new();
    let mut changes = 0;
    for line in output.lines().map(|line| line.trim_end_matches('\r')) {
        let mut words = line.split(' ');
        let (verb, route, prefix) = (words.next(), words.next(), words.next());
        assert!(
            matches!(verb, Some("announce" | "withdraw")) && route == Some("route"),
            "not a whole command: {line:?}"
        );
        let prefix = prefix.expect("a prefix");
        match last.insert(prefix, line) {
            Some(previous) if previous == line => repeated.push(line.to_string()),
            Some(_) => changes += 1,
            None => {}
        }
    }
    (repeated, changes)
}

/// Run the churning probe until `output` shows [`CHANGES`] changes per prefix, stop it with
/// SIGTERM, and check that no command was written twice.
fn each_command_once(stdout: Stdio, output: impl Fn() -> String) {
    let dir = temp_dir();
    let mut probe = churning_probe(stdout, dir.path());
    let stderr = || std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
    wait_for("the state to change often", Duration::from_secs(60), || {
        let text = output();
        let complete = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
        (repeats(complete).1 >= CHANGES * PREFIXES).then_some(())
    });
    probe.signal(Signal::SIGTERM);
    let status = probe
        .wait_timeout(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running after SIGTERM:\n{}", stderr()));
    assert!(status.success(), "{status:?}:\n{}", stderr());
    let text = wait_for("the last output", Duration::from_secs(5), || {
        let text = output();
        text.ends_with('\n').then_some(text)
    });
    let (repeated, changes) = repeats(&text);
    assert!(
        repeated.is_empty(),
        "{} of {} commands written twice, e.g. {:?}",
        repeated.len(),
        changes,
        &repeated[..repeated.len().min(3)]
    );
}

#[test]
fn dry_run_to_a_file_writes_each_command_once() {
    let dir = temp_dir();
    let path = dir.path().join("commands");
    let file = std::fs::File::create(&path).unwrap();
    each_command_once(file.into(), || {
        std::fs::read_to_string(&path).unwrap_or_default()
    });
}

#[test]
fn dry_run_to_a_terminal_writes_each_command_once() {
    let pty = nix::pty::openpty(None, None).expect("a pseudo-terminal");
    let seen = Arc::new(Mutex::new(String::new()));
    let reader = seen.clone();
    let mut master = std::fs::File::from(pty.master);
    // Read as a terminal does; ends with EIO once the probe, the slave's last holder, exits.
    std::thread::spawn(move || {
        let mut buffer = [0; 8192];
        while let Ok(read) = master.read(&mut buffer) {
            if read == 0 {
                break;
            }
            reader
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..read]));
        }
    });
    each_command_once(pty.slave.into(), || seen.lock().unwrap().clone());
}
