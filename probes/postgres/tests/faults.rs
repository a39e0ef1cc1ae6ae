//! Faults that need a server of their own: a frozen server, TLS refused or verified, a full
//! connection table.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::*;
use exaprobe_core::{Outcome, Probe};
use nix::sys::signal::Signal;

#[tokio::test]
async fn frozen_server_times_out_then_recovers() {
    let Some(installation) = Installation::find() else {
        return;
    };
    let dir = installation.directory();
    let server = installation.primary(dir.path(), "data", &[]);
    let good = password_file(dir.path(), "good.pw", PASSWORD);
    let dsn = server.tcp_dsn();
    let mut reused = probe(&["--dsn", &dsn, "--password-file", good.to_str().unwrap()]);
    let mut fresh = probe(&[
        "--dsn",
        &dsn,
        "--password-file",
        good.to_str().unwrap(),
        "--fresh-connection",
    ]);
    assert_eq!(check(&mut reused).await, Outcome::Healthy);
    assert_eq!(check(&mut fresh).await, Outcome::Healthy);

    server.signal_all(Signal::SIGSTOP);
    // The runner gives the check 95 % of --timeout and drops it at --timeout: a check that
    // honours its deadline says which phase was slow before it is dropped.
    let hard = Duration::from_millis(500);
    assert_eq!(
        finish(&mut reused, hard).await,
        Outcome::unhealthy(format!(
            "timeout waiting for --query on 127.0.0.1:{}",
            server.port
        ))
    );
    assert_eq!(
        finish(&mut fresh, hard).await,
        Outcome::unhealthy(format!("timeout connecting to 127.0.0.1:{}", server.port))
    );
    let mut with_state = probe(&[
        "--dsn",
        &dsn,
        "--password-file",
        good.to_str().unwrap(),
        "--role",
        "primary",
    ]);
    server.signal_all(Signal::SIGCONT);
    assert_eq!(check(&mut with_state).await, Outcome::Healthy);
    server.signal_all(Signal::SIGSTOP);
    assert_eq!(
        finish(&mut with_state, hard).await,
        Outcome::unhealthy(format!(
            "timeout waiting for the state query on 127.0.0.1:{}",
            server.port
        ))
    );
    server.signal_all(Signal::SIGCONT);

    // The timed-out checks left no connection in an unknown state: the next ones start over.
    assert_eq!(check(&mut reused).await, Outcome::Healthy);
    assert_eq!(check(&mut fresh).await, Outcome::Healthy);
    assert_eq!(check(&mut with_state).await, Outcome::Healthy);

    // A check the runner drops anyway (a deadline beyond its hard timeout) leaves nothing
    // behind either.
    server.signal_all(Signal::SIGSTOP);
    assert!(
        tokio::time::timeout(hard, reused.check(tokio::time::Instant::now() + 2 * hard))
            .await
            .is_err(),
        "a query on a frozen server must hang"
    );
    server.signal_all(Signal::SIGCONT);
    assert_eq!(check(&mut reused).await, Outcome::Healthy);
}

/// One check as the runner runs it under a hard timeout `hard`: a deadline at 95 % of it, the
/// check dropped at `hard` (a panic here: the check must have ended by its deadline).
async fn finish(probe: &mut exaprobe_postgres::PostgresProbe, hard: Duration) -> Outcome {
    let check = probe.check(tokio::time::Instant::now() + hard.mul_f64(0.95));
    tokio::time::timeout(hard, check)
        .await
        .expect("the check ends by its deadline")
}

#[tokio::test]
async fn tls_required_but_server_has_ssl_off() {
    let Some(installation) = Installation::find() else {
        return;
    };
    let dir = installation.directory();
    let server = installation.primary(dir.path(), "data", &["ssl=off"]);
    let good = password_file(dir.path(), "good.pw", PASSWORD);
    let good = good.to_str().unwrap();
    let base = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        server.port
    );

    let mut required = probe(&[
        "--dsn",
        &format!("{base} sslmode=require"),
        "--password-file",
        good,
    ]);
    let reason = unhealthy_reason(&check(&mut required).await).to_string();
    assert_eq!(
        reason,
        format!(
            "connect 127.0.0.1:{}: error performing TLS handshake: server does not support TLS",
            server.port
        )
    );
    // prefer falls back to plain text.
    let mut preferred = probe(&[
        "--dsn",
        &format!("{base} sslmode=prefer"),
        "--password-file",
        good,
    ]);
    assert_eq!(check(&mut preferred).await, Outcome::Healthy);
}

/// A CA, and a server certificate for `localhost` signed by it, as PEM files.
fn make_certificates(dir: &Path, installation: &Installation) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "exaprobe test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();

    let other_key = KeyPair::generate().unwrap();
    let mut other_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    other_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    other_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "some other CA");
    let other_ca = other_params.self_signed(&other_key).unwrap();

    let write = |name: &str, text: String, mode: u32| {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        installation.own(&path);
        path.display().to_string()
    };
    write("server.crt", server_cert.pem(), 0o644);
    write("server.key", server_key.serialize_pem(), 0o600);
    (
        write("ca.pem", ca.pem(), 0o644),
        write("other-ca.pem", other_ca.pem(), 0o644),
        dir.display().to_string(),
    )
}

