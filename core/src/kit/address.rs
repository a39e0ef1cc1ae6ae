//! `HOST:PORT` as every probe reads it, with one rule for IPv6 (an IPv6 address is full of
//! colons, so `::1:80` could be the address `::1:80` or port 80 of `::1`):
//!
//! - an IPv6 address with a port is written in brackets: `[::1]:53`;
//! - where the port may be left out, a bare IPv6 address (`::1`, `2001:db8::53`) is an address
//!   alone, on the default port; in a URL an IPv6 address is always in brackets (URL syntax);
//! - text that reads both ways (`::1:80`) is rejected, with both spellings in the hint.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// A host: an address, or a name to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A name (resolved when connecting).
    Name(String),
}

impl fmt::Display for Host {
    /// The host as a resolver takes it (IPv6 without brackets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// A host and a port, parsed by the one rule of this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Where.
    pub host: Host,
    /// Which port.
    pub port: u16,
}

impl fmt::Display for HostPort {
    /// `HOST:PORT`, IPv6 in brackets: the form the parser takes back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            host => write!(f, "{host}:{}", self.port),
        }
    }
}

impl HostPort {
    /// The host as a string for a resolver or a connect call (IPv6 without brackets).
    pub fn host_string(&self) -> String {
        self.host.to_string()
    }

    /// The address when the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self.host {
            Host::Ip(ip) => Some(ip),
            Host::Name(_) => None,
        }
    }
}

/// Where the text comes from: an option, or the host part of a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// An option's `HOST:PORT` (a bare IPv6 address is allowed when the port may be omitted).
    Option,
    /// The authority of a URL, after any `user@`: IPv6 only in brackets.
    Url,
}

/// Parse `HOST:PORT`. With `default_port`, the port may be left out; without, it is required.
///
/// ```
/// use exaprobe_core::address::{parse_host_port, Syntax};
/// assert_eq!(parse_host_port("[::1]:53", None, Syntax::Option).unwrap().port, 53);
/// assert_eq!(parse_host_port("::1", Some(53), Syntax::Option).unwrap().to_string(), "[::1]:53");
/// assert!(parse_host_port("::1:80", Some(53), Syntax::Option).unwrap_err().contains("[::1]:80"));
/// ```
pub fn parse_host_port(
    text: &str,
    default_port: Option<u16>,
    syntax: Syntax,
) -> Result<HostPort, String> {
    if text.is_empty() {
        return Err("no address given (expected HOST:PORT)".into());
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "'{}' contains a space or control character",
            crate::kit::redact::escape_controls(text)
        ));
    }
    if let Some(inside) = text.strip_prefix('[') {
        let (address, after) = inside
            .split_once(']')
            .ok_or_else(|| format!("'{text}' has no closing ]"))?;
        let ip: Ipv6Addr = address
            .parse()
            .map_err(|_| format!("'{address}' in '{text}' is not an IPv6 address"))?;
        let port = match after {
            "" => default_port.ok_or_else(|| format!("'{text}' has no port: write [{ip}]:PORT"))?,
            _ => match after.strip_prefix(':') {
                Some(port) => parse_port(port, text)?,
                None => return Err(format!("'{text}': expected :PORT after ]")),
            },
        };
        return Ok(HostPort {
            host: Host::Ip(IpAddr::V6(ip)),
            port,
        });
    }
    if text.matches(':').count() > 1 {
        return bare_ipv6(text, default_port, syntax);
    }
    let (host, port) = match text.split_once(':') {
        Some((host, port)) => (host, parse_port(port, text)?),
        None => (
            text,
            default_port.ok_or_else(|| format!("'{text}' has no port (expected HOST:PORT)"))?,
        ),
    };
    if host.is_empty() {
        return Err(format!("'{text}' has no host"));
    }
    if host.contains(['/', '@', '[', ']']) {
        return Err(format!(
            "'{host}' in '{text}' is not a host name or address"
        ));
    }
    let host = match host.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) => Host::Name(host.to_string()),
    };
    Ok(HostPort { host, port })
}

