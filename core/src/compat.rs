//! The options of `exabgp healthcheck` that exaprobe did not have, so that its `run` line works
//! with only the program's path changed.
//!
//! Everything here is process-level (logging, pid file, user, addresses on the interface), so
//! every probe has it; the exec probe adds `--cmd`/`--command`/`-c`. Names, short names, value
//! syntax and defaults are those of ExaBGP 5.0's and 6.0's `healthcheck.py`; where exaprobe
//! differs on purpose, README.md ("Replacing `exabgp healthcheck`") says so.
//!
//! Besides the options, the command line itself is made readable: the healthcheck's two-letter
//! short option `-sF` is spelled `--syslog-facility`, a healthcheck `-F`/`--config` file (`key =
//! value` lines) becomes the options it holds ([`crate::healthcheck_file`]), and the healthcheck's
//! short names are given to exaprobe's options of the same meaning ([`short_names`]).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;

const HEADING: &str = "exabgp healthcheck compatibility";

/// Options of `exabgp healthcheck` with the same names and meaning (see CONFIGURATION.md).
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct CompatOptions {
    /// Log only errors on stderr (`exabgp healthcheck -s`, "don't log to console").
    #[arg(short = 's', long, help_heading = HEADING)]
    pub silent: bool,
    /// Debug log output, as -v.
    #[arg(short = 'd', long, help_heading = HEADING)]
    pub debug: bool,
    /// Accepted: exaprobe logs to stderr (ExaBGP forwards it), not to syslog.
    #[arg(long, help_heading = HEADING)]
    pub no_syslog: bool,
    /// Accepted: exaprobe announces only on changes anyway (--refresh-interval re-sends).
    #[arg(long, help_heading = HEADING)]
    pub debounce: bool,
    /// Write the process id to FILE at start.
    #[arg(short = 'p', long = "pid", value_name = "FILE", value_parser = crate::files::parse_output_file, help_heading = HEADING)]
    pub pid: Option<PathBuf>,
    /// Switch to this user after setting up addresses.
    #[arg(long, value_name = "USER", help_heading = HEADING)]
    pub user: Option<String>,
    /// Switch to this group after setting up addresses.
    #[arg(long, value_name = "GROUP", help_heading = HEADING)]
    pub group: Option<String>,
    /// Put this --ip address on interface IFNAME instead of lo (`192.0.2.1%eth0`). Repeatable.
    #[arg(long = "ip-ifname", value_name = "IP%IFNAME", value_parser = parse_ip_ifname, help_heading = HEADING)]
    pub ip_ifnames: Vec<IpIfname>,
    /// Only addresses of lo labelled `lo:LABEL...` are found (and LABEL is given to added ones).
    #[arg(long, value_name = "LABEL", value_parser = parse_label, help_heading = HEADING)]
    pub label: Option<String>,
    /// --label must match the whole label, not its beginning.
    #[arg(long, help_heading = HEADING)]
    pub label_exact_match: bool,
    /// Start the list of prefixes at index N (rotating it), so that it gets --up-metric.
    #[arg(long, value_name = "N", default_value_t = 0, allow_negative_numbers = true, help_heading = HEADING)]
    pub start_ip: i64,
    /// Announce every address of each --ip network as a host route.
    #[arg(long, help_heading = HEADING)]
    pub deaggregate_networks: bool,
    /// Add missing --ip addresses to lo at start (default when addresses are given with --ip).
    #[arg(long, conflicts_with = "no_ip_setup", help_heading = HEADING)]
    pub ip_setup: bool,
    /// Do not add missing --ip addresses to lo.
    #[arg(long, help_heading = HEADING)]
    pub no_ip_setup: bool,
    /// Remove the addresses when DOWN or DISABLED and add them again when UP.
    #[arg(long, help_heading = HEADING)]
    pub dynamic_ip_setup: bool,
    /// Set addresses up with `sudo ip address ...` instead of netlink.
    #[arg(long, help_heading = HEADING)]
    pub sudo: bool,
    /// For tests: where probes record the addresses they share (default /run/exaprobe/ip-claims).
    #[arg(long, hide = true, value_name = "DIR")]
    pub ip_claims_dir: Option<PathBuf>,
}

