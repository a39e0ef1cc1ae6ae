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

pub(crate) use crate::config::load_error::LoadError;

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

/// Where an option's value came from, to name it in an error.
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
/// `--help` and man pages. (Parsing reads the environment itself, see [`load_with`].)
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

/// Parse `argv` with `command` into `O`, layering the process environment and config file.
///
/// Errors never show a password or a control character of what the operator gave: every value
/// quoted in them (from the command line or the environment) is shown redacted and escaped
/// ([`crate::kit::redact`]), and any URL or DSN password left in the text is redacted.
pub(crate) fn load_with<O: FromArgMatches>(
    command: Command,
    argv: &[OsString],
) -> Result<O, LoadError> {
    // `-sF` and a healthcheck-format `-F`/`--config` file (core/src/compat/mod.rs).
    let argv = &crate::compat::argv::expand_argv(&command, argv)?;
    let mut inputs: Vec<OsString> = argv.to_vec();
    inputs.extend(
        std::env::vars_os()
            .filter(|(name, _)| name.to_string_lossy().starts_with(ENV_PREFIX))
            .map(|(_, value)| value),
    );
    load_from(command, argv, &|name| std::env::var_os(name)).map_err(|error| scrub(error, &inputs))
}

/// The error with every password and control character of the operator's values hidden.
fn scrub(error: LoadError, inputs: &[OsString]) -> LoadError {
    match error {
        LoadError::Display(error) => LoadError::Display(error),
        LoadError::Usage(message) => LoadError::Usage(scrub_text(&message, inputs)),
        LoadError::Config(message) => LoadError::Config(scrub_text(&message, inputs)),
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

/// Parse `argv` with `command` into `O`, layering the environment `env` gives and the config
/// file. (A function rather than the process environment, so tests need not mutate it.)
pub(crate) fn load_from<O: FromArgMatches>(
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
        if MODE_SWITCHES.contains(&long) {
            return Err(LoadError::Config(format!(
                "{var}: --{long} can only be given on the command line (unset {var})"
            )));
        }
        if !takes_env(arg) || on_command_line(arg) {
            continue;
        }
        let origin = Origin::Environment(var.clone());
        let value = raw
            .into_string()
            .map_err(|_| LoadError::Config(format!("{var}: the value is not valid UTF-8")))?;
        check_length(&value).map_err(|problem| LoadError::Config(format!("{var}: {problem}")))?;
        match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => match parse_bool(&value) {
                Some(true) => env_args.push(format!("--{long}").into()),
                Some(false) => {}
                None => {
                    return Err(LoadError::Config(format!(
                        "{var}: invalid value '{value}': expected true or false"
                    )));
                }
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

fn check_length(value: &str) -> Result<(), String> {
    let count = value.chars().count();
    if count > MAX_VALUE_CHARS {
        return Err(format!(
            "the value has {count} characters (at most {MAX_VALUE_CHARS})"
        ));
    }
    Ok(())
}

/// Where each option (by clap id) got its values, when not from the command line.
type Origins = BTreeMap<String, Origin>;

/// How an option is named in a message, given where its value came from.
fn place(arg: &Arg, origin: Option<&Origin>) -> String {
    match origin {
        Some(Origin::Environment(var)) => var.clone(),
        Some(Origin::File { key, path, line }) => {
            format!("{key} in {} line {line}", path.display())
        }
        None => flag(arg),
    }
}

/// `--rise`, `-v`, or `COMMAND` for a positional.
fn flag(arg: &Arg) -> String {
    if let Some(long) = arg.get_long() {
        format!("--{long}")
    } else if let Some(short) = arg.get_short() {
        format!("-{short}")
    } else {
        arg.get_value_names()
            .and_then(|names| names.first())
            .map_or_else(
                || arg.get_id().as_str().to_ascii_uppercase(),
                |name| name.to_string(),
            )
    }
}

/// The option clap names in an error (`--rise <N>`, `--quiet...`, `[COMMAND]...`).
fn find_arg<'c>(command: &'c Command, shown: &str) -> Option<&'c Arg> {
    let word = shown.split_whitespace().next()?.trim_end_matches("...");
    if let Some(long) = word.strip_prefix("--") {
        let long = long.split('=').next().unwrap_or(long);
        return command.get_arguments().find(|arg| {
            arg.get_long() == Some(long)
                || arg
                    .get_all_aliases()
                    .is_some_and(|aliases| aliases.contains(&long))
        });
    }
    if let Some(short) = word.strip_prefix('-') {
        return command
            .get_arguments()
            .find(|arg| arg.get_short().is_some_and(|s| s.to_string() == short));
    }
    let first_word = |text: &str| {
        text.split_whitespace()
            .next()
            .unwrap_or("")
            .trim_matches(|c| matches!(c, '<' | '>' | '[' | ']' | '.'))
            .to_string()
    };
    let name = first_word(word);
    command.get_arguments().find(|arg| {
        arg.is_positional()
            && (arg.get_id().as_str().eq_ignore_ascii_case(&name)
                || arg
                    .get_value_names()
                    .is_some_and(|names| names.iter().any(|n| first_word(n) == name)))
    })
}

fn context_strings(error: &clap::Error, kind: ContextKind) -> Vec<String> {
    match error.get(kind) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(list)) => list.clone(),
        Some(ContextValue::StyledStr(s)) => vec![s.to_string()],
        Some(ContextValue::StyledStrs(list)) => list.iter().map(ToString::to_string).collect(),
        Some(ContextValue::Number(n)) => vec![n.to_string()],
        _ => Vec::new(),
    }
}

