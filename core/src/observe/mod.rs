//! What a probe thinks, made visible to monitoring: Prometheus metrics (an endpoint and a
//! textfile for node_exporter), a JSON state file, and syslog.
//!
//! The checker and the deliverer report to an [`Observer`]: a cheap handle whose every call
//! updates atomics and a small model in place and never waits. Files are written by threads of
//! their own ([`writer`]); the endpoint ([`server`]) encodes a snapshot synchronously and
//! serves it from tasks on the same runtime, holding nothing the loops need across an await.
//! A probe adds its own series through [`crate::Probe::gauges`] without the core knowing its
//! kind.

pub(crate) mod clock;
pub(crate) mod logging;
mod metrics;
pub(crate) mod options;
mod server;
pub(crate) mod state_file;
pub(crate) mod syslog;
mod writer;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use options::ObserveOptions;

use crate::engine::health::State;
use crate::engine::render::{RouteAction, RouteCommand};
use crate::engine::route::Prefix;
use crate::kit::events::EventKind;
use crate::probe::{Gauge, Outcome};
use metrics::Metrics;
pub(crate) use state_file::RequiredEntry;
use state_file::{Consecutive, Counters, LastCheck, PrefixState, StateDocument};
use writer::LatestWriter;

/// The observability settings the run uses, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ObserveSettings {
    /// Where to serve `/metrics`.
    pub metrics_listen: Option<SocketAddr>,
    /// Where to write `exaprobe-<name>.prom` after every check.
    pub metrics_textfile: Option<PathBuf>,
    /// Where to write the JSON state.
    pub state_file: Option<PathBuf>,
    /// The probe's kind, from the binary's name (`exaprobe-http` → `http`).
    pub kind: String,
}

/// An observability option that cannot work, found before anything runs. One line naming
/// the option.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ObserveError {
    /// `--state-file` ends in `/` or names no file.
    #[error("--state-file {} names no file", .0.display())]
    StateFileNamesNoFile(PathBuf),
    /// The metrics textfile's path is something it must not replace.
    #[error("--metrics-textfile {}: {}: {error}", dir.display(), path.display())]
    Textfile {
        /// `--metrics-textfile`.
        dir: PathBuf,
        /// `DIR/exaprobe-<name>.prom`.
        path: PathBuf,
        error: crate::kit::files::FileError,
    },
}

impl ObserveSettings {
    /// The settings from `options`, for the binary `binary`.
    pub(crate) fn resolve(options: &ObserveOptions, binary: &str) -> Result<Self, ObserveError> {
        if let Some(file) = &options.state_file
            && (file.file_name().is_none() || file.as_os_str().to_string_lossy().ends_with('/'))
        {
            return Err(ObserveError::StateFileNamesNoFile(file.clone()));
        }
        Ok(ObserveSettings {
            metrics_listen: options.metrics_listen,
            metrics_textfile: options.metrics_textfile.clone(),
            state_file: options.state_file.clone(),
            kind: binary
                .strip_prefix("exaprobe-")
                .unwrap_or(binary)
                .to_string(),
        })
    }
}

impl ObserveSettings {
    /// Refuse, at start and in `--check-config`, a metrics textfile that is not a regular file
    /// (a FIFO, a device, a link at `DIR/exaprobe-<name>.prom`): it would be replaced.
    pub(crate) fn check_files(&self, name: &str) -> Result<(), ObserveError> {
        if let Some(dir) = &self.metrics_textfile {
            let path = textfile_path(dir, name);
            crate::kit::files::check_replaceable(&path).map_err(|error| {
                ObserveError::Textfile {
                    dir: dir.clone(),
                    path,
                    error,
                }
            })?;
        }
        Ok(())
    }
}

/// ExaBGP's answer to a command, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// `done`.
    Done,
    /// `error`.
    Error,
    /// Nothing within `--ack-timeout`.
    Timeout,
}

impl Answer {
    fn label(self) -> &'static str {
        match self {
            Answer::Done => "done",
            Answer::Error => "error",
            Answer::Timeout => "timeout",
        }
    }
}

