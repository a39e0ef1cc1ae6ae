//! The DNS check's options and their parsers: the server and the question (`--server`,
//! `--query`, `--type`, `--class`, `--transport`, `--recursion-desired`), what the answer must
//! hold, and the SOA serial levels against a reference server.

use std::net::SocketAddr;
use std::str::FromStr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RecordType};

use crate::exchange::Transport;

/// `on`/`off` for `--recursion-desired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// Set the flag.
    On,
    /// Clear the flag.
    Off,
}

/// Options of the DNS check.
#[derive(Debug, Clone, clap::Args)]
pub struct DnsOptions {
    /// The server to ask: IP or IP:PORT ([IPV6]:PORT).
    #[arg(long, default_value = "127.0.0.1:53", value_parser = parse_server, value_name = "IP[:PORT]", help_heading = "DNS check")]
    pub server: SocketAddr,
    /// The name to ask for.
    #[arg(long, value_name = "NAME", value_parser = parse_name, help_heading = "DNS check")]
    pub query: Name,
    /// Record type: A, AAAA, CNAME, MX, NS, SOA, SRV, TXT, PTR, CAA, ...
    #[arg(long = "type", default_value = "A", value_parser = parse_type, value_name = "TYPE", help_heading = "DNS check")]
    pub record_type: RecordType,
    /// Query class: IN, or CH for version.bind / id.server style checks.
    #[arg(long, default_value = "IN", value_parser = parse_class, value_name = "CLASS", help_heading = "DNS check")]
    pub class: DNSClass,
    /// udp (with TCP fallback on a truncated answer) or tcp.
    #[arg(long, value_enum, default_value = "udp", help_heading = "DNS check")]
    pub transport: Transport,
    /// The RD flag: on for resolvers, off for authoritative servers.
    #[arg(long, value_enum, default_value = "on", help_heading = "DNS check")]
    pub recursion_desired: Switch,
    /// Acceptable response codes (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...), comma-separated.
    #[arg(long, default_value = "NOERROR", value_parser = parse_rcodes, value_name = "LIST", help_heading = "DNS check")]
    pub expect_rcode: RcodeList,
    /// This value must be in the answer section (normalised: case, trailing dots, quotes). Repeatable.
    #[arg(
        long = "expect-answer",
        value_name = "VALUE",
        help_heading = "DNS check"
    )]
    pub expect_answers: Vec<String>,
    /// At least one answer record must match this regular expression.
    #[arg(long, value_name = "REGEX", value_parser = exaprobe_core::kit::parse::regex, help_heading = "DNS check")]
    pub expect_answer_regex: Option<regex::Regex>,
    /// At least this many answer records of the queried type.
    #[arg(long, value_name = "N", help_heading = "DNS check")]
    pub min_answers: Option<usize>,
    /// The AA (authoritative answer) flag must be set.
    #[arg(long, help_heading = "DNS check")]
    pub require_authoritative: bool,
    /// The answer section must be empty (negative checks).
    #[arg(long, conflicts_with_all = ["expect_answers", "expect_answer_regex", "min_answers"], help_heading = "DNS check")]
    pub expect_no_answer: bool,
    /// Unhealthy when this server's SOA serial for --query is more than N behind the reference's.
    #[arg(
        long,
        value_name = "N",
        requires = "serial_reference",
        help_heading = "DNS check"
    )]
    pub max_serial_lag: Option<u32>,
    /// Degraded (worse MED) when the SOA serial is more than N behind (below --max-serial-lag).
    #[arg(
        long,
        value_name = "N",
        requires = "serial_reference",
        help_heading = "DNS check"
    )]
    pub degraded_serial_lag: Option<u32>,
    /// The server holding the reference serial (the primary): IP or IP:PORT.
    #[arg(long, value_parser = parse_server, value_name = "IP[:PORT]", help_heading = "DNS check")]
    pub serial_reference: Option<SocketAddr>,
}

