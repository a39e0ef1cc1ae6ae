//! ExaBGP's own reloads (issue 24, section 3), under ExaBGP 6.0 and 5.0 with GoBGP as the peer:
//! exabgp.conf is rewritten and ExaBGP gets SIGUSR1 (reload: it starts the processes that are new,
//! terminates the ones that are gone and leaves the others running, even when their `run` line
//! changed) or SIGUSR2 (full reload: 5.0 restarts every process, 6.0 the changed ones). Both
//! versions act on the signals (the CLI's `reload` does the same as SIGUSR1).
//!
//! After each reload the peer must hold exactly the routes the healthy probes want, MED
//! included, within [`SETTLE`]; no probe may run twice (ExaBGP issues #966 and #1006), counted
//! by each probe's unique `--name`; a probe added by the reload must not announce without its
//! MED (#1340); a removed probe must be gone within [`EXIT_BOUND`]. What is ExaBGP's own doing
//! (README.md, "ExaBGP reloads") is asserted as documented: a removed probe's route stays at the
//! peer unless it was withdrawn before the reload, and processes ExaBGP started as root before
//! dropping its privileges (`exabgp.daemon.drop=false`) are never stopped.
//!
//! The stacks run ExaBGP as root with `exabgp.daemon.drop=true` (ExaBGP's default: it becomes
//! `nobody` before it starts the processes) unless a test says otherwise. The probes' service is
//! a flag file (`-- test -f FILE`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use exaprobe_e2e::{PEERS, Process, Stack, StackOptions, Update, Version, alive, instance_pids};
use nix::sys::signal::Signal;

/// Start-up waits (ExaBGP, the session, the first decisive states).
const WAIT: Duration = Duration::from_secs(15);
/// From ExaBGP's "configuration loaded" to the peer holding the final routes: `rise` or `fall`
/// checks of a new probe (0.3 + 0.1 s with the test timers), a removed probe's exit, BGP.
const SETTLE: Duration = Duration::from_secs(5);
/// From the reload to a removed or replaced probe having exited: ExaBGP SIGTERMs it and
/// SIGKILLs it 2 s later; exaprobe exits within 1.5 s of SIGTERM.
const EXIT_BOUND: Duration = Duration::from_secs(3);

const A: &str = "192.0.2.40/32";
const B: &str = "192.0.2.41/32";
const C: &str = "192.0.2.42/32";
const D: &str = "192.0.2.43/32";
const E: &str = "192.0.2.44/32";

/// A stack whose probes each test their own flag file in `flags`.
struct Node {
    stack: Stack,
    flags: tempfile::TempDir,
}

impl Node {
    /// ExaBGP with `exabgp.daemon.drop=true`: the processes run as `nobody`.
    fn start(version: Version, flags: tempfile::TempDir, probes: Vec<Process>) -> Option<Node> {
        Node::start_with(version, flags, probes, "true")
    }

    /// ExaBGP with `exabgp.daemon.drop` set to `drop`.
    fn start_with(
        version: Version,
        flags: tempfile::TempDir,
        probes: Vec<Process>,
        drop: &'static str,
    ) -> Option<Node> {
        let mut options = StackOptions::new(version, probes);
        options.env = privileges(drop);
        let stack = Stack::start(options)?;
        Some(Node { stack, flags })
    }

    fn flag(&self, name: &str) -> PathBuf {
        flag(self.flags.path(), name)
    }

    /// The running probes, by name, each of which must run exactly once.
    fn single_pids(&self, names: &[&str]) -> Vec<u32> {
        names
            .iter()
            .map(|name| self.stack.probe_pid(name))
            .collect()
    }

    /// Wait until no instance of probe `name` runs (within `bound` of `since`).
    fn wait_gone(&self, name: &str, since: Instant, bound: Duration) -> Duration {
        let left = bound.saturating_sub(since.elapsed());
        self.stack.wait_or_dump(
            &format!("every instance of probe {name} to exit"),
            left,
            || self.stack.probe_pids(name).is_empty().then_some(()),
        );
        since.elapsed()
    }
}

impl std::ops::Deref for Node {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        &self.stack
    }
}

impl std::ops::DerefMut for Node {
    fn deref_mut(&mut self) -> &mut Stack {
        &mut self.stack
    }
}

