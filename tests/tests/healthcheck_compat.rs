//! exaprobe-exec as a drop-in for `exabgp healthcheck`: the same argument list through both
//! programs, each under a harness playing ExaBGP (`SlowExabgp`: reads the commands, answers
//! `done`), with one check file flipped up, down, up (or the disable file created and removed),
//! and a final SIGTERM. The commands of each phase, distinct and in order of first appearance
//! (the healthcheck re-sends its state every interval, exaprobe only changes), must be equal,
//! after normalising only what ExaBGP treats as equal: `neighbor * announce` is `announce`, and
//! the order of the independent commands of one state change (the healthcheck writes them in
//! the order of its prefix list, exaprobe in prefix order; each carries its own MED, so the
//! order of the list is still compared through the MEDs).
//! exaprobe's `system version` query (its dialect detection) is not a route command.
//!
//! The healthcheck is ExaBGP 5.0's (`exabgp healthcheck` from its virtualenv), and for two
//! argument lists 6.0's (API 6, `peer * ...`; the harness then answers exaprobe's version query
//! as ExaBGP 6 does, so it speaks that dialect too). One pair also runs under a real ExaBGP 5.0
//! peered with GoBGP. Address discovery
//! and IP setup run inside a network namespace each test creates (root only; skipped with the
//! reason printed elsewhere), never on the host's interfaces.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use exaprobe_e2e::{NEXT_HOP, Process, Stack, StackOptions, Version, release_binary};
use exaprobe_testkit::exabgp::SlowExabgp;
use exaprobe_testkit::{temp_dir, under_ci, wait_for};
use nix::sys::signal::Signal;

/// Fast timers, valid for both programs (the healthcheck's `--timeout` is whole seconds).
const TIMERS: &[&str] = &[
    "--interval",
    "0.2",
    "--fast-interval",
    "0.1",
    "--rise",
    "2",
    "--fall",
    "2",
    "--timeout",
    "2",
];

/// How long one phase may take (the healthcheck's Python starts in about a second).
const PHASE: Duration = Duration::from_secs(20);

/// Which program runs the argument list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Program {
    Healthcheck,
    Exaprobe,
    /// ExaBGP 6.0's healthcheck (API 6: `peer * announce ...`).
    Healthcheck6,
    /// exaprobe-exec under a harness answering its version query as ExaBGP 6 does.
    Exaprobe6,
}

impl Program {
    fn exabgp6(self) -> bool {
        matches!(self, Program::Healthcheck6 | Program::Exaprobe6)
    }
}

/// ExaBGP 6.0's answer to `system version` (verbatim, see tests/tests/exabgp_api.rs).
const VERSION6: &str = r#"{"version": "6.0.0-20261125+uncontrolled", "application": "exabgp"}"#;

/// The harness playing ExaBGP: `SlowExabgp` answering `done` itself, or (ExaBGP 6) answering
/// each command here, the version query with [`VERSION6`] first.
struct Harness {
    exabgp: SlowExabgp,
    exabgp6: bool,
}

impl Harness {
    fn start(program: Program, binary: &Path, args: &[&str]) -> Harness {
        Harness {
            exabgp: SlowExabgp::start_with(binary, args, !program.exabgp6()),
            exabgp6: program.exabgp6(),
        }
    }

    /// The next command within `within`, answered.
    fn command(&self, within: Duration) -> Option<exaprobe_testkit::exabgp::Received> {
        let received = self.exabgp.command(within)?;
        if self.exabgp6 {
            if received.line == "system version" {
                self.exabgp.answer(&format!("{VERSION6}\n"));
            }
            self.exabgp.answer("done\n");
        }
        Some(received)
    }
}

impl std::ops::Deref for Harness {
    type Target = SlowExabgp;
    fn deref(&self) -> &SlowExabgp {
        &self.exabgp
    }
}

impl std::ops::DerefMut for Harness {
    fn deref_mut(&mut self) -> &mut SlowExabgp {
        &mut self.exabgp
    }
}

/// What a test does between phases.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// The check passes (the check file exists).
    Up,
    /// The check fails (the check file is removed).
    Down,
    /// The disable file is created.
    Disable,
    /// The disable file is removed.
    Enable,
}

/// One run's files.
struct Files {
    check: PathBuf,
    disable: PathBuf,
}

