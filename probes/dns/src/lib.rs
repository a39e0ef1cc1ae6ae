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
mod options;
mod serial;

use std::net::{IpAddr, SocketAddr};

use anyhow::Result;
use exaprobe_core::kit::parse::{Level, Limits};
use exaprobe_core::{Finding, Outcome, Probe};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{RData, RecordType};
use tokio::time::Instant;

use crate::options::rcode_name;

pub use exchange::Transport;
pub use options::{DnsOptions, RcodeList, Switch};
pub use serial::serial_lag;

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
        if !self.options.expect_rcode.contains(rcode) {
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
}
