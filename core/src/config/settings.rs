//! Cross-option validation: turns parsed [`CommonOptions`] into [`Settings`] the runner uses,
//! with one clear message per rule broken (an IPv6 prefix without an IPv6 next hop, a MED that
//! would overflow, no prefix at all).

use std::time::Duration;

use crate::config::options::CommonOptions;
use crate::engine::dialect::{ApiDialect, ApiSetting};
use crate::engine::exabgp::AckMode;
use crate::engine::health::Hysteresis;
use crate::engine::render::RoutePolicy;
use crate::engine::route::{NextHop, Prefix, Values};
use crate::observe::logging::LogFormat;

/// Everything the runner needs, validated as a whole.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings {
    /// Routes and their attributes per state.
    pub routes: RoutePolicy,
    /// Rise and fall.
    pub hysteresis: Hysteresis,
    /// Timing.
    pub timing: Timing,
    /// How commands are acknowledged.
    pub ack: AckMode,
    /// Drain and flap damping.
    pub(crate) safety: crate::engine::routing::Safety,
    /// `--exabgp-api auto` under ExaBGP: ask it which dialect it speaks before the first command.
    pub(crate) detect_dialect: bool,
    /// Maintenance file.
    pub disable_file: Option<std::path::PathBuf>,
    /// Transition hooks.
    pub hooks: HookCommands,
    /// Name in every log line.
    pub name: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Metrics, the state file.
    pub observe: crate::observe::ObserveSettings,
    /// Required probes (`--require`) and `--no-routes`.
    pub(crate) require: crate::engine::require::RequireSettings,
}

/// Schedule and deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    /// Between checks in UP, DOWN, DISABLED (and INIT).
    pub interval: Duration,
    /// Between checks in RISING and FALLING.
    pub fast_interval: Duration,
    /// Per check.
    pub timeout: Duration,
    /// Healthy but slower than this is degraded.
    pub degraded_latency: Option<Duration>,
    /// MED penalty when degraded and the probe gives none.
    pub degraded_penalty: u32,
    /// Re-send the state this often.
    pub refresh_interval: Option<Duration>,
    /// Random extra delay, up to this, added to each interval.
    pub splay: Duration,
    /// Between checks while DOWN.
    pub down_interval: Duration,
    /// Per hook command.
    pub hook_timeout: Duration,
    /// Run the probe's watcher and react to its events (`--events`).
    pub events: bool,
}

/// Commands run on transitions (`sh -c`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HookCommands {
    /// On every state change.
    pub any: Vec<String>,
    /// On entering UP.
    pub up: Vec<String>,
    /// On entering DOWN.
    pub down: Vec<String>,
    /// On entering DISABLED.
    pub disabled: Vec<String>,
}

/// How the probe talks to its stdout, decided by the mode flags and whether it is a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ModeFlags {
    /// `--dry-run` given or stdout is a terminal.
    pub dry_run: bool,
    /// `--once` or `--check-config`: no routes needed.
    pub routes_optional: bool,
}

/// Values that are valid but almost certainly a mistake, one sentence each, logged at start.
///
/// A default route (`0.0.0.0/0`, `::/0`) announced by a health probe pulls every destination
/// without a more specific route towards this host. An unspecified next hop (`0.0.0.0`, `::`) is
/// accepted and sent by ExaBGP (its parser takes any address), so refusing it here would be
/// stricter than the daemon; but receivers (FRR, BIRD, GoBGP) treat it as an invalid next hop and
/// ignore the route (RFC 4271 §6.3, RFC 7606), which is worth one line at start rather than a
/// silent outage.
pub(crate) fn warnings(options: &CommonOptions) -> Vec<String> {
    let mut warnings = Vec::new();
    for prefix in &options.prefixes {
        if prefix.network().prefix_len() == 0 {
            warnings.push(format!(
                "--prefix {prefix} is a default route: it draws all traffic that has no more specific route"
            ));
        }
    }
    for (flag, hop) in [
        ("--next-hop", Some(options.next_hop)),
        ("--next-hop6", options.next_hop6),
    ] {
        if let Some(NextHop::Address(address)) = hop
            && address.is_unspecified()
        {
            warnings.push(format!(
                "{flag} {address} is the unspecified address: peers ignore routes with it as next hop; give self or a reachable address"
            ));
        }
    }
    warnings
}

