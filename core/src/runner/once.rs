//! `--once`: run the check one time and print a Nagios-style status line.

use std::process::ExitCode;

use crate::probe::{Outcome, Probe};
use crate::runner::checker::{millis, timed_check};
use crate::settings::Settings;

/// Run the check once and print `NAME OK|WARNING|CRITICAL - ...`; exit 0, 1 or 2.
pub async fn once<P: Probe>(mut probe: P, settings: &Settings) -> ExitCode {
    let label = settings.name.to_uppercase();
    if let Some(file) = settings.disable_file.as_deref().filter(|f| f.exists()) {
        crate::output::print_line(&format!(
            "{label} WARNING - disabled: maintenance file {} exists",
            file.display()
        ));
        return ExitCode::from(1);
    }
    let (outcome, elapsed) = timed_check(&mut probe, &settings.timing).await;
    let perf = format!("| time={:.3}s", elapsed.as_secs_f64());
    let target = probe.describe();
    let (code, line) = match &outcome {
        Outcome::Healthy => (
            0,
            format!(
                "{label} OK - {target}: healthy in {} {perf}",
                millis(elapsed)
            ),
        ),
        Outcome::Degraded { reason, .. } => {
            (1, format!("{label} WARNING - {target}: {reason} {perf}"))
        }
        Outcome::Unhealthy { reason } => {
            (2, format!("{label} CRITICAL - {target}: {reason} {perf}"))
        }
    };
    crate::output::print_line(&line);
    ExitCode::from(code)
}
