//! The addresses of a network interface, read and changed through rtnetlink.
//!
//! `exabgp healthcheck` announces the addresses found on `lo` when it is given no `--ip`, and adds
//! the `--ip` addresses missing from `lo` at start (it runs `ip address show|add|delete`). The
//! same, done here with netlink messages, needs no `ip` program and no shell, and reports the
//! kernel's own error (`Operation not permitted`) rather than an exit status. A request is a
//! synchronous round trip on a socket of its own: it runs before the runtime starts, and
//! privileges may be dropped right after.

use std::io;
use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// One address configured on an interface, as `ip -o address show dev IF` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InterfaceAddress {
    /// The address with the interface's prefix length (`192.0.2.77/32`).
    pub address: IpAddr,
    /// The prefix length configured with it.
    pub prefix_len: u8,
    /// The IPv4 label (`lo:web1`); IPv6 addresses have none.
    pub label: Option<String>,
}

/// The index of interface `name`, or an error naming it.
pub fn interface_index(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(|errno| {
        io::Error::new(
            io::Error::from(errno).kind(),
            format!("no interface {name}: {errno}"),
        )
    })
}

/// The addresses of interface `name`, in the kernel's order (IPv4 first), as `ip` shows them.
pub(crate) fn addresses(name: &str) -> io::Result<Vec<InterfaceAddress>> {
    let index = interface_index(name)?;
    let replies = request(
        RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        NLM_F_REQUEST | NLM_F_DUMP,
    )?;
    let mut found = Vec::new();
    for reply in replies {
        let RouteNetlinkMessage::NewAddress(message) = reply else {
            continue;
        };
        if message.header.index != index {
            continue;
        }
        let mut local = None;
        let mut address = None;
        let mut label = None;
        for attribute in &message.attributes {
            match attribute {
                AddressAttribute::Local(ip) => local = Some(*ip),
                AddressAttribute::Address(ip) => address = Some(*ip),
                AddressAttribute::Label(text) => label = Some(text.clone()),
                _ => {}
            }
        }
        // `ip` shows IFA_LOCAL when present (IPv4), else IFA_ADDRESS (IPv6).
        if let Some(ip) = local.or(address) {
            found.push(InterfaceAddress {
                address: ip,
                prefix_len: message.header.prefix_len,
                label,
            });
        }
    }
    Ok(found)
}

/// What changing an address did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// The kernel made the change.
    Done,
    /// Nothing to do: the address was already there (add) or was not (delete).
    Unchanged,
}

/// Add `host` (a host route, `/32` or `/128`) to interface `name`, with the IPv4 `label`.
pub(crate) fn add_address(name: &str, host: IpNet, label: Option<&str>) -> io::Result<Change> {
    change(name, host, label, true)
}

/// Remove `host` from interface `name`.
pub(crate) fn delete_address(name: &str, host: IpNet) -> io::Result<Change> {
    change(name, host, None, false)
}

fn change(name: &str, net: IpNet, label: Option<&str>, add: bool) -> io::Result<Change> {
    let index = interface_index(name)?;
    let mut message = AddressMessage::default();
    message.header.index = index;
    message.header.prefix_len = net.prefix_len();
    message.header.family = match net {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    };
    let ip = net.addr();
    message.attributes.push(AddressAttribute::Address(ip));
    if ip.is_ipv4() {
        message.attributes.push(AddressAttribute::Local(ip));
        if let Some(label) = label {
            message
                .attributes
                .push(AddressAttribute::Label(label.to_string()));
        }
    }
    let (request_message, flags) = if add {
        (
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
    } else {
        (
            RouteNetlinkMessage::DelAddress(message),
            NLM_F_REQUEST | NLM_F_ACK,
        )
    };
    match request(request_message, flags) {
        Ok(_) => Ok(Change::Done),
        Err(error) if add && error.raw_os_error() == Some(libc::EEXIST) => Ok(Change::Unchanged),
        Err(error) if !add && error.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {
            Ok(Change::Unchanged)
        }
        Err(error) => Err(error),
    }
}

/// Send one request and collect the replies until `Done` (a dump) or the ACK.
pub fn request(message: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = 1;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
    packet.finalize();
    let mut buffer = vec![0; packet.header.length as usize];
    packet.serialize(&mut buffer[..]);
    socket.send(&buffer, 0)?;
    let mut replies = Vec::new();
    let mut receive = vec![0u8; 65536];
    loop {
        let size = socket.recv(&mut &mut receive[..], 0)?;
        let mut offset = 0;
        while offset < size {
            let reply: NetlinkMessage<RouteNetlinkMessage> =
                NetlinkMessage::deserialize(&receive[offset..size]).map_err(|error| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("netlink: {error}"))
                })?;
            let length = reply.header.length as usize;
            match reply.payload {
                NetlinkPayload::Done(_) => return Ok(replies),
                NetlinkPayload::Error(error) if error.code.is_some() => {
                    return Err(error.to_io());
                }
                // An ACK: the request is done.
                NetlinkPayload::Error(_) => return Ok(replies),
                NetlinkPayload::InnerMessage(inner) => replies.push(inner),
                _ => {}
            }
            if length == 0 {
                break;
            }
            offset += length;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loopback interface always has 127.0.0.1/8 (a read needs no privilege).
    #[test]
    fn reads_the_loopback_addresses() {
        let found = addresses("lo").expect("read lo");
        assert!(
            found
                .iter()
                .any(|a| a.address == IpAddr::from([127, 0, 0, 1]) && a.prefix_len == 8),
            "{found:?}"
        );
    }

    #[test]
    fn an_unknown_interface_is_named() {
        let error = addresses("nosuchif0").unwrap_err();
        assert!(
            error.to_string().contains("no interface nosuchif0"),
            "{error}"
        );
    }
}