/// A clap error as one line naming where the bad value came from, and its exit code.
fn from_clap(error: clap::Error, command: &Command, origins: &Origins, file: bool) -> LoadError {
    if is_display(&error) {
        return LoadError::Display(error);
    }
    let first = |kind| context_strings(&error, kind).into_iter().next();
    let arg = first(ContextKind::InvalidArg).and_then(|shown| find_arg(command, &shown));
    if arg.is_none() && error.kind() == ErrorKind::ValueValidation {
        return from_raw(&clap_first_line(&error), command, origins);
    }
    let origin = arg.and_then(|arg| origins.get(arg.get_id().as_str()));
    let mut usage = origin.is_none();
    let value = first(ContextKind::InvalidValue).unwrap_or_default();
    let problem = match error.kind() {
        ErrorKind::ValueValidation => {
            let reason = std::error::Error::source(&error)
                .map(|source| describe_source(source, arg))
                .unwrap_or_else(|| "invalid value".into());
            if reason.contains(&format!("'{}'", value.trim())) {
                reason
            } else {
                format!("invalid value '{value}': {reason}")
            }
        }
        ErrorKind::InvalidValue if value.is_empty() => "a value is required".to_string(),
        ErrorKind::InvalidValue => {
            let valid = context_strings(&error, ContextKind::ValidValue);
            format!(
                "invalid value '{value}': expected one of {}",
                valid.join(", ")
            )
        }
        ErrorKind::ArgumentConflict => {
            let other = first(ContextKind::PriorArg).and_then(|shown| find_arg(command, &shown));
            let other_origin = other.and_then(|arg| origins.get(arg.get_id().as_str()));
            usage &= other_origin.is_none();
            match other {
                Some(other) => format!("cannot be used with {}", place(other, other_origin)),
                None => "cannot be used with another option given".to_string(),
            }
        }
        ErrorKind::MissingRequiredArgument => {
            usage = !file;
            let missing: Vec<String> = context_strings(&error, ContextKind::InvalidArg)
                .iter()
                .map(|shown| find_arg(command, shown).map_or_else(|| shown.clone(), required_hint))
                .collect();
            return if usage {
                LoadError::Usage(format!("missing {}", missing.join("; missing ")))
            } else {
                LoadError::Config(format!("missing {}", missing.join("; missing ")))
            };
        }
        ErrorKind::UnknownArgument => {
            let shown = first(ContextKind::InvalidArg).unwrap_or_default();
            let suggestion = first(ContextKind::SuggestedArg)
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_else(|| " (see --help)".to_string());
            let what = if shown.starts_with('-') {
                "unknown option"
            } else {
                "unexpected argument"
            };
            return LoadError::Usage(format!("{what} '{shown}'{suggestion}"));
        }
        ErrorKind::NoEquals
        | ErrorKind::TooManyValues
        | ErrorKind::TooFewValues
        | ErrorKind::WrongNumberOfValues => match arg {
            Some(_) => clap_first_line(&error)
                .split_once(": ")
                .map_or_else(|| clap_first_line(&error), |(_, rest)| rest.to_string()),
            None => clap_first_line(&error),
        },
        _ => {
            let line = clap_first_line(&error);
            return if usage {
                LoadError::Usage(line)
            } else {
                LoadError::Config(line)
            };
        }
    };
    let message = match arg {
        Some(arg) => format!("{}: {problem}", place(arg, origin)),
        None => problem,
    };
    if usage {
        LoadError::Usage(message)
    } else {
        LoadError::Config(message)
    }
}