/// `argv` of `program` running `args`, inside network namespace `netns` if given.
///
/// The healthcheck runs with `PYTHONUNBUFFERED=1`. Without it, a SIGTERM that lands while the
/// healthcheck is inside `sys.stdout.flush()` runs its handler there, whose own flush fails with
/// "reentrant call inside <_io.BufferedWriter name='<stdout>'>": it exits without its withdraw
/// and without removing the addresses its IP setup added. The tests send SIGTERM as soon as the
/// last command arrives, when that flush is often still under way; unbuffered, stdout has no
/// BufferedWriter, and the comparison is with what the healthcheck means to send.
fn command_line(program: Program, args: &[String], netns: Option<&str>) -> (PathBuf, Vec<String>) {
    let healthcheck = |version: Version| {
        let argv = [
            "PYTHONUNBUFFERED=1",
            &version.exabgp().display().to_string(),
            "healthcheck",
        ];
        (PathBuf::from("env"), argv.map(String::from).to_vec())
    };
    let (binary, mut argv) = match program {
        Program::Healthcheck => healthcheck(Version::V5),
        Program::Healthcheck6 => healthcheck(Version::V6),
        Program::Exaprobe | Program::Exaprobe6 => (release_binary("exaprobe-exec"), Vec::new()),
    };
    argv.extend(args.iter().cloned());
    match netns {
        Some(netns) => {
            let mut wrapped = vec!["netns".to_string(), "exec".into(), netns.into()];
            if matches!(program, Program::Exaprobe | Program::Exaprobe6) {
                wrapped.extend(["env".to_string(), claims_env()]);
            }
            wrapped.push(binary.display().to_string());
            wrapped.extend(argv);
            (PathBuf::from("ip"), wrapped)
        }
        None => (binary, argv),
    }
}

/// Where the probes of this test process record the addresses they share (not the host's
/// /run/exaprobe/ip-claims).
fn claims_dir() -> String {
    std::env::temp_dir()
        .join(format!("exaprobe-test-claims-{}", std::process::id()))
        .display()
        .to_string()
}

/// `EXAPROBE_IP_CLAIMS_DIR=...` for `env`.
fn claims_env() -> String {
    format!("EXAPROBE_IP_CLAIMS_DIR={}", claims_dir())
}

/// A route command as ExaBGP reads it: `neighbor * ` is the default selector.
fn normalise(line: &str) -> String {
    line.strip_prefix("neighbor * ").unwrap_or(line).to_string()
}

/// Read commands until `count` distinct ones not in `previous` have come; returns them in order.
fn next_phase(exabgp: &Harness, previous: &[String], count: usize, what: &str) -> Vec<String> {
    let mut phase: Vec<String> = Vec::new();
    while phase.len() < count {
        let Some(received) = exabgp.command(PHASE) else {
            panic!(
                "{what}: no new command within {PHASE:?} (got {phase:?})\nlog:\n{}",
                exabgp.log()
            );
        };
        let line = normalise(&received.line);
        if line.starts_with("system ") || previous.contains(&line) || phase.contains(&line) {
            continue;
        }
        phase.push(line);
    }
    phase.sort();
    phase
}

/// Every distinct command written until the program exits.
fn rest(exabgp: &mut Harness) -> Vec<String> {
    let mut phase: Vec<String> = Vec::new();
    while let Some(received) = exabgp.command(PHASE) {
        let line = normalise(&received.line);
        if !phase.contains(&line) {
            phase.push(line);
        }
    }
    assert!(
        exabgp.child.wait_timeout(Duration::from_secs(5)).is_some(),
        "the program did not exit after SIGTERM"
    );
    phase.sort();
    phase
}

/// Run `args` through `program`: the check passes at start, then each step, each phase's
/// new commands (`per_phase` of them) collected, then SIGTERM. `files` are the check and
/// disable files the arguments name.
fn run(
    program: Program,
    args: &[String],
    steps: &[Step],
    per_phase: usize,
    files: &Files,
    netns: Option<&str>,
    before_sigterm: &dyn Fn(),
) -> Vec<Vec<String>> {
    let _ = std::fs::remove_file(&files.disable);
    std::fs::write(&files.check, "").unwrap();
    let (binary, argv) = command_line(program, args, netns);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut exabgp = Harness::start(program, &binary, &argv);
    let mut phases = vec![next_phase(
        &exabgp,
        &[],
        per_phase,
        &format!("{program:?} start"),
    )];
    for step in steps {
        match step {
            Step::Up => std::fs::write(&files.check, "").unwrap(),
            Step::Down => std::fs::remove_file(&files.check).unwrap(),
            Step::Disable => std::fs::write(&files.disable, "maintenance").unwrap(),
            Step::Enable => std::fs::remove_file(&files.disable).unwrap(),
        }
        let previous = phases.last().unwrap().clone();
        phases.push(next_phase(
            &exabgp,
            &previous,
            per_phase,
            &format!("{program:?} after {step:?}"),
        ));
    }
    before_sigterm();
    exabgp.child.signal(Signal::SIGTERM);
    phases.push(rest(&mut exabgp));
    phases
}

/// The healthcheck, or `None` with the reason printed (a failure under CI).
fn healthcheck_available() -> bool {
    exabgp_available(Version::V5)
}

fn exabgp_available(version: Version) -> bool {
    let exabgp = version.exabgp();
    if exabgp.is_file() {
        return true;
    }
    let message = format!(
        "{} is missing: scripts/install-test-deps installs ExaBGP 5.0 and 6.0",
        exabgp.display()
    );
    assert!(!under_ci(), "{message}");
    eprintln!("SKIPPED: {message}");
    false
}

