//! What each real ExaBGP (4.2.25, 5.0.15, the 6.0.0 snapshot) answers on the process pipe, as
//! the probes rely on it: ACKs, `system version` (which `exaprobe_core::dialect` parses), the
//! wrong dialect, ExaBGP 6's selectors, and what a process sees when ExaBGP stops.
//!
//! A small recorder (Python, written by the test) is ExaBGP's process: it writes each command,
//! records the lines that come back up to the ACK, then everything until EOF, as JSON lines. The
//! answers are printed verbatim (`--nocapture`) and asserted. The probes' own behaviour under
//! several neighbours is asserted on GoBGP's RIB at the end.

use std::path::PathBuf;
use std::time::Duration;

use exaprobe_core::fuzzing::{VERSION_COMMAND, mismatch_hint, version_answer};
use exaprobe_e2e::{FAST_TIMERS, PEERS, Process, Stack, StackOptions, Version};
use exaprobe_testkit::{require_tool, wait_for};
use nix::sys::signal::Signal;

const RECORDER: &str = r#"
import json, os, select, signal, sys, time
commands = [l.rstrip("\n") for l in open(sys.argv[1]) if l.strip()]
out = open(sys.argv[2], "w")
until_ack = sys.argv[3] == "ack"
def note(**item):
    out.write(json.dumps(item) + "\n")
    out.flush()
signal.signal(signal.SIGTERM, lambda *_: note(signal="SIGTERM"))
buffer = b""
def readline(timeout):
    global buffer
    deadline = time.time() + timeout
    while b"\n" not in buffer:
        left = deadline - time.time()
        if left <= 0:
            return None
        if not select.select([0], [], [], left)[0]:
            return None
        chunk = os.read(0, 65536)
        if not chunk:
            return ""
        buffer += chunk
    line, buffer = buffer.split(b"\n", 1)
    return line.decode()
for command in commands:
    sys.stdout.write(command + "\n")
    sys.stdout.flush()
    answer = []
    while True:
        line = readline(10)
        if line is None or line == "":
            answer.append("<timeout>" if line is None else "<eof>")
            break
        answer.append(line)
        if not until_ack or line in ("done", "error"):
            break
    note(command=command, answer=answer)
note(idle=True)
while True:
    line = readline(3600)
    if line == "":
        break
    if line is not None:
        note(later=line)
note(eof=True)
"#;

/// What the recorder saw.
struct Recording {
    /// Each command and the lines that answered it (up to and including the ACK).
    answers: Vec<(String, Vec<String>)>,
    /// Lines after the last answer, until EOF.
    later: Vec<String>,
    /// True if the recorder got SIGTERM.
    sigterm: bool,
    /// ExaBGP's log.
    log: String,
}

impl Recording {
    fn answer(&self, command: &str) -> &[String] {
        &self
            .answers
            .iter()
            .find(|(c, _)| c == command)
            .unwrap_or_else(|| panic!("{command:?} was not sent"))
            .1
    }
}

