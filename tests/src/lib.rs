//! The end-to-end harness: exaprobe's release binaries run as `process`es of a real ExaBGP (4.2,
//! 5.0 or 6.0, from the virtualenvs `scripts/install-test-deps` makes), peered on loopback with a
//! real GoBGP whose RIB the tests read.
//!
//! The probes run with the default `--exabgp-api auto`, so every scenario under every version
//! also proves the dialect detection (a test may still set `--exabgp-api` itself). Under ExaBGP
//! 6.0 the processes get `encoder json;` (API 6 is JSON-only). GoBGP's neighbours are plain (no
//! graceful restart, so no End-of-RIB marker, which drops the 6.0 snapshot's session).
//!
//! Each [`Stack`] gets its own temp dir, ports, `gobgp.toml` and `exabgp.conf`; dropping it kills
//! every process it started (ExaBGP, GoBGP, the route monitor) and the probes ExaBGP spawned.
//! Waiting is always polling a condition (session Established, a route's MED), never a fixed
//! sleep. GoBGP ignores loopback next hops, so probes announce `--next-hop 10.0.0.1`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use exaprobe_testkit::{ChildGuard, free_port, require_tool, wait_for};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The next hop probes announce (GoBGP drops loopback next hops).
pub const NEXT_HOP: &str = "10.0.0.1";
/// The IPv6 next hop probes announce for IPv6 prefixes.
pub const NEXT_HOP6: &str = "2001:db8::1";
/// Fast timers for tests: rise/fall 2, checks every 0.3 s, 0.1 s while changing.
pub const FAST_TIMERS: &[&str] = &[
    "--interval",
    "0.3",
    "--fast-interval",
    "0.1",
    "--rise",
    "2",
    "--fall",
    "2",
];

/// Which ExaBGP to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The 6.0 snapshot (6.0.0 from ExaBGP's `main`, vendored wheel), API 6.
    V6,
    /// The 5.0 line (5.0.15).
    V5,
    /// The 4.2 line (4.2.25).
    V4,
}

impl Version {
    fn venv(self) -> &'static str {
        match self {
            Version::V6 => "exabgp-6.0",
            Version::V5 => "exabgp-5.0",
            Version::V4 => "exabgp-4.2",
        }
    }

    /// The `--exabgp-api` value that matches this version (when a test does not want `auto`).
    pub fn exabgp_api(self) -> &'static str {
        match self {
            Version::V6 => "6",
            Version::V5 | Version::V4 => "4",
        }
    }

    /// The process `encoder` the harness configures (API 6 forces JSON anyway, with a warning).
    pub fn encoder(self) -> &'static str {
        match self {
            Version::V6 => "json",
            Version::V5 | Version::V4 => "text",
        }
    }

    /// The `exabgp` executable in this version's virtualenv.
    pub fn exabgp(self) -> PathBuf {
        deps_dir().join(self.venv()).join("bin").join("exabgp")
    }
}

fn deps_dir() -> PathBuf {
    std::env::var_os("EXAPROBE_DEPS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/exaprobe-deps"))
}

/// The workspace's root directory, from `CARGO_MANIFEST_DIR` as cargo and nextest set it when
/// they run a test: the compile-time value can name another clone, because a shared
/// CARGO_TARGET_DIR reuses a test binary built elsewhere when the sources are older than it.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("tests/ is a member directory of the workspace")
        .to_path_buf()
}

/// Path of a release binary of this workspace, found from the test executable's location
/// (`<target>/<profile>/deps/test-...` → `<target>/release/NAME`), so CARGO_TARGET_DIR works.
pub fn release_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("test executable lives in <target>/<profile>/deps");
    let binary = target.join("release").join(name);
    assert!(
        binary.is_file(),
        "{} is missing: build the release binaries first (cargo build --release --bins, as scripts/test does)",
        binary.display()
    );
    binary
}

