//! Why options could not be loaded, and the exit code it means: its own module, so that what
//! reads options for the loader (the healthcheck's `-F` file) can fail without depending on it.
//!
//! The three variants of [`LoadError`] are the three ways out: clap's own text (`--help`,
//! `--version`), a command-line mistake (64), an environment or file mistake (78). A mistake
//! the loader finds itself is a [`ConfigError`] naming the variable or the file's key and line.

use std::fmt;
use std::path::PathBuf;

use crate::config::exit::Exit;
use crate::kit::escape::one_line;

/// Why options could not be loaded.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// `--help` or `--version`: clap prints it (exit 0).
    Display(clap::Error),
    /// A mistake on the command line (sysexits EX_USAGE, 64): clap's error worded as one line
    /// naming the option, without the binary name.
    Usage(String),
    /// A mistake in the environment or the config file (sysexits EX_CONFIG, 78).
    Config(ConfigError),
}

/// Where an option's value came from, when not from the command line: how an error names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// An `EXAPROBE_*` variable.
    Environment(String),
    /// A key of the config file.
    File {
        /// The key as written (`rise`, or an alias like `ip`).
        key: String,
        /// The file.
        path: PathBuf,
        /// 1-based line of the key.
        line: usize,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Environment(var) => f.write_str(var),
            Origin::File { key, path, line } => {
                write!(f, "{key} in {} line {line}", path.display())
            }
        }
    }
}

/// A mistake in the environment or the config file (exit 78).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// clap's error about a value from the environment or the file, worded naming its origin.
    #[error("{0}")]
    Worded(String),
    /// One value of a variable or a file's key.
    #[error("{origin}: {problem}")]
    Value {
        origin: Origin,
        problem: ValueProblem,
    },
    /// A config file as a whole.
    #[error("config file {}: {problem}", path.display())]
    File { path: PathBuf, problem: FileProblem },
    /// A line of a config file that names no option.
    #[error("config file {} line {line}: {problem}", path.display())]
    FileLine {
        path: PathBuf,
        line: usize,
        problem: LineProblem,
    },
}

/// What is wrong with one value from the environment or the file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ValueProblem {
    /// A mode switch (`--once`, `--check-config`, `--dry-run`) set in the environment.
    #[error("--{long} can only be given on the command line (unset {var})")]
    ModeSwitch { long: String, var: String },
    /// A command-line-only option as a file's key.
    #[error("--{0} can only be given on the command line")]
    CommandLineOnly(String),
    /// A variable's value that is not UTF-8.
    #[error("the value is not valid UTF-8")]
    NotUtf8,
    /// A runaway value.
    #[error("the value has {count} characters (at most {max})")]
    TooLong { count: usize, max: usize },
    /// A switch's value (shown redacted and escaped).
    #[error("invalid value '{0}': expected true or false")]
    NotBoolean(String),
    /// A list given to a switch.
    #[error("expected true or false, not a list")]
    BooleanList,
    /// A count (`verbose`) that is not 0 to 3.
    #[error("expected a whole number from 0 to 3")]
    Count,
    /// A list given to an option of one value.
    #[error("takes one value, not a list")]
    OneValue,
    /// A TOML table as a key's value.
    #[error("a table is not an option (expected a string, number, boolean or a list of them)")]
    Table,
    /// A TOML value of no option's kind (a date).
    #[error("expected a string, number, boolean or a list of them")]
    NotAValue,
}

/// What is wrong with a config file as a whole.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileProblem {
    /// Missing, unreadable, too big or not a regular file.
    #[error("{0}")]
    Unreadable(crate::kit::files::FileError),
    /// A healthcheck `-F` file that is not UTF-8.
    #[error("it is not UTF-8 text")]
    NotUtf8,
    /// A TOML file with bytes that are not UTF-8 on a line.
    #[error("line {0} is not UTF-8 text")]
    NotUtf8At(usize),
    /// A line of a healthcheck `-F` file that is no `option` or `option = value`.
    #[error("line {line}: '{key}' is not an option name (expected `option` or `option = value`)")]
    NotAnOption { line: usize, key: String },
}

/// What is wrong with a line of a TOML config file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LineProblem {
    /// The TOML parser's message (one line, passwords redacted).
    #[error("not valid TOML: {0}")]
    NotToml(String),
    /// A key that is no long option of the binary.
    #[error("unknown key '{key}' (keys are the long options of {binary}, e.g. up-metric = 100)")]
    UnknownKey { key: String, binary: String },
}

impl ConfigError {
    /// The error with `hide` applied to the text that may quote what the operator gave (clap's
    /// wording, a switch's value, the TOML parser's message).
    pub(crate) fn scrubbed(self, hide: &dyn Fn(&str) -> String) -> ConfigError {
        match self {
            ConfigError::Worded(text) => ConfigError::Worded(hide(&text)),
            ConfigError::Value {
                origin,
                problem: ValueProblem::NotBoolean(value),
            } => ConfigError::Value {
                origin,
                problem: ValueProblem::NotBoolean(hide(&value)),
            },
            ConfigError::FileLine {
                path,
                line,
                problem: LineProblem::NotToml(message),
            } => ConfigError::FileLine {
                path,
                line,
                problem: LineProblem::NotToml(hide(&message)),
            },
            other => other,
        }
    }
}

impl From<ConfigError> for LoadError {
    fn from(error: ConfigError) -> Self {
        LoadError::Config(error)
    }
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
            LoadError::Usage(message) => one_line(message),
            LoadError::Config(error) => one_line(&error.to_string()),
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
