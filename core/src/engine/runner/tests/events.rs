//! Events (`--events`) in-process: the test reports what its service "says" through the latch
//! the runner's watcher handed over, with the operator's default timers (`--interval 5
//! --fast-interval 1 --rise 3 --fall 3`) on the paused clock, so "at once" is measured against
//! an interval of seconds and every check is counted.

use std::time::Duration;

use tokio::time::Instant;

use super::{Exabgp, Health, Logs, Service, args, local};

const UP: &str = "announce route 192.0.2.0/32 next-hop self med 100";
const DOWN: &str = "announce route 192.0.2.0/32 next-hop self med 1000";

fn start(service: &Service, extra: &[&str]) -> Exabgp {
    let mut all = vec![
        "--interval",
        "5",
        "--fast-interval",
        "1",
        "--rise",
        "3",
        "--fall",
        "3",
    ];
    all.extend_from_slice(extra);
    Exabgp::start(&args(1, &all), service)
}

impl Exabgp {
    /// The next command, acknowledged, and when it came.
    async fn next_line(&mut self, within: Duration) -> Option<(String, Instant)> {
        let line = self.command(within).await?;
        self.answer("done\n").await;
        Some((line, Instant::now()))
    }
}

/// Start healthy and wait for the first announce (three checks a fast interval apart).
async fn announced(service: &Service, extra: &[&str]) -> Exabgp {
    let mut exabgp = start(service, extra);
    let (line, _) = exabgp
        .next_line(Duration::from_secs(10))
        .await
        .expect("announced");
    assert_eq!(line, UP);
    exabgp
}

