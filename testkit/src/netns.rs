//! Network namespaces of the test's own, joined by veth pairs, and an ICMP echo responder that
//! misbehaves on purpose (late, from a wrong address, with a wrong sequence number).
//!
//! Everything lives inside namespaces the test creates and deletes on drop (unique names per
//! test process): no address, route or firewall rule of the host is touched. Loss is made with
//! nftables inside a namespace (this kernel has no `tc netem`), delay with [`Responder`] while
//! the namespace's own kernel echo replies are switched off (`icmp_echo_ignore_all`).

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use socket2::{Domain, Protocol, Socket, Type};

/// True when this process can make network namespaces (root). Elsewhere than CI a test returns
/// early with the reason printed; under CI it fails, as every missing tool does.
pub fn available() -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    assert!(!crate::under_ci(), "network namespace tests need root");
    eprintln!("SKIPPED: network namespaces need root");
    false
}

/// A network namespace with `lo` up, deleted when dropped.
#[derive(Debug)]
pub struct Netns {
    /// Its name (`ip netns exec NAME ...`).
    pub name: String,
}

impl Netns {
    /// A new namespace named after `tag`, the process and a counter (tests run in parallel
    /// processes). Panics when namespaces cannot be made: these tests need root.
    pub fn create(tag: &str) -> Netns {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let serial = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("exaprobe-{tag}-{}-{serial}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        run("ip", &["netns", "add", &name]);
        let netns = Netns { name };
        netns.ip(&["link", "set", "lo", "up"]);
        netns
    }

    /// `ip ARGS` inside the namespace; panics on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// `PROGRAM ARGS` inside the namespace; panics on failure.
    pub fn exec(&self, program: &str, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", &self.name, program];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// A command running `program` inside the namespace, for the caller to start.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Set a sysctl of the namespace (`net.ipv4.ping_group_range`, ...).
    pub fn sysctl(&self, key: &str, value: &str) {
        self.exec("sysctl", &["-q", "-w", &format!("{key}={value}")]);
    }

    /// Load an nftables ruleset into the namespace (`nft -f -`).
    pub fn nft(&self, ruleset: &str) {
        let mut child = self
            .command("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nft (Debian package nftables)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ruleset.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "nft -f: {ruleset}");
    }

    /// Drop `percent` % of the echo requests arriving in the namespace (100: all of them),
    /// replacing any earlier rule of this helper.
    pub fn drop_echo_requests(&self, percent: u32) {
        let _ = self
            .command("nft")
            .args(["delete", "table", "inet", "exaprobe_loss"])
            .stderr(Stdio::null())
            .status();
        let verdict = if percent >= 100 {
            "drop".to_string()
        } else {
            format!("numgen random mod 100 < {percent} drop")
        };
        self.nft(&format!(
            "table inet exaprobe_loss {{\n chain input {{\n  type filter hook input priority 0; policy accept;\n  icmp type echo-request {verdict}\n  icmpv6 type echo-request {verdict}\n }}\n}}\n"
        ));
    }

    /// Write the `/etc/hosts` that programs started by `ip netns exec` here see (ip bind-mounts
    /// `/etc/netns/NAME/hosts` over it); rewritten in place, so a running program sees the
    /// change. Removed with the namespace.
    pub fn hosts_file(&self, content: &str) {
        let dir = format!("/etc/netns/{}", self.name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(format!("{dir}/hosts"))
            .and_then(|mut file| file.write_all(content.as_bytes()))
            .unwrap();
    }

    /// Move the calling thread into the namespace: the sockets it opens from now on (and the
    /// tasks of a current-thread runtime on it) live there. For a test process's own thread.
    pub fn enter(&self) {
        let file = File::open(format!("/run/netns/{}", self.name)).expect("the namespace file");
        nix::sched::setns(file, CloneFlags::CLONE_NEWNET).expect("setns");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.name));
    }
}

/// Run a program; panic with its output when it fails.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("{program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Two namespaces joined by a veth pair: `near` (where a probe runs) with `veth0`
/// 198.51.100.1/24 and 2001:db8:1::1/64, and `far` with `veth1` 198.51.100.2/24 and
/// 2001:db8:1::2/64; `near`'s default routes go through `far`.
#[derive(Debug)]
pub struct Link {
    /// The probe's side.
    pub near: Netns,
    /// The upstream's side.
    pub far: Netns,
}

impl Link {
    /// `near`'s IPv4 address.
    pub const NEAR4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    /// `far`'s IPv4 address (the default gateway of `near`).
    pub const FAR4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    /// `near`'s IPv6 address.
    pub const NEAR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
    /// `far`'s IPv6 address (the IPv6 default gateway of `near`).
    pub const FAR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);

    /// Make both namespaces, the veth pair, the addresses and `near`'s default routes.
    pub fn new(tag: &str) -> Link {
        let near = Netns::create(&format!("{tag}-n"));
        let far = Netns::create(&format!("{tag}-f"));
        for netns in [&near, &far] {
            // No duplicate address detection: addresses are usable at once.
            netns.sysctl("net.ipv6.conf.default.accept_dad", "0");
            netns.sysctl("net.ipv6.conf.all.accept_dad", "0");
        }
        near.ip(&[
            "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", &far.name,
        ]);
        near.ip(&["address", "add", "198.51.100.1/24", "dev", "veth0"]);
        near.ip(&[
            "address",
            "add",
            "2001:db8:1::1/64",
            "dev",
            "veth0",
            "nodad",
        ]);
        far.ip(&["address", "add", "198.51.100.2/24", "dev", "veth1"]);
        far.ip(&[
            "address",
            "add",
            "2001:db8:1::2/64",
            "dev",
            "veth1",
            "nodad",
        ]);
        near.ip(&["link", "set", "veth0", "up"]);
        far.ip(&["link", "set", "veth1", "up"]);
        near.ip(&["route", "add", "default", "via", "198.51.100.2"]);
        near.ip(&["-6", "route", "add", "default", "via", "2001:db8:1::2"]);
        for (netns, device) in [(&near, "veth0"), (&far, "veth1")] {
            crate::wait_for(
                &format!("{device} up with its link-local address"),
                Duration::from_secs(10),
                || {
                    let link = netns.ip(&["-o", "link", "show", "dev", device]);
                    let local = netns.ip(&[
                        "-6", "-o", "address", "show", "dev", device, "scope", "link",
                    ]);
                    (link.contains("state UP")
                        && local.contains("inet6")
                        && !local.contains("tentative"))
                    .then_some(())
                },
            );
        }
        Link { near, far }
    }

    /// Add another address on `far`'s veth (a second upstream, or a wrong source).
    pub fn add_far_address(&self, address: IpAddr) {
        let prefix = if address.is_ipv4() { "/24" } else { "/64" };
        let text = format!("{address}{prefix}");
        let mut args = vec!["address", "add", &text, "dev", "veth1"];
        if address.is_ipv6() {
            args.push("nodad");
        }
        self.far.ip(&args);
    }

    /// Switch off the kernel's own echo replies in `far`, so a [`Responder`] answers instead.
    pub fn silence_far_kernel(&self) {
        self.far.sysctl("net.ipv4.icmp_echo_ignore_all", "1");
        self.far.sysctl("net.ipv6.icmp.echo_ignore_all", "1");
    }
}

/// How a [`Responder`] answers echo requests.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Answer this long after the request arrived.
    pub delay: Duration,
    /// Answer from this address (bound to the raw socket) instead of the one asked.
    pub source: Option<IpAddr>,
    /// Add this to the sequence number of each answer (0: the right one).
    pub sequence_offset: u16,
}

