//! Observability of the real exaprobe-exec binary, this test playing ExaBGP on its pipes: the
//! `/metrics` endpoint scraped with a real HTTP client, the textfile and the state file read
//! while the probe rewrites them, syslog received on a datagram socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use exaprobe_testkit::spawned::Spawned;
use exaprobe_testkit::{free_port, temp_dir, wait_for};

const BINARY: &str = env!("CARGO_BIN_EXE_exaprobe-exec");

/// Fast timers and the name, unless a test gives its own.
const FAST: &[&str] = &[
    "--interval",
    "0.1",
    "--fast-interval",
    "0.05",
    "--rise",
    "2",
    "--fall",
    "2",
    "--exabgp-api",
    "4",
    "--name",
    "web",
];

/// How long the next command may take.
const NEXT: Duration = Duration::from_secs(10);

/// Start the probe checking `test -f FLAG` with fast timers and `extra` options, this test as
/// its ExaBGP: every command it writes is acknowledged with `done`.
fn start(flag: &Path, extra: &[&str]) -> Spawned {
    start_answering(flag, extra, true)
}

/// [`start`], answering `done` only with `ack`.
fn start_answering(flag: &Path, extra: &[&str], ack: bool) -> Spawned {
    let mut command = Command::new(BINARY);
    command
        .args(
            FAST.chunks(2)
                .filter(|pair| !extra.contains(&pair[0]))
                .flatten(),
        )
        .args(extra)
        .args(["--", "test", "-f"])
        .arg(flag)
        .env_remove("EXAPROBE_LOG");
    if ack {
        Spawned::answering(&mut command, "done\n")
    } else {
        Spawned::start(&mut command)
    }
}

/// An HTTP client: plain HTTP only, but reqwest wants a TLS configuration all the same.
fn client() -> (tokio::runtime::Runtime, reqwest::Client) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    (runtime, client)
}

/// GET `url`: the status and body, or `None` when nothing answers (yet).
fn get(http: &(tokio::runtime::Runtime, reqwest::Client), url: &str) -> Option<(u16, String)> {
    let (runtime, client) = http;
    runtime.block_on(async {
        let response = client.get(url).send().await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    })
}

/// The value of `series` (name and labels exactly) in a text exposition.
fn value(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(str::to_owned)
}

/// Scrape until `series` has `expected`; returns that scrape.
fn scrape_until(
    http: &(tokio::runtime::Runtime, reqwest::Client),
    url: &str,
    series: &str,
    expected: &str,
) -> String {
    wait_for(
        &format!("{series} {expected} at {url}"),
        Duration::from_secs(10),
        || get(http, url).filter(|(_, body)| value(body, series).as_deref() == Some(expected)),
    )
    .1
}

