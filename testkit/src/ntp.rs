//! NTP servers for tests, on free loopback ports: a real chronyd (synchronised to its own
//! clock with `local stratum N`, or unsynchronised), and a hostile server that answers as the
//! test tells it (a shifted clock, a kiss-o'-death, leap 3, the wrong origin, garbage, from
//! another port, or not at all).
//!
//! chronyd runs with `-x`: it never touches the host's clock. It listens on 127.0.0.1 only
//! (`-4`, `bindaddress`), has no command socket (`cmdport 0`, `bindcmdaddress /`), no source
//! but its own clock, and keeps its pid file and drift file in its own temporary directory.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{ChildGuard, free_port, require_tool, temp_dir, wait_for};

/// A running chronyd; killed on drop.
pub struct Chrony {
    /// Its NTP port on 127.0.0.1.
    pub port: u16,
    /// The process (to stop it).
    pub child: ChildGuard,
    /// Its configuration, pid file, drift file and log (`chronyd.log`).
    pub dir: tempfile::TempDir,
}

/// chronyd answering on a free port: with `Some(stratum)` synchronised to its own clock at
/// that stratum (`local stratum N`), with `None` unsynchronised (it answers leap 3, stratum 0).
/// `None` (after a message) when chronyd is not installed.
pub fn chrony(local_stratum: Option<u8>) -> Option<Chrony> {
    let deps = std::env::var_os("EXAPROBE_DEPS_DIR")
        .map_or_else(|| "/opt/exaprobe-deps".into(), std::path::PathBuf::from);
    let unpacked = deps.join("chrony/usr/sbin");
    let chronyd = require_tool(
        "chronyd",
        "Debian package chrony: scripts/install-test-deps unpacks it into /opt/exaprobe-deps/chrony",
        &[unpacked.as_path(), Path::new("/usr/sbin")],
    )?;
    let dir = temp_dir();
    let port = free_port();
    let mut config = format!(
        "allow 127.0.0.1\nport {port}\nbindaddress 127.0.0.1\ncmdport 0\nbindcmdaddress /\n\
         pidfile {dir}/chronyd.pid\ndriftfile {dir}/drift\n",
        dir = dir.path().display()
    );
    if let Some(stratum) = local_stratum {
        config.push_str(&format!("local stratum {stratum}\n"));
    }
    let conf = dir.path().join("chrony.conf");
    std::fs::write(&conf, config).expect("write chrony.conf");
    let log = std::fs::File::create(dir.path().join("chronyd.log")).expect("chronyd.log");
    let mut command = Command::new(chronyd);
    // -x: never adjust the host's clock. -d: stay in the foreground, log to stderr. -4: IPv4.
    command.args(["-x", "-d", "-4", "-f"]).arg(&conf);
    if nix::unistd::geteuid().is_root() {
        // Stay root rather than switch to the packaged _chrony user (an unpacked chronyd has none).
        command.args(["-u", "root"]);
    } else {
        command.arg("-U");
    }
    let child = ChildGuard::spawn(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log),
    );
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    wait_for("chronyd to answer NTP", Duration::from_secs(10), || {
        ask(address).map(|_| ())
    });
    Some(Chrony { port, child, dir })
}

impl Chrony {
    /// Where it answers.
    pub fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

/// Ask `server` once (200 ms): its reply's first 48 bytes, or `None`.
pub fn ask(server: SocketAddr) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket.connect(server).ok()?;
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .ok()?;
    let mut request = [0u8; 48];
    request[0] = 0x23; // NTPv4, client
    request[40..].copy_from_slice(&now(0.0).to_be_bytes());
    socket.send(&request).ok()?;
    let mut reply = [0u8; 512];
    let received = socket.recv(&mut reply).ok()?;
    (received >= 48 && reply[24..32] == request[40..48]).then(|| reply[..48].to_vec())
}

/// What the hostile server does with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// Answer as a server would, with these header fields.
    Answer(Header),
    /// Answer, with an origin timestamp that is not the request's transmit timestamp.
    WrongOrigin,
    /// Send 5 bytes that are not NTP.
    Garbage,
    /// Answer correctly, but from another port than the one asked.
    FromAnotherPort,
    /// First a wrong origin and garbage, then the right answer: a client must take the last.
    StraysThenAnswer,
    /// Say nothing.
    Silent,
}

