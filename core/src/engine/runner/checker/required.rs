//! The required probes (`--require`) as the checker applies them: DOWN and DEGRADED through
//! the router at once, maintenance through the disable file's path.

use super::*;

impl<P: Probe + Send + 'static> Checker<P> {
    /// `Some(reason)` while the required probes put this probe in maintenance.
    pub(super) fn required_maintenance(&self) -> Option<String> {
        match self.required.verdict() {
            RequiredState::Maintenance(why) => Some(why.clone()),
            _ => None,
        }
    }

    /// The required probes changed: DOWN and DEGRADED go through the router at once;
    /// entering or leaving maintenance takes the disable file's path, so the caller checks
    /// now when this returns true.
    pub(super) fn required_changed(&mut self) -> bool {
        let verdict = self.required.verdict().clone();
        let previous = std::mem::replace(&mut self.required_verdict, verdict.clone());
        let shown: Vec<String> = self
            .required
            .each()
            .map(|(name, _, state)| format!("{name}: {state}"))
            .collect();
        let shown = shown.join("; ");
        // Logged when a state changes by name; a required probe's new reason alone (its next
        // failed check) is debug, so a DOWN dependency does not log at its check rate.
        let names = |v: &RequiredState| v.name();
        let renamed = names(&verdict) != names(&previous)
            || self.status.borrow().required_names != self.required_names();
        match &verdict {
            _ if !renamed => tracing::debug!(required = %shown, "required probes"),
            RequiredState::Up => tracing::info!(required = %shown, "required probes: UP"),
            other => tracing::warn!(required = %shown, verdict = %other, "required probes"),
        }
        let entries = self
            .required
            .each()
            .map(|(name, file, state)| crate::observe::RequiredEntry {
                file: file.display().to_string(),
                probe: name,
                health: state.name(),
                reason: state.reason().map(str::to_owned),
            })
            .collect();
        {
            let mut status = self.status.borrow_mut();
            status.required = shown;
            status.required_names = self.required_names();
            status
                .observer
                .required(entries, self.required.depends_on());
        }
        let penalty = match verdict {
            RequiredState::Degraded(_) => self.settings.timing.degraded_penalty,
            _ => 0,
        };
        let from = self.router.state();
        let down = matches!(verdict, RequiredState::Down(_));
        let events = self.router.require(Instant::now(), down, penalty);
        let reason = verdict.reason().unwrap_or("required probes UP").to_string();
        self.transitioned(from, &reason);
        self.log_events(&events);
        self.publish();
        let maintenance = |v: &RequiredState| matches!(v, RequiredState::Maintenance(_));
        maintenance(&verdict) != maintenance(&previous)
    }

    /// Each required probe's state by name only (`dns UP, uplink DOWN`).
    pub(super) fn required_names(&self) -> String {
        let names: Vec<String> = self
            .required
            .each()
            .map(|(name, _, state)| format!("{name} {}", state.name()))
            .collect();
        names.join(", ")
    }
}
