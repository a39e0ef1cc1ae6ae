//! The HTTP probe against real HTTP/1.1, HTTP/2 (h2c and TLS with ALPN) servers started by the
//! test on loopback ports, with certificates made by the test.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use exaprobe_core::{Outcome, Probe};
use exaprobe_http::{HttpOptions, HttpProbe};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_secs(2);

/// The deadline a check started now gets under TIMEOUT (the runner gives the same).
fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + TIMEOUT.mul_f64(0.95)
}

/// A test server: what it saw, for assertions.
struct Server {
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
    versions: Arc<Mutex<Vec<String>>>,
}

async fn respond(
    request: Request<Incoming>,
    versions: Arc<Mutex<Vec<String>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    versions
        .lock()
        .unwrap()
        .push(format!("{:?}", request.version()));
    let host = request
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let (status, body, location) = match request.uri().path() {
        "/" => (200, "ok: all good".to_string(), None),
        "/503" => (503, "down".to_string(), None),
        "/wrong" => (200, "<h1>maintenance</h1>".to_string(), None),
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            (200, "ok".to_string(), None)
        }
        "/redirect" => (301, String::new(), Some("/")),
        "/host" => (200, format!("host={host}"), None),
        "/echo" => (200, format!("method={}", request.method()), None),
        _ => (404, "not found".to_string(), None),
    };
    let mut response = Response::builder().status(status).header("x-ready", "yes");
    if let Some(location) = location {
        response = response.header("location", location);
    }
    Ok(response.body(Full::new(Bytes::from(body))).unwrap())
}

/// Serve HTTP/1.1 and HTTP/2 (prior knowledge, or ALPN with `tls`) until the test ends.
async fn serve(tls: Option<Arc<rustls::ServerConfig>>, ipv6: bool) -> Server {
    let listener = TcpListener::bind(if ipv6 { "[::1]:0" } else { "127.0.0.1:0" })
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let versions = Arc::new(Mutex::new(Vec::new()));
    let (counter, seen) = (connections.clone(), versions.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let seen = seen.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request| respond(request, seen.clone()));
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                match tls {
                    Some(config) => {
                        let Ok(stream) =
                            tokio_rustls::TlsAcceptor::from(config).accept(stream).await
                        else {
                            return;
                        };
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                    None => {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    });
    Server {
        address,
        connections,
        versions,
    }
}

fn probe(args: &[&str]) -> HttpProbe {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        http: HttpOptions,
    }
    let mut argv = vec!["exaprobe-http"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}"));
    HttpProbe::new(&cli.http).unwrap()
}

fn unhealthy_reason(outcome: Outcome) -> String {
    match outcome {
        Outcome::Unhealthy { reason } => reason,
        other => panic!("expected unhealthy, got {other:?}"),
    }
}

#[tokio::test]
async fn healthy_status_body_and_headers() {
    let server = serve(None, false).await;
    let url = format!("http://{}/", server.address);
    let mut p = probe(&[
        "--url",
        &url,
        "--expect-body",
        "^ok",
        "--expect-header",
        "X-Ready: ^yes$",
        "--reject-body",
        "maintenance",
    ]);
    assert_eq!(p.check(deadline()).await, Outcome::Healthy);
    assert_eq!(p.describe(), format!("GET {url}"));
}

