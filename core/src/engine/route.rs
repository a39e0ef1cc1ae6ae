//! Route values as operators give them: prefixes, next hops, communities, AS paths, path ids and
//! neighbor selectors. Each type validates on parse and displays in ExaBGP's syntax, so a value
//! that reaches [`crate::engine::render`] can never carry a control character, a newline or a stray word
//! (no command injection through an option or a config file).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use ipnet::IpNet;

/// An IPv4 or IPv6 prefix to announce, with no host bits set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Prefix(IpNet);

impl Prefix {
    /// True for IPv6 prefixes, which need an IPv6 next hop.
    pub(crate) fn is_ipv6(&self) -> bool {
        matches!(self.0, IpNet::V6(_))
    }
}

impl Prefix {
    /// A network found elsewhere (an interface's address): refused with host bits set, as a
    /// typed one would be.
    pub(crate) fn from_network(net: IpNet) -> Result<Prefix, String> {
        if net.trunc() != net {
            return Err(format!("'{net}' has host bits set"));
        }
        Ok(Prefix(net))
    }
}

impl FromStr for Prefix {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let net = if text.contains('/') {
            text.parse::<IpNet>().map_err(|_| {
                format!("'{text}' is not a prefix (expected e.g. 192.0.2.1/32 or 2001:db8::/48)")
            })?
        } else {
            let address: IpAddr = text
                .parse()
                .map_err(|_| format!("'{text}' is not an IP address or prefix"))?;
            IpNet::from(address)
        };
        if net.trunc() != net {
            return Err(format!(
                "'{text}' has host bits set; did you mean {}?",
                net.trunc()
            ));
        }
        Ok(Prefix(net))
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A BGP next hop: `self` (ExaBGP fills in the session's local address) or an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NextHop {
    /// ExaBGP's `next-hop self`.
    Local,
    /// An explicit address.
    Address(IpAddr),
}

impl FromStr for NextHop {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "self" => Ok(NextHop::Local),
            other => other.parse().map(NextHop::Address).map_err(|_| {
                format!("'{text}' is not a next hop (expected 'self' or an IP address)")
            }),
        }
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextHop::Local => f.write_str("self"),
            NextHop::Address(address) => write!(f, "{address}"),
        }
    }
}

/// Split a list option (`"65000:1 65000:2"`, also with commas) into its words.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_ascii_whitespace() || c == ',')
        .filter(|word| !word.is_empty())
}

/// Parse every word of a list with `parse_one`, rejecting an empty list.
fn parse_list<T>(
    text: &str,
    what: &str,
    parse_one: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let items = words(text).map(parse_one).collect::<Result<Vec<_>, _>>()?;
    if items.is_empty() {
        return Err(format!("empty {what}"));
    }
    Ok(items)
}

/// Standard communities (RFC 1997): `ASN:VALUE` (16-bit each) or a well-known name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommunityList(Vec<String>);

const WELL_KNOWN_COMMUNITIES: &[&str] = &[
    "no-export",
    "no-advertise",
    "no-export-subconfed",
    "nopeer",
    "blackhole",
];

impl FromStr for CommunityList {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        parse_list(text, "community", |word| {
            let lower = word.to_ascii_lowercase();
            if WELL_KNOWN_COMMUNITIES.contains(&lower.as_str()) {
                return Ok(lower);
            }
            let parsed = word
                .split_once(':')
                .and_then(|(high, low)| Some((high.parse::<u16>().ok()?, low.parse::<u16>().ok()?)));
            match parsed {
                Some((high, low)) => Ok(format!("{high}:{low}")),
                None => Err(format!(
                    "'{word}' is not a community (expected ASN:VALUE with 16-bit numbers, or one of {})",
                    WELL_KNOWN_COMMUNITIES.join(", ")
                )),
            }
        })
        .map(CommunityList)
    }
}

/// Extended communities (RFC 4360): `target:ASN:N`, `origin:IP:N` (also `redirect:`), or raw
/// 8-byte hex `0x0002fde800000001`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExtendedCommunityList(Vec<String>);