/// A userspace ICMP echo responder in a namespace (its kernel's replies switched off by
/// [`Link::silence_far_kernel`]): one raw socket per family, a thread, stopped on drop.
#[derive(Debug)]
pub struct Responder {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    answered: Arc<AtomicUsize>,
}

impl Responder {
    /// Answer the echo requests reaching `netns` (IPv4 and IPv6) as `behaviour` says.
    pub fn start(netns: &Netns, behaviour: Behaviour) -> Responder {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        for v6 in [false, true] {
            if behaviour
                .source
                .is_some_and(|source| source.is_ipv6() != v6)
            {
                continue;
            }
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let path = format!("/run/netns/{}", netns.name);
            let (stop, answered, behaviour) =
                (Arc::clone(&stop), Arc::clone(&answered), behaviour.clone());
            threads.push(std::thread::spawn(move || {
                let file = File::open(path).expect("the namespace file");
                nix::sched::setns(file, CloneFlags::CLONE_NEWNET).expect("setns");
                // A raw socket bound to an address only receives what is sent to it: listen on
                // an unbound one, answer from the bound one.
                let listener = echo_socket(v6, None);
                let sender = behaviour.source.map(|source| echo_socket(v6, Some(source)));
                ready_tx.send(()).unwrap();
                serve(listener, sender, v6, &behaviour, &stop, &answered);
            }));
            ready_rx
                .recv_timeout(Duration::from_secs(5))
                .expect("responder socket");
        }
        Responder {
            stop,
            threads,
            answered,
        }
    }

