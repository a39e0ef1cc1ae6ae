//! The DNS check: one query, exactly as configured, to one server; the answer's rcode, records,
//! AA flag and (for secondaries) the zone's SOA serial against a reference are compared with
//! what the operator expects.
//!
//! hickory-proto builds and parses the messages; [`exchange`] sends them with tokio over UDP
//! (falling back to TCP on a truncated answer) or TCP. No resolver library sits in between: a
//! health check of one server must not retry elsewhere, search, or cache.

mod exchange;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod serial;

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use anyhow::Result;
use exaprobe_core::kit::parse::{Level, Limits};
use exaprobe_core::{Finding, Outcome, Probe};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use tokio::time::Instant;

pub use exchange::Transport;
pub use serial::serial_lag;

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

fn rcode_name(code: ResponseCode) -> String {
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

/// A record value in comparable form: lower case, no quotes, no trailing dots, single spaces;
/// addresses in their canonical spelling.
pub fn normalise(value: &str) -> String {
    let trimmed = value.trim();
    if let Ok(ip) = trimmed.parse::<IpAddr>() {
        return ip.to_string();
    }
    trimmed
        .replace('"', "")
        .split_whitespace()
        .map(|word| word.trim_end_matches('.').to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asks one server one question per check.
#[derive(Debug)]
pub struct DnsProbe {
    options: DnsOptions,
    expected: Vec<(String, String)>,
    serial_lag: Limits<u32>,
    /// How far behind the reference the last check found the server (its metrics gauge).
    last_serial_lag: Option<u32>,
}

impl DnsProbe {
    /// Build the probe, refusing option combinations that could never work.
    pub fn new(options: &DnsOptions) -> Result<Self> {
        let serial_lag = Limits::new(
            options.degraded_serial_lag,
            options.max_serial_lag,
            ("--degraded-serial-lag", "--max-serial-lag"),
            |lag| lag.to_string(),
        )
        .map_err(anyhow::Error::msg)?;
        if options.serial_reference.is_some() && serial_lag.is_empty() {
            anyhow::bail!("--serial-reference needs --max-serial-lag or --degraded-serial-lag");
        }
        let expected = options
            .expect_answers
            .iter()
            .map(|v| (v.clone(), normalise(v)))
            .collect();
        Ok(DnsProbe {
            options: options.clone(),
            expected,
            serial_lag,
            last_serial_lag: None,
        })
    }

    fn query(&self, record_type: RecordType, recursion: bool) -> Message {
        let mut query = Query::query(self.options.query.clone(), record_type);
        query.set_query_class(self.options.class);
        let mut message = Message::new(rand_id(), MessageType::Query, OpCode::Query);
        message.metadata.recursion_desired = recursion;
        message.add_query(query);
        message
    }

    async fn ask(
        &self,
        server: SocketAddr,
        record_type: RecordType,
        deadline: Instant,
    ) -> Result<Message, String> {
        let recursion = self.options.recursion_desired == Switch::On;
        exchange::exchange(
            &self.query(record_type, recursion),
            server,
            self.options.transport,
            deadline,
        )
        .await
        .map(|(answer, _)| answer)
    }

    fn judge(&self, answer: &Message) -> Result<(), String> {
        let rcode = answer.metadata.response_code;
        if !self.options.expect_rcode.0.contains(&u16::from(rcode)) {
            return Err(format!(
                "rcode {}, expected {}",
                rcode_name(rcode),
                self.options.expect_rcode
            ));
        }
        if self.options.require_authoritative && !answer.metadata.authoritative {
            return Err(format!(
                "AA flag not set: {} is not authoritative for {}",
                self.options.server, self.options.query
            ));
        }
        let values: Vec<String> = answer
            .answers
            .iter()
            .map(|r| normalise(&r.data.to_string()))
            .collect();
        let shown = || {
            if values.is_empty() {
                "nothing".to_string()
            } else {
                values.join(", ")
            }
        };
        if self.options.expect_no_answer && !answer.answers.is_empty() {
            return Err(format!("expected no answer, got {}", shown()));
        }
        for (original, wanted) in &self.expected {
            if !values.contains(wanted) {
                return Err(format!(
                    "expected answer '{original}' missing (got {})",
                    shown()
                ));
            }
        }
        if let Some(pattern) = &self.options.expect_answer_regex
            && !values.iter().any(|v| pattern.is_match(v))
        {
            return Err(format!(
                "no answer matches --expect-answer-regex '{pattern}' (got {})",
                shown()
            ));
        }
        if let Some(minimum) = self.options.min_answers {
            let count = answer
                .answers
                .iter()
                .filter(|r| r.record_type() == self.options.record_type)
                .count();
            if count < minimum {
                return Err(format!(
                    "{count} {} answers, expected at least {minimum}",
                    self.options.record_type
                ));
            }
        }
        Ok(())
    }

    async fn soa_serial(&self, server: SocketAddr, deadline: Instant) -> Result<u32, String> {
        let answer = self.ask(server, RecordType::SOA, deadline).await?;
        answer
            .answers
            .iter()
            .find_map(|record| match &record.data {
                RData::SOA(soa) => Some(soa.serial),
                _ => None,
            })
            .ok_or_else(|| {
                format!(
                    "no SOA for {} from {server} (rcode {})",
                    self.options.query,
                    rcode_name(answer.metadata.response_code)
                )
            })
    }

    async fn serial_check(&mut self, deadline: Instant) -> Finding {
        let Some(reference) = self.options.serial_reference else {
            return Ok(None);
        };
        let local = self.soa_serial(self.options.server, deadline).await?;
        let wanted = self
            .soa_serial(reference, deadline)
            .await
            .map_err(|why| format!("reference: {why}"))?;
        let Some(lag) = serial_lag(wanted, local) else {
            return Err(format!(
                "SOA serials {local} and {wanted} are 2^31 apart: cannot compare"
            ));
        };
        self.last_serial_lag = Some(lag);
        let describe = || format!("SOA serial {local} is {lag} behind the reference's {wanted}");
        match self.serial_lag.level(lag) {
            Level::Over => Err(format!(
                "{} (max {})",
                describe(),
                self.serial_lag.hard().unwrap_or_default()
            )),
            Level::Degraded => Ok(Some(format!(
                "{} (degraded over {})",
                describe(),
                self.serial_lag.degraded().unwrap_or_default()
            ))),
            Level::Within => Ok(None),
        }
    }
}

impl Probe for DnsProbe {
    fn gauges(&self) -> Vec<exaprobe_core::Gauge> {
        self.last_serial_lag
            .map(|lag| exaprobe_core::Gauge {
                name: "exaprobe_dns_serial_lag",
                help: "SOA serials this server was behind --serial-reference at the last check",
                value: f64::from(lag),
            })
            .into_iter()
            .collect()
    }

    fn describe(&self) -> String {
        exaprobe_core::redact::for_display(&format!(
            "{} {} {} @{}",
            self.options.query, self.options.class, self.options.record_type, self.options.server
        ))
    }

    async fn check(&mut self, deadline: Instant) -> Outcome {
        self.last_serial_lag = None;
        let answer = match self
            .ask(self.options.server, self.options.record_type, deadline)
            .await
        {
            Ok(answer) => answer,
            Err(reason) => return Outcome::unhealthy(reason),
        };
        if let Err(reason) = self.judge(&answer) {
            return Outcome::unhealthy(reason);
        }
        self.serial_check(deadline).await.into()
    }
}

/// A query id nobody can guess in advance (std's randomly keyed hasher, no extra crate).
fn rand_id() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    (RandomState::new().hash_one(std::time::SystemTime::now()) & 0xffff) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_values() {
        assert_eq!(normalise("2001:DB8:0::1"), "2001:db8::1");
        assert_eq!(normalise("NS1.Example.COM."), "ns1.example.com");
        assert_eq!(normalise("10 mail.example.com."), "10 mail.example.com");
        assert_eq!(normalise("\"v=spf1  -all\""), "v=spf1 -all");
    }

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
