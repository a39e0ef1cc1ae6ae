//! Table-driven bad configurations: every fixture in `tests/fixtures/bad-config/cases.toml` runs a
//! probe binary with a bad command line, environment or config file and checks its exact stderr
//! (one line) and exit code (64 for the command line, 78 for the environment and the file).
//!
//! Each case runs with `--check-config` and stdin closed, so a case that is wrongly accepted ends
//! at once (exit 0) instead of running. The binaries are this workspace's: release ones when they
//! are the newest build, else debug ones (`cargo build --bins`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

/// The options every case gets unless it omits them, per binary: enough for a valid
/// `--check-config`, so the case's own mistake is the only one.
fn base(binary: &str) -> Vec<(&'static str, Option<&'static str>)> {
    let mut args = vec![("--prefix", Some("192.0.2.1")), ("--check-config", None)];
    match binary {
        "exaprobe-http" => args.push(("--url", Some("http://127.0.0.1:9/health"))),
        "exaprobe-tcp" | "exaprobe-grpc" => args.push(("--address", Some("127.0.0.1:9"))),
        "exaprobe-dns" => args.push(("--query", Some("example.com"))),
        "exaprobe-icmp" => args.push(("--target", Some("127.0.0.1"))),
        "exaprobe-ntp" => args.push(("--server", Some("127.0.0.1:9"))),
        _ => {}
    }
    args
}

/// One fixture.
#[derive(Debug)]
struct Fixture {
    name: String,
    binary: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    config: Option<String>,
    omit: Vec<String>,
    code: i32,
    stderr: String,
}

fn fixtures_dir() -> PathBuf {
    exaprobe_e2e::workspace_root().join("tests/fixtures/bad-config")
}

fn load_fixtures() -> Vec<Fixture> {
    let text = std::fs::read_to_string(fixtures_dir().join("cases.toml")).unwrap();
    let table: toml::Table = text.parse().unwrap();
    let strings = |value: Option<&toml::Value>| -> Vec<String> {
        value
            .and_then(toml::Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|v| v.as_str().expect("string").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    table["case"]
        .as_array()
        .expect("[[case]] entries")
        .iter()
        .map(|case| {
            let get = |key: &str| {
                case.get(key)
                    .and_then(toml::Value::as_str)
                    .map(String::from)
            };
            Fixture {
                name: get("name").expect("name"),
                binary: format!("exaprobe-{}", get("binary").expect("binary")),
                args: strings(case.get("args")),
                env: case
                    .get("env")
                    .and_then(toml::Value::as_table)
                    .map(|env| {
                        env.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_string()))
                            .collect()
                    })
                    .unwrap_or_default(),
                config: get("config"),
                omit: strings(case.get("omit")),
                code: i32::try_from(case["code"].as_integer().expect("code")).unwrap(),
                stderr: get("stderr").expect("stderr"),
            }
        })
        .collect()
}

/// The newest build of `name` in this target dir (release or debug).
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap();
    ["release", "debug"]
        .iter()
        .map(|profile| target.join(profile).join(name))
        .filter_map(|path| {
            let modified = path.metadata().and_then(|m| m.modified()).ok()?;
            Some((modified, path))
        })
        .max_by_key(|(modified, _): &(SystemTime, PathBuf)| *modified)
        .map(|(_, path)| path)
        .unwrap_or_else(|| panic!("no {name} in {}: run cargo build --bins", target.display()))
}

/// Special files the fixtures point at: `{tmp}/dir`, `{tmp}/fifo`, `{tmp}/big.toml` (2 MiB),
/// `{tmp}/big-secret` (70 kB), `{tmp}/secret` (a good one).
fn special_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("dir")).unwrap();
    nix::unistd::mkfifo(
        &dir.path().join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    std::fs::write(dir.path().join("big.toml"), "#".repeat(2 << 20)).unwrap();
    std::fs::write(dir.path().join("big-secret"), "x".repeat(70_000)).unwrap();
    dir
}

