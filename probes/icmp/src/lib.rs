//! The ICMP check: echo requests to each target (addresses, names resolved at start and on
//! SIGHUP, the default route's gateway read at each check), `--count` per target spread over the
//! first half of the check's deadline so that each has at least half of it to be answered. A
//! target's loss and median round-trip time are judged against their limits (`verdict`), and
//! the targets together against `--min-reachable`.
//!
//! Packets go through surge-ping: it opens the socket it is told to (`sockets` picks datagram
//! or raw), and it hands a reply only to the request with the same identifier, sequence and
//! source address (for a datagram socket the kernel has already matched the identifier). A
//! stray, forged or late reply finds no request waiting and is dropped; sequence numbers run on
//! across checks, so a reply to an earlier check never matches a later one.

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod gateway;
mod options;
mod sockets;
mod verdict;

use std::fmt::Write as _;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, ToSocketAddrs};

use anyhow::{Context, Result, bail};
use exaprobe_core::kit::parse::Limits;
use exaprobe_core::{Outcome, Probe};
use surge_ping::{Client, IcmpPacket, PingIdentifier, PingSequence, SurgeError};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout_at};

pub use options::IcmpOptions;
pub use sockets::SocketKind;

use sockets::{Binding, Family};
use verdict::{Reach, Tally, Thresholds};

/// What each echo request carries (the kernel and surge-ping add the header).
const PAYLOAD: &[u8] = b"exaprobe-icmp\0\0\0";

/// Pings its targets at each check over sockets opened once.
pub struct IcmpProbe {
    /// `--target`s, resolved.
    targets: Vec<Target>,
    /// `--gateway` (IPv4) and `--gateway6` (IPv6), looked up at each check.
    gateways: Vec<Family>,
    /// The gateway last pinged per family, to log a change once.
    last_gateways: Vec<(Family, Option<IpAddr>)>,
    /// One socket per family in use.
    v4: Option<(Client, SocketKind)>,
    v6: Option<(Client, SocketKind)>,
    count: u16,
    thresholds: Thresholds,
    min_reachable: usize,
    /// `--interface`'s index, for `--gateway`.
    interface: Option<u32>,
    /// The identifier of a raw socket's requests (a datagram socket's is set by the kernel).
    ident: PingIdentifier,
    /// The first sequence number of the next check.
    next_sequence: u16,
    /// What the last check measured, for `gauges`.
    gauges: Vec<exaprobe_core::Gauge>,
}

/// A host to ping.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// As the operator wrote it, with the address if it was a name.
    name: String,
    address: IpAddr,
    /// The interface of a link-local IPv6 address.
    scope: u32,
}

impl IcmpProbe {
    /// Resolve the targets, open the sockets and check the limits: every mistake here is a
    /// configuration error at start (or a refused SIGHUP reload), never an unhealthy service.
    pub fn new(options: &IcmpOptions) -> Result<Self> {
        if options.target.is_empty() && !options.gateway && !options.gateway6 {
            bail!("nothing to ping: give --target HOST (repeatable), --gateway or --gateway6");
        }
        let mut targets: Vec<Target> = Vec::new();
        for text in &options.target {
            let target = resolve(text)?;
            if !targets.iter().any(|known| known.address == target.address) {
                targets.push(target);
            }
        }
        let mut gateways = Vec::new();
        if options.gateway {
            gateways.push(Family::V4);
        }
        if options.gateway6 {
            gateways.push(Family::V6);
        }
        let total = targets.len() + gateways.len();
        let min_reachable = match options.min_reachable {
            Some(n) if usize::from(n) > total => bail!(
                "--min-reachable {n} is more than the {total} target{} given",
                if total == 1 { "" } else { "s" }
            ),
            Some(n) => usize::from(n),
            None => total,
        };
        let thresholds = Thresholds {
            loss: Limits::new(
                options.loss_degraded,
                options.loss_down,
                ("--loss-degraded", "--loss-down"),
                |v| format!("{v}%"),
            )
            .map_err(anyhow::Error::msg)?,
            rtt: Limits::new(
                options.rtt_degraded.map(|rtt| rtt.as_secs_f64()),
                options.rtt_down.map(|rtt| rtt.as_secs_f64()),
                ("--rtt-degraded", "--rtt-down"),
                |secs| verdict::show_duration(std::time::Duration::from_secs_f64(secs)),
            )
            .map_err(anyhow::Error::msg)?,
        };
        let interface = match &options.interface {
            Some(name) => Some(
                exaprobe_core::netlink::interface_index(name)
                    .with_context(|| format!("--interface {name}"))?,
            ),
            None => None,
        };
        let binding = Binding {
            source: options.source,
            interface: options.interface.clone(),
        };
        let uses = |family: Family| {
            gateways.contains(&family)
                || targets
                    .iter()
                    .any(|target| Family::of(&target.address) == family)
        };
        let v4 = uses(Family::V4)
            .then(|| sockets::open(Family::V4, &binding))
            .transpose()?;
        let v6 = uses(Family::V6)
            .then(|| sockets::open(Family::V6, &binding))
            .transpose()?;
        Ok(IcmpProbe {
            last_gateways: gateways.iter().map(|family| (*family, None)).collect(),
            targets,
            gateways,
            v4,
            v6,
            count: options.count,
            thresholds,
            min_reachable,
            interface,
            ident: PingIdentifier(RandomState::new().hash_one(std::process::id()) as u16),
            next_sequence: 0,
            gauges: Vec::new(),
        })
    }

