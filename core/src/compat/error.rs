//! Why the drop-in cannot find, check or set up what its options ask for: one line each,
//! naming the option (exit 78, or 3 under `--once`).

use std::path::PathBuf;

use ipnet::IpNet;

/// A drop-in option that cannot be honoured, found before the settings are resolved or before
/// the host is changed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CompatError {
    /// No `--prefix`/`--ip`, and `lo`'s addresses could not be read through netlink.
    #[error("no --prefix/--ip given and cannot read the addresses of {ifname}: {error}")]
    InterfaceAddresses {
        ifname: &'static str,
        error: std::io::Error,
    },
    /// A network found or made with host bits set (never, as they are filtered: refused
    /// rather than announced wrong).
    #[error("'{net}' has host bits set")]
    HostBits { net: IpNet },
    /// `--deaggregate-networks` of networks holding too many addresses.
    #[error("--deaggregate-networks: {net} makes more than {max} host routes")]
    Deaggregation { net: IpNet, max: usize },
    /// One `--ip` network too big for IP set-up.
    #[error("--ip {net} has {size} addresses: {}", set_up_advice(.max))]
    NetworkTooLarge { net: IpNet, size: u128, max: usize },
    /// The `--ip` networks together too big for IP set-up.
    #[error("the --ip networks up to {net} have {total} addresses: {}", set_up_advice(.max))]
    NetworksTooLarge { net: IpNet, total: u128, max: usize },
    /// `--label` too long for the kernel on an `--ip-ifname` interface.
    #[error(
        "--label {label}: the label of --ip-ifname {net}%{ifname} would be {full}, {} bytes; the kernel takes at most {max}",
        full.len()
    )]
    LabelTooLong {
        label: String,
        net: IpNet,
        ifname: String,
        full: String,
        max: usize,
    },
    /// `--user NAME` or `--group NAME` could not be looked up.
    #[error("--{option} {name}: cannot look it up: {errno}")]
    Lookup {
        option: &'static str,
        name: String,
        errno: nix::errno::Errno,
    },
    /// `--user NAME` or `--group NAME` names no user or group.
    #[error("--{option} {name}: no such {option}")]
    Unknown { option: &'static str, name: String },
    /// Switching to `--user`/`--group` failed.
    #[error("{option}: cannot {action}: {errno}")]
    Switch {
        /// `--user NAME` or `--group NAME`.
        option: String,
        /// What was refused (`switch to uid 1000`).
        action: String,
        errno: nix::errno::Errno,
    },
    /// `--pid FILE` could not be written.
    #[error("--pid {}: cannot write it: {error:#}", path.display())]
    PidFile { path: PathBuf, error: anyhow::Error },
}

/// What follows a refused IP set-up size.
fn set_up_advice(max: &usize) -> String {
    format!(
        "IP set-up adds each to the interface and takes at most {max}; give --no-ip-setup to announce the networks without adding their addresses"
    )
}
