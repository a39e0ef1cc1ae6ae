//! `--once`: run the check one time and print a Nagios-style status line.

use std::process::ExitCode;

use crate::config::exit::Exit;
use crate::config::settings::Settings;
use crate::engine::runner::checker::{millis, timed_check};
use crate::probe::{Outcome, Probe};

/// Run the check once and print `NAME OK|WARNING|CRITICAL - ...` to `out` (stdout, a test's
/// buffer); exit 0, 1 or 2.
pub(crate) async fn once<P: Probe>(
    mut probe: P,
    settings: &Settings,
    out: &mut dyn std::io::Write,
) -> ExitCode {
    let label = settings.name.to_uppercase();
    if let Some(file) = settings.disable_file.as_deref().filter(|f| f.exists()) {
        let _ = writeln!(
            out,
            "{label} WARNING - disabled: maintenance file {} exists",
            file.display()
        );
        let _ = out.flush();
        return Exit::Warning.into();
    }
    let (outcome, elapsed) = timed_check(&mut probe, &settings.timing).await;
    let perf = format!("| time={:.3}s", elapsed.as_secs_f64());
    let (outcome, perf) = with_required(outcome, perf, settings);
    let target = probe.describe();
    let (code, line) = match &outcome {
        Outcome::Healthy => (
            Exit::Ok,
            format!(
                "{label} OK - {target}: healthy in {} {perf}",
                millis(elapsed)
            ),
        ),
        Outcome::Degraded { reason, .. } => (
            Exit::Warning,
            format!("{label} WARNING - {target}: {reason} {perf}"),
        ),
        Outcome::Unhealthy { reason } => (
            Exit::Critical,
            format!("{label} CRITICAL - {target}: {reason} {perf}"),
        ),
    };
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    code.into()
}

/// The own outcome made the worst of it and the required probes' verdict (`--require`), and
/// each required probe's state appended to the status line.
fn with_required(outcome: Outcome, perf: String, settings: &Settings) -> (Outcome, String) {
    use crate::engine::require::RequiredState;
    if settings.require.files.is_empty() {
        return (outcome, perf);
    }
    let (each, verdict) = crate::engine::require::read_once(&settings.require);
    let shown: Vec<String> = each
        .iter()
        .map(|(name, state)| format!("{name} {}", state.name()))
        .collect();
    let perf = format!("(required: {}) {perf}", shown.join(", "));
    let outcome = match (&verdict, outcome) {
        (
            RequiredState::Down(why) | RequiredState::Maintenance(why),
            Outcome::Healthy | Outcome::Degraded { .. },
        ) => {
            if matches!(verdict, RequiredState::Down(_)) {
                Outcome::unhealthy(why.clone())
            } else {
                Outcome::degraded(format!("maintenance: {why}"))
            }
        }
        (RequiredState::Degraded(why), Outcome::Healthy) => Outcome::degraded(why.clone()),
        (_, own) => own,
    };
    (outcome, perf)
}