#[test]
fn metrics_follow_a_state_change_and_the_route_exabgp_accepted() {
    let dir = temp_dir();
    let flag = dir.path().join("healthy");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let probe = start(
        &flag,
        &[
            "--prefix",
            "192.0.2.5/32",
            "--withdraw-on-down",
            "--metrics-listen",
            &listen,
        ],
    );
    let http = client();
    let url = format!("http://{listen}/metrics");
    assert_eq!(
        probe.line(NEXT),
        "withdraw route 192.0.2.5/32 next-hop self"
    );
    let down = scrape_until(
        &http,
        &url,
        r#"exaprobe_state{probe="web",state="down"}"#,
        "1",
    );
    assert_eq!(
        value(&down, r#"exaprobe_state{probe="web",state="up"}"#).as_deref(),
        Some("0")
    );
    scrape_until(
        &http,
        &url,
        r#"exaprobe_route_announced{probe="web",prefix="192.0.2.5/32"}"#,
        "0",
    );
    std::fs::write(&flag, "").unwrap();
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.5/32 next-hop self med 100"
    );
    let up = scrape_until(
        &http,
        &url,
        r#"exaprobe_route_announced{probe="web",prefix="192.0.2.5/32"}"#,
        "1",
    );
    assert_eq!(
        value(&up, r#"exaprobe_state{probe="web",state="up"}"#).as_deref(),
        Some("1")
    );
    assert_eq!(
        value(&up, r#"exaprobe_state{probe="web",state="down"}"#).as_deref(),
        Some("0")
    );
    assert_eq!(
        value(
            &up,
            r#"exaprobe_route_med{probe="web",prefix="192.0.2.5/32"}"#
        )
        .as_deref(),
        Some("100")
    );
    let transitions: u64 = value(&up, r#"exaprobe_transitions_total{probe="web"}"#)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        transitions >= 4,
        "INIT→FALLING→DOWN→RISING→UP: {transitions}"
    );
    let done: u64 = value(
        &up,
        r#"exaprobe_exabgp_commands_total{probe="web",answer="done"}"#,
    )
    .unwrap()
    .parse()
    .unwrap();
    assert!(done >= 2, "{done}");
    assert!(
        value(
            &up,
            r#"exaprobe_checks_total{probe="web",result="healthy"}"#
        )
        .is_some()
    );
    assert!(
        value(
            &up,
            r#"exaprobe_checks_total{probe="web",result="unhealthy"}"#
        )
        .is_some()
    );
    assert!(up.contains(r#"exaprobe_check_duration_seconds_count{probe="web"}"#));
    assert!(up.contains("# TYPE exaprobe_checks_total counter"));
    let build = format!(
        r#"exaprobe_build_info{{probe="web",version="{}",kind="exec"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value(&up, &build).as_deref(), Some("1"));
    let (status, index) = get(&http, &format!("http://{listen}/")).unwrap();
    assert_eq!(status, 200);
    assert!(index.contains("/metrics"), "{index}");
}

/// Write `request` on a fresh connection and read the answer (empty when the server closed).
fn raw_exchange(listen: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(listen).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may answer and close before reading everything: a failed write is fine.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn the_endpoint_refuses_other_methods_huge_requests_and_slow_clients_delay_nothing() {
    let dir = temp_dir();
    let flag = dir.path().join("healthy");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let probe = start(
        &flag,
        &["--prefix", "192.0.2.7/32", "--metrics-listen", &listen],
    );
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.7/32 next-hop self med 1000"
    );
    let http = client();
    let url = format!("http://{listen}/metrics");
    scrape_until(
        &http,
        &url,
        r#"exaprobe_state{probe="web",state="down"}"#,
        "1",
    );

    let post = raw_exchange(
        &listen,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    assert!(post.to_ascii_lowercase().contains("allow: get"), "{post}");
    let mut huge = b"GET /metrics HTTP/1.1\r\nHost: x\r\n".to_vec();
    for n in 0..2000 {
        huge.extend_from_slice(format!("X-Filler-{n}: {}\r\n", "a".repeat(50)).as_bytes());
    }
    huge.extend_from_slice(b"\r\n");
    let refused = raw_exchange(&listen, &huge);
    assert!(
        refused.is_empty() || refused.starts_with("HTTP/1.1 431"),
        "a 100 kB request head must be refused: {refused}"
    );

    // Slow clients that never finish their request hold every connection slot and more.
    let slow: Vec<TcpStream> = (0..12)
        .map(|_| {
            let mut stream = TcpStream::connect(&listen).unwrap();
            stream
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: sl")
                .unwrap();
            stream
        })
        .collect();
    std::fs::write(&flag, "").unwrap();
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.7/32 next-hop self med 100"
    );
    drop(slow);
    let after = scrape_until(
        &http,
        &url,
        r#"exaprobe_route_med{probe="web",prefix="192.0.2.7/32"}"#,
        "100",
    );
    assert_eq!(
        value(&after, r#"exaprobe_state{probe="web",state="up"}"#).as_deref(),
        Some("1")
    );
}

/// True once the server closed `stream` (end of file or a reset), false while it is open.
fn closed_by_server(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let closed = match stream.peek(&mut [0; 1]) {
        Ok(read) => read == 0,
        Err(error) => error.kind() != std::io::ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

#[test]
fn idle_clients_never_keep_a_scrape_out() {
    const IDLE: usize = 32;
    let dir = temp_dir();
    let flag = dir.path().join("healthy");
    let listen = format!("127.0.0.1:{}", free_port());
    let probe = start(
        &flag,
        &["--prefix", "192.0.2.8/32", "--metrics-listen", &listen],
    );
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.8/32 next-hop self med 1000"
    );
    let url = format!("http://{listen}/metrics");
    scrape_until(
        &client(),
        &url,
        r#"exaprobe_state{probe="web",state="down"}"#,
        "1",
    );
    // Clients that connect and say nothing, or half a request head, and stay: 4 times the slots.
    let mut idle: Vec<TcpStream> = (0..IDLE)
        .map(|n| {
            let mut stream = TcpStream::connect(&listen).unwrap();
            if n % 2 == 1 {
                stream
                    .write_all(b"GET /metrics HTTP/1.1\r\nHost: sl")
                    .unwrap();
            }
            stream
        })
        .collect();
    // The endpoint has seen them all once every connection but the slots' worth is closed.
    wait_for(
        "the endpoint to take every idle client",
        Duration::from_secs(10),
        || {
            let closed = idle.iter().filter(|s| closed_by_server(s)).count();
            (closed >= IDLE - 8).then_some(())
        },
    );
    for n in 0..30 {
        // One more idle client before each scrape: every slot stays taken by an idle one.
        idle.push(TcpStream::connect(&listen).unwrap());
        let mut stream = TcpStream::connect(&listen).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.contains("exaprobe_state"),
            "scrape {n} of 30 with {} idle clients connected: {answer:?}",
            idle.len()
        );
    }
    // Still at most the slots' worth of idle clients held.
    wait_for(
        "idle clients beyond the slots closed",
        Duration::from_secs(10),
        || {
            let open = idle.iter().filter(|s| !closed_by_server(s)).count();
            (open <= 8).then_some(())
        },
    );
    drop(probe);
}

#[test]
fn a_privileged_port_after_the_switch_to_another_user_is_said_once() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIPPED: --user needs root");
        return;
    }
    let dir = temp_dir();
    let flag = dir.path().join("healthy");
    // Nothing is bound: the kernel refuses port 1 to a process without root before looking.
    let mut probe = start(
        &flag,
        &[
            "--prefix",
            "192.0.2.9/32",
            "--metrics-listen",
            "127.0.0.1:1",
            "--user",
            "nobody",
        ],
    );
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.9/32 next-hop self med 1000"
    );
    let said = "--metrics-listen 127.0.0.1:1: port 1 is privileged (below ";
    wait_for("the reason in the log", Duration::from_secs(10), || {
        probe.log().contains(said).then_some(())
    });
    probe.signal(nix::sys::signal::Signal::SIGTERM);
    probe.exits_within(Duration::from_secs(5));
    let log = probe.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("--metrics-listen"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("runs as uid 65534, not root (--user drops root before the endpoint opens): give a port of"),
        "{log}"
    );
}

#[test]
fn textfile_and_state_file_follow_a_state_change() {
    let dir = temp_dir();
    let flag = dir.path().join("healthy");
    let textfiles = dir.path().join("textfile");
    std::fs::create_dir(&textfiles).unwrap();
    let state_path = dir.path().join("state.json");
    let probe = start(
        &flag,
        &[
            "--prefix",
            "192.0.2.8/32",
            "--prefix",
            "2001:db8::8",
            "--metrics-textfile",
            textfiles.to_str().unwrap(),
            "--state-file",
            state_path.to_str().unwrap(),
        ],
    );
    let textfile = textfiles.join("exaprobe-web.prom");
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.8/32 next-hop self med 1000"
    );
    assert_eq!(
        probe.line(NEXT),
        "announce route 2001:db8::8/128 next-hop self med 1001"
    );
    std::fs::write(&flag, "").unwrap();
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.8/32 next-hop self med 100"
    );
    assert_eq!(
        probe.line(NEXT),
        "announce route 2001:db8::8/128 next-hop self med 101"
    );
    let text = wait_for(
        "the textfile to show the new MED",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&textfile).ok().filter(|text| {
                value(
                    text,
                    r#"exaprobe_route_med{probe="web",prefix="2001:db8::8/128"}"#,
                )
                .as_deref()
                    == Some("101")
            })
        },
    );
    assert_eq!(
        value(&text, r#"exaprobe_state{probe="web",state="up"}"#).as_deref(),
        Some("1")
    );
    assert!(
        text.contains("# TYPE exaprobe_checks_total counter\n"),
        "{text}"
    );
    assert!(
        !text.contains("# EOF"),
        "node_exporter reads the classic format"
    );
    let state = wait_for(
        "the state file to show the new MED",
        Duration::from_secs(10),
        || {
            let text = std::fs::read_to_string(&state_path).ok()?;
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            (json["prefixes"]["2001:db8::8/128"]["med"] == 101).then_some(json)
        },
    );
    assert_eq!(state["version"], 1);
    assert_eq!(state["probe"], "web");
    assert_eq!(state["kind"], "exec");
    assert_eq!(state["state"], "UP");
    assert_eq!(state["last_check"]["result"], "healthy");
    assert!(
        state["consecutive"]["successes"].as_u64().unwrap() >= 2,
        "{state}"
    );
    assert_eq!(state["consecutive"]["failures"], 0);
    let v4 = &state["prefixes"]["192.0.2.8/32"];
    assert_eq!(v4["action"], "announce");
    assert_eq!(v4["med"], 100);
    assert_eq!(v4["confirmed"], true);
    assert_eq!(
        v4["command"],
        "announce route 192.0.2.8/32 next-hop self med 100"
    );
    assert!(
        state["counters"]["transitions"].as_u64().unwrap() >= 4,
        "{state}"
    );
    assert!(
        state["counters"]["exabgp_commands"]["done"]
            .as_u64()
            .unwrap()
            >= 4,
        "{state}"
    );
    assert!(
        state["counters"]["checks"]["unhealthy"].as_u64().unwrap() >= 2,
        "{state}"
    );
    assert!(state["since"].as_str().unwrap().ends_with('Z'), "{state}");

    std::fs::remove_file(&flag).unwrap();
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.8/32 next-hop self med 1000"
    );
    let down = wait_for(
        "the state file to show DOWN",
        Duration::from_secs(10),
        || {
            let text = std::fs::read_to_string(&state_path).ok()?;
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            (json["state"] == "DOWN").then_some(json)
        },
    );
    assert_eq!(down["last_check"]["result"], "unhealthy");
    assert!(
        down["last_check"]["reason"]
            .as_str()
            .unwrap()
            .contains("exit"),
        "{down}"
    );
}