/// How long the textfile and the state file may lag behind what moves only counters and times
/// (a check with the same result as the last, ExaBGP's answers). A change of state, health,
/// route or check result is written at once.
const FILE_REFRESH: Duration = Duration::from_secs(10);

/// The handle the checker and the deliverer report to. Cloning is cheap; with every output off
/// each call returns at once.
#[derive(Clone, Default)]
pub(crate) struct Observer(Option<Rc<Inner>>);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Observer(on)"
        } else {
            "Observer(off)"
        })
    }
}

struct Inner {
    metrics: Option<Arc<Metrics>>,
    textfile: Option<LatestWriter>,
    state_file: Option<LatestWriter>,
    /// Shared with the state file's writer thread, which copies it under the lock (briefly,
    /// never across an await) and serialises the copy.
    document: Arc<Mutex<StateDocument>>,
}

impl Inner {
    fn document(&self) -> MutexGuard<'_, StateDocument> {
        self.document.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Start what `settings` asks for (the endpoint task, the file writers). Call on the runtime.
pub(crate) fn start(observe: &ObserveSettings, name: &str) -> Observer {
    let wants_metrics = observe.metrics_listen.is_some() || observe.metrics_textfile.is_some();
    if !wants_metrics && observe.state_file.is_none() {
        return Observer(None);
    }
    let now = SystemTime::now();
    let metrics = wants_metrics
        .then(|| Arc::new(Metrics::new(name, &observe.kind, clock::unix_seconds(now))));
    if let (Some(listen), Some(metrics)) = (observe.metrics_listen, &metrics) {
        tokio::spawn(server::serve(listen, Arc::clone(metrics), name.to_string()));
    }
    let textfile = match (&observe.metrics_textfile, &metrics) {
        (Some(dir), Some(metrics)) => {
            let path = textfile_path(dir, name);
            let metrics = Arc::clone(metrics);
            let render: writer::Render = Box::new(move || metrics.text().into_bytes());
            Some(LatestWriter::spawn(
                path,
                "metrics textfile",
                name.to_string(),
                FILE_REFRESH,
                render,
            ))
        }
        _ => None,
    };
    let document = Arc::new(Mutex::new(StateDocument {
        version: state_file::VERSION,
        probe: name.to_string(),
        kind: observe.kind.clone(),
        exaprobe_version: env!("CARGO_PKG_VERSION"),
        pid: std::process::id(),
        start_time: crate::engine::require::process::own_start_time(),
        updated: clock::rfc3339(now),
        state: State::Init.name(),
        since: clock::rfc3339(now),
        flap_held: false,
        health: "DOWN",
        health_reason: Some("starting: no decisive state yet".into()),
        required: Vec::new(),
        depends_on: Vec::new(),
        last_check: None,
        last_event: None,
        consecutive: Consecutive::default(),
        prefixes: BTreeMap::new(),
        counters: Counters {
            checks: metrics::RESULTS.iter().map(|r| (*r, 0)).collect(),
            transitions: 0,
            exabgp_commands: metrics::ANSWERS.iter().map(|a| (*a, 0)).collect(),
            events: metrics::EVENT_KINDS.iter().map(|k| (*k, 0)).collect(),
        },
    }));
    let state_file = observe.state_file.clone().map(|path| {
        let document = Arc::clone(&document);
        let render: writer::Render = Box::new(move || {
            let mut copy = document.lock().unwrap_or_else(|p| p.into_inner()).clone();
            copy.updated = clock::rfc3339(SystemTime::now());
            copy.to_bytes()
        });
        LatestWriter::spawn(path, "state file", name.to_string(), FILE_REFRESH, render)
    });
    let observer = Observer(Some(Rc::new(Inner {
        metrics,
        textfile,
        state_file,
        document,
    })));
    observer.write();
    observer
}

impl Observer {
    /// Whether anything is exported (metrics, a state file): then every check counts.
    pub(crate) fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// A check ended (`None`: the disable file exists, with `disabled` as the reason); the
    /// hysteresis is now in `state`; the probe reports `gauges`.
    pub(crate) fn checked(
        &self,
        result: Option<&(Outcome, Duration)>,
        disabled: Option<&str>,
        state: State,
        held: bool,
        gauges: Vec<Gauge>,
    ) {
        let Some(inner) = &self.0 else { return };
        let label = result.map(|(outcome, _)| match outcome {
            Outcome::Healthy => "healthy",
            Outcome::Degraded { .. } => "degraded",
            Outcome::Unhealthy { .. } => "unhealthy",
        });
        if let Some(metrics) = &inner.metrics {
            if let (Some(label), Some((_, elapsed))) = (label, result) {
                metrics.checked(label, elapsed.as_secs_f64());
            }
            metrics.set_state(&state.name().to_ascii_lowercase());
            metrics.set_probe_gauges(gauges);
        }
        let news = {
            let mut document = inner.document();
            let now = clock::rfc3339(SystemTime::now());
            let checked = label.unwrap_or("disabled");
            let reason = match result {
                Some((outcome, _)) => outcome.reason().map(str::to_owned),
                None => disabled.map(str::to_owned),
            };
            // What a reader acts on: the result and its reason, the state, the hold.
            let news = document
                .last_check
                .as_ref()
                .is_none_or(|last| last.result != checked || last.reason != reason)
                || document.state != state.name()
                || document.flap_held != held;
            document.last_check = Some(LastCheck {
                result: checked,
                reason,
                at: now,
                duration_seconds: result.map(|(_, elapsed)| elapsed.as_secs_f64()),
            });
            match result {
                Some((outcome, _)) if outcome.is_serving() => {
                    document.consecutive.successes += 1;
                    document.consecutive.failures = 0;
                }
                Some(_) => {
                    document.consecutive.failures += 1;
                    document.consecutive.successes = 0;
                }
                None => document.consecutive = Consecutive::default(),
            }
            if let Some(label) = label {
                *document.counters.checks.entry(label).or_default() += 1;
            }
            document.state = state.name();
            document.flap_held = held;
            news
        };
        // The same result again moves only counters and times: written within the refresh.
        if news {
            self.write();
        } else {
            self.write_later();
        }
    }