/// The header fields of the hostile server's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Leap indicator (3: unsynchronised).
    pub leap: u8,
    /// Stratum (0 with a kiss code in `reference_id`: a kiss-o'-death).
    pub stratum: u8,
    /// Reference id (an IPv4 address above stratum 1, a kiss code at stratum 0).
    pub reference_id: [u8; 4],
    /// Root delay, seconds.
    pub root_delay: f64,
    /// Root dispersion, seconds.
    pub root_dispersion: f64,
    /// How far the server's clock is from the host's, seconds.
    pub offset: f64,
}

impl Default for Header {
    /// A synchronised stratum 2 server on the host's clock, 1 ms root delay and dispersion.
    fn default() -> Self {
        Header {
            leap: 0,
            stratum: 2,
            reference_id: [192, 0, 2, 1],
            root_delay: 0.001,
            root_dispersion: 0.001,
            offset: 0.0,
        }
    }
}

impl Header {
    /// A kiss-o'-death with this code (`RATE`, `DENY`, `RSTR`, ...).
    pub fn kiss(code: &[u8; 4]) -> Header {
        Header {
            stratum: 0,
            reference_id: *code,
            ..Header::default()
        }
    }

    fn reply_to(&self, request: &[u8]) -> [u8; 48] {
        let mut reply = [0u8; 48];
        let version = (request[0] >> 3) & 0b111;
        reply[0] = (self.leap << 6) | (version << 3) | 4;
        reply[1] = self.stratum;
        reply[4..8].copy_from_slice(&short(self.root_delay).to_be_bytes());
        reply[8..12].copy_from_slice(&short(self.root_dispersion).to_be_bytes());
        reply[12..16].copy_from_slice(&self.reference_id);
        let now = now(self.offset).to_be_bytes();
        reply[16..24].copy_from_slice(&now);
        reply[24..32].copy_from_slice(&request[40..48]);
        reply[32..40].copy_from_slice(&now);
        reply[40..48].copy_from_slice(&now);
        reply
    }
}

/// A misbehaving NTP server on a free port, serving from a thread until dropped.
pub struct HostileNtp {
    /// Where it listens.
    pub address: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostileNtp {
    /// Serve `behaviour` on a free loopback port.
    pub fn start(behaviour: Behaviour) -> HostileNtp {
        let socket =
            UdpSocket::bind(("127.0.0.1", free_port())).expect("bind the hostile NTP server");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let address = socket.local_addr().expect("local address");
        let behaviour = Arc::new(Mutex::new(behaviour));
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (behaviour, requests, stop) = (behaviour.clone(), requests.clone(), stop.clone());
            std::thread::spawn(move || serve(&socket, &behaviour, &requests, &stop))
        };
        HostileNtp {
            address,
            behaviour,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// Change what it does from the next request on.
    pub fn set(&self, behaviour: Behaviour) {
        *self
            .behaviour
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = behaviour;
    }

    /// How many requests it has received.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for HostileNtp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    socket: &UdpSocket,
    behaviour: &Mutex<Behaviour>,
    requests: &AtomicUsize,
    stop: &AtomicBool,
) {
    let mut buffer = [0u8; 512];
    while !stop.load(Ordering::SeqCst) {
        let Ok((received, client)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        if received < 48 {
            continue;
        }
        requests.fetch_add(1, Ordering::SeqCst);
        let request = &buffer[..48];
        let behaviour = behaviour
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let good = Header::default().reply_to(request);
        let mut wrong_origin = good;
        wrong_origin[24] ^= 0xff;
        let _ = match behaviour {
            Behaviour::Answer(header) => socket.send_to(&header.reply_to(request), client),
            Behaviour::WrongOrigin => socket.send_to(&wrong_origin, client),
            Behaviour::Garbage => socket.send_to(b"hello", client),
            Behaviour::FromAnotherPort => {
                UdpSocket::bind("127.0.0.1:0").and_then(|other| other.send_to(&good, client))
            }
            Behaviour::StraysThenAnswer => socket
                .send_to(&wrong_origin, client)
                .and_then(|_| socket.send_to(b"hello", client))
                .and_then(|_| socket.send_to(&good, client)),
            Behaviour::Silent => Ok(0),
        };
    }
}

/// The host's clock plus `offset` seconds as an NTP timestamp (32.32 seconds since 1900).
fn now(offset: f64) -> u64 {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs_f64()
        + offset;
    let ntp = unix + 2_208_988_800.0;
    (ntp * 4_294_967_296.0) as u64
}

/// Seconds as NTP's 16.16 short format.
fn short(seconds: f64) -> u32 {
    (seconds * 65_536.0) as u32
}