/// The files are replaced whole while a reader reads them as fast as it can: every read is a
/// complete document (JSON that parses; an exposition with its last series).
#[test]
fn a_concurrent_reader_never_sees_a_half_written_file() {
    let dir = temp_dir();
    let flag = dir.path().join("healthy");
    std::fs::write(&flag, "").unwrap();
    let state_path = dir.path().join("state.json");
    let probe = start(
        &flag,
        &[
            "--interval",
            "0.01",
            "--prefix",
            "192.0.2.9/32",
            "--metrics-textfile",
            dir.path().to_str().unwrap(),
            "--state-file",
            state_path.to_str().unwrap(),
        ],
    );
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.9/32 next-hop self med 100"
    );
    let textfile = dir.path().join("exaprobe-web.prom");
    wait_for("both files", Duration::from_secs(10), || {
        (state_path.exists() && textfile.exists()).then_some(())
    });
    // Each check's result differs from the last (the flag comes and goes), so each is written
    // at once: a check like the last is written only within the refresh period.
    let mut updates = std::collections::BTreeSet::new();
    let mut reads = 0;
    while updates.len() < 50 {
        if reads % 2 == 0 {
            let _ = std::fs::remove_file(&flag);
        } else {
            std::fs::write(&flag, "").unwrap();
        }
        let text = std::fs::read_to_string(&state_path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("read {reads}: {error}: {text:?}"));
        assert_eq!(json["version"], 1);
        let checks = &json["counters"]["checks"];
        updates.insert((
            checks["healthy"].as_u64().unwrap(),
            checks["unhealthy"].as_u64().unwrap(),
        ));
        let metrics = std::fs::read_to_string(&textfile).unwrap();
        assert!(metrics.ends_with('\n'), "read {reads}: {metrics:?}");
        assert!(
            metrics.contains("exaprobe_build_info{"),
            "read {reads}: {metrics:?}"
        );
        reads += 1;
    }
    assert!(probe.log().contains("starting"));
}