impl FromStr for ExtendedCommunityList {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        parse_list(text, "extended community", |word| {
            let bad = || {
                format!(
                    "'{word}' is not an extended community (expected target:ASN:N or origin:ASN:N with a 16-bit ASN or N, origin:IP:N with a 16-bit N, redirect:ASN:N with a 16-bit ASN, or 0x + 16 hex digits)"
                )
            };
            if let Some(hex) = word.strip_prefix("0x") {
                return if hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(word.to_ascii_lowercase())
                } else {
                    Err(bad())
                };
            }
            let parts: Vec<&str> = word.split(':').collect();
            let [kind, admin, assigned] = parts[..] else { return Err(bad()) };
            // What ExaBGP can encode in the 6 value bytes: plain decimal numbers (it reads
            // `+1` as an address), a 2-byte ASN with a 4-byte number, or (target and origin
            // only) a 4-byte ASN or an IPv4 address with a 2-byte number.
            let number = |text: &str| -> Option<u64> {
                if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                text.parse().ok()
            };
            let Some(assigned) = number(assigned) else { return Err(bad()) };
            let fits = match (kind, number(admin)) {
                ("target" | "origin" | "redirect", Some(asn)) if asn <= 0xFFFF => {
                    assigned <= 0xFFFF_FFFF
                }
                ("target" | "origin", Some(asn)) => asn <= 0xFFFF_FFFF && assigned <= 0xFFFF,
                ("target" | "origin", None) => {
                    admin.parse::<Ipv4Addr>().is_ok() && assigned <= 0xFFFF
                }
                _ => false,
            };
            if !fits {
                return Err(bad());
            }
            Ok(word.to_string())
        })
        .map(ExtendedCommunityList)
    }
}

/// Large communities (RFC 8092): `GLOBAL:LOCAL1:LOCAL2`, 32-bit numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LargeCommunityList(Vec<String>);

impl FromStr for LargeCommunityList {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        parse_list(text, "large community", |word| {
            let numbers: Result<Vec<u32>, _> = word.split(':').map(str::parse::<u32>).collect();
            match numbers {
                Ok(n) if n.len() == 3 => Ok(format!("{}:{}:{}", n[0], n[1], n[2])),
                _ => Err(format!(
                    "'{word}' is not a large community (expected three 32-bit numbers, e.g. 65000:1:2)"
                )),
            }
        })
        .map(LargeCommunityList)
    }
}

/// An AS path (an AS_SEQUENCE of 32-bit ASNs), `65000 65000 65001`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AsPath(Vec<u32>);

impl FromStr for AsPath {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        parse_list(text, "AS path", |word| {
            word.parse::<u32>()
                .map_err(|_| format!("'{word}' in AS path '{}' is not an AS number", text.trim()))
        })
        .map(AsPath)
    }
}

impl fmt::Display for AsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let asns: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&asns.join(" "))
    }
}

/// An ADD-PATH path identifier: a 32-bit number or a dotted quad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathId {
    /// `path-information 7`.
    Number(u32),
    /// `path-information 0.0.0.7`.
    Dotted(Ipv4Addr),
}

impl FromStr for PathId {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        text.parse::<u32>()
            .map(PathId::Number)
            .or_else(|_| text.parse::<Ipv4Addr>().map(PathId::Dotted))
            .map_err(|_| format!("'{text}' is not a path id (expected a 32-bit number or a.b.c.d)"))
    }
}

impl fmt::Display for PathId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathId::Number(n) => write!(f, "{n}"),
            PathId::Dotted(ip) => write!(f, "{ip}"),
        }
    }
}

/// Which ExaBGP neighbors a command is for: `*` or a peer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NeighborSelector {
    /// Every neighbor that lists this process.
    All,
    /// The neighbor with this peer address.
    Peer(IpAddr),
}

impl FromStr for NeighborSelector {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "*" => Ok(NeighborSelector::All),
            other => other.parse().map(NeighborSelector::Peer).map_err(|_| {
                format!("'{text}' is not a neighbor (expected a peer IP address or '*')")
            }),
        }
    }
}

