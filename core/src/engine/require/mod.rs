//! Required probes (`--require`): one route gated by several checks, each its own exaprobe.
//!
//! A probe may require other probes' `--state-file`s. Its routes then say the worst of its own
//! check and what the required probes say ([`rule`]): a required probe DOWN fails the route at
//! once, DEGRADED adds `--degraded-penalty`, MAINTENANCE puts this probe in maintenance too.
//! A state file counts only while it is fresh ([`state`]): written by this schema version, by
//! a process still running since the start time it recorded ([`process`]); anything else is
//! DOWN, naming the file. The [`watcher`] re-reads the files the moment they change (inotify
//! on their directories, so the writer's atomic rename is seen) and notices a dead writer
//! within a second, and the checker re-decides at once, without waiting for its interval.
//!
//! - `options`: `--require`, `--require-min`, `--no-routes`, and their validation.
//! - [`process`]: a writer's pid and start time.
//! - [`state`]: reading one state file, with freshness.
//! - [`rule`]: the combination rule (pure).
//! - [`watcher`]: the files watched and their current verdict.

mod options;
pub(crate) mod process;
pub(crate) mod rule;
pub(crate) mod state;
mod watcher;

pub(crate) use options::{RequireOptions, RequireSettings};
pub(crate) use state::RequiredState;
pub(crate) use watcher::Requirements;

/// Each required probe read once now (name, file, state) and their verdict, for `--once`.
pub(crate) fn read_once(
    settings: &RequireSettings,
) -> (Vec<(String, RequiredState)>, RequiredState) {
    let each: Vec<(String, RequiredState)> = settings
        .files
        .iter()
        .map(|file| {
            let reading = state::read(file);
            let name = reading.probe.unwrap_or_else(|| file.display().to_string());
            (name, reading.state)
        })
        .collect();
    let named: Vec<rule::Named> = each
        .iter()
        .map(|(name, state)| rule::Named { name, state })
        .collect();
    let verdict = rule::combine(&named, settings.min);
    (each, verdict)
}

/// The requirements as `--check-config` shows them, one line each.
pub(crate) fn describe(settings: &RequireSettings) -> Vec<String> {
    let mut lines = Vec::new();
    if settings.no_routes {
        lines.push("routes: none (--no-routes): only the state file is published".to_string());
    }
    if settings.files.is_empty() {
        return lines;
    }
    let count = settings.files.len();
    let min = settings.min.unwrap_or(count);
    lines.push(format!(
        "require: {min} of {count} required probes UP or DEGRADED (DOWN fails the route at once, MAINTENANCE is maintenance)"
    ));
    for file in &settings.files {
        lines.push(format!("require: {}", file.display()));
    }
    lines
}