#[tokio::test]
async fn status_body_and_header_failures_name_what_failed() {
    let server = serve(None, false).await;
    let base = format!("http://{}", server.address);
    let reason = unhealthy_reason(
        probe(&["--url", &format!("{base}/503")])
            .check(deadline())
            .await,
    );
    assert_eq!(reason, "status 503, expected 200-299");
    assert_eq!(
        probe(&[
            "--url",
            &format!("{base}/503"),
            "--expect-status",
            "200-299,503"
        ])
        .check(deadline())
        .await,
        Outcome::Healthy
    );
    let reason = unhealthy_reason(
        probe(&["--url", &format!("{base}/wrong"), "--expect-body", "^ok"])
            .check(deadline())
            .await,
    );
    assert!(
        reason.contains("body does not match --expect-body '^ok'")
            && reason.contains("maintenance"),
        "{reason}"
    );
    let reason = unhealthy_reason(
        probe(&[
            "--url",
            &format!("{base}/wrong"),
            "--reject-body",
            "maintenance",
        ])
        .check(deadline())
        .await,
    );
    assert_eq!(reason, "body matches --reject-body 'maintenance'");
    let reason = unhealthy_reason(
        probe(&[
            "--url",
            &format!("{base}/"),
            "--expect-header",
            "X-Ready: ^no$",
        ])
        .check(deadline())
        .await,
    );
    assert!(
        reason.contains("header x-ready 'yes' does not match '^no$'"),
        "{reason}"
    );
    let reason = unhealthy_reason(
        probe(&[
            "--url",
            &format!("{base}/"),
            "--expect-header",
            "X-Missing: .*",
        ])
        .check(deadline())
        .await,
    );
    assert_eq!(reason, "header x-missing missing");
}

#[tokio::test]
async fn redirects_are_judged_unless_followed() {
    let server = serve(None, false).await;
    let url = format!("http://{}/redirect", server.address);
    assert_eq!(
        unhealthy_reason(probe(&["--url", &url]).check(deadline()).await),
        "status 301, expected 200-299"
    );
    assert_eq!(
        probe(&["--url", &url, "--follow-redirects", "--expect-body", "^ok"])
            .check(deadline())
            .await,
        Outcome::Healthy
    );
}

#[tokio::test]
async fn connection_refused_and_hanging_server() {
    let closed = exaprobe_testkit::free_port();
    let reason = unhealthy_reason(
        probe(&["--url", &format!("http://127.0.0.1:{closed}/")])
            .check(deadline())
            .await,
    );
    assert_eq!(reason, "connect: connection refused");
    // A server that accepts and never answers: the probe reports the timeout itself, inside
    // the runner's deadline.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            keep.lock().unwrap().push(stream);
        }
    });
    let mut hanging = probe(&["--url", &format!("http://{address}/")]);
    let started = Instant::now();
    let reason = unhealthy_reason(hanging.check(deadline()).await);
    assert_eq!(reason, "timeout waiting for the response");
    assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());
}

#[tokio::test]
async fn slow_answer_is_still_healthy_and_measurably_slow() {
    let server = serve(None, false).await;
    let mut p = probe(&["--url", &format!("http://{}/slow", server.address)]);
    let started = Instant::now();
    assert_eq!(p.check(deadline()).await, Outcome::Healthy);
    // The runner turns this into degraded with --degraded-latency below 300 ms.
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn connect_to_keeps_the_host_name() {
    let server = serve(None, false).await;
    let url = format!("http://anycast.example:{}/host", server.address.port());
    let mut p = probe(&[
        "--url",
        &url,
        "--connect-to",
        "127.0.0.1",
        "--expect-body",
        &format!("^host=anycast.example:{}$", server.address.port()),
    ]);
    assert_eq!(p.check(deadline()).await, Outcome::Healthy);
    let mapping = format!("anycast.example:{}:127.0.0.1", server.address.port());
    assert_eq!(
        probe(&[
            "--url",
            &url,
            "--connect-to",
            &mapping,
            "--expect-body",
            "anycast"
        ])
        .check(deadline())
        .await,
        Outcome::Healthy
    );
}

#[tokio::test]
async fn ipv6_literal_url_and_methods() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: no IPv6 loopback on this machine");
        return;
    }
    let server = serve(None, true).await;
    let url = format!("http://[::1]:{}/echo", server.address.port());
    assert_eq!(
        probe(&[
            "--url",
            &url,
            "--method",
            "post",
            "--body",
            "x",
            "--expect-body",
            "method=POST"
        ])
        .check(deadline())
        .await,
        Outcome::Healthy
    );
}

