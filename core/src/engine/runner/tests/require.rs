//! Required probes in-process: the runner with `--require`, the required state files written
//! by the test as their writers write them (a temporary file renamed over), and the paused
//! clock, so "at once" is measured against an `--interval` of a minute.

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use super::{Exabgp, Health, Logs, Service, args, local};
use crate::engine::require::state::tests::{write_bytes, write_state};

const UP: &str = "announce route 192.0.2.0/32 next-hop self med 100";
const DEGRADED: &str = "announce route 192.0.2.0/32 next-hop self med 300";
const MAINTENANCE: &str = "announce route 192.0.2.0/32 next-hop self med 500";
const DOWN: &str = "announce route 192.0.2.0/32 next-hop self med 1000";
/// Far longer than any wait below: a re-decision must not wait for it.
const INTERVAL: &str = "60";

impl Exabgp {
    /// The next command, acknowledged, and how long after `since` it came (at most 2 s).
    async fn next_acked(&mut self, since: Instant) -> (Option<String>, Duration) {
        let line = self.command(Duration::from_secs(2)).await;
        let took = since.elapsed();
        if line.is_some() {
            self.answer("done\n").await;
        }
        (line, took)
    }

    /// Expect `line` within a second of `since` (the liveness poll's bound), not at the
    /// interval.
    async fn expect(&mut self, line: &str, since: Instant) {
        let (got, took) = self.next_acked(since).await;
        assert_eq!(got.as_deref(), Some(line));
        assert!(took <= Duration::from_secs(1), "{line} after {took:?}");
    }
}