/// A server address by the shared `HOST:PORT` rule: IP or IP:PORT, IPv6 with a port in
/// brackets; a bare IPv6 address is on port 53, and `::1:53` (ambiguous) is refused.
fn parse_server(text: &str) -> Result<SocketAddr, String> {
    let address = exaprobe_core::address::parse_host_port(
        text.trim(),
        Some(53),
        exaprobe_core::address::Syntax::Option,
    )?;
    let ip = address.ip().ok_or_else(|| {
        format!(
            "'{}' is not IP or IP:PORT (a server is asked by address)",
            address.host
        )
    })?;
    Ok(SocketAddr::new(ip, address.port))
}

fn parse_name(text: &str) -> Result<Name, String> {
    let mut name =
        Name::from_utf8(text.trim()).map_err(|e| format!("'{text}' is not a domain name: {e}"))?;
    name.set_fqdn(true);
    Ok(name)
}

fn parse_type(text: &str) -> Result<RecordType, String> {
    RecordType::from_str(&text.trim().to_ascii_uppercase())
        .map_err(|_| format!("'{text}' is not a DNS record type"))
}

fn parse_class(text: &str) -> Result<DNSClass, String> {
    match text.trim().to_ascii_uppercase().as_str() {
        "IN" => Ok(DNSClass::IN),
        "CH" | "CHAOS" => Ok(DNSClass::CH),
        "HS" | "HESIOD" => Ok(DNSClass::HS),
        _ => Err(format!("'{text}' is not a DNS class (IN, CH or HS)")),
    }
}

/// Response codes by name, as dig prints them.
const RCODES: &[(&str, u16)] = &[
    ("NOERROR", 0),
    ("FORMERR", 1),
    ("SERVFAIL", 2),
    ("NXDOMAIN", 3),
    ("NOTIMP", 4),
    ("REFUSED", 5),
    ("YXDOMAIN", 6),
    ("YXRRSET", 7),
    ("NXRRSET", 8),
    ("NOTAUTH", 9),
    ("NOTZONE", 10),
];

pub(crate) fn rcode_name(code: ResponseCode) -> String {
    rcode_value_name(u16::from(code))
}

fn rcode_value_name(value: u16) -> String {
    RCODES
        .iter()
        .find(|(_, v)| *v == value)
        .map_or_else(|| format!("RCODE{value}"), |(n, _)| (*n).to_string())
}

/// A list of acceptable response codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcodeList(Vec<u16>);

impl RcodeList {
    /// True when `code` is acceptable.
    pub(crate) fn contains(&self, code: ResponseCode) -> bool {
        self.0.contains(&u16::from(code))
    }
}

fn parse_rcodes(text: &str) -> Result<RcodeList, String> {
    let codes = text
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|name| {
            RCODES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
                .ok_or_else(|| format!("'{name}' is not a response code (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if codes.is_empty() {
        return Err("empty response code list".into());
    }
    Ok(RcodeList(codes))
}

impl std::fmt::Display for RcodeList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.0.iter().map(|v| rcode_value_name(*v)).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_values() {
        assert_eq!(parse_server("::1").unwrap(), "[::1]:53".parse().unwrap());
        assert_eq!(
            parse_server("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert!(parse_server("dns.example").is_err());
        assert_eq!(
            parse_server("[::1]:5353").unwrap(),
            "[::1]:5353".parse().unwrap()
        );
        assert_eq!(
            parse_server("2001:db8::53").unwrap(),
            "[2001:db8::53]:53".parse().unwrap()
        );
        let error = parse_server("::1:53").unwrap_err();
        assert!(
            error.contains("[::1:53]") && error.contains("[::1]:53"),
            "{error}"
        );
        assert_eq!(parse_type("aaaa").unwrap(), RecordType::AAAA);
        assert!(parse_type("BOGUS").is_err());
        assert_eq!(parse_class("ch").unwrap(), DNSClass::CH);
        assert!(parse_class("XX").is_err());
        assert_eq!(
            parse_rcodes("noerror, NXDOMAIN").unwrap().to_string(),
            "NOERROR,NXDOMAIN"
        );
        assert!(parse_rcodes("OK").is_err());
        assert!(parse_name("example.com").unwrap().is_fqdn());
        assert!(parse_name("a..b").is_err());
    }
}
