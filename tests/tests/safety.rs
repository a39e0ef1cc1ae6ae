//! Issue 17's routing safety under a real ExaBGP and GoBGP: a drain shows the graceful-shutdown
//! community at the peer before the withdraw; a flapping service ends held down and recovers
//! after the hold.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use exaprobe_e2e::{Process, Stack, StackOptions, Version};

const WAIT: Duration = Duration::from_secs(15);

fn stack(version: Version, flag: &Path, extra: &[&str]) -> Option<Stack> {
    Stack::start(StackOptions::new(
        version,
        vec![Process::exec_on_file("safe", flag, extra)],
    ))
}

#[test]
fn maintenance_with_drain_shows_graceful_shutdown_at_the_peer_then_withdraws() {
    let flags = exaprobe_testkit::temp_dir();
    let flag = flags.path().join("healthy");
    let disable = flags.path().join("maintenance");
    std::fs::write(&flag, "").unwrap();
    let disable_arg = disable.display().to_string();
    let Some(stack) = stack(
        Version::V5,
        &flag,
        &[
            "--prefix",
            "192.0.2.70/32",
            "--withdraw-on-down",
            "--drain",
            "2s",
            "--community",
            "65000:1",
            "--disable",
            &disable_arg,
        ],
    ) else {
        return;
    };
    stack.wait_route("192.0.2.70/32", WAIT, |r| {
        r.med == Some(100) && r.communities == ["65000:1"]
    });
    std::fs::write(&disable, "drain test").unwrap();
    let (route, _) = stack.wait_route("192.0.2.70/32", WAIT, |r| {
        r.communities.iter().any(|c| c == "65535:0")
    });
    let draining = Instant::now();
    assert_eq!(route.med, Some(100), "drained with the UP attributes");
    assert_eq!(route.communities, ["65000:1", "65535:0"]);
    stack.wait_absent("192.0.2.70/32", WAIT);
    let drained_for = draining.elapsed();
    eprintln!("measured: graceful-shutdown route at the peer for {drained_for:?} (--drain 2s)");
    assert!(
        drained_for >= Duration::from_millis(1500),
        "withdrawn after only {drained_for:?} of a 2 s drain"
    );
}

#[test]
fn a_flapping_service_ends_held_down_then_recovers_after_the_hold() {
    let flags = exaprobe_testkit::temp_dir();
    let flag = flags.path().join("healthy");
    std::fs::write(&flag, "").unwrap();
    let Some(stack) = stack(
        Version::V5,
        &flag,
        &[
            "--prefix",
            "192.0.2.71/32",
            "--rise",
            "1",
            "--fall",
            "1",
            "--interval",
            "0.1",
            "--flap-limit",
            "3",
            "--flap-hold",
            "4s",
        ],
    ) else {
        return;
    };
    stack.wait_med("192.0.2.71/32", 100, WAIT);
    // The check flips every 300 ms until the probe holds it down.
    let running = Arc::new(AtomicBool::new(true));
    let flipper = {
        let running = Arc::clone(&running);
        let flag = flag.clone();
        std::thread::spawn(move || {
            while running.load(Ordering::Relaxed) {
                if flag.exists() {
                    let _ = std::fs::remove_file(&flag);
                } else {
                    let _ = std::fs::write(&flag, "");
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    exaprobe_testkit::wait_for("the flap hold in the log", WAIT, || {
        stack.logs().contains("flapping: 4 changes").then_some(())
    });
    let held = Instant::now();
    // During the hold the peer keeps the DOWN MED, whatever the check says.
    while held.elapsed() < Duration::from_secs(3) {
        let route = stack.rib().get("192.0.2.71/32").cloned();
        if let Some(route) = route {
            assert_eq!(route.med, Some(1000), "UP at the peer during the hold");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    running.store(false, Ordering::Relaxed);
    flipper.join().unwrap();
    std::fs::write(&flag, "").unwrap();
    let recovered = stack.wait_med("192.0.2.71/32", 100, WAIT);
    eprintln!(
        "measured: UP again {:?} after the hold's end was near",
        recovered
    );
}
