//! The watcher (issue 27): what Redis says between checks.
//!
//! With `--sentinel`: a subscription on one Sentinel (the first that answers, the next one when
//! it is lost) to `+switch-master`, `+sdown`, `-sdown`, `+odown` and `-odown`; each message about
//! this node and the monitored master becomes an event ([`classify`]). Without: one connection
//! to the server, subscribed to a private channel (Redis never closes a subscribed client for
//! idleness, so only a stop, a restart or `CLIENT KILL` ends it); its end is one suspicion per
//! outage. Both connections are PINGed now and then, so a silently dead peer is noticed too.

use std::time::Duration;

use exaprobe_core::address::HostPort;
use exaprobe_core::kit::backoff::Backoff;
use exaprobe_core::kit::events::{EventKind, Events};
use redis::aio::PubSub;
use tokio::time::{Instant, sleep, timeout};
use tokio_stream::StreamExt;

use crate::connect::Connector;
use crate::target::Endpoint;
use crate::{describe, same_address, sentinel_endpoint};

/// How long a connection (with its handshake and SUBSCRIBE) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a quiet connection is PINGed, and how long the answer may take.
const PING_EVERY: Duration = Duration::from_secs(10);
/// A subscription that lived this long resets the backoff.
const STABLE: Duration = Duration::from_secs(10);
/// The Sentinel channels the watcher subscribes to.
const SENTINEL_CHANNELS: [&str; 5] = ["+switch-master", "+sdown", "-sdown", "+odown", "-odown"];
/// The private channel of the server watcher (nothing is published on it).
const PRIVATE_CHANNEL: &str = "__exaprobe__:watch";

/// What the watcher needs, copied out of the probe (it outlives a check and is `'static`).
pub(crate) struct Watch {
    /// How to reach the node (its credentials and TLS).
    pub(crate) connector: Connector,
    /// The node (`--url`).
    pub(crate) endpoint: Endpoint,
    /// `--sentinel`, in order.
    pub(crate) sentinels: Vec<HostPort>,
    /// `--master-name` (with Sentinels).
    pub(crate) master_name: Option<String>,
    /// This node as Sentinels name it (`--announce-address` or the host:port of `--url`).
    pub(crate) this: String,
}

impl Watch {
    /// Run until dropped.
    pub(crate) async fn run(self, events: Events) {
        match &self.master_name {
            Some(name) if !self.sentinels.is_empty() => self.sentinels(name, &events).await,
            _ => self.server(&events).await,
        }
    }

    /// Subscribe to one Sentinel after the other, forever; every message is classified.
    async fn sentinels(&self, name: &str, events: &Events) {
        let mut retry = Retry::default();
        for sentinel in self.sentinels.iter().cycle() {
            let endpoint = sentinel_endpoint(sentinel);
            match subscribe(&Connector::plain(), &endpoint, &SENTINEL_CHANNELS).await {
                Ok(pubsub) => {
                    tracing::info!(%sentinel, master = name, "watching the sentinel's events");
                    let started = Instant::now();
                    let why = listen(pubsub, |channel, payload| {
                        if let Some((kind, reason)) = classify(channel, payload, name, &self.this) {
                            events.report(kind, format!("sentinel {sentinel}: {reason}"));
                        }
                    })
                    .await;
                    tracing::warn!(%sentinel, reason = %why, "lost the sentinel's events; trying the next sentinel");
                    retry.ended(started.elapsed());
                }
                Err(why) => {
                    tracing::debug!(%sentinel, reason = %why, "cannot subscribe to the sentinel")
                }
            }
            retry.attempted(self.sentinels.len()).await;
        }
    }

    /// Keep one subscribed connection to the server; its loss is one suspicion per outage. A
    /// user without the right to SUBSCRIBE (Redis 7 gives new ACL users no channel) gets a
    /// connection kept open by the PINGs instead.
    async fn server(&self, events: &Events) {
        let mut retry = Retry::default();
        let mut channels: &[&str] = &[PRIVATE_CHANNEL];
        loop {
            match subscribe(&self.connector, &self.endpoint, channels).await {
                Ok(pubsub) => {
                    tracing::debug!(endpoint = %self.endpoint, "watching the connection to the server");
                    let started = Instant::now();
                    let why = listen(pubsub, |_, _| {}).await;
                    events.suspicion(format!("redis {}: {why}", self.endpoint));
                    retry.ended(started.elapsed());
                }
                Err(Failed::Refused(why)) if !channels.is_empty() => {
                    tracing::warn!(
                        endpoint = %self.endpoint,
                        reason = %why,
                        "the server refuses the watcher's SUBSCRIBE: keeping a connection open by PINGs instead (allow the probe's user the channel {PRIVATE_CHANNEL}, or a server `timeout` under {} s closes it)",
                        PING_EVERY.as_secs()
                    );
                    channels = &[];
                    continue;
                }
                Err(Failed::Refused(why) | Failed::Unreachable(why)) => {
                    tracing::debug!(endpoint = %self.endpoint, reason = %why, "watch connection failed")
                }
            }
            retry.attempted(1).await;
        }
    }
}

