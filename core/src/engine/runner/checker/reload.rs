//! SIGHUP: the new configuration read off the runtime under a timeout, then applied: the
//! probe and its watcher replaced, the prefixes it removed retired (drained with `--drain`
//! while UP, then withdrawn under the configuration they came from).

use super::*;

/// Reload callback: re-read the options and build a new probe (SIGHUP). Runs on the blocking
/// pool, so it may read files.
pub(crate) type Reload<P> = Box<dyn FnMut() -> Result<(Settings, P), ReloadError> + Send>;

/// Why SIGHUP's new configuration was refused (the running one is kept). One line each.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReloadError {
    /// An option, the environment or the config file.
    #[error(transparent)]
    Load(#[from] crate::config::load_error::LoadError),
    /// A combination of options.
    #[error(transparent)]
    Settings(#[from] crate::config::settings::SettingsError),
    /// The drop-in's addresses (`lo`'s, read again) or IP set-up options.
    #[error(transparent)]
    DropIn(#[from] crate::compat::CompatError),
    /// The probe refused its options.
    #[error("{}", crate::kit::escape::one_line(&format!("{:#}", .0)))]
    Probe(anyhow::Error),
    /// The new configuration has no `--prefix`/`--ip` while the running one has.
    #[error(
        "the new configuration gives no --prefix/--ip: refusing to switch to the addresses of lo (give the prefixes, or restart the probe to use discovery)"
    )]
    NoPrefixes,
}

/// A prefix a reload removed, as its old configuration renders it.
#[derive(Debug, Clone)]
pub(super) struct Retired {
    pub(super) drain: Option<RouteCommand>,
    pub(super) withdraw: RouteCommand,
}

impl<P: Probe + Send + 'static> Checker<P> {
    /// SIGHUP: re-read the options off the runtime thread; withdraw removed prefixes and
    /// re-plan the rest. A failed or hung reload keeps the running configuration.
    pub(super) async fn reload(&mut self) {
        if self
            .reloading
            .as_ref()
            .is_some_and(|job| !job.is_finished())
        {
            tracing::warn!("SIGHUP: the previous reload is still running; ignored");
            return;
        }
        let mut job = match self.reloading.take() {
            Some(finished) => finished,
            None => {
                let reload = Arc::clone(&self.reload);
                off_the_runtime(move || {
                    let mut reload = reload
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    reload()
                })
            }
        };
        let loaded = match timeout(RELOAD_TIMEOUT, &mut job).await {
            Ok(Ok(Ok(loaded))) => loaded,
            Ok(Ok(Err(error))) => {
                tracing::error!(%error, "reload failed; keeping the running configuration");
                return;
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "reload failed; keeping the running configuration");
                return;
            }
            Err(_) => {
                tracing::error!(
                    timeout = ?RELOAD_TIMEOUT,
                    "reload did not finish in time (a hung file system?); keeping the running configuration"
                );
                self.reloading = Some(job);
                return;
            }
        };
        self.apply(loaded);
    }

    pub(super) fn apply(&mut self, (mut settings, probe): (Settings, P)) {
        if settings.detect_dialect
            && let Some(dialect) = self.detected
        {
            settings.routes.dialect = dialect;
        }
        let old = std::mem::replace(&mut self.settings, settings);
        self.probe = probe;
        // The new probe's steady check (the old one's thread has landed: a reload is served
        // on the ground).
        self.autopilot = super::Autopilot::new(self.probe.steady(), self.autopilot.grounding());
        self.last_outcome = None;
        self.listening
            .restart(&self.probe, self.settings.timing.events);
        if self.settings.require != old.require {
            self.required = Requirements::new(
                &self.settings.require,
                self.settings.observe.state_file.as_deref(),
            );
            self.required_changed();
        }
        self.router
            .reconfigure(self.settings.hysteresis, self.settings.safety);
        let withdraws = old.routes.plan(Target::Gone);
        let kept = |prefix: &Prefix| self.settings.routes.prefixes.contains(prefix);
        // Forget prefixes configured again; the ones ExaBGP holds nothing for are forgotten
        // when the deliverer says so (`forget_retired`), so reloads cannot grow this.
        self.retired.retain(|prefix, _| !kept(prefix));
        self.generation += 1;
        let removed: Vec<Prefix> = old
            .routes
            .prefixes
            .iter()
            .filter(|prefix| !kept(prefix))
            .copied()
            .collect();
        // With --drain, prefixes removed while UP are drained first, then withdrawn: the
        // router decides how long, and ends the drain at once if the service fails.
        let draining = !removed.is_empty() && self.router.retire(Instant::now()).is_some();
        let drains = match self.router.retired_target() {
            target @ Target::Draining { .. } if draining => Some(old.routes.plan(target)),
            _ => None,
        };
        for prefix in &removed {
            let Some(withdraw) = withdraws.get(prefix) else {
                continue;
            };
            let drain = drains.as_ref().and_then(|plan| plan.get(prefix)).cloned();
            self.retired.insert(
                *prefix,
                Retired {
                    drain,
                    withdraw: withdraw.clone(),
                },
            );
        }
        tracing::info!(
            target = %self.probe.describe(),
            prefixes = self.settings.routes.prefixes.len(),
            removed = removed.len(),
            "configuration reloaded"
        );
        let settings = &self.settings;
        let mut farewell = settings.routes.plan(Target::Gone);
        for (prefix, retired) in &self.retired {
            farewell
                .entry(*prefix)
                .or_insert_with(|| retired.withdraw.clone());
        }
        let generation = self.generation;
        self.desired.send_modify(|desired| {
            desired.generation = generation;
            desired.farewell = farewell;
            desired.ack = settings.ack;
            desired.dialect = settings.routes.dialect;
            desired.refresh = settings.timing.refresh_interval;
        });
        self.publish();
    }
}
