//! Test helpers shared by exaprobe's crates (dev-dependency only).
//!
//! Real servers are started by the tests themselves on loopback ports; these helpers find the
//! ports and programs, await readiness by polling a condition (never a fixed sleep standing in
//! for synchronisation), and make sure no child outlives its test.

use std::fs::{File, OpenOptions};
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Where tests pick their ports: below Linux's ephemeral range (32768-60999 by default), so no
/// outgoing connection of a parallel test takes a port between its choice and its server's bind.
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A TCP port on 127.0.0.1 (free for UDP too) that no other test process is using.
///
/// A port bound to 0 and released is in the ephemeral range, where a parallel test's outgoing
/// connection may take it before the server is started on it (nextest runs every test in its own
/// process). These ports come from [`TEST_PORTS`] instead, each reserved across processes by an
/// exclusive lock on a file named after it, held until this process exits.
pub fn free_port() -> u16 {
    static HELD: Mutex<Vec<Flock<File>>> = Mutex::new(Vec::new());
    let dir = std::env::temp_dir().join("exaprobe-test-ports");
    if std::fs::create_dir(&dir).is_ok() {
        // Shared by every user's test runs, as /tmp is.
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777));
    }
    let span = u64::from(TEST_PORTS.end - TEST_PORTS.start);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| u64::from(elapsed.subsec_nanos()));
    let start = u64::from(std::process::id()).wrapping_mul(7919) ^ nanos;
    for offset in 0..span {
        let port = TEST_PORTS.start + ((start + offset) % span) as u16;
        let Ok(file) = reservation_file(&dir.join(port.to_string())) else {
            continue;
        };
        let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port)).is_ok()
        {
            HELD.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(lock);
            return port;
        }
    }
    panic!(
        "no free port in {TEST_PORTS:?} on 127.0.0.1 (or {} cannot be written)",
        dir.display()
    );
}

/// The lock file of one port: opened for reading when another user made it (a lock needs no
/// write access), else created.
fn reservation_file(path: &Path) -> std::io::Result<File> {
    match File::open(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path),
        opened => opened,
    }
}

/// True when running under CI (`CI` set to anything but empty/`false`/`0`).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Locate a program needed by a test, in PATH or in the given extra directories.
///
/// Missing under CI: panics with what to install. Missing on a developer's machine: prints the
/// same message and returns `None`, so the test can return early (a visible skip).
pub fn require_tool(program: &str, install_hint: &str, extra_dirs: &[&Path]) -> Option<PathBuf> {
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let found = extra_dirs
        .iter()
        .map(|d| d.to_path_buf())
        .chain(path_dirs)
        .map(|d| d.join(program))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        let message = format!(
            "required tool '{program}' not found: install it ({install_hint}), \
             or run scripts/test which installs every test dependency"
        );
        if under_ci() {
            panic!("{message}");
        }
        eprintln!("SKIPPED: {message}");
    }
    found
}

/// Poll `condition` every 20 ms until it returns `Some`, or panic after `timeout` with `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut condition: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = condition() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True once something accepts TCP connections on 127.0.0.1:`port`.
pub fn tcp_port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// A child process that is killed (SIGKILL, then reaped) when dropped, so no test leaks one.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
}

impl ChildGuard {
    /// Spawn `command`, panicking with its program name when it cannot start.
    pub fn spawn(command: &mut Command) -> Self {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", command.get_program()));
        ChildGuard { child: Some(child) }
    }

    /// Wrap an already spawned child.
    pub fn new(child: Child) -> Self {
        ChildGuard { child: Some(child) }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("child present").id()
    }

    /// Send a signal (SIGTERM, SIGSTOP, SIGCONT, ...).
    pub fn signal(&self, signal: Signal) {
        let _ = kill(Pid::from_raw(self.pid() as i32), signal);
    }

    /// Access the child (its pipes, `try_wait`).
    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("child present")
    }

    /// Wait up to `timeout` for the process to exit, returning its status if it did.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child().try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Take the child out, so it is not killed on drop.
    pub fn into_inner(mut self) -> Child {
        self.child.take().expect("child present")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A fresh temporary directory, removed on drop.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("exaprobe-test-")
        .tempdir()
        .expect("create a temporary directory")
}
pub mod certs;
pub mod cli;
pub mod dns;
pub mod exabgp;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod http;
pub mod netns;
pub mod ntp;
pub mod postgres;
pub mod redis;
pub mod sentinel;
pub mod spawned;
pub mod tcp;
pub mod unbound;
#[cfg(feature = "tokio")]
pub mod wait;

/// A real HTTP server (Python's http.server) serving `dir` on 127.0.0.1:`port`, listening
/// when this returns; `None` (after saying why) when python3 is missing outside CI.
pub fn http_server(dir: &Path, port: u16) -> Option<ChildGuard> {
    let python = require_tool("python3", "Debian package python3", &[])?;
    let server = ChildGuard::spawn(
        Command::new(python)
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    wait_for("the HTTP server to listen", Duration::from_secs(10), || {
        tcp_port_open(port).then_some(())
    });
    Some(server)
}