/// Run ExaBGP `version` with the recorder sending `commands`, then stop ExaBGP with SIGTERM.
fn record(
    version: Version,
    commands: &[&str],
    configure: impl FnOnce(&mut StackOptions),
) -> Option<Recording> {
    let python = require_tool("python3", "Debian package python3", &[])?;
    let dir = exaprobe_testkit::temp_dir();
    let script = dir.path().join("recorder.py");
    let commands_file = dir.path().join("commands");
    let output = dir.path().join("recorded.jsonl");
    std::fs::write(&script, RECORDER).unwrap();
    std::fs::write(&commands_file, commands.join("\n") + "\n").unwrap();
    let mut options = StackOptions::new(version, vec![]);
    configure(&mut options);
    let mode = if options.ack { "ack" } else { "line" };
    let argv: Vec<String> = [
        python.as_path(),
        script.as_path(),
        commands_file.as_path(),
        output.as_path(),
    ]
    .iter()
    .map(|p| p.display().to_string())
    .chain([mode.to_string()])
    .collect();
    options.processes = vec![Process::command("recorder", argv)];
    let mut stack = Stack::start(options)?;
    let read = |output: &PathBuf| std::fs::read_to_string(output).unwrap_or_default();
    wait_for(
        "the recorder to send every command",
        Duration::from_secs(60),
        || read(&output).contains("\"idle\"").then_some(()),
    );
    stack.signal_exabgp(Signal::SIGTERM);
    assert!(
        stack.wait_exabgp_exit(Duration::from_secs(15)),
        "ExaBGP did not exit"
    );
    wait_for("the recorder to see EOF", Duration::from_secs(10), || {
        read(&output).contains("\"eof\"").then_some(())
    });
    let mut recording = Recording {
        answers: vec![],
        later: vec![],
        sigterm: false,
        log: stack.logs(),
    };
    for line in read(&output).lines() {
        let item: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(command) = item.get("command").and_then(|c| c.as_str()) {
            let answer = item["answer"].as_array().unwrap();
            let answer = answer.iter().map(|l| l.as_str().unwrap().to_string());
            recording
                .answers
                .push((command.to_string(), answer.collect()));
        } else if let Some(later) = item.get("later").and_then(|l| l.as_str()) {
            recording.later.push(later.to_string());
        } else if item.get("signal").is_some() {
            recording.sigterm = true;
        }
    }
    for (command, answer) in &recording.answers {
        eprintln!("{version:?} {mode}: {command:?} -> {answer:?}");
    }
    eprintln!(
        "{version:?} {mode}: after SIGTERM to ExaBGP: lines {:?}, SIGTERM to the process: {}, then EOF",
        recording.later, recording.sigterm
    );
    Some(recording)
}

const LEGACY: &str = "announce route 192.0.2.1/32 next-hop 10.0.0.1 med 100";
const LEGACY_NEIGHBOR: &str = "neighbor 127.0.0.1 announce route 192.0.2.2/32 next-hop 10.0.0.1";
const UNMATCHED_NEIGHBOR: &str = "neighbor 127.0.0.9 announce route 192.0.2.3/32 next-hop 10.0.0.1";
const PEER_ALL: &str = "peer * announce route 192.0.2.4/32 next-hop 10.0.0.1 med 100";
const PEER_ONE: &str = "peer 127.0.0.1 announce route 192.0.2.5/32 next-hop 10.0.0.1";
const PEER_LIST: &str =
    "peer 127.0.0.1, peer 127.0.0.9 announce route 192.0.2.6/32 next-hop 10.0.0.1";
const PEER_BRACKET: &str =
    "peer [127.0.0.1, 127.0.0.9] announce route 192.0.2.7/32 next-hop 10.0.0.1";
const PEER_UNMATCHED: &str = "peer 127.0.0.9 announce route 192.0.2.8/32 next-hop 10.0.0.1";
const BAD_PEER: &str = "peer * announce route 192.0.2.9/32 next-hop banana";
const BAD_LEGACY: &str = "announce route 192.0.2.10/32 next-hop banana";

/// Every command the recorder sends, the version probe first.
const COMMANDS: &[&str] = &[
    VERSION_COMMAND,
    "version",
    LEGACY,
    LEGACY_NEIGHBOR,
    UNMATCHED_NEIGHBOR,
    PEER_ALL,
    PEER_ONE,
    PEER_LIST,
    PEER_BRACKET,
    PEER_UNMATCHED,
    BAD_PEER,
    BAD_LEGACY,
    // Last: answered with exactly one line and `done`, so no extra ACK came before it.
    VERSION_COMMAND,
];

