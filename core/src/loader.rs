//! Option layering: command line > environment (`EXAPROBE_<LONG_NAME>`) > TOML file (`--config`)
//! > defaults, resolved in one place.
//!
//! The environment is clap's own `env` support, attached to every long option. The file is read
//! after a first parse and each `long-name = value` key whose option was not given on the command
//! line or in the environment becomes that option's argument; then clap parses again. So every
//! value, wherever it comes from, goes through the same parser, and a file value is never masked
//! by a clap default. Unknown keys are errors.

use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command, FromArgMatches};

/// Keys that make no sense in a config file.
const COMMAND_LINE_ONLY: &[&str] = &[
    "config",
    "check-config",
    "once",
    "dry-run",
    "help",
    "version",
];

/// Why options could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// Bad command line (or `--help`/`--version`, which clap reports the same way).
    Usage(clap::Error),
    /// Bad environment value or config file (sysexits EX_CONFIG).
    Config(String),
}

/// Prefix of every option's environment variable.
pub const ENV_PREFIX: &str = "EXAPROBE_";

/// The environment variable for a long option: `--up-metric` → `EXAPROBE_UP_METRIC`.
pub fn env_name(long: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        long.to_ascii_uppercase().replace('-', "_")
    )
}

/// The command with an `EXAPROBE_*` variable on every long option that takes a value or is a
/// plain flag.
pub fn with_env(command: Command) -> Command {
    command.mut_args(|arg| {
        let takes_env = !matches!(
            arg.get_action(),
            ArgAction::Help
                | ArgAction::HelpShort
                | ArgAction::HelpLong
                | ArgAction::Version
                | ArgAction::Count
        );
        match arg.get_long() {
            Some(long) if takes_env && !arg.is_positional() => {
                let name = env_name(long);
                arg.env(name)
            }
            _ => arg,
        }
    })
}

/// Parse `argv` into `O`, layering environment and config file.
pub fn load<O: clap::CommandFactory + FromArgMatches>(argv: &[OsString]) -> Result<O, LoadError> {
    load_with(O::command(), argv)
}

/// Parse `argv` with `command` into `O`, layering environment and config file.
///
/// Errors never show a password or a control character of what the operator gave: every value
/// quoted in them (from the command line, the environment or the file) is shown redacted and
/// escaped ([`crate::redact`]).
pub fn load_with<O: FromArgMatches>(command: Command, argv: &[OsString]) -> Result<O, LoadError> {
    let mut inputs: Vec<OsString> = argv.to_vec();
    inputs.extend(
        std::env::vars_os()
            .filter(|(name, _)| name.to_string_lossy().starts_with(ENV_PREFIX))
            .map(|(_, value)| value),
    );
    load_layers(command, argv, &mut inputs).map_err(|error| scrub(error, &inputs))
}

/// [`load_with`] before scrubbing; the config file's arguments are added to `inputs`.
fn load_layers<O: FromArgMatches>(
    command: Command,
    argv: &[OsString],
    inputs: &mut Vec<OsString>,
) -> Result<O, LoadError> {
    let command = with_env(command);
    // First pass, lenient: find --config and what the command line and environment set. A
    // required option may still be missing here: the file can provide it.
    let lenient = command
        .clone()
        .ignore_errors(true)
        .try_get_matches_from(argv);
    let config = lenient
        .as_ref()
        .ok()
        .and_then(|first| first.get_one::<std::path::PathBuf>("config").cloned());
    let (Some(path), Ok(first)) = (config, lenient) else {
        let matches = command
            .clone()
            .try_get_matches_from(argv)
            .map_err(|error| classify(error, None, inputs))?;
        return O::from_arg_matches(&matches)
            .map_err(|error| LoadError::Usage(error.with_cmd(&command)));
    };
    let file_args = file_arguments(&command, &first, &path)?;
    inputs.extend(file_args.named.iter().cloned());
    inputs.extend(file_args.positional.iter().cloned());
    let mut merged: Vec<OsString> = Vec::with_capacity(argv.len() + file_args.named.len());
    merged.extend(argv.first().cloned());
    merged.extend(file_args.named);
    merged.extend(argv.iter().skip(1).cloned());
    if !file_args.positional.is_empty() {
        if !argv.iter().any(|a| a == "--") {
            merged.push("--".into());
        }
        merged.extend(file_args.positional);
    }
    let matches = command
        .clone()
        .try_get_matches_from(&merged)
        .map_err(|error| {
            // Blame the command line when it is wrong on its own (beyond what the file supplies).
            match command.clone().try_get_matches_from(argv) {
                Err(own) if own.kind() != clap::error::ErrorKind::MissingRequiredArgument => {
                    classify(own, None, inputs)
                }
                _ => classify(error, Some(&path), inputs),
            }
        })?;
    O::from_arg_matches(&matches).map_err(|error| LoadError::Usage(error.with_cmd(&command)))
}

