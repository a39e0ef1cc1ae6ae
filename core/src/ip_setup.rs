//! The service addresses as `exabgp healthcheck` finds and sets them up.
//!
//! - With no `--ip`/`--prefix`, the addresses on `lo` outside the loopback ranges are announced
//!   (only those labelled `lo:LABEL...` with `--label`), in the kernel's order, as
//!   `ip -o address show dev lo` lists them. An address with host bits set for its mask
//!   (`192.0.2.77/24`) is skipped, as the healthcheck's strict parse skips it.
//! - `--deaggregate-networks` announces each address of each network as a host route, and
//!   `--start-ip N` rotates the list so that its N-th entry comes first (gets `--up-metric`).
//! - IP setup adds each `--ip` host address missing from its interface (`lo`, or the one of
//!   `--ip-ifname`) at start, through netlink or with `--sudo` through `sudo ip address add`, and
//!   removes at exit what it added. The healthcheck removes every `--ip` address found on the
//!   interface at exit, even one the operator configured; exaprobe leaves those in place.
//! - `--dynamic-ip-setup` removes the addresses when DOWN or DISABLED and adds them when UP, with
//!   `ip address` commands run as hooks, as the healthcheck does.

use std::ffi::OsString;
use std::net::Ipv6Addr;

use ipnet::{IpAddrRange, IpNet};

use crate::compat::CompatOptions;
use crate::interfaces::{Change, InterfaceAddress};
use crate::options::CommonOptions;
use crate::route::Prefix;

/// The interface the healthcheck reads and sets up when `--ip-ifname` names none.
pub(crate) const DEFAULT_IFNAME: &str = "lo";

/// Most addresses `--deaggregate-networks` makes (the healthcheck would try a /8 for ever).
const MAX_DEAGGREGATED: usize = 65536;

/// The prefixes to announce: `--prefix`/`--ip`, or those found on `lo`; deaggregated and
/// rotated as the healthcheck options say.
pub(crate) fn prefixes(options: &CommonOptions) -> Result<Vec<Prefix>, String> {
    let compat = &options.compat;
    let mut nets: Vec<IpNet> = if options.prefixes.is_empty() {
        let found = crate::interfaces::addresses(DEFAULT_IFNAME).map_err(|error| {
            format!(
                "no --prefix/--ip given and cannot read the addresses of {DEFAULT_IFNAME}: {error}"
            )
        })?;
        let nets = service_addresses(&found, DEFAULT_IFNAME, compat);
        // None found: the caller's "no prefix to announce" says it.
        if !nets.is_empty() {
            tracing::info!(
            found = %nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
            "no --prefix/--ip given: announcing the addresses of {DEFAULT_IFNAME}"
            );
        }
        nets
    } else {
        options
            .prefixes
            .iter()
            .map(|prefix| prefix.network())
            .collect()
    };
    let derived = options.prefixes.is_empty() || compat.deaggregate_networks;
    if compat.deaggregate_networks {
        nets = host_addresses(&nets)?;
    }
    rotate(&mut nets, compat.start_ip);
    if derived {
        let repeated = keep_first_of_each(&mut nets);
        if !repeated.is_empty() {
            tracing::info!(
                repeated = %repeated.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
                "addresses found more than once (a host address inside a network also on \
                 {DEFAULT_IFNAME}, or overlapping networks): each is announced once"
            );
        }
    }
    nets.into_iter().map(Prefix::from_network).collect()
}

/// Drop the repeats of `nets` (keeping the first of each) and return them: a list found on an
/// interface or made by deaggregation can name one host twice, which is no operator's mistake
/// (a `--prefix` given twice still is, and is refused).
fn keep_first_of_each(nets: &mut Vec<IpNet>) -> Vec<IpNet> {
    let mut seen = std::collections::HashSet::new();
    let mut repeated = Vec::new();
    nets.retain(|net| {
        let first = seen.insert(*net);
        if !first {
            repeated.push(*net);
        }
        first
    });
    repeated
}

/// The addresses of interface `ifname` the healthcheck would use: not loopback, no host bits
/// set, and with `--label` the IPv4 label `IFNAME:LABEL...` (or exactly `IFNAME:LABEL`).
pub(crate) fn service_addresses(
    found: &[InterfaceAddress],
    ifname: &str,
    compat: &CompatOptions,
) -> Vec<IpNet> {
    found
        .iter()
        .filter_map(|address| {
            let net = IpNet::new(address.address, address.prefix_len).ok()?;
            if net.trunc() != net || is_loopback(&net) {
                return None;
            }
            if let Some(wanted) = &compat.label {
                let label = address
                    .label
                    .as_deref()?
                    .strip_prefix(ifname)?
                    .strip_prefix(':')?;
                let label = label.split(['\\', ' ', '\t']).next().unwrap_or("");
                let matches = if compat.label_exact_match {
                    label == wanted
                } else {
                    label.starts_with(wanted.as_str())
                };
                if !matches {
                    return None;
                }
            }
            Some(net)
        })
        .collect()
}

