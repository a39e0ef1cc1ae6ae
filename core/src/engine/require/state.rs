//! What a required probe's routes say, as its state file tells it: the `health` the writer
//! derives from its decided target, and the reader's freshness rules that make a dead, missing
//! or unknown dependency count as DOWN.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::engine::render::Target;

/// The most read from a state file (a real one is a few kilobytes).
const MAX_STATE_FILE_BYTES: u64 = 256 * 1024;

/// A required probe's state, as this probe counts it; ordered from worst to best.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequiredState {
    /// Not serving, or not known to serve (missing, malformed, writer gone...): why.
    Down(String),
    /// In maintenance (its disable file, its drain, or one of its own requirements): why.
    Maintenance(String),
    /// Serving, degraded: why.
    Degraded(String),
    /// Serving.
    Up,
}

impl RequiredState {
    /// The name written in state files and shown in logs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            RequiredState::Up => "UP",
            RequiredState::Degraded(_) => "DEGRADED",
            RequiredState::Down(_) => "DOWN",
            RequiredState::Maintenance(_) => "MAINTENANCE",
        }
    }

    /// Why, when not UP.
    pub(crate) fn reason(&self) -> Option<&str> {
        match self {
            RequiredState::Up => None,
            RequiredState::Degraded(why)
            | RequiredState::Down(why)
            | RequiredState::Maintenance(why) => Some(why),
        }
    }

    /// 0 (DOWN) to 3 (UP): better is higher.
    pub(crate) fn rank(&self) -> u8 {
        match self {
            RequiredState::Down(_) => 0,
            RequiredState::Maintenance(_) => 1,
            RequiredState::Degraded(_) => 2,
            RequiredState::Up => 3,
        }
    }

    /// What a probe's decided target means to the probes requiring it (the `health` field of
    /// its state file); `reason` is the probe's own last reason.
    pub(crate) fn of_target(target: Option<Target>, reason: Option<&str>) -> RequiredState {
        let why = |fallback: &str| reason.unwrap_or(fallback).to_string();
        match target {
            None => RequiredState::Down("starting: no decisive state yet".into()),
            Some(Target::Up { penalty: 0 }) => RequiredState::Up,
            Some(Target::Up { .. }) => RequiredState::Degraded(why("degraded")),
            Some(Target::Draining { .. }) => RequiredState::Maintenance(why("draining")),
            Some(Target::Disabled) => RequiredState::Maintenance(why("maintenance")),
            Some(Target::Down) => RequiredState::Down(why("down")),
            Some(Target::Gone) => RequiredState::Down("stopping".into()),
        }
    }
}

impl fmt::Display for RequiredState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason() {
            Some(why) => write!(f, "{}: {why}", self.name()),
            None => f.write_str(self.name()),
        }
    }
}

/// One required state file, as read now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reading {
    /// The probe's `--name` (the file's name until the file says).
    pub(crate) probe: Option<String>,
    /// Its state, freshness applied.
    pub(crate) state: RequiredState,
    /// Every state file it depends on, directly or through others (to find cycles).
    pub(crate) depends_on: Vec<String>,
    /// Its writer's pid and start time, to notice it die.
    pub(crate) writer: Option<(u32, u64)>,
}

/// Just the version, read first: a document of another schema is named as such, not as
/// malformed.
#[derive(Deserialize)]
struct Versioned {
    version: u32,
}

/// The fields a requiring probe reads (the others are for people and scripts).
#[derive(Deserialize)]
struct Wire {
    probe: String,
    pid: u32,
    start_time: Option<u64>,
    health: Option<String>,
    health_reason: Option<String>,
    #[serde(default)]
    depends_on: Vec<String>,
}

/// Read the state file `path` and apply the freshness rules: missing, unreadable, malformed, a
/// different schema version, or a writer that is gone (pid not running, or running since
/// another time) make it DOWN, with the reason naming the file.
pub(crate) fn read(path: &Path) -> Reading {
    match crate::kit::files::read_regular_file(path, MAX_STATE_FILE_BYTES) {
        Ok(bytes) => parse(path, &bytes, &crate::engine::require::process::writer_gone),
        Err(error) => down(format!("state file {}: {error}", path.display())),
    }
}

