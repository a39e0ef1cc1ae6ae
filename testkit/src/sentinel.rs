//! Redis Sentinels for tests: three real ones (`redis-server --sentinel`) monitoring a master,
//! with a forced failover; and a fake one that floods its subscribers.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::redis::{Redis, cli, server_program, subscribed_clients};
use crate::{ChildGuard, free_port, tcp_port_open, temp_dir, wait_for};

/// Three real Sentinels monitoring one master (quorum 2); each killed on drop.
pub struct Sentinels {
    /// Their ports on 127.0.0.1, in start order.
    pub ports: Vec<u16>,
    /// The monitored master's name.
    pub name: String,
    children: Vec<Option<ChildGuard>>,
    _dir: tempfile::TempDir,
}

impl Sentinels {
    /// Three Sentinels monitoring `master` as `name`, started and waited for until each knows
    /// the master's `replicas` and the two other Sentinels. `None` when redis-server is missing.
    pub fn start(master: &Redis, replicas: usize, name: &str) -> Option<Sentinels> {
        let server = server_program()?;
        let dir = temp_dir();
        let mut ports = Vec::new();
        let mut children = Vec::new();
        for index in 0..3 {
            let port = free_port();
            let config = dir.path().join(format!("sentinel-{index}.conf"));
            std::fs::write(
                &config,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                     sentinel monitor {name} 127.0.0.1 {master} 2\n\
                     sentinel down-after-milliseconds {name} 1000\n\
                     sentinel failover-timeout {name} 5000\n",
                    dir = dir.path().display(),
                    master = master.port,
                ),
            )
            .expect("write the sentinel's configuration");
            children.push(Some(ChildGuard::spawn(
                Command::new(&server)
                    .arg(&config)
                    .arg("--sentinel")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            )));
            ports.push(port);
        }
        for &port in &ports {
            wait_for("a sentinel to listen", Duration::from_secs(10), || {
                tcp_port_open(port).then_some(())
            });
        }
        let sentinels = Sentinels {
            ports,
            name: name.to_string(),
            children,
            _dir: dir,
        };
        for &port in &sentinels.ports {
            wait_for(
                "each sentinel to know the replicas and the other sentinels",
                Duration::from_secs(30),
                || {
                    let master = cli(port, &["SENTINEL", "MASTER", name]);
                    (field(&master, "num-slaves") == Some(replicas.to_string())
                        && field(&master, "num-other-sentinels") == Some("2".into()))
                    .then_some(())
                },
            );
        }
        Some(sentinels)
    }

    /// `SENTINEL FAILOVER` on the first live Sentinel, repeated until one accepts it (a replica
    /// becomes suitable a moment after it is discovered).
    pub fn failover(&self) {
        wait_for(
            "a sentinel to accept SENTINEL FAILOVER",
            Duration::from_secs(30),
            || {
                self.live_ports()
                    .into_iter()
                    .any(|port| cli(port, &["SENTINEL", "FAILOVER", &self.name]) == "OK")
                    .then_some(())
            },
        );
    }

    /// The address of the master as the Sentinel on `port` knows it (`HOST:PORT`).
    pub fn master_address(&self, port: u16) -> String {
        cli(
            port,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.name.as_str()],
        )
        .lines()
        .collect::<Vec<_>>()
        .join(":")
    }

    /// Wait until `clients` clients are subscribed across the live Sentinels; the index of
    /// the first live Sentinel with a subscribed client.
    pub fn wait_subscribed(&self, clients: usize) -> usize {
        wait_for(
            &format!("{clients} client(s) subscribed to the sentinels"),
            Duration::from_secs(30),
            || {
                let counts: Vec<(usize, usize)> = (0..self.ports.len())
                    .filter(|&index| self.children[index].is_some())
                    .map(|index| (index, subscribed_clients(self.ports[index])))
                    .collect();
                let total: usize = counts.iter().map(|(_, count)| count).sum();
                (total >= clients)
                    .then(|| counts.iter().find(|(_, count)| *count > 0).map(|(i, _)| *i))
                    .flatten()
            },
        )
    }

    /// Kill the Sentinel at `index` (SIGKILL: its connections are closed by the kernel).
    pub fn kill(&mut self, index: usize) {
        drop(self.children[index].take());
    }

    fn live_ports(&self) -> Vec<u16> {
        (0..self.ports.len())
            .filter(|&index| self.children[index].is_some())
            .map(|index| self.ports[index])
            .collect()
    }
}