/// Python's `is_loopback` of a network: inside 127.0.0.0/8, or exactly ::1/128.
fn is_loopback(net: &IpNet) -> bool {
    match net {
        IpNet::V4(v4) => v4.network().is_loopback() && v4.broadcast().is_loopback(),
        IpNet::V6(v6) => v6.prefix_len() == 128 && v6.addr() == Ipv6Addr::LOCALHOST,
    }
}

/// Every address of every network, as host routes (network and broadcast addresses included,
/// as the healthcheck iterates a network).
pub(crate) fn host_addresses(nets: &[IpNet]) -> Result<Vec<IpNet>, String> {
    let mut hosts = Vec::new();
    for net in nets {
        let range: IpAddrRange = match net {
            IpNet::V4(v4) => ipnet::Ipv4AddrRange::new(v4.network(), v4.broadcast()).into(),
            IpNet::V6(v6) => ipnet::Ipv6AddrRange::new(v6.network(), v6.broadcast()).into(),
        };
        for address in range {
            if hosts.len() == MAX_DEAGGREGATED {
                return Err(format!(
                    "--deaggregate-networks: {net} makes more than {MAX_DEAGGREGATED} host routes"
                ));
            }
            hosts.push(IpNet::from(address));
        }
    }
    Ok(hosts)
}

/// `collections.deque.rotate(-start)`: the entry at `start` first, negative from the end.
pub(crate) fn rotate<T>(items: &mut [T], start: i64) {
    if items.is_empty() {
        return;
    }
    let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let by = usize::try_from(start.rem_euclid(len)).unwrap_or(0);
    items.rotate_left(by);
}

/// Whether to add the missing `--ip` addresses at start: `--ip-setup`, or addresses spelled
/// `--ip` (the healthcheck's default) without `--no-ip-setup`; `--dynamic-ip-setup` implies it.
pub(crate) fn wanted(compat: &CompatOptions, argv: &[OsString]) -> bool {
    !compat.no_ip_setup
        && (compat.ip_setup || compat.dynamic_ip_setup || crate::compat::ip_spelled(argv))
}

/// One host address and the interface it belongs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    host: IpNet,
    ifname: String,
}

/// Each host address of the `--ip` networks, on its `--ip-ifname` interface or `lo`.
fn placements(options: &CommonOptions) -> Result<Vec<Placement>, String> {
    let nets: Vec<IpNet> = options
        .prefixes
        .iter()
        .map(|prefix| prefix.network())
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    Ok(host_addresses(&nets)?
        .into_iter()
        .filter(|host| seen.insert(*host))
        .map(|host| Placement {
            ifname: options
                .compat
                .ip_ifnames
                .iter()
                .find(|pair| pair.net.contains(&host))
                .map_or_else(|| DEFAULT_IFNAME.to_string(), |pair| pair.ifname.clone()),
            host,
        })
        .collect())
}

/// The label the healthcheck gives an added address: `IFNAME:LABEL`.
fn label_of(compat: &CompatOptions, ifname: &str) -> Option<String> {
    compat
        .label
        .as_ref()
        .map(|label| format!("{ifname}:{label}"))
}

/// What IP setup added, to remove at exit.
#[derive(Debug, Default)]
pub(crate) struct Added {
    hosts: Vec<Placement>,
    sudo: bool,
}