/// `--ip-ifname IP%IFNAME`: an address or network of `--ip`, and the interface it goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IpIfname {
    /// The address or network.
    pub net: ipnet::IpNet,
    /// The interface.
    pub ifname: String,
}

/// Longest interface name Linux takes.
const IFNAME_MAX: usize = 15;

/// `192.0.2.1%eth0` or `192.0.2.0/30%lo`; the interface name as the healthcheck checks it.
fn parse_ip_ifname(text: &str) -> Result<IpIfname, String> {
    let parts: Vec<&str> = text.split('%').collect();
    let [ip, ifname] = parts.as_slice() else {
        return Err(format!("'{text}' is not IP%IFNAME (192.0.2.1%eth0)"));
    };
    let net = ip.parse::<crate::route::Prefix>()?;
    let valid = !ifname.is_empty()
        && ifname.len() <= IFNAME_MAX
        && ifname
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if !valid {
        return Err(format!(
            "'{text}': '{ifname}' is not an interface name (1 to {IFNAME_MAX} of A-Z a-z 0-9 . _ : -)"
        ));
    }
    Ok(IpIfname {
        net: net.network(),
        ifname: (*ifname).to_string(),
    })
}

/// `--label LABEL`: the kernel takes an IPv4 label of at most 15 bytes (`IFNAMSIZ` - 1), and the
/// label given is `IFNAME:LABEL`, so LABEL must leave room for the longest interface it goes on.
fn parse_label(text: &str) -> Result<String, String> {
    let longest = IFNAME_MAX - "lo:".len();
    if text.is_empty() || text.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "'{}' is not a label (1 to {longest} bytes, no spaces)",
            text.escape_debug()
        ));
    }
    if text.len() > longest {
        return Err(format!(
            "'{text}' is {} bytes long: the kernel takes at most {IFNAME_MAX} for lo:LABEL, so LABEL may have {longest}",
            text.len()
        ));
    }
    Ok(text.to_string())
}

