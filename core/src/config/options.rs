//! Options shared by every probe: routes, timing, hysteresis, ACK mode, dialect, logging, modes.
//!
//! Every probe binary flattens [`CommonOptions`] next to its own options. Values are parsed and
//! validated by clap (so a bad value names its option); layering with the environment and the
//! config file happens in [`crate::config::loader`]; cross-option rules live in [`crate::config::settings`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, ValueEnum};

use crate::config::duration::{parse_duration, parse_interval, parse_positive_duration};
use crate::config::numbers::{parse_count, whole_number};
use crate::engine::dialect::ApiSetting;
use crate::engine::route::{
    AsPath, CommunityList, ExtendedCommunityList, LargeCommunityList, NeighborSelector, NextHop,
    PathId, Prefix,
};
use crate::observe::logging::LogFormat;

/// An on/off option's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// Options every probe has. Field docs are the `--help` text.
#[derive(Debug, Clone, Args)]
pub struct CommonOptions {
    // ---- what to announce -------------------------------------------------------------------
    /// Prefix to announce (IPv4 or IPv6, `192.0.2.1/32`; a bare address is a host route). Repeat for more.
    #[arg(
        long = "prefix",
        visible_alias = "ip",
        value_name = "PREFIX",
        help_heading = "Routes"
    )]
    pub(crate) prefixes: Vec<Prefix>,
    /// Next hop for IPv4 prefixes (`self` or an address).
    #[arg(
        long,
        default_value = "self",
        value_name = "IP|self",
        help_heading = "Routes"
    )]
    pub(crate) next_hop: NextHop,
    /// Next hop for IPv6 prefixes (default: --next-hop when it is `self` or IPv6).
    #[arg(long, value_name = "IPV6|self", help_heading = "Routes")]
    pub(crate) next_hop6: Option<NextHop>,
    /// MED of the first prefix when UP.
    #[arg(
        long,
        default_value_t = 100,
        value_parser = parse_med,
        allow_negative_numbers = true,
        value_name = "MED",
        help_heading = "Routes"
    )]
    pub(crate) up_metric: u32,
    /// MED of the first prefix when DOWN.
    #[arg(
        long,
        default_value_t = 1000,
        value_parser = parse_med,
        allow_negative_numbers = true,
        value_name = "MED",
        help_heading = "Routes"
    )]
    pub(crate) down_metric: u32,
    /// MED of the first prefix when DISABLED (maintenance).
    #[arg(
        long,
        default_value_t = 500,
        value_parser = parse_med,
        allow_negative_numbers = true,
        value_name = "MED",
        help_heading = "Routes"
    )]
    pub(crate) disabled_metric: u32,
    /// MED added per further prefix, in the order given.
    #[arg(long, default_value_t = 1, value_parser = parse_med, allow_negative_numbers = true, value_name = "N", help_heading = "Routes")]
    pub(crate) increase: u32,
    /// MED added to the up metric while the service is degraded (slow, lagging, ...), unless the probe sets its own.
    #[arg(long, default_value_t = 200, value_parser = parse_med, allow_negative_numbers = true, value_name = "N", help_heading = "Routes")]
    pub(crate) degraded_penalty: u32,
    /// Withdraw the prefixes when DOWN or DISABLED instead of announcing them with a worse MED.
    #[arg(long, help_heading = "Routes")]
    pub(crate) withdraw_on_down: bool,
    /// LOCAL_PREF attribute (iBGP only).
    #[arg(long, value_parser = parse_med, allow_negative_numbers = true, value_name = "N", help_heading = "Routes")]
    pub(crate) local_preference: Option<u32>,
    /// Standard community (`65000:1`, `no-export`); repeat or separate by spaces.
    #[arg(long = "community", value_name = "COMMUNITY", help_heading = "Routes")]
    pub(crate) communities: Vec<CommunityList>,
    /// Extended community (`target:65000:5`, `origin:192.0.2.1:7`); repeat or separate by spaces.
    #[arg(
        long = "extended-community",
        value_name = "COMMUNITY",
        help_heading = "Routes"
    )]
    pub(crate) extended_communities: Vec<ExtendedCommunityList>,
    /// Large community (`65000:1:2`); repeat or separate by spaces.
    #[arg(
        long = "large-community",
        value_name = "COMMUNITY",
        help_heading = "Routes"
    )]
    pub(crate) large_communities: Vec<LargeCommunityList>,
    /// Standard community used instead of --community when DOWN or DISABLED.
    #[arg(
        long = "disabled-community",
        value_name = "COMMUNITY",
        help_heading = "Routes"
    )]
    pub(crate) disabled_communities: Vec<CommunityList>,
    /// AS path to attach (`65000 65000`), in every state unless a per-state one is given.
    #[arg(long, value_name = "ASNS", help_heading = "Routes")]
    pub(crate) as_path: Option<AsPath>,
    /// AS path when UP (overrides --as-path).
    #[arg(long, value_name = "ASNS", help_heading = "Routes")]
    pub(crate) up_as_path: Option<AsPath>,
    /// AS path when DOWN (overrides --as-path): prepend to make the path worse.
    #[arg(long, value_name = "ASNS", help_heading = "Routes")]
    pub(crate) down_as_path: Option<AsPath>,
    /// AS path when DISABLED (overrides --as-path).
    #[arg(long, value_name = "ASNS", help_heading = "Routes")]
    pub(crate) disabled_as_path: Option<AsPath>,
    /// ADD-PATH path identifier (`path-information`), a number or dotted quad.
    #[arg(long, value_name = "ID", help_heading = "Routes")]
    pub(crate) path_id: Option<PathId>,
    /// Only send to this ExaBGP neighbor (peer address or `*`). Repeat for several.
    #[arg(long = "neighbor", value_name = "IP|*", help_heading = "Routes")]
    pub(crate) neighbors: Vec<NeighborSelector>,

    // ---- timing and hysteresis --------------------------------------------------------------
    /// Time between checks in a stable state (UP, DOWN, DISABLED). Seconds or with a unit (500ms, 5s, 1m).
    #[arg(long, default_value = "5", value_parser = parse_interval, allow_negative_numbers = true, value_name = "DURATION", help_heading = "Timing")]
    pub(crate) interval: Duration,
    /// Time between checks while RISING or FALLING.
    #[arg(long, default_value = "1", value_parser = parse_interval, allow_negative_numbers = true, value_name = "DURATION", help_heading = "Timing")]
    pub(crate) fast_interval: Duration,
    /// Deadline for one check; a check that takes longer fails.
    #[arg(long, default_value = "5", value_parser = parse_interval, allow_negative_numbers = true, value_name = "DURATION", help_heading = "Timing")]
    pub(crate) timeout: Duration,
    /// A healthy check slower than this counts as degraded (higher MED), not down.
    #[arg(long, value_parser = parse_positive_duration, allow_negative_numbers = true, value_name = "DURATION", help_heading = "Timing")]
    pub(crate) degraded_latency: Option<Duration>,
    /// Add a random delay of up to this much to each interval, so probes started together do not
    /// check in lockstep.
    #[arg(long, default_value = "0", value_parser = parse_duration, allow_negative_numbers = true, value_name = "DURATION", help_heading = "Timing")]
    pub(crate) splay: Duration,
    /// Consecutive successful checks needed to go UP.
    #[arg(long, default_value_t = 3, value_parser = parse_count, allow_negative_numbers = true, value_name = "N", help_heading = "Timing")]
    pub(crate) rise: u32,
    /// Consecutive failed checks needed to go DOWN.
    #[arg(long, default_value_t = 3, value_parser = parse_count, allow_negative_numbers = true, value_name = "N", help_heading = "Timing")]
    pub(crate) fall: u32,
    /// Re-send the current state this often even without a change (off by default).
    #[arg(long, value_parser = parse_positive_duration, allow_negative_numbers = true, value_name = "DURATION", help_heading = "Timing")]
    pub(crate) refresh_interval: Option<Duration>,
    /// Time between checks while DOWN (default: --interval), as HAProxy's `downinter`.
    #[arg(long, value_parser = parse_interval, value_name = "DURATION", help_heading = "Timing")]
    pub(crate) down_interval: Option<Duration>,
    /// React to what the service announces between checks, when the probe can hear it (gRPC
    /// Watch, Sentinel events, a closed session): `on`, or `off` for pure polling.
    #[arg(
        long,
        default_value = "on",
        value_name = "on|off",
        help_heading = "Timing"
    )]
    pub(crate) events: Switch,

    // ---- routing safety ---------------------------------------------------------------------
    /// Before a planned withdraw (maintenance, SIGTERM, a prefix removed by reload), announce the
    /// prefixes with the drain community for this long first (RFC 8326 graceful shutdown). Off by default.
    #[arg(long, value_parser = parse_positive_duration, value_name = "DURATION", help_heading = "Routing safety")]
    pub(crate) drain: Option<Duration>,
    /// Community added while draining.
    #[arg(
        long,
        default_value = "65535:0",
        value_name = "COMMUNITY",
        help_heading = "Routing safety"
    )]
    pub(crate) drain_community: CommunityList,
    /// Damp flapping: more than N changes between UP and DOWN within --flap-window hold the routes down (0: off).
    #[arg(
        long,
        default_value_t = 0,
        value_name = "N",
        help_heading = "Routing safety"
    )]
    pub(crate) flap_limit: u32,
    /// How far back --flap-limit counts changes.
    #[arg(long, default_value = "60", value_parser = parse_positive_duration, value_name = "DURATION", help_heading = "Routing safety")]
    pub(crate) flap_window: Duration,
    /// How long flapping routes are held down before a fresh start.
    #[arg(long, default_value = "300", value_parser = parse_positive_duration, value_name = "DURATION", help_heading = "Routing safety")]
    pub(crate) flap_hold: Duration,

    // ---- maintenance and hooks --------------------------------------------------------------
    /// While this file exists the check is not run and the prefixes are DISABLED.
    #[arg(long, value_name = "FILE", help_heading = "Maintenance and hooks")]
    pub(crate) disable: Option<PathBuf>,
    /// Command (run by `sh -c`) on every state change, with STATE in its environment. Repeatable.
    #[arg(
        long = "execute",
        value_name = "CMD",
        help_heading = "Maintenance and hooks"
    )]
    pub(crate) execute: Vec<String>,
    /// Command run on entering UP. Repeatable.
    #[arg(
        long = "up-execute",
        value_name = "CMD",
        help_heading = "Maintenance and hooks"
    )]
    pub(crate) up_execute: Vec<String>,
    /// Command run on entering DOWN. Repeatable.
    #[arg(
        long = "down-execute",
        value_name = "CMD",
        help_heading = "Maintenance and hooks"
    )]
    pub(crate) down_execute: Vec<String>,
    /// Command run on entering DISABLED. Repeatable.
    #[arg(
        long = "disabled-execute",
        value_name = "CMD",
        help_heading = "Maintenance and hooks"
    )]
    pub(crate) disabled_execute: Vec<String>,
    /// Deadline for a hook command; its process group is killed after it.
    #[arg(long, default_value = "30", value_parser = parse_positive_duration, allow_negative_numbers = true, value_name = "DURATION", help_heading = "Maintenance and hooks")]
    pub(crate) hook_timeout: Duration,

    // ---- ExaBGP pipe ------------------------------------------------------------------------
    /// ExaBGP API dialect: auto (ask ExaBGP at start), 4 (ExaBGP 4.2 and 5.0) or 6 (`peer * ...`, ExaBGP 6).
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        value_name = "auto|4|6",
        help_heading = "ExaBGP"
    )]
    pub(crate) exabgp_api: ApiSetting,
    /// Do not wait for `done`/`error` after a command (for ExaBGP run with exabgp.api.ack=false).
    #[arg(long, help_heading = "ExaBGP")]
    pub(crate) no_ack: bool,
    /// How long to wait for ExaBGP's `done`/`error` after a command.
    #[arg(long, default_value = "10", value_parser = parse_positive_duration, allow_negative_numbers = true, value_name = "DURATION", help_heading = "ExaBGP")]
    pub(crate) ack_timeout: Duration,

    // ---- modes and logging ------------------------------------------------------------------
    /// TOML file with options (`long-option = value`); command line and EXAPROBE_* win over it.
    #[arg(long, value_name = "FILE", help_heading = "General")]
    pub(crate) config: Option<PathBuf>,
    /// Validate the options and config file, print the resolved routes, and exit.
    #[arg(long, help_heading = "General")]
    pub(crate) check_config: bool,
    /// Run the check once, print one status line, exit 0 OK, 1 WARNING (degraded), 2 CRITICAL, 3 UNKNOWN.
    #[arg(long, help_heading = "General")]
    pub(crate) once: bool,
    /// Print the commands instead of talking to ExaBGP (no ACKs); implied when stdout is a terminal.
    #[arg(long, help_heading = "General")]
    pub(crate) dry_run: bool,
    /// Name of this probe in every log line (default: the binary's name).
    #[arg(long, value_parser = parse_name, value_name = "NAME", help_heading = "General")]
    pub(crate) name: Option<String>,
    /// Log format on stderr.
    #[arg(
        long,
        value_enum,
        default_value = "text",
        value_name = "FORMAT",
        help_heading = "General"
    )]
    pub(crate) log_format: LogFormat,
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, action = ArgAction::Count, help_heading = "General")]
    pub(crate) verbose: u8,
    /// Less log output (-q warnings only, -qq errors only).
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "verbose", help_heading = "General")]
    pub(crate) quiet: u8,

    // ---- exabgp healthcheck compatibility (core/src/compat/mod.rs) -------------------------------
    /// The options of `exabgp healthcheck` exaprobe had not.
    #[command(flatten)]
    pub(crate) compat: crate::compat::options::CompatOptions,

    // ---- required probes (core/src/engine/require/) -------------------------------------------------
    /// `--require`, `--require-min`, `--no-routes`.
    #[command(flatten)]
    pub(crate) require: crate::engine::require::RequireOptions,

    // ---- observability (metrics, state file, syslog) ----------------------------------------
    /// Metrics, the state file and syslog.
    #[command(flatten)]
    pub(crate) observe: crate::observe::options::ObserveOptions,
}

