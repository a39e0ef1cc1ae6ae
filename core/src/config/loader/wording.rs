//! clap's errors reworded as one line naming the option and where its value came from
//! (`--rise`, `EXAPROBE_RISE`, `rise in FILE line N`).

use super::*;

/// Where each option (by clap id) got its values, when not from the command line.
pub(super) type Origins = BTreeMap<String, Origin>;

/// How an option is named in a message, given where its value came from.
pub(super) fn place(arg: &Arg, origin: Option<&Origin>) -> String {
    match origin {
        Some(origin) => origin.to_string(),
        None => flag(arg),
    }
}

/// `--rise`, `-v`, or `COMMAND` for a positional.
pub(super) fn flag(arg: &Arg) -> String {
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
pub(super) fn find_arg<'c>(command: &'c Command, shown: &str) -> Option<&'c Arg> {
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

pub(super) fn context_strings(error: &clap::Error, kind: ContextKind) -> Vec<String> {
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
pub(super) fn from_clap(
    error: clap::Error,
    command: &Command,
    origins: &Origins,
    file: bool,
) -> LoadError {
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
                LoadError::Config(ConfigError::Worded(format!(
                    "missing {}",
                    missing.join("; missing ")
                )))
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
                LoadError::Config(ConfigError::Worded(line))
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
        LoadError::Config(ConfigError::Worded(message))
    }
}

/// A value parser's own clap error (`invalid value for '--dsn': ...`, made without context so
/// that a secret in the value is not echoed): name the option by where its value came from.
pub(super) fn from_raw(line: &str, command: &Command, origins: &Origins) -> LoadError {
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
                LoadError::Config(ConfigError::Worded(message))
            }
        }
        None => LoadError::Usage(line.to_string()),
    }
}

/// `--url (give --url URL, EXAPROBE_URL or url = ... in the config file)`.
pub(super) fn required_hint(arg: &Arg) -> String {
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
pub(super) fn describe_source(
    source: &(dyn std::error::Error + 'static),
    arg: Option<&Arg>,
) -> String {
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
pub(super) fn collapse_lines(text: &str) -> String {
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
pub(super) fn integer_range(arg: &Arg) -> String {
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
pub(super) fn clap_first_line(error: &clap::Error) -> String {
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