    /// How many answers were sent so far.
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::Relaxed)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn echo_socket(v6: bool, source: Option<IpAddr>) -> Socket {
    let (domain, protocol) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    let socket = Socket::new(domain, Type::RAW, Some(protocol)).expect("raw ICMP socket (root)");
    if let Some(source) = source {
        socket
            .bind(&SocketAddr::new(source, 0).into())
            .expect("bind the responder's source");
    }
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    socket
}

/// Answer until stopped: each request is queued with its due time and sent when due.
fn serve(
    socket: Socket,
    sender: Option<Socket>,
    v6: bool,
    behaviour: &Behaviour,
    stop: &AtomicBool,
    answered: &AtomicUsize,
) {
    // std's datagram calls are plain recvfrom/sendto: they serve a raw socket as well.
    let socket = std::net::UdpSocket::from(socket);
    let sender = sender.map(std::net::UdpSocket::from);
    let mut pending: VecDeque<(Instant, Vec<u8>, SocketAddr)> = VecDeque::new();
    let mut buffer = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        while pending
            .front()
            .is_some_and(|(due, _, _)| *due <= Instant::now())
        {
            let (_, packet, to) = pending.pop_front().unwrap();
            // Counted before it leaves: the probe may act on the reply (and the test read the
            // count) before this thread runs again.
            answered.fetch_add(1, Ordering::Relaxed);
            if sender
                .as_ref()
                .unwrap_or(&socket)
                .send_to(&packet, to)
                .is_err()
            {
                answered.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let Ok((size, from)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        if let Some(reply) = echo_reply(&buffer[..size], v6, behaviour.sequence_offset) {
            pending.push_back((Instant::now() + behaviour.delay, reply, from));
        }
    }
}

/// The echo reply to an echo request (an IPv4 packet with its header, or an ICMPv6 message),
/// with `sequence_offset` added to its sequence number; `None` for anything else.
pub fn echo_reply(packet: &[u8], v6: bool, sequence_offset: u16) -> Option<Vec<u8>> {
    let icmp = if v6 {
        packet
    } else {
        let header = usize::from(packet.first()? & 0x0f) * 4;
        packet.get(header..)?
    };
    let (request, reply) = if v6 { (128, 129) } else { (8, 0) };
    if icmp.len() < 8 || icmp[0] != request || icmp[1] != 0 {
        return None;
    }
    let mut answer = icmp.to_vec();
    answer[0] = reply;
    let sequence = u16::from_be_bytes([answer[6], answer[7]]).wrapping_add(sequence_offset);
    answer[6..8].copy_from_slice(&sequence.to_be_bytes());
    answer[2..4].copy_from_slice(&[0, 0]);
    if !v6 {
        // ICMPv6 checksums are the kernel's job on a raw socket; ICMPv4's are ours.
        let sum = checksum(&answer);
        answer[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    Some(answer)
}

/// The Internet checksum (RFC 1071).
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_to_an_ipv4_echo_request_only() {
        // IPv4 header (20 bytes, IHL 5), then an echo request id 0x1234 seq 7 payload "hi".
        let mut packet = vec![0x45u8; 1];
        packet.extend_from_slice(&[0; 19]);
        let mut request = vec![8, 0, 0, 0, 0x12, 0x34, 0, 7, b'h', b'i'];
        let sum = checksum(&request);
        request[2..4].copy_from_slice(&sum.to_be_bytes());
        packet.extend_from_slice(&request);
        let reply = echo_reply(&packet, false, 0).unwrap();
        assert_eq!(&reply[..2], &[0, 0]);
        assert_eq!(&reply[4..], &request[4..]);
        assert_eq!(checksum(&reply), 0, "a valid checksum sums to zero");
        let shifted = echo_reply(&packet, false, 1).unwrap();
        assert_eq!(&shifted[6..8], &[0, 8]);
        packet[20] = 0;
        assert!(
            echo_reply(&packet, false, 0).is_none(),
            "a reply is not answered"
        );
        assert!(echo_reply(&[0x45], false, 0).is_none());
    }
}