/// The error with every password and control character of the operator's values hidden.
fn scrub(error: LoadError, inputs: &[OsString]) -> LoadError {
    match error {
        LoadError::Config(message) => LoadError::Config(scrub_text(&message, inputs)),
        LoadError::Usage(error)
            if matches!(
                error.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            LoadError::Usage(error)
        }
        LoadError::Usage(error) => {
            let rendered = error.render().to_string();
            let clean = scrub_text(&rendered, inputs);
            if clean == rendered {
                return LoadError::Usage(error);
            }
            // Same kind (so the same exit code), same text, without the secret; clap's colours
            // are lost for this one message.
            let message = clean.strip_prefix("error: ").unwrap_or(&clean).to_string();
            LoadError::Usage(clap::Error::raw(error.kind(), message))
        }
    }
}

/// `text` with each value of `inputs` (and its `--name=value` part) shown as
/// [`crate::redact`] shows it, then any password left redacted.
fn scrub_text(text: &str, inputs: &[OsString]) -> String {
    let mut values: Vec<String> = Vec::new();
    for input in inputs {
        let input = input.to_string_lossy().into_owned();
        if let Some((_, value)) = input.strip_prefix("--").and_then(|a| a.split_once('=')) {
            values.push(value.to_string());
        }
        values.push(input);
    }
    values.sort_by_key(|value| std::cmp::Reverse(value.len()));
    let mut text = text.to_string();
    for value in values.iter().filter(|v| !v.is_empty()) {
        let shown = crate::redact::escape_controls(&crate::redact::redact_input(value));
        if shown != *value {
            text = text.replace(value.as_str(), &shown);
        }
    }
    crate::redact::redact_text(&text)
}

fn classify(error: clap::Error, file: Option<&Path>, inputs: &[OsString]) -> LoadError {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        return LoadError::Usage(error);
    }
    let rendered = scrub_text(&error.render().to_string(), inputs);
    // The message without clap's usage and help footer (a missing-argument error lists the
    // arguments on the lines after the first).
    let first_line = rendered
        .lines()
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let first_line = first_line.trim_start_matches("error: ");
    match file {
        Some(path) => LoadError::Config(format!("config file {}: {first_line}", path.display())),
        None if rendered.contains(ENV_PREFIX) => LoadError::Config(first_line.to_string()),
        None => LoadError::Usage(error),
    }
}

/// Arguments made from a config file.
#[derive(Debug, Default)]
struct FileArguments {
    named: Vec<OsString>,
    positional: Vec<OsString>,
}