fn run(fixture: &Fixture, tmp: &Path) -> (Option<i32>, String) {
    let fill = |text: &str| {
        text.replace("{tmp}", &tmp.display().to_string())
            .replace("{fixtures}", &fixtures_dir().display().to_string())
    };
    let mut command = Command::new(binary(&fixture.binary));
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in &fixture.env {
        command.env(key, fill(value));
    }
    for (option, value) in base(&fixture.binary) {
        if fixture.omit.iter().any(|o| o == option) {
            continue;
        }
        command.arg(option);
        command.args(value);
    }
    if let Some(config) = &fixture.config {
        command.arg("--config").arg(fill(config));
    }
    command.args(fixture.args.iter().map(|a| fill(a)));
    if fixture.binary == "exaprobe-exec" && !fixture.args.iter().any(|a| a == "--") {
        command.args(["--", "true"]);
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), fill_back(&stderr, tmp))
}

/// Stderr with the temp dir and fixtures dir put back as placeholders.
fn fill_back(stderr: &str, tmp: &Path) -> String {
    stderr
        .replace(&tmp.display().to_string(), "{tmp}")
        .replace(&fixtures_dir().display().to_string(), "{fixtures}")
}

#[test]
fn every_bad_configuration_gets_its_one_line_and_exit_code() {
    let fixtures = load_fixtures();
    assert!(fixtures.len() > 100, "only {} fixtures", fixtures.len());
    let tmp = special_files();
    let mut failures = Vec::new();
    for fixture in &fixtures {
        let (code, stderr) = run(fixture, tmp.path());
        let expected = format!("{}\n", fixture.stderr);
        // Whatever the expectation says, stderr is one line with no control or bidi character.
        let line = stderr.strip_suffix('\n').unwrap_or(&stderr);
        let unsafe_char = line.chars().any(|c| {
            c.is_control()
                || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        });
        if code != Some(fixture.code) || stderr != expected || unsafe_char {
            failures.push(format!(
                "{} ({}):\n  expected {} {:?}\n  got      {code:?} {stderr:?}",
                fixture.name, fixture.binary, fixture.code, fixture.stderr
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n")
    );
}

/// A config file broken while the probe runs: the SIGHUP reload failure is one log line, with the
/// file's escape sequence escaped and no TOML caret display, and the probe keeps running.
#[test]
fn reload_errors_are_one_line() {
    use exaprobe_testkit::spawned::Spawned;
    use nix::sys::signal::Signal;

    const WAIT: std::time::Duration = std::time::Duration::from_secs(10);
    /// The `n`th (from 0) reload failure the probe logged.
    fn reload_failure(probe: &Spawned, n: usize) -> String {
        exaprobe_testkit::wait_for(&format!("reload failure {n}"), WAIT, || {
            probe
                .log()
                .lines()
                .filter(|line| line.contains("reload failed"))
                .nth(n)
                .map(str::to_string)
        })
    }

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("probe.toml");
    std::fs::write(&config, "prefix = '192.0.2.1'\nrise = 1\n").unwrap();
    let mut command = Command::new(binary("exaprobe-exec"));
    command
        .args(["--dry-run", "--interval", "30", "--config"])
        .arg(&config)
        .args(["--", "true"]);
    let mut probe = Spawned::start(&mut command);
    let line = probe.line(WAIT);
    assert!(line.starts_with("announce route 192.0.2.1/32"), "{line}");
    std::fs::write(
        &config,
        "prefix = '192.0.2.1'\nname = \"x\\e[31mRED\"\nrise = \n",
    )
    .unwrap();
    probe.signal(Signal::SIGHUP);
    let failure = reload_failure(&probe, 0);
    let expected = format!(
        "config file {} line 3: not valid TOML: string values must be quoted, expected literal string",
        config.display()
    );
    assert!(failure.contains(&expected), "{failure}");
    std::fs::write(&config, "prefix = '192.0.2.1'\nname = \"x\\e[31mRED\"\n").unwrap();
    probe.signal(Signal::SIGHUP);
    let failure = reload_failure(&probe, 1);
    assert!(
        failure.contains("name in ")
            && failure.contains(r"line 2: 'x\u{1b}[31mRED' has control characters"),
        "{failure}"
    );
    assert!(!failure.contains('\u{1b}'), "{failure:?}");
    assert!(probe.is_running(), "the probe keeps running");
    let log = probe.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| !line.contains("reload failed"))
        .collect();
    // Every line logged in between is an event line, not the rest of a multi-line message.
    for line in &lines {
        assert!(line.starts_with(|c: char| c.is_ascii_digit()), "{lines:?}");
    }
}
