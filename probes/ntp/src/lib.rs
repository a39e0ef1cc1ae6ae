//! The NTP check: one NTPv4 client request per check to one server, over a UDP socket connected
//! to it, judged on the reply (see [`verdict`] for the order of the rules).
//!
//! The request's transmit timestamp is random (RFC 9109: it tells nothing of our clock, and an
//! off-path attacker cannot guess the origin timestamp a forged reply must carry). The reply is
//! the server's packet whose origin timestamp is that random value, from the server's address
//! and port (the kernel drops others on a connected socket); anything else that arrives is
//! ignored and counted, and the wait goes on until the deadline. The offset is measured with
//! the local clock's own readings around the exchange.

mod options;
mod packet;
mod verdict;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use exaprobe_core::address::{Host, HostPort};
use exaprobe_core::kit::parse::Limits;
use exaprobe_core::kit::udp::{self, UdpFailure};
use exaprobe_core::{Gauge, Outcome, Probe};
use tokio::time::{Instant, timeout_at};

pub use options::NtpOptions;

use packet::{Reply, Timestamp};
use verdict::{Exchange, Thresholds};

/// Asks one NTP server for the time at each check.
pub struct NtpProbe {
    server: HostPort,
    thresholds: Thresholds,
    /// `--timeout`, for reasons.
    timeout: Duration,
    /// What the last reply said, for the gauges: its stratum, and its offset and root distance
    /// when it had time to tell (not at stratum 0: a kiss-o'-death or an unsynchronised server).
    last: Option<(u8, Option<(f64, f64)>)>,
}

impl NtpProbe {
    /// Build the probe; `timeout` (`--timeout`) is named in the reason when no reply comes.
    pub fn new(options: &NtpOptions, timeout: Duration) -> Result<Self> {
        let seconds = |option: Option<Duration>| option.map(|level| level.as_secs_f64());
        let show = |seconds: f64| format!("{:?}", Duration::from_secs_f64(seconds));
        let root_distance = Limits::new(
            seconds(options.root_distance_degraded),
            Some(options.root_distance_down.as_secs_f64()),
            ("--root-distance-degraded", "--root-distance-down"),
            show,
        )
        .map_err(anyhow::Error::msg)?;
        let offset = Limits::new(
            seconds(options.offset_degraded),
            seconds(options.offset_down),
            ("--offset-degraded", "--offset-down"),
            show,
        )
        .map_err(anyhow::Error::msg)?;
        Ok(NtpProbe {
            server: options.server.clone(),
            thresholds: Thresholds {
                max_stratum: options.max_stratum,
                root_distance,
                offset,
            },
            timeout,
            last: None,
        })
    }

    /// The server's address now: `--server`'s address, or its name's first address.
    async fn resolve(&self, deadline: Instant) -> Result<SocketAddr, String> {
        let name = match &self.server.host {
            Host::Ip(ip) => return Ok(SocketAddr::new(*ip, self.server.port)),
            Host::Name(name) => name,
        };
        match timeout_at(
            deadline,
            tokio::net::lookup_host((name.as_str(), self.server.port)),
        )
        .await
        {
            Err(_) => Err(format!("timeout resolving {name}")),
            Ok(Err(error)) => Err(format!("DNS: cannot resolve {name}: {error}")),
            Ok(Ok(mut addresses)) => addresses
                .next()
                .ok_or_else(|| format!("DNS: {name} has no address")),
        }
    }

    /// Ask once: the reply and the local clock's readings around it.
    async fn ask(
        &self,
        address: SocketAddr,
        subject: &str,
        deadline: Instant,
    ) -> Result<(Reply, Exchange), String> {
        let sent = Timestamp(
            getrandom::u64()
                .map_err(|error| format!("cannot draw a random transmit timestamp: {error}"))?,
        );
        let started = Timestamp::from_system_time(SystemTime::now());
        let reply = udp::exchange(address, &packet::request(sent), deadline, |bytes| {
            let reply = packet::reply_to(sent, bytes)?;
            Ok((reply, Timestamp::from_system_time(SystemTime::now())))
        })
        .await;
        match reply {
            Ok((reply, received)) => Ok((
                reply,
                Exchange {
                    sent: started,
                    received,
                },
            )),
            Err(UdpFailure::Timeout(ignored)) => Err(format!(
                "{subject}: no reply within --timeout {:?}{}",
                self.timeout,
                ignored.summary()
            )),
            Err(UdpFailure::Socket(reason)) => Err(format!("{subject}: {reason}")),
        }
    }
}

impl Probe for NtpProbe {
    fn describe(&self) -> String {
        exaprobe_core::redact::for_display(&format!("ntp://{}", self.server))
    }

    async fn check(&mut self, deadline: Instant) -> Outcome {
        self.last = None;
        let address = match self.resolve(deadline).await {
            Ok(address) => address,
            Err(reason) => return Outcome::unhealthy(reason),
        };
        let subject = match self.server.host {
            Host::Ip(_) => address.to_string(),
            Host::Name(_) => format!("{} ({})", self.server, address.ip()),
        };
        let subject = exaprobe_core::redact::for_display(&subject);
        match self.ask(address, &subject, deadline).await {
            Ok((reply, exchange)) => {
                let time = (reply.stratum != 0)
                    .then(|| (exchange.offset(&reply), reply.root_distance().as_secs_f64()));
                self.last = Some((reply.stratum, time));
                verdict::judge(&reply, exchange, &self.thresholds, &subject)
            }
            Err(reason) => Outcome::unhealthy(reason),
        }
    }

    fn gauges(&self) -> Vec<Gauge> {
        let Some((stratum, time)) = self.last else {
            return Vec::new();
        };
        let mut gauges = vec![Gauge {
            name: "exaprobe_ntp_stratum",
            help: "The server's stratum in its last reply",
            value: f64::from(stratum),
        }];
        if let Some((offset, root_distance)) = time {
            gauges.extend([
                Gauge {
                    name: "exaprobe_ntp_offset_seconds",
                    help: "The server's clock minus the local clock at the last reply",
                    value: offset,
                },
                Gauge {
                    name: "exaprobe_ntp_root_distance_seconds",
                    help: "Root delay / 2 + root dispersion in the server's last reply",
                    value: root_distance,
                },
            ]);
        }
        gauges
    }
}

impl std::fmt::Debug for NtpProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NtpProbe")
            .field("target", &self.describe())
            .finish_non_exhaustive()
    }
}