/// A value parser's own clap error (`invalid value for '--dsn': ...`, made without context so
/// that a secret in the value is not echoed): name the option by where its value came from.
fn from_raw(line: &str, command: &Command, origins: &Origins) -> LoadError {
    let named = line.split_once("'--").and_then(|(before, rest)| {
        let (long, after) = rest.split_once('\'')?;
        let arg = find_arg(command, &format!("--{long}"))?;
        let before = before
            .trim_end()
            .trim_end_matches(" for")
            .trim_end_matches(" of");
        Some((arg, format!("{before}{after}")))
    });
    match named {
        Some((arg, rest)) => {
            let origin = origins.get(arg.get_id().as_str());
            let message = format!("{}: {}", place(arg, origin), rest.trim());
            if origin.is_none() {
                LoadError::Usage(message)
            } else {
                LoadError::Config(message)
            }
        }
        None => LoadError::Usage(line.to_string()),
    }
}

/// `--url (give --url URL, EXAPROBE_URL or url = ... in the config file)`.
fn required_hint(arg: &Arg) -> String {
    match arg.get_long() {
        Some(long) => format!(
            "--{long} (give it on the command line, as {} or as {long} in the config file)",
            env_name(long)
        ),
        None => format!(
            "{} (give it after --, or as {} in the config file)",
            flag(arg),
            arg.get_id()
        ),
    }
}

/// What a value parser's error says, phrased as what is accepted.
fn describe_source(source: &(dyn std::error::Error + 'static), arg: Option<&Arg>) -> String {
    use std::num::IntErrorKind;
    if let Some(int) = source.downcast_ref::<std::num::ParseIntError>() {
        let range = arg.map(integer_range).unwrap_or_default();
        return match int.kind() {
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
                format!("out of range (expected a whole number{range})")
            }
            IntErrorKind::Empty => format!("empty (expected a whole number{range})"),
            _ => format!("expected a whole number{range}"),
        };
    }
    if source.downcast_ref::<std::str::ParseBoolError>().is_some() {
        return "expected true or false".to_string();
    }
    let text = collapse_lines(&source.to_string());
    // clap's ranged integer parsers say `5000 is not in 1..=255`.
    if let Some((_, range)) = text.split_once(" is not in ")
        && let Some((low, high)) = range.split_once("..=")
    {
        return format!("out of range (expected a whole number from {low} to {high})");
    }
    text
}

/// A multi-line parser message (the regex crate draws a caret under the pattern) as its first
/// and last lines: `regex parse error: unclosed group`.
fn collapse_lines(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.as_slice() {
        [] => String::new(),
        [one] => (*one).to_string(),
        [first, .., last] => format!("{first} {}", last.trim_start_matches("error: ")),
    }
}

/// ` from 0 to 4294967295` for an option parsed as a plain integer type.
fn integer_range(arg: &Arg) -> String {
    use std::any::TypeId;
    let id = arg.get_value_parser().type_id();
    let bounds: &[(TypeId, &str)] = &[
        (TypeId::of::<u8>(), " from 0 to 255"),
        (TypeId::of::<u16>(), " from 0 to 65535"),
        (TypeId::of::<u32>(), " from 0 to 4294967295"),
        (TypeId::of::<u64>(), " from 0 to 18446744073709551615"),
        (TypeId::of::<usize>(), " from 0 to 18446744073709551615"),
    ];
    bounds
        .iter()
        .find(|(type_id, _)| id == *type_id)
        .map(|(_, text)| (*text).to_string())
        .unwrap_or_default()
}

/// clap's own message, without `error: `, its usage and help footer, on one line.
fn clap_first_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let line = rendered
        .lines()
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("tip:"))
        .collect::<Vec<_>>()
        .join(" ");
    line.trim_start_matches("error: ").to_string()
}