/// Add the `--ip` addresses missing from their interfaces. Failures are logged as one error
/// line (the probe runs on, as the healthcheck does when `ip` fails), never fatal.
pub(crate) fn set_up(options: &CommonOptions) -> Added {
    let compat = &options.compat;
    let mut added = Added {
        hosts: Vec::new(),
        sudo: compat.sudo,
    };
    let placements = match placements(options) {
        Ok(placements) => placements,
        Err(error) => {
            tracing::error!("ip setup: {error}");
            return added;
        }
    };
    let mut kept = Vec::new();
    for placement in placements {
        let present = crate::interfaces::addresses(&placement.ifname).map(|found| {
            service_addresses(&found, &placement.ifname, compat).contains(&placement.host)
        });
        match present {
            Ok(true) => {
                kept.push(placement.host.to_string());
                continue;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::error!(
                    "ip setup: cannot read the addresses of {}: {error}",
                    placement.ifname
                );
                return added;
            }
        }
        let label = label_of(compat, &placement.ifname);
        let result = if compat.sudo {
            sudo_ip("add", &placement, label.as_deref())
        } else {
            crate::interfaces::add_address(&placement.ifname, placement.host, label.as_deref())
                .map_err(|error| describe(&error))
        };
        match result {
            Ok(Change::Done) => {
                tracing::info!(address = %placement.host, interface = %placement.ifname, "ip setup: added");
                added.hosts.push(placement);
            }
            Ok(Change::Unchanged) => kept.push(placement.host.to_string()),
            Err(error) => {
                tracing::error!(
                    "ip setup: cannot add {} to {}: {error}; give --no-ip-setup if the address is set up elsewhere",
                    placement.host,
                    placement.ifname
                );
                return added;
            }
        }
    }
    if !kept.is_empty() {
        tracing::warn!(
            addresses = %kept.join(" "),
            "ip setup: already configured, left in place at exit (exabgp healthcheck would remove them)"
        );
    }
    added
}

/// An OS error with what to do about a missing privilege.
fn describe(error: &std::io::Error) -> String {
    if error.raw_os_error() == Some(libc::EPERM) || error.raw_os_error() == Some(libc::EACCES) {
        format!("{error}: needs root or CAP_NET_ADMIN, or give --sudo")
    } else {
        error.to_string()
    }
}

impl Added {
    /// Remove what [`set_up`] added (at exit); a failure is one warning line each.
    pub(crate) fn remove(&self) {
        for placement in &self.hosts {
            let result = if self.sudo {
                sudo_ip("delete", placement, None)
            } else {
                crate::interfaces::delete_address(&placement.ifname, placement.host)
                    .map_err(|error| describe(&error))
            };
            match result {
                Ok(_) => {
                    tracing::info!(address = %placement.host, interface = %placement.ifname, "ip setup: removed")
                }
                Err(error) => tracing::warn!(
                    "ip setup: cannot remove {} from {}: {error}",
                    placement.host,
                    placement.ifname
                ),
            }
        }
    }
}