#[tokio::test]
async fn connection_reuse_versus_fresh_connection() {
    let server = serve(None, false).await;
    let url = format!("http://{}/", server.address);
    let mut pooled = probe(&["--url", &url]);
    for _ in 0..3 {
        assert_eq!(pooled.check(deadline()).await, Outcome::Healthy);
    }
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        1,
        "pooled checks reuse one connection"
    );
    let mut fresh = probe(&["--url", &url, "--fresh-connection"]);
    for _ in 0..3 {
        assert_eq!(fresh.check(deadline()).await, Outcome::Healthy);
    }
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        4,
        "each fresh check opens a connection"
    );
}

#[tokio::test]
async fn http2_prior_knowledge() {
    let server = serve(None, false).await;
    let url = format!("http://{}/", server.address);
    assert_eq!(
        probe(&["--url", &url, "--http2-prior-knowledge"])
            .check(deadline())
            .await,
        Outcome::Healthy
    );
    assert_eq!(server.versions.lock().unwrap().as_slice(), ["HTTP/2.0"]);
}

/// Test PKI: a CA and server certificates signed by it.
struct Pki {
    dir: tempfile::TempDir,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_file: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        Pki::named("exaprobe test CA")
    }

    fn named(common_name: &str) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let dir = exaprobe_testkit::temp_dir();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let ca = params.self_signed(&key).unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        Pki {
            issuer: rcgen::Issuer::new(params, key),
            dir,
            ca_file,
        }
    }

    /// A server TLS config for `names`, valid from `not_before` to `not_after` (days from now).
    fn server(&self, names: &[&str], valid_days: (i64, i64)) -> Arc<rustls::ServerConfig> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(valid_days.0);
        params.not_after = now + time::Duration::days(valid_days.1);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)
        .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }

    fn ca(&self) -> String {
        self.ca_file.display().to_string()
    }

    fn other_ca(&self) -> String {
        let other = Pki::named("some other CA");
        let path = self.dir.path().join("other-ca.pem");
        std::fs::copy(&other.ca_file, &path).unwrap();
        path.display().to_string()
    }
}

#[tokio::test]
async fn https_with_alpn_h2_and_a_private_ca() {
    let pki = Pki::new();
    let server = serve(Some(pki.server(&["localhost"], (-1, 365))), false).await;
    let url = format!("https://localhost:{}/", server.address.port());
    let mut p = probe(&[
        "--url",
        &url,
        "--ca-file",
        &pki.ca(),
        "--connect-to",
        "127.0.0.1",
        "--cert-expiry-warn",
        "30",
    ]);
    assert_eq!(p.check(deadline()).await, Outcome::Healthy);
    assert_eq!(
        server.versions.lock().unwrap().as_slice(),
        ["HTTP/2.0"],
        "ALPN negotiates h2"
    );
    let mut http1 = probe(&[
        "--url",
        &url,
        "--ca-file",
        &pki.ca(),
        "--connect-to",
        "127.0.0.1",
        "--http1-only",
    ]);
    assert_eq!(http1.check(deadline()).await, Outcome::Healthy);
    assert_eq!(server.versions.lock().unwrap().last().unwrap(), "HTTP/1.1");
}

