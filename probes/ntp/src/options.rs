//! The NTP check's options and their parsers: which server (`--server`), and the levels its
//! replies are held to.

use std::time::Duration;

use exaprobe_core::address::{HostPort, Syntax, parse_host_port};
use exaprobe_core::kit::parse::parse_positive_duration;

/// NTP's port, where `--server` names none.
const NTP_PORT: u16 = 123;

/// Options of the NTP check.
#[derive(Debug, Clone, clap::Args)]
pub struct NtpOptions {
    /// The NTP server to ask: HOST, HOST:PORT, IP, IP:PORT or [IPV6]:PORT (port 123 by
    /// default). A name is resolved at each check and its first address asked.
    #[arg(long, value_name = "HOST[:PORT]", value_parser = parse_server, help_heading = "NTP check")]
    pub server: HostPort,
    /// The highest stratum served (1 to 15): a server further from a reference clock is
    /// unhealthy.
    #[arg(long, default_value = "15", value_name = "N", value_parser = clap::value_parser!(u8).range(1..=15), help_heading = "NTP check")]
    pub max_stratum: u8,
    /// Degraded above this root distance (root delay / 2 + root dispersion: how far the
    /// server's time may be from its reference's). Off by default.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, help_heading = "NTP check")]
    pub root_distance_degraded: Option<Duration>,
    /// Unhealthy above this root distance (RFC 5905's 1.5 s: ntpd clients refuse a server
    /// beyond it).
    #[arg(long, default_value = "1.5s", value_name = "DURATION", value_parser = parse_positive_duration, help_heading = "NTP check")]
    pub root_distance_down: Duration,
    /// Degraded when the server's clock is further than this from the local clock, either
    /// way. Off by default (the local clock may be the one that is wrong).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, help_heading = "NTP check")]
    pub offset_degraded: Option<Duration>,
    /// Unhealthy when the server's clock is further than this from the local clock, either
    /// way. Off by default.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, help_heading = "NTP check")]
    pub offset_down: Option<Duration>,
}

/// `--server` by the shared `HOST:PORT` rule, the port optional (123).
fn parse_server(text: &str) -> Result<HostPort, String> {
    parse_host_port(text, Some(NTP_PORT), Syntax::Option)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_default_to_port_123() {
        for (given, read) in [
            ("127.0.0.1", "127.0.0.1:123"),
            ("ntp.example", "ntp.example:123"),
            ("ntp.example:1123", "ntp.example:1123"),
            ("::1", "[::1]:123"),
            ("[::1]:1123", "[::1]:1123"),
        ] {
            assert_eq!(parse_server(given).unwrap().to_string(), read);
        }
        assert!(parse_server("::1:123").unwrap_err().contains("[::1]:123"));
        for bad in ["", "host:0", "a b", "host:ntp"] {
            assert!(parse_server(bad).is_err(), "{bad}");
        }
    }
}