/// One `process` block of exabgp.conf.
#[derive(Debug, Clone)]
pub struct Process {
    /// Process name in exabgp.conf.
    pub name: String,
    /// The probe's `--name`, unique across everything running on the machine (tests run in
    /// parallel), by which its pid is found.
    pub unique_name: String,
    /// Full argv: the binary and its options.
    pub argv: Vec<String>,
    /// ExaBGP's `respawn` setting for it.
    pub respawn: bool,
    /// True for an exaprobe binary.
    pub exaprobe: bool,
}

impl Process {
    /// A release probe binary with `args`; `--name` and the next hops are added.
    pub fn probe(name: &str, binary: &str, args: &[&str]) -> Process {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let serial = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let unique_name = format!("{name}-{}-{serial}", std::process::id());
        let mut argv = vec![release_binary(binary).display().to_string()];
        argv.extend(
            [
                "--name",
                &unique_name,
                "--next-hop",
                NEXT_HOP,
                "--next-hop6",
                NEXT_HOP6,
            ]
            .map(String::from),
        );
        argv.extend(args.iter().map(|a| a.to_string()));
        Process {
            name: name.to_string(),
            unique_name,
            argv,
            respawn: true,
            exaprobe: true,
        }
    }

    /// An exaprobe-exec probe whose service is the file `flag` (`-- test -f FLAG`: healthy while
    /// it exists), with [`FAST_TIMERS`] unless `extra` sets its own.
    pub fn exec_on_file(name: &str, flag: &Path, extra: &[&str]) -> Process {
        let flag = flag.display().to_string();
        let mut args: Vec<&str> = FAST_TIMERS
            .chunks(2)
            .filter(|pair| !extra.contains(&pair[0]))
            .flatten()
            .copied()
            .collect();
        args.extend_from_slice(extra);
        args.extend(["--", "test", "-f", &flag]);
        Process::probe(name, "exaprobe-exec", &args)
    }

    /// Any other program (a test's own helper), run as is.
    pub fn command(name: &str, argv: Vec<String>) -> Process {
        Process {
            name: name.to_string(),
            unique_name: name.to_string(),
            argv,
            respawn: false,
            exaprobe: false,
        }
    }

    /// The same with ExaBGP's `respawn false;`.
    pub fn without_respawn(mut self) -> Process {
        self.respawn = false;
        self
    }
}

/// A route as the peer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// MED, if any.
    pub med: Option<u32>,
    /// Standard communities as `A:B`.
    pub communities: Vec<String>,
    /// Large communities as `A:B:C`.
    pub large_communities: Vec<String>,
    /// AS path.
    pub as_path: Vec<u32>,
    /// Next hop.
    pub next_hop: String,
}

/// One path change on the peer's update stream (`gobgp monitor global rib`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The prefix.
    pub prefix: String,
    /// True for a withdraw.
    pub withdrawal: bool,
    /// The MED announced (None for a withdraw or an announce without MED).
    pub med: Option<u32>,
}

/// GoBGP + ExaBGP + probes on loopback.
pub struct Stack {
    dir: tempfile::TempDir,
    api_port: u16,
    gobgp: Option<ChildGuard>,
    exabgp: Option<ChildGuard>,
    monitor: Option<ChildGuard>,
    events: Arc<Mutex<Vec<String>>>,
    processes: Vec<Process>,
    /// Processes a reload removed from exabgp.conf: still looked up by name, and killed on drop.
    retired: Vec<Process>,
    gobgp_cli: PathBuf,
    peers: usize,
    /// How many of the `peers` sessions exabgp.conf configures (the others wait for a reload).
    exabgp_peers: usize,
    bgp_port: u16,
    encoder: &'static str,
    neighbor_changes: bool,
}

/// How to start a [`Stack`].
pub struct StackOptions {
    /// ExaBGP version.
    pub version: Version,
    /// Probe processes, all attached to every neighbor.
    pub processes: Vec<Process>,
    /// `exabgp.api.ack`.
    pub ack: bool,
    /// BGP sessions between ExaBGP and GoBGP: [`PEERS`]`[..peers]` (1 or 2).
    pub peers: usize,
    /// How many of them exabgp.conf configures at start (default all; [`Stack::reload_peers`]
    /// adds the others).
    pub exabgp_peers: Option<usize>,
    /// The process `encoder`, when not the version's default ([`Version::encoder`]).
    pub encoder: Option<&'static str>,
    /// More environment for ExaBGP (`exabgp_api_version=4`...).
    pub env: Vec<(&'static str, &'static str)>,
    /// `neighbor-changes;` in the neighbours' `api` block: ExaBGP tells the processes when a
    /// session goes up or down.
    pub neighbor_changes: bool,
}