/// ExaBGP runs as root, with `exabgp.daemon.drop` `drop` and `nobody` as the user it drops to.
fn privileges(drop: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("exabgp_daemon_drop", drop),
        ("exabgp_daemon_user", "nobody"),
    ]
}

/// The flag files' directory, open to the probes whatever user ExaBGP runs them as.
fn flags_dir() -> tempfile::TempDir {
    let dir = exaprobe_testkit::temp_dir();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("open the flags directory");
    dir
}

fn flag(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.healthy"))
}

/// Probe `name` announcing `prefix`, its service healthy or failing from the start.
fn probe(flags: &Path, name: &str, prefix: &str, healthy: bool, extra: &[&str]) -> Process {
    let flag = flag(flags, name);
    if healthy {
        std::fs::write(&flag, "").expect("create service flag");
    }
    let mut args = vec!["--prefix", prefix];
    args.extend_from_slice(extra);
    Process::exec_on_file(name, &flag, &args)
}

/// The updates after `mark` that a correct reload must not cause: a withdraw of a prefix in
/// `kept`, or an announce whose MED is not the one `allowed` lists for its prefix.
fn unexpected(updates: &[Update], kept: &[&str], allowed: &[(&str, &[u32])]) -> Vec<Update> {
    updates
        .iter()
        .filter(|u| {
            if u.withdrawal {
                kept.contains(&u.prefix.as_str())
            } else {
                !allowed
                    .iter()
                    .any(|(p, meds)| *p == u.prefix && u.med.is_some_and(|m| meds.contains(&m)))
            }
        })
        .cloned()
        .collect()
}

