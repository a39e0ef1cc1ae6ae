//! The configuration: the options every probe shares, where their values come from, and the
//! settings validated as a whole. Depends on nothing else of the core but the kit and the
//! types it configures.

pub(crate) mod docs;
pub(crate) mod duration;
pub(crate) mod exit;
pub(crate) mod load_error;
pub(crate) mod loader;
pub(crate) mod numbers;
pub(crate) mod options;
pub(crate) mod settings;
pub(crate) mod size;