impl fmt::Display for NeighborSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NeighborSelector::All => f.write_str("*"),
            NeighborSelector::Peer(ip) => write!(f, "{ip}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(
            "192.0.2.1".parse::<Prefix>().unwrap().to_string(),
            "192.0.2.1/32"
        );
        assert_eq!(
            "2001:db8::1".parse::<Prefix>().unwrap().to_string(),
            "2001:db8::1/128"
        );
        assert_eq!(
            "198.51.100.0/24".parse::<Prefix>().unwrap().to_string(),
            "198.51.100.0/24"
        );
        let err = "198.51.100.7/24".parse::<Prefix>().unwrap_err();
        assert!(err.contains("198.51.100.0/24"), "{err}");
        assert!("192.0.2.1/33".parse::<Prefix>().is_err());
        assert!("example.com".parse::<Prefix>().is_err());
        assert!("2001:db8::/48".parse::<Prefix>().unwrap().is_ipv6());
    }

    #[test]
    fn next_hops() {
        assert_eq!("self".parse::<NextHop>(), Ok(NextHop::Local));
        assert_eq!(
            "10.0.0.1".parse::<NextHop>().unwrap().to_string(),
            "10.0.0.1"
        );
        assert!("10.0.0.1 med 1".parse::<NextHop>().is_err());
    }

    #[test]
    fn communities() {
        assert_eq!(
            "65000:1 65000:2,no-export"
                .parse::<CommunityList>()
                .unwrap()
                .0,
            vec!["65000:1", "65000:2", "no-export"]
        );
        assert!("65536:1".parse::<CommunityList>().is_err());
        assert!("".parse::<CommunityList>().is_err());
        assert!("target:1:2".parse::<CommunityList>().is_err());
        assert_eq!(
            "target:65000:5 origin:192.0.2.1:7 0x0002FDE800000001"
                .parse::<ExtendedCommunityList>()
                .unwrap()
                .0,
            vec!["target:65000:5", "origin:192.0.2.1:7", "0x0002fde800000001"]
        );
        assert!("target:65000".parse::<ExtendedCommunityList>().is_err());
        assert!("evil:1:2".parse::<ExtendedCommunityList>().is_err());
        assert_eq!(
            "65000:1:2".parse::<LargeCommunityList>().unwrap().0,
            vec!["65000:1:2"]
        );
        assert!("65000:1".parse::<LargeCommunityList>().is_err());
    }

    /// Found by fuzzing (route_render): values ExaBGP cannot encode used to pass, so ExaBGP
    /// rejected the whole announce.
    #[test]
    fn extended_communities_fit_exabgp_encoding() {
        for bad in [
            "target:65000:+0",
            "target:+1:5",
            "target:70000:70000",
            "origin:192.0.2.1:65536",
            "redirect:192.0.2.1:7",
            "redirect:70000:1",
        ] {
            assert!(bad.parse::<ExtendedCommunityList>().is_err(), "{bad}");
        }
        for good in [
            "target:65000:4294967295",
            "target:4200000000:65535",
            "origin:192.0.2.1:65535",
            "redirect:65000:4294967295",
        ] {
            assert_eq!(
                good.parse::<ExtendedCommunityList>().unwrap().0,
                vec![good.to_string()]
            );
        }
    }

    #[test]
    fn as_paths_and_path_ids() {
        assert_eq!(
            "65000  65001".parse::<AsPath>().unwrap().to_string(),
            "65000 65001"
        );
        assert!("65000 x".parse::<AsPath>().is_err());
        assert_eq!("7".parse::<PathId>().unwrap().to_string(), "7");
        assert_eq!("0.0.0.7".parse::<PathId>().unwrap().to_string(), "0.0.0.7");
        assert!("-1".parse::<PathId>().is_err());
        assert_eq!("*".parse::<NeighborSelector>(), Ok(NeighborSelector::All));
        assert!("peer".parse::<NeighborSelector>().is_err());
    }

    proptest::proptest! {
        /// Whatever an operator types, a value that parses displays without any character that
        /// could end or extend an ExaBGP command.
        #[test]
        fn parsed_values_are_always_safe(text in "\\PC{0,30}|[0-9a-z:. \\n\\r\\t\\[\\]]{0,30}") {
            let mut shown = Vec::new();
            if let Ok(v) = text.parse::<Prefix>() { shown.push(v.to_string()); }
            if let Ok(v) = text.parse::<NextHop>() { shown.push(v.to_string()); }
            if let Ok(v) = text.parse::<CommunityList>() { shown.extend(v.0); }
            if let Ok(v) = text.parse::<ExtendedCommunityList>() { shown.extend(v.0); }
            if let Ok(v) = text.parse::<LargeCommunityList>() { shown.extend(v.0); }
            if let Ok(v) = text.parse::<AsPath>() { shown.push(v.to_string()); }
            if let Ok(v) = text.parse::<PathId>() { shown.push(v.to_string()); }
            if let Ok(v) = text.parse::<NeighborSelector>() { shown.push(v.to_string()); }
            for value in shown {
                proptest::prop_assert!(
                    value.chars().all(|c| c.is_ascii_alphanumeric() || ":./-* ".contains(c)),
                    "unsafe rendering {value:?} from {text:?}"
                );
            }
        }
    }
}

impl Prefix {
    /// The network.
    pub(crate) fn network(&self) -> IpNet {
        self.0
    }
}

/// The validated values of a list option, in order.
pub(crate) trait Values {
    /// The values.
    fn values(&self) -> &[String];
}

macro_rules! list_values {
    ($($list:ty),*) => {$(
        impl Values for $list {
            fn values(&self) -> &[String] {
                &self.0
            }
        }
    )*};
}
list_values!(CommunityList, ExtendedCommunityList, LargeCommunityList);