/// Why no subscription was made.
enum Failed {
    /// The server answered SUBSCRIBE with an error (NOPERM, NOAUTH, ...).
    Refused(String),
    /// No connection, or no answer.
    Unreachable(String),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Refused(why) | Failed::Unreachable(why) => f.write_str(why),
        }
    }
}

/// Connect to `endpoint` and subscribe to `channels` (none: a plain connection), within
/// [`CONNECT_TIMEOUT`].
async fn subscribe(
    connector: &Connector,
    endpoint: &Endpoint,
    channels: &[&str],
) -> Result<PubSub, Failed> {
    let mut pubsub = connector
        .pubsub(endpoint, Instant::now() + CONNECT_TIMEOUT)
        .await
        .map_err(Failed::Unreachable)?;
    if channels.is_empty() {
        return Ok(pubsub);
    }
    match timeout(CONNECT_TIMEOUT, pubsub.subscribe(channels)).await {
        Err(_) => Err(Failed::Unreachable(format!(
            "timeout subscribing on {endpoint}"
        ))),
        Ok(Err(error)) if error.code().is_some() => Err(Failed::Refused(format!(
            "SUBSCRIBE on {endpoint}: {}",
            describe(&error)
        ))),
        Ok(Err(error)) => Err(Failed::Unreachable(format!(
            "SUBSCRIBE on {endpoint}: {}",
            describe(&error)
        ))),
        Ok(Ok(())) => Ok(pubsub),
    }
}

/// Hand every message to `on_message` until the connection ends; say why it ended.
async fn listen(pubsub: PubSub, mut on_message: impl FnMut(&str, &str)) -> String {
    let (mut sink, mut stream) = pubsub.split();
    let mut quiet = Box::pin(sleep(PING_EVERY));
    loop {
        tokio::select! {
            message = stream.next() => match message {
                None => return "connection closed by the server (EOF or reset)".into(),
                Some(message) => {
                    let payload = String::from_utf8_lossy(message.get_payload_bytes());
                    on_message(message.get_channel_name(), &payload);
                }
            },
            () = &mut quiet => {
                match timeout(PING_EVERY, sink.ping::<redis::Value>()).await {
                    Err(_) => return format!("no answer to PING within {} s", PING_EVERY.as_secs()),
                    Ok(Err(error)) => return format!("PING failed: {}", describe(&error)),
                    Ok(Ok(_)) => quiet.as_mut().reset(Instant::now() + PING_EVERY),
                }
            }
        }
    }
}

/// A Sentinel message as an event for this node, or `None` when it is about another master or
/// node. `this` is this node's HOST:PORT as the Sentinels know it.
///
/// - `+switch-master NAME OLDIP OLDPORT NEWIP NEWPORT`: this node was the master, it is not
///   any more (authoritative); this node is the new master (suspicion: check now, so its
///   `--rise` checks start).
/// - `+odown master NAME IP PORT ...` of this node: the Sentinels agree it is down
///   (authoritative).
/// - `+sdown`, `-sdown`, `-odown` of this node (master or replica of NAME): one Sentinel's view
///   changed (suspicion: check now).
pub(crate) fn classify(
    channel: &str,
    payload: &str,
    name: &str,
    this: &str,
) -> Option<(EventKind, String)> {
    let words: Vec<&str> = payload.split_whitespace().collect();
    let one_line = || format!("{channel} {}", words.join(" "));
    if channel == "+switch-master" {
        let [master, old_ip, old_port, new_ip, new_port, ..] = words[..] else {
            return None;
        };
        if master != name {
            return None;
        }
        if same_address(this, old_ip, old_port) {
            return Some((
                EventKind::Authoritative,
                format!("{} (this node is no longer the master)", one_line()),
            ));
        }
        if same_address(this, new_ip, new_port) {
            return Some((
                EventKind::Suspicion,
                format!("{} (this node is the new master)", one_line()),
            ));
        }
        return None;
    }
    if !matches!(channel, "+sdown" | "-sdown" | "+odown" | "-odown") {
        return None;
    }
    // TYPE NAME IP PORT [@ MASTER-NAME MASTER-IP MASTER-PORT] [#quorum ...]
    let [kind, instance, ip, port, ref rest @ ..] = words[..] else {
        return None;
    };
    let master = match (kind, rest) {
        ("master", _) => instance,
        ("slave" | "replica", ["@", master, ..]) => master,
        _ => return None,
    };
    if master != name || !same_address(this, ip, port) {
        return None;
    }
    let kind = if channel == "+odown" {
        EventKind::Authoritative
    } else {
        EventKind::Suspicion
    };
    Some((kind, one_line()))
}