/// `sudo ip address add|delete HOST dev IFNAME [label L]`, as the healthcheck runs it; exit 2
/// (`ip`'s "RTNETLINK answers: File exists") means the address was there.
fn sudo_ip(action: &str, placement: &Placement, label: Option<&str>) -> Result<Change, String> {
    let mut command = std::process::Command::new("sudo");
    command.args([
        "ip",
        "address",
        action,
        &placement.host.to_string(),
        "dev",
        &placement.ifname,
    ]);
    if let Some(label) = label.filter(|_| placement.host.addr().is_ipv4()) {
        command.args(["label", label]);
    }
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|error| format!("cannot run sudo: {error}"))?;
    match output.status.code() {
        Some(0) => Ok(Change::Done),
        Some(2) if action == "add" => Ok(Change::Unchanged),
        _ => Err(format!(
            "sudo ip address {action}: {}: {}",
            crate::subprocess::describe_status(&output.status),
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}

/// The hooks `--dynamic-ip-setup` adds: on UP add each address, on DOWN and DISABLED remove it,
/// with the `ip` program as the healthcheck runs it (through `sudo` with `--sudo`).
pub(crate) fn dynamic_hooks(options: &CommonOptions) -> Result<(Vec<String>, Vec<String>), String> {
    let compat = &options.compat;
    if !compat.dynamic_ip_setup || compat.no_ip_setup {
        return Ok((Vec::new(), Vec::new()));
    }
    let sudo = if compat.sudo { "sudo " } else { "" };
    let mut up = Vec::new();
    let mut down = Vec::new();
    for placement in placements(options)? {
        let (host, ifname) = (placement.host, quote(&placement.ifname));
        let label = match label_of(compat, &placement.ifname) {
            Some(label) if host.addr().is_ipv4() => format!(" label {}", quote(&label)),
            _ => String::new(),
        };
        up.push(format!(
            "{sudo}ip address replace {host} dev {ifname}{label}"
        ));
        let family = if host.addr().is_ipv4() { "-4" } else { "-6" };
        down.push(format!(
            "if ip {family} -o address show dev {ifname} to {host} | grep -q .; then {sudo}ip address delete {host} dev {ifname}; fi"
        ));
    }
    Ok((up, down))
}

/// `text` as one shell word.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// For tests: an address on an interface.
#[cfg(test)]
fn address(text: &str, label: Option<&str>) -> InterfaceAddress {
    let (ip, len) = text.split_once('/').unwrap();
    InterfaceAddress {
        address: ip.parse::<std::net::IpAddr>().unwrap(),
        prefix_len: len.parse().unwrap(),
        label: label.map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn loopback_and_host_bit_addresses_are_not_service_addresses() {
        let found = [
            address("127.0.0.1/8", Some("lo")),
            address("127.0.0.2/32", Some("lo")),
            address("192.0.2.77/32", Some("lo")),
            address("198.51.100.7/24", Some("lo")),
            address("198.51.100.0/24", Some("lo:net")),
            address("::1/128", None),
            address("2001:db8::7/128", None),
        ];
        assert_eq!(
            service_addresses(&found, "lo", &CompatOptions::default()),
            nets(&["192.0.2.77/32", "198.51.100.0/24", "2001:db8::7/128"])
        );
    }

    #[test]
    fn labels_match_by_prefix_or_exactly() {
        let found = [
            address("192.0.2.1/32", Some("lo:web1")),
            address("192.0.2.2/32", Some("lo:web")),
            address("192.0.2.3/32", Some("lo:db")),
            address("192.0.2.4/32", Some("lo")),
            address("2001:db8::1/128", None),
        ];
        let mut compat = CompatOptions {
            label: Some("web".into()),
            ..CompatOptions::default()
        };
        assert_eq!(
            service_addresses(&found, "lo", &compat),
            nets(&["192.0.2.1/32", "192.0.2.2/32"])
        );
        compat.label_exact_match = true;
        assert_eq!(
            service_addresses(&found, "lo", &compat),
            nets(&["192.0.2.2/32"])
        );
    }

    #[test]
    fn deaggregation_iterates_every_address() {
        assert_eq!(
            host_addresses(&nets(&["192.0.2.0/30", "2001:db8::/127"])).unwrap(),
            nets(&[
                "192.0.2.0/32",
                "192.0.2.1/32",
                "192.0.2.2/32",
                "192.0.2.3/32",
                "2001:db8::/128",
                "2001:db8::1/128"
            ])
        );
        assert!(
            host_addresses(&nets(&["10.0.0.0/8"]))
                .unwrap_err()
                .contains("more than 65536")
        );
    }

    #[test]
    fn repeats_are_dropped_keeping_the_first() {
        let mut list = nets(&[
            "192.0.2.85/32",
            "192.0.2.84/32",
            "192.0.2.85/32",
            "2001:db8::1/128",
        ]);
        list.extend(nets(&["2001:db8::1/128", "192.0.2.85/32"]));
        let repeated = keep_first_of_each(&mut list);
        assert_eq!(
            list,
            nets(&["192.0.2.85/32", "192.0.2.84/32", "2001:db8::1/128"])
        );
        assert_eq!(
            repeated,
            nets(&["192.0.2.85/32", "2001:db8::1/128", "192.0.2.85/32"])
        );
    }

    #[test]
    fn rotation_is_deque_rotate_of_minus_start() {
        let rotated = |start| {
            let mut items = vec![1, 2, 3, 4];
            rotate(&mut items, start);
            items
        };
        assert_eq!(rotated(0), [1, 2, 3, 4]);
        assert_eq!(rotated(1), [2, 3, 4, 1]);
        assert_eq!(rotated(5), [2, 3, 4, 1]);
        assert_eq!(rotated(-1), [4, 1, 2, 3]);
        let mut empty: Vec<u8> = Vec::new();
        rotate(&mut empty, 3);
    }

    #[test]
    fn setup_is_the_healthcheck_default_only_for_addresses_spelled_ip() {
        let argv = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        let default = CompatOptions::default();
        assert!(wanted(&default, &argv(&["p", "--ip", "192.0.2.1"])));
        assert!(!wanted(&default, &argv(&["p", "--prefix", "192.0.2.1"])));
        let no = CompatOptions {
            no_ip_setup: true,
            ..CompatOptions::default()
        };
        assert!(!wanted(&no, &argv(&["p", "--ip", "192.0.2.1"])));
        let yes = CompatOptions {
            ip_setup: true,
            ..CompatOptions::default()
        };
        assert!(wanted(&yes, &argv(&["p", "--prefix", "192.0.2.1"])));
    }

    #[test]
    fn shell_words_are_quoted() {
        assert_eq!(quote("lo:it's"), r"'lo:it'\''s'");
    }
}