/// The log levels `-v`/`-q` amount to with `-d` (debug) and `-s` (errors only).
pub(crate) fn log_levels(verbose: u8, quiet: u8, compat: &CompatOptions) -> (u8, u8) {
    if compat.silent {
        (0, 2)
    } else if compat.debug {
        (verbose.max(1), 0)
    } else {
        (verbose, quiet)
    }
}

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
) -> Result<Vec<OsString>, crate::loader::LoadError> {
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
        match crate::healthcheck_file::read(&file, forced)? {
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

/// What `exabgp healthcheck` does before its loop, in its order: write the pid file, add the
/// missing `--ip` addresses, switch user and group (looked up first: `privileges`). Returns
/// what was added, to remove at exit; on a failure after the set-up, what it added is removed
/// before the error is returned. A SIGTERM or SIGINT during the set-up stops it
/// (`Added::interrupted`).
pub(crate) fn start(
    common: &crate::options::CommonOptions,
    argv: &[OsString],
    privileges: &crate::privileges::Target,
) -> Result<crate::ip_setup::Added, String> {
    let compat = &common.compat;
    if let Err(errno) = crate::stop_signals::record_stops() {
        tracing::warn!("cannot catch SIGTERM during the set-up: {errno}");
    }
    if let Some(path) = &compat.pid {
        crate::pidfile::write(path)?;
    }
    // Only `--ip` is looked for: no option needs to be known.
    let argv = expand_argv(&clap::Command::new("probe"), argv).map_err(|error| error.message())?;
    let added = if crate::ip_setup::wanted(compat, &argv) {
        crate::ip_setup::set_up(common, &crate::stop_signals::stopped)
    } else {
        crate::ip_setup::Added::default()
    };
    if let Err(error) = crate::privileges::drop_to(privileges) {
        added.remove();
        return Err(error);
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    /// A probe with no options of its own.
    #[derive(Debug, Clone, clap::Args)]
    struct NoOptions {}

    fn expand_argv(argv: &[OsString]) -> Result<Vec<OsString>, crate::loader::LoadError> {
        let binary = crate::options::Binary {
            name: "p",
            about: "",
            example: "",
            environment: &[],
        };
        super::expand_argv(&binary.command::<NoOptions>(), argv)
    }

    #[test]
    fn syslog_facility_short_form() {
        let cases: &[(&[&str], &[&str])] = &[
            (
                &["p", "-sF", "local3", "-d"],
                &["p", "--syslog-facility", "local3", "-d"],
            ),
            (
                &["p", "-sF", "-d"],
                &["p", "--syslog-facility=daemon", "-d"],
            ),
            (&["p", "-sF"], &["p", "--syslog-facility=daemon"]),
            (&["p", "-sFlocal0"], &["p", "--syslog-facility=local0"]),
            (&["p", "--", "-sF"], &["p", "--", "-sF"]),
        ];
        for (given, expected) in cases {
            assert_eq!(
                expand_argv(&args(given)).unwrap(),
                args(expected),
                "{given:?}"
            );
        }
    }

    /// A healthcheck file's options go before the command line's, which win (as in the
    /// healthcheck, which parses the file's lines, then its own argv).
    #[test]
    fn healthcheck_file_options_come_first() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hc.conf");
        std::fs::write(&file, "debug\nname = web\nip = 192.0.2.1\n").unwrap();
        let file = file.display().to_string();
        assert_eq!(
            expand_argv(&args(&["p", "--rise", "2", "-F", &file, "-dn", "cli"])).unwrap(),
            args(&["p", "--ip=192.0.2.1", "--rise", "2", "-dn", "cli"])
        );
        assert_eq!(
            expand_argv(&args(&["p", &format!("--config={file}")])).unwrap(),
            args(&["p", "--debug", "--name=web", "--ip=192.0.2.1"])
        );
        // TOML stays with the loader.
        let toml = dir.path().join("probe.toml");
        std::fs::write(&toml, "name = \"web\"\n").unwrap();
        let toml = toml.display().to_string();
        assert_eq!(
            expand_argv(&args(&["p", "--config", &toml])).unwrap(),
            args(&["p", "--config", &toml])
        );
    }

    #[test]
    fn ip_interface_pairs() {
        assert_eq!(
            parse_ip_ifname("192.0.2.1%eth0").unwrap(),
            IpIfname {
                net: "192.0.2.1/32".parse().unwrap(),
                ifname: "eth0".into()
            }
        );
        assert_eq!(
            parse_ip_ifname("192.0.2.1").unwrap_err(),
            "'192.0.2.1' is not IP%IFNAME (192.0.2.1%eth0)"
        );
        assert!(
            parse_ip_ifname("192.0.2.1%eth 0")
                .unwrap_err()
                .contains("is not an interface name")
        );
        assert!(parse_ip_ifname("192.0.2.1%abcdefghijklmnop").is_err());
    }

    #[test]
    fn ip_spelling_is_seen_before_the_separator_only() {
        assert!(ip_spelled(&args(&["p", "--ip", "192.0.2.1"])));
        assert!(ip_spelled(&args(&["p", "--ip=192.0.2.1"])));
        assert!(!ip_spelled(&args(&["p", "--prefix", "192.0.2.1"])));
        assert!(!ip_spelled(&args(&["p", "--ip-ifname", "x", "--", "--ip"])));
    }

    #[test]
    fn silent_and_debug_map_onto_levels() {
        let mut compat = CompatOptions::default();
        assert_eq!(log_levels(0, 0, &compat), (0, 0));
        compat.debug = true;
        assert_eq!(log_levels(0, 0, &compat), (1, 0));
        assert_eq!(log_levels(2, 0, &compat), (2, 0));
        compat.silent = true;
        assert_eq!(log_levels(0, 0, &compat), (0, 2));
    }
}