fn start(required: &[&Path], extra: &[&str]) -> (Exabgp, Service) {
    let service = Service::new(Health::Healthy);
    let mut all: Vec<String> = vec!["--interval".into(), INTERVAL.into()];
    for file in required {
        all.push("--require".into());
        all.push(file.display().to_string());
    }
    all.extend(extra.iter().map(|s| s.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let exabgp = Exabgp::start(&args(1, &all), &service);
    (exabgp, service)
}

#[tokio::test(start_paused = true)]
async fn each_state_of_a_required_probe_is_applied_at_once() {
    local(async {
        let dir = tempfile::tempdir().unwrap();
        let dns = dir.path().join("dns.json");
        write_state(&dns, "UP", None, None, &[]);
        let (mut exabgp, service) = start(&[&dns], &[]);
        exabgp.expect(UP, Instant::now()).await;
        let rows = [
            ("DEGRADED", Some("slow"), DEGRADED),
            ("UP", None, UP),
            ("DOWN", Some("refused"), DOWN),
            ("UP", None, UP),
            ("MAINTENANCE", Some("disable file exists"), MAINTENANCE),
            ("UP", None, UP),
        ];
        for (health, reason, line) in rows {
            let at = Instant::now();
            write_state(&dns, health, reason, None, &[]);
            exabgp.expect(line, at).await;
        }
        // The return waits for the own check: DOWN, then the service fails too.
        write_state(&dns, "DOWN", Some("refused"), None, &[]);
        exabgp.expect(DOWN, Instant::now()).await;
        service.set(Health::Failing);
        tokio::time::sleep(Duration::from_secs(61)).await;
        write_state(&dns, "UP", None, None, &[]);
        assert_eq!(
            exabgp.command(Duration::from_secs(2)).await,
            None,
            "own check DOWN"
        );
        service.set(Health::Healthy);
        let at = Instant::now();
        assert_eq!(
            exabgp.command(Duration::from_secs(70)).await.as_deref(),
            Some(UP)
        );
        assert!(
            at.elapsed() >= Duration::from_secs(50),
            "at the own check, {:?}",
            at.elapsed()
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_required_probe_in_maintenance_drains_then_applies_the_disabled_action() {
    local(async {
        let dir = tempfile::tempdir().unwrap();
        let dns = dir.path().join("dns.json");
        write_state(&dns, "UP", None, None, &[]);
        let (mut exabgp, _service) = start(&[&dns], &["--drain", "5", "--withdraw-on-down"]);
        exabgp.expect(UP, Instant::now()).await;
        let at = Instant::now();
        write_state(&dns, "MAINTENANCE", Some("disable file exists"), None, &[]);
        exabgp
            .expect(
                "announce route 192.0.2.0/32 next-hop self med 100 community [ 65535:0 ]",
                at,
            )
            .await;
        let line = exabgp.command(Duration::from_secs(10)).await;
        let took = at.elapsed();
        let line = line.expect("the withdraw after the drain");
        assert!(line.starts_with("withdraw route 192.0.2.0/32"), "{line}");
        assert!(
            took >= Duration::from_secs(5) && took <= Duration::from_secs(6),
            "the withdraw came {took:?} after maintenance began, not after --drain 5"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_missing_file_in_a_missing_directory_is_down_until_it_appears() {
    local(async {
        let dir = tempfile::tempdir().unwrap();
        let later = dir.path().join("later");
        let dns = later.join("dns.json");
        let (mut exabgp, _service) = start(&[&dns], &[]);
        exabgp.expect(DOWN, Instant::now()).await;
        std::fs::create_dir(&later).unwrap();
        let at = Instant::now();
        write_state(&dns, "UP", None, None, &[]);
        exabgp.expect(UP, at).await;
        // Deleted: DOWN; back by a rename: UP.
        let at = Instant::now();
        std::fs::remove_file(&dns).unwrap();
        exabgp.expect(DOWN, at).await;
        let at = Instant::now();
        write_state(&dns, "UP", None, None, &[]);
        exabgp.expect(UP, at).await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn malformed_wrong_version_and_dead_writers_are_down() {
    local(async {
        let dir = tempfile::tempdir().unwrap();
        let dns = dir.path().join("dns.json");
        write_state(&dns, "UP", None, None, &[]);
        let (mut exabgp, _service) = start(&[&dns], &[]);
        exabgp.expect(UP, Instant::now()).await;
        let at = Instant::now();
        write_bytes(&dns, b"{\"version\": 1, \"pro");
        exabgp.expect(DOWN, at).await;
        let at = Instant::now();
        write_state(&dns, "UP", None, None, &[]);
        exabgp.expect(UP, at).await;
        let at = Instant::now();
        let text = std::fs::read_to_string(&dns).unwrap();
        write_bytes(
            &dns,
            text.replace("\"version\":1", "\"version\":2").as_bytes(),
        );
        exabgp.expect(DOWN, at).await;
        // A writer that runs, then is killed: its file stays, it is DOWN within a second.
        let mut writer = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = writer.id();
        let start = crate::engine::require::process::start_time(pid).unwrap();
        let at = Instant::now();
        write_state(&dns, "UP", None, Some((pid, start)), &[]);
        exabgp.expect(UP, at).await;
        writer.kill().unwrap();
        writer.wait().unwrap();
        exabgp.expect(DOWN, Instant::now()).await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn require_min_counts_serving_probes() {
    local(async {
        let dir = tempfile::tempdir().unwrap();
        let (dns, uplink) = (dir.path().join("dns.json"), dir.path().join("uplink.json"));
        write_state(&dns, "UP", None, None, &[]);
        write_state(&uplink, "UP", None, None, &[]);
        let (mut exabgp, _service) = start(&[&dns, &uplink], &["--require-min", "1"]);
        exabgp.expect(UP, Instant::now()).await;
        write_state(&dns, "DOWN", Some("refused"), None, &[]);
        assert_eq!(
            exabgp.command(Duration::from_secs(2)).await,
            None,
            "one of two is enough"
        );
        let at = Instant::now();
        write_state(&uplink, "DEGRADED", Some("lossy"), None, &[]);
        exabgp.expect(DEGRADED, at).await;
        let at = Instant::now();
        write_state(&uplink, "DOWN", Some("no route"), None, &[]);
        exabgp.expect(DOWN, at).await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_cycle_is_one_error_line_and_stays_down() {
    local(async {
        let logs = Logs::capture();
        let dir = tempfile::tempdir().unwrap();
        let (own, other) = (dir.path().join("a.json"), dir.path().join("b.json"));
        let own_text = own.display().to_string();
        write_state(&other, "UP", None, None, &[&own_text]);
        let own_flag = own.display().to_string();
        let (mut exabgp, _service) = start(&[&other], &["--state-file", &own_flag]);
        exabgp.expect(DOWN, Instant::now()).await;
        // Rewritten (the other probe's next check): no flap, no second error line.
        write_state(&other, "UP", None, None, &[&own_text]);
        assert_eq!(exabgp.command(Duration::from_secs(3)).await, None);
        let text = logs.text();
        let errors = text
            .lines()
            .filter(|l| l.contains("ERROR") && l.contains("requirement cycle"))
            .count();
        assert_eq!(errors, 1, "{text}");
        // This probe's state file shows it: DOWN, the required probe and what it depends on.
        let mut document = serde_json::Value::Null;
        for _ in 0..200 {
            if let Ok(text) = std::fs::read_to_string(&own)
                && let Ok(value) = serde_json::from_str::<serde_json::Value>(&text)
                && value["health"] == "DOWN"
                && value["required"][0]["health"] == "DOWN"
                // The file written at the start says DOWN too, before any decision: wait for
                // the decision's own.
                && value["health_reason"] != "starting: no decisive state yet"
            {
                document = value;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(
            document["depends_on"][0],
            other.display().to_string(),
            "{document}"
        );
        assert!(
            document["health_reason"]
                .as_str()
                .unwrap()
                .contains("requirement cycle"),
            "{document}"
        );
        assert!(document["start_time"].as_u64().is_some(), "{document}");
    })
    .await;
}
