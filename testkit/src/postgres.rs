#![allow(missing_docs)]
//! Real PostgreSQL servers for tests: initdb + postgres in a temporary directory, on free
//! loopback ports, run as an unprivileged user (created when the tests run as root, since
//! PostgreSQL refuses to run as root).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{ChildGuard, free_port, require_tool, temp_dir, wait_for};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Gid, Pid, Uid, User, chown};

pub const TEST_USER: &str = "exaprobe-test";
pub const PASSWORD: &str = "s3cret-pw";

/// The PostgreSQL programs and the account they run as.
#[derive(Clone)]
pub struct Installation {
    pub bin: PathBuf,
    /// uid/gid to run the servers as (None: the current, unprivileged user).
    pub account: Option<(Uid, Gid)>,
}

impl Installation {
    /// None (a visible skip) when PostgreSQL is missing on a developer machine.
    pub fn find() -> Option<Self> {
        let initdb = require_tool(
            "initdb",
            "apt-get install postgresql",
            &[Path::new("/usr/lib/postgresql/15/bin")],
        )?;
        let bin = initdb
            .parent()
            .expect("initdb has a directory")
            .to_path_buf();
        let account = if nix::unistd::geteuid().is_root() {
            if User::from_name(TEST_USER).ok().flatten().is_none() {
                // Concurrent test binaries may race here: the loser's failure is harmless.
                let _ = Command::new("useradd")
                    .args([
                        "--system",
                        "--no-create-home",
                        "--shell",
                        "/usr/sbin/nologin",
                        TEST_USER,
                    ])
                    .stderr(Stdio::null())
                    .status();
            }
            let user = User::from_name(TEST_USER)
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("cannot create the system user {TEST_USER} (useradd)"));
            Some((user.uid, user.gid))
        } else {
            None
        };
        Some(Installation { bin, account })
    }

    /// A command for a PostgreSQL program, run as the test account.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.account {
            command.uid(uid.as_raw()).gid(gid.as_raw());
        }
        command
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LC_ALL", "C");
        command
    }

    /// A fresh directory owned by the test account.
    pub fn directory(&self) -> tempfile::TempDir {
        let dir = temp_dir();
        self.own(dir.path());
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    pub fn own(&self, path: &Path) {
        if let Some((uid, gid)) = self.account {
            chown(path, Some(uid), Some(gid)).unwrap();
        }
    }

    fn run(&self, command: &mut Command) {
        let output = command.output().expect("run a PostgreSQL program");
        assert!(
            output.status.success(),
            "{command:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// initdb a primary whose TCP logins need a SCRAM password (replication is trusted).
    pub fn primary(&self, dir: &Path, name: &str, extra: &[&str]) -> Server {
        let data = dir.join(name);
        self.run(
            self.command("initdb")
                .args([
                    "-D",
                    data.to_str().unwrap(),
                    "-U",
                    "postgres",
                    "-N",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ])
                .args(["--auth-local=trust", "--auth-host=scram-sha-256"]),
        );
        let hba = "local all all trust\n\
                   host replication all 127.0.0.1/32 trust\n\
                   host all all 127.0.0.1/32 scram-sha-256\n";
        fs::write(data.join("pg_hba.conf"), hba).unwrap();
        self.own(&data.join("pg_hba.conf"));
        let server = self.start(dir, &data, extra);
        server.execute_local("ALTER ROLE postgres PASSWORD 's3cret-pw'");
        server
    }

    /// A streaming replica of `primary`, made with pg_basebackup -R.
    pub fn replica(&self, dir: &Path, name: &str, primary: &Server) -> Server {
        let data = dir.join(name);
        self.run(self.command("pg_basebackup").args([
            "-h",
            "127.0.0.1",
            "-p",
            &primary.port.to_string(),
            "-U",
            "postgres",
            "-D",
            data.to_str().unwrap(),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "-N",
        ]));
        self.start(dir, &data, &[])
    }

    /// Start `postgres` in the foreground on a free port and wait until it accepts logins.
    pub fn start(&self, dir: &Path, data: &Path, extra: &[&str]) -> Server {
        let mut server = Server {
            port: free_port(),
            socket_dir: dir.to_path_buf(),
            data: data.to_path_buf(),
            log: data.with_extension("log"),
            guard: None,
            bin: self.bin.clone(),
            installation: self.clone(),
            extra: extra.iter().map(ToString::to_string).collect(),
        };
        server.restart();
        server
    }
}

/// One running PostgreSQL server, stopped (immediate shutdown) when dropped.
pub struct Server {
    pub port: u16,
    pub socket_dir: PathBuf,
    pub data: PathBuf,
    pub log: PathBuf,
    guard: Option<ChildGuard>,
    bin: PathBuf,
    installation: Installation,
    /// The `-c` settings it was started with.
    extra: Vec<String>,
}

impl Server {
    /// Start (again, after [`Server::stop`]) on the same port and data directory, with the
    /// same settings, and wait until it accepts logins. The log is appended to.
    pub fn restart(&mut self) {
        assert!(self.guard.is_none(), "postgres is already running");
        let log_file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut command = self.installation.command("postgres");
        command
            .args([
                "-D",
                self.data.to_str().unwrap(),
                "-p",
                &self.port.to_string(),
                "-k",
                self.socket_dir.to_str().unwrap(),
            ])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args([
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "shared_buffers=16MB",
            ])
            .args([
                "-c",
                "max_wal_senders=4",
                "-c",
                "wal_level=replica",
                "-c",
                "hot_standby=on",
            ])
            .args([
                "-c",
                "wal_receiver_status_interval=1s",
                "-c",
                "wal_retrieve_retry_interval=200ms",
            ])
            .args(["-c", "dynamic_shared_memory_type=mmap"]);
        for setting in &self.extra {
            command.args(["-c", setting]);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        self.guard = Some(ChildGuard::spawn(&mut command));
        self.wait_ready();
    }

    /// `pg_ctl stop -m fast`: every session is ended with `57P01`, then the server exits.
    /// Waits for the postmaster to exit.
    pub fn stop_fast(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        let output = self
            .installation
            .command("pg_ctl")
            .args([
                "stop",
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "fast",
                "-w",
            ])
            .output()
            .expect("run pg_ctl");
        assert!(
            output.status.success(),
            "pg_ctl stop -m fast: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            guard.wait_timeout(Duration::from_secs(30)).is_some(),
            "postgres did not stop"
        );
    }

    pub fn pid(&self) -> u32 {
        self.guard.as_ref().expect("server running").pid()
    }

    pub fn wait_ready(&self) {
        let pg_isready = self.bin.join("pg_isready");
        let port = self.port.to_string();
        let log = self.log.clone();
        wait_for(
            &format!("postgres on port {port} (log {})", log.display()),
            Duration::from_secs(60),
            || {
                Command::new(&pg_isready)
                    .args(["-q", "-h", "127.0.0.1", "-p", &port])
                    .status()
                    .ok()
                    .filter(|s| s.success())
            },
        );
    }

    /// DSN over TCP (password needed).
    pub fn tcp_dsn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=disable",
            self.port
        )
    }

    /// DSN over the Unix socket (trusted).
    pub fn socket_dsn(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.socket_dir.display(),
            self.port
        )
    }

    /// Run SQL over the Unix socket as the superuser, returning the first column of each row.
    pub fn query_local(&self, sql: &str) -> Vec<Option<String>> {
        let output = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-h",
                self.socket_dir.to_str().unwrap(),
                "-p",
                &self.port.to_string(),
            ])
            .args(["-U", "postgres", "-d", "postgres", "-c", sql])
            .env_clear()
            .env("LC_ALL", "C")
            .output()
            .expect("run psql");
        assert!(
            output.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| (!line.is_empty()).then(|| line.to_string()))
            .collect()
    }

    pub fn execute_local(&self, sql: &str) {
        self.query_local(sql);
    }

    /// The server's processes: the postmaster and its children.
    pub fn processes(&self) -> Vec<Pid> {
        family(self.pid())
    }

    /// Signal the postmaster and every backend (SIGSTOP freezes the whole server).
    pub fn signal_all(&self, signal: Signal) {
        for pid in self.processes() {
            let _ = kill(pid, signal);
        }
    }

    /// Signal the postmaster only (SIGTERM: smart shutdown, waiting for clients).
    pub fn signal_postmaster(&self, signal: Signal) {
        let _ = kill(Pid::from_raw(self.pid() as i32), signal);
    }

    /// Fast shutdown (SIGINT), waiting for the postmaster to exit.
    pub fn stop(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            guard.signal(Signal::SIGINT);
            assert!(
                guard.wait_timeout(Duration::from_secs(30)).is_some(),
                "postgres did not stop"
            );
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            for pid in family(guard.pid()) {
                let _ = kill(pid, Signal::SIGCONT);
            }
            guard.signal(Signal::SIGQUIT);
            let _ = guard.wait_timeout(Duration::from_secs(10));
        }
    }
}

/// A process and its direct children (a postmaster and its backends).
fn family(root: u32) -> Vec<Pid> {
    let root = root as i32;
    let mut pids = vec![Pid::from_raw(root)];
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if ppid == Some(root) {
                pids.push(Pid::from_raw(pid));
            }
        }
    }
    pids
}