impl StackOptions {
    /// One session, ACKs on.
    pub fn new(version: Version, processes: Vec<Process>) -> StackOptions {
        StackOptions {
            version,
            processes,
            ack: true,
            peers: 1,
            exabgp_peers: None,
            encoder: None,
            env: vec![],
            neighbor_changes: false,
        }
    }
}

/// The sessions a stack can have: (GoBGP's address = ExaBGP's neighbor, ExaBGP's local address).
pub const PEERS: [(&str, &str); 2] = [("127.0.0.1", "127.0.0.2"), ("127.0.0.3", "127.0.0.4")];

impl Stack {
    /// Start GoBGP and ExaBGP with the processes and wait for the session to be Established.
    /// Returns `None` (after printing why) when a tool is missing outside CI.
    pub fn start(options: StackOptions) -> Option<Stack> {
        let install = "run scripts/install-test-deps";
        let gobgpd = require_tool("gobgpd", "Debian package gobgpd", &[])?;
        let gobgp_cli = require_tool("gobgp", "Debian package gobgpd", &[])?;
        let venv_bin = deps_dir().join(options.version.venv()).join("bin");
        let exabgp = require_tool("exabgp", install, &[&venv_bin])?;
        let dir = exaprobe_testkit::temp_dir();
        let (bgp_port, api_port) = (free_port(), free_port());
        let peers = options.peers.clamp(1, PEERS.len());
        let mut stack = Stack {
            gobgp: None,
            exabgp: None,
            monitor: None,
            events: Arc::new(Mutex::new(Vec::new())),
            processes: options.processes,
            retired: vec![],
            api_port,
            gobgp_cli,
            dir,
            peers,
            exabgp_peers: options.exabgp_peers.unwrap_or(peers).clamp(1, peers),
            bgp_port,
            encoder: options.encoder.unwrap_or(options.version.encoder()),
            neighbor_changes: options.neighbor_changes,
        };
        std::fs::write(
            stack.dir.path().join("gobgp.toml"),
            gobgp_config(bgp_port, peers),
        )
        .expect("write gobgp.toml");
        stack.write_exabgp_config();
        let gobgp_log = stack.log_file("gobgpd.log");
        stack.gobgp = Some(ChildGuard::spawn(
            Command::new(gobgpd)
                .arg("-f")
                .arg(stack.dir.path().join("gobgp.toml"))
                .arg("--api-hosts")
                .arg(format!("127.0.0.1:{api_port}"))
                .arg("--pprof-disable")
                .stdout(gobgp_log.try_clone().expect("log file"))
                .stderr(gobgp_log),
        ));
        wait_for("GoBGP's API", Duration::from_secs(20), || {
            stack.gobgp(&["neighbor"]).ok().map(|_| ())
        });
        stack.start_monitor();
        let exabgp_log = stack.log_file("exabgp.log");
        stack.exabgp = Some(ChildGuard::spawn(
            Command::new(exabgp)
                .arg(stack.dir.path().join("exabgp.conf"))
                .env("exabgp_api_cli", "false")
                .env("exabgp_log_destination", "stderr")
                .env("exabgp_daemon_drop", "false")
                .env("exabgp_api_ack", if options.ack { "true" } else { "false" })
                .envs(options.env.iter().copied())
                .stdin(Stdio::null())
                .stdout(exabgp_log.try_clone().expect("log file"))
                .stderr(exabgp_log),
        ));
        stack.wait_established();
        Some(stack)
    }

    fn write_exabgp_config(&self) {
        std::fs::write(
            self.dir.path().join("exabgp.conf"),
            exabgp_config(
                self.bgp_port,
                &self.processes,
                self.encoder,
                self.exabgp_peers,
                self.neighbor_changes,
            ),
        )
        .expect("write exabgp.conf");
    }

