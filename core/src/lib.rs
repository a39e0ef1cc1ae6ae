//! exaprobe-core: everything a health probe for ExaBGP does that is not the check itself.
//!
//! A probe crate implements [`Probe`] (one async `check` returning an [`Outcome`]); its binary
//! flattens [`CommonOptions`] beside its own options and calls [`main`]. The core does the rest:
//!
//! - [`probe`]: the trait and the outcome of a check.
//! - `options`, `loader`, `settings`: shared options, layered command line > `EXAPROBE_*`
//!   environment > TOML file > defaults, then validated as a whole.
//! - `route`: prefixes and BGP attributes, validated on parse, rendered as ExaBGP commands.
//! - `health`: the hysteresis state machine (INIT, RISING, UP, FALLING, DOWN, DISABLED), pure.
//! - `exabgp`: the pipe: a reader that always drains stdin, a writer that waits for ACKs.
//! - `output`: the only module that writes to stdout.
//! - `runner`: the schedule, timeouts, signals, disable file, hooks, reload.
//! - [`duration`], [`secret`], `subprocess`: helpers probes share.

pub mod duration;
pub mod probe;
pub mod secret;

pub use probe::{Outcome, Probe};