#[tokio::test]
async fn tls_failures_say_why() {
    let pki = Pki::new();
    let expired = serve(Some(pki.server(&["localhost"], (-30, -1))), false).await;
    let wrong_name = serve(Some(pki.server(&["other.example"], (-1, 365))), false).await;
    let good = serve(Some(pki.server(&["localhost"], (-1, 365))), false).await;
    let url = |server: &Server| format!("https://localhost:{}/", server.address.port());
    let ca = pki.ca();
    let run = |url: String, extra: &[&str]| {
        let mut args = vec![
            "--url".to_string(),
            url,
            "--connect-to".into(),
            "127.0.0.1".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let check = |args: Vec<String>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        probe(&refs).check(deadline()).await
    };
    let reason = unhealthy_reason(check(run(url(&expired), &["--ca-file", &ca])).await);
    assert!(
        reason.starts_with("TLS handshake failed: certificate has expired on 20")
            && reason.ends_with(" UTC"),
        "{reason}"
    );
    let reason = unhealthy_reason(check(run(url(&wrong_name), &["--ca-file", &ca])).await);
    assert_eq!(
        reason,
        "TLS handshake failed: name mismatch: certificate is for other.example, not localhost"
    );
    assert_eq!(
        check(run(
            url(&wrong_name),
            &["--ca-file", &ca, "--tls-server-name", "other.example"]
        ))
        .await,
        Outcome::Healthy
    );
    let reason = unhealthy_reason(check(run(url(&good), &["--ca-file", &pki.other_ca()])).await);
    assert_eq!(
        reason,
        "TLS handshake failed: certificate is not trusted: its issuer (CN=exaprobe test CA) is not a trusted CA"
    );
    // --insecure skips the chain and the name, never the validity period.
    let reason = unhealthy_reason(check(run(url(&expired), &["--insecure"])).await);
    assert!(
        reason.starts_with("TLS handshake failed: certificate has expired on"),
        "{reason}"
    );
    let reason = unhealthy_reason(
        check(vec![
            "--url".into(),
            format!("https://127.0.0.1:{}/", exaprobe_testkit::free_port()),
        ])
        .await,
    );
    assert_eq!(reason, "connect: connection refused");
}

#[tokio::test]
async fn certificate_close_to_expiry_is_degraded() {
    let pki = Pki::new();
    let server = serve(Some(pki.server(&["localhost"], (-1, 10))), false).await;
    let url = format!("https://localhost:{}/", server.address.port());
    let outcome = probe(&[
        "--url",
        &url,
        "--ca-file",
        &pki.ca(),
        "--connect-to",
        "127.0.0.1",
        "--cert-expiry-warn",
        "30",
    ])
    .check(deadline())
    .await;
    match outcome {
        Outcome::Degraded {
            reason,
            penalty: None,
        } => {
            assert!(
                reason.starts_with("certificate expires in 9 days")
                    || reason.starts_with("certificate expires in 10 days"),
                "{reason}"
            );
        }
        other => panic!("expected degraded, got {other:?}"),
    }
    assert_eq!(
        probe(&[
            "--url",
            &url,
            "--ca-file",
            &pki.ca(),
            "--connect-to",
            "127.0.0.1",
            "--cert-expiry-warn",
            "5"
        ])
        .check(deadline())
        .await,
        Outcome::Healthy
    );
}

#[test]
fn bad_options_are_rejected_with_the_value() {
    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        http: HttpOptions,
    }
    for (args, needle) in [
        (vec!["--url", "not a url"], "not a URL"),
        (vec!["--url", "http://x/", "--expect-status", "2xx"], "2xx"),
        (
            vec!["--url", "http://x/", "--expect-body", "("],
            "not a valid regex",
        ),
        (
            vec!["--url", "http://x/", "--header", "X-A"],
            "is not a header",
        ),
        (
            vec!["--url", "http://x/", "--connect-to", "nowhere"],
            "nowhere",
        ),
    ] {
        let mut argv = vec!["exaprobe-http"];
        argv.extend(args);
        let error = Cli::try_parse_from(argv).unwrap_err().to_string();
        assert!(error.contains(needle), "{error}");
    }
    let cli = Cli::try_parse_from(["x", "--url", "ftp://x/"]).unwrap();
    assert!(
        HttpProbe::new(&cli.http)
            .unwrap_err()
            .to_string()
            .contains("only http")
    );
    let cli = Cli::try_parse_from([
        "x",
        "--url",
        "http://127.0.0.1/",
        "--connect-to",
        "10.0.0.1",
    ])
    .unwrap();
    assert!(
        HttpProbe::new(&cli.http)
            .unwrap_err()
            .to_string()
            .contains("needs a host name")
    );
}