    /// Rewrite exabgp.conf with `processes` (reuse a [`Process`] to keep its `run` line the
    /// same) and send ExaBGP `signal` (SIGUSR1: reload, SIGUSR2: full reload); returns once
    /// ExaBGP logged that it loaded the new configuration, with the time that took.
    pub fn reload(&mut self, processes: Vec<Process>, signal: Signal) -> Duration {
        self.reload_peers(processes, self.exabgp_peers, signal)
    }

    /// The same, with exabgp.conf configuring the first `peers` sessions of the stack's.
    pub fn reload_peers(
        &mut self,
        processes: Vec<Process>,
        peers: usize,
        signal: Signal,
    ) -> Duration {
        self.exabgp_peers = peers.clamp(1, self.peers);
        let loaded_before = self.reloads_logged();
        self.rewrite_config(processes);
        let started = Instant::now();
        self.signal_exabgp(signal);
        self.wait_or_dump(
            "ExaBGP to load the new configuration",
            Duration::from_secs(10),
            || (self.reloads_logged() > loaded_before).then_some(()),
        );
        started.elapsed()
    }

    /// Rewrite exabgp.conf with `processes`, without signalling ExaBGP.
    pub fn rewrite_config(&mut self, processes: Vec<Process>) {
        for old in std::mem::replace(&mut self.processes, processes) {
            if !self
                .processes
                .iter()
                .any(|p| p.unique_name == old.unique_name)
            {
                self.retired.push(old);
            }
        }
        self.write_exabgp_config();
    }

    /// How many times ExaBGP logged a successful configuration reload (5.0: `loaded new
    /// configuration successfully`, 6.0: `config.loaded`).
    pub fn reloads_logged(&self) -> usize {
        let log = std::fs::read_to_string(self.dir.path().join("exabgp.log")).unwrap_or_default();
        log.lines()
            .filter(|line| {
                line.contains("loaded new configuration successfully")
                    || line.contains("config.loaded")
            })
            .count()
    }

    fn log_file(&self, name: &str) -> std::fs::File {
        std::fs::File::create(self.dir.path().join(name)).expect("create log file")
    }

    /// Run the gobgp CLI against this stack's daemon.
    pub fn gobgp(&self, args: &[&str]) -> Result<String, String> {
        let output = Command::new(&self.gobgp_cli)
            .arg("-p")
            .arg(self.api_port.to_string())
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    fn start_monitor(&mut self) {
        let mut command = Command::new(&self.gobgp_cli);
        command
            .args([
                "-p",
                &self.api_port.to_string(),
                "monitor",
                "global",
                "rib",
                "-j",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut monitor = ChildGuard::spawn(&mut command);
        let stdout = monitor.child().stdout.take().expect("monitor stdout");
        let events = self.events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                events.lock().expect("events lock").push(line);
            }
        });
        self.monitor = Some(monitor);
    }

    /// Poll until the BGP session is Established (30 s at most).
    pub fn wait_established(&self) {
        let what = format!("the BGP session to be Established\n{}", self.logs());
        wait_for(&what, Duration::from_secs(30), || {
            self.established().then_some(())
        });
    }