fn file_arguments(
    command: &Command,
    given: &ArgMatches,
    path: &Path,
) -> Result<FileArguments, LoadError> {
    let config_error =
        |message: String| LoadError::Config(format!("config file {}: {message}", path.display()));
    let text = std::fs::read_to_string(path)
        .map_err(|error| config_error(format!("cannot read it: {error}")))?;
    let table: toml::Table = text.parse().map_err(|error: toml::de::Error| {
        config_error(format!("not valid TOML: {}", error.to_string().trim()))
    })?;
    let mut arguments = FileArguments::default();
    for (key, value) in &table {
        if COMMAND_LINE_ONLY.contains(&key.as_str()) {
            return Err(config_error(format!(
                "'{key}' can only be given on the command line"
            )));
        }
        let Some(arg) = command.get_arguments().find(|arg| {
            arg.get_long() == Some(key.as_str())
                || arg
                    .get_all_aliases()
                    .is_some_and(|aliases| aliases.contains(&key.as_str()))
                || (arg.is_positional() && arg.get_id().as_str() == key)
        }) else {
            return Err(config_error(format!(
                "unknown key '{key}' (keys are the long options of {}, e.g. up-metric = 100)",
                command.get_name()
            )));
        };
        let id = arg.get_id().as_str();
        if matches!(
            given.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let values = toml_values(key, value).map_err(config_error)?;
        if arg.is_positional() {
            arguments
                .positional
                .extend(values.into_iter().map(OsString::from));
            continue;
        }
        let long = arg.get_long().unwrap_or(key);
        match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => {
                let [flag] = values.as_slice() else {
                    return Err(config_error(format!("'{key}' takes true or false")));
                };
                match flag.as_str() {
                    "true" => arguments.named.push(format!("--{long}").into()),
                    "false" => {}
                    other => {
                        return Err(config_error(format!(
                            "'{key}' takes true or false, not {other}"
                        )));
                    }
                }
            }
            ArgAction::Count => {
                let count: u8 = values
                    .first()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| config_error(format!("'{key}' takes a small number")))?;
                arguments
                    .named
                    .extend((0..count).map(|_| OsString::from(format!("--{long}"))));
            }
            _ => {
                if values.len() > 1 && !matches!(arg.get_action(), ArgAction::Append) {
                    return Err(config_error(format!("'{key}' takes one value, not a list")));
                }
                arguments.named.extend(
                    values
                        .into_iter()
                        .map(|v| OsString::from(format!("--{long}={v}"))),
                );
            }
        }
    }
    Ok(arguments)
}

