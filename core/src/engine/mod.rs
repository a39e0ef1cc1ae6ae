//! The engine: from check results and time to the commands on ExaBGP's pipe. The pure parts
//! (`health`, `routing`, `route`, `render`, `dialect`) decide; the `runner` drives them and does
//! the I/O.

pub(crate) mod dialect;
pub(crate) mod exabgp;
pub(crate) mod health;
pub(crate) mod hooks;
pub(crate) mod output;
pub(crate) mod render;
pub(crate) mod require;
pub(crate) mod route;
pub(crate) mod routing;
pub(crate) mod runner;