/// Make the service slow (3 s a check) and wait, on the paused clock, until the next check
/// has started; returns the checks before it.
async fn slow_check_started(service: &Service) -> usize {
    service.set(Health::Slow);
    let checks = service.checks().len();
    while service.checks().len() == checks {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    checks
}

#[tokio::test(start_paused = true)]
async fn the_service_saying_not_serving_withdraws_at_once_and_recovery_needs_rise() {
    local(async {
        let service = Service::new(Health::Healthy);
        let mut exabgp = announced(&service, &[]).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let checks = service.checks().len();
        let said = Instant::now();
        service.set(Health::Failing);
        service
            .events()
            .expect("the runner watches")
            .not_serving("NOT_SERVING");
        let (line, at) = exabgp
            .next_line(Duration::from_secs(10))
            .await
            .expect("withdrawn");
        assert_eq!(line, DOWN);
        assert_eq!(at, said, "no --fall, no wait for the next check");
        assert_eq!(service.checks().len(), checks, "no check was needed");
        // Back: the service says SERVING (a suspicion: check now), then --rise checks at the
        // fast interval.
        tokio::time::sleep(Duration::from_secs(2)).await;
        service.set(Health::Healthy);
        let back = Instant::now();
        let before = service.checks().len();
        service.events().unwrap().suspicion("SERVING again");
        let (line, at) = exabgp
            .next_line(Duration::from_secs(10))
            .await
            .expect("announced again");
        assert_eq!(line, UP);
        assert_eq!(at - back, Duration::from_secs(2), "checks at 0, 1 and 2 s");
        assert_eq!(service.checks().len() - before, 3);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn not_serving_drops_the_check_in_flight() {
    local(async {
        let service = Service::new(Health::Healthy);
        let mut exabgp = announced(&service, &[]).await;
        slow_check_started(&service).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let said = Instant::now();
        service.events().unwrap().not_serving("NOT_SERVING");
        let (line, at) = exabgp
            .next_line(Duration::from_secs(10))
            .await
            .expect("withdrawn");
        assert_eq!((line.as_str(), at), (DOWN, said));
        // The dropped check's healthy answer never counts: nothing more within the interval.
        assert_eq!(exabgp.next_line(Duration::from_secs(4)).await, None);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_suspicion_checks_now_and_confirms_at_the_fast_interval() {
    local(async {
        let logs = Logs::capture();
        let service = Service::new(Health::Healthy);
        let mut exabgp = announced(&service, &[]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        service.set(Health::Failing);
        let closed = Instant::now();
        let before = service.checks().len();
        service
            .events()
            .unwrap()
            .suspicion("connection closed by the server");
        let (line, at) = exabgp
            .next_line(Duration::from_secs(10))
            .await
            .expect("withdrawn");
        assert_eq!(line, DOWN);
        assert_eq!(
            at - closed,
            Duration::from_secs(2),
            "fall x fast-interval, from at once"
        );
        let checks: Vec<Duration> = service.checks()[before..]
            .iter()
            .map(|c| *c - closed)
            .collect();
        assert_eq!(checks, [0, 1, 2].map(Duration::from_secs));
        assert!(
            logs.text().contains("connection closed by the server"),
            "{}",
            logs.text()
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_suspicions_is_one_check_then_the_fast_schedule() {
    local(async {
        let logs = Logs::capture();
        let service = Service::new(Health::Healthy);
        let mut exabgp = announced(&service, &[]).await;
        let before = service.checks().len();
        let events = service.events().unwrap();
        let flood = Instant::now();
        for n in 0..1000 {
            events.suspicion(if n % 2 == 0 { "+sdown" } else { "-sdown" });
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let during = service.checks().len() - before;
        assert!(
            (1..=2).contains(&during),
            "{during} checks during a second of 1,000 suspicions"
        );
        assert_eq!(
            exabgp.next_line(Duration::from_secs(3)).await,
            None,
            "no route change"
        );
        let text = logs.text();
        let woken = text.matches("event: checking now").count();
        assert_eq!(woken, 1, "one suspicion window: {text}");
        assert!(flood.elapsed() >= Duration::from_secs(1));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn events_off_is_plain_polling() {
    local(async {
        let service = Service::new(Health::Healthy);
        let mut exabgp = announced(&service, &["--events", "off"]).await;
        assert!(service.events().is_none(), "no watcher with --events off");
        let last_check = *service.checks().last().unwrap();
        service.set(Health::Failing);
        let (line, at) = exabgp
            .next_line(Duration::from_secs(20))
            .await
            .expect("withdrawn");
        assert_eq!(line, DOWN);
        // The next check at the interval, then two at the fast interval.
        assert_eq!(at - last_check, Duration::from_secs(7));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_not_serving_and_serving_flaps_no_faster_than_rise_and_damping_allow() {
    local(async {
        let service = Service::new(Health::Healthy);
        let mut exabgp = announced(&service, &["--flap-limit", "2", "--flap-window", "60"]).await;
        let events = service.events().unwrap();
        let flood = Instant::now();
        let mut changes = Vec::new();
        // Ten bursts of 100 NOT_SERVING/SERVING pairs in a second, 3 s apart, while the service
        // itself answers healthy: 1,000 pairs in all.
        for burst in 0..10u32 {
            for n in 0..100u32 {
                events.not_serving(format!("NOT_SERVING {burst}.{n}"));
                events.suspicion(format!("SERVING {burst}.{n}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                while let Some((line, at)) = exabgp.next_line(Duration::ZERO).await {
                    changes.push((line, at - flood));
                }
            }
            let quiet = Instant::now() + Duration::from_secs(3);
            while let Some((line, at)) = exabgp.next_line(quiet - Instant::now()).await {
                changes.push((line, at - flood));
            }
        }
        // DOWN at once, then UP only after --rise checks at the fast interval (2 s), DOWN again at
        // the next NOT_SERVING: a change per rise period at most, and after more than
        // --flap-limit changes the hold keeps it DOWN.
        let ups = changes.iter().filter(|(line, _)| line == UP).count();
        assert!(
            changes.first().is_some_and(|(line, _)| line == DOWN),
            "{changes:?}"
        );
        assert!(
            ups <= 2,
            "{ups} returns to UP in 10 s of flood: {changes:?}"
        );
        for pair in changes.windows(2) {
            if pair[1].0 == UP {
                assert!(
                    pair[1].1 - pair[0].1 >= Duration::from_secs(2),
                    "{changes:?}"
                );
            }
        }
        assert!(changes.len() <= 4, "{changes:?}");
        assert!(
            changes.last().is_some_and(|(line, _)| line == DOWN),
            "held DOWN: {changes:?}"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn sigusr2_during_a_check_dropped_for_not_serving_still_checks_now() {
    local(async {
        let service = Service::new(Health::Healthy);
        let mut exabgp = announced(&service, &[]).await;
        let checks = slow_check_started(&service).await;
        exabgp.signal(super::Signal::CheckNow);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let said = Instant::now();
        service.events().unwrap().not_serving("NOT_SERVING");
        let (line, _) = exabgp
            .next_line(Duration::from_secs(1))
            .await
            .expect("withdrawn");
        assert_eq!(line, DOWN);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let after: Vec<Duration> = service.checks()[checks + 1..]
            .iter()
            .map(|at| *at - said)
            .collect();
        assert_eq!(after, [Duration::ZERO], "the SIGUSR2 check, at once");
    })
    .await;
}
