//! Option layering: command line > environment (`EXAPROBE_<LONG_NAME>`) > TOML file (`--config`)
//! > defaults, resolved in one place, with one error path for the three sources.
//!
//! The command line is parsed on its own first, so its mistakes are usage errors (exit 64). Then
//! each `EXAPROBE_*` variable and each `long-name = value` key of the file whose option the
//! command line did not give becomes that option's argument, and clap parses the whole again. So
//! every value, wherever it comes from, goes through the same parser, and a file value is never
//! masked by a clap default. Each option's values come from exactly one source, recorded as its
//! [`Origin`], so an error names `--rise`, `EXAPROBE_RISE` or `rise in FILE line N` (exit 78 for
//! the last two). Every message is one line with control and bidi characters escaped.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, Command, FromArgMatches};

pub(crate) use crate::config::load_error::{
    ConfigError, FileProblem, LineProblem, LoadError, Origin, ValueProblem,
};

mod file;
mod wording;

use file::*;
use wording::*;

/// Keys that make no sense in a config file.
const COMMAND_LINE_ONLY: &[&str] = &[
    "config",
    "check-config",
    "once",
    "dry-run",
    "help",
    "version",
];

/// Mode switches: they change what the process prints on stdout (human text instead of ExaBGP
/// commands), so only an explicit command line may ask for them, never an inherited environment.
/// (`--generate-man`/`--generate-completions` are hidden first arguments, never read from the
/// environment either.)
const MODE_SWITCHES: &[&str] = &["check-config", "once", "dry-run"];

/// Longest value accepted from the environment or a config file, in characters: far above any
/// real option value (use `--body-file` for big request bodies), and it keeps a runaway value out
/// of memory and logs.
pub(crate) const MAX_VALUE_CHARS: usize = 4096;

/// Prefix of every option's environment variable.
pub(crate) const ENV_PREFIX: &str = "EXAPROBE_";

/// The environment variable for a long option: `--up-metric` → `EXAPROBE_UP_METRIC`.
pub(crate) fn env_name(long: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        long.to_ascii_uppercase().replace('-', "_")
    )
}

/// Whether an option can be set from the environment (and so is shown with `[env: …]`).
fn takes_env(arg: &Arg) -> bool {
    !arg.is_positional()
        && !matches!(
            arg.get_action(),
            ArgAction::Help
                | ArgAction::HelpShort
                | ArgAction::HelpLong
                | ArgAction::Version
                | ArgAction::Count
        )
        && arg
            .get_long()
            .is_some_and(|long| !MODE_SWITCHES.contains(&long))
}

/// The command with its `EXAPROBE_*` variable shown on every long option that can take one, for
/// `--help` and man pages. (Parsing reads the environment itself, see [`load_from`].)
pub(crate) fn with_env(command: Command) -> Command {
    command.mut_args(|arg| {
        if takes_env(&arg)
            && let Some(long) = arg.get_long()
        {
            let name = env_name(long);
            arg.env(name)
        } else {
            arg
        }
    })
}

/// The error with every password and control character of the operator's values hidden.
fn scrub(error: LoadError, inputs: &[OsString]) -> LoadError {
    match error {
        LoadError::Display(error) => LoadError::Display(error),
        LoadError::Usage(message) => LoadError::Usage(scrub_text(&message, inputs)),
        LoadError::Config(error) => {
            LoadError::Config(error.scrubbed(&|text| scrub_text(text, inputs)))
        }
    }
}

/// `text` with each value of `inputs` (and its `--name=value` part) shown as
/// [`crate::kit::redact`] shows it, then any password left redacted.
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
        let shown = crate::kit::redact::escape_controls(&crate::kit::redact::redact_input(value));
        if shown != *value {
            text = text.replace(value.as_str(), &shown);
        }
    }
    crate::kit::redact::redact_text(&text)
}