/// A `key value` field of redis-cli's answer to `SENTINEL MASTER` (one item per line).
fn field(answer: &str, key: &str) -> Option<String> {
    let lines: Vec<&str> = answer.lines().map(str::trim).collect();
    lines
        .windows(2)
        .find(|pair| pair[0] == key)
        .map(|pair| pair[1].to_string())
}

/// A misbehaving Sentinel: to every client that subscribes it sends `pairs` pairs of `+sdown`
/// and `-sdown` messages about the master `name` at 127.0.0.1:`node_port`, within about a
/// second, then one `+odown` of it; it answers PING and confirms subscriptions, and nothing
/// else. Stops accepting when dropped.
pub struct FloodingSentinel {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Messages written so far (to all clients).
    pub sent: Arc<AtomicUsize>,
}

impl FloodingSentinel {
    /// Listen on a free port; serves each client on its own thread.
    pub fn start(name: &str, node_port: u16, pairs: usize) -> FloodingSentinel {
        let port = free_port();
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the fake sentinel");
        let sent = Arc::new(AtomicUsize::new(0));
        let counter = sent.clone();
        let name = name.to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (name, counter) = (name.clone(), counter.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &name, node_port, pairs, &counter);
                });
            }
        });
        FloodingSentinel { port, sent }
    }
}

/// One client of the fake Sentinel.
fn serve(
    stream: TcpStream,
    name: &str,
    node_port: u16,
    pairs: usize,
    sent: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut subscribed = 0usize;
    while let Some(command) = read_command(&mut reader)? {
        let verb = command.first().map(|v| v.to_ascii_uppercase());
        match verb.as_deref() {
            Some("SUBSCRIBE") => {
                for channel in &command[1..] {
                    subscribed += 1;
                    writer.write_all(
                        format!(
                            "*3\r\n{}{}:{subscribed}\r\n",
                            bulk("subscribe"),
                            bulk(channel)
                        )
                        .as_bytes(),
                    )?;
                }
                flood(&mut writer, name, node_port, pairs, sent)?;
            }
            Some("PING") if subscribed > 0 => {
                writer.write_all(format!("*2\r\n{}{}", bulk("pong"), bulk("")).as_bytes())?
            }
            Some("PING") => writer.write_all(b"+PONG\r\n")?,
            Some("CLIENT") => writer.write_all(b"+OK\r\n")?,
            _ => writer.write_all(b"-ERR unknown command\r\n")?,
        }
    }
    Ok(())
}

/// The `+sdown`/`-sdown` pairs in ten bursts a tenth of a second apart, then the `+odown`.
fn flood(
    writer: &mut TcpStream,
    name: &str,
    node_port: u16,
    pairs: usize,
    sent: &AtomicUsize,
) -> std::io::Result<()> {
    let about = format!("master {name} 127.0.0.1 {node_port}");
    let message = |channel: &str, payload: &str| {
        format!(
            "*3\r\n{}{}{}",
            bulk("message"),
            bulk(channel),
            bulk(payload)
        )
    };
    let bursts = 10;
    for burst in 0..bursts {
        let mut text = String::new();
        let from = pairs * burst / bursts;
        let to = pairs * (burst + 1) / bursts;
        for _ in from..to {
            text.push_str(&message("+sdown", &about));
            text.push_str(&message("-sdown", &about));
        }
        writer.write_all(text.as_bytes())?;
        sent.fetch_add(2 * (to - from), Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(100));
    }
    writer.write_all(message("+odown", &format!("{about} #quorum 2/2")).as_bytes())?;
    sent.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn bulk(text: &str) -> String {
    format!("${}\r\n{text}\r\n", text.len())
}

/// One RESP command (an array of bulk strings); `None` at the end of the stream.
fn read_command(reader: &mut impl BufRead) -> std::io::Result<Option<Vec<String>>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not a RESP command");
    let count: usize = line
        .trim_end()
        .strip_prefix('*')
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)?;
    let mut words = Vec::with_capacity(count);
    for _ in 0..count {
        line.clear();
        reader.read_line(&mut line)?;
        let length: usize = line
            .trim_end()
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .ok_or_else(bad)?;
        let mut data = vec![0; length + 2];
        reader.read_exact(&mut data)?;
        data.truncate(length);
        words.push(String::from_utf8_lossy(&data).into_owned());
    }
    Ok(Some(words))
}