/// A text with several colons and no brackets: an IPv6 address alone, or an error with a hint.
fn bare_ipv6(text: &str, default_port: Option<u16>, syntax: Syntax) -> Result<HostPort, String> {
    let split = text
        .rsplit_once(':')
        .filter(|(address, port)| {
            address.parse::<Ipv6Addr>().is_ok() && port.parse::<u16>().is_ok_and(|p| p != 0)
        })
        .map(|(address, port)| format!("[{address}]:{port}"));
    let whole = text.parse::<Ipv6Addr>();
    match (whole, split, default_port, syntax) {
        (Ok(_), Some(with_port), _, _) => Err(format!(
            "'{text}' is ambiguous: write [{text}] for that address, or {with_port} for an address and port"
        )),
        (Ok(ip), None, Some(port), Syntax::Option) => Ok(HostPort {
            host: Host::Ip(IpAddr::V6(ip)),
            port,
        }),
        (Ok(ip), None, Some(port), Syntax::Url) => Err(format!(
            "'{text}': an IPv6 address in a URL is written in brackets: [{ip}] or [{ip}]:{port}"
        )),
        (Ok(ip), None, None, _) => Err(format!(
            "'{text}' has no port: an IPv6 address with a port is written [{ip}]:PORT"
        )),
        (Err(_), Some(with_port), _, _) => Err(format!(
            "'{text}' is not HOST:PORT: an IPv6 address with a port is written in brackets, {with_port}"
        )),
        (Err(_), None, _, _) => Err(format!(
            "'{text}' is not HOST:PORT (an IPv6 address with a port is written [::1]:PORT)"
        )),
    }
}

fn parse_port(port: &str, text: &str) -> Result<u16, String> {
    port.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("'{port}' in '{text}' is not a port (1-65535)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, default: Option<u16>) -> Result<String, String> {
        parse_host_port(text, default, Syntax::Option).map(|hp| hp.to_string())
    }

    #[test]
    fn forms() {
        for (text, default, shown) in [
            ("127.0.0.1:25", None, "127.0.0.1:25"),
            ("[::1]:53", None, "[::1]:53"),
            ("[::1]", Some(53), "[::1]:53"),
            ("::1", Some(53), "[::1]:53"),
            ("2001:db8::53", Some(53), "[2001:db8::53]:53"),
            ("::ffff:192.0.2.1", Some(53), "[::ffff:192.0.2.1]:53"),
            ("mail.example:587", None, "mail.example:587"),
            ("localhost", Some(6379), "localhost:6379"),
            ("192.0.2.1", Some(80), "192.0.2.1:80"),
        ] {
            assert_eq!(parse(text, default).as_deref(), Ok(shown), "{text}");
        }
        let hp = parse_host_port("[::1]:80", None, Syntax::Option).unwrap();
        assert_eq!(
            (hp.host_string(), hp.ip()),
            ("::1".to_string(), Some("::1".parse().unwrap()))
        );
    }

    #[test]
    fn ambiguous_ipv6_is_rejected_with_both_spellings() {
        let error = parse("::1:80", Some(53)).unwrap_err();
        assert!(
            error.contains("[::1:80]") && error.contains("[::1]:80"),
            "{error}"
        );
        let error = parse("::1:80", None).unwrap_err();
        assert!(error.contains("[::1]:80"), "{error}");
        let error = parse("::1", None).unwrap_err();
        assert!(error.contains("[::1]:PORT"), "{error}");
        let error = parse("2001:db8:1:2:3:4:5:6:80", None).unwrap_err();
        assert!(error.contains("[2001:db8:1:2:3:4:5:6]:80"), "{error}");
    }

    #[test]
    fn urls_want_brackets() {
        let error = parse_host_port("::1", Some(6379), Syntax::Url).unwrap_err();
        assert!(error.contains("[::1]:6379"), "{error}");
        assert_eq!(
            parse_host_port("[::1]", Some(6379), Syntax::Url)
                .unwrap()
                .to_string(),
            "[::1]:6379"
        );
    }

    #[test]
    fn garbage() {
        for bad in [
            "",
            "host:0",
            "host:99999",
            ":25",
            "a b:25",
            "[]:25",
            "[::1",
            "[::1]x",
            "[127.0.0.1]:5",
            "h\n:25",
            "host:",
            "a/b:1",
            "x:y:z",
        ] {
            assert!(parse(bad, None).is_err(), "{bad}");
            assert!(parse(bad, Some(1)).is_err(), "{bad}");
        }
        assert!(parse("host", None).unwrap_err().contains("no port"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".{0,30}") {
            let _ = parse(&text, Some(1));
            let _ = parse(&text, None);
        }

        #[test]
        fn shown_form_parses_back(ip in proptest::arbitrary::any::<std::net::IpAddr>(), port in 1u16..) {
            let shown = HostPort { host: Host::Ip(ip), port }.to_string();
            proptest::prop_assert_eq!(parse(&shown, None), Ok(shown.clone()));
        }
    }
}