#[test]
fn syslog_gets_one_datagram_per_event_tagged_with_the_name_instead_of_stderr() {
    use std::os::unix::net::UnixDatagram;
    let dir = temp_dir();
    let flag = dir.path().join("healthy");
    let socket_path = dir.path().join("log");
    let receiver = UnixDatagram::bind(&socket_path).unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let probe = start(
        &flag,
        &[
            "--prefix",
            "192.0.2.10/32",
            "--syslog",
            "--syslog-facility",
            "local3",
            "--syslog-socket",
            socket_path.to_str().unwrap(),
        ],
    );
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.10/32 next-hop self med 1000"
    );
    let pid = probe.pid();
    let mut messages = Vec::new();
    let mut buffer = vec![0u8; 65536];
    while !messages.iter().any(|m: &String| m.contains("to=DOWN")) {
        let n = receiver.recv(&mut buffer).expect("a syslog datagram");
        messages.push(String::from_utf8(buffer[..n].to_vec()).unwrap());
    }
    let starting = messages
        .iter()
        .find(|m| m.contains("starting"))
        .unwrap_or_else(|| panic!("{messages:#?}"));
    // local3 (19) * 8 + info (6)
    assert!(starting.starts_with("<158>"), "{starting}");
    assert!(starting.contains(&format!(" web[{pid}]: ")), "{starting}");
    let failed = messages
        .iter()
        .find(|m| m.contains("check failed"))
        .unwrap_or_else(|| panic!("{messages:#?}"));
    assert!(failed.starts_with("<156>"), "a warning: {failed}");
    for message in &messages {
        assert!(
            !message.contains('\n'),
            "one line per datagram: {message:?}"
        );
        assert!(message.contains(&format!(" web[{pid}]: ")), "{message}");
    }
    assert!(
        !probe.log().contains("starting"),
        "the events go to syslog instead of stderr:\n{}",
        probe.log()
    );
}