fn down(reason: String) -> Reading {
    Reading {
        probe: None,
        state: RequiredState::Down(reason),
        depends_on: Vec::new(),
        writer: None,
    }
}

/// The reading of `bytes` from `path`; `gone` says why a writer (pid, start time) no longer
/// counts (a parameter, so tests need no processes).
pub(crate) fn parse(
    path: &Path,
    bytes: &[u8],
    gone: &dyn Fn(u32, u64) -> Option<String>,
) -> Reading {
    let file = path.display();
    let version = match serde_json::from_slice::<Versioned>(bytes) {
        Ok(versioned) => versioned.version,
        Err(error) => return down(format!("state file {file} is malformed: {error}")),
    };
    if version != crate::observe::state_file::VERSION {
        return down(format!(
            "state file {file} has schema version {version}, this exaprobe reads version {}",
            crate::observe::state_file::VERSION
        ));
    }
    let wire = match serde_json::from_slice::<Wire>(bytes) {
        Ok(wire) => wire,
        Err(error) => return down(format!("state file {file} is malformed: {error}")),
    };
    let Some(start_time) = wire.start_time else {
        return down(format!(
            "state file {file} has no writer start time (written by an older exaprobe)"
        ));
    };
    let mut reading = Reading {
        probe: Some(crate::kit::escape::one_line(&wire.probe)),
        state: RequiredState::Up,
        depends_on: wire.depends_on,
        writer: None,
    };
    if let Some(why) = gone(wire.pid, start_time) {
        reading.state = RequiredState::Down(format!("state file {file}: {why}"));
        return reading;
    }
    reading.writer = Some((wire.pid, start_time));
    let reason = wire
        .health_reason
        .map(|why| crate::kit::escape::one_line(&why))
        .unwrap_or_else(|| "no reason given".into());
    reading.state = match wire.health.as_deref() {
        Some("UP") => RequiredState::Up,
        Some("DEGRADED") => RequiredState::Degraded(reason),
        Some("DOWN") => RequiredState::Down(reason),
        Some("MAINTENANCE") => RequiredState::Maintenance(reason),
        Some(other) => RequiredState::Down(format!(
            "state file {file} has an unknown health {:?}",
            crate::kit::escape::one_line(other)
        )),
        None => RequiredState::Down(format!("state file {file} has no health field")),
    };
    reading
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A state document as a writer of this version writes it (the fields a reader uses).
    pub(crate) fn document(health: &str, reason: Option<&str>, pid: u32, start: u64) -> String {
        serde_json::json!({
            "version": crate::observe::state_file::VERSION,
            "probe": "dns",
            "kind": "dns",
            "pid": pid,
            "start_time": start,
            "state": "UP",
            "health": health,
            "health_reason": reason,
            "depends_on": [],
        })
        .to_string()
    }

    /// Write a state document to `path` as a writer does (a temporary file renamed over it),
    /// from this test process (alive) unless `writer` says otherwise.
    pub(crate) fn write_state(
        path: &Path,
        health: &str,
        reason: Option<&str>,
        writer: Option<(u32, u64)>,
        depends_on: &[&str],
    ) {
        let (pid, start) = writer.unwrap_or_else(|| {
            let start = crate::engine::require::process::own_start_time().expect("own start time");
            (std::process::id(), start)
        });
        let mut document: serde_json::Value =
            serde_json::from_str(&document(health, reason, pid, start)).unwrap();
        document["depends_on"] = serde_json::json!(depends_on);
        write_bytes(path, document.to_string().as_bytes());
    }

    /// Replace `path` with `bytes` by a rename, as the writer does.
    pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) {
        let temporary = path.with_extension("tmp-test");
        std::fs::write(&temporary, bytes).unwrap();
        std::fs::rename(&temporary, path).unwrap();
    }

    fn alive(_: u32, _: u64) -> Option<String> {
        None
    }

    fn dead(pid: u32, _: u64) -> Option<String> {
        Some(format!("its writer (pid {pid}) is gone"))
    }

    fn state(bytes: &str, gone: &dyn Fn(u32, u64) -> Option<String>) -> RequiredState {
        parse(Path::new("/run/dns.json"), bytes.as_bytes(), gone).state
    }

    #[test]
    fn each_health_and_each_freshness_rule() {
        type Gone<'a> = &'a dyn Fn(u32, u64) -> Option<String>;
        let cases: &[(String, Gone, RequiredState)] = &[
            (document("UP", None, 7, 9), &alive, RequiredState::Up),
            (
                document("DEGRADED", Some("slow"), 7, 9),
                &alive,
                RequiredState::Degraded("slow".into()),
            ),
            (
                document("DOWN", Some("refused"), 7, 9),
                &alive,
                RequiredState::Down("refused".into()),
            ),
            (
                document("MAINTENANCE", Some("disable file /x exists"), 7, 9),
                &alive,
                RequiredState::Maintenance("disable file /x exists".into()),
            ),
            (
                document("UP", None, 7, 9),
                &dead,
                RequiredState::Down("state file /run/dns.json: its writer (pid 7) is gone".into()),
            ),
            (
                "{\"version\": 1, \"probe\": ".into(),
                &alive,
                RequiredState::Down(
                    "state file /run/dns.json is malformed: EOF while parsing a value at line 1 column 24"
                        .into(),
                ),
            ),
            (
                document("UP", None, 7, 9).replace("\"version\":1", "\"version\":2"),
                &alive,
                RequiredState::Down(
                    "state file /run/dns.json has schema version 2, this exaprobe reads version 1"
                        .into(),
                ),
            ),
            (
                document("UP", None, 7, 9).replace("\"start_time\":9", "\"start_time\":null"),
                &alive,
                RequiredState::Down(
                    "state file /run/dns.json has no writer start time (written by an older exaprobe)"
                        .into(),
                ),
            ),
            (
                document("SUPER", None, 7, 9),
                &alive,
                RequiredState::Down(
                    "state file /run/dns.json has an unknown health \"SUPER\"".into(),
                ),
            ),
        ];
        for (bytes, gone, expected) in cases {
            assert_eq!(&state(bytes, *gone), expected, "{bytes}");
        }
    }

    #[test]
    fn missing_and_special_files_are_down_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.json");
        let RequiredState::Down(why) = read(&missing).state else {
            panic!("a missing file is DOWN");
        };
        assert!(
            why.starts_with("state file ") && why.contains("none.json"),
            "{why}"
        );
        let RequiredState::Down(why) = read(dir.path()).state else {
            panic!("a directory is DOWN");
        };
        assert!(why.contains(&dir.path().display().to_string()), "{why}");
    }

    #[test]
    fn a_live_writer_counts_and_reasons_stay_one_short_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dns.json");
        let start = crate::engine::require::process::own_start_time().unwrap();
        let long = "x\n".repeat(1000);
        std::fs::write(
            &path,
            document("DOWN", Some(&long), std::process::id(), start),
        )
        .unwrap();
        let RequiredState::Down(why) = read(&path).state else {
            panic!("DOWN as written");
        };
        assert!(
            !why.contains('\n') && why.chars().count() < 700,
            "one short line: {why}"
        );
    }

    #[test]
    fn targets_map_to_health() {
        assert_eq!(
            RequiredState::of_target(Some(Target::Up { penalty: 0 }), None),
            RequiredState::Up
        );
        assert_eq!(
            RequiredState::of_target(Some(Target::Up { penalty: 5 }), Some("slow")),
            RequiredState::Degraded("slow".into())
        );
        assert_eq!(
            RequiredState::of_target(Some(Target::Draining { penalty: 0 }), None).name(),
            "MAINTENANCE"
        );
        assert_eq!(
            RequiredState::of_target(Some(Target::Disabled), None).name(),
            "MAINTENANCE"
        );
        assert_eq!(
            RequiredState::of_target(Some(Target::Down), None).name(),
            "DOWN"
        );
        assert_eq!(RequiredState::of_target(None, None).name(), "DOWN");
    }
}
