//! The gateway of the default route, read from the kernel's main routing table through
//! rtnetlink at each check, so a changed or removed default route is followed without a
//! reload. The lowest metric wins; with `--interface`, only routes through it count. The read is
//! a synchronous round trip with the kernel (a route dump, microseconds), made on the check's
//! thread.

use std::io;
use std::net::{IpAddr, Ipv6Addr};

use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::sockets::Family;

/// The next hop of a default route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gateway {
    /// Its address.
    pub(crate) address: IpAddr,
    /// The interface the route goes through (the scope of a link-local IPv6 gateway).
    pub(crate) interface: u32,
}

/// The default route's gateway for `family`: `Ok(Err(reason))` when there is none to ping.
pub(crate) fn default_gateway(
    family: Family,
    interface: Option<u32>,
) -> io::Result<Result<Gateway, String>> {
    let mut message = RouteMessage::default();
    message.header.address_family = match family {
        Family::V4 => AddressFamily::Inet,
        Family::V6 => AddressFamily::Inet6,
    };
    let replies = exaprobe_core::netlink::request(
        RouteNetlinkMessage::GetRoute(message),
        NLM_F_REQUEST | NLM_F_DUMP,
    )?;
    let routes = replies.into_iter().filter_map(|reply| match reply {
        RouteNetlinkMessage::NewRoute(route) => Some(route),
        _ => None,
    });
    Ok(pick(family, routes, interface))
}

/// The default route of the main table with the lowest metric, restricted to `interface`.
pub(crate) fn pick(
    family: Family,
    routes: impl IntoIterator<Item = RouteMessage>,
    interface: Option<u32>,
) -> Result<Gateway, String> {
    let mut best: Option<(u32, Result<Gateway, String>)> = None;
    for route in routes {
        let header = &route.header;
        let table = route
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Table(table) => Some(*table),
                _ => None,
            })
            .unwrap_or(u32::from(header.table));
        if header.destination_prefix_length != 0
            || header.kind != RouteType::Unicast
            || table != u32::from(RouteHeader::RT_TABLE_MAIN)
        {
            continue;
        }
        let mut metric = 0;
        let mut oif = None;
        let mut gateway = None;
        let mut multipath = None;
        for attribute in &route.attributes {
            match attribute {
                RouteAttribute::Priority(value) => metric = *value,
                RouteAttribute::Oif(index) => oif = Some(*index),
                RouteAttribute::Gateway(address) => gateway = ip(address),
                RouteAttribute::MultiPath(hops) => multipath = Some(hops),
                _ => {}
            }
        }
        // A multipath default route: its first next hop (through `interface` if given).
        if gateway.is_none()
            && let Some(hops) = multipath
            && let Some((hop, address)) = hops.iter().find_map(|hop| {
                let address = hop.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Gateway(address) => ip(address),
                    _ => None,
                })?;
                (interface.is_none_or(|index| index == hop.interface_index))
                    .then_some((hop, address))
            })
        {
            oif = Some(hop.interface_index);
            gateway = Some(address);
        }
        if interface.is_some_and(|index| oif != Some(index)) {
            continue;
        }
        let candidate = match (gateway, oif) {
            (Some(address), Some(interface)) => Ok(Gateway { address, interface }),
            (Some(address), None) => Ok(Gateway {
                address,
                interface: 0,
            }),
            (None, _) => Err(format!(
                "the {} default route has no gateway (a point-to-point link?): give --target",
                family.name()
            )),
        };
        if best.as_ref().is_none_or(|(m, _)| metric < *m) {
            best = Some((metric, candidate));
        }
    }
    match best {
        Some((_, found)) => found,
        None => Err(format!(
            "no {} default route{}",
            family.name(),
            if interface.is_some() {
                " through --interface"
            } else {
                ""
            }
        )),
    }
}

fn ip(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// True for an IPv6 link-local address (fe80::/10), which needs the interface as its scope.
pub(crate) fn is_link_local(address: &IpAddr) -> bool {
    matches!(address, IpAddr::V6(v6) if is_link_local_v6(v6))
}

fn is_link_local_v6(address: &Ipv6Addr) -> bool {
    address.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: u8, attributes: Vec<RouteAttribute>) -> RouteMessage {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        message.header.destination_prefix_length = prefix;
        message.header.kind = RouteType::Unicast;
        message.header.table = RouteHeader::RT_TABLE_MAIN;
        message.attributes = attributes;
        message
    }

    fn via(address: [u8; 4], oif: u32, metric: u32) -> Vec<RouteAttribute> {
        vec![
            RouteAttribute::Gateway(RouteAddress::Inet(address.into())),
            RouteAttribute::Oif(oif),
            RouteAttribute::Priority(metric),
        ]
    }

    #[test]
    fn the_lowest_metric_default_route_wins() {
        let routes = vec![
            route(24, via([192, 0, 2, 9], 2, 0)),
            route(0, via([192, 0, 2, 1], 2, 100)),
            route(0, via([198, 51, 100, 1], 3, 50)),
        ];
        assert_eq!(
            pick(Family::V4, routes.clone(), None),
            Ok(Gateway {
                address: [198, 51, 100, 1].into(),
                interface: 3
            })
        );
        assert_eq!(
            pick(Family::V4, routes, Some(2)).map(|g| g.address),
            Ok([192, 0, 2, 1].into())
        );
    }

    #[test]
    fn no_default_route_or_no_gateway_is_said() {
        assert_eq!(
            pick(Family::V4, vec![route(24, via([192, 0, 2, 9], 2, 0))], None),
            Err("no IPv4 default route".into())
        );
        assert_eq!(
            pick(
                Family::V4,
                vec![route(0, via([192, 0, 2, 9], 2, 0))],
                Some(7)
            ),
            Err("no IPv4 default route through --interface".into())
        );
        assert!(
            pick(
                Family::V4,
                vec![route(0, vec![RouteAttribute::Oif(4)])],
                None
            )
            .unwrap_err()
            .contains("has no gateway")
        );
        let mut other_table = route(0, via([192, 0, 2, 1], 2, 0));
        other_table.header.table = 100;
        assert!(pick(Family::V4, vec![other_table], None).is_err());
    }

    #[test]
    fn link_local() {
        assert!(is_link_local(&"fe80::1".parse().unwrap()));
        assert!(!is_link_local(&"2001:db8::1".parse().unwrap()));
        assert!(!is_link_local(&"192.0.2.1".parse().unwrap()));
    }
}