macro_rules! for_each_exabgp {
    ($($scenario:ident),* $(,)?) => {
        mod exabgp_6_0 { $( #[test] fn $scenario() { super::$scenario(exaprobe_e2e::Version::V6) } )* }
        mod exabgp_5_0 { $( #[test] fn $scenario() { super::$scenario(exaprobe_e2e::Version::V5) } )* }
        mod exabgp_4_2 { $( #[test] fn $scenario() { super::$scenario(exaprobe_e2e::Version::V4) } )* }
    };
}

for_each_exabgp!(
    answers_on_the_pipe,
    version_answer_without_acks,
    several_neighbors_and_an_unmatched_one,
);

fn release(version: Version) -> &'static str {
    match version {
        Version::V6 => "6.0.0",
        Version::V5 => "5.0.",
        Version::V4 => "4.2.",
    }
}

fn answers_on_the_pipe(version: Version) {
    let Some(recording) = record(version, COMMANDS, |_| {}) else {
        return;
    };
    let done = ["done"];
    let error = ["error"];
    // `system version`: one line, then the ACK; the form tells the dialect.
    let answer = recording.answer(VERSION_COMMAND);
    assert_eq!(answer.len(), 2, "{answer:?}");
    assert_eq!(answer[1], "done");
    let (detected, detected_dialect) = version_answer(&answer[0]).expect("a version answer");
    assert!(detected.starts_with(release(version)), "{detected:?}");
    let last = &recording.answers.last().unwrap().1;
    assert_eq!(last, answer, "an extra ACK came before the last command's");
    let (dialect, wrong) = match version {
        Version::V6 => (6, 4),
        Version::V5 | Version::V4 => (4, 6),
    };
    assert_eq!(detected_dialect, dialect);
    match version {
        Version::V6 => {
            // The bare `version` is unknown to API 6: not a way to detect it.
            assert_eq!(recording.answer("version"), error);
            // The 4.2/5.0 forms are answered `error`, with no message; the hint says to use 6.
            for legacy in [LEGACY, LEGACY_NEIGHBOR, UNMATCHED_NEIGHBOR, BAD_LEGACY] {
                assert_eq!(recording.answer(legacy), error, "{legacy}");
            }
            let hint = mismatch_hint(wrong, LEGACY, None).expect("a hint");
            assert!(hint.contains("--exabgp-api 6"), "{hint}");
            for accepted in [PEER_ALL, PEER_ONE, PEER_BRACKET, PEER_UNMATCHED] {
                assert_eq!(recording.answer(accepted), done, "{accepted}");
            }
            // Several selectors: only the bracket form works.
            assert_eq!(recording.answer(PEER_LIST), error);
            // A parse failure is two lines: `error: <message>`, then the ACK.
            let bad = recording.answer(BAD_PEER);
            assert_eq!(bad.len(), 2, "{bad:?}");
            assert!(bad[0].starts_with("error: "), "{bad:?}");
            assert_eq!(bad[1], "error");
            let detail = bad[0].strip_prefix("error: ");
            assert_eq!(mismatch_hint(dialect, BAD_PEER, detail), None);
            // No shutdown line reaches the process: SIGTERM and EOF are what it sees.
            assert!(
                recording.later.is_empty(),
                "{:?}\n{}",
                recording.later,
                recording.log
            );
            assert!(!recording.log.contains("Text encoder requested"));
        }
        Version::V5 | Version::V4 => {
            // `version` works too, in text.
            assert_eq!(recording.answer("version"), answer);
            for accepted in [LEGACY, LEGACY_NEIGHBOR] {
                assert_eq!(recording.answer(accepted), done, "{accepted}");
            }
            // A neighbour that matches no configured peer is an error, not "every peer".
            assert_eq!(recording.answer(UNMATCHED_NEIGHBOR), error);
            for peer in [
                PEER_ALL,
                PEER_ONE,
                PEER_LIST,
                PEER_BRACKET,
                PEER_UNMATCHED,
                BAD_PEER,
            ] {
                assert_eq!(recording.answer(peer), error, "{peer}");
            }
            let hint = mismatch_hint(wrong, PEER_ALL, None).expect("a hint");
            assert!(hint.contains("--exabgp-api 4"), "{hint}");
            // A parse failure is the ACK alone.
            assert_eq!(recording.answer(BAD_LEGACY), error);
            // The text encoder's shutdown notice comes before EOF.
            assert_eq!(recording.later.len(), 1, "{:?}", recording.later);
            assert!(recording.later[0].starts_with("shutdown "));
        }
    }
}

fn version_answer_without_acks(version: Version) {
    // exabgp.api.ack=false: the answer still comes, alone.
    let Some(recording) = record(version, &[VERSION_COMMAND], |options| {
        options.ack = false;
    }) else {
        return;
    };
    let answer = recording.answer(VERSION_COMMAND);
    assert_eq!(answer.len(), 1, "{answer:?}");
    let (detected, _) = version_answer(&answer[0]).expect("a version answer");
    assert!(detected.starts_with(release(version)), "{detected:?}");
}

/// ExaBGP 6 with `encoder text;`: forced to JSON with a warning; with `exabgp_api_version=4` the
/// legacy forms and a text version answer come back (so a text answer means "speak 4").
#[test]
fn exabgp_6_text_encoder_and_api_4() {
    let Some(recording) = record(Version::V6, &[VERSION_COMMAND, LEGACY], |options| {
        options.encoder = Some("text");
    }) else {
        return;
    };
    assert!(
        recording
            .log
            .contains("Text encoder requested but API v6 is JSON-only"),
        "{}",
        recording.log
    );
    let (_, dialect) = version_answer(&recording.answer(VERSION_COMMAND)[0]).unwrap();
    assert_eq!(dialect, 6);
    assert_eq!(recording.answer(LEGACY), ["error"]);

    let Some(recording) = record(
        Version::V6,
        &[VERSION_COMMAND, LEGACY, PEER_ALL],
        |options| {
            options.env = vec![("exabgp_api_version", "4")];
        },
    ) else {
        return;
    };
    let (detected, dialect) = version_answer(&recording.answer(VERSION_COMMAND)[0]).unwrap();
    assert_eq!(dialect, 4);
    assert!(detected.starts_with("6.0.0"), "{detected:?}");
    assert_eq!(recording.answer(LEGACY), ["done"]);
    assert_eq!(recording.answer(PEER_ALL), ["done"]);
}

/// Two BGP sessions. Probe `both` names both neighbours (one `peer [A, B]` command under 6.0),
/// `second` only the second one. Under 6.0 a probe naming an address that is no configured
/// neighbour (`stray`) is answered `done` and its route goes to every peer.
fn several_neighbors_and_an_unmatched_one(version: Version) {
    let ([first, second], [first_local, second_local]) =
        ([PEERS[0].0, PEERS[1].0], [PEERS[0].1, PEERS[1].1]);
    let probe = |name: &str, prefix: &str, neighbors: &[&str]| {
        let mut args: Vec<&str> = FAST_TIMERS.to_vec();
        args.extend(["--prefix", prefix]);
        for neighbor in neighbors {
            args.extend(["--neighbor", neighbor]);
        }
        args.extend(["--", "true"]);
        Process::probe(name, "exaprobe-exec", &args)
    };
    let mut processes = vec![
        probe("both", "192.0.2.30/32", &[first, second]),
        probe("second", "192.0.2.31/32", &[second]),
    ];
    if version == Version::V6 {
        processes.push(probe("stray", "192.0.2.32/32", &["127.0.0.9"]));
    }
    let Some(stack) = Stack::start(StackOptions {
        peers: 2,
        ..StackOptions::new(version, processes)
    }) else {
        return;
    };
    let wait = Duration::from_secs(15);
    stack.wait_sources("192.0.2.30/32", &[first_local, second_local], wait);
    stack.wait_sources("192.0.2.31/32", &[second_local], wait);
    if version == Version::V6 {
        stack.wait_sources("192.0.2.32/32", &[first_local, second_local], wait);
    }
    assert!(stack.established(), "{}", stack.logs());
    let logs = stack.logs();
    assert!(!logs.contains("ExaBGP rejected"), "{logs}");
}
