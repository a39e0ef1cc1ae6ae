//! The configuration file of `exabgp healthcheck` (`-F FILE`/`--config FILE`): one long option
//! per line, `debug` or `name = haproxy`, `#` comments, values unquoted.
//!
//! The healthcheck turns each line into `--key` and `value` and reads them before its command
//! line, which therefore wins. The same is done here, so every value goes through exaprobe's own
//! option parsers. `-F` always means this format. `--config` means exaprobe's TOML, except for a
//! file that is not TOML but reads as this format (`name = haproxy` is not TOML: the string is not
//! quoted), so a healthcheck `run` line's `--config` keeps working. A file valid in both (only
//! numbers and `key = true`) means the same in both.

use std::ffi::OsString;
use std::path::Path;

use crate::config::load_error::{ConfigError, FileProblem, LoadError};

/// The options held in the healthcheck-format file at `path`, or `None` when `forced` is false
/// and the file is exaprobe's TOML (or not readable as the healthcheck's format either: the
/// loader then reports the TOML error).
pub(crate) fn read(path: &Path, forced: bool) -> Result<Option<Vec<OsString>>, LoadError> {
    let error = |problem| {
        LoadError::Config(ConfigError::File {
            path: path.to_path_buf(),
            problem,
        })
    };
    let bytes = match crate::kit::files::read_regular_file(path, crate::kit::files::CONFIG_CAP) {
        Ok(bytes) => bytes,
        // The loader reports it, naming --config.
        Err(_) if !forced => return Ok(None),
        Err(problem) => return Err(error(FileProblem::Unreadable(problem))),
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return if forced {
            Err(error(FileProblem::NotUtf8))
        } else {
            Ok(None)
        };
    };
    if !forced && (toml::from_str::<toml::Table>(&text).is_ok() || !needs_healthcheck(&text)) {
        return Ok(None);
    }
    parse(&text).map(Some).map_err(error)
}

/// Each line as the healthcheck reads it: `--` + the line, split at the first `=`, trimmed.
pub(crate) fn parse(text: &str) -> Result<Vec<OsString>, FileProblem> {
    let mut arguments = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key.trim(), Some(value.trim())),
            None => (line, None),
        };
        if !is_key(key) {
            return Err(FileProblem::NotAnOption {
                line: number + 1,
                key: key.to_string(),
            });
        }
        arguments.push(match value {
            Some(value) => OsString::from(format!("--{key}={value}")),
            None => OsString::from(format!("--{key}")),
        });
    }
    Ok(arguments)
}

/// Whether a file that is not valid TOML is the healthcheck's: every line reads as its format,
/// and one needs it (a bare `option`, or a value that is no TOML value, such as `haproxy`). A
/// file of TOML values that is still not TOML (a duplicate key) is reported as TOML.
fn needs_healthcheck(text: &str) -> bool {
    looks_like_healthcheck(text)
        && text.lines().map(str::trim).any(|line| {
            !line.is_empty()
                && !line.starts_with('#')
                && line.split_once('=').is_none_or(|(_, value)| {
                    toml::from_str::<toml::Table>(&format!("v = {}", value.trim())).is_err()
                })
        })
}

fn is_key(key: &str) -> bool {
    key.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Every line blank, a comment, `key` or `key = value`, and no value empty, quoted or
/// bracketed as TOML writes strings, lists and tables (a broken TOML file is reported as TOML).
fn looks_like_healthcheck(text: &str) -> bool {
    text.lines().map(str::trim).all(|line| {
        let value = line.split_once('=').map(|(_, value)| value.trim());
        let key = line.split_once('=').map_or(line, |(key, _)| key).trim();
        line.is_empty()
            || line.starts_with('#')
            || (is_key(key)
                && value.is_none_or(|v| !v.is_empty() && !v.starts_with(['"', '\'', '[', '{'])))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "# from healthcheck.py's docstring\n     debug\n     name = haproxy\n     interval = 10\n     fast-interval = 1\n     command = curl -sf http://127.0.0.1/healthcheck?a=b\n";

    #[test]
    fn the_healthcheck_docstring_example() {
        assert_eq!(
            parse(EXAMPLE).unwrap(),
            [
                "--debug",
                "--name=haproxy",
                "--interval=10",
                "--fast-interval=1",
                "--command=curl -sf http://127.0.0.1/healthcheck?a=b"
            ]
            .map(OsString::from)
        );
    }

    #[test]
    fn a_bad_line_is_named() {
        assert_eq!(
            parse("name = x\n\"quoted\" = 1\n").unwrap_err().to_string(),
            "line 2: '\"quoted\"' is not an option name (expected `option` or `option = value`)"
        );
    }

    #[test]
    fn format_detection_for_config() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        // Healthcheck format, not TOML.
        let path = write("hc.conf", EXAMPLE);
        assert!(read(&path, false).unwrap().is_some());
        // TOML: left to the loader.
        let path = write("probe.toml", "name = \"web\"\nprefix = [\"192.0.2.1\"]\n");
        assert!(read(&path, false).unwrap().is_none());
        // Neither: left to the loader, which reports the TOML error.
        let path = write("broken.toml", "name = \"web\n");
        assert!(read(&path, false).unwrap().is_none());
        // TOML values, but a duplicate key: TOML (the loader reports it).
        let path = write("duplicate.toml", "rise = 2\nrise = 3\n");
        assert!(read(&path, false).unwrap().is_none());
        // -F: always the healthcheck format.
        let path = write("both.conf", "interval = 10\n");
        assert_eq!(
            read(&path, true).unwrap().unwrap(),
            ["--interval=10"].map(OsString::from)
        );
        let error = read(&dir.path().join("missing"), true).unwrap_err();
        assert!(
            error.message().starts_with("config file "),
            "{}",
            error.message()
        );
    }
}