/// The same arguments through both programs must give the same phases.
fn compare(args: &[String], steps: &[Step], per_phase: usize, files: &Files, netns: Option<&str>) {
    compare_with(args, steps, per_phase, files, netns, &mut |_| {});
}

/// [`compare`], calling `after` after each program's run.
fn compare_with(
    args: &[String],
    steps: &[Step],
    per_phase: usize,
    files: &Files,
    netns: Option<&str>,
    after: &mut dyn FnMut(Program),
) {
    compare_pair(
        (Program::Healthcheck, Program::Exaprobe),
        args,
        steps,
        per_phase,
        files,
        netns,
        after,
    );
}

/// The same arguments through `pair` (the healthcheck, then exaprobe).
fn compare_pair(
    (healthcheck, exaprobe): (Program, Program),
    args: &[String],
    steps: &[Step],
    per_phase: usize,
    files: &Files,
    netns: Option<&str>,
    after: &mut dyn FnMut(Program),
) {
    let theirs = run(healthcheck, args, steps, per_phase, files, netns, &|| {});
    after(healthcheck);
    let ours = run(exaprobe, args, steps, per_phase, files, netns, &|| {});
    after(exaprobe);
    eprintln!("args: {args:?}\nhealthcheck: {theirs:#?}\nexaprobe:    {ours:#?}");
    assert_eq!(
        ours, theirs,
        "exaprobe-exec and exabgp healthcheck differ for {args:?}"
    );
}

/// `args` with `{check}` and `{disable}` replaced, and the timers appended.
fn arguments(args: &[&str], files: &Files) -> Vec<String> {
    args.iter()
        .chain(TIMERS)
        .map(|arg| {
            arg.replace("{check}", &files.check.display().to_string())
                .replace("{disable}", &files.disable.display().to_string())
        })
        .collect()
}

fn files(dir: &Path) -> Files {
    Files {
        check: dir.join("service-ok"),
        disable: dir.join("maintenance"),
    }
}

const UP_DOWN_UP: &[Step] = &[Step::Down, Step::Up];

#[test]
fn plain() {
    if !healthcheck_available() {
        return;
    }
    let dir = temp_dir();
    let files = files(dir.path());
    compare(&plain_args(&files), UP_DOWN_UP, 1, &files, None);
}

fn plain_args(files: &Files) -> Vec<String> {
    arguments(
        &[
            "--no-syslog",
            "--no-ip-setup",
            "--ip",
            "192.0.2.10",
            "--cmd",
            "test -f {check}",
        ],
        files,
    )
}

/// ExaBGP 6.0's healthcheck speaks API 6 (`peer * announce ...`); exaprobe finds the dialect
/// from the version answer and speaks it too.
#[test]
fn plain_and_attributes_under_exabgp6() {
    if !exabgp_available(Version::V6) {
        return;
    }
    let dir = temp_dir();
    let files = files(dir.path());
    for args in [plain_args(&files), attribute_args(&files)] {
        compare_pair(
            (Program::Healthcheck6, Program::Exaprobe6),
            &args,
            UP_DOWN_UP,
            1,
            &files,
            None,
            &mut |_| {},
        );
    }
}

#[test]
fn attributes_and_withdraw_on_down() {
    if !healthcheck_available() {
        return;
    }
    let dir = temp_dir();
    let files = files(dir.path());
    compare(&attribute_args(&files), UP_DOWN_UP, 1, &files, None);
}

fn attribute_args(files: &Files) -> Vec<String> {
    arguments(
        &[
            "--no-syslog",
            "--no-ip-setup",
            "--ip",
            "192.0.2.11/32",
            "--next-hop",
            "198.51.100.1",
            "--community",
            "65000:1 65000:2",
            "--large-community",
            "65000:1:1",
            "--extended-community",
            "target:65000:5",
            "--as-path",
            "65000 65000",
            "--local-preference",
            "200",
            "--path-id",
            "7",
            "--withdraw-on-down",
            "--command",
            "test -f {check}",
        ],
        files,
    )
}

#[test]
fn several_prefixes_metrics_and_increase() {
    if !healthcheck_available() {
        return;
    }
    let dir = temp_dir();
    let files = files(dir.path());
    let args = arguments(
        &[
            "--no-syslog",
            "--no-ip-setup",
            "--ip",
            "192.0.2.20",
            "--ip",
            "192.0.2.21/32",
            "--ip",
            "2001:db8::20/128",
            "--up-metric",
            "50",
            "--down-metric",
            "5000",
            "--increase",
            "10",
            "--up-as-path",
            "65000",
            "--down-as-path",
            "65000 65000 65000",
            "--disabled-community",
            "65000:666",
            "--community",
            "65000:100",
            "-c",
            "test -f {check}",
        ],
        &files,
    );
    compare(&args, UP_DOWN_UP, 3, &files, None);
}

