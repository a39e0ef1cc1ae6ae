//! The TOML config file (`--config`): each `long-name = value` key turned into the option's
//! arguments, with the line it came from.

use super::*;

/// Arguments made from a config file.
#[derive(Debug, Default)]
pub(super) struct FileArguments {
    /// `--long value` pairs.
    pub(super) named: Vec<OsString>,
    /// What goes after `--` (a probe's positional arguments).
    pub(super) positional: Vec<OsString>,
}

/// 1-based line of byte `offset` in `text`.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

pub(super) type SpannedTable = BTreeMap<toml::Spanned<String>, toml::Spanned<toml::Value>>;

pub(super) fn file_arguments(
    command: &Command,
    on_command_line: &dyn Fn(&Arg) -> bool,
    origins: &mut Origins,
    path: &Path,
) -> Result<FileArguments, LoadError> {
    let file_error = |problem| ConfigError::File {
        path: path.to_path_buf(),
        problem,
    };
    let bytes = crate::kit::files::read_regular_file(path, crate::kit::files::CONFIG_CAP)
        .map_err(|error| file_error(FileProblem::Unreadable(error)))?;
    let text = String::from_utf8(bytes).map_err(|error| {
        let line = line_of(
            &String::from_utf8_lossy(error.as_bytes()),
            error.utf8_error().valid_up_to(),
        );
        file_error(FileProblem::NotUtf8At(line))
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
        ConfigError::FileLine {
            path: path.to_path_buf(),
            line,
            problem: LineProblem::NotToml(message),
        }
    })?;
    let mut entries: Vec<_> = table.into_iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    let mut arguments = FileArguments::default();
    for (spanned_key, value) in entries {
        let key = spanned_key.get_ref().as_str();
        let line = line_of(&text, spanned_key.span().start);
        let origin = Origin::File {
            key: key.to_string(),
            path: path.to_path_buf(),
            line,
        };
        let config_error = |problem| ConfigError::Value {
            origin: origin.clone(),
            problem,
        };
        if COMMAND_LINE_ONLY.contains(&key) {
            return Err(config_error(ValueProblem::CommandLineOnly(key.to_string())).into());
        }
        let Some(arg) = command.get_arguments().find(|arg| {
            arg.get_long() == Some(key)
                || arg
                    .get_all_aliases()
                    .is_some_and(|aliases| aliases.contains(&key))
                || (arg.is_positional() && arg.get_id().as_str() == key)
        }) else {
            return Err(ConfigError::FileLine {
                path: path.to_path_buf(),
                line,
                problem: LineProblem::UnknownKey {
                    key: key.to_string(),
                    binary: command.get_name().to_string(),
                },
            }
            .into());
        };
        if on_command_line(arg) || origins.contains_key(arg.get_id().as_str()) {
            continue;
        }
        let values = toml_values(value.get_ref()).map_err(config_error)?;
        for value in &values {
            check_length(value).map_err(config_error)?;
        }
        origins.insert(arg.get_id().to_string(), origin.clone());
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
                    return Err(config_error(ValueProblem::BooleanList).into());
                };
                if value.get_ref().is_array() {
                    return Err(config_error(ValueProblem::BooleanList).into());
                }
                match flag.as_str() {
                    "true" => arguments.named.push(format!("--{long}").into()),
                    "false" => {}
                    other => {
                        return Err(config_error(ValueProblem::NotBoolean(other.into())).into());
                    }
                }
            }
            ArgAction::Count => {
                let count: u8 = values
                    .first()
                    .filter(|_| values.len() == 1)
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n <= 3)
                    .ok_or_else(|| config_error(ValueProblem::Count))?;
                arguments
                    .named
                    .extend((0..count).map(|_| OsString::from(format!("--{long}"))));
            }
            _ => {
                if values.len() > 1 && !matches!(arg.get_action(), ArgAction::Append) {
                    return Err(config_error(ValueProblem::OneValue).into());
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
pub(super) fn toml_values(value: &toml::Value) -> Result<Vec<String>, ValueProblem> {
    let scalar = |value: &toml::Value| -> Result<String, ValueProblem> {
        match value {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            toml::Value::Table(_) => Err(ValueProblem::Table),
            _ => Err(ValueProblem::NotAValue),
        }
    };
    match value {
        toml::Value::Array(items) => items.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}