#[test]
fn without_a_syslog_daemon_the_events_stay_on_stderr() {
    let dir = temp_dir();
    let flag = dir.path().join("healthy");
    let missing = dir.path().join("no-daemon-here");
    let probe = start(
        &flag,
        &[
            "--prefix",
            "192.0.2.11/32",
            "--syslog",
            "--syslog-socket",
            missing.to_str().unwrap(),
        ],
    );
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.11/32 next-hop self med 1000"
    );
    wait_for("the start in the log", Duration::from_secs(10), || {
        probe.log().contains("starting").then_some(())
    });
    assert!(
        probe.log().contains("web: --syslog: cannot reach"),
        "{}",
        probe.log()
    );
}

/// ExaBGP that never answers shows as timeouts (the "ExaBGP not acknowledging" alert), and the
/// route as written but unconfirmed in the state file.
#[test]
fn missing_acks_are_counted_as_timeouts() {
    let dir = temp_dir();
    let flag = dir.path().join("healthy");
    let state_path = dir.path().join("state.json");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let probe = start_answering(
        &flag,
        &[
            "--prefix",
            "192.0.2.12/32",
            "--ack-timeout",
            "0.2",
            "--metrics-listen",
            &listen,
            "--state-file",
            state_path.to_str().unwrap(),
        ],
        false,
    );
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.12/32 next-hop self med 1000"
    );
    let http = client();
    let url = format!("http://{listen}/metrics");
    let scrape = scrape_until(
        &http,
        &url,
        r#"exaprobe_exabgp_commands_total{probe="web",answer="timeout"}"#,
        "1",
    );
    assert_eq!(
        value(
            &scrape,
            r#"exaprobe_exabgp_commands_total{probe="web",answer="done"}"#
        )
        .as_deref(),
        Some("0")
    );
    let state = wait_for(
        "the unconfirmed route in the state file",
        Duration::from_secs(10),
        || {
            let text = std::fs::read_to_string(&state_path).ok()?;
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            (json["counters"]["exabgp_commands"]["timeout"] == 1).then_some(json)
        },
    );
    let route = &state["prefixes"]["192.0.2.12/32"];
    assert_eq!(route["confirmed"], false, "{state}");
    assert_eq!(route["med"], 1000, "{state}");
}

#[test]
fn a_steady_probe_does_not_rewrite_its_files_at_every_check() {
    use std::os::unix::fs::MetadataExt;
    let dir = temp_dir();
    let flag = dir.path().join("healthy");
    std::fs::write(&flag, "").unwrap();
    let state_path = dir.path().join("state.json");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let probe = start(
        &flag,
        &[
            "--interval",
            "0.01",
            "--prefix",
            "192.0.2.12/32",
            "--metrics-listen",
            &listen,
            "--state-file",
            state_path.to_str().unwrap(),
        ],
    );
    assert_eq!(
        probe.line(NEXT),
        "announce route 192.0.2.12/32 next-hop self med 100"
    );
    let http = client();
    let url = format!("http://{listen}/metrics");
    let series = r#"exaprobe_checks_total{probe="web",result="healthy"}"#;
    let checks = || {
        get(&http, &url)
            .and_then(|(_, body)| value(&body, series))
            .and_then(|count| count.parse::<u64>().ok())
    };
    // Written for the route ExaBGP accepted: from then on only counters and times move.
    wait_for(
        "the accepted route in the state file",
        Duration::from_secs(10),
        || {
            let text = std::fs::read_to_string(&state_path).ok()?;
            text.contains("\"confirmed\": true").then_some(())
        },
    );
    let written = std::fs::metadata(&state_path).unwrap().ino();
    let first = wait_for("a check", Duration::from_secs(10), checks);
    wait_for("20 more checks", Duration::from_secs(10), || {
        checks().filter(|count| *count >= first + 20)
    });
    // Each write replaces the file (a new inode): the same one means no write in 20 checks.
    assert_eq!(
        std::fs::metadata(&state_path).unwrap().ino(),
        written,
        "the state file was rewritten by checks that changed nothing"
    );
    // A change is written at once.
    std::fs::remove_file(&flag).unwrap();
    wait_for(
        "the failed check in the state file",
        Duration::from_secs(10),
        || {
            let text = std::fs::read_to_string(&state_path).ok()?;
            text.contains("\"result\": \"unhealthy\"").then_some(())
        },
    );
}