    /// True while every session exabgp.conf configures is Established.
    pub fn established(&self) -> bool {
        let Some(neighbors) = self
            .gobgp(&["neighbor", "-j"])
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        else {
            return false;
        };
        let states: Vec<Option<u64>> = neighbors
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| n.get("state")?.get("session_state")?.as_u64())
            .collect();
        states.len() == self.peers
            && states.iter().filter(|s| **s == Some(6)).count() == self.exabgp_peers
    }

    /// The ExaBGP local addresses (GoBGP's neighbours) from which GoBGP holds a path for
    /// `prefix`, sorted.
    pub fn sources(&self, prefix: &str) -> Vec<String> {
        let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let Ok(text) = self.gobgp(&["global", "rib", "-a", family, "-j"]) else {
            return vec![];
        };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
            return vec![];
        };
        let mut sources: Vec<String> = value
            .get(prefix)
            .and_then(|paths| paths.as_array())
            .into_iter()
            .flatten()
            .filter_map(|path| Some(path.get("neighbor-ip")?.as_str()?.to_string()))
            .collect();
        sources.sort();
        sources
    }

    /// Poll until GoBGP holds `prefix` from exactly the ExaBGP local addresses `expected`.
    pub fn wait_sources(&self, prefix: &str, expected: &[&str], timeout: Duration) {
        let what = format!("{prefix} from exactly {expected:?}");
        self.wait_or_dump(&what, timeout, || {
            (self.sources(prefix) == expected).then_some(())
        });
    }

    /// The peer's IPv4 and IPv6 unicast RIB.
    pub fn rib(&self) -> BTreeMap<String, Route> {
        let mut routes = BTreeMap::new();
        for family in ["ipv4", "ipv6"] {
            let Ok(text) = self.gobgp(&["global", "rib", "-a", family, "-j"]) else {
                continue;
            };
            let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&text) else {
                continue;
            };
            for (prefix, paths) in map {
                if let Some(path) = paths.get(0) {
                    routes.insert(prefix, parse_route(path));
                }
            }
        }
        routes
    }

    /// Poll until `prefix` is present and `accept` holds; returns the route and how long it took.
    pub fn wait_route(
        &self,
        prefix: &str,
        timeout: Duration,
        accept: impl Fn(&Route) -> bool,
    ) -> (Route, Duration) {
        let started = Instant::now();
        let what = format!("route {prefix} in the expected state");
        let route = self.wait_or_dump(&what, timeout, || {
            self.rib().get(prefix).filter(|r| accept(r)).cloned()
        });
        (route, started.elapsed())
    }

    /// Poll until `prefix` has the MED `med`.
    pub fn wait_med(&self, prefix: &str, med: u32, timeout: Duration) -> Duration {
        self.wait_route(prefix, timeout, |route| route.med == Some(med))
            .1
    }

    /// Poll until `prefix` is gone from the peer.
    pub fn wait_absent(&self, prefix: &str, timeout: Duration) -> Duration {
        let started = Instant::now();
        self.wait_or_dump(&format!("route {prefix} to be withdrawn"), timeout, || {
            (!self.rib().contains_key(prefix)).then_some(())
        });
        started.elapsed()
    }

    /// Poll until the route monitor saw a withdraw of `prefix` (catches a withdraw even when a
    /// respawned probe announces the prefix again right after).
    pub fn wait_withdraw_event(&self, prefix: &str, timeout: Duration) {
        let needle = format!("\"prefix\":\"{prefix}\"");
        self.wait_or_dump(
            &format!("a withdraw of {prefix} at the peer"),
            timeout,
            || {
                let events = self.events.lock().expect("events lock");
                events
                    .iter()
                    .any(|line| line.contains(&needle) && line.contains("\"withdrawal\":true"))
                    .then_some(())
            },
        );
    }

    /// A mark in the peer's update stream: [`Stack::updates_since`] returns what came after.
    pub fn update_mark(&self) -> usize {
        self.events.lock().expect("events lock").len()
    }

    /// The path changes the peer's update stream showed after `mark`, in order.
    pub fn updates_since(&self, mark: usize) -> Vec<Update> {
        let events = self.events.lock().expect("events lock");
        let mut updates = Vec::new();
        for line in events.iter().skip(mark) {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let paths = match value {
                serde_json::Value::Array(paths) => paths,
                path => vec![path],
            };
            for path in paths {
                let Some(prefix) = path
                    .get("nlri")
                    .and_then(|n| n.get("prefix"))
                    .and_then(|p| p.as_str())
                else {
                    continue;
                };
                updates.push(Update {
                    prefix: prefix.to_string(),
                    withdrawal: path.get("withdrawal").and_then(|w| w.as_bool()) == Some(true),
                    med: parse_route(&path).med,
                });
            }
        }
        updates
    }

    /// Each prefix the peer holds with its MED.
    pub fn meds(&self) -> BTreeMap<String, Option<u32>> {
        self.rib()
            .into_iter()
            .map(|(prefix, route)| (prefix, route.med))
            .collect()
    }

    /// Poll until the peer holds exactly `expected` (prefix, MED), nothing else; returns how
    /// long that took.
    pub fn wait_exact_rib(&self, expected: &[(&str, u32)], timeout: Duration) -> Duration {
        let started = Instant::now();
        let expected: BTreeMap<String, Option<u32>> = expected
            .iter()
            .map(|(prefix, med)| (prefix.to_string(), Some(*med)))
            .collect();
        self.wait_or_dump(
            &format!("the peer to hold exactly {expected:?}"),
            timeout,
            || (self.meds() == expected).then_some(()),
        );
        started.elapsed()
    }

    /// Poll `condition` until it gives a value; on time-out panic with the RIB and the logs.
    pub fn wait_or_dump<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut condition: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = condition() {
                return value;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}\nRIB: {:?}\n{}",
                    self.rib(),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// ExaBGP's and GoBGP's logs (ExaBGP's include the probes' stderr).
    pub fn logs(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- exabgp.log ---\n{}\n--- gobgpd.log (tail) ---\n{}",
            read("exabgp.log"),
            tail(&read("gobgpd.log"), 2000)
        )
    }

    /// The temp dir (for flag files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// ExaBGP's pid.
    pub fn exabgp_pid(&self) -> u32 {
        self.exabgp.as_ref().expect("exabgp running").pid()
    }

    /// Pids of the running probe whose process is named `name` in exabgp.conf (the current
    /// one when a reload replaced it: [`instance_pids`] finds a replaced one).
    pub fn probe_pids(&self, name: &str) -> Vec<u32> {
        let unique = self
            .processes
            .iter()
            .chain(&self.retired)
            .find(|p| p.name == name)
            .map_or(name, |p| p.unique_name.as_str());
        instance_pids(unique)
    }

    /// Wait for exactly one running probe named `name` and return its pid.
    pub fn probe_pid(&self, name: &str) -> u32 {
        self.wait_or_dump(
            &format!("probe {name} to run"),
            Duration::from_secs(10),
            || match self.probe_pids(name).as_slice() {
                [pid] => Some(*pid),
                _ => None,
            },
        )
    }

    /// Send `signal` to ExaBGP.
    pub fn signal_exabgp(&self, signal: Signal) {
        let _ = kill(Pid::from_raw(self.exabgp_pid() as i32), signal);
    }

    /// Wait for ExaBGP to exit (after a signal).
    pub fn wait_exabgp_exit(&mut self, timeout: Duration) -> bool {
        self.exabgp
            .as_mut()
            .expect("exabgp running")
            .wait_timeout(timeout)
            .is_some()
    }

    /// The processes this stack runs.
    pub fn processes(&self) -> &[Process] {
        &self.processes
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        drop(self.exabgp.take());
        for process in self.processes.iter().chain(&self.retired) {
            for pid in instance_pids(&process.unique_name) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
        drop(self.monitor.take());
        drop(self.gobgp.take());
    }
}