    /// The kind of socket used for `address`'s family (for tests and `--check-config`).
    pub fn socket_kind(&self, address: &IpAddr) -> Option<SocketKind> {
        self.client(Family::of(address)).map(|(_, kind)| *kind)
    }

    fn client(&self, family: Family) -> Option<&(Client, SocketKind)> {
        match family {
            Family::V4 => self.v4.as_ref(),
            Family::V6 => self.v6.as_ref(),
        }
    }

    /// This check's targets: the fixed ones, then each default gateway (or why there is none).
    fn current_targets(&mut self) -> Vec<Result<Target, String>> {
        let mut current: Vec<Result<Target, String>> =
            self.targets.iter().cloned().map(Ok).collect();
        for (family, last) in &mut self.last_gateways {
            let found = match gateway::default_gateway(*family, self.interface) {
                Err(error) => Err(format!("cannot read the {} routes: {error}", family.name())),
                Ok(found) => found,
            };
            let address = found.as_ref().ok().map(|gateway| gateway.address);
            if address != *last {
                match (&found, *last) {
                    (Ok(gateway), _) => tracing::info!(
                        gateway = %gateway.address,
                        previous = ?last,
                        "{} default gateway",
                        family.name()
                    ),
                    (Err(reason), Some(_)) => tracing::warn!(reason, "default gateway gone"),
                    (Err(_), None) => {}
                }
                *last = address;
            }
            current.push(found.map(|gateway| Target {
                name: format!("{} default gateway {}", family.name(), gateway.address),
                address: gateway.address,
                scope: if gateway::is_link_local(&gateway.address) {
                    gateway.interface
                } else {
                    0
                },
            }));
        }
        current
    }
}

/// `--target`'s address, or its name's first address.
fn resolve(text: &str) -> Result<Target> {
    if let Some((address, zone)) = text.split_once('%') {
        let address: IpAddr = address
            .parse()
            .with_context(|| format!("--target {text}"))?;
        let scope = exaprobe_core::netlink::interface_index(zone)
            .with_context(|| format!("--target {text}"))?;
        return Ok(Target {
            name: text.to_string(),
            address,
            scope,
        });
    }
    if let Ok(address) = text.parse::<IpAddr>() {
        return Ok(Target {
            name: text.to_string(),
            address,
            scope: 0,
        });
    }
    let address = (text, 0)
        .to_socket_addrs()
        .with_context(|| format!("--target {text}: cannot resolve the name"))?
        .next()
        .with_context(|| format!("--target {text}: the name has no address"))?
        .ip();
    Ok(Target {
        name: format!("{text} ({address})"),
        address,
        scope: 0,
    })
}

/// What one echo request came to.
enum Answer {
    Reply(std::time::Duration),
    Lost,
    Error(String),
}

/// The answer to one request, as surge-ping returned it.
fn answer(result: Result<(IcmpPacket, std::time::Duration), SurgeError>) -> Answer {
    match result {
        Ok((IcmpPacket::V4(packet), rtt)) => match packet.get_icmp_type().0 {
            0 => Answer::Reply(rtt),
            kind => Answer::Error(icmp_error(
                kind,
                packet.get_icmp_code().0,
                false,
                &packet.get_source().into(),
            )),
        },
        Ok((IcmpPacket::V6(packet), rtt)) => match packet.get_icmpv6_type().0 {
            129 => Answer::Reply(rtt),
            kind => Answer::Error(icmp_error(
                kind,
                packet.get_icmpv6_code().0,
                true,
                &packet.get_source().into(),
            )),
        },
        Err(SurgeError::Timeout { .. }) => Answer::Lost,
        Err(SurgeError::IOError(error)) => {
            Answer::Error(exaprobe_core::kit::reason::io_error(&error))
        }
        Err(other) => Answer::Error(other.to_string()),
    }
}

/// An ICMP error received instead of an echo reply, in words.
fn icmp_error(kind: u8, code: u8, v6: bool, from: &IpAddr) -> String {
    let what = match (v6, kind) {
        (false, 3) | (true, 1) => "destination unreachable",
        (false, 11) | (true, 3) => "time exceeded",
        (true, 2) => "packet too big",
        (false, 12) | (true, 4) => "parameter problem",
        _ => "unexpected ICMP message",
    };
    format!("{what} (type {kind} code {code}) from {from}")
}

