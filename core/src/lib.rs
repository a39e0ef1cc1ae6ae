//! exaprobe-core: everything a health probe for ExaBGP does that is not the check itself.
//!
//! What a probe crate uses (the rest is private):
//!
//! - [`Probe`] (one async `check(deadline)` returning an [`Outcome`]; [`Finding`] for the steps
//!   of a check) and a `clap::Args` struct of its options; its binary is one call to [`main`]
//!   with a [`Binary`] (name, description, the man page's example and environment) and a
//!   closure building the probe from its options and the [`CommonOptions`].
//! - [`kit`]: reasons (previews, error chains, I/O wording), option parsers (regexes, sizes,
//!   durations, a degraded level below a hard one) and one UDP request and its answer (strays
//!   ignored), written once for every probe.
//! - [`address`] (`HOST:PORT` with its IPv6 rule), [`secret`] (password files), [`files`]
//!   (operator-given files read safely), [`redact`] (the one rule that keeps passwords out of
//!   every target, log line and error), [`subprocess`] (programs run as checks or hooks:
//!   output read as it comes, everything they started killed and reaped), [`netlink`] (one
//!   rtnetlink round trip, for a probe reading the kernel's routes).
//!
//! Inside, private to the core:
//!
//! - `options` (the options every probe shares), `loader` (command line > `EXAPROBE_*` > TOML
//!   file > defaults), `settings` (validated as a whole), `exit` (every exit code).
//! - `route` (prefixes and BGP attributes, validated on parse), `render` (the ExaBGP commands
//!   for each state, in the 4.x/5.x or 6.x dialect), `dialect` (which one ExaBGP speaks).
//! - `health` (the hysteresis, pure) and `routing` (drain and flap damping above it, pure).
//! - `runner`: a checker (schedule, hysteresis, disable file, reload) and a deliverer
//!   (converges ExaBGP to the desired routes) under a supervisor serving signals; `--once`.
//! - `exabgp` (what ExaBGP writes to stdin), `output` (the only module writing stdout),
//!   `logging` (stderr, text or JSON), `hooks`, `docs` (man pages and completions).
//! - `observe`: Prometheus metrics (endpoint, textfile), the JSON state file, syslog; a probe
//!   adds its own series through [`Probe::gauges`] and [`Gauge`].
//! - `compat` and around it (`healthcheck_file`, `interfaces`, `ip_setup`, `pidfile`,
//!   `privileges`): the options of `exabgp healthcheck` exaprobe had not, its `-F` file,
//!   address discovery and set-up on `lo` through netlink, the pid file, the privilege drop.
//! - `fuzzing` (feature `fuzzing`): entry points for the fuzz targets and end-to-end tests.

pub mod address;
mod app;
// `exabgp healthcheck` compatibility (issue 20): its options, its config file, address
// discovery and set-up on `lo`, pid file, privilege drop.
mod compat;
mod dialect;
mod docs;
mod duration;
mod escape;
mod exabgp;
mod exit;
pub mod files;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod health;
mod healthcheck_file;
mod hooks;
mod interfaces;
mod ip_claims;
mod ip_setup;
pub mod kit;
/// rtnetlink round trips, for a probe that reads the kernel's tables (a default route's
/// gateway): one request on a socket of its own, the replies until done.
pub mod netlink {
    pub use crate::interfaces::{interface_index, request};
}
mod loader;
mod logging;
mod observe;
mod options;
mod output;
mod pidfile;
mod privileges;
mod probe;
pub mod redact;
mod render;
// Required probes (`--require`): state files read with freshness, the combination rule, the
// watcher.
mod require;
mod route;
mod routing;
mod runner;
pub mod secret;
mod settings;
mod size;
mod stop_signals;
pub mod subprocess;

pub use app::main;
pub use observe::Gauge;
pub use options::{Binary, CommonOptions};
pub use probe::{Finding, Outcome, Probe, Watcher};
