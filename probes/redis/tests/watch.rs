//! The Redis watcher (issue 27) against real servers started by the test: three real Sentinels
//! with a forced failover, the loss of the subscribed Sentinel, a fake Sentinel flooding
//! `+sdown`/`-sdown`, and a real server restarted under a watcher without Sentinel.

use std::time::Duration;

use clap::Parser;
use exaprobe_core::Probe;
use exaprobe_core::kit::events::{EventKind, Events, TakenEvents};
use exaprobe_redis::{RedisOptions, RedisProbe};
use exaprobe_testkit::redis::{replica_of, start, subscribed_clients};
use exaprobe_testkit::sentinel::{FloodingSentinel, Sentinels};
use exaprobe_testkit::{free_port, wait_for};

/// A guard against a hang, not a timing assertion.
const GUARD: Duration = Duration::from_secs(60);

fn probe(args: &[&str]) -> RedisProbe {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        redis: RedisOptions,
    }
    let argv = std::iter::once("exaprobe-redis").chain(args.iter().copied());
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}"));
    RedisProbe::new(&cli.redis).unwrap()
}

/// Start `probe`'s watcher on a new latch; the task ends with the test's runtime.
fn watch(probe: &RedisProbe) -> Events {
    let events = Events::new();
    let watcher = probe
        .watch(events.clone())
        .expect("the redis probe watches");
    tokio::spawn(watcher);
    events
}

async fn next(events: &Events) -> TakenEvents {
    tokio::time::timeout(GUARD, events.next())
        .await
        .expect("an event within the guard")
}

/// Take events until an authoritative one comes; its reason.
async fn authoritative(events: &Events) -> String {
    loop {
        if let Some(reason) = next(events).await.authoritative() {
            return reason.to_string();
        }
    }
}