/// An HTTPS server presenting `identity` (a testkit certificate).
async fn serve_identity(identity: &exaprobe_testkit::certs::Identity) -> Server {
    serve(Some(identity.server_config(&[b"h2", b"http/1.1"])), false).await
}

#[tokio::test]
async fn tls_reasons_are_sentences() {
    use exaprobe_testkit::certs::{Pki, self_signed};
    let pki = Pki::new("exaprobe hostile CA");
    let ca = pki.ca_file.display().to_string();
    let reason_for = |server: &Server, extra: &[&str]| {
        let mut args = vec![
            "--url".to_string(),
            format!("https://localhost:{}/", server.address.port()),
            "--connect-to".into(),
            "127.0.0.1".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            probe(&refs).check(deadline()).await
        }
    };
    let own = serve_identity(&self_signed(pki.dir.path(), &["localhost"])).await;
    assert_eq!(
        unhealthy_reason(reason_for(&own, &["--ca-file", &ca]).await),
        "TLS handshake failed: certificate is self-signed and not trusted (CN=localhost)"
    );
    let ca_server = serve_identity(pki.ca_as_end_entity()).await;
    let reason = unhealthy_reason(reason_for(&ca_server, &["--ca-file", &ca]).await);
    assert_eq!(
        reason,
        "TLS handshake failed: the server presented a CA certificate (CN=exaprobe hostile CA), not a server certificate"
    );
    let future = serve_identity(&pki.server(&["localhost"], (2, 30))).await;
    let reason = unhealthy_reason(reason_for(&future, &["--ca-file", &ca]).await);
    assert!(
        reason.starts_with("TLS handshake failed: certificate is not valid before 20"),
        "{reason}"
    );
    let reason = unhealthy_reason(reason_for(&future, &["--insecure"]).await);
    assert!(
        reason.starts_with("TLS handshake failed: certificate is not valid before"),
        "{reason}"
    );
}

#[tokio::test]
async fn expired_certificate_is_unhealthy_even_with_insecure_and_expiry_warn() {
    let pki = exaprobe_testkit::certs::Pki::new("exaprobe hostile CA");
    let expired = serve_identity(&pki.server(&["localhost"], (-30, -2))).await;
    let url = format!("https://localhost:{}/", expired.address.port());
    let reason = unhealthy_reason(
        probe(&[
            "--url",
            &url,
            "--connect-to",
            "127.0.0.1",
            "--insecure",
            "--cert-expiry-warn",
            "14",
        ])
        .check(deadline())
        .await,
    );
    assert!(
        reason.starts_with("TLS handshake failed: certificate has expired on 20"),
        "{reason}"
    );
}

#[tokio::test]
async fn reset_on_a_reused_connection_is_retried_once_on_a_fresh_one() {
    use exaprobe_testkit::http::{Reset, resetting_server};
    let server = resetting_server(Reset::OnReuse);
    let url = format!("http://{}/", server.address);
    let mut p = probe(&["--url", &url, "--http1-only"]);
    for check in 1..=4 {
        assert_eq!(p.check(deadline()).await, Outcome::Healthy, "check {check}");
    }
    // Checks 2 and 4 met a reset on the kept connection and were answered on a fresh one.
    assert_eq!(server.resets.load(Ordering::SeqCst), 2);
    assert_eq!(server.answered.load(Ordering::SeqCst), 4);
    assert_eq!(server.connections.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn reset_on_a_fresh_connection_is_the_verdict() {
    use exaprobe_testkit::http::{Reset, resetting_server};
    let server = resetting_server(Reset::Always);
    let url = format!("http://{}/", server.address);
    let mut p = probe(&["--url", &url, "--http1-only"]);
    let reason = unhealthy_reason(p.check(deadline()).await);
    assert!(
        reason.contains("connection reset") || reason.contains("closed"),
        "{reason}"
    );
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        1,
        "no retry after a failure on a fresh connection"
    );
    let _ = p.check(deadline()).await;
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}
