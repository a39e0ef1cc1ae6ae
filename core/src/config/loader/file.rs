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
pub(super) fn toml_values(value: &toml::Value) -> Result<Vec<String>, String> {
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
