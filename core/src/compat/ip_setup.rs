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

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::Ipv6Addr;

use ipnet::{IpAddrRange, IpNet};

use crate::compat::error::CompatError;
use crate::compat::interfaces::{AddressChange, Change, InterfaceAddress};
use crate::compat::ip_claims::{Claims, Key};
use crate::compat::options::CompatOptions;
use crate::config::options::CommonOptions;
use crate::engine::route::Prefix;

/// The interface the healthcheck reads and sets up when `--ip-ifname` names none.
pub(crate) const DEFAULT_IFNAME: &str = "lo";

/// Most addresses `--deaggregate-networks` makes (the healthcheck would try a /8 for ever).
const MAX_DEAGGREGATED: usize = 65536;

/// The prefixes to announce: `--prefix`/`--ip`, or those found on `lo`; deaggregated and
/// rotated as the healthcheck options say.
pub(crate) fn prefixes(options: &CommonOptions) -> Result<Vec<Prefix>, CompatError> {
    let compat = &options.compat;
    let mut nets: Vec<IpNet> = if options.prefixes.is_empty() {
        let found = crate::compat::interfaces::addresses(DEFAULT_IFNAME).map_err(|error| {
            CompatError::InterfaceAddresses {
                ifname: DEFAULT_IFNAME,
                error,
            }
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
    nets.into_iter()
        .map(|net| Prefix::from_network(net).map_err(|_| CompatError::HostBits { net }))
        .collect()
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
pub(crate) fn host_addresses(nets: &[IpNet]) -> Result<Vec<IpNet>, CompatError> {
    let mut hosts = Vec::new();
    for net in nets {
        let range: IpAddrRange = match net {
            IpNet::V4(v4) => ipnet::Ipv4AddrRange::new(v4.network(), v4.broadcast()).into(),
            IpNet::V6(v6) => ipnet::Ipv6AddrRange::new(v6.network(), v6.broadcast()).into(),
        };
        for address in range {
            if hosts.len() == MAX_DEAGGREGATED {
                return Err(CompatError::Deaggregation {
                    net: *net,
                    max: MAX_DEAGGREGATED,
                });
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
/// (`ip_spelled`: [`crate::compat::argv::ip_spelled`] of the expanded command line.)
pub(crate) fn wanted(compat: &CompatOptions, ip_spelled: bool) -> bool {
    !compat.no_ip_setup && (compat.ip_setup || compat.dynamic_ip_setup || ip_spelled)
}

/// One host address and the interface it belongs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    host: IpNet,
    ifname: String,
}

/// Refuse, before anything runs (and in `--check-config`), an IP set-up that cannot be done:
/// networks with more addresses than [`MAX_DEAGGREGATED`] (the healthcheck would add a /8's 16
/// million addresses one `ip` command at a time and never announce), or a `--label` too long
/// for the kernel on an `--ip-ifname` interface.
pub(crate) fn check(options: &CommonOptions, ip_spelled: bool) -> Result<(), CompatError> {
    let compat = &options.compat;
    if !wanted(compat, ip_spelled) && !compat.dynamic_ip_setup {
        return Ok(());
    }
    if let Some(label) = &compat.label {
        for pair in &compat.ip_ifnames {
            let full = format!("{}:{label}", pair.ifname);
            if full.len() > LABEL_MAX {
                return Err(CompatError::LabelTooLong {
                    label: label.clone(),
                    net: pair.net,
                    ifname: pair.ifname.clone(),
                    full,
                    max: LABEL_MAX,
                });
            }
        }
    }
    set_up_size(options).map(|_| ())
}

/// The kernel's longest IPv4 address label (`IFNAMSIZ` - 1).
const LABEL_MAX: usize = 15;

/// How many addresses IP set-up adds for the `--ip` networks, or why it refuses them.
fn set_up_size(options: &CommonOptions) -> Result<u128, CompatError> {
    let mut total: u128 = 0;
    for prefix in &options.prefixes {
        let net = prefix.network();
        let size = 1u128 << (net.max_prefix_len() - net.prefix_len());
        total = total.saturating_add(size);
        if total > MAX_DEAGGREGATED as u128 {
            let max = MAX_DEAGGREGATED;
            return Err(if size > MAX_DEAGGREGATED as u128 {
                CompatError::NetworkTooLarge { net, size, max }
            } else {
                CompatError::NetworksTooLarge { net, total, max }
            });
        }
    }
    Ok(total)
}

/// Each host address of the `--ip` networks, on its `--ip-ifname` interface or `lo`.
fn placements(options: &CommonOptions) -> Result<Vec<Placement>, CompatError> {
    set_up_size(options)?;
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

/// What IP setup added, to remove at exit (see [`crate::compat::ip_claims`] for addresses two probes
/// share).
#[derive(Debug, Default)]
pub(crate) struct Added {
    /// Added by this process.
    hosts: Vec<Placement>,
    /// On their interfaces when set-up ended and used by this probe: added by it or found.
    claimed: BTreeSet<Key>,
    sudo: bool,
    /// The shared record; `None` when its directory cannot be used (then this process removes
    /// what it added, as before claims existed).
    claims: Option<Claims>,
    /// Set-up stopped early because a SIGTERM or SIGINT came.
    pub(crate) interrupted: bool,
}

fn key(placement: &Placement) -> Key {
    (placement.ifname.clone(), placement.host)
}

/// Addresses added between two looks at the stop flag: a SIGTERM during the set-up of a /16 is
/// served within one batch (a few milliseconds).
const SETUP_BATCH: usize = 256;

impl Drop for Added {
    fn drop(&mut self) {
        self.remove_now();
    }
}

/// Add the `--ip` addresses missing from their interfaces: one dump per interface, then the
/// additions in batches (linear in the number of addresses), stopping between batches once
/// `stop` says a SIGTERM or SIGINT came. Failures are logged as one error line (the probe runs
/// on, as the healthcheck does when `ip` fails), never fatal.
pub(crate) fn set_up(options: &CommonOptions, stop: &dyn Fn() -> bool) -> Added {
    let compat = &options.compat;
    let mut added = Added::default();
    added.sudo = compat.sudo;
    let placements = match placements(options) {
        Ok(placements) => placements,
        Err(error) => {
            tracing::error!("ip setup: {error}");
            return added;
        }
    };
    let dir = compat
        .ip_claims_dir
        .clone()
        .unwrap_or_else(|| crate::compat::ip_claims::DEFAULT_DIR.into());
    let mut claims = match Claims::open(&dir) {
        Ok(claims) => Some(claims),
        Err(error) => {
            tracing::warn!(
                "ip setup: {error}; an address another exaprobe shares is removed when this one exits"
            );
            None
        }
    };
    let mut locked = claims.as_mut().and_then(|claims| match claims.lock() {
        Ok(locked) => Some(locked),
        Err(error) => {
            tracing::warn!("ip setup: cannot lock {}: {error}", dir.display());
            None
        }
    });
    let mut kept = Vec::new();
    let mut missing = Vec::new();
    let mut present: BTreeMap<String, HashSet<IpNet>> = BTreeMap::new();
    for placement in placements {
        if !present.contains_key(&placement.ifname) {
            match crate::compat::interfaces::addresses(&placement.ifname) {
                Ok(found) => {
                    let found = service_addresses(&found, &placement.ifname, compat);
                    present.insert(placement.ifname.clone(), found.into_iter().collect());
                }
                Err(error) => {
                    tracing::error!(
                        "ip setup: cannot read the addresses of {}: {error}",
                        placement.ifname
                    );
                    missing.clear();
                    break;
                }
            }
        }
        if present[&placement.ifname].contains(&placement.host) {
            kept.push(placement.host.to_string());
            added.claimed.insert(key(&placement));
        } else {
            missing.push(placement);
        }
    }
    let label = |placement: &Placement| label_of(compat, &placement.ifname);
    let mut session = None;
    'batches: for batch in missing.chunks(SETUP_BATCH) {
        if stop() {
            added.interrupted = true;
            break;
        }
        let results: Vec<Result<Change, String>> = if compat.sudo {
            batch
                .iter()
                .map(|placement| sudo_ip("add", placement, label(placement).as_deref()))
                .collect()
        } else {
            match add_batch(&mut session, batch, &label) {
                Ok(results) => results,
                Err(error) => vec![Err(error)],
            }
        };
        for (placement, result) in batch.iter().zip(results) {
            match result {
                Ok(Change::Done) => {
                    tracing::debug!(address = %placement.host, interface = %placement.ifname, "ip setup: added");
                    added.claimed.insert(key(placement));
                    added.hosts.push(placement.clone());
                }
                Ok(Change::Unchanged) => {
                    kept.push(placement.host.to_string());
                    added.claimed.insert(key(placement));
                }
                Err(error) => {
                    tracing::error!(
                        "ip setup: cannot add {} to {}: {error}; give --no-ip-setup if the address is set up elsewhere",
                        placement.host,
                        placement.ifname
                    );
                    break 'batches;
                }
            }
        }
    }
    if !added.hosts.is_empty() {
        tracing::info!(
            count = added.hosts.len(),
            addresses = %summary(&added.hosts),
            "ip setup: added"
        );
    }
    if !kept.is_empty() {
        let shown = kept.len().min(8);
        let more = kept.len() - shown;
        tracing::warn!(
            addresses = %kept[..shown].join(" "),
            more,
            "ip setup: already configured, left in place at exit unless another exaprobe added them (exabgp healthcheck would remove them)"
        );
    }
    if let Some(locked) = &mut locked {
        let recorded = locked.owned().and_then(|mut owned| {
            owned.extend(added.hosts.iter().map(key));
            locked.set_owned(&owned)?;
            locked.claim(&added.claimed)
        });
        if let Err(error) = recorded {
            tracing::warn!(
                "ip setup: cannot record the addresses in {}: {error}",
                dir.display()
            );
        }
    }
    drop(locked);
    added.claims = claims;
    added
}

/// Add `batch` through one netlink session (opened on first use).
fn add_batch(
    session: &mut Option<crate::compat::interfaces::Session>,
    batch: &[Placement],
    label: &dyn Fn(&Placement) -> Option<String>,
) -> Result<Vec<Result<Change, String>>, String> {
    let session = match session {
        Some(session) => session,
        None => {
            session.insert(crate::compat::interfaces::Session::open().map_err(|e| describe(&e))?)
        }
    };
    let mut changes = Vec::with_capacity(batch.len());
    for placement in batch {
        let index = crate::compat::interfaces::interface_index(&placement.ifname)
            .map_err(|e| describe(&e))?;
        changes.push(AddressChange::add(
            index,
            placement.host,
            label(placement).as_deref(),
        ));
    }
    Ok(session
        .apply(&changes)
        .map_err(|e| describe(&e))?
        .into_iter()
        .map(|result| result.map_err(|e| describe(&e)))
        .collect())
}

/// The first addresses of a long list and how many more.
fn summary(hosts: &[Placement]) -> String {
    const SHOWN: usize = 8;
    let mut text: Vec<String> = hosts
        .iter()
        .take(SHOWN)
        .map(|p| format!("{}%{}", p.host, p.ifname))
        .collect();
    if hosts.len() > SHOWN {
        text.push(format!("and {} more", hosts.len() - SHOWN));
    }
    text.join(" ")
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
    /// Remove, at exit, the addresses this probe claims that an exaprobe added and no other
    /// running exaprobe claims; a failure is one warning line. (Dropping does the same, so a
    /// panic unwinding past the set-up cleans up too.)
    pub(crate) fn remove(self) {
        drop(self);
    }

    fn remove_now(&mut self) {
        if self.hosts.is_empty() && self.claimed.is_empty() {
            return;
        }
        let mut claims = self.claims.take();
        let mut locked = claims.as_mut().and_then(|claims| claims.lock().ok());
        let shared = locked.as_mut().and_then(|locked| {
            let others = locked.others().ok()?;
            let owned = locked.owned().ok()?;
            Some((others, owned))
        });
        let removable: Vec<Placement> = match &shared {
            Some((others, owned)) => {
                let mine: BTreeSet<Key> = self.hosts.iter().map(key).collect();
                let (gone, left) =
                    crate::compat::ip_claims::removable(&self.claimed, &mine, others, owned);
                if !left.is_empty() {
                    tracing::info!(
                        count = left.len(),
                        "ip setup: addresses another exaprobe still uses are left in place"
                    );
                }
                gone.into_iter()
                    .map(|(ifname, host)| Placement { host, ifname })
                    .collect()
            }
            None => std::mem::take(&mut self.hosts),
        };
        let removed = self.delete(&removable);
        if let (Some(locked), Some((_, mut owned))) = (locked.as_mut(), shared) {
            for placement in &removed {
                owned.remove(&key(placement));
            }
            let _ = locked.set_owned(&owned);
            locked.release();
        }
    }

    /// Delete `placements`; returns those no longer on their interface.
    fn delete(&self, placements: &[Placement]) -> Vec<Placement> {
        let results: Vec<Result<Change, String>> = if self.sudo {
            placements
                .iter()
                .map(|placement| sudo_ip("delete", placement, None))
                .collect()
        } else {
            let changes: Result<Vec<AddressChange>, String> = placements
                .iter()
                .map(|p| {
                    crate::compat::interfaces::interface_index(&p.ifname)
                        .map(|index| AddressChange::delete(index, p.host))
                        .map_err(|e| describe(&e))
                })
                .collect();
            match changes.and_then(|changes| {
                crate::compat::interfaces::Session::open()
                    .and_then(|mut session| session.apply(&changes))
                    .map_err(|e| describe(&e))
            }) {
                Ok(results) => results
                    .into_iter()
                    .map(|r| r.map_err(|e| describe(&e)))
                    .collect(),
                Err(error) => placements.iter().map(|_| Err(error.clone())).collect(),
            }
        };
        let mut removed = Vec::new();
        let mut failed = 0;
        for (placement, result) in placements.iter().zip(results) {
            match result {
                Ok(_) => removed.push(placement.clone()),
                // One line for the first failure (thousands of the same would drown the log).
                Err(error) if failed == 0 => {
                    failed += 1;
                    tracing::warn!(
                        "ip setup: cannot remove {} from {}: {error}",
                        placement.host,
                        placement.ifname
                    );
                }
                Err(_) => failed += 1,
            }
        }
        if failed > 1 {
            tracing::warn!("ip setup: {failed} addresses could not be removed");
        }
        if !removed.is_empty() {
            tracing::info!(count = removed.len(), addresses = %summary(&removed), "ip setup: removed");
        }
        removed
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
            crate::kit::subprocess::describe_status(&output.status),
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}

/// The hooks `--dynamic-ip-setup` adds: on UP add each address, on DOWN and DISABLED remove it,
/// with the `ip` program as the healthcheck runs it (through `sudo` with `--sudo`).
pub(crate) fn dynamic_hooks(
    options: &CommonOptions,
) -> Result<(Vec<String>, Vec<String>), CompatError> {
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
    use std::ffi::OsString;

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
                .to_string()
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
        let spelled = |list: &[&str]| {
            crate::compat::argv::ip_spelled(&list.iter().map(OsString::from).collect::<Vec<_>>())
        };
        let default = CompatOptions::default();
        assert!(wanted(&default, spelled(&["p", "--ip", "192.0.2.1"])));
        assert!(!wanted(&default, spelled(&["p", "--prefix", "192.0.2.1"])));
        let no = CompatOptions {
            no_ip_setup: true,
            ..CompatOptions::default()
        };
        assert!(!wanted(&no, spelled(&["p", "--ip", "192.0.2.1"])));
        let yes = CompatOptions {
            ip_setup: true,
            ..CompatOptions::default()
        };
        assert!(wanted(&yes, spelled(&["p", "--prefix", "192.0.2.1"])));
    }

    #[test]
    fn shell_words_are_quoted() {
        assert_eq!(quote("lo:it's"), r"'lo:it'\''s'");
    }
}