/// Options of one value given twice (argparse keeps the last; so must exaprobe, not refuse
/// them); `--interval 9` is overridden by the timers appended after it.
#[test]
fn options_given_twice_take_the_last_value() {
    if !healthcheck_available() {
        return;
    }
    let dir = temp_dir();
    let files = files(dir.path());
    let args = arguments(
        &[
            "--no-syslog",
            "--no-ip-setup",
            "--debounce",
            "--debounce",
            "--ip",
            "192.0.2.25",
            "--up-metric",
            "10",
            "--up-metric",
            "40",
            "--down-metric",
            "900",
            "--down-metric",
            "950",
            "--interval",
            "9",
            "--cmd",
            "false",
            "--cmd",
            "test -f {check}",
        ],
        &files,
    );
    compare(&args, UP_DOWN_UP, 1, &files, None);
}

#[test]
fn disable_file() {
    if !healthcheck_available() {
        return;
    }
    let dir = temp_dir();
    let files = files(dir.path());
    let args = arguments(
        &[
            "--no-syslog",
            "--no-ip-setup",
            "--ip",
            "192.0.2.30",
            "--disabled-metric",
            "700",
            "--disable",
            "{disable}",
            "--cmd",
            "test -f {check}",
        ],
        &files,
    );
    compare(&args, &[Step::Disable, Step::Enable], 1, &files, None);
}

/// Hooks: the sequence of `STATE`s each program's `--execute` saw, besides the commands.
#[test]
fn execute_hooks() {
    if !healthcheck_available() {
        return;
    }
    let dir = temp_dir();
    let files = files(dir.path());
    let log = dir.path().join("states");
    let up = dir.path().join("up");
    let hook = format!("echo $STATE >> {}", log.display());
    let up_hook = format!("echo up >> {}", up.display());
    let args = arguments(
        &[
            "--no-syslog",
            "--no-ip-setup",
            "--ip",
            "192.0.2.40",
            "--execute",
            &hook,
            "--up-execute",
            &up_hook,
            "--cmd",
            "test -f {check}",
        ],
        &files,
    );
    let mut seen = Vec::new();
    for program in [Program::Healthcheck, Program::Exaprobe] {
        let _ = std::fs::remove_file(&log);
        let _ = std::fs::remove_file(&up);
        // exaprobe runs hooks on a task of their own: wait for the last one (the second UP)
        // before stopping it.
        let second_up = || {
            wait_for("the hooks of the second UP", PHASE, || {
                let ups = std::fs::read_to_string(&up).unwrap_or_default();
                (ups.lines().count() == 2).then_some(())
            })
        };
        let phases = run(program, &args, UP_DOWN_UP, 1, &files, None, &second_up);
        let states = std::fs::read_to_string(&log).unwrap();
        seen.push((phases, states));
    }
    eprintln!("{seen:#?}");
    assert_eq!(seen[1], seen[0]);
    assert_eq!(
        seen[0].1.lines().collect::<Vec<_>>(),
        ["RISING", "UP", "FALLING", "DOWN", "RISING", "UP"]
    );
}

/// A healthcheck `-F` file, read by both.
#[test]
fn healthcheck_config_file() {
    if !healthcheck_available() {
        return;
    }
    let dir = temp_dir();
    let files = files(dir.path());
    let config = dir.path().join("healthcheck.conf");
    std::fs::write(
        &config,
        format!(
            "# a healthcheck configuration file\nno-syslog\nno-ip-setup\nname = web\nip = 192.0.2.50\nip = 192.0.2.51\nup-metric = 20\ncommunity = 65000:7\ncommand = test -f {}\n",
            files.check.display()
        ),
    )
    .unwrap();
    let mut args = vec!["-F".to_string(), config.display().to_string()];
    args.extend(TIMERS.iter().map(|s| s.to_string()));
    compare(&args, UP_DOWN_UP, 2, &files, None);
}

// ---- inside a network namespace ---------------------------------------------------------------

/// A network namespace of the test's own, deleted when dropped.
struct Netns {
    name: String,
}

