//! The runner in-process: real pipes for stdin and stdout (this test plays ExaBGP on their
//! other ends, and stalls them at will), a channel for signals, and tokio's paused clock, so
//! minutes of schedule run in milliseconds and every wait is on an event.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, LocalSet};
use tokio::time::{Instant, timeout};

use super::{RunIo, Signal, run_with};
use crate::config::settings::{ModeFlags, Settings};
use crate::engine::output::CommandSink;
use crate::probe::{Outcome, Probe};

/// How the test's service behaves at each check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Healthy,
    Failing,
    /// Alternates healthy and failing at every check.
    Flapping,
    /// Answers healthy after 3 s.
    Slow,
}

/// A service the test controls, and the instants it was checked at.
#[derive(Clone)]
struct Service {
    health: Arc<Mutex<Health>>,
    checks: Arc<Mutex<Vec<Instant>>>,
    count: Arc<AtomicUsize>,
    /// Where the runner listens for the service's events (`--events`), once it asked.
    events: Arc<Mutex<Option<crate::kit::events::Events>>>,
}

impl Service {
    fn new(health: Health) -> Self {
        Service {
            health: Arc::new(Mutex::new(health)),
            checks: Arc::default(),
            count: Arc::default(),
            events: Arc::default(),
        }
    }

    fn set(&self, health: Health) {
        *self.health.lock().unwrap() = health;
    }

    fn checks(&self) -> Vec<Instant> {
        self.checks.lock().unwrap().clone()
    }

    /// The latch the runner's watcher reports to (`None` until the runner started one).
    fn events(&self) -> Option<crate::kit::events::Events> {
        self.events.lock().unwrap().clone()
    }
}

struct ServiceProbe(Service);

impl Probe for ServiceProbe {
    fn describe(&self) -> String {
        "the test's service".into()
    }

    async fn check(&mut self, _deadline: Instant) -> Outcome {
        self.0.checks.lock().unwrap().push(Instant::now());
        let count = self.0.count.fetch_add(1, Ordering::Relaxed);
        let health = *self.0.health.lock().unwrap();
        let healthy = match health {
            Health::Healthy => true,
            Health::Failing => false,
            Health::Flapping => count.is_multiple_of(2),
            Health::Slow => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                true
            }
        };
        if healthy {
            Outcome::Healthy
        } else {
            Outcome::unhealthy("the test says so")
        }
    }

    /// The test reports the service's events itself: the watcher only hands the latch over.
    fn watch(&self, events: crate::kit::events::Events) -> Option<crate::probe::Watcher> {
        *self.0.events.lock().unwrap() = Some(events);
        Some(Box::pin(std::future::pending()))
    }
}

#[derive(Parser)]
struct Options {
    #[command(flatten)]
    common: crate::config::options::CommonOptions,
}

fn settings(args: &[&str]) -> Settings {
    let argv = std::iter::once("exaprobe-test").chain(args.iter().copied());
    let options = Options::try_parse_from(argv).expect("valid test options");
    let modes = ModeFlags {
        dry_run: false,
        routes_optional: false,
    };
    Settings::resolve(&options.common, "test", modes).expect("valid test settings")
}

