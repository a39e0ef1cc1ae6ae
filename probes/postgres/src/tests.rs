//! Unit tests of option parsing, libpq resolution, the verdict and the target line.

use crate::errors::*;
use crate::options::*;
use crate::state::*;
use crate::*;
use clap::Parser;
use tokio_postgres::config::SslMode;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    probe: PostgresOptions,
}

fn options(args: &[&str]) -> PostgresOptions {
    Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
        .unwrap()
        .probe
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn byte_sizes_use_the_shared_parser() {
    assert_eq!(
        options(&["--max-lag-bytes", "16MB"]).max_lag_bytes,
        Some(16 << 20)
    );
    assert_eq!(
        options(&["--degraded-lag-bytes", "512kB"]).degraded_lag_bytes,
        Some(512 * 1024)
    );
    assert_eq!(
        options(&["--max-lag-bytes", "1048576"]).max_lag_bytes,
        Some(1_048_576)
    );
}

#[test]
fn bad_options_are_rejected_with_their_value() {
    let err = Cli::try_parse_from(["x", "--max-lag-bytes", "lots"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("'lots'"), "{err}");
    let err = Cli::try_parse_from(["x", "--dsn", "host='x password=s3cret"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("unterminated"), "{err}");
    let err = Cli::try_parse_from(["x", "--dsn", "postgres://u:s3cret@h/db?nonsense=1"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("nonsense") && !err.contains("s3cret"), "{err}");
    assert!(Cli::try_parse_from(["x", "--query", " "]).is_err());
    assert!(Cli::try_parse_from(["x", "--client-cert", "/c"]).is_err());
    assert!(Cli::try_parse_from(["x", "--role", "leader"]).is_err());
    let err = PostgresProbe::with_env(
        &options(&["--degraded-lag", "5", "--max-lag", "2"]),
        Duration::from_secs(1),
        &no_env,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("--degraded-lag"), "{err}");
    let err = PostgresProbe::with_env(
        &options(&["--dsn", "host=h sslmode=verify-full"]),
        Duration::from_secs(1),
        &no_env,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("--ca-file"), "{err}");
    let err = PostgresProbe::with_env(
        &options(&["--dsn", "host=h sslmode=maybe"]),
        Duration::from_secs(1),
        &no_env,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("'maybe'"), "{err}");
}

#[test]
fn listen_channels_are_plain_identifiers() {
    assert_eq!(
        options(&["--listen-channel", "patroni_role$1"]).listen_channel,
        Some("patroni_role$1".into())
    );
    for bad in ["", "1abc", "a-b", "a\"b", "a b", "é"] {
        let err = Cli::try_parse_from(["x", "--listen-channel", bad])
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a channel name"), "{bad}: {err}");
    }
    let err = parse_channel("a\nb").unwrap_err();
    assert!(!err.contains('\n'), "{err}");
    assert!(parse_channel(&"a".repeat(63)).is_ok());
    assert!(
        parse_channel(&"a".repeat(64))
            .unwrap_err()
            .contains("63 bytes")
    );
}

#[test]
fn dsn_debug_is_redacted() {
    let opts = options(&["--dsn", "postgresql://app:s3cret@db/app"]);
    assert!(!format!("{opts:?}").contains("s3cret"));
    let probe = PostgresProbe::with_env(&opts, Duration::from_secs(1), &no_env).unwrap();
    assert!(!probe.describe().contains("s3cret"));
    assert!(!format!("{probe:?}").contains("s3cret"));
    assert_eq!(
        probe.describe(),
        "postgres db:5432 user=app dbname=app sslmode=prefer"
    );
}

#[test]
fn environment_fills_what_the_dsn_leaves_unset() {
    let env = |name: &str| {
        Some(
            match name {
                "PGHOST" => "/run/pg,db2",
                "PGPORT" => "5433",
                "PGUSER" => "envuser",
                "PGDATABASE" => "envdb",
                "PGSSLMODE" => "require",
                "PGAPPNAME" => "checker",
                "PGPASSWORD" => "envpw",
                "PGCONNECT_TIMEOUT" => "1",
                _ => return None,
            }
            .to_string(),
        )
    };
    let probe = PostgresProbe::with_env(&options(&[]), Duration::from_secs(3), &env).unwrap();
    assert_eq!(
        probe.describe(),
        "postgres /run/pg/.s.PGSQL.5433,db2:5433 user=envuser dbname=envdb sslmode=require"
    );
    assert_eq!(probe.config.get_application_name(), Some("checker"));
    assert_eq!(probe.config.get_password(), Some(&b"envpw"[..]));
    assert_eq!(
        probe.config.get_connect_timeout(),
        Some(&Duration::from_secs(2))
    );
    assert_eq!(probe.config.get_ssl_mode(), SslMode::Require);

    let probe = PostgresProbe::with_env(
        &options(&[
            "--dsn",
            "postgresql://u@[::1]:7/db?application_name=mine&sslmode=disable",
        ]),
        Duration::from_secs(3),
        &env,
    )
    .unwrap();
    assert_eq!(
        probe.describe(),
        "postgres [::1]:7 user=u dbname=db sslmode=disable"
    );
    assert_eq!(probe.config.get_application_name(), Some("mine"));
    assert_eq!(
        probe.config.get_connect_timeout(),
        Some(&Duration::from_secs(2))
    );

    let probe = PostgresProbe::with_env(
        &options(&["--dsn", "host=/sock sslmode=require", "--role", "primary"]),
        Duration::from_secs(3),
        &no_env,
    )
    .unwrap();
    assert_eq!(
        probe.config.get_ssl_mode(),
        SslMode::Disable,
        "no TLS on Unix sockets"
    );
    assert_eq!(probe.config.get_application_name(), Some("exaprobe"));
    assert_eq!(
        probe.config.get_connect_timeout(),
        Some(&Duration::from_secs(3))
    );
    assert!(
        probe.describe().ends_with("sslmode=require role=primary"),
        "{}",
        probe.describe()
    );
}

#[test]
fn password_file_and_pgpass() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pgpass = dir.path().join("pgpass");
    std::fs::write(&pgpass, "h:5432:db:u:frompass\n").unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pgpass_text = pgpass.display().to_string();
    let env = |name: &str| (name == "PGPASSFILE").then(|| pgpass_text.clone());
    let probe = PostgresProbe::with_env(
        &options(&["--dsn", "host=h user=u dbname=db"]),
        Duration::from_secs(1),
        &env,
    )
    .unwrap();
    assert_eq!(probe.config.get_password(), Some(&b"frompass"[..]));
    // World-readable .pgpass files are ignored, as libpq does.
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let probe = PostgresProbe::with_env(
        &options(&["--dsn", "host=h user=u dbname=db"]),
        Duration::from_secs(1),
        &env,
    )
    .unwrap();
    assert_eq!(probe.config.get_password(), None);

    let file = dir.path().join("pw");
    std::fs::write(&file, "fromfile\n").unwrap();
    let args = [
        "--dsn",
        "host=h user=u dbname=db password=indsn",
        "--password-file",
        file.to_str().unwrap(),
    ];
    let probe = PostgresProbe::with_env(&options(&args), Duration::from_secs(1), &env).unwrap();
    assert_eq!(probe.config.get_password(), Some(&b"fromfile"[..]));
    let err = PostgresProbe::with_env(
        &options(&["--password-file", "/nonexistent/pw"]),
        Duration::from_secs(1),
        &no_env,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("--password-file"), "{err:#}");
}

fn replica() -> ServerState {
    ServerState {
        in_recovery: true,
        transaction_read_only: true,
        default_transaction_read_only: false,
        lag_bytes: Some(0),
        replay_age: Some(3600.0),
        wal_receiver: true,
        wal_receiver_status: Some("streaming".into()),
    }
}

fn checks() -> Checks {
    Checks {
        role: Role::Any,
        require_writable: false,
        max_lag: None,
        degraded_lag: None,
        max_lag_bytes: None,
        degraded_lag_bytes: None,
        require_streaming: false,
    }
}

#[test]
fn roles_and_writability() {
    let primary = ServerState::default();
    assert_eq!(
        verdict(
            &primary,
            &Checks {
                role: Role::Primary,
                ..checks()
            }
        ),
        None
    );
    assert_eq!(
        verdict(
            &replica(),
            &Checks {
                role: Role::Primary,
                ..checks()
            }
        ),
        Some(Outcome::unhealthy(
            "server is a replica (in recovery), expected a primary"
        ))
    );
    assert_eq!(
        verdict(
            &primary,
            &Checks {
                role: Role::Replica,
                ..checks()
            }
        ),
        Some(Outcome::unhealthy(
            "server is a primary (not in recovery), expected a replica"
        ))
    );
    let read_only = ServerState {
        default_transaction_read_only: true,
        ..ServerState::default()
    };
    assert_eq!(
        verdict(
            &read_only,
            &Checks {
                require_writable: true,
                ..checks()
            }
        ),
        Some(Outcome::unhealthy(
            "server is read-only: default_transaction_read_only=on"
        ))
    );
    assert_eq!(
        verdict(
            &read_only,
            &Checks {
                role: Role::Primary,
                ..checks()
            }
        ),
        None
    );
}

#[test]
fn lag_of_an_idle_primary_is_zero() {
    // Everything received is replayed: the old last transaction says nothing.
    let limits = Checks {
        max_lag: Some(Duration::from_secs(10)),
        ..checks()
    };
    assert_eq!(verdict(&replica(), &limits), None);
    let behind = ServerState {
        lag_bytes: Some(100),
        replay_age: Some(12.34),
        ..replica()
    };
    assert_eq!(
        verdict(&behind, &limits),
        Some(Outcome::unhealthy(
            "replication lag 12.3s over --max-lag 10s"
        ))
    );
    let soft = Checks {
        degraded_lag: Some(Duration::from_secs(5)),
        max_lag: Some(Duration::from_secs(60)),
        ..checks()
    };
    assert_eq!(
        verdict(&behind, &soft),
        Some(Outcome::degraded(
            "replication lag 12.3s over --degraded-lag 5s"
        ))
    );
}

#[test]
fn byte_lag_thresholds() {
    let behind = ServerState {
        lag_bytes: Some(5000),
        ..replica()
    };
    let limits = Checks {
        degraded_lag_bytes: Some(1000),
        max_lag_bytes: Some(10_000),
        ..checks()
    };
    assert_eq!(
        verdict(&behind, &limits),
        Some(Outcome::degraded(
            "replication lag 5000 bytes over --degraded-lag-bytes 1000"
        ))
    );
    let far = ServerState {
        lag_bytes: Some(20_000),
        ..replica()
    };
    assert_eq!(
        verdict(&far, &limits),
        Some(Outcome::unhealthy(
            "replication lag 20000 bytes over --max-lag-bytes 10000"
        ))
    );
    let unknown = ServerState {
        lag_bytes: None,
        ..replica()
    };
    assert!(
        matches!(verdict(&unknown, &limits), Some(Outcome::Unhealthy { reason }) if reason.contains("unknown"))
    );
    // Lag limits do not apply to a primary.
    assert_eq!(verdict(&ServerState::default(), &limits), None);
}

#[test]
fn streaming() {
    let limits = Checks {
        require_streaming: true,
        ..checks()
    };
    assert_eq!(verdict(&replica(), &limits), None);
    let gone = ServerState {
        wal_receiver: false,
        wal_receiver_status: None,
        ..replica()
    };
    assert_eq!(
        verdict(&gone, &limits),
        Some(Outcome::unhealthy(
            "WAL receiver not running: replica is not streaming"
        ))
    );
    let waiting = ServerState {
        wal_receiver_status: Some("waiting".into()),
        ..replica()
    };
    assert_eq!(
        verdict(&waiting, &limits),
        Some(Outcome::unhealthy("WAL receiver is waiting, not streaming"))
    );
    let hidden = ServerState {
        wal_receiver_status: None,
        ..replica()
    };
    assert!(
        matches!(verdict(&hidden, &limits), Some(Outcome::Unhealthy { reason }) if reason.contains("pg_monitor"))
    );
}

#[test]
fn server_errors_have_distinct_reasons() {
    assert_eq!(
        describe_db_error("53300", "sorry, too many clients already"),
        "too many connections (53300: sorry, too many clients already)"
    );
    assert!(
        describe_db_error("57P03", "the database system is starting up")
            .starts_with("server is starting up")
    );
    assert!(
        describe_db_error("57P03", "the database system is shutting down")
            .starts_with("server is shutting down")
    );
    assert!(
        describe_db_error("57P03", "the database system is in recovery mode")
            .starts_with("server is in crash recovery")
    );
    assert!(
        describe_db_error("28P01", "password authentication failed for user \"x\"")
            .starts_with("authentication failed")
    );
    assert_eq!(
        describe_db_error("42601", "syntax error"),
        "server error 42601: syntax error"
    );
}

/// `evaluate` as an optional outcome (`None`: healthy), as the tests were written.
fn verdict(state: &ServerState, checks: &Checks) -> Option<Outcome> {
    match evaluate(state, checks) {
        Ok(None) => None,
        finding => Some(Outcome::from(finding)),
    }
}