/// Reconnection pacing: after every round of failed attempts (one per Sentinel), wait (the
/// kit's [`Backoff`]); a connection that lived [`STABLE`] starts over.
#[derive(Debug, Default)]
struct Retry {
    backoff: Backoff,
    attempts: usize,
}

impl Retry {
    /// A connection ended after `lived`.
    fn ended(&mut self, lived: Duration) {
        if lived >= STABLE {
            *self = Retry::default();
        }
    }

    /// One attempt was made, out of rounds of `round`: wait when a round is complete.
    async fn attempted(&mut self, round: usize) {
        self.attempts += 1;
        if self.attempts.is_multiple_of(round.max(1)) {
            sleep(self.backoff.next_wait()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THIS: &str = "127.0.0.1:6379";

    fn event(channel: &str, payload: &str) -> Option<(EventKind, String)> {
        classify(channel, payload, "cache", THIS)
    }

    #[test]
    fn switch_master_away_from_this_node_is_authoritative() {
        assert_eq!(
            event("+switch-master", "cache 127.0.0.1 6379 127.0.0.1 6380"),
            Some((
                EventKind::Authoritative,
                "+switch-master cache 127.0.0.1 6379 127.0.0.1 6380 (this node is no longer the master)"
                    .into()
            ))
        );
    }

    #[test]
    fn switch_master_to_this_node_is_a_suspicion() {
        assert_eq!(
            event("+switch-master", "cache 127.0.0.1 6380 127.0.0.1 6379"),
            Some((
                EventKind::Suspicion,
                "+switch-master cache 127.0.0.1 6380 127.0.0.1 6379 (this node is the new master)"
                    .into()
            ))
        );
    }

    #[test]
    fn other_masters_and_nodes_are_ignored() {
        assert_eq!(
            event("+switch-master", "other 127.0.0.1 6379 127.0.0.1 6380"),
            None
        );
        assert_eq!(
            event("+switch-master", "cache 127.0.0.1 6381 127.0.0.1 6380"),
            None
        );
        assert_eq!(
            event("+odown", "master other 127.0.0.1 6379 #quorum 2/2"),
            None
        );
        assert_eq!(event("+sdown", "master cache 127.0.0.1 6380"), None);
        assert_eq!(
            event(
                "+sdown",
                "slave 127.0.0.1:6379 127.0.0.1 6379 @ other 127.0.0.1 6390"
            ),
            None
        );
        assert_eq!(
            event(
                "+sdown",
                "sentinel 127.0.0.1:26379 127.0.0.1 6379 @ cache 127.0.0.1 6380"
            ),
            None
        );
        assert_eq!(event("+switch-master", "cache 127.0.0.1"), None);
        assert_eq!(event("+sdown", ""), None);
        assert_eq!(event("+tilt", "#tilt mode entered"), None);
    }

    #[test]
    fn odown_of_this_master_is_authoritative() {
        assert_eq!(
            event("+odown", "master cache 127.0.0.1 6379 #quorum 2/2"),
            Some((
                EventKind::Authoritative,
                "+odown master cache 127.0.0.1 6379 #quorum 2/2".into()
            ))
        );
        assert_eq!(
            event("-odown", "master cache 127.0.0.1 6379"),
            Some((
                EventKind::Suspicion,
                "-odown master cache 127.0.0.1 6379".into()
            ))
        );
    }

    #[test]
    fn sdown_of_this_node_as_master_or_replica_is_a_suspicion() {
        assert_eq!(
            event("+sdown", "master cache 127.0.0.1 6379"),
            Some((
                EventKind::Suspicion,
                "+sdown master cache 127.0.0.1 6379".into()
            ))
        );
        assert_eq!(
            event(
                "-sdown",
                "slave 127.0.0.1:6379 127.0.0.1 6379 @ cache 127.0.0.1 6380"
            ),
            Some((
                EventKind::Suspicion,
                "-sdown slave 127.0.0.1:6379 127.0.0.1 6379 @ cache 127.0.0.1 6380".into()
            ))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retries_back_off_per_round_and_start_over_after_a_stable_connection() {
        let mut retry = Retry::default();
        let started = Instant::now();
        retry.attempted(3).await;
        retry.attempted(3).await;
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "the next sentinel at once"
        );
        retry.attempted(3).await;
        let first = started.elapsed();
        assert!(first > Duration::ZERO, "a round failed: a wait");
        for _ in 0..30 {
            retry.attempted(1).await;
        }
        let max = retry.backoff.max();
        let before = Instant::now();
        retry.attempted(1).await;
        assert_eq!(before.elapsed(), max);
        retry.ended(STABLE / 2);
        let before = Instant::now();
        retry.attempted(1).await;
        assert_eq!(
            before.elapsed(),
            max,
            "a short-lived connection keeps the pace"
        );
        retry.ended(STABLE);
        let before = Instant::now();
        retry.attempted(1).await;
        assert_eq!(before.elapsed(), first, "a stable one starts over");
    }
}