/// A combination of options that cannot work, found before anything runs (exit 78). The
/// message names the options.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingsError {
    #[error("no prefix to announce: give at least one --prefix (alias --ip)")]
    NoPrefix,
    #[error("--prefix {0} is given twice")]
    DuplicatePrefix(Prefix),
    #[error(
        "--next-hop {0} is IPv6 but there are IPv4 prefixes: give an IPv4 --next-hop and --next-hop6 {0}"
    )]
    Ipv6NextHopForIpv4(std::net::IpAddr),
    #[error(
        "IPv6 prefix {prefix} needs an IPv6 next hop: --next-hop {next_hop} is IPv4, give --next-hop6"
    )]
    NoIpv6NextHop {
        prefix: Prefix,
        next_hop: std::net::IpAddr,
    },
    #[error("--next-hop6 {0} is not an IPv6 address")]
    Ipv4NextHop6(std::net::IpAddr),
    #[error(
        "the MED would exceed {max} with {prefixes} prefixes, --increase {increase} and these metrics",
        max = u32::MAX
    )]
    MedOverflow { prefixes: usize, increase: u32 },
    #[error("--name {0:?} must be non-empty printable text")]
    BadName(String),
    #[error(
        "a route command would be {bytes} bytes long, more than the {limit} bytes ExaBGP's pipe takes in one write: use fewer communities, neighbors or AS-path entries"
    )]
    CommandTooLong { bytes: usize, limit: usize },
    #[error("--drain-community takes exactly one community (default 65535:0)")]
    DrainCommunity,
    /// Address discovery or IP set-up options (`--ip-ifname`, `--start-ip`, ...).
    #[error("{0}")]
    Addresses(String),
    /// Metrics, state file or syslog options.
    #[error("{0}")]
    Observe(String),
    /// `--require`, `--require-min`, `--no-routes`.
    #[error("{0}")]
    Require(String),
}

