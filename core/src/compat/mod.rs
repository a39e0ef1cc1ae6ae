//! The `exabgp healthcheck` drop-in, so that a healthcheck `run` line works with only the
//! program's path changed; where exaprobe differs on purpose, README.md ("Replacing `exabgp
//! healthcheck`") says so. What app.rs calls is here ([`start`], [`log_levels`]); the parts:
//!
//! - [`options`]: the healthcheck's options exaprobe had not (in exaprobe-exec's help; the
//!   other probes accept them and show only `--pid`, `--user`, `--group`).
//! - [`argv`] and [`healthcheck_file`]: the command line made readable (`-sF`, a `-F` file of
//!   `key = value` lines, the healthcheck's short names).
//! - [`interfaces`], [`ip_setup`], [`ip_claims`]: addresses found on and added to `lo` through
//!   netlink, shared safely between probes.
//! - [`pidfile`], [`privileges`], [`stop_signals`]: the pid file, the user and group switch, a
//!   SIGTERM during the set-up.

pub(crate) mod argv;
pub(crate) mod healthcheck_file;
pub(crate) mod interfaces;
pub(crate) mod ip_claims;
pub(crate) mod ip_setup;
pub(crate) mod options;
pub(crate) mod pidfile;
pub(crate) mod privileges;
pub(crate) mod stop_signals;

use std::ffi::OsString;

use argv::expand_argv;
use options::CompatOptions;

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

/// What `exabgp healthcheck` does before its loop, in its order: write the pid file, add the
/// missing `--ip` addresses, switch user and group (looked up first: `privileges`). Returns
/// what was added, to remove at exit; on a failure after the set-up, what it added is removed
/// before the error is returned. A SIGTERM or SIGINT during the set-up stops it
/// (`Added::interrupted`).
pub(crate) fn start(
    common: &crate::config::options::CommonOptions,
    argv: &[OsString],
    privileges: &crate::compat::privileges::Target,
) -> Result<crate::compat::ip_setup::Added, String> {
    let compat = &common.compat;
    if let Err(errno) = crate::compat::stop_signals::record_stops() {
        tracing::warn!("cannot catch SIGTERM during the set-up: {errno}");
    }
    if let Some(path) = &compat.pid {
        crate::compat::pidfile::write(path)?;
    }
    // Only `--ip` is looked for: no option needs to be known.
    let argv = expand_argv(&clap::Command::new("probe"), argv).map_err(|error| error.message())?;
    let added = if crate::compat::ip_setup::wanted(compat, &argv) {
        crate::compat::ip_setup::set_up(common, &crate::compat::stop_signals::stopped)
    } else {
        crate::compat::ip_setup::Added::default()
    };
    if let Err(error) = crate::compat::privileges::drop_to(privileges) {
        added.remove();
        return Err(error);
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::argv::*;
    use super::options::*;
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    /// A probe with no options of its own.
    #[derive(Debug, Clone, clap::Args)]
    struct NoOptions {}

    fn expand_argv(
        argv: &[OsString],
    ) -> Result<Vec<OsString>, crate::config::load_error::LoadError> {
        let binary = crate::config::options::Binary {
            drop_in: false,
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