#[tokio::test]
async fn tls_verification_levels() {
    let Some(installation) = Installation::find() else {
        return;
    };
    let dir = installation.directory();
    let (ca, other_ca, certs) = make_certificates(dir.path(), &installation);
    let cert_setting = format!("ssl_cert_file={certs}/server.crt");
    let key_setting = format!("ssl_key_file={certs}/server.key");
    let server = installation.primary(dir.path(), "data", &["ssl=on", &cert_setting, &key_setting]);
    let good = password_file(dir.path(), "good.pw", PASSWORD);
    let good = good.to_str().unwrap();
    let by_name = format!(
        "host=localhost hostaddr=127.0.0.1 port={} user=postgres dbname=postgres",
        server.port
    );
    let by_address = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        server.port
    );
    let encrypted = [
        "--query",
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        "--expect",
        "t",
    ];

    let run = |dsn: String, ca: Option<&str>| {
        let mut args = vec![
            "--dsn".to_string(),
            dsn,
            "--password-file".into(),
            good.into(),
        ];
        if let Some(ca) = ca {
            args.extend(["--ca-file".to_string(), ca.to_string()]);
        }
        args.extend(encrypted.iter().map(|s| s.to_string()));
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            check(&mut probe(&args)).await
        }
    };

    // verify-full: the chain and the name match.
    assert_eq!(
        run(format!("{by_name} sslmode=verify-full"), Some(&ca)).await,
        Outcome::Healthy
    );
    // The same in URL form, with the CA given in the DSN.
    let url = format!(
        "postgresql://postgres@localhost:{}/postgres?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}",
        server.port
    );
    assert_eq!(run(url, None).await, Outcome::Healthy);
    // verify-full by address: the certificate names only localhost.
    let reason = run(format!("{by_address} sslmode=verify-full"), Some(&ca)).await;
    let reason = unhealthy_reason(&reason);
    assert_eq!(
        reason,
        format!(
            "connect 127.0.0.1:{}: TLS handshake failed: name mismatch: certificate is for localhost, not 127.0.0.1",
            server.port
        )
    );
    // verify-ca accepts the name mismatch but not an unknown issuer.
    assert_eq!(
        run(format!("{by_address} sslmode=verify-ca"), Some(&ca)).await,
        Outcome::Healthy
    );
    let reason = run(format!("{by_address} sslmode=verify-ca"), Some(&other_ca)).await;
    let reason = unhealthy_reason(&reason);
    assert!(
        reason.ends_with(
            "TLS handshake failed: certificate is not trusted: its issuer (CN=exaprobe test CA) is not a trusted CA"
        ),
        "{reason}"
    );
    // require encrypts without verifying; with a CA file it verifies the chain, as libpq.
    assert_eq!(
        run(format!("{by_address} sslmode=require"), None).await,
        Outcome::Healthy
    );
    assert!(
        !run(format!("{by_address} sslmode=require"), Some(&other_ca))
            .await
            .is_serving()
    );
    // disable: plain text, so the expected `t` is not there.
    assert_eq!(
        run(format!("{by_address} sslmode=disable"), None).await,
        Outcome::unhealthy("query returned 'f', expected 't'")
    );
}

#[tokio::test]
async fn too_many_connections_and_shutting_down_are_distinct_reasons() {
    let Some(installation) = Installation::find() else {
        return;
    };
    let dir = installation.directory();
    let server = installation.primary(
        dir.path(),
        "data",
        &[
            "max_connections=3",
            "superuser_reserved_connections=0",
            "max_wal_senders=0",
            "wal_level=minimal",
        ],
    );
    let good = password_file(dir.path(), "good.pw", PASSWORD);
    let mut holders = Vec::new();
    for _ in 0..3 {
        let (client, connection) =
            tokio_postgres::connect(&server.socket_dsn(), tokio_postgres::NoTls)
                .await
                .expect("fill a connection slot");
        let task = tokio::spawn(connection);
        holders.push((client, task));
    }
    let mut full = probe(&[
        "--dsn",
        &server.tcp_dsn(),
        "--password-file",
        good.to_str().unwrap(),
    ]);
    assert_eq!(
        check(&mut full).await,
        Outcome::unhealthy(format!(
            "connect 127.0.0.1:{}: too many connections (53300: sorry, too many clients already)",
            server.port
        ))
    );
    holders.pop();
    check_until(&mut full, Duration::from_secs(10), |o| {
        *o == Outcome::Healthy
    })
    .await;

    // Smart shutdown waits for the connected clients and refuses new ones meanwhile.
    server.signal_postmaster(Signal::SIGTERM);
    let mut fresh = probe(&[
        "--dsn",
        &server.tcp_dsn(),
        "--password-file",
        good.to_str().unwrap(),
    ]);
    let outcome = check_until(&mut fresh, Duration::from_secs(10), |o| !o.is_serving()).await;
    assert_eq!(
        outcome,
        Outcome::unhealthy(format!(
            "connect 127.0.0.1:{}: server is shutting down (57P03: the database system is shutting down)",
            server.port
        ))
    );
}

#[tokio::test]
async fn connection_closed_by_idle_session_timeout_is_replaced_within_the_check() {
    let Some(installation) = Installation::find() else {
        return;
    };
    let dir = installation.directory();
    let server = installation.primary(dir.path(), "data", &["idle_session_timeout=1s"]);
    let good = password_file(dir.path(), "good.pw", PASSWORD);
    let mut reused = probe(&[
        "--dsn",
        &server.tcp_dsn(),
        "--password-file",
        good.to_str().unwrap(),
    ]);
    for round in 1..=2 {
        assert_eq!(check(&mut reused).await, Outcome::Healthy, "round {round}");
        exaprobe_testkit::wait_for(
            "the server to end the probe's idle session",
            Duration::from_secs(10),
            || {
                let others = server.query_local(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
                );
                (others == [Some("0".to_string())]).then_some(())
            },
        );
        assert_eq!(
            check(&mut reused).await,
            Outcome::Healthy,
            "round {round}: kept connection closed by the server"
        );
    }
}
