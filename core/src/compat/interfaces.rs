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
    let replies = Session::open()?.request(
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

/// One address to add to or remove from an interface (by index), for [`Session::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AddressChange {
    index: u32,
    host: IpNet,
    label: Option<String>,
    add: bool,
}

impl AddressChange {
    /// Add `host` to interface `index` with the IPv4 `label`.
    pub(crate) fn add(index: u32, host: IpNet, label: Option<&str>) -> Self {
        AddressChange {
            index,
            host,
            label: label.map(str::to_string),
            add: true,
        }
    }

    /// Remove `host` from interface `index`.
    pub(crate) fn delete(index: u32, host: IpNet) -> Self {
        AddressChange {
            index,
            host,
            label: None,
            add: false,
        }
    }

    fn message(&self) -> (RouteNetlinkMessage, u16) {
        let mut message = AddressMessage::default();
        message.header.index = self.index;
        message.header.prefix_len = self.host.prefix_len();
        message.header.family = match self.host {
            IpNet::V4(_) => AddressFamily::Inet,
            IpNet::V6(_) => AddressFamily::Inet6,
        };
        let ip = self.host.addr();
        message.attributes.push(AddressAttribute::Address(ip));
        if ip.is_ipv4() {
            message.attributes.push(AddressAttribute::Local(ip));
            if let Some(label) = &self.label {
                message
                    .attributes
                    .push(AddressAttribute::Label(label.clone()));
            }
        }
        if self.add {
            (
                RouteNetlinkMessage::NewAddress(message),
                NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            )
        } else {
            (
                RouteNetlinkMessage::DelAddress(message),
                NLM_F_REQUEST | NLM_F_ACK,
            )
        }
    }

    /// The kernel's answer as a [`Change`]: an address already there (add) or already gone
    /// (delete) is no error.
    fn outcome(&self, result: io::Result<()>) -> io::Result<Change> {
        match result {
            Ok(()) => Ok(Change::Done),
            Err(error) if self.add && error.raw_os_error() == Some(libc::EEXIST) => {
                Ok(Change::Unchanged)
            }
            Err(error) if !self.add && error.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {
                Ok(Change::Unchanged)
            }
            Err(error) => Err(error),
        }
    }
}

/// Send one request and collect the replies until `Done` (a dump) or the ACK, on a socket of
/// its own (for probes that read routes, such as exaprobe-icmp's gateway).
pub fn request(message: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
    Session::open()?.request(message, flags)
}

/// Requests sent in one write before their answers are read: the answers of one batch must fit
/// in the socket's receive buffer (an ACK the kernel cannot queue is lost, and its wait never
/// ends), and 64 leaves a wide margin under the default buffer.
const BATCH: usize = 64;

/// One netlink socket for many requests: setting up a /19 is 8,192 changes, sent in batches
/// of [`BATCH`] per write and answered per sequence number, so the cost is linear and small.
pub(crate) struct Session {
    socket: Socket,
    sequence: u32,
}

impl Session {
    /// A socket connected to the kernel.
    pub(crate) fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Session {
            socket,
            sequence: 0,
        })
    }

    /// Make `changes`, in order, and return the result of each (same order). The outer error
    /// is the socket's own (nothing more can be known about the batch).
    pub(crate) fn apply(
        &mut self,
        changes: &[AddressChange],
    ) -> io::Result<Vec<io::Result<Change>>> {
        let mut results = Vec::with_capacity(changes.len());
        for batch in changes.chunks(BATCH) {
            let first = self.sequence.wrapping_add(1);
            let mut buffer = Vec::new();
            for change in batch {
                self.sequence = self.sequence.wrapping_add(1);
                let (message, flags) = change.message();
                buffer.extend(serialize(message, flags, self.sequence));
            }
            self.socket.send(&buffer, 0)?;
            let mut answers: Vec<Option<io::Result<()>>> = (0..batch.len()).map(|_| None).collect();
            let mut pending = batch.len();
            let mut receive = vec![0u8; 65536];
            while pending > 0 {
                let size = self.socket.recv(&mut &mut receive[..], 0)?;
                for_each_message(&receive[..size], |header, payload| {
                    let NetlinkPayload::Error(error) = payload else {
                        return Ok(false);
                    };
                    let slot = header.sequence_number.wrapping_sub(first) as usize;
                    if let Some(answer @ None) = answers.get_mut(slot) {
                        *answer = Some(match error.code {
                            Some(_) => Err(error.to_io()),
                            None => Ok(()),
                        });
                        pending -= 1;
                    }
                    Ok(false)
                })?;
            }
            for (change, answer) in batch.iter().zip(answers) {
                results.push(change.outcome(answer.unwrap_or(Ok(()))));
            }
        }
        Ok(results)
    }

    /// Send one request and collect the replies until `Done` (a dump) or the ACK.
    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.sequence = self.sequence.wrapping_add(1);
        let sequence = self.sequence;
        self.socket.send(&serialize(message, flags, sequence), 0)?;
        let mut replies = Vec::new();
        let mut receive = vec![0u8; 65536];
        loop {
            let size = self.socket.recv(&mut &mut receive[..], 0)?;
            let done = for_each_message(&receive[..size], |header, payload| {
                if header.sequence_number != sequence {
                    return Ok(false);
                }
                match payload {
                    NetlinkPayload::Done(_) => Ok(true),
                    NetlinkPayload::Error(error) if error.code.is_some() => Err(error.to_io()),
                    // An ACK: the request is done.
                    NetlinkPayload::Error(_) => Ok(true),
                    NetlinkPayload::InnerMessage(inner) => {
                        replies.push(inner);
                        Ok(false)
                    }
                    _ => Ok(false),
                }
            })?;
            if done {
                return Ok(replies);
            }
        }
    }
}

/// A request as bytes, with its sequence number.
fn serialize(message: RouteNetlinkMessage, flags: u16, sequence: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = sequence;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
    packet.finalize();
    let mut buffer = vec![0; packet.header.length as usize];
    packet.serialize(&mut buffer[..]);
    buffer
}

/// Call `each` on every message of one datagram until it returns true (then true).
fn for_each_message(
    mut bytes: &[u8],
    mut each: impl FnMut(&NetlinkHeader, NetlinkPayload<RouteNetlinkMessage>) -> io::Result<bool>,
) -> io::Result<bool> {
    while !bytes.is_empty() {
        let reply: NetlinkMessage<RouteNetlinkMessage> = NetlinkMessage::deserialize(bytes)
            .map_err(|error| {
                io::Error::new(io::ErrorKind::InvalidData, format!("netlink: {error}"))
            })?;
        let length = reply.header.length as usize;
        if each(&reply.header, reply.payload)? {
            return Ok(true);
        }
        if length == 0 || length > bytes.len() {
            break;
        }
        // Messages are aligned on 4 bytes.
        bytes = &bytes[((length + 3) & !3).min(bytes.len())..];
    }
    Ok(false)
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
