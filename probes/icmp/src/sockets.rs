//! Opening the ICMP sockets: an unprivileged datagram ("ping") socket where
//! `net.ipv4.ping_group_range` admits one of our groups (the kernel then sets the identifier and
//! delivers only our replies), a raw socket with CAP_NET_RAW otherwise (surge-ping then matches
//! the identifier itself). Both refused is one configuration error naming both remedies.

use std::io;
use std::net::{IpAddr, SocketAddr};

use anyhow::{Result, bail};
use socket2::{Domain, Protocol, Socket, Type};
use surge_ping::{Client, Config, ICMP};

/// Which kind of socket the kernel gave us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// `SOCK_DGRAM` + `IPPROTO_ICMP`: no privilege, allowed by `ping_group_range`.
    Datagram,
    /// `SOCK_RAW`: needs CAP_NET_RAW.
    Raw,
}

impl SocketKind {
    /// How `--check-config` and the logs name it.
    pub fn describe(self) -> &'static str {
        match self {
            SocketKind::Datagram => "datagram (unprivileged ping) socket",
            SocketKind::Raw => "raw socket",
        }
    }
}

/// The address family of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    pub(crate) fn of(address: &IpAddr) -> Family {
        if address.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// Where the sockets send from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Binding {
    /// `--source`.
    pub(crate) source: Option<IpAddr>,
    /// `--interface`.
    pub(crate) interface: Option<String>,
}

/// A socket of `family` with its receive task (surge-ping's client), and its kind.
pub(crate) fn open(family: Family, binding: &Binding) -> Result<(Client, SocketKind)> {
    let kind = usable_kind(family)?;
    let mut config = Config::builder()
        .kind(match family {
            Family::V4 => ICMP::V4,
            Family::V6 => ICMP::V6,
        })
        .sock_type_hint(match kind {
            SocketKind::Datagram => Type::DGRAM,
            SocketKind::Raw => Type::RAW,
        });
    if let Some(source) = binding.source {
        if Family::of(&source) != family {
            bail!(
                "--source {source} is not an {} address, and an {} target needs one",
                family.name(),
                family.name()
            );
        }
        config = config.bind(SocketAddr::new(source, 0));
    }
    if let Some(interface) = &binding.interface {
        config = config.interface(interface);
    }
    let client = Client::new(&config.build()).map_err(|error| {
        let what = match (&binding.source, &binding.interface) {
            (Some(source), Some(interface)) => {
                format!("--source {source} and --interface {interface}")
            }
            (Some(source), None) => format!("--source {source}"),
            (None, Some(interface)) => format!("--interface {interface}"),
            (None, None) => "the ICMP socket".to_string(),
        };
        let why = match error.kind() {
            io::ErrorKind::AddrNotAvailable => "not an address of this host".to_string(),
            _ => exaprobe_core::kit::reason::io_error(&error),
        };
        anyhow::anyhow!("cannot use {what}: {why}")
    })?;
    Ok((client, kind))
}

/// The socket kind this process may open: datagram first, raw second, else why neither.
fn usable_kind(family: Family) -> Result<SocketKind> {
    let (domain, protocol) = match family {
        Family::V4 => (Domain::IPV4, Protocol::ICMPV4),
        Family::V6 => (Domain::IPV6, Protocol::ICMPV6),
    };
    let datagram = match Socket::new(domain, Type::DGRAM, Some(protocol)) {
        Ok(_) => return Ok(SocketKind::Datagram),
        Err(error) => error,
    };
    let raw = match Socket::new(domain, Type::RAW, Some(protocol)) {
        Ok(_) => return Ok(SocketKind::Raw),
        Err(error) => error,
    };
    bail!("{}", neither(family, &datagram, &raw))
}

/// The one error when neither socket kind opens: what each said, and both remedies.
fn neither(family: Family, datagram: &io::Error, raw: &io::Error) -> String {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
        .map(|text| text.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unreadable".into());
    let group = nix::unistd::getegid();
    format!(
        "cannot open an {} ICMP socket: a datagram (ping) socket was refused ({}; group {group} is not in net.ipv4.ping_group_range \"{range}\") and a raw socket was refused ({}; it needs CAP_NET_RAW). Either allow the group: sysctl -w net.ipv4.ping_group_range=\"{group} {group}\" (or \"0 2147483647\"), or give the program the capability: setcap cap_net_raw+ep {} (systemd: AmbientCapabilities=CAP_NET_RAW)",
        family.name(),
        datagram,
        raw,
        std::env::current_exe()
            .map(|path| path.display().to_string())
            .unwrap_or_else(|_| "exaprobe-icmp".into())
    )
}