/// Pids of the running exaprobe processes started with `--name unique_name` ([`Process::unique_name`]).
pub fn instance_pids(unique_name: &str) -> Vec<u32> {
    let marker = format!("--name\0{unique_name}\0");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'));
        if !zombie
            && String::from_utf8_lossy(&cmdline).contains(&marker)
            && cmdline.windows(8).any(|w| w == b"exaprobe")
        {
            pids.push(pid);
        }
    }
    pids
}

/// Send `signal` to a process.
pub fn signal(pid: u32, signal: Signal) {
    let _ = kill(Pid::from_raw(pid as i32), signal);
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty()
        && !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
}

fn tail(text: &str, max: usize) -> &str {
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    &text[start..]
}

fn parse_route(path: &serde_json::Value) -> Route {
    let mut route = Route {
        med: None,
        communities: vec![],
        large_communities: vec![],
        as_path: vec![],
        next_hop: String::new(),
    };
    for attribute in path
        .get("attrs")
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
    {
        match attribute.get("type").and_then(|t| t.as_u64()) {
            Some(2) => {
                for segment in attribute
                    .get("as_paths")
                    .and_then(|s| s.as_array())
                    .into_iter()
                    .flatten()
                {
                    for asn in segment
                        .get("asns")
                        .and_then(|a| a.as_array())
                        .into_iter()
                        .flatten()
                    {
                        route
                            .as_path
                            .extend(asn.as_u64().and_then(|a| u32::try_from(a).ok()));
                    }
                }
            }
            Some(3) | Some(14) => {
                if let Some(hop) = attribute.get("nexthop").and_then(|n| n.as_str()) {
                    route.next_hop = hop.to_string();
                }
            }
            Some(4) => {
                route.med = attribute
                    .get("metric")
                    .and_then(|m| m.as_u64())
                    .and_then(|m| u32::try_from(m).ok())
            }
            Some(8) => {
                for value in attribute
                    .get("communities")
                    .and_then(|c| c.as_array())
                    .into_iter()
                    .flatten()
                {
                    if let Some(v) = value.as_u64() {
                        route
                            .communities
                            .push(format!("{}:{}", v >> 16, v & 0xffff));
                    }
                }
            }
            Some(32) => {
                for value in attribute
                    .get("value")
                    .and_then(|c| c.as_array())
                    .into_iter()
                    .flatten()
                {
                    let field = |name: &str| value.get(name).and_then(|v| v.as_u64()).unwrap_or(0);
                    route.large_communities.push(format!(
                        "{}:{}:{}",
                        field("ASN"),
                        field("LocalData1"),
                        field("LocalData2")
                    ));
                }
            }
            _ => {}
        }
    }
    route
}

