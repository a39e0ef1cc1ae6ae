//! exaprobe-core: everything a health probe for ExaBGP does that is not the check itself.
//!
//! A probe crate implements [`Probe`] (one async `check` returning an [`Outcome`]) and a
//! `clap::Args` struct of its options; its binary is one call to [`main`] with a [`Binary`] and a
//! closure building the probe. The core does the rest:
//!
//! - [`probe`]: the trait and the outcome of a check.
//! - [`options`]: the options every probe shares; [`loader`] layers them (command line >
//!   `EXAPROBE_*` environment > TOML file > defaults); [`settings`] validates them as a whole.
//! - [`route`]: prefixes and BGP attributes, validated on parse; [`render`]: the ExaBGP commands
//!   for each state, in the 4.x/5.x or 6.x dialect; [`dialect`]: which dialect ExaBGP speaks
//!   (its answer to `system version`) and a clear line when the one in use looks wrong.
//! - [`health`]: the hysteresis state machine (INIT, RISING, UP, FALLING, DOWN, DISABLED), pure;
//!   `routing`: drain before a planned withdraw (RFC 8326) and flap damping above it, pure.
//! - [`exabgp`]: what ExaBGP writes to stdin: a reader that always drains it.
//! - [`output`]: the only module that writes to stdout.
//! - [`runner`]: a checker (schedule, hysteresis, disable file, reload) and a deliverer
//!   (converges ExaBGP to the desired routes) under a supervisor serving signals; `--once`.
//! - [`hooks`]: commands run on state changes. [`subprocess`]: process-group handling.
//! - [`observe`]: Prometheus metrics (endpoint, textfile), the JSON state file, syslog.
//! - [`app`]: the binaries' `main`, modes and exit codes. [`logging`]: stderr, text or JSON.
//! - [`docs`]: man pages and completions from the clap definitions, for packaging.
//! - [`duration`], [`size`], [`address`], [`secret`]: parsing helpers probes share (durations,
//!   byte sizes, `HOST:PORT` with its IPv6 rule, password files). [`files`]: reading
//!   operator-given files safely (regular files only, capped, with a deadline). [`escape`]:
//!   one-line-safe text.
//! - [`redact`]: the one rule that keeps passwords out of every target, log line and error.
//!
//! Binaries call `exaprobe_core::main` (`pub fn main` in [`app`]).

pub mod address;
pub mod app;
pub mod dialect;
pub mod docs;
pub mod duration;
pub mod escape;
pub mod exabgp;
pub mod files;
pub mod health;
pub mod hooks;
pub mod loader;
pub mod logging;
pub mod observe;
pub mod options;
pub mod output;
pub mod probe;
pub mod redact;
pub mod render;
pub mod route;
mod routing;
pub mod runner;
pub mod secret;
pub mod settings;
pub mod size;
pub mod subprocess;

pub use app::main;
pub use observe::Gauge;
pub use options::{Binary, Cli, CommonOptions};
pub use probe::{Outcome, Probe};
