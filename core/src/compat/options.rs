//! The options of `exabgp healthcheck` that exaprobe did not have, with the same names, short
//! names, value syntax and defaults (ExaBGP 5.0's and 6.0's `healthcheck.py`).

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
    #[arg(short = 'p', long = "pid", value_name = "FILE", value_parser = crate::kit::files::parse_output_file, help_heading = HEADING)]
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

/// The drop-in's options every probe shows (process-level, as useful to any probe).
const SHARED: [&str; 3] = ["pid", "user", "group"];

/// The ids of the drop-in's options only exaprobe-exec (the drop-in) shows in its help.
pub(crate) fn drop_in_only() -> Vec<String> {
    CompatOptions::augment_args(clap::Command::new("drop-in"))
        .get_arguments()
        .map(|arg| arg.get_id().to_string())
        .filter(|id| !SHARED.contains(&id.as_str()))
        .collect()
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
pub(super) fn parse_ip_ifname(text: &str) -> Result<IpIfname, String> {
    let parts: Vec<&str> = text.split('%').collect();
    let [ip, ifname] = parts.as_slice() else {
        return Err(format!("'{text}' is not IP%IFNAME (192.0.2.1%eth0)"));
    };
    let net = ip.parse::<crate::engine::route::Prefix>()?;
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
pub(super) fn parse_label(text: &str) -> Result<String, String> {
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