/// GoBGP listens on the first `peers` addresses of [`PEERS`]; one plain passive neighbour per
/// ExaBGP local address. No graceful restart: the 6.0 snapshot drops the session on End-of-RIB.
fn gobgp_config(bgp_port: u16, peers: usize) -> String {
    let listen: Vec<String> = PEERS[..peers]
        .iter()
        .map(|(gobgp, _)| format!("\"{gobgp}\""))
        .collect();
    let mut config = format!(
        r#"[global.config]
  as = 65001
  router-id = "10.0.0.2"
  port = {bgp_port}
  local-address-list = [{}]
"#,
        listen.join(", ")
    );
    for (_, exabgp) in &PEERS[..peers] {
        config.push_str(&gobgp_neighbor(exabgp));
    }
    config
}

fn gobgp_neighbor(address: &str) -> String {
    format!(
        r#"[[neighbors]]
  [neighbors.config]
    neighbor-address = "{address}"
    peer-as = 65000
  [neighbors.transport.config]
    passive-mode = true
  [neighbors.timers.config]
    hold-time = 9
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
"#
    )
}

fn exabgp_config(
    bgp_port: u16,
    processes: &[Process],
    encoder: &str,
    peers: usize,
    neighbor_changes: bool,
) -> String {
    let mut config = String::new();
    for process in processes {
        let run: Vec<String> = process.argv.iter().map(|a| quote(a)).collect();
        config.push_str(&format!(
            "process {} {{\n    run {};\n    encoder {encoder};\n    respawn {};\n}}\n",
            process.name,
            run.join(" "),
            process.respawn
        ));
    }
    let names: Vec<&str> = processes.iter().map(|p| p.name.as_str()).collect();
    let changes = if neighbor_changes {
        " neighbor-changes;"
    } else {
        ""
    };
    for (index, (gobgp, local)) in PEERS[..peers].iter().enumerate() {
        config.push_str(&format!(
            "neighbor {gobgp} {{\n    router-id 10.0.0.{};\n    local-address {local};\n    local-as 65000;\n    peer-as 65001;\n    connect {bgp_port};\n    hold-time 9;\n    family {{ ipv4 unicast; ipv6 unicast; }}\n    api {{ processes [ {} ];{changes} }}\n}}\n",
            2 * index + 1,
            names.join(" ")
        ));
    }
    config
}

/// Quote an argument for ExaBGP's `run` line when it has spaces.
fn quote(arg: &str) -> String {
    if arg.is_empty()
        || arg.contains(|c: char| c.is_whitespace() || c == ';' || c == '{' || c == '}')
    {
        format!("\"{arg}\"")
    } else {
        arg.to_string()
    }
}
