//! The probe kit: what every probe needs besides [`crate::Probe`], written once.
//!
//! - [`reason`]: one-line failure reasons (previews of received bytes, error chains, I/O
//!   wording), so every probe words the same failure the same way.
//! - [`events`]: what a service says between checks, reported by a probe's watcher
//!   ([`crate::Probe::watch`]): authoritative (DOWN at once) or a suspicion (check now).
//! - [`parse`]: option value parsers (regexes, byte sizes, durations) and [`parse::Limits`], a
//!   degraded level that must sit below a hard level.
//! - [`udp`]: one datagram out and the answer back over a connected socket, strays ignored and
//!   counted until the deadline (DNS, NTP).
//!
//! Addresses (`HOST:PORT`), password files and redaction live in [`crate::address`],
//! [`crate::secret`] and [`crate::redact`]; TLS options in the `exaprobe-tls` crate's `TlsArgs`.

pub mod events;
pub mod parse;
pub mod reason;
pub mod udp;