/// Parse `argv` with `command` into `O`, layering the environment `env` gives (a function
/// rather than the process environment, so tests need not mutate it) and the config file.
///
/// `argv` is the command line as the drop-in made it readable (`compat::argv::expand_argv`:
/// `-sF`, a healthcheck `-F` file), expanded once by the caller.
///
/// Errors never show a password or a control character of what the operator gave: every value
/// quoted in them (from the command line or the environment) is shown redacted and escaped
/// ([`crate::kit::redact`]), and any URL or DSN password left in the text is redacted.
pub(crate) fn load_from<O: FromArgMatches>(
    command: Command,
    argv: &[OsString],
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<O, LoadError> {
    let mut inputs: Vec<OsString> = argv.to_vec();
    inputs.extend(
        command
            .get_arguments()
            .filter_map(|arg| arg.get_long())
            .filter_map(|long| env(&env_name(long))),
    );
    layer(command, argv, env).map_err(|error| scrub(error, &inputs))
}

/// [`load_from`] before its errors are scrubbed.
fn layer<O: FromArgMatches>(
    command: Command,
    argv: &[OsString],
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<O, LoadError> {
    // `--timeout -1` reaches the option's parser (which says why it is wrong) instead of reading
    // as an unknown option `-1`.
    let command = command.mut_args(|arg| {
        if matches!(arg.get_action(), ArgAction::Set | ArgAction::Append) {
            arg.allow_negative_numbers(true)
        } else {
            arg
        }
    });
    // 1. The command line on its own. A required option may be missing: the environment or the
    //    file can provide it.
    let given = match command.clone().try_get_matches_from(argv) {
        Ok(matches) => matches,
        Err(error) if error.kind() == ErrorKind::MissingRequiredArgument => command
            .clone()
            .ignore_errors(true)
            .try_get_matches_from(argv)
            .map_err(|error| from_clap(error, &command, &Origins::new(), false))?,
        Err(error) if is_display(&error) => {
            // Shown with the environment variables, which the parsing command does not carry.
            let shown = with_env(command).try_get_matches_from(argv).err();
            return Err(LoadError::Display(shown.unwrap_or(error)));
        }
        Err(error) => return Err(from_clap(error, &command, &Origins::new(), false)),
    };
    let on_command_line = |arg: &Arg| {
        matches!(
            given.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine)
        )
    };
    let mut origins = Origins::new();

    // 2. The environment.
    let mut env_args: Vec<OsString> = Vec::new();
    let mut config: Option<PathBuf> = given
        .try_get_one::<PathBuf>("config")
        .ok()
        .flatten()
        .cloned();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        let var = env_name(long);
        let Some(raw) = env(&var) else { continue };
        if raw.is_empty() {
            continue;
        }
        let origin = Origin::Environment(var.clone());
        let refused = |problem| ConfigError::Value {
            origin: origin.clone(),
            problem,
        };
        if MODE_SWITCHES.contains(&long) {
            return Err(refused(ValueProblem::ModeSwitch {
                long: long.to_string(),
                var: var.clone(),
            })
            .into());
        }
        if !takes_env(arg) || on_command_line(arg) {
            continue;
        }
        let value = raw
            .into_string()
            .map_err(|_| refused(ValueProblem::NotUtf8))?;
        check_length(&value).map_err(refused)?;
        match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => match parse_bool(&value) {
                Some(true) => env_args.push(format!("--{long}").into()),
                Some(false) => {}
                None => return Err(refused(ValueProblem::NotBoolean(value)).into()),
            },
            _ => {
                if arg.get_id() == "config" {
                    config = Some(PathBuf::from(&value));
                }
                env_args.push(format!("--{long}={value}").into());
            }
        }
        origins.insert(arg.get_id().to_string(), origin);
    }

    // 3. The config file.
    let file_args = match &config {
        Some(path) => file_arguments(&command, &|arg| on_command_line(arg), &mut origins, path)?,
        None => FileArguments::default(),
    };

    let mut merged: Vec<OsString> =
        Vec::with_capacity(argv.len() + file_args.named.len() + env_args.len() + 1);
    merged.extend(argv.first().cloned());
    merged.extend(file_args.named);
    merged.extend(env_args);
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
        .map_err(|error| from_clap(error, &command, &origins, config.is_some()))?;
    O::from_arg_matches(&matches)
        .map_err(|error| from_clap(error, &command, &origins, config.is_some()))
}

fn is_display(error: &clap::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    )
}