fn sentinel_list(sentinels: &Sentinels) -> String {
    sentinels
        .ports
        .iter()
        .map(|port| format!("127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_takes_the_old_master_down_and_wakes_the_new_one() {
    let Some(master) = start(&[]) else { return };
    let Some(replica) = replica_of(&master) else {
        return;
    };
    let Some(sentinels) = Sentinels::start(&master, 1, "cache") else {
        return;
    };
    let list = sentinel_list(&sentinels);
    let old_url = format!("redis://127.0.0.1:{}", master.port);
    let new_url = format!("redis://127.0.0.1:{}", replica.port);
    let common = ["--sentinel", list.as_str(), "--master-name", "cache"];
    let old = watch(&probe(
        &[&["--url", old_url.as_str()][..], &common].concat(),
    ));
    let new = watch(&probe(
        &[&["--url", new_url.as_str()][..], &common].concat(),
    ));
    let subscribed = sentinels.wait_subscribed(2);
    assert_eq!(
        subscribed, 0,
        "the watchers subscribe to the first sentinel"
    );

    sentinels.failover();

    let reason = authoritative(&old).await;
    let switch = format!(
        "+switch-master cache 127.0.0.1 {} 127.0.0.1 {}",
        master.port, replica.port
    );
    assert_eq!(
        reason,
        format!(
            "sentinel 127.0.0.1:{}: {switch} (this node is no longer the master)",
            sentinels.ports[0]
        )
    );
    let taken = next(&new).await;
    assert_eq!(taken.authoritative(), None);
    assert_eq!(
        taken.suspicion(),
        Some(
            format!(
                "sentinel 127.0.0.1:{}: {switch} (this node is the new master)",
                sentinels.ports[0]
            )
            .as_str()
        )
    );
    assert_eq!(new.total(EventKind::Authoritative), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_subscribed_sentinel_fails_over_to_the_next() {
    let Some(master) = start(&[]) else { return };
    let Some(replica) = replica_of(&master) else {
        return;
    };
    let Some(mut sentinels) = Sentinels::start(&master, 1, "cache") else {
        return;
    };
    let list = sentinel_list(&sentinels);
    let url = format!("redis://127.0.0.1:{}", master.port);
    let events = watch(&probe(&[
        "--url",
        &url,
        "--sentinel",
        &list,
        "--master-name",
        "cache",
    ]));
    let first = sentinels.wait_subscribed(1);
    sentinels.kill(first);
    let second = sentinels.wait_subscribed(1);
    assert_ne!(first, second);

    sentinels.failover();

    let reason = authoritative(&events).await;
    assert!(
        reason.starts_with(&format!("sentinel 127.0.0.1:{}: ", sentinels.ports[second]))
            && reason.ends_with(&format!(
                "127.0.0.1 {} 127.0.0.1 {} (this node is no longer the master)",
                master.port, replica.port
            )),
        "{reason}"
    );
    assert_eq!(
        events.total(EventKind::Suspicion),
        0,
        "the loss of a sentinel is no event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_sdown_is_coalesced_and_the_watcher_stays_responsive() {
    let node = free_port();
    let fake = FloodingSentinel::start("cache", node, 1000);
    let url = format!("redis://127.0.0.1:{node}");
    let sentinel = format!("127.0.0.1:{}", fake.port);
    let events = watch(&probe(&[
        "--url",
        &url,
        "--sentinel",
        &sentinel,
        "--master-name",
        "cache",
    ]));
    let mut wakeups = 0u64;
    let mut counted = 0;
    let reason = loop {
        let taken = next(&events).await;
        wakeups += 1;
        counted += taken.count();
        if let Some(reason) = taken.authoritative() {
            break reason.to_string();
        }
    };
    assert_eq!(
        reason,
        format!("sentinel {sentinel}: +odown master cache 127.0.0.1 {node} #quorum 2/2")
    );
    assert_eq!(events.total(EventKind::Suspicion), 2000);
    assert_eq!(events.total(EventKind::Authoritative), 1);
    assert_eq!(counted, 2001, "every event counted, whatever the wake-ups");
    assert!(wakeups <= counted);
    assert_eq!(events.take().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sentinel_a_restart_is_one_suspicion() {
    let Some(mut server) = start(&[]) else { return };
    let url = format!("redis://127.0.0.1:{}", server.port);
    let events = watch(&probe(&["--url", &url]));
    let port = server.port;
    let subscribed = move || {
        wait_for("the watcher's subscription", GUARD, || {
            (subscribed_clients(port) == 1).then_some(())
        })
    };
    tokio::task::spawn_blocking(subscribed).await.unwrap();

    server.stop();
    let taken = next(&events).await;
    assert_eq!(
        taken.suspicion(),
        Some(
            format!("redis 127.0.0.1:{port}: connection closed by the server (EOF or reset)")
                .as_str()
        )
    );
    assert_eq!(taken.authoritative(), None);

    server.restart();
    tokio::task::spawn_blocking(subscribed).await.unwrap();
    assert_eq!(
        events.total(EventKind::Suspicion),
        1,
        "refused reconnections while down are no events"
    );
    assert_eq!(events.take().count(), 0);

    server.stop();
    assert!(next(&events).await.suspicion().is_some(), "a new outage");
    assert_eq!(events.total(EventKind::Suspicion), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_refused_subscribe_is_watched_through_a_plain_connection() {
    let Some(mut server) = start(&[]) else { return };
    let port = server.port;
    // As Redis 7 makes new users: every command, no channel.
    assert_eq!(
        exaprobe_testkit::redis::cli(
            port,
            &[
                "ACL",
                "SETUSER",
                "probe",
                "on",
                ">pw",
                "~*",
                "+@all",
                "resetchannels"
            ]
        ),
        "OK"
    );
    let events = watch(&probe(&[
        "--url",
        &format!("redis://probe:pw@127.0.0.1:{port}"),
    ]));
    let connected = move || {
        wait_for("the watcher's plain connection", GUARD, || {
            exaprobe_testkit::redis::cli(port, &["CLIENT", "LIST"])
                .lines()
                .any(|line| line.contains(" user=probe ") && line.contains(" sub=0 "))
                .then_some(())
        })
    };
    tokio::task::spawn_blocking(connected).await.unwrap();
    assert_eq!(events.take().count(), 0, "a refused SUBSCRIBE is no event");

    server.stop();
    assert_eq!(
        next(&events).await.suspicion(),
        Some(
            format!("redis 127.0.0.1:{port}: connection closed by the server (EOF or reset)")
                .as_str()
        )
    );
}