impl Netns {
    /// A new namespace with `lo` up, or `None` with the reason printed (not root, no `ip`).
    fn create(tag: &str) -> Option<Netns> {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("SKIPPED: network namespaces need root");
            return None;
        }
        let name = format!("exaprobe-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        match Command::new("ip").args(["netns", "add", &name]).status() {
            Ok(status) if status.success() => {}
            other => {
                let message = format!("cannot create a network namespace: {other:?}");
                assert!(!under_ci(), "{message}");
                eprintln!("SKIPPED: {message}");
                return None;
            }
        }
        let netns = Netns { name };
        netns.ip(&["link", "set", "lo", "up"]);
        Some(netns)
    }

    /// `ip ARGS` inside the namespace; must succeed.
    fn ip(&self, args: &[&str]) -> String {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.name, "ip"])
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "ip {args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Add each `(address, label)` to `lo`.
    fn add_labelled(&self, addresses: &[(&str, &str)]) {
        for (address, label) in addresses {
            self.ip(&["address", "add", address, "dev", "lo", "label", label]);
        }
    }

    /// The addresses on `lo`, as `ip -o address show dev lo` lists them.
    fn lo(&self) -> String {
        self.ip(&["-o", "address", "show", "dev", "lo"])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// ExaBGP's own example line (`etc/exabgp/example-healthcheck.conf`), with a local check instead
/// of curl: no `--ip`, so the addresses on `lo` (outside 127.0.0.0/8 and ::1) are announced.
#[test]
fn the_example_line_announces_the_addresses_of_lo() {
    if !healthcheck_available() {
        return;
    }
    let Some(netns) = Netns::create("example") else {
        return;
    };
    netns.ip(&["address", "add", "192.0.2.77/32", "dev", "lo"]);
    netns.ip(&["address", "add", "2001:db8::77/128", "dev", "lo"]);
    let dir = temp_dir();
    let files = files(dir.path());
    let args = arguments(
        &[
            "-s",
            "--name",
            "nginx",
            "--cmd",
            "test -f {check}",
            "--start-ip",
            "0",
        ],
        &files,
    );
    // The healthcheck removes the addresses it announced at exit (its IP setup is on by
    // default and removes every --ip address found), even those it found: put them back for
    // exaprobe, which leaves them in place.
    compare_with(
        &args,
        UP_DOWN_UP,
        2,
        &files,
        Some(&netns.name),
        &mut |program| {
            let lo = netns.lo();
            match program {
                Program::Healthcheck | Program::Healthcheck6 => {
                    assert!(!lo.contains("192.0.2.77/32"), "{lo}");
                    netns.ip(&["address", "add", "192.0.2.77/32", "dev", "lo"]);
                    netns.ip(&["address", "add", "2001:db8::77/128", "dev", "lo"]);
                }
                Program::Exaprobe | Program::Exaprobe6 => {
                    assert!(lo.contains("192.0.2.77/32"), "{lo}");
                    assert!(lo.contains("2001:db8::77/128"), "{lo}");
                }
            }
        },
    );
}

/// `--label` selects among the addresses of `lo`, `--start-ip` rotates them, and
/// `--deaggregate-networks` splits a network into host routes.
#[test]
fn labels_start_ip_and_deaggregation() {
    if !healthcheck_available() {
        return;
    }
    let Some(netns) = Netns::create("label") else {
        return;
    };
    netns.add_labelled(&[
        ("192.0.2.81/32", "lo:web1"),
        ("192.0.2.82/32", "lo:db1"),
        ("192.0.2.84/30", "lo:web2"),
        ("192.0.2.83/32", "lo:web3"),
    ]);
    let dir = temp_dir();
    let files = files(dir.path());
    let args = web_deaggregated("2", &files);
    // web1, web2 (4 host routes), web3: 6 prefixes.
    compare(&args, UP_DOWN_UP, 6, &files, Some(&netns.name));
}

/// The addresses of `lo` labelled `lo:web...`, deaggregated, the list started at `start_ip`.
fn web_deaggregated(start_ip: &str, files: &Files) -> Vec<String> {
    let args = [
        "--no-syslog",
        "--label",
        "web",
        "--start-ip",
        start_ip,
        "--deaggregate-networks",
        "--cmd",
        "test -f {check}",
    ];
    arguments(&args, files)
}

/// A host address on `lo` inside a network also on `lo`, deaggregated: exaprobe announces it
/// once and starts (the healthcheck sends its command twice).
#[test]
fn a_host_found_twice_is_announced_once() {
    let Some(netns) = Netns::create("twice") else {
        return;
    };
    netns.add_labelled(&[("192.0.2.84/30", "lo:web1"), ("192.0.2.85/32", "lo:web2")]);
    let dir = temp_dir();
    let files = files(dir.path());
    let args = web_deaggregated("0", &files);
    let phases = run(
        Program::Exaprobe,
        &args,
        &[],
        4,
        &files,
        Some(&netns.name),
        &|| {},
    );
    // Each phase holds distinct commands: one per host, so no host was sent twice.
    let hosts = |phase: &[String]| -> Vec<String> {
        phase
            .iter()
            .map(|line| {
                line.split_whitespace()
                    .nth(2)
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    let expected: Vec<String> = (84..=87).map(|host| format!("192.0.2.{host}/32")).collect();
    assert_eq!(hosts(&phases[0]), expected, "{phases:?}");
    assert!(
        phases[0].iter().all(|line| line.starts_with("announce ")),
        "{phases:?}"
    );
    assert_eq!(
        hosts(&phases[1]),
        expected,
        "the withdraws at exit: {phases:?}"
    );
}

/// IP setup: a missing `--ip` address is added to `lo` at start and removed at exit, by both.
#[test]
fn ip_setup_adds_and_removes_the_address() {
    if !healthcheck_available() {
        return;
    }
    let Some(netns) = Netns::create("setup") else {
        return;
    };
    let dir = temp_dir();
    let files = files(dir.path());
    let plain: &[&str] = &[
        "--no-syslog",
        "--ip",
        "192.0.2.90",
        "--cmd",
        "test -f {check}",
    ];
    // With --sudo (`sudo ip address add ... label lo:vip`, as the healthcheck runs it).
    let sudo: &[&str] = &[
        "--no-syslog",
        "--sudo",
        "--label",
        "vip",
        "--ip",
        "192.0.2.90",
        "--cmd",
        "test -f {check}",
    ];
    let mut lists = vec![(plain, "192.0.2.90/32 scope global lo")];
    // sudo is not a test dependency (scripts/install-test-deps): the --sudo list needs it.
    if Command::new("sudo")
        .arg("true")
        .status()
        .is_ok_and(|s| s.success())
    {
        lists.push((sudo, "192.0.2.90/32 scope global lo:vip"));
    } else {
        eprintln!("SKIPPED: the --sudo list: no working sudo");
    }
    for (list, shown) in lists {
        let args = arguments(list, &files);
        for program in [Program::Healthcheck, Program::Exaprobe] {
            std::fs::write(&files.check, "").unwrap();
            let (binary, argv) = command_line(program, &args, Some(&netns.name));
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let mut exabgp = Harness::start(program, &binary, &argv);
            next_phase(&exabgp, &[], 1, &format!("{program:?} start"));
            let lo = netns.lo();
            assert!(lo.contains(shown), "{program:?} {list:?}: not added: {lo}");
            exabgp.child.signal(Signal::SIGTERM);
            rest(&mut exabgp);
            let lo = netns.lo();
            assert!(
                !lo.contains("192.0.2.90/32"),
                "{program:?} {list:?}: not removed: {lo}\n{}",
                exabgp.log()
            );
        }
    }
}

/// Without the privilege, exaprobe says so in one line and announces anyway; `--pid` and
/// `--user` work as the healthcheck's.
#[test]
fn ip_setup_without_privilege_and_privilege_drop() {
    let Some(netns) = Netns::create("priv") else {
        return;
    };
    let dir = temp_dir();
    let pid_file = dir.path().join("probe.pid");
    let binary = release_binary("exaprobe-exec");
    // Unprivileged from the start: the address cannot be added.
    let args = [
        "netns",
        "exec",
        &netns.name,
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        &binary.display().to_string(),
        "--ip",
        "192.0.2.91",
        "--rise",
        "1",
        "--exabgp-api",
        "4",
        "--cmd",
        "true",
    ]
    .map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut exabgp = Harness::start(Program::Exaprobe, Path::new("ip"), &args);
    let first = exabgp.command(PHASE).expect("an announcement");
    assert_eq!(
        first.line,
        "announce route 192.0.2.91/32 next-hop self med 100"
    );
    // Logged before the first check; the harness reads stderr on a thread of its own.
    let log = wait_for("the ip setup error line", PHASE, || {
        let log = exabgp.log();
        log.contains("ip setup: cannot add").then_some(log)
    });
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ip setup: cannot add"))
        .collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(
        errors[0].contains("192.0.2.91/32 to lo: Operation not permitted (os error 1): needs root or CAP_NET_ADMIN, or give --sudo"),
        "{log}"
    );
    exabgp.child.signal(Signal::SIGTERM);
    rest(&mut exabgp);
    assert!(!netns.lo().contains("192.0.2.91"));

    // Root: set up, then the pid file and the switch to nobody.
    let args = [
        "netns",
        "exec",
        &netns.name,
        "env",
        &claims_env(),
        &binary.display().to_string(),
        "--ip",
        "192.0.2.92",
        "--rise",
        "1",
        "--exabgp-api",
        "4",
        "--pid",
        &pid_file.display().to_string(),
        "--user",
        "nobody",
        "--group",
        "nogroup",
        "--cmd",
        "true",
    ]
    .map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut exabgp = Harness::start(Program::Exaprobe, Path::new("ip"), &args);
    exabgp.command(PHASE).expect("an announcement");
    assert!(netns.lo().contains("192.0.2.92/32"));
    let pid = exabgp.child.pid();
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        format!("{pid}\n")
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
            .unwrap()
    };
    assert_eq!(field("Uid:"), "65534 65534 65534 65534");
    assert_eq!(field("Gid:"), "65534 65534 65534 65534");
    assert_eq!(field("Groups:"), "65534");
    exabgp.child.signal(Signal::SIGTERM);
    rest(&mut exabgp);
    // As nobody it cannot remove the address (nor can the healthcheck): one warning.
    wait_for("the removal warning", PHASE, || {
        exabgp
            .log()
            .contains("ip setup: cannot remove")
            .then_some(())
    });
    assert!(
        exabgp
            .log()
            .contains("ip setup: cannot remove 192.0.2.92/32 from lo"),
        "{}",
        exabgp.log()
    );
}

/// `--dynamic-ip-setup`: the address leaves `lo` when DOWN and comes back when UP, for both.
#[test]
fn dynamic_ip_setup_follows_the_state() {
    if !healthcheck_available() {
        return;
    }
    let Some(netns) = Netns::create("dynamic") else {
        return;
    };
    let dir = temp_dir();
    let files = files(dir.path());
    let args = arguments(
        &[
            "--no-syslog",
            "--ip",
            "192.0.2.95",
            "--dynamic-ip-setup",
            "--cmd",
            "test -f {check}",
        ],
        &files,
    );
    let on_lo = |wanted: bool, what: &str| {
        wait_for(what, PHASE, || {
            (netns.lo().contains("192.0.2.95/32") == wanted).then_some(())
        });
    };
    for program in [Program::Healthcheck, Program::Exaprobe] {
        std::fs::write(&files.check, "").unwrap();
        let (binary, argv) = command_line(program, &args, Some(&netns.name));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let mut exabgp = Harness::start(program, &binary, &argv);
        let up = next_phase(&exabgp, &[], 1, &format!("{program:?} start"));
        on_lo(true, "the address added at start");
        std::fs::remove_file(&files.check).unwrap();
        let down = next_phase(&exabgp, &up, 1, &format!("{program:?} down"));
        on_lo(false, "the address removed when DOWN");
        std::fs::write(&files.check, "").unwrap();
        next_phase(&exabgp, &down, 1, &format!("{program:?} up"));
        on_lo(true, "the address added again when UP");
        exabgp.child.signal(Signal::SIGTERM);
        rest(&mut exabgp);
        on_lo(false, "the address removed at exit");
    }
}

/// A pair under a real ExaBGP 5.0 peered with GoBGP: the healthcheck and exaprobe-exec, the same
/// argument list but for the prefix, one check file; GoBGP sees the same MEDs from both as the
/// check flips up, down, up.
#[test]
fn a_pair_under_a_real_exabgp() {
    if !healthcheck_available() {
        return;
    }
    let dir = temp_dir();
    let check = dir.path().join("service-ok");
    std::fs::write(&check, "").unwrap();
    let argv = |program: Program, prefix: &str| {
        let mut args: Vec<String> = [
            "--no-syslog",
            "--no-ip-setup",
            "--next-hop",
            NEXT_HOP,
            "--ip",
            prefix,
            "--cmd",
            &format!("test -f {}", check.display()),
        ]
        .map(String::from)
        .to_vec();
        args.extend(TIMERS.iter().map(|s| s.to_string()));
        let (binary, mut argv) = command_line(program, &args, None);
        argv.insert(0, binary.display().to_string());
        argv
    };
    let processes = vec![
        Process::command("healthcheck", argv(Program::Healthcheck, "192.0.2.60")),
        Process::command("exaprobe", argv(Program::Exaprobe, "192.0.2.61")),
    ];
    let Some(stack) = Stack::start(StackOptions::new(Version::V5, processes)) else {
        return;
    };
    let wait = Duration::from_secs(30);
    for (med, flip) in [(100, None), (1000, Some(false)), (100, Some(true))] {
        match flip {
            Some(true) => std::fs::write(&check, "").unwrap(),
            Some(false) => std::fs::remove_file(&check).unwrap(),
            None => {}
        }
        stack.wait_med("192.0.2.60/32", med, wait);
        stack.wait_med("192.0.2.61/32", med, wait);
    }
}

// ---- host safety of IP set-up (issue 24) ------------------------------------------------------

/// `exaprobe-exec ARGS` inside `netns`, under a harness that acknowledges as ExaBGP 4.x.
fn probe_in(netns: &Netns, args: &[&str]) -> Harness {
    let binary = release_binary("exaprobe-exec").display().to_string();
    let mut argv = vec!["netns", "exec", &netns.name, &binary];
    argv.extend_from_slice(args);
    Harness::start(Program::Exaprobe, Path::new("ip"), &argv)
}

/// `exaprobe-exec ARGS` inside `netns` run to its end: exit code and stderr.
fn run_in(netns: &Netns, args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new("ip")
        .args(["netns", "exec", &netns.name])
        .arg(release_binary("exaprobe-exec"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// How many IPv4 addresses of `lo` start with `prefix`.
fn count_on_lo(netns: &Netns, prefix: &str) -> usize {
    netns
        .ip(&["-o", "-4", "address", "show", "dev", "lo"])
        .lines()
        .filter(|line| {
            line.split_whitespace()
                .nth(3)
                .is_some_and(|a| a.starts_with(prefix))
        })
        .count()
}

/// A `--user` that does not exist is refused before anything is set up: exit 78, one line,
/// no address left on `lo`, no pid file; `--check-config` says the same.
#[test]
fn a_missing_user_is_refused_before_any_set_up() {
    let Some(netns) = Netns::create("nouser") else {
        return;
    };
    let dir = temp_dir();
    let pid = dir.path().join("probe.pid").display().to_string();
    let claims = dir.path().join("claims").display().to_string();
    let args = [
        "--ip",
        "192.0.2.93",
        "--pid",
        &pid,
        "--ip-claims-dir",
        &claims,
        "--user",
        "no-such-user-x",
        "--cmd",
        "true",
    ];
    let (code, stderr) = run_in(&netns, &args);
    assert_eq!(code, Some(78), "{stderr}");
    assert_eq!(
        stderr,
        "exaprobe-exec: configuration error: --user no-such-user-x: no such user\n"
    );
    assert_eq!(count_on_lo(&netns, "192.0.2.93"), 0, "{}", netns.lo());
    assert!(!Path::new(&pid).exists());
    let mut check = args.to_vec();
    check.push("--check-config");
    let (code, stderr) = run_in(&netns, &check);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("--user no-such-user-x: no such user"),
        "{stderr}"
    );
}

/// Two probes with the same `--ip`: the first to exit leaves the address the other still
/// uses; the last removes it. An address the operator configured is never removed, and an
/// address a killed probe added is removed by the next probe that uses it.
#[test]
fn a_shared_address_stays_until_its_last_probe_exits() {
    let Some(netns) = Netns::create("shared") else {
        return;
    };
    let dir = temp_dir();
    let claims = dir.path().join("claims").display().to_string();
    let args = |ip: &'static str| {
        [
            "--ip",
            ip,
            "--ip-claims-dir",
            &claims,
            "--rise",
            "1",
            "--interval",
            "0.2",
            "--exabgp-api",
            "4",
            "--cmd",
            "true",
        ]
        .map(String::from)
    };
    let start = |ip: &'static str| {
        let args = args(ip);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let probe = probe_in(&netns, &args);
        probe.command(PHASE).expect("an announcement");
        probe
    };
    let stop = |mut probe: Harness| {
        probe.child.signal(Signal::SIGTERM);
        rest(&mut probe);
    };
    let first = start("192.0.2.94");
    let second = start("192.0.2.94");
    assert_eq!(count_on_lo(&netns, "192.0.2.94"), 1);
    stop(first);
    assert_eq!(
        count_on_lo(&netns, "192.0.2.94"),
        1,
        "the first to exit removed the address the second uses"
    );
    stop(second);
    assert_eq!(count_on_lo(&netns, "192.0.2.94"), 0, "{}", netns.lo());

    // Configured by the operator: two probes come and go, the address stays.
    netns.ip(&["address", "add", "192.0.2.95/32", "dev", "lo"]);
    let first = start("192.0.2.95");
    let second = start("192.0.2.95");
    stop(second);
    stop(first);
    assert_eq!(count_on_lo(&netns, "192.0.2.95"), 1);

    // Added by a probe that is killed: the next probe using it removes it at its exit.
    let killed = start("192.0.2.96");
    killed.child.signal(Signal::SIGKILL);
    let mut killed = killed;
    assert!(killed.child.wait_timeout(PHASE).is_some());
    assert_eq!(count_on_lo(&netns, "192.0.2.96"), 1);
    stop(start("192.0.2.96"));
    assert_eq!(count_on_lo(&netns, "192.0.2.96"), 0, "{}", netns.lo());
}

/// SIGTERM while a /16 is being set up: the set-up stops, what it added is removed, the probe
/// exits 0 at once.
#[test]
fn sigterm_during_set_up_removes_what_was_added() {
    let Some(netns) = Netns::create("setupterm") else {
        return;
    };
    let dir = temp_dir();
    let claims = dir.path().join("claims").display().to_string();
    let mut probe = probe_in(
        &netns,
        &[
            "--ip",
            "10.1.0.0/16",
            "--ip-claims-dir",
            &claims,
            "--exabgp-api",
            "4",
            "--cmd",
            "true",
        ],
    );
    wait_for("addresses being added", PHASE, || {
        (count_on_lo(&netns, "10.1.") > 0).then_some(())
    });
    probe.child.signal(Signal::SIGTERM);
    let status = probe.child.wait_timeout(Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", probe.log());
    assert!(
        probe
            .log()
            .contains("stopped by a signal during the set-up"),
        "the signal came after the set-up: {}",
        probe.log()
    );
    assert_eq!(count_on_lo(&netns, "10.1."), 0);
}

/// A network larger than IP set-up takes is refused in one line naming `--ip` (and how to
/// announce it anyway), before anything is added, at start and in `--check-config`; with
/// `--no-ip-setup` the network is announced as given, as the healthcheck announces it.
#[test]
fn a_network_too_large_to_set_up_is_refused_naming_ip() {
    let Some(netns) = Netns::create("bignet") else {
        return;
    };
    let expected = "exaprobe-exec: configuration error: --ip 10.0.0.0/8 has 16777216 addresses: IP set-up adds each to the interface and takes at most 65536; give --no-ip-setup to announce the networks without adding their addresses\n";
    for extra in [None, Some("--check-config")] {
        let mut args = vec!["--ip", "10.0.0.0/8", "--cmd", "true"];
        args.extend(extra);
        let (code, stderr) = run_in(&netns, &args);
        assert_eq!((code, stderr.as_str()), (Some(78), expected), "{extra:?}");
        assert_eq!(count_on_lo(&netns, "10."), 0);
    }
    let (code, stderr) = run_in(
        &netns,
        &[
            "--ip",
            "10.0.0.0/8",
            "--no-ip-setup",
            "--check-config",
            "--cmd",
            "true",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
}
