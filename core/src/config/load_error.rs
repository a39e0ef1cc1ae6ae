//! Why options could not be loaded, and the exit code it means: its own module, so that what
//! reads options for the loader (the healthcheck's `-F` file) can fail without depending on it.

use std::fmt;

use crate::config::exit::Exit;
use crate::kit::escape::one_line;

/// Why options could not be loaded.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// `--help` or `--version`: clap prints it (exit 0).
    Display(clap::Error),
    /// A mistake on the command line (sysexits EX_USAGE, 64). One line, without the binary name.
    Usage(String),
    /// A mistake in the environment or the config file (sysexits EX_CONFIG, 78). One line.
    Config(String),
}

impl LoadError {
    /// The error as one printable line (control and bidi characters escaped), without the
    /// binary's name: what `main` prints after `exaprobe-x: `, and what a reload (SIGHUP) logs as
    /// one field.
    pub(crate) fn message(&self) -> String {
        match self {
            LoadError::Display(error) => {
                one_line(error.render().to_string().lines().next().unwrap_or(""))
            }
            LoadError::Usage(message) | LoadError::Config(message) => one_line(message),
        }
    }

    /// How the binary ends: OK for `--help`/`--version`, usage for the command line, config
    /// otherwise.
    pub(crate) fn exit(&self) -> Exit {
        match self {
            LoadError::Display(error) if !error.use_stderr() => Exit::Ok,
            LoadError::Display(_) | LoadError::Usage(_) => Exit::Usage,
            LoadError::Config(_) => Exit::Config,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for LoadError {}