    /// `count` events of `kind` came, the last saying `reason` (`--events`).
    pub(crate) fn event(&self, kind: EventKind, count: u64, reason: &str) {
        let Some(inner) = &self.0 else { return };
        if count == 0 {
            return;
        }
        if let Some(metrics) = &inner.metrics {
            metrics.events(kind.name(), count);
        }
        {
            let mut document = inner.document();
            *document.counters.events.entry(kind.name()).or_default() += count;
            document.last_event = Some(state_file::LastEvent {
                kind: kind.name(),
                reason: reason.to_owned(),
                at: clock::rfc3339(SystemTime::now()),
            });
        }
        self.write();
    }

    /// The state changed (by name) to `to`.
    pub(crate) fn transition(&self, to: State) {
        let Some(inner) = &self.0 else { return };
        let now = SystemTime::now();
        if let Some(metrics) = &inner.metrics {
            metrics.transition(clock::unix_seconds(now));
            metrics.set_state(&to.name().to_ascii_lowercase());
        }
        {
            let mut document = inner.document();
            document.counters.transitions += 1;
            document.state = to.name();
            document.since = clock::rfc3339(now);
        }
        self.write();
    }

    /// What the routes say now, for the probes requiring this one.
    pub(crate) fn health(&self, health: &crate::engine::require::RequiredState) {
        let Some(inner) = &self.0 else { return };
        {
            let mut document = inner.document();
            let reason = health.reason().map(str::to_owned);
            if document.health == health.name() && document.health_reason == reason {
                return;
            }
            document.health = health.name();
            document.health_reason = reason;
        }
        self.write();
    }

