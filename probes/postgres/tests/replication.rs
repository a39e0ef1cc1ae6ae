//! A primary and a streaming replica (pg_basebackup -R) through a whole failover story:
//! healthy primary, replica seen as replica, lag from paused replay, primary stopped,
//! replica promoted. One cluster pair for the whole story keeps the test time down.

mod common;

use std::time::Duration;

use common::*;
use exaprobe_core::{Outcome, Probe};

#[tokio::test]
async fn primary_replica_failover() {
    let Some(installation) = Installation::find() else {
        return;
    };
    let dir = installation.directory();
    let mut primary = installation.primary(dir.path(), "primary", &[]);
    let replica = installation.replica(dir.path(), "replica", &primary);
    let good = password_file(dir.path(), "good.pw", PASSWORD);
    let bad = password_file(dir.path(), "bad.pw", "not-the-password");
    let good = good.to_str().unwrap();
    let primary_tcp = primary.tcp_dsn();
    let replica_tcp = replica.tcp_dsn();

    // Healthy primary, over TCP with SCRAM and over the Unix socket.
    let mut on_primary = probe(&[
        "--dsn",
        &primary_tcp,
        "--password-file",
        good,
        "--role",
        "primary",
        "--require-writable",
    ]);
    assert_eq!(
        on_primary.describe(),
        format!(
            "postgres 127.0.0.1:{} user=postgres dbname=postgres sslmode=disable role=primary",
            primary.port
        )
    );
    assert_eq!(check(&mut on_primary).await, Outcome::Healthy);
    assert_eq!(
        check(&mut on_primary).await,
        Outcome::Healthy,
        "reused connection"
    );
    let mut over_socket = probe(&["--dsn", &primary.socket_dsn(), "--role", "primary"]);
    assert_eq!(check(&mut over_socket).await, Outcome::Healthy);

    // The session carries application_name=exaprobe and the probe's statement_timeout.
    let mut settings = probe(&[
        "--dsn",
        &primary_tcp,
        "--password-file",
        good,
        "--query",
        "SELECT current_setting('application_name') || ' ' || current_setting('statement_timeout')",
        "--expect",
        "exaprobe 5s",
    ]);
    assert_eq!(check(&mut settings).await, Outcome::Healthy);
    let mut mismatch = probe(&[
        "--dsn",
        &primary_tcp,
        "--password-file",
        good,
        "--query",
        "SELECT 41 + 1",
        "--expect",
        "41",
    ]);
    assert_eq!(
        check(&mut mismatch).await,
        Outcome::unhealthy("query returned '42', expected '41'")
    );
    let mut broken = probe(&[
        "--dsn",
        &primary_tcp,
        "--password-file",
        good,
        "--query",
        "SELECT nope",
    ]);
    assert_eq!(
        check(&mut broken).await,
        Outcome::unhealthy("query failed: server error 42703: column \"nope\" does not exist")
    );

    // Wrong password (SCRAM in pg_hba.conf), and no password at all.
    let mut wrong = probe(&[
        "--dsn",
        &primary_tcp,
        "--password-file",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(
        check(&mut wrong).await,
        Outcome::unhealthy(format!(
            "connect 127.0.0.1:{}: authentication failed (28P01: password authentication failed for user \"postgres\")",
            primary.port
        ))
    );
    let mut missing = probe(&["--dsn", &format!("{primary_tcp} passfile=/nonexistent")]);
    assert!(
        unhealthy_reason(&check(&mut missing).await)
            .contains("authentication failed: the server asks for a password"),
    );

    // Transparent reconnect: the server ends the probe's session between two checks.
    let mut reconnecting = probe(&[
        "--dsn",
        &format!("{primary_tcp} application_name=exaprobe-reconnect"),
        "--password-file",
        good,
    ]);
    assert_eq!(check(&mut reconnecting).await, Outcome::Healthy);
    let terminated = primary.query_local(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'exaprobe-reconnect'",
    );
    assert_eq!(terminated, vec![Some("1".to_string())]);
    assert_eq!(check(&mut reconnecting).await, Outcome::Healthy);

    // --fresh-connection leaves no session behind between checks.
    let mut fresh = probe(&[
        "--dsn",
        &format!("{primary_tcp} application_name=exaprobe-fresh"),
        "--password-file",
        good,
        "--fresh-connection",
    ]);
    assert_eq!(check(&mut fresh).await, Outcome::Healthy);
    exaprobe_testkit::wait_for(
        "the fresh connection to close",
        Duration::from_secs(10),
        || {
            (primary.query_local(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'exaprobe-fresh'",
            ) == vec![Some("0".to_string())])
            .then_some(())
        },
    );

    // The replica is seen as a replica, streaming, within bounds.
    let mut as_replica = probe(&[
        "--dsn",
        &replica_tcp,
        "--password-file",
        good,
        "--role",
        "replica",
        "--require-streaming",
        "--max-lag",
        "1s",
        "--max-lag-bytes",
        "1MB",
    ]);
    check_until(&mut as_replica, Duration::from_secs(30), |o| {
        *o == Outcome::Healthy
    })
    .await;
    let mut as_primary = probe(&[
        "--dsn",
        &replica_tcp,
        "--password-file",
        good,
        "--role",
        "primary",
    ]);
    assert_eq!(
        check(&mut as_primary).await,
        Outcome::unhealthy("server is a replica (in recovery), expected a primary")
    );
    let mut writable = probe(&[
        "--dsn",
        &replica_tcp,
        "--password-file",
        good,
        "--require-writable",
    ]);
    assert_eq!(
        check(&mut writable).await,
        Outcome::unhealthy("server is read-only: transaction_read_only=on (in recovery)")
    );
    let mut replica_as_replica = probe(&[
        "--dsn",
        &primary_tcp,
        "--password-file",
        good,
        "--role",
        "replica",
    ]);
    assert_eq!(
        check(&mut replica_as_replica).await,
        Outcome::unhealthy("server is a primary (not in recovery), expected a replica")
    );

    // Idle primary: the last replayed transaction grows old, but nothing is pending, so the
    // lag is zero and --max-lag 1s stays healthy.
    primary.execute_local("CREATE TABLE filler (n int)");
    exaprobe_testkit::wait_for(
        "the replica to replay and then idle for 1.5s",
        Duration::from_secs(30),
        || {
            let rows = replica.query_local(
                "SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() \
             AND now() - pg_last_xact_replay_timestamp() > interval '1.5 seconds'",
            );
            (rows == vec![Some("t".to_string())]).then_some(())
        },
    );
    assert_eq!(check(&mut as_replica).await, Outcome::Healthy);

    // Replay paused while the primary writes: byte lag grows past the thresholds.
    replica.execute_local("SELECT pg_wal_replay_pause()");
    primary.execute_local("INSERT INTO filler SELECT generate_series(1, 100000)");
    let mut byte_lag = probe(&[
        "--dsn",
        &replica_tcp,
        "--password-file",
        good,
        "--degraded-lag-bytes",
        "64kB",
        "--max-lag-bytes",
        "1MB",
    ]);
    let outcome = check_until(&mut byte_lag, Duration::from_secs(30), |o| !o.is_serving()).await;
    let reason = unhealthy_reason(&outcome);
    assert!(
        reason.starts_with("replication lag ")
            && reason.ends_with(" bytes over --max-lag-bytes 1048576"),
        "{reason}"
    );
    let mut soft_lag = probe(&[
        "--dsn",
        &replica_tcp,
        "--password-file",
        good,
        "--degraded-lag-bytes",
        "64kB",
        "--max-lag-bytes",
        "1GB",
    ]);
    match check(&mut soft_lag).await {
        Outcome::Degraded {
            penalty: None,
            reason,
        } => {
            assert!(
                reason.ends_with(" bytes over --degraded-lag-bytes 65536"),
                "{reason}"
            )
        }
        other => panic!("expected degraded, got {other:?}"),
    }
    let mut time_lag = probe(&[
        "--dsn",
        &replica_tcp,
        "--password-file",
        good,
        "--max-lag",
        "1s",
    ]);
    let reason = unhealthy_reason(&check(&mut time_lag).await).to_string();
    assert!(
        reason.starts_with("replication lag ") && reason.ends_with("s over --max-lag 1s"),
        "{reason}"
    );

    // Replay resumed: back to healthy.
    replica.execute_local("SELECT pg_wal_replay_resume()");
    check_until(&mut byte_lag, Duration::from_secs(30), |o| {
        *o == Outcome::Healthy
    })
    .await;
    check_until(&mut as_replica, Duration::from_secs(30), |o| {
        *o == Outcome::Healthy
    })
    .await;

    // The primary stops: it refuses connections, and the replica's WAL receiver is gone.
    primary.stop();
    let reason = unhealthy_reason(&check(&mut on_primary).await).to_string();
    assert!(
        reason.starts_with(&format!("connect 127.0.0.1:{}: ", primary.port))
            && reason.contains("Connection refused"),
        "{reason}"
    );
    let mut streaming = probe(&[
        "--dsn",
        &replica_tcp,
        "--password-file",
        good,
        "--require-streaming",
    ]);
    let outcome = check_until(&mut streaming, Duration::from_secs(30), |o| !o.is_serving()).await;
    let reason = unhealthy_reason(&outcome);
    assert!(
        reason == "WAL receiver not running: replica is not streaming"
            || reason.starts_with("WAL receiver is "),
        "{reason}"
    );
    let mut lenient = probe(&[
        "--dsn",
        &replica_tcp,
        "--password-file",
        good,
        "--role",
        "replica",
    ]);
    assert_eq!(
        check(&mut lenient).await,
        Outcome::Healthy,
        "without --require-streaming"
    );

    // Promotion flips the role; the long-lived connection sees it without reconnecting.
    let mut to_be_primary = probe(&[
        "--dsn",
        &replica_tcp,
        "--password-file",
        good,
        "--role",
        "primary",
        "--require-writable",
    ]);
    assert_eq!(
        check(&mut to_be_primary).await,
        Outcome::unhealthy("server is a replica (in recovery), expected a primary")
    );
    assert_eq!(
        replica.query_local("SELECT pg_promote()"),
        vec![Some("t".to_string())]
    );
    check_until(&mut to_be_primary, Duration::from_secs(30), |o| {
        *o == Outcome::Healthy
    })
    .await;
    assert_eq!(
        check(&mut lenient).await,
        Outcome::unhealthy("server is a primary (not in recovery), expected a replica")
    );
    assert_eq!(
        check(&mut streaming).await,
        Outcome::Healthy,
        "a primary streams from nobody"
    );
}