macro_rules! for_each_exabgp {
    ($($scenario:ident),* $(,)?) => {
        mod exabgp_6_0 { $( #[test] fn $scenario() { super::$scenario(exaprobe_e2e::Version::V6) } )* }
        mod exabgp_5_0 { $( #[test] fn $scenario() { super::$scenario(exaprobe_e2e::Version::V5) } )* }
    };
}

for_each_exabgp!(
    reload_with_the_probes_unchanged,
    reload_adds_probes,
    reload_adds_a_neighbour_and_its_probe,
    reload_adds_a_neighbour_told_by_neighbor_changes,
    reload_removes_a_probe_whose_route_stays,
    reload_removes_a_probe_withdrawn_first,
    changed_run_line_with_a_full_reload,
    changed_run_line_with_a_reload,
    full_reload_with_nothing_changed,
    processes_started_as_root_are_never_stopped,
    reload_signal_during_updates_is_lost,
);

/// SIGUSR1 with the same exabgp.conf: the probes keep running (same pids), nothing changes at
/// the peer, and the probes' later changes still reach it.
fn reload_with_the_probes_unchanged(version: Version) {
    let flags = flags_dir();
    let processes = vec![
        probe(flags.path(), "a", A, true, &[]),
        probe(flags.path(), "b", B, false, &[]),
    ];
    let Some(mut node) = Node::start(version, flags, processes.clone()) else {
        return;
    };
    node.wait_exact_rib(&[(A, 100), (B, 1000)], WAIT);
    let pids = node.single_pids(&["a", "b"]);
    let mark = node.update_mark();
    let loaded = node.reload(processes, Signal::SIGUSR1);
    let settled = node.wait_exact_rib(&[(A, 100), (B, 1000)], SETTLE);
    assert_eq!(node.single_pids(&["a", "b"]), pids, "a probe was restarted");
    // The probes still reach the peer through the reloaded ExaBGP.
    std::fs::remove_file(node.flag("a")).unwrap();
    std::fs::write(node.flag("b"), "").unwrap();
    let flipped = node.wait_exact_rib(&[(A, 1000), (B, 100)], WAIT);
    let updates = node.updates_since(mark);
    let wrong = unexpected(&updates, &[A, B], &[(A, &[1000]), (B, &[100])]);
    assert!(wrong.is_empty(), "the reload disturbed the peer: {wrong:?}");
    eprintln!(
        "{version:?}: unchanged reload: loaded in {} ms, peer correct {} ms later, same pids, \
         flips after it reach the peer in {} ms",
        loaded.as_millis(),
        settled.as_millis(),
        flipped.as_millis()
    );
}

/// SIGUSR1 adding a healthy probe (UP MED 200) and a failing one (DOWN MED 1000): both start
/// once, announce with their MED (never without: #1340), the first probe is left alone.
fn reload_adds_probes(version: Version) {
    let flags = flags_dir();
    let a = probe(flags.path(), "a", A, true, &[]);
    let c = probe(flags.path(), "c", C, true, &["--up-metric", "200"]);
    // d names its neighbour, as the processes of #1340 did (`neighbor A announce ...`).
    let d = probe(flags.path(), "d", D, false, &["--neighbor", PEERS[0].0]);
    let Some(mut node) = Node::start(version, flags, vec![a.clone()]) else {
        return;
    };
    node.wait_exact_rib(&[(A, 100)], WAIT);
    let [pid_a] = node.single_pids(&["a"])[..] else {
        unreachable!()
    };
    let mark = node.update_mark();
    let loaded = node.reload(vec![a, c, d], Signal::SIGUSR1);
    let settled = node.wait_exact_rib(&[(A, 100), (C, 200), (D, 1000)], SETTLE);
    assert_eq!(
        node.single_pids(&["a"]),
        [pid_a],
        "the kept probe was restarted"
    );
    node.single_pids(&["c", "d"]);
    // The added probes keep working: d's service recovers.
    std::fs::write(node.flag("d"), "").unwrap();
    node.wait_exact_rib(&[(A, 100), (C, 200), (D, 100)], WAIT);
    assert_eq!(node.probe_pids("c").len(), 1, "probe c runs twice");
    assert_eq!(node.probe_pids("d").len(), 1, "probe d runs twice");
    let updates = node.updates_since(mark);
    let wrong = unexpected(&updates, &[A], &[(C, &[200]), (D, &[1000, 100])]);
    assert!(
        wrong.is_empty(),
        "wrong updates after the reload: {wrong:?}"
    );
    eprintln!(
        "{version:?}: reload adding two probes: loaded in {} ms, both at the peer with their MEDs \
         {} ms later",
        loaded.as_millis(),
        settled.as_millis()
    );
}

/// SIGUSR1 adding a second neighbour, a probe c for both and a probe e naming the new neighbour
/// (#1340: a new probe may send before its neighbour exists). Both reach their sessions with
/// their MEDs. What the running probes announced before the reload does not reach the new
/// neighbour (ExaBGP keeps a process's routes per neighbour, and a probe sends on changes only):
/// probe a stays on the first session only, while probe r, with `--refresh-interval 1`, reaches
/// the new one within its refresh interval.
fn reload_adds_a_neighbour_and_its_probe(version: Version) {
    let flags = flags_dir();
    let a = probe(flags.path(), "a", A, true, &[]);
    let r = probe(flags.path(), "r", D, true, &["--refresh-interval", "1"]);
    let c = probe(flags.path(), "c", C, true, &["--up-metric", "200"]);
    let e = probe(
        flags.path(),
        "e",
        E,
        true,
        &["--up-metric", "300", "--neighbor", PEERS[1].0],
    );
    let mut options = StackOptions::new(version, vec![a.clone(), r.clone()]);
    options.peers = 2;
    options.exabgp_peers = Some(1);
    options.env = privileges("true");
    let Some(mut stack) = Stack::start(options) else {
        return;
    };
    let (first, second) = (PEERS[0].1, PEERS[1].1);
    stack.wait_sources(A, &[first], WAIT);
    stack.wait_sources(D, &[first], WAIT);
    let mark = stack.update_mark();
    let loaded = stack.reload_peers(vec![a, r, c, e], 2, Signal::SIGUSR1);
    stack.wait_established();
    let started = Instant::now();
    stack.wait_sources(C, &[first, second], SETTLE);
    stack.wait_sources(E, &[second], SETTLE);
    let c_took = started.elapsed();
    stack.wait_sources(D, &[first, second], SETTLE);
    let d_took = started.elapsed();
    // a announced before the second session existed and has not changed since.
    assert_eq!(stack.sources(A), [first], "a reached the new neighbour");
    assert_eq!(
        stack.meds(),
        expected_meds(&[(A, 100), (C, 200), (D, 100), (E, 300)])
    );
    assert_eq!(stack.probe_pids("c").len(), 1, "probe c runs twice");
    assert_eq!(stack.probe_pids("e").len(), 1, "probe e runs twice");
    let updates = stack.updates_since(mark);
    let wrong = unexpected(
        &updates,
        &[A, D],
        &[(A, &[100]), (C, &[200]), (D, &[100]), (E, &[300])],
    );
    assert!(
        wrong.is_empty(),
        "wrong updates after the reload: {wrong:?}"
    );
    eprintln!(
        "{version:?}: reload adding a neighbour and probes: loaded in {} ms; the new probes on \
         their sessions {} ms after the new session came up, the refreshing probe {} ms; the \
         other probe not on the new session",
        loaded.as_millis(),
        c_took.as_millis(),
        d_took.as_millis()
    );
}

/// The same reload with `neighbor-changes;` in the `api` block: ExaBGP tells the probes when the
/// new session comes up, and they send their current routes again, so the running probe's route
/// reaches the new neighbour without `--refresh-interval`.
fn reload_adds_a_neighbour_told_by_neighbor_changes(version: Version) {
    let flags = flags_dir();
    let a = probe(flags.path(), "a", A, true, &[]);
    let mut options = StackOptions::new(version, vec![a.clone()]);
    options.peers = 2;
    options.exabgp_peers = Some(1);
    options.env = privileges("true");
    options.neighbor_changes = true;
    let Some(mut stack) = Stack::start(options) else {
        return;
    };
    let (first, second) = (PEERS[0].1, PEERS[1].1);
    stack.wait_sources(A, &[first], WAIT);
    stack.reload_peers(vec![a], 2, Signal::SIGUSR1);
    stack.wait_established();
    let started = Instant::now();
    stack.wait_sources(A, &[first, second], SETTLE);
    assert_eq!(stack.meds(), expected_meds(&[(A, 100)]));
    assert_eq!(stack.probe_pids("a").len(), 1, "probe a runs twice");
    eprintln!(
        "{version:?}: with neighbor-changes, the running probe's route on the new session {} ms \
         after it came up",
        started.elapsed().as_millis()
    );
}

/// SIGUSR1 removing probe b: ExaBGP stops reading b before it SIGTERMs it, so the withdraw b
/// writes on SIGTERM is lost and b's route stays at the peer (ExaBGP's behaviour, documented).
fn reload_removes_a_probe_whose_route_stays(version: Version) {
    let flags = flags_dir();
    let a = probe(flags.path(), "a", A, true, &[]);
    let b = probe(flags.path(), "b", B, true, &["--up-metric", "200"]);
    let Some(mut node) = Node::start(version, flags, vec![a.clone(), b]) else {
        return;
    };
    node.wait_exact_rib(&[(A, 100), (B, 200)], WAIT);
    let [pid_a, pid_b] = node.single_pids(&["a", "b"])[..] else {
        unreachable!()
    };
    let mark = node.update_mark();
    let signalled = Instant::now();
    let loaded = node.reload(vec![a], Signal::SIGUSR1);
    let exited = node.wait_gone("b", signalled, EXIT_BOUND);
    assert!(!alive(pid_b));
    // b wrote its withdraw on SIGTERM (and gave up waiting for the ACK)...
    node.wait_or_dump("b to log its withdraw", WAIT, || {
        node.logs()
            .contains("terminating: withdrawing every prefix")
            .then_some(())
    });
    // ...and b is gone, so nothing can change the peer any more: it still holds b's route.
    assert_eq!(node.meds()[B], Some(200), "ExaBGP withdrew b's route");
    assert_eq!(
        node.single_pids(&["a"]),
        [pid_a],
        "the kept probe was restarted"
    );
    let updates = node.updates_since(mark);
    assert!(updates.is_empty(), "updates after the reload: {updates:?}");
    // The operator's way out after the fact: the prefix is withdrawn through ExaBGP's CLI, or
    // the session is reset; here, the remaining probe is unaffected.
    node.wait_exact_rib(&[(A, 100), (B, 200)], SETTLE);
    eprintln!(
        "{version:?}: reload removing a probe: loaded in {} ms, removed probe gone {} ms after \
         the signal, its route still at the peer",
        loaded.as_millis(),
        exited.as_millis()
    );
}

/// The documented way to remove a probe: withdraw first (its `--disable` file with
/// `--withdraw-on-down`), then reload; the peer ends with the other probe's route only.
fn reload_removes_a_probe_withdrawn_first(version: Version) {
    let flags = flags_dir();
    let disable = flags.path().join("b.disabled");
    let disable_arg = disable.display().to_string();
    let a = probe(flags.path(), "a", A, true, &[]);
    let b = probe(
        flags.path(),
        "b",
        B,
        true,
        &["--withdraw-on-down", "--disable", &disable_arg],
    );
    let Some(mut node) = Node::start(version, flags, vec![a.clone(), b]) else {
        return;
    };
    node.wait_exact_rib(&[(A, 100), (B, 100)], WAIT);
    let [pid_a] = node.single_pids(&["a"])[..] else {
        unreachable!()
    };
    std::fs::write(&disable, "removing this probe\n").unwrap();
    let withdrawn = node.wait_exact_rib(&[(A, 100)], WAIT);
    let signalled = Instant::now();
    node.reload(vec![a], Signal::SIGUSR1);
    let exited = node.wait_gone("b", signalled, EXIT_BOUND);
    node.wait_exact_rib(&[(A, 100)], SETTLE);
    assert_eq!(
        node.single_pids(&["a"]),
        [pid_a],
        "the kept probe was restarted"
    );
    eprintln!(
        "{version:?}: disable file, then reload: withdrawn in {} ms, probe gone {} ms after the \
         signal",
        withdrawn.as_millis(),
        exited.as_millis()
    );
}

/// Probe b's `run` line changes (UP MED 200 -> 300) and ExaBGP gets SIGUSR2: b is replaced,
/// exactly one b runs, the peer gets the new MED. 5.0 also restarts the unchanged probe a.
fn changed_run_line_with_a_full_reload(version: Version) {
    let flags = flags_dir();
    let a = probe(flags.path(), "a", A, true, &[]);
    let b = probe(flags.path(), "b", B, true, &["--up-metric", "200"]);
    let b2 = probe(flags.path(), "b", B, true, &["--up-metric", "300"]);
    let Some(mut node) = Node::start(version, flags, vec![a.clone(), b.clone()]) else {
        return;
    };
    node.wait_exact_rib(&[(A, 100), (B, 200)], WAIT);
    let pid_a = node.probe_pid("a");
    let mark = node.update_mark();
    let signalled = Instant::now();
    node.reload(vec![a, b2.clone()], Signal::SIGUSR2);
    node.wait_or_dump("the old b to exit", EXIT_BOUND, || {
        instance_pids(&b.unique_name).is_empty().then_some(())
    });
    let replaced = signalled.elapsed();
    let settled = node.wait_exact_rib(&[(A, 100), (B, 300)], SETTLE);
    assert_eq!(instance_pids(&b2.unique_name).len(), 1, "b runs twice");
    let updates = node.updates_since(mark);
    let wrong = unexpected(&updates, &[A, B], &[(A, &[100]), (B, &[300])]);
    assert!(
        wrong.is_empty(),
        "wrong updates after the reload: {wrong:?}"
    );
    let a_kept = node.probe_pid("a") == pid_a;
    eprintln!(
        "{version:?}: changed run line, SIGUSR2: old b gone {} ms after the signal, new MED at \
         the peer {} ms later; unchanged probe a kept: {a_kept}",
        replaced.as_millis(),
        settled.as_millis()
    );
    // 5.0 restarts every process on SIGUSR2, 6.0 only the changed ones.
    assert_eq!(a_kept, version == Version::V6);
}

/// Probe b's `run` line changes and ExaBGP gets SIGUSR1: the old b keeps running with the old
/// arguments. A SIGUSR2 afterwards replaces it under 5.0; 6.0 compares with the configuration
/// the SIGUSR1 already loaded, sees no change and keeps the old b.
fn changed_run_line_with_a_reload(version: Version) {
    let flags = flags_dir();
    let a = probe(flags.path(), "a", A, true, &[]);
    let b = probe(flags.path(), "b", B, true, &["--up-metric", "200"]);
    let b2 = probe(flags.path(), "b", B, true, &["--up-metric", "300"]);
    let Some(mut node) = Node::start(version, flags, vec![a.clone(), b.clone()]) else {
        return;
    };
    node.wait_exact_rib(&[(A, 100), (B, 200)], WAIT);
    let old_b = node.probe_pid("b");
    node.reload(vec![a.clone(), b2.clone()], Signal::SIGUSR1);
    node.wait_exact_rib(&[(A, 100), (B, 200)], SETTLE);
    assert_eq!(instance_pids(&b.unique_name), [old_b], "SIGUSR1 replaced b");
    assert!(
        instance_pids(&b2.unique_name).is_empty(),
        "SIGUSR1 started b twice"
    );
    let signalled = Instant::now();
    node.reload(vec![a, b2.clone()], Signal::SIGUSR2);
    let replaced = version == Version::V5;
    if replaced {
        node.wait_or_dump("the old b to exit", EXIT_BOUND, || {
            instance_pids(&b.unique_name).is_empty().then_some(())
        });
        node.wait_exact_rib(&[(A, 100), (B, 300)], SETTLE);
        assert_eq!(instance_pids(&b2.unique_name).len(), 1, "b runs twice");
    } else {
        // Nothing to wait for: watch for the bound a replaced probe would have to exit in.
        std::thread::sleep(EXIT_BOUND.saturating_sub(signalled.elapsed()));
        assert_eq!(instance_pids(&b.unique_name), [old_b], "SIGUSR2 replaced b");
        assert!(instance_pids(&b2.unique_name).is_empty(), "b runs twice");
        assert_eq!(node.meds(), expected_meds(&[(A, 100), (B, 200)]));
    }
    eprintln!(
        "{version:?}: changed run line, SIGUSR1 kept the old b; a later SIGUSR2 replaced it: {replaced}"
    );
}

fn expected_meds(expected: &[(&str, u32)]) -> std::collections::BTreeMap<String, Option<u32>> {
    expected
        .iter()
        .map(|(prefix, med)| (prefix.to_string(), Some(*med)))
        .collect()
}

/// SIGUSR2 with the same exabgp.conf: 5.0 replaces every probe, 6.0 none; either way exactly one
/// of each runs afterwards and the peer ends as before.
fn full_reload_with_nothing_changed(version: Version) {
    let flags = flags_dir();
    let processes = vec![
        probe(flags.path(), "a", A, true, &[]),
        probe(flags.path(), "b", B, false, &[]),
    ];
    let Some(mut node) = Node::start(version, flags, processes.clone()) else {
        return;
    };
    node.wait_exact_rib(&[(A, 100), (B, 1000)], WAIT);
    let old = node.single_pids(&["a", "b"]);
    let mark = node.update_mark();
    let signalled = Instant::now();
    let loaded = node.reload(processes, Signal::SIGUSR2);
    let restarted = version == Version::V5;
    if restarted {
        node.wait_or_dump("both old probes to exit", EXIT_BOUND, || {
            old.iter().all(|&pid| !alive(pid)).then_some(())
        });
    }
    let overlap = signalled.elapsed();
    let new = node.single_pids(&["a", "b"]);
    if restarted {
        assert!(
            new.iter().all(|pid| !old.contains(pid)),
            "not every probe was restarted: {old:?} -> {new:?}"
        );
    } else {
        assert_eq!(new, old, "a probe was restarted");
    }
    let settled = node.wait_exact_rib(&[(A, 100), (B, 1000)], SETTLE);
    let updates = node.updates_since(mark);
    let wrong = unexpected(&updates, &[A, B], &[(A, &[100]), (B, &[1000])]);
    assert!(
        wrong.is_empty(),
        "wrong updates after the reload: {wrong:?}"
    );
    eprintln!(
        "{version:?}: full reload, nothing changed: loaded in {} ms, probes restarted: \
         {restarted} (old ones gone {} ms after the signal), peer correct {} ms after the load",
        loaded.as_millis(),
        overlap.as_millis(),
        settled.as_millis()
    );
}

/// `exabgp.daemon.drop=false` as root: ExaBGP starts the first processes as root, then becomes
/// `nobody` and can no longer signal them. A probe removed by SIGUSR1 keeps running (ExaBGP
/// logs EPERM), and a SIGUSR2 adds a second instance next to the old one: #966/#1006.
fn processes_started_as_root_are_never_stopped(version: Version) {
    let flags = flags_dir();
    let a = probe(flags.path(), "a", A, true, &[]);
    let b = probe(flags.path(), "b", B, true, &["--up-metric", "200"]);
    let a2 = probe(flags.path(), "a", A, true, &["--up-metric", "300"]);
    let Some(mut node) = Node::start_with(version, flags, vec![a.clone(), b], "false") else {
        return;
    };
    node.wait_exact_rib(&[(A, 100), (B, 200)], WAIT);
    let [pid_a, pid_b] = node.single_pids(&["a", "b"])[..] else {
        unreachable!()
    };
    let signalled = Instant::now();
    node.reload(vec![a], Signal::SIGUSR1);
    // Nothing to wait for: watch for the bound a removed probe would have to exit in.
    std::thread::sleep(EXIT_BOUND.saturating_sub(signalled.elapsed()));
    assert!(alive(pid_b), "ExaBGP stopped a probe it started as root");
    assert_eq!(node.meds()[B], Some(200));
    node.reload(vec![a2.clone()], Signal::SIGUSR2);
    node.wait_exact_rib(&[(A, 300), (B, 200)], SETTLE);
    assert!(alive(pid_a), "ExaBGP stopped a probe it started as root");
    assert_eq!(instance_pids(&a2.unique_name).len(), 1);
    eprintln!(
        "{version:?}: drop=false: removed probe still running after {} ms; after SIGUSR2 probe a \
         runs twice (old pid {pid_a} and a new one)",
        EXIT_BOUND.as_millis()
    );
}

/// SIGUSR1 while ExaBGP is still sending a probe's 1,500 announces: ExaBGP drops the signal
/// (it checks for queued updates after it has consumed the signal), so the added probe c never
/// starts, not even after the last update is out. A second SIGUSR1 on a quiet ExaBGP loads it.
fn reload_signal_during_updates_is_lost(version: Version) {
    const ROUTES: usize = 1500;
    let flags = flags_dir();
    let config = flags.path().join("many.toml");
    let prefixes: Vec<String> = (0..ROUTES)
        .map(|i| format!("\"198.18.{}.{}/32\"", i / 250, i % 250 + 1))
        .collect();
    std::fs::write(&config, format!("prefix = [{}]\n", prefixes.join(", "))).unwrap();
    let config_arg = config.display().to_string();
    // The service is down: the first decisive state announces every prefix at the DOWN MED.
    let many = Process::exec_on_file(
        "many",
        &flag(flags.path(), "many"),
        &["--config", &config_arg],
    );
    let c = probe(flags.path(), "c", C, true, &[]);
    let Some(mut node) = Node::start(version, flags, vec![many.clone()]) else {
        return;
    };
    let loaded_before = node.reloads_logged();
    let at_signal = node.wait_or_dump("the announces to start reaching the peer", WAIT, || {
        let count = node.rib().len();
        (count > 0).then_some(count)
    });
    node.rewrite_config(vec![many, c]);
    node.signal_exabgp(Signal::SIGUSR1);
    let burst = Instant::now();
    node.wait_or_dump(
        "every announce at the peer",
        Duration::from_secs(40),
        || (node.rib().len() == ROUTES).then_some(()),
    );
    let burst = burst.elapsed();
    assert!(
        at_signal < ROUTES,
        "the burst was over before the signal ({at_signal} routes)"
    );
    // Every update is out and the probe is quiet: a deferred reload would run at ExaBGP's next
    // turn. Nothing to wait for: watch for a second.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        node.reloads_logged(),
        loaded_before,
        "ExaBGP reloaded on the SIGUSR1 sent during the updates"
    );
    assert!(node.probe_pids("c").is_empty(), "the added probe started");
    let processes = node.processes().to_vec();
    let loaded = node.reload(processes, Signal::SIGUSR1);
    node.probe_pid("c");
    node.wait_med(C, 100, SETTLE);
    eprintln!(
        "{version:?}: SIGUSR1 at {at_signal} of {ROUTES} routes: lost (the burst took {} ms); \
         the second SIGUSR1 loaded in {} ms",
        burst.as_millis(),
        loaded.as_millis()
    );
}