/// `true`/`false` as operators write them in environment files.
fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn check_length(value: &str) -> Result<(), ValueProblem> {
    let count = value.chars().count();
    if count > MAX_VALUE_CHARS {
        return Err(ValueProblem::TooLong {
            count,
            max: MAX_VALUE_CHARS,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::exit::Exit;

    fn load<O: clap::CommandFactory + FromArgMatches>(argv: &[OsString]) -> Result<O, LoadError> {
        super::load_from(O::command(), argv, &|_| None)
    }
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
        once: bool,
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
            Err(LoadError::Config(error)) => error.to_string(),
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
            Err(LoadError::Config(error)) => {
                assert!(error.to_string().contains("--url"), "{error}")
            }
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
        let bogus = config_message(load_with("rise = 2\nbogus = 1\n", &[]));
        assert!(
            bogus.starts_with("config file ")
                && bogus.contains("probe.toml line 2: unknown key 'bogus'"),
            "{bogus}"
        );
        assert!(config_message(load_with("rise = 'many'\n", &[])).contains("many"));
        assert!(config_message(load_with("rise = [1, 2]\n", &[])).contains("one value"));
        assert!(config_message(load_with("rise = \n", &[])).contains("not valid TOML"));
        assert!(
            config_message(load_with("withdraw-on-down = 'yes'\n", &[])).contains("true or false")
        );
        assert!(config_message(load_with("config = 'x'\n", &[])).contains("command line"));
        assert!(config_message(load_with("[section]\nrise = 1\n", &[])).contains("unknown key"));
        let missing = load::<Options>(&[
            "x".into(),
            "--config".into(),
            "/nonexistent/probe.toml".into(),
        ]);
        assert_eq!(
            config_message(missing),
            "config file /nonexistent/probe.toml: it does not exist"
        );
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

    fn load_env(env: &[(&str, &str)], args: &[&str]) -> Result<Options, LoadError> {
        let env: Vec<(String, OsString)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        let mut argv: Vec<OsString> = vec!["exaprobe-test".into()];
        argv.extend(args.iter().map(OsString::from));
        load_from(Options::command(), &argv, &|name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn each_source_is_named_with_its_exit_code() {
        /// Environment, arguments, message, exit code.
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str, u8);
        let cases: &[Case] = &[
            (
                &[],
                &["--rise", "abc"],
                "--rise: invalid value 'abc': expected a whole number from 0 to 4294967295",
                64,
            ),
            (
                &[("EXAPROBE_RISE", "abc")],
                &[],
                "EXAPROBE_RISE: invalid value 'abc': expected a whole number from 0 to 4294967295",
                78,
            ),
            (
                &[("EXAPROBE_WITHDRAW_ON_DOWN", "maybe")],
                &[],
                "EXAPROBE_WITHDRAW_ON_DOWN: invalid value 'maybe': expected true or false",
                78,
            ),
            (
                &[("EXAPROBE_ONCE", "true")],
                &[],
                "EXAPROBE_ONCE: --once can only be given on the command line (unset EXAPROBE_ONCE)",
                78,
            ),
            (
                &[("EXAPROBE_RISE", "x\u{1b}[31m\u{202e}")],
                &[],
                "EXAPROBE_RISE: invalid value 'x\\u{1b}[31m\\u{202e}': expected a whole number from 0 to 4294967295",
                78,
            ),
            (
                &[],
                &["--bogus"],
                "unknown option '--bogus' (see --help)",
                64,
            ),
        ];
        for (env, args, message, code) in cases {
            let error = load_env(env, args).unwrap_err();
            assert_eq!(
                (error.message().as_str(), error.exit().code()),
                (*message, *code),
                "{env:?} {args:?}"
            );
        }
        // The command line wins over a bad environment value, which is then never parsed.
        assert_eq!(
            load_env(&[("EXAPROBE_RISE", "abc")], &["--rise", "4"])
                .unwrap()
                .rise,
            4
        );
        assert_eq!(load_env(&[("EXAPROBE_RISE", "7")], &[]).unwrap().rise, 7);
        assert!(
            load_env(&[("EXAPROBE_WITHDRAW_ON_DOWN", "yes")], &[])
                .unwrap()
                .withdraw_on_down
        );
    }

    #[test]
    fn file_values_are_named_with_key_and_line() {
        let message = config_message(load_with("# probe\n\nrise = 'lots'\n", &[]));
        assert!(message.starts_with("rise in "), "{message}");
        assert!(
            message.ends_with("probe.toml line 3: invalid value 'lots': expected a whole number from 0 to 4294967295"),
            "{message}"
        );
        let message = config_message(load_with("rise = 1\nup-metric = \n", &[]));
        assert!(
            message.contains("probe.toml line 2: not valid TOML: "),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");
        // The environment beats the file.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "rise = 'lots'\n").unwrap();
        let config = path.to_str().unwrap();
        assert_eq!(
            load_env(&[("EXAPROBE_RISE", "2")], &["--config", config])
                .unwrap()
                .rise,
            2
        );
        assert_eq!(
            load_env(&[("EXAPROBE_CONFIG", config), ("EXAPROBE_RISE", "2")], &[])
                .unwrap()
                .rise,
            2
        );
    }

    #[test]
    fn errors_never_show_a_password_or_a_control_character() {
        let argv: Vec<OsString> = vec![
            "x".into(),
            "--rise".into(),
            "redis://:SECRETPW@h:x\nFORGED".into(),
        ];
        let Err(error) = load::<Options>(&argv) else {
            panic!("expected a usage error");
        };
        assert_eq!(error.exit(), Exit::Usage);
        let shown = error.message();
        assert!(shown.contains("redis://:***@h:x"), "{shown}");
        assert!(
            !shown.contains("SECRETPW") && !shown.contains("\nFORGED\n") && !shown.contains('\n'),
            "{shown}"
        );
        let shown = config_message(load_with("rise = 'postgres://u:SECRETPW@h/db'\n", &[]));
        assert!(
            shown.contains("postgres://u:***@h/db") && !shown.contains("SECRETPW"),
            "{shown}"
        );
        let argv: Vec<OsString> = vec!["x".into(), "--rise=host=h password='SECRET PW'".into()];
        let Err(error) = load::<Options>(&argv) else {
            panic!("expected a usage error");
        };
        assert!(!error.message().contains("SECRET"), "{}", error.message());
    }

    #[test]
    fn usage_errors_stay_usage_errors() {
        let result = load::<Options>(&["x".into(), "--rise".into(), "lots".into()]);
        assert!(matches!(result, Err(LoadError::Usage(_))));
    }
}
