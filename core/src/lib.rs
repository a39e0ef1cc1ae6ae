//! exaprobe-core: everything a health probe for ExaBGP does that is not the check itself.
//!
//! The folders are the architecture. Dependencies go one way, `config` -> `engine`, with
//! `compat` and `observe` beside the engine (they read the configuration, the engine reports to
//! `observe`; nothing in `config` names them back), and `kit` under everything
//! (`core/tests/module_graph.rs` fails on a cycle):
//!
//! - [`Probe`] (`probe.rs`): the one trait a probe implements (an async `check(deadline)`
//!   returning an [`Outcome`], [`Finding`] for the steps of a check, an optional
//!   [`Probe::watch`] for events), and [`main`] (`app.rs`), which its binary calls with a
//!   [`Binary`] and a closure building the probe from its options and the [`CommonOptions`];
//!   `main` gathers the process's argv, environment and streams for `app::run`, which is
//!   tested in-process (`app/tests.rs`).
//! - [`kit`] (public): what every probe needs besides the trait, written once: reasons, option
//!   parsers, one UDP exchange, events; [`address`] (`HOST:PORT`), [`secret`] (password files),
//!   [`files`] (operator-given files read safely), [`redact`] (passwords out of every target,
//!   log line and error), [`subprocess`] (programs run as checks or hooks, everything they
//!   started killed and reaped), [`netlink`] (one rtnetlink round trip).
//! - `config`: the options every probe shares (`options`), layering (`loader`: command line >
//!   `EXAPROBE_*` > TOML file > defaults), validation as a whole (`settings`, pure: no I/O),
//!   durations and sizes, every exit code (`exit`), man pages and completions (`docs`).
//! - `engine`: what runs under ExaBGP. `health` (the hysteresis) and `routing` (drain, damping,
//!   required probes and events above it: every routing decision, pure, time a parameter);
//!   `route` and `render` (prefixes and the ExaBGP commands per state), `dialect`; `runner` (a
//!   checker, with its autopilot for steady checks, and a deliverer under a supervisor serving
//!   signals; `--once`); `exabgp` (what
//!   ExaBGP writes to stdin), `output` (the only writer of stdout), `hooks`, `require`
//!   (`--require`: other probes' state files watched).
//! - `compat`: the `exabgp healthcheck` drop-in behind one interface `app` calls (`prepare`,
//!   then `DropIn::check` and `DropIn::start`): its options (in exaprobe-exec's help only), its
//!   argv expansion (`-sF`, the `-F` file, once per load), address discovery and set-up on `lo`
//!   through netlink (`interfaces`, `ip_setup`, `ip_claims`), the pid file, the privilege drop,
//!   signals during set-up.
//! - `observe`: logging (stderr, text or JSON, syslog), Prometheus metrics (endpoint,
//!   textfile), the JSON state file; a probe adds its own series through [`Probe::gauges`] and
//!   [`Gauge`].
//! - `fuzzing` (feature `fuzzing`): entry points for the fuzz targets and end-to-end tests.

mod app;
mod compat;
mod config;
mod engine;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod kit;
mod observe;
mod probe;

pub use kit::{address, files, redact, secret, subprocess};

/// rtnetlink round trips, for a probe that reads the kernel's tables (a default route's
/// gateway): one request on a socket of its own, the replies until done.
pub mod netlink {
    pub use crate::compat::interfaces::{interface_index, request};
}

pub use app::main;
pub use config::options::{Binary, CommonOptions};
pub use probe::{Finding, Gauge, Outcome, Probe, SteadyCheck, SteadyEnd, Watcher};