/// A TOML value as option argument(s): scalars become one, arrays one per element.
fn toml_values(key: &str, value: &toml::Value) -> Result<Vec<String>, String> {
    let scalar = |value: &toml::Value| -> Result<String, String> {
        match value {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            _ => Err(format!(
                "'{key}' must be a string, number, boolean or a list of them"
            )),
        }
    };
    match value {
        toml::Value::Array(items) => items.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// A stand-in option struct (a pure unit test of the layering rules).
    #[derive(Debug, Parser)]
    #[command(name = "exaprobe-test")]
    struct Options {
        #[arg(long = "prefix", visible_alias = "ip")]
        prefixes: Vec<String>,
        #[arg(long, default_value_t = 3)]
        rise: u32,
        #[arg(long, default_value_t = 100)]
        up_metric: u32,
        #[arg(long)]
        withdraw_on_down: bool,
        #[arg(long)]
        config: Option<std::path::PathBuf>,
        #[arg(short, long, action = ArgAction::Count)]
        verbose: u8,
        #[arg(last = true)]
        command: Vec<String>,
    }

    fn load_with(file: &str, args: &[&str]) -> Result<Options, LoadError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probe.toml");
        std::fs::write(&path, file).unwrap();
        let mut argv: Vec<OsString> = vec!["exaprobe-test".into(), "--config".into(), path.into()];
        argv.extend(args.iter().map(OsString::from));
        load::<Options>(&argv)
    }

    fn config_message(result: Result<Options, LoadError>) -> String {
        match result {
            Err(LoadError::Config(message)) => message,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn file_fills_what_the_command_line_leaves() {
        let o = load_with(
            "rise = 5\nup-metric = 7\nwithdraw-on-down = true\nip = ['192.0.2.1/32', '192.0.2.2/32']\nverbose = 2\ncommand = ['test', '-f', '/x']\n",
            &["--up-metric", "9"],
        )
        .unwrap();
        assert_eq!(o.rise, 5, "file beats the default");
        assert_eq!(o.up_metric, 9, "command line beats the file");
        assert!(o.withdraw_on_down);
        assert_eq!(o.prefixes, ["192.0.2.1/32", "192.0.2.2/32"]);
        assert_eq!(o.verbose, 2);
        assert_eq!(o.command, ["test", "-f", "/x"]);
    }

    #[test]
    fn required_options_can_come_from_the_file_alone() {
        /// A stand-in with a required option and a required positional.
        #[derive(Debug, Parser)]
        struct Strict {
            #[arg(long)]
            url: String,
            #[arg(long)]
            config: Option<std::path::PathBuf>,
            #[arg(last = true, required = true)]
            command: Vec<String>,
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strict.toml");
        std::fs::write(&path, "url = 'http://x/'\ncommand = ['true']\n").unwrap();
        let argv: Vec<OsString> = vec!["x".into(), "--config".into(), path.clone().into()];
        let strict = load::<Strict>(&argv).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            (strict.url.as_str(), strict.command.as_slice()),
            ("http://x/", ["true".to_string()].as_slice())
        );
        std::fs::write(&path, "command = ['true']\n").unwrap();
        match load::<Strict>(&argv) {
            Err(LoadError::Config(message)) => assert!(message.contains("--url"), "{message}"),
            other => panic!("expected a config error naming --url, got {other:?}"),
        }
        // A bad command-line value is a usage error even with a config file.
        let mut bad = argv.clone();
        bad.extend(["--bogus".into()]);
        assert!(matches!(load::<Strict>(&bad), Err(LoadError::Usage(_))));
    }

    #[test]
    fn command_line_list_replaces_file_list() {
        let o = load_with(
            "prefix = ['192.0.2.1/32']\n",
            &["--prefix", "198.51.100.1/32"],
        )
        .unwrap();
        assert_eq!(o.prefixes, ["198.51.100.1/32"]);
        let o = load_with("command = ['false']\n", &["--", "true"]).unwrap();
        assert_eq!(o.command, ["true"]);
    }

    #[test]
    fn bad_files_name_the_problem() {
        assert!(config_message(load_with("bogus = 1\n", &[])).contains("unknown key 'bogus'"));
        assert!(config_message(load_with("rise = 'many'\n", &[])).contains("many"));
        assert!(config_message(load_with("rise = [1, 2]\n", &[])).contains("one value"));
        assert!(config_message(load_with("rise = \n", &[])).contains("not valid TOML"));
        assert!(
            config_message(load_with("withdraw-on-down = 'yes'\n", &[])).contains("true or false")
        );
        assert!(config_message(load_with("config = 'x'\n", &[])).contains("command line"));
        assert!(
            config_message(load_with("[section]\nrise = 1\n", &[]))
                .contains("unknown key 'section'")
        );
        let missing = load::<Options>(&[
            "x".into(),
            "--config".into(),
            "/nonexistent/probe.toml".into(),
        ]);
        assert!(config_message(missing).contains("cannot read it"));
    }

    #[test]
    fn env_names() {
        assert_eq!(env_name("up-metric"), "EXAPROBE_UP_METRIC");
        let command = with_env(Options::command());
        let rise = command
            .get_arguments()
            .find(|a| a.get_id() == "rise")
            .unwrap();
        assert_eq!(rise.get_env().unwrap(), "EXAPROBE_RISE");
        let verbose = command
            .get_arguments()
            .find(|a| a.get_id() == "verbose")
            .unwrap();
        assert!(verbose.get_env().is_none());
    }

    #[test]
    fn errors_never_show_a_password_or_a_control_character() {
        let argv: Vec<OsString> = vec![
            "x".into(),
            "--rise".into(),
            "redis://:SECRETPW@h:x\nFORGED".into(),
        ];
        let Err(LoadError::Usage(error)) = load::<Options>(&argv) else {
            panic!("expected a usage error");
        };
        let shown = error.render().to_string();
        assert!(shown.contains("redis://:***@h:x\\nFORGED"), "{shown}");
        assert!(
            !shown.contains("SECRETPW") && !shown.contains("\nFORGED"),
            "{shown}"
        );
        assert!(error.use_stderr());
        let shown = config_message(load_with("rise = 'postgres://u:SECRETPW@h/db'\n", &[]));
        assert!(
            shown.contains("postgres://u:***@h/db") && !shown.contains("SECRETPW"),
            "{shown}"
        );
        let argv: Vec<OsString> = vec!["x".into(), "--rise=host=h password='SECRET PW'".into()];
        let Err(LoadError::Usage(error)) = load::<Options>(&argv) else {
            panic!("expected a usage error");
        };
        assert!(!error.render().to_string().contains("SECRET"));
    }

    #[test]
    fn usage_errors_stay_usage_errors() {
        let result = load::<Options>(&["x".into(), "--rise".into(), "lots".into()]);
        assert!(matches!(result, Err(LoadError::Usage(_))));
    }
}