/// Arguments made from a config file.
#[derive(Debug, Default)]
struct FileArguments {
    named: Vec<OsString>,
    positional: Vec<OsString>,
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

type SpannedTable = BTreeMap<toml::Spanned<String>, toml::Spanned<toml::Value>>;

fn file_arguments(
    command: &Command,
    on_command_line: &dyn Fn(&Arg) -> bool,
    origins: &mut Origins,
    path: &Path,
) -> Result<FileArguments, LoadError> {
    let file_error =
        |message: String| LoadError::Config(format!("config file {}: {message}", path.display()));
    let bytes = crate::kit::files::read_regular_file(path, crate::kit::files::CONFIG_CAP)
        .map_err(|error| file_error(error.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|error| {
        let line = line_of(
            &String::from_utf8_lossy(error.as_bytes()),
            error.utf8_error().valid_up_to(),
        );
        file_error(format!("line {line} is not UTF-8 text"))
    })?;
    let table: SpannedTable = toml::from_str(&text).map_err(|error: toml::de::Error| {
        let line = error.span().map_or(1, |span| line_of(&text, span.start));
        let message = error
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        LoadError::Config(format!(
            "config file {} line {line}: not valid TOML: {message}",
            path.display()
        ))
    })?;
    let mut entries: Vec<_> = table.into_iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    let mut arguments = FileArguments::default();
    for (spanned_key, value) in entries {
        let key = spanned_key.get_ref().as_str();
        let line = line_of(&text, spanned_key.span().start);
        let at = format!("{key} in {} line {line}", path.display());
        let config_error = |message: String| LoadError::Config(format!("{at}: {message}"));
        if COMMAND_LINE_ONLY.contains(&key) {
            return Err(config_error(format!(
                "--{key} can only be given on the command line"
            )));
        }
        let Some(arg) = command.get_arguments().find(|arg| {
            arg.get_long() == Some(key)
                || arg
                    .get_all_aliases()
                    .is_some_and(|aliases| aliases.contains(&key))
                || (arg.is_positional() && arg.get_id().as_str() == key)
        }) else {
            return Err(LoadError::Config(format!(
                "config file {} line {line}: unknown key '{key}' (keys are the long options of {}, e.g. up-metric = 100)",
                path.display(),
                command.get_name()
            )));
        };
        if on_command_line(arg) || origins.contains_key(arg.get_id().as_str()) {
            continue;
        }
        let values = toml_values(value.get_ref()).map_err(config_error)?;
        for value in &values {
            check_length(value).map_err(config_error)?;
        }
        origins.insert(
            arg.get_id().to_string(),
            Origin::File {
                key: key.to_string(),
                path: path.to_path_buf(),
                line,
            },
        );
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
                    return Err(config_error("expected true or false, not a list".into()));
                };
                if value.get_ref().is_array() {
                    return Err(config_error("expected true or false, not a list".into()));
                }
                match flag.as_str() {
                    "true" => arguments.named.push(format!("--{long}").into()),
                    "false" => {}
                    other => {
                        return Err(config_error(format!(
                            "invalid value '{other}': expected true or false"
                        )));
                    }
                }
            }
            ArgAction::Count => {
                let count: u8 = values
                    .first()
                    .filter(|_| values.len() == 1)
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n <= 3)
                    .ok_or_else(|| config_error("expected a whole number from 0 to 3".into()))?;
                arguments
                    .named
                    .extend((0..count).map(|_| OsString::from(format!("--{long}"))));
            }
            _ => {
                if values.len() > 1 && !matches!(arg.get_action(), ArgAction::Append) {
                    return Err(config_error("takes one value, not a list".into()));
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
fn toml_values(value: &toml::Value) -> Result<Vec<String>, String> {
    let scalar = |value: &toml::Value| -> Result<String, String> {
        match value {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            toml::Value::Table(_) => Err(
                "a table is not an option (expected a string, number, boolean or a list of them)"
                    .into(),
            ),
            _ => Err("expected a string, number, boolean or a list of them".into()),
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
    use crate::config::exit::Exit;

    fn load<O: clap::CommandFactory + FromArgMatches>(argv: &[OsString]) -> Result<O, LoadError> {
        super::load_with(O::command(), argv)
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
