//! The probe kit: what every probe needs besides [`crate::Probe`], written once.
//!
//! - [`reason`]: one-line failure reasons (previews of received bytes, error chains, I/O
//!   wording), so every probe words the same failure the same way.
//! - [`events`]: what a service says between checks, reported by a probe's watcher
//!   ([`crate::Probe::watch`]): authoritative (DOWN at once) or a suspicion (check now).
//! - [`backoff`]: the doubling, bounded wait between a watcher's reconnection attempts.
//! - [`parse`]: option value parsers (regexes, byte sizes, durations) and [`parse::Limits`], a
//!   degraded level that must sit below a hard level.
//! - [`udp`]: one datagram out and the answer back over a connected socket, strays ignored and
//!   counted until the deadline (DNS, NTP).
//!
//! - [`address`] (`HOST:PORT` with its IPv6 rule), [`secret`] (password files), [`redact`] (the
//!   one rule that keeps passwords out of targets, logs and errors), [`files`] (operator-given
//!   files read safely), [`subprocess`] (programs run as checks or hooks): also at the crate's
//!   root, where the probes name them.
//!
//! TLS options are the `exaprobe-tls` crate's `TlsArgs`.

pub mod address;
pub mod backoff;
pub(crate) mod dir_watch;
pub(crate) mod escape;
pub mod events;
pub mod files;
pub mod parse;
pub mod reason;
pub mod redact;
pub mod secret;
pub mod subprocess;
pub mod udp;