impl Settings {
    /// Validate `options` as a whole. `default_name` is the binary's name.
    pub(crate) fn resolve(
        options: &CommonOptions,
        default_name: &str,
        modes: ModeFlags,
    ) -> Result<Settings, SettingsError> {
        // --prefix/--ip, or the addresses of lo; --deaggregate-networks, --start-ip.
        let prefixes: Vec<Prefix> =
            crate::compat::ip_setup::prefixes(options).map_err(SettingsError::Addresses)?;
        let (ip_up, ip_down) =
            crate::compat::ip_setup::dynamic_hooks(options).map_err(SettingsError::Addresses)?;
        if options.require.no_routes && !prefixes.is_empty() {
            return Err(SettingsError::Require(format!(
                "--no-routes announces nothing, but {} prefix(es) are given (--prefix {})",
                prefixes.len(),
                prefixes[0]
            )));
        }
        if prefixes.is_empty() && !modes.routes_optional && !options.require.no_routes {
            return Err(SettingsError::NoPrefix);
        }
        let mut seen = std::collections::BTreeSet::new();
        for prefix in &prefixes {
            if !seen.insert(*prefix) {
                return Err(SettingsError::DuplicatePrefix(*prefix));
            }
        }
        if let NextHop::Address(address) = options.next_hop
            && address.is_ipv6()
            && options.next_hop6.is_none()
            && prefixes.iter().any(|p| !p.is_ipv6())
        {
            return Err(SettingsError::Ipv6NextHopForIpv4(address));
        }
        let next_hop6 = match (options.next_hop6, options.next_hop) {
            (Some(hop), _) => hop,
            (None, NextHop::Local) => NextHop::Local,
            (None, NextHop::Address(address)) if address.is_ipv6() => NextHop::Address(address),
            (None, NextHop::Address(address)) => {
                if let Some(v6) = prefixes.iter().find(|p| p.is_ipv6()) {
                    return Err(SettingsError::NoIpv6NextHop {
                        prefix: *v6,
                        next_hop: address,
                    });
                }
                NextHop::Local
            }
        };
        if let NextHop::Address(address) = next_hop6
            && address.is_ipv4()
        {
            return Err(SettingsError::Ipv4NextHop6(address));
        }
        let last_index = u64::try_from(prefixes.len().saturating_sub(1)).unwrap_or(u64::MAX);
        let highest_base = [
            u64::from(options.up_metric) + u64::from(options.degraded_penalty),
            u64::from(options.down_metric),
            u64::from(options.disabled_metric),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        if highest_base + last_index * u64::from(options.increase) > u64::from(u32::MAX) {
            return Err(SettingsError::MedOverflow {
                prefixes: prefixes.len(),
                increase: options.increase,
            });
        }
        for warning in warnings(options) {
            tracing::warn!("{warning}");
        }
        if options.fast_interval > options.interval {
            tracing::warn!(
                fast_interval = ?options.fast_interval,
                interval = ?options.interval,
                "--fast-interval is longer than --interval"
            );
        }
        let name = options
            .name
            .clone()
            .unwrap_or_else(|| default_name.to_string());
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(SettingsError::BadName(name));
        }
        let ack = if modes.dry_run {
            AckMode::DryRun
        } else if options.no_ack {
            AckMode::Off
        } else {
            AckMode::Wait(options.ack_timeout)
        };
        let flatten = |lists: &[crate::engine::route::CommunityList]| -> Vec<String> {
            lists
                .iter()
                .flat_map(|l| l.values().iter().cloned())
                .collect()
        };
        let settings = Settings {
            routes: RoutePolicy {
                prefixes,
                next_hop: options.next_hop,
                next_hop6,
                up_metric: options.up_metric,
                down_metric: options.down_metric,
                disabled_metric: options.disabled_metric,
                increase: options.increase,
                withdraw_on_down: options.withdraw_on_down,
                local_preference: options.local_preference,
                communities: flatten(&options.communities),
                extended_communities: options
                    .extended_communities
                    .iter()
                    .flat_map(|l| l.values().iter().cloned())
                    .collect(),
                large_communities: options
                    .large_communities
                    .iter()
                    .flat_map(|l| l.values().iter().cloned())
                    .collect(),
                disabled_communities: flatten(&options.disabled_communities),
                drain_community: drain_community(options)?,
                as_path: options.as_path.clone(),
                up_as_path: options.up_as_path.clone(),
                down_as_path: options.down_as_path.clone(),
                disabled_as_path: options.disabled_as_path.clone(),
                path_id: options.path_id,
                neighbors: options.neighbors.clone(),
                dialect: match options.exabgp_api {
                    ApiSetting::Auto | ApiSetting::V4 => ApiDialect::V4,
                    ApiSetting::V6 => ApiDialect::V6,
                },
            },
            hysteresis: Hysteresis {
                rise: options.rise,
                fall: options.fall,
            },
            timing: Timing {
                interval: options.interval,
                fast_interval: options.fast_interval,
                timeout: options.timeout,
                degraded_latency: options.degraded_latency,
                degraded_penalty: options.degraded_penalty,
                refresh_interval: options.refresh_interval,
                splay: options.splay,
                down_interval: options.down_interval.unwrap_or(options.interval),
                events: options.events == crate::config::options::Switch::On,
                hook_timeout: options.hook_timeout,
            },
            ack,
            detect_dialect: options.exabgp_api == ApiSetting::Auto
                && !modes.dry_run
                && !options.require.no_routes,
            safety: crate::engine::routing::Safety {
                drain: options.drain,
                flap: (options.flap_limit > 0).then_some(crate::engine::routing::FlapLimits {
                    limit: options.flap_limit,
                    window: options.flap_window,
                    hold: options.flap_hold,
                }),
            },
            disable_file: options.disable.clone(),
            hooks: HookCommands {
                any: options.execute.clone(),
                up: [ip_up, options.up_execute.clone()].concat(),
                down: [ip_down.clone(), options.down_execute.clone()].concat(),
                disabled: [ip_down, options.disabled_execute.clone()].concat(),
            },
            name,
            log_format: options.log_format,
            observe: crate::observe::ObserveSettings::resolve(&options.observe, default_name)
                .map_err(SettingsError::Observe)?,
            require: crate::engine::require::RequireSettings::resolve(
                &options.require,
                options.observe.state_file.as_deref(),
            )
            .map_err(SettingsError::Require)?,
        };
        settings
            .observe
            .check_files(&settings.name)
            .map_err(SettingsError::Observe)?;
        settings.check_command_length()?;
        Ok(settings)
    }