    /// The required probes' states and every state file this probe depends on.
    pub(crate) fn required(&self, required: Vec<RequiredEntry>, depends_on: Vec<String>) {
        let Some(inner) = &self.0 else { return };
        if let Some(metrics) = &inner.metrics {
            for entry in &required {
                metrics.required(&entry.probe, matches!(entry.health, "UP" | "DEGRADED"));
            }
        }
        {
            let mut document = inner.document();
            if document.required == required && document.depends_on == depends_on {
                return;
            }
            document.required = required;
            document.depends_on = depends_on;
        }
        self.write();
    }

    /// ExaBGP took `action` for `prefix` (`confirmed`: it answered `done`).
    pub(crate) fn accepted(&self, prefix: &Prefix, action: &RouteCommand, confirmed: bool) {
        let Some(inner) = &self.0 else { return };
        let command = action.lines.last().cloned().unwrap_or_default();
        let med = match action.action {
            RouteAction::Announce { med } => Some(med),
            RouteAction::Withdraw => None,
        };
        let prefix = prefix.to_string();
        if let Some(metrics) = &inner.metrics {
            metrics.route(&prefix, med);
        }
        inner.document().prefixes.insert(
            prefix,
            PrefixState {
                action: if action.announces() {
                    "announce"
                } else {
                    "withdraw"
                },
                med,
                command,
                confirmed,
                at: clock::rfc3339(SystemTime::now()),
            },
        );
        self.write();
    }

    /// ExaBGP does not hold `prefix` after all (it rejected a command after `--ack-timeout`).
    pub(crate) fn not_held(&self, prefix: &Prefix) {
        let Some(inner) = &self.0 else { return };
        let prefix = prefix.to_string();
        if let Some(metrics) = &inner.metrics {
            metrics.route(&prefix, None);
        }
        inner.document().prefixes.remove(&prefix);
        self.write();
    }

    /// ExaBGP answered `count` commands with `answer`.
    pub(crate) fn answered(&self, answer: Answer, count: usize) {
        let Some(inner) = &self.0 else { return };
        if count == 0 {
            return;
        }
        if let Some(metrics) = &inner.metrics {
            metrics.answered(answer.label(), count as u64);
        }
        *inner
            .document()
            .counters
            .exabgp_commands
            .entry(answer.label())
            .or_default() += count as u64;
        // Counters only (what ExaBGP then holds is `accepted`'s news).
        self.write_later();
    }

    /// Have the writer threads write the textfile and the state file now (they render them).
    fn write(&self) {
        let Some(inner) = &self.0 else { return };
        for writer in [&inner.textfile, &inner.state_file].into_iter().flatten() {
            writer.poke();
        }
    }

    /// The same, within [`FILE_REFRESH`]: for what moves only counters and times.
    fn write_later(&self) {
        let Some(inner) = &self.0 else { return };
        for writer in [&inner.textfile, &inner.state_file].into_iter().flatten() {
            writer.poke_later();
        }
    }
}

/// The metrics textfile of the probe `name` in `dir`.
fn textfile_path(dir: &std::path::Path, name: &str) -> PathBuf {
    dir.join(format!("exaprobe-{}.prom", file_safe(name)))
}

/// `name` as part of a file name: anything but letters, digits, `.`, `_` and `-` becomes `_`.
fn file_safe(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match safe.strip_prefix('.') {
        Some(rest) => format!("_{rest}"),
        None => safe,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_comes_from_the_binary_and_names_are_file_safe() {
        let settings =
            ObserveSettings::resolve(&ObserveOptions::default(), "exaprobe-http").unwrap();
        assert_eq!(settings.kind, "http");
        assert_eq!(file_safe("web/front end"), "web_front_end");
        assert_eq!(file_safe(".."), "_.");
        assert_eq!(file_safe("db-ro.1"), "db-ro.1");
        let bad = ObserveOptions {
            state_file: Some("/var/lib/exaprobe/".into()),
            ..ObserveOptions::default()
        };
        assert_eq!(
            ObserveSettings::resolve(&bad, "exaprobe-http")
                .unwrap_err()
                .to_string(),
            "--state-file /var/lib/exaprobe/ names no file"
        );
    }
}
