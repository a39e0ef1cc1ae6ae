//! The PostgreSQL watcher (issue 27) against a real server started by the test: a fast
//! shutdown (`pg_ctl stop -m fast`) and a restart on the same port, a NOTIFY on
//! `--listen-channel`, and sessions ended by `idle_session_timeout`.

mod common;

use std::time::Duration;

use common::*;
use exaprobe_core::Probe;
use exaprobe_core::kit::events::{EventKind, Events, TakenEvents};
use exaprobe_postgres::PostgresProbe;
use exaprobe_testkit::wait_for;

/// A guard against a hang, not a timing assertion.
const GUARD: Duration = Duration::from_secs(60);

/// Start `probe`'s watcher on a new latch; the task ends with the test's runtime.
fn watch(probe: &PostgresProbe) -> Events {
    let events = Events::new();
    tokio::spawn(
        probe
            .watch(events.clone())
            .expect("the postgres probe watches"),
    );
    events
}

async fn next(events: &Events) -> TakenEvents {
    tokio::time::timeout(GUARD, events.next())
        .await
        .expect("an event within the guard")
}

/// The backends of the watcher (application_name exaprobe), once `ready` holds for their
/// last statements (`pg_stat_activity.query`).
fn watcher_sessions(server: &Server, ready: impl Fn(&[Option<String>]) -> bool) -> Vec<String> {
    wait_for("the watcher's session", GUARD, || {
        let queries = server.query_local(
            "SELECT pid || ' ' || query FROM pg_stat_activity WHERE application_name = 'exaprobe'",
        );
        ready(&queries).then(|| queries.into_iter().flatten().collect())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_shutdown_is_one_suspicion_and_a_restart_reconnects() {
    let Some(installation) = Installation::find() else {
        return;
    };
    let dir = installation.directory();
    let mut server = installation.primary(dir.path(), "data", &[]);
    let good = password_file(dir.path(), "good.pw", PASSWORD);
    let events = watch(&probe(&[
        "--dsn",
        &server.tcp_dsn(),
        "--password-file",
        good.to_str().unwrap(),
    ]));
    watcher_sessions(&server, |sessions| sessions.len() == 1);

    server.stop_fast();
    let taken = next(&events).await;
    assert_eq!(
        taken.suspicion(),
        Some(
            format!(
                "postgres 127.0.0.1:{}: connection terminated by the server (shutdown or \
                 pg_terminate_backend) (57P01: terminating connection due to administrator command)",
                server.port
            )
            .as_str()
        )
    );
    assert_eq!(taken.authoritative(), None);

    server.restart();
    watcher_sessions(&server, |sessions| sessions.len() == 1);
    assert_eq!(
        events.total(EventKind::Suspicion),
        1,
        "refused reconnections while the server was down are no events"
    );

    // pg_terminate_backend ends the session the same way: a new suspicion (a new outage).
    server.query_local(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'exaprobe'",
    );
    assert!(next(&events).await.suspicion().is_some());
    watcher_sessions(&server, |sessions| sessions.len() == 1);
    assert_eq!(events.total(EventKind::Suspicion), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notify_on_the_listen_channel_is_a_suspicion() {
    let Some(installation) = Installation::find() else {
        return;
    };
    let dir = installation.directory();
    let server = installation.primary(dir.path(), "data", &[]);
    let events = watch(&probe(&[
        "--dsn",
        &server.socket_dsn(),
        "--listen-channel",
        "exaprobe_failover",
    ]));
    watcher_sessions(&server, |sessions| {
        sessions
            .iter()
            .flatten()
            .any(|s| s.ends_with("LISTEN \"exaprobe_failover\""))
    });

    server.execute_local("NOTIFY other_channel, 'not for us'");
    server.execute_local("SELECT pg_notify('exaprobe_failover', E'role=replica\\n  node=b')");
    let taken = next(&events).await;
    assert_eq!(
        taken.suspicion(),
        Some(
            format!(
                "postgres {}/.s.PGSQL.{}: NOTIFY on exaprobe_failover: role=replica node=b",
                server.socket_dir.display(),
                server.port
            )
            .as_str()
        )
    );
    assert_eq!(taken.count(), 1, "a NOTIFY on another channel is not heard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_ended_by_idle_session_timeout_are_no_events() {
    let Some(installation) = Installation::find() else {
        return;
    };
    let dir = installation.directory();
    let server = installation.primary(dir.path(), "data", &["idle_session_timeout=200ms"]);
    let events = watch(&probe(&["--dsn", &server.socket_dsn()]));
    let first = watcher_sessions(&server, |sessions| sessions.len() == 1);
    let second = watcher_sessions(&server, |sessions| {
        sessions.len() == 1 && sessions.iter().flatten().all(|s| !first.contains(s))
    });
    watcher_sessions(&server, |sessions| {
        sessions.len() == 1
            && sessions
                .iter()
                .flatten()
                .all(|s| !first.contains(s) && !second.contains(s))
    });
    assert_eq!(events.take().count(), 0);
}
