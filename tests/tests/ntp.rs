//! The NTP probe end to end: the release `exaprobe-ntp` under a real ExaBGP 5.0 peered with
//! GoBGP, asking a real chronyd (synchronised to its own clock with `local stratum`) that the
//! test then stops; the route at the peer follows.

use std::time::Duration;

use exaprobe_e2e::{FAST_TIMERS, Process, Stack, StackOptions, Version};
use exaprobe_testkit::ntp::chrony;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn ntp_route_follows_chrony() {
    let Some(chrony) = chrony(Some(2)) else {
        return;
    };
    let server = chrony.address().to_string();
    let mut args: Vec<&str> = FAST_TIMERS.to_vec();
    args.extend_from_slice(&[
        "--prefix",
        "192.0.2.123/32",
        "--server",
        &server,
        "--withdraw-on-down",
    ]);
    let processes = vec![Process::probe("time", "exaprobe-ntp", &args)];
    let Some(stack) = Stack::start(StackOptions::new(Version::V5, processes)) else {
        return;
    };
    stack.wait_med("192.0.2.123/32", 100, WAIT);
    // chronyd stops: the port is closed (refused), the route is withdrawn.
    drop(chrony);
    stack.wait_absent("192.0.2.123/32", WAIT);
    assert!(
        stack
            .logs()
            .contains(&format!("refused: nothing listening on {server} (UDP)")),
        "the probe's reason is in ExaBGP's log"
    );
}