    /// Every command must fit in one atomic pipe write (`PIPE_BUF`), so that a stalled or
    /// killed probe can never leave half a command in ExaBGP's pipe.
    fn check_command_length(&self) -> Result<(), SettingsError> {
        use crate::engine::render::Target;
        // Room for the longest MED (10 digits) whatever the state's own number is.
        const MED_SLACK: usize = 10;
        let longest = [
            Target::Up { penalty: 0 },
            Target::Down,
            Target::Disabled,
            Target::Gone,
        ]
        .into_iter()
        .flat_map(|target| self.routes.plan(target).into_values())
        .flat_map(|action| action.lines)
        .map(|line| line.len() + 1)
        .max()
        .unwrap_or(0);
        if longest + MED_SLACK > crate::engine::output::PIPE_BUF {
            return Err(SettingsError::CommandTooLong {
                bytes: longest,
                limit: crate::engine::output::PIPE_BUF - MED_SLACK,
            });
        }
        Ok(())
    }
}

/// `--drain-community`: exactly one standard community.
fn drain_community(options: &CommonOptions) -> Result<String, SettingsError> {
    match options.drain_community.values() {
        [one] => Ok(one.clone()),
        _ => Err(SettingsError::DrainCommunity),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A probe with no options of its own.
    #[derive(Debug, Clone, clap::Args)]
    struct NoOptions {}

    fn options(args: &[&str]) -> CommonOptions {
        let argv = std::iter::once("exaprobe-test").chain(args.iter().copied());
        crate::config::options::Cli::<NoOptions>::try_parse_from(argv)
            .unwrap_or_else(|error| panic!("{args:?}: {error}"))
            .common
    }

    const RUN: ModeFlags = ModeFlags {
        dry_run: false,
        routes_optional: false,
    };

    /// Load the common options as a binary does: command line, `-F` file, environment, TOML.
    fn load(
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<CommonOptions, crate::config::load_error::LoadError> {
        let binary = crate::config::options::Binary {
            drop_in: false,
            name: "exaprobe-test",
            about: "",
            example: "",
            environment: &[],
        };
        let command = binary.command::<NoOptions>();
        let mut argv: Vec<std::ffi::OsString> = vec!["exaprobe-test".into()];
        argv.extend(args.iter().map(std::ffi::OsString::from));
        let argv = crate::compat::argv::expand_argv(&command, &argv)?;
        let env: Vec<(String, std::ffi::OsString)> =
            env.iter().map(|(k, v)| (k.to_string(), v.into())).collect();
        crate::config::loader::load_from::<crate::config::options::Cli<NoOptions>>(
            command,
            &argv,
            &|name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
        )
        .map(|cli| cli.common)
    }

    /// `--down-interval` has the floor of `--interval`, and a `--label` longer than the kernel
    /// takes is refused at parse, in every source, with one line naming it and its exit code.
    #[test]
    fn floors_and_label_length_hold_in_every_source() {
        let dir = tempfile::tempdir().unwrap();
        let hc = dir.path().join("hc.conf");
        std::fs::write(&hc, "down-interval = 0.000000001\n").unwrap();
        let toml = dir.path().join("probe.toml");
        std::fs::write(&toml, "down-interval = \"0.000000001\"\n").unwrap();
        let (hc, toml) = (hc.display().to_string(), toml.display().to_string());
        let floor = "'0.000000001' is shorter than the minimum of 10ms";
        /// Arguments, environment, the message's start, exit code.
        type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, String, u8);
        let cases: Vec<Case> = vec![
            (
                vec!["--down-interval", "0.000000001"],
                vec![],
                format!("--down-interval: {floor}"),
                64,
            ),
            (
                vec![],
                vec![("EXAPROBE_DOWN_INTERVAL", "0.000000001")],
                format!("EXAPROBE_DOWN_INTERVAL: {floor}"),
                78,
            ),
            (
                vec!["-F", &hc],
                vec![],
                format!("--down-interval: {floor}"),
                64,
            ),
            (
                vec!["--config", &toml],
                vec![],
                format!("down-interval in {toml} line 1: {floor}"),
                78,
            ),
            (
                vec!["--label", "abcdefghijklm"],
                vec![],
                "--label: 'abcdefghijklm' is 13 bytes long: the kernel takes at most 15 for lo:LABEL, so LABEL may have 12".into(),
                64,
            ),
            (
                vec![],
                vec![("EXAPROBE_LABEL", "abcdefghijklm")],
                "EXAPROBE_LABEL: 'abcdefghijklm' is 13 bytes long: the kernel takes at most 15 for lo:LABEL, so LABEL may have 12".into(),
                78,
            ),
        ];
        for (args, env, message, code) in cases {
            let error = load(&args, &env).unwrap_err();
            assert!(
                error.message().starts_with(&message) && error.exit().code() == code,
                "{args:?} {env:?}: {} (exit {})",
                error.message(),
                error.exit().code()
            );
        }
        let options = load(&["--down-interval", "10ms", "--label", "abcdefghijkl"], &[]).unwrap();
        assert_eq!(options.down_interval, Some(Duration::from_millis(10)));
        assert_eq!(options.compat.label.as_deref(), Some("abcdefghijkl"));
    }

    /// `--state-file` and `--pid` at a FIFO are refused at parse from any source, the metrics
    /// textfile at one when resolved, so `--check-config` says so too (exit 78 outside the
    /// command line).
    #[test]
    fn output_files_must_be_regular_or_missing() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let fifo = fifo.display().to_string();
        let not_regular = format!("'{fifo}': it is a FIFO, not a regular file");
        for (args, env, message, code) in [
            (
                vec!["--state-file", fifo.as_str()],
                vec![],
                format!("--state-file: {not_regular}"),
                64,
            ),
            (
                vec![],
                vec![("EXAPROBE_STATE_FILE", fifo.as_str())],
                format!("EXAPROBE_STATE_FILE: {not_regular}"),
                78,
            ),
            (
                vec!["--pid", fifo.as_str()],
                vec![],
                format!("--pid: {not_regular}"),
                64,
            ),
            (
                vec![],
                vec![("EXAPROBE_PID", fifo.as_str())],
                format!("EXAPROBE_PID: {not_regular}"),
                78,
            ),
        ] {
            let error = load(&args, &env).unwrap_err();
            assert_eq!(
                (error.message(), error.exit().code()),
                (message, code),
                "{args:?} {env:?}"
            );
        }
        let textfile = dir.path().join("exaprobe-web.prom");
        nix::unistd::mkfifo(&textfile, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let dir_text = dir.path().display().to_string();
        let error = Settings::resolve(
            &options(&[
                "--prefix",
                "192.0.2.1",
                "--name",
                "web",
                "--metrics-textfile",
                &dir_text,
            ]),
            "exaprobe-test",
            RUN,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "--metrics-textfile {dir_text}: {}: it is a FIFO, not a regular file",
                textfile.display()
            )
        );
        assert!(
            Settings::resolve(
                &options(&[
                    "--prefix",
                    "192.0.2.1",
                    "--name",
                    "other",
                    "--metrics-textfile",
                    &dir_text
                ]),
                "exaprobe-test",
                RUN,
            )
            .is_ok()
        );
    }

    /// Every cross-option rule, with its exact message.
    #[test]
    fn cross_option_rules() {
        let cases: &[(&[&str], &str)] = &[
            (
                &[],
                "no prefix to announce: give at least one --prefix (alias --ip)",
            ),
            (
                &["--prefix", "192.0.2.1", "--ip", "192.0.2.1/32"],
                "--prefix 192.0.2.1/32 is given twice",
            ),
            (
                &["--prefix", "192.0.2.1", "--next-hop", "2001:db8::1"],
                "--next-hop 2001:db8::1 is IPv6 but there are IPv4 prefixes: give an IPv4 --next-hop and --next-hop6 2001:db8::1",
            ),
            (
                &["--prefix", "2001:db8::/48", "--next-hop", "10.0.0.1"],
                "IPv6 prefix 2001:db8::/48 needs an IPv6 next hop: --next-hop 10.0.0.1 is IPv4, give --next-hop6",
            ),
            (
                &["--prefix", "2001:db8::/48", "--next-hop6", "10.0.0.1"],
                "--next-hop6 10.0.0.1 is not an IPv6 address",
            ),
            (
                &[
                    "--prefix",
                    "192.0.2.1",
                    "--prefix",
                    "192.0.2.2",
                    "--up-metric",
                    "4294967295",
                ],
                "the MED would exceed 4294967295 with 2 prefixes, --increase 1 and these metrics",
            ),
            (
                &[
                    "--prefix",
                    "192.0.2.1",
                    "--down-metric",
                    "4294967295",
                    "--prefix",
                    "192.0.2.2",
                ],
                "the MED would exceed 4294967295 with 2 prefixes, --increase 1 and these metrics",
            ),
        ];
        for (args, expected) in cases {
            assert_eq!(
                Settings::resolve(&options(args), "exaprobe-test", RUN)
                    .unwrap_err()
                    .to_string(),
                *expected,
                "{args:?}"
            );
        }
    }

    #[test]
    fn valid_combinations_resolve() {
        let cases: &[(&[&str], ModeFlags)] = &[
            (
                &[],
                ModeFlags {
                    dry_run: false,
                    routes_optional: true,
                },
            ),
            (&["--prefix", "192.0.2.1", "--prefix", "2001:db8::1"], RUN),
            (
                &["--prefix", "2001:db8::1", "--next-hop", "2001:db8::2"],
                RUN,
            ),
            (
                &[
                    "--prefix",
                    "192.0.2.1",
                    "--prefix",
                    "2001:db8::1",
                    "--next-hop",
                    "10.0.0.1",
                    "--next-hop6",
                    "2001:db8::2",
                ],
                RUN,
            ),
            (
                &[
                    "--prefix",
                    "192.0.2.1",
                    "--up-metric",
                    "4294967095",
                    "--increase",
                    "0",
                ],
                RUN,
            ),
        ];
        for (args, modes) in cases {
            let settings = Settings::resolve(&options(args), "exaprobe-test", *modes);
            assert!(settings.is_ok(), "{args:?}: {settings:?}");
        }
    }

    #[test]
    fn likely_mistakes_are_warned_about() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["--prefix", "192.0.2.1"], &[]),
            (
                &["--prefix", "0.0.0.0/0", "--prefix", "::/0"],
                &[
                    "--prefix 0.0.0.0/0 is a default route: it draws all traffic that has no more specific route",
                    "--prefix ::/0 is a default route: it draws all traffic that has no more specific route",
                ],
            ),
            (
                &[
                    "--prefix",
                    "192.0.2.1",
                    "--next-hop",
                    "0.0.0.0",
                    "--next-hop6",
                    "::",
                ],
                &[
                    "--next-hop 0.0.0.0 is the unspecified address: peers ignore routes with it as next hop; give self or a reachable address",
                    "--next-hop6 :: is the unspecified address: peers ignore routes with it as next hop; give self or a reachable address",
                ],
            ),
        ];
        for (args, expected) in cases {
            assert_eq!(warnings(&options(args)), *expected, "{args:?}");
        }
    }

    #[test]
    fn a_command_longer_than_one_atomic_pipe_write_is_refused() {
        let many: Vec<String> = (0..600).map(|i| format!("65000:{i}")).collect();
        let many = many.join(" ");
        let refused = Settings::resolve(
            &options(&["--prefix", "192.0.2.1/32", "--community", &many]),
            "test",
            RUN,
        );
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("more than the 4086 bytes")
        );
        let some: Vec<String> = (0..100).map(|i| format!("65000:{i}")).collect();
        let some = some.join(" ");
        let fine = Settings::resolve(
            &options(&["--prefix", "192.0.2.1/32", "--community", &some]),
            "test",
            RUN,
        );
        assert!(fine.is_ok());
    }
}