/// `count` host prefixes and the fast timers the tests use, plus `extra`.
fn args(count: usize, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = (0..count)
        .flat_map(|i| ["--prefix".to_string(), format!("192.0.2.{i}/32")])
        .collect();
    let timers = [
        "--interval",
        "0.2",
        "--fast-interval",
        "0.05",
        "--rise",
        "1",
        "--fall",
        "1",
        "--exabgp-api",
        "4",
    ];
    for pair in timers.chunks(2) {
        if !extra.contains(&pair[0]) {
            args.extend(pair.iter().map(|s| s.to_string()));
        }
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// This test as ExaBGP: the other ends of the probe's pipes, and its signals.
struct Exabgp {
    commands: BufReader<pipe::Receiver>,
    answers: Option<pipe::Sender>,
    signals: mpsc::UnboundedSender<Signal>,
    run: JoinHandle<ExitCode>,
}

impl Exabgp {
    /// Start the runner on `service` with `args`; the command pipe holds only 4 KiB (the
    /// smallest a pipe can be), so a few batches fill it.
    fn start(args: &[String], service: &Service) -> Exabgp {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let settings = settings(&args);
        let reload_settings = settings.clone();
        let reload_service = service.clone();
        let reload: super::Reload<ServiceProbe> = Box::new(move || {
            Ok((
                reload_settings.clone(),
                ServiceProbe(reload_service.clone()),
            ))
        });
        Exabgp::start_with(settings, service, reload)
    }

    /// [`Exabgp::start`] with its own settings and reload.
    fn start_with(
        settings: Settings,
        service: &Service,
        reload: super::Reload<ServiceProbe>,
    ) -> Exabgp {
        let (stdout, commands) = pipe::pipe().expect("a pipe");
        nix::fcntl::fcntl(stdout.as_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096))
            .expect("shrink the pipe");
        let (answers, stdin) = pipe::pipe().expect("a pipe");
        let (signals, signal_receiver) = mpsc::unbounded_channel();
        let io = RunIo {
            stdin: Box::new(stdin),
            stdout: CommandSink::Pipe(stdout),
            signals: signal_receiver,
            stdin_is_pipe: true,
        };
        let run = tokio::task::spawn_local(run_with(
            ServiceProbe(service.clone()),
            settings,
            reload,
            io,
        ));
        Exabgp {
            commands: BufReader::new(commands),
            answers: Some(answers),
            signals,
            run,
        }
    }

    /// The next command, if one comes within `within`.
    async fn command(&mut self, within: Duration) -> Option<String> {
        let mut line = String::new();
        match timeout(within, self.commands.read_line(&mut line)).await {
            Ok(Ok(0)) | Err(_) => None,
            Ok(Ok(_)) => {
                assert!(line.ends_with('\n'), "a cut line: {line:?}");
                Some(line.trim_end().to_string())
            }
            Ok(Err(error)) => panic!("reading the commands: {error}"),
        }
    }

    async fn answer(&mut self, text: &str) {
        let answers = self.answers.as_mut().expect("stdin still open");
        answers.write_all(text.as_bytes()).await.expect("answer");
    }

    /// Read and acknowledge commands until none comes for `quiet`; returns them in order.
    async fn drain_acking(&mut self, quiet: Duration) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some(line) = self.command(quiet).await {
            self.answer("done\n").await;
            seen.push(line);
        }
        seen
    }

    fn signal(&self, signal: Signal) {
        self.signals.send(signal).expect("the runner is listening");
    }
}

/// The last command per prefix, from a sequence of commands.
fn last_per_prefix(lines: &[String]) -> BTreeMap<String, String> {
    let mut last = BTreeMap::new();
    for line in lines {
        let mut words = line.split_whitespace();
        let verb = words.next().expect("a verb").to_string();
        assert_eq!(words.next(), Some("route"), "{line}");
        let prefix = words.next().expect("a prefix").to_string();
        last.insert(prefix, verb);
    }
    last
}

/// Run `test` on a local task set (the probe need not be `Send`) with logs captured.
async fn local<F: std::future::Future<Output = ()>>(test: F) {
    LocalSet::new().run_until(test).await;
}

/// Logs written while the guard lives, as text.
struct Logs {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Logs {
    fn capture() -> Logs {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buffer);
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || SharedWriter(Arc::clone(&sink)))
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        Logs {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }
}

struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_stalled_pipe_converges_to_the_current_state_once_drained() {
    local(async {
        let service = Service::new(Health::Flapping);
        let mut exabgp = Exabgp::start(&args(20, &["--withdraw-on-down"]), &service);
        // ExaBGP stops reading for a minute while the service flaps at every check.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let checks_while_stalled = service.checks().len();
        service.set(Health::Failing);
        let lines = exabgp.drain_acking(Duration::from_secs(3)).await;
        let last = last_per_prefix(&lines);
        assert_eq!(last.len(), 20, "{last:?}");
        assert!(
            last.values().all(|verb| verb == "withdraw"),
            "the service is down but ExaBGP was last told {last:?}"
        );
        // The checks went on at their pace during the stall (one every 200 ms: with rise and
        // fall 1 no state is transitional).
        assert!(
            checks_while_stalled >= 295,
            "only {checks_while_stalled} checks in 60 s"
        );
        // No backlog: what was written is one pipe-full plus the final convergence, not one
        // batch per flap.
        assert!(
            lines.len() <= 4096 / 40 + 2 * 20,
            "{} commands written for {checks_while_stalled} flaps",
            lines.len()
        );
        // Nothing more once converged.
        assert_eq!(exabgp.command(Duration::from_secs(5)).await, None);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn sigterm_during_a_blocked_write_exits_in_time_without_a_partial_line() {
    local(async {
        let service = Service::new(Health::Flapping);
        let mut exabgp = Exabgp::start(&args(50, &["--withdraw-on-down"]), &service);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let asked = Instant::now();
        exabgp.signal(Signal::Terminate);
        let code = timeout(Duration::from_millis(1500), &mut exabgp.run)
            .await
            .expect("exited within 1.5 s")
            .expect("no panic");
        assert_eq!(code, ExitCode::SUCCESS);
        assert!(asked.elapsed() <= Duration::from_millis(1500));
        // The runner is gone: what is in the pipe ends on a whole line.
        let mut rest = Vec::new();
        exabgp
            .commands
            .read_to_end(&mut rest)
            .await
            .expect("read the pipe");
        assert!(!rest.is_empty(), "the pipe should have been full");
        assert!(rest.ends_with(b"\n"), "a partial line was left");
        for line in String::from_utf8(rest).unwrap().lines() {
            assert!(
                line.starts_with("announce route 192.0.2.")
                    || line.starts_with("withdraw route 192.0.2."),
                "{line:?}"
            );
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn sigterm_withdraws_every_prefix_when_exabgp_reads() {
    local(async {
        let service = Service::new(Health::Healthy);
        let mut exabgp = Exabgp::start(&args(3, &[]), &service);
        let announced = exabgp.drain_acking(Duration::from_secs(1)).await;
        assert_eq!(announced.len(), 3, "{announced:?}");
        exabgp.signal(Signal::Terminate);
        let withdrawn = exabgp.drain_acking(Duration::from_secs(1)).await;
        assert_eq!(
            withdrawn,
            [
                "withdraw route 192.0.2.0/32 next-hop self",
                "withdraw route 192.0.2.1/32 next-hop self",
                "withdraw route 192.0.2.2/32 next-hop self"
            ]
        );
        let code = timeout(Duration::from_millis(100), &mut exabgp.run).await;
        assert_eq!(
            code.expect("exited once acknowledged").unwrap(),
            ExitCode::SUCCESS
        );
    })
    .await;
}

/// A session that comes up after the routes were sent (ExaBGP's `neighbor-changes;`) gets the
/// current state again: a neighbour added by an ExaBGP reload otherwise never hears of it.
#[tokio::test(start_paused = true)]
async fn a_session_coming_up_gets_the_current_routes_again() {
    local(async {
        let service = Service::new(Health::Healthy);
        let mut exabgp = Exabgp::start(&args(2, &[]), &service);
        let announced = exabgp.drain_acking(Duration::from_secs(1)).await;
        assert_eq!(announced.len(), 2, "{announced:?}");
        exabgp.answer("neighbor 127.0.0.9 connected\n").await;
        assert_eq!(exabgp.command(Duration::from_secs(1)).await, None);
        exabgp.answer("neighbor 127.0.0.9 up\n").await;
        let again = exabgp.drain_acking(Duration::from_secs(1)).await;
        assert_eq!(again, announced, "the same routes, once each");
    })
    .await;
}

/// Issue 24: the deliverer rebuilt and de-duplicated its whole pending list on every ACK, so a
/// /19 (8,192 routes) stalled the runtime for seconds. Its work is now counted, not timed:
/// examining each prefix a few times per change, whatever the number of prefixes.
#[tokio::test(start_paused = true)]
async fn thousands_of_routes_cost_linear_work() {
    local(async {
        let count = 8192;
        let mut options: Vec<String> = (0..count)
            .flat_map(|i| {
                [
                    "--prefix".to_string(),
                    format!("10.0.{}.{}/32", i / 256, i % 256),
                ]
            })
            .collect();
        options.extend(args(0, &["--withdraw-on-down"]));
        super::deliverer::EXAMINED.with(|examined| examined.set(0));
        let service = Service::new(Health::Healthy);
        let mut exabgp = Exabgp::start(&options, &service);
        let announced = exabgp.drain_acking(Duration::from_secs(2)).await;
        assert_eq!(announced.len(), count);
        service.set(Health::Failing);
        let withdrawn = exabgp.drain_acking(Duration::from_secs(2)).await;
        assert_eq!(withdrawn.len(), count);
        assert!(withdrawn.iter().all(|line| line.starts_with("withdraw ")));
        let examined = super::deliverer::EXAMINED.with(std::cell::Cell::get);
        assert!(
            examined <= 8 * 2 * count as u64,
            "{examined} prefixes examined to deliver 2 x {count} commands"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn checks_never_wait_for_missing_acks() {
    local(async {
        let service = Service::new(Health::Healthy);
        let mut exabgp = Exabgp::start(&args(2, &["--interval", "0.5"]), &service);
        // ExaBGP never answers. The service changes every 3 s for half a minute.
        for round in 0..10 {
            let health = if round % 2 == 0 {
                Health::Failing
            } else {
                Health::Healthy
            };
            service.set(health);
            let until = Instant::now() + Duration::from_secs(3);
            while exabgp.command(until - Instant::now()).await.is_some() {}
        }
        let checks = service.checks();
        let longest = checks
            .windows(2)
            .map(|pair| pair[1] - pair[0])
            .max()
            .unwrap();
        assert!(
            longest <= Duration::from_millis(500),
            "a gap of {longest:?} between checks while ACKs were missing"
        );
        assert!(checks.len() >= 55, "{} checks in 30 s", checks.len());
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn missing_acks_do_not_stop_delivery() {
    local(async {
        let logs = Logs::capture();
        let service = Service::new(Health::Healthy);
        let mut exabgp = Exabgp::start(&args(1, &["--ack-timeout", "2"]), &service);
        assert_eq!(
            exabgp.command(Duration::from_secs(1)).await.as_deref(),
            Some("announce route 192.0.2.0/32 next-hop self med 100")
        );
        // No ACK. The service fails: the withdraw-or-worse-MED goes out at once all the same.
        service.set(Health::Failing);
        let started = Instant::now();
        assert_eq!(
            exabgp.command(Duration::from_secs(1)).await.as_deref(),
            Some("announce route 192.0.2.0/32 next-hop self med 1000")
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(logs.text().contains("use --no-ack"), "{}", logs.text());
        // Late ACKs are absorbed; the next change is delivered and confirmed.
        exabgp.answer("done\ndone\n").await;
        service.set(Health::Healthy);
        assert_eq!(
            exabgp.command(Duration::from_secs(1)).await.as_deref(),
            Some("announce route 192.0.2.0/32 next-hop self med 100")
        );
        exabgp.answer("done\n").await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        exabgp.signal(Signal::DumpState);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let dump = logs
            .text()
            .lines()
            .rfind(|line| line.contains("state dump"))
            .map(str::to_string)
            .expect("a state dump");
        assert!(dump.contains("announced=192.0.2.0/32 "), "{dump}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn rejected_commands_are_retried_with_backoff_until_accepted() {
    local(async {
        let logs = Logs::capture();
        let service = Service::new(Health::Healthy);
        let mut exabgp = Exabgp::start(&args(1, &[]), &service);
        let mut sent_at = Vec::new();
        for answer in [
            "error: no such neighbor\nerror\n",
            "error\n",
            "error\n",
            "done\n",
        ] {
            let line = exabgp
                .command(Duration::from_secs(10))
                .await
                .expect("a command");
            assert_eq!(line, "announce route 192.0.2.0/32 next-hop self med 100");
            sent_at.push(Instant::now());
            exabgp.answer(answer).await;
        }
        let gaps: Vec<u64> = sent_at
            .windows(2)
            .map(|pair| (pair[1] - pair[0]).as_secs())
            .collect();
        assert_eq!(gaps, [1, 2, 4], "retries back off 1 s, 2 s, 4 s");
        assert_eq!(exabgp.command(Duration::from_secs(120)).await, None);
        let text = logs.text();
        assert!(text.contains(r#"detail="no such neighbor""#), "{text}");
        assert!(
            !text.contains("run the probe with --exabgp-api"),
            "a detail means ExaBGP understood the form: no dialect hint: {text}"
        );
        exabgp.signal(Signal::DumpState);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let dump = logs.text();
        let dump = dump.lines().rfind(|l| l.contains("state dump")).unwrap();
        assert!(dump.contains("announced=192.0.2.0/32 "), "{dump}");
        assert!(dump.contains("out_of_sync=0"), "{dump}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_rejected_command_is_superseded_by_a_newer_state() {
    local(async {
        let service = Service::new(Health::Healthy);
        let mut exabgp = Exabgp::start(&args(1, &["--withdraw-on-down"]), &service);
        assert!(
            exabgp
                .command(Duration::from_secs(1))
                .await
                .unwrap()
                .starts_with("announce")
        );
        exabgp.answer("error\n").await;
        service.set(Health::Failing);
        // The withdraw goes out at once, not after the announce's backoff.
        let started = Instant::now();
        assert_eq!(
            exabgp.command(Duration::from_secs(1)).await.as_deref(),
            Some("withdraw route 192.0.2.0/32 next-hop self")
        );
        assert!(started.elapsed() <= Duration::from_millis(300));
        exabgp.answer("done\n").await;
        assert_eq!(exabgp.command(Duration::from_secs(90)).await, None);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn stdin_eof_ends_the_run_without_writing() {
    local(async {
        let service = Service::new(Health::Healthy);
        let mut exabgp = Exabgp::start(&args(1, &[]), &service);
        exabgp.drain_acking(Duration::from_secs(1)).await;
        drop(exabgp.answers.take());
        let code = timeout(Duration::from_millis(100), &mut exabgp.run).await;
        assert_eq!(code.expect("exited at once").unwrap(), ExitCode::SUCCESS);
        assert_eq!(exabgp.command(Duration::from_secs(1)).await, None);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn sighup_withdraws_only_what_was_removed_and_never_stops_the_checks() {
    local(async {
        let service = Service::new(Health::Healthy);
        let mut exabgp = Exabgp::start(&args(2, &[]), &service);
        assert_eq!(exabgp.drain_acking(Duration::from_secs(1)).await.len(), 2);
        exabgp.signal(Signal::Hangup);
        // The test's reload returns the same settings: nothing to send.
        assert_eq!(exabgp.command(Duration::from_secs(2)).await, None);
        let before = service.checks().len();
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(service.checks().len() >= before + 9);
    })
    .await;
}

/// The stdout of a probe that ExaBGP reads is always whole lines, also when ACKs are off.
#[tokio::test(start_paused = true)]
async fn no_ack_mode_counts_written_commands_as_accepted() {
    local(async {
        let service = Service::new(Health::Healthy);
        let mut exabgp = Exabgp::start(&args(2, &["--no-ack"]), &service);
        let mut sent = 0;
        while exabgp.command(Duration::from_secs(1)).await.is_some() {
            sent += 1;
        }
        assert_eq!(sent, 2, "each prefix once, no ACK awaited");
        service.set(Health::Failing);
        assert!(
            exabgp
                .command(Duration::from_secs(1))
                .await
                .unwrap()
                .contains("med 1000")
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn maintenance_with_drain_announces_the_graceful_shutdown_community_first() {
    local(async {
        let dir = tempfile::tempdir().unwrap();
        let disable = dir.path().join("maintenance");
        let service = Service::new(Health::Healthy);
        let mut exabgp = Exabgp::start(
            &args(
                1,
                &[
                    "--drain",
                    "2",
                    "--withdraw-on-down",
                    "--disable",
                    disable.to_str().unwrap(),
                ],
            ),
            &service,
        );
        assert_eq!(
            exabgp.drain_acking(Duration::from_secs(1)).await,
            ["announce route 192.0.2.0/32 next-hop self med 100"]
        );
        std::fs::write(&disable, "").unwrap();
        let drained = exabgp.command(Duration::from_secs(1)).await.unwrap();
        let started = Instant::now();
        assert_eq!(
            drained,
            "announce route 192.0.2.0/32 next-hop self med 100 community [ 65535:0 ]"
        );
        exabgp.answer("done\n").await;
        let last = exabgp.command(Duration::from_secs(5)).await.unwrap();
        assert_eq!(last, "withdraw route 192.0.2.0/32 next-hop self");
        let drained_for = started.elapsed();
        assert!(
            drained_for >= Duration::from_secs(2) && drained_for < Duration::from_millis(2100),
            "{drained_for:?}"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn leaving_maintenance_during_the_drain_announces_normally_again() {
    local(async {
        let dir = tempfile::tempdir().unwrap();
        let disable = dir.path().join("maintenance");
        let service = Service::new(Health::Healthy);
        let mut exabgp = Exabgp::start(
            &args(
                1,
                &["--drain", "30", "--disable", disable.to_str().unwrap()],
            ),
            &service,
        );
        exabgp.drain_acking(Duration::from_secs(1)).await;
        std::fs::write(&disable, "").unwrap();
        assert!(
            exabgp
                .command(Duration::from_secs(1))
                .await
                .unwrap()
                .contains("65535:0")
        );
        exabgp.answer("done\n").await;
        std::fs::remove_file(&disable).unwrap();
        assert_eq!(
            exabgp.command(Duration::from_secs(1)).await.as_deref(),
            Some("announce route 192.0.2.0/32 next-hop self med 100")
        );
        exabgp.answer("done\n").await;
        // The cancelled drain's end passes without a maintenance action.
        assert_eq!(exabgp.command(Duration::from_secs(40)).await, None);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_service_is_withdrawn_at_once_even_with_drain() {
    local(async {
        let service = Service::new(Health::Healthy);
        let mut exabgp = Exabgp::start(&args(1, &["--drain", "5", "--withdraw-on-down"]), &service);
        exabgp.drain_acking(Duration::from_secs(1)).await;
        service.set(Health::Failing);
        assert_eq!(
            exabgp.command(Duration::from_secs(1)).await.as_deref(),
            Some("withdraw route 192.0.2.0/32 next-hop self")
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn sigterm_with_drain_drains_within_the_exit_budget_then_withdraws() {
    local(async {
        let service = Service::new(Health::Healthy);
        let mut exabgp = Exabgp::start(&args(2, &["--drain", "10"]), &service);
        exabgp.drain_acking(Duration::from_secs(1)).await;
        let asked = Instant::now();
        exabgp.signal(Signal::Terminate);
        let mut seen = Vec::new();
        while let Some(line) = exabgp.command(Duration::from_secs(2)).await {
            seen.push((asked.elapsed(), line));
            exabgp.answer("done\n").await;
        }
        let lines: Vec<&str> = seen.iter().map(|(_, line)| line.as_str()).collect();
        assert_eq!(
            lines,
            [
                "announce route 192.0.2.0/32 next-hop self med 100 community [ 65535:0 ]",
                "announce route 192.0.2.1/32 next-hop self med 101 community [ 65535:0 ]",
                "withdraw route 192.0.2.0/32 next-hop self",
                "withdraw route 192.0.2.1/32 next-hop self",
            ]
        );
        assert_eq!(
            seen[2].0,
            Duration::from_millis(800),
            "drained for what the budget allows"
        );
        let code = timeout(Duration::from_millis(100), &mut exabgp.run).await;
        assert_eq!(code.expect("exited").unwrap(), ExitCode::SUCCESS);
        assert!(asked.elapsed() <= Duration::from_millis(1500));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn flapping_is_held_down_then_recovers_after_the_hold() {
    local(async {
        let logs = Logs::capture();
        let service = Service::new(Health::Flapping);
        let mut exabgp = Exabgp::start(
            &args(1, &["--flap-limit", "3", "--flap-hold", "30"]),
            &service,
        );
        // UP, then DOWN, UP, DOWN; the 4th change (to UP) is one too many: held in the DOWN
        // action, so that UP is never sent.
        let mut flaps = Vec::new();
        let mut last_at = Instant::now();
        while let Some(line) = exabgp.command(Duration::from_secs(2)).await {
            last_at = Instant::now();
            exabgp.answer("done\n").await;
            flaps.push(line);
        }
        assert_eq!(flaps.len(), 4, "{flaps:?}");
        assert!(flaps.last().unwrap().contains("med 1000"), "{flaps:?}");
        let text = logs.text();
        assert!(
            text.contains("flapping: 4 changes in 60s, held down until "),
            "{text}"
        );
        service.set(Health::Healthy);
        // The hold began at the check after the last DOWN, one interval later.
        let held = last_at + Duration::from_millis(200);
        let up = exabgp
            .command(Duration::from_secs(60))
            .await
            .expect("recovers after the hold");
        assert_eq!(up, "announce route 192.0.2.0/32 next-hop self med 100");
        let waited = held.elapsed();
        assert!(
            waited >= Duration::from_secs(29),
            "UP during the hold after {waited:?}"
        );
        assert!(logs.text().contains("flap hold over"));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn checks_slow_down_while_down_with_down_interval() {
    local(async {
        let service = Service::new(Health::Failing);
        let mut exabgp = Exabgp::start(
            &args(1, &["--interval", "1", "--down-interval", "10"]),
            &service,
        );
        exabgp.drain_acking(Duration::from_secs(1)).await;
        let before = service.checks().len();
        tokio::time::sleep(Duration::from_secs(60)).await;
        let during = service.checks().len() - before;
        assert!(
            (5..=7).contains(&during),
            "{during} checks in 60 s while DOWN"
        );
        service.set(Health::Healthy);
        tokio::time::sleep(Duration::from_secs(12)).await;
        let checks = service.checks();
        let gap = checks[checks.len() - 1] - checks[checks.len() - 2];
        assert_eq!(gap, Duration::from_secs(1), "back to --interval once UP");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn auto_speaks_the_dialect_exabgp_answers_with() {
    local(async {
        for (answer, first) in [
            ("exabgp 5.0.15\ndone\n", "announce route 192.0.2.0/32 next-hop self med 100"),
            ("exabgp 4.2.25\ndone\n", "announce route 192.0.2.0/32 next-hop self med 100"),
            (
                "{\"version\": \"6.0.0-20261125+uncontrolled\", \"application\": \"exabgp\"}\ndone\n",
                "peer * announce route 192.0.2.0/32 next-hop self med 100",
            ),
        ] {
            let logs = Logs::capture();
            let service = Service::new(Health::Healthy);
            let mut exabgp = Exabgp::start(&args(1, &["--exabgp-api", "auto"]), &service);
            assert_eq!(
                exabgp.command(Duration::from_secs(1)).await.as_deref(),
                Some("system version")
            );
            assert!(
                !service.checks().is_empty(),
                "the checks do not wait for the answer"
            );
            exabgp.answer(answer).await;
            assert_eq!(exabgp.command(Duration::from_secs(1)).await.as_deref(), Some(first));
            // The query's ACK was absorbed: this one settles the announce.
            exabgp.answer("done\n").await;
            tokio::time::sleep(Duration::from_millis(10)).await;
            exabgp.signal(Signal::DumpState);
            tokio::time::sleep(Duration::from_millis(10)).await;
            let text = logs.text();
            assert!(text.contains("ExaBGP answered the version query"), "{text}");
            let dump = text.lines().rfind(|l| l.contains("state dump")).unwrap();
            assert!(dump.contains("announced=192.0.2.0/32 ") && dump.contains("out_of_sync=0"), "{dump}");
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn auto_falls_back_to_4_when_exabgp_does_not_answer() {
    local(async {
        let logs = Logs::capture();
        let service = Service::new(Health::Healthy);
        let mut exabgp = Exabgp::start(
            &args(1, &["--exabgp-api", "auto", "--ack-timeout", "3"]),
            &service,
        );
        assert_eq!(
            exabgp.command(Duration::from_secs(1)).await.as_deref(),
            Some("system version")
        );
        let asked = Instant::now();
        assert_eq!(
            exabgp.command(Duration::from_secs(5)).await.as_deref(),
            Some("announce route 192.0.2.0/32 next-hop self med 100")
        );
        assert_eq!(asked.elapsed(), Duration::from_secs(3));
        assert!(
            logs.text().contains("speaking the ExaBGP 4.2/5.0 dialect"),
            "{}",
            logs.text()
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_wrong_dialect_is_named_when_the_first_command_is_rejected() {
    local(async {
        let logs = Logs::capture();
        let service = Service::new(Health::Healthy);
        let mut exabgp = Exabgp::start(&args(1, &["--exabgp-api", "6"]), &service);
        let first = exabgp.command(Duration::from_secs(1)).await.unwrap();
        assert!(first.starts_with("peer * announce"), "{first}");
        exabgp.answer("error\n").await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        let text = logs.text();
        assert!(
            text.contains("if this ExaBGP is 4.2 or 5.0, run the probe with --exabgp-api 4"),
            "{text}"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn reloads_that_remove_prefixes_do_not_grow_what_the_checker_keeps() {
    local(async {
        let service = Service::new(Health::Healthy);
        let generation = Arc::new(AtomicUsize::new(0));
        let reload_generation = Arc::clone(&generation);
        let reload_service = service.clone();
        let reload: super::Reload<ServiceProbe> = Box::new(move || {
            // Each reload announces another prefix: the previous one is retired.
            let n = reload_generation.fetch_add(1, Ordering::Relaxed) + 1;
            let prefix = format!("198.51.100.{}/32", n % 250);
            let args = args(0, &["--prefix", &prefix]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Ok((settings(&args), ServiceProbe(reload_service.clone())))
        });
        let start = args(0, &["--prefix", "198.51.100.0/32"]);
        let start: Vec<&str> = start.iter().map(String::as_str).collect();
        let mut exabgp = Exabgp::start_with(settings(&start), &service, reload);
        exabgp.drain_acking(Duration::from_millis(500)).await;
        let mut withdrawn = 0;
        for _ in 0..40 {
            exabgp.signal(Signal::Hangup);
            let lines = exabgp.drain_acking(Duration::from_millis(500)).await;
            withdrawn += lines.iter().filter(|l| l.starts_with("withdraw")).count();
            let kept = super::checker::RETIRED_KEPT.with(|kept| kept.get());
            assert!(
                kept <= 1,
                "{kept} retired prefixes kept after {withdrawn} withdraws"
            );
        }
        assert_eq!(withdrawn, 40, "each reload withdrew the prefix it removed");
    })
    .await;
}

// Events (`--events`), in-process: tests/events.rs.
mod events;
// Required probes (`--require`), in-process: tests/require.rs.
mod require;
