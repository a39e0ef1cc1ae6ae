//! The healthcheck's command line made readable to clap: `-sF` spelled `--syslog-facility`, a
//! healthcheck `-F`/`--config` file (`key = value` lines) replaced by the options it holds
//! ([`crate::compat::healthcheck_file`]), the healthcheck's short names given to exaprobe's options
//! of the same meaning ([`short_names`]).

use std::ffi::OsString;
use std::path::PathBuf;

/// The healthcheck's short names, on exaprobe's options of the same meaning.
pub(crate) fn short_names(command: clap::Command) -> clap::Command {
    const SHORTS: &[(&str, char)] = &[
        ("config", 'F'),
        ("name", 'n'),
        ("interval", 'i'),
        ("fast_interval", 'f'),
        ("timeout", 't'),
        ("next_hop", 'N'),
        ("no_ack", 'a'),
    ];
    SHORTS.iter().fold(command, |command, (id, short)| {
        if command.get_arguments().any(|arg| arg.get_id() == id) {
            command.mut_arg(*id, |arg| arg.short(*short))
        } else {
            command
        }
    })
}

/// `argv` as clap reads it: `-sF [FACILITY]` spelled `--syslog-facility FACILITY` (`daemon` when
/// no value follows, as the healthcheck's default), and a healthcheck-format `-F`/`--config` file
/// replaced by the options it holds, placed before the command line's (which win, as in the
/// healthcheck). A TOML file given with `--config` is left to the loader.
pub(crate) fn expand_argv(
    command: &clap::Command,
    argv: &[OsString],
) -> Result<Vec<OsString>, crate::config::load_error::LoadError> {
    let mut out: Vec<OsString> = Vec::with_capacity(argv.len());
    let mut from_file: Vec<OsString> = Vec::new();
    let mut index = 0;
    let mut after_separator = false;
    while index < argv.len() {
        let arg = &argv[index];
        index += 1;
        if out.is_empty() || after_separator {
            out.push(arg.clone());
            continue;
        }
        let text = arg.to_string_lossy();
        if text == "--" {
            after_separator = true;
            out.push(arg.clone());
            continue;
        }
        if let Some(rest) = text.strip_prefix("-sF") {
            if !rest.is_empty() {
                out.push(format!("--syslog-facility={}", rest.trim_start_matches('=')).into());
            } else if argv
                .get(index)
                .is_some_and(|next| !next.to_string_lossy().starts_with('-'))
            {
                out.push("--syslog-facility".into());
            } else {
                out.push("--syslog-facility=daemon".into());
            }
            continue;
        }
        let (file, forced) = if text == "-F" || text == "--config" {
            let Some(value) = argv.get(index) else {
                out.push(arg.clone());
                continue;
            };
            index += 1;
            (PathBuf::from(value), text == "-F")
        } else if let Some(value) = text.strip_prefix("--config=") {
            (PathBuf::from(value), false)
        } else if let Some(value) = text.strip_prefix("-F") {
            (PathBuf::from(value.trim_start_matches('=')), true)
        } else {
            out.push(arg.clone());
            continue;
        };
        match crate::compat::healthcheck_file::read(&file, forced)? {
            Some(options) => from_file.extend(options),
            None => out.extend(["--config".into(), file.into_os_string()]),
        }
    }
    if !from_file.is_empty() {
        // An option of one value the command line gives too is the command line's (clap would
        // refuse it twice); list options add up, as in the healthcheck.
        let given = given_ids(command, &out[1..]);
        from_file.retain(|arg| {
            let text = arg.to_string_lossy();
            let long = text.trim_start_matches('-').split('=').next().unwrap_or("");
            find_long(command, long).is_none_or(|arg| {
                matches!(arg.get_action(), clap::ArgAction::Append)
                    || !given.iter().any(|id| id == arg.get_id().as_str())
            })
        });
        out.splice(1..1, from_file);
    }
    Ok(out)
}

/// The option named `--long` (or an alias).
fn find_long<'c>(command: &'c clap::Command, long: &str) -> Option<&'c clap::Arg> {
    command.get_arguments().find(|arg| {
        arg.get_long() == Some(long)
            || arg
                .get_all_aliases()
                .is_some_and(|aliases| aliases.contains(&long))
    })
}

/// The ids of the options `args` names, up to `--` (long names, aliases, short clusters).
fn given_ids(command: &clap::Command, args: &[OsString]) -> Vec<String> {
    let mut ids = Vec::new();
    for arg in args {
        let text = arg.to_string_lossy();
        if text == "--" {
            break;
        }
        if let Some(long) = text.strip_prefix("--") {
            if let Some(found) = find_long(command, long.split('=').next().unwrap_or("")) {
                ids.push(found.get_id().to_string());
            }
        } else if let Some(shorts) = text.strip_prefix('-') {
            for short in shorts.chars() {
                let Some(found) = command
                    .get_arguments()
                    .find(|a| a.get_short() == Some(short))
                else {
                    break;
                };
                ids.push(found.get_id().to_string());
                if found.get_action().takes_values() {
                    break;
                }
            }
        }
    }
    ids
}

/// Whether addresses were given with `--ip` (the healthcheck's spelling) on the command line
/// or in a healthcheck-format file: then `--ip-setup` is the default, as in the healthcheck.
pub(crate) fn ip_spelled(argv: &[OsString]) -> bool {
    argv.iter()
        .skip(1)
        .take_while(|arg| *arg != "--")
        .any(|arg| {
            let text = arg.to_string_lossy();
            text == "--ip" || text.starts_with("--ip=")
        })
}
