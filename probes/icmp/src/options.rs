//! The ICMP check's options and their parsers: whom to ping (`--target`, `--gateway`,
//! `--gateway6`), how much (`--count`), the thresholds, and where from (`--source`,
//! `--interface`).

use std::net::IpAddr;
use std::time::Duration;

use exaprobe_core::kit::parse::parse_positive_duration;

/// Options of the ICMP check.
#[derive(Debug, Clone, clap::Args)]
pub struct IcmpOptions {
    /// Ping this host: an IPv4 or IPv6 address (fe80::1%eth0 for a link-local one) or a name,
    /// resolved at start and on SIGHUP (its first address). Repeat for several targets.
    #[arg(long, value_name = "HOST", value_parser = parse_target, help_heading = "ICMP check")]
    pub target: Vec<String>,
    /// Ping the gateway of the IPv4 default route, read again at each check (no default route
    /// is unhealthy).
    #[arg(long, help_heading = "ICMP check")]
    pub gateway: bool,
    /// Ping the gateway of the IPv6 default route, read again at each check.
    #[arg(long, help_heading = "ICMP check")]
    pub gateway6: bool,
    /// Echo requests per target and check, spread over the first half of the check's deadline
    /// (1-100).
    #[arg(long, default_value = "3", value_parser = clap::value_parser!(u16).range(1..=100), value_name = "N", help_heading = "ICMP check")]
    pub count: u16,
    /// Degraded (announced with a worse MED) when more than this percentage of a target's
    /// requests are lost.
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent, help_heading = "ICMP check")]
    pub loss_degraded: Option<f64>,
    /// A target is unreachable when more than this percentage of its requests are lost
    /// (default: only when all are).
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent, help_heading = "ICMP check")]
    pub loss_down: Option<f64>,
    /// Degraded when a target's median round-trip time is above this.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, help_heading = "ICMP check")]
    pub rtt_degraded: Option<Duration>,
    /// A target is unreachable when its median round-trip time is above this.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, help_heading = "ICMP check")]
    pub rtt_down: Option<Duration>,
    /// Healthy while at least this many targets are reachable (default: all); fewer
    /// unreachable targets than that make the check degraded.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..), help_heading = "ICMP check")]
    pub min_reachable: Option<u16>,
    /// Send from this local address (it must be of the targets' family).
    #[arg(long, value_name = "ADDRESS", help_heading = "ICMP check")]
    pub source: Option<IpAddr>,
    /// Send and receive through this interface only (SO_BINDTODEVICE); with --gateway, the
    /// default route through it.
    #[arg(long, value_name = "NAME", value_parser = parse_interface, help_heading = "ICMP check")]
    pub interface: Option<String>,
}

/// `--target`: an address (IPv6 with an optional `%zone`) or a host name; no port.
pub(crate) fn parse_target(text: &str) -> Result<String, String> {
    let (address, zone) = match text.split_once('%') {
        Some((address, zone)) => (address, Some(zone)),
        None => (text, None),
    };
    if let Some(zone) = zone {
        return match address.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => parse_interface(zone).map(|_| text.to_string()),
            _ => Err(format!(
                "'{text}': only an IPv6 address takes a %zone (fe80::1%eth0)"
            )),
        };
    }
    if address.parse::<IpAddr>().is_ok() {
        return Ok(text.to_string());
    }
    let name_like = !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if name_like {
        Ok(text.to_string())
    } else {
        Err(format!(
            "'{}' is neither an IP address nor a host name (no port: ICMP has none)",
            exaprobe_core::redact::escape_controls(text)
        ))
    }
}

/// A percentage, 0 to 100, with or without `%`.
pub(crate) fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.strip_suffix('%').unwrap_or(text).trim();
    match number.parse::<f64>() {
        Ok(value) if (0.0..=100.0).contains(&value) => Ok(value),
        _ => Err(format!("'{text}' is not a percentage from 0 to 100")),
    }
}

/// An interface name as the kernel accepts it: 1-15 bytes, no `/`, no blank.
pub(crate) fn parse_interface(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() < libc::IFNAMSIZ
        && text != "."
        && text != ".."
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if valid {
        Ok(text.to_string())
    } else {
        Err(format!(
            "'{}' is not an interface name (1-15 characters, no '/', ':' or blank)",
            exaprobe_core::redact::escape_controls(text)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        for good in [
            "192.0.2.1",
            "2001:db8::1",
            "fe80::1%eth0",
            "gw.example",
            "router-1",
        ] {
            assert_eq!(parse_target(good).as_deref(), Ok(good));
        }
        assert!(
            parse_target("192.0.2.1:80")
                .unwrap_err()
                .contains("no port")
        );
        assert!(
            parse_target("192.0.2.1%eth0")
                .unwrap_err()
                .contains("only an IPv6")
        );
        for bad in ["", "a b", "a..b", "x/y", "fe80::1%", "fe80::1%a/b"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn percents() {
        assert_eq!(parse_percent("5"), Ok(5.0));
        assert_eq!(parse_percent("12.5%"), Ok(12.5));
        assert_eq!(parse_percent("100"), Ok(100.0));
        for bad in ["-1", "101", "x", "", "NaN"] {
            assert_eq!(
                parse_percent(bad),
                Err(format!("'{bad}' is not a percentage from 0 to 100"))
            );
        }
    }

    #[test]
    fn interfaces() {
        assert_eq!(parse_interface("eth0").as_deref(), Ok("eth0"));
        for bad in ["", "sixteen-chars-xx", "a/b", "a b", "..", "a:1"] {
            assert!(parse_interface(bad).is_err(), "{bad}");
        }
    }
}