impl CommonOptions {
    /// `--timeout`: how long a check may take. The runner enforces it and hands each check its
    /// deadline; a probe needs it only to configure a client that takes a duration (PostgreSQL's
    /// `statement_timeout`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// Longest `--name`: it is repeated in every log line.
pub(crate) const MAX_NAME_CHARS: usize = 64;

/// A MED, LOCAL_PREF or increment: a 32-bit unsigned number.
pub(crate) fn parse_med(text: &str) -> Result<u32, String> {
    whole_number(text, 0, u32::MAX)
}

/// A probe name: 1 to 64 printable characters (it is in every log line).
pub(crate) fn parse_name(text: &str) -> Result<String, String> {
    let count = text.chars().count();
    if count == 0 || count > MAX_NAME_CHARS {
        return Err(format!(
            "the name has {count} characters (expected 1 to {MAX_NAME_CHARS} printable characters)"
        ));
    }
    if text.chars().any(crate::kit::escape::is_unsafe) {
        return Err(format!(
            "'{text}' has control characters (expected 1 to {MAX_NAME_CHARS} printable characters)"
        ));
    }
    Ok(text.to_string())
}

/// A probe binary's whole command line: its check's options, then the options every probe has.
///
/// Generic over the check's options, so a binary needs no option struct of its own.
#[derive(Debug, Clone, clap::Parser)]
pub(crate) struct Cli<T: Args> {
    /// The check's own options.
    #[command(flatten)]
    pub probe: T,
    /// The options every probe shares.
    #[command(flatten)]
    pub common: CommonOptions,
}

/// Who a probe binary is: its name and one-line description, for `--help`, `--version`, logs
/// and man pages.
#[derive(Debug, Clone, Copy)]
pub struct Binary {
    /// The executable's name (`exaprobe-http`).
    pub name: &'static str,
    /// One line saying what it announces and when.
    pub about: &'static str,
    /// The probe's own options in the man page's examples (`--url http://127.0.0.1/health`), so
    /// every page shows a check that makes sense for its kind.
    pub example: &'static str,
    /// Environment variables the probe reads besides its `EXAPROBE_*` options (libpq's
    /// `PGHOST`...), with what each does, for the man page's ENVIRONMENT section.
    pub environment: &'static [(&'static str, &'static str)],
    /// This binary is the `exabgp healthcheck` drop-in (exaprobe-exec): the healthcheck's own
    /// options show in its `--help` and man page. The other probes accept them (a `run` line
    /// moved to another kind keeps working) but show only the shared ones (`--pid`, `--user`,
    /// `--group`).
    pub drop_in: bool,
}

impl Binary {
    /// The clap command of this binary for the check options `T`.
    ///
    /// An option of one value given twice takes the last value, as `exabgp healthcheck`
    /// (argparse) does, so its command lines keep working; list options still add up.
    pub fn command<T: Args>(&self) -> clap::Command {
        let mut command =
            crate::compat::argv::short_names(<Cli<T> as clap::CommandFactory>::command());
        if !self.drop_in {
            for id in crate::compat::options::drop_in_only() {
                command = command.mut_arg(id, |arg| arg.hide(true));
            }
        }
        command
            .args_override_self(true)
            .name(self.name)
            .bin_name(self.name)
            .about(self.about)
            .long_about(None::<&str>)
            .version(env!("CARGO_PKG_VERSION"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, clap::Args)]
    struct NoOptions {}

    fn binary(drop_in: bool) -> Binary {
        Binary {
            name: "exaprobe-test",
            about: "test",
            example: "",
            environment: &[],
            drop_in,
        }
    }

    #[test]
    fn only_the_drop_in_shows_the_healthcheck_options_but_every_probe_accepts_them() {
        let help = |drop_in: bool| {
            binary(drop_in)
                .command::<NoOptions>()
                .render_long_help()
                .to_string()
        };
        let (probe, drop_in) = (help(false), help(true));
        for option in [
            "--deaggregate-networks",
            "--ip-setup",
            "--label",
            "--silent",
            "--sudo",
        ] {
            assert!(
                drop_in.contains(option),
                "{option} missing from the drop-in's help"
            );
            assert!(
                !probe.contains(option),
                "{option} shown in another probe's help"
            );
        }
        for shared in ["--pid", "--user", "--group"] {
            assert!(
                probe.contains(shared) && drop_in.contains(shared),
                "{shared}"
            );
        }
        let parsed = binary(false).command::<NoOptions>().try_get_matches_from([
            "exaprobe-test",
            "--deaggregate-networks",
            "--prefix",
            "192.0.2.1",
        ]);
        assert!(parsed.is_ok(), "{parsed:?}");
    }
}