impl Probe for IcmpProbe {
    fn describe(&self) -> String {
        let mut text = String::from("ping ");
        let mut names: Vec<String> = self.targets.iter().map(|t| t.name.clone()).collect();
        names.extend(
            self.gateways
                .iter()
                .map(|family| format!("the {} default gateway", family.name())),
        );
        text.push_str(&names.join(", "));
        let _ = write!(
            text,
            ": {} echo request{} per target and check",
            self.count,
            if self.count == 1 { "" } else { "s" }
        );
        for (family, found) in [(Family::V4, &self.v4), (Family::V6, &self.v6)] {
            if let Some((_, kind)) = found {
                let _ = write!(text, ", {} over a {}", family.name(), kind.describe());
            }
        }
        if self.min_reachable < names.len() {
            let _ = write!(
                text,
                ", {} of {} must answer",
                self.min_reachable,
                names.len()
            );
        }
        exaprobe_core::redact::for_display(&text)
    }

    async fn check(&mut self, deadline: Instant) -> Outcome {
        let start = Instant::now();
        let count = self.count;
        let gap = deadline.saturating_duration_since(start) / (2 * u32::from(count));
        let first = self.next_sequence;
        self.next_sequence = first.wrapping_add(count);
        let targets = self.current_targets();
        let mut tallies: Vec<Option<Tally>> = Vec::with_capacity(targets.len());
        let mut requests = JoinSet::new();
        for (index, target) in targets.iter().enumerate() {
            let Ok(target) = target else {
                tallies.push(None);
                continue;
            };
            tallies.push(Some(Tally {
                name: target.name.clone(),
                sent: usize::from(count),
                rtts: Vec::new(),
                error: None,
            }));
            let Some((client, _)) = self.client(Family::of(&target.address)) else {
                continue;
            };
            for n in 0..count {
                let client = client.clone();
                let (address, scope, ident) = (target.address, target.scope, self.ident);
                let at = start + gap * u32::from(n);
                requests.spawn(async move {
                    sleep_until(at).await;
                    let mut pinger = client.pinger(address, ident).await;
                    pinger
                        .scope_id(scope)
                        .timeout(deadline.saturating_duration_since(Instant::now()));
                    let sequence = PingSequence(first.wrapping_add(n));
                    (index, answer(pinger.ping(sequence, PAYLOAD).await))
                });
            }
        }
        // Every request ends by the deadline on its own; this bounds the wait all the same.
        let _ = timeout_at(deadline, async {
            while let Some(done) = requests.join_next().await {
                let Ok((index, answer)) = done else { continue };
                let Some(Some(tally)) = tallies.get_mut(index) else {
                    continue;
                };
                match answer {
                    Answer::Reply(rtt) => tally.rtts.push(rtt),
                    Answer::Lost => {}
                    Answer::Error(error) => tally.error = Some(error),
                }
            }
        })
        .await;
        let reaches: Vec<Reach> = targets
            .iter()
            .zip(&tallies)
            .map(|(target, tally)| match (target, tally) {
                (Err(reason), _) => Reach::Unreachable(reason.clone()),
                (Ok(_), Some(tally)) => verdict::judge_target(tally, &self.thresholds),
                (Ok(target), None) => Reach::Unreachable(format!("{}: no socket", target.name)),
            })
            .collect();
        self.gauges = measured(&tallies, &reaches);
        verdict::judge(&reaches, self.min_reachable)
    }

    fn gauges(&self) -> Vec<exaprobe_core::Gauge> {
        self.gauges.clone()
    }
}

/// The last check's series: reachable targets, the worst loss, the worst median RTT.
fn measured(tallies: &[Option<Tally>], reaches: &[Reach]) -> Vec<exaprobe_core::Gauge> {
    let reachable = reaches
        .iter()
        .filter(|reach| !matches!(reach, Reach::Unreachable(_)))
        .count();
    let mut gauges = vec![exaprobe_core::Gauge {
        name: "exaprobe_icmp_reachable_targets",
        help: "Targets reachable at the last check",
        value: reachable as f64,
    }];
    let answered = tallies.iter().flatten();
    if let Some(loss) = answered.clone().map(Tally::loss).reduce(f64::max) {
        gauges.push(exaprobe_core::Gauge {
            name: "exaprobe_icmp_loss_ratio",
            help: "The highest share of echo requests lost by one target at the last check",
            value: loss / 100.0,
        });
    }
    if let Some(rtt) = answered.filter_map(Tally::median).max() {
        gauges.push(exaprobe_core::Gauge {
            name: "exaprobe_icmp_rtt_seconds",
            help: "The highest median round-trip time of one target at the last check",
            value: rtt.as_secs_f64(),
        });
    }
    gauges
}

impl std::fmt::Debug for IcmpProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IcmpProbe")
            .field("target", &self.describe())
            .finish_non_exhaustive()
    }
}
