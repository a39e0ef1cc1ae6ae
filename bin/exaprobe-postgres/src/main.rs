//! exaprobe-postgres: announce anycast prefixes to ExaBGP while PostgreSQL is healthy.
use std::process::ExitCode;

use exaprobe_core::{Binary, CommonOptions};
use exaprobe_postgres::{PostgresOptions, PostgresProbe};

fn main() -> ExitCode {
    let binary = Binary {
        drop_in: false,
        name: "exaprobe-postgres",
        about: "Announce anycast prefixes to ExaBGP while a PostgreSQL server is healthy (role, lag, TLS)",
        example: "--dsn 'host=/var/run/postgresql dbname=postgres' --role primary",
        environment: &[
            (
                "PGHOST, PGPORT, PGUSER, PGDATABASE, PGSSLMODE, PGCONNECT_TIMEOUT, PGAPPNAME",
                "fill what --dsn leaves unset, as in libpq",
            ),
            (
                "PGPASSWORD, PGPASSFILE",
                "the password, when no --password-file is given",
            ),
        ],
    };
    exaprobe_core::main(
        binary,
        |postgres: &PostgresOptions, common: &CommonOptions| {
            PostgresProbe::new(postgres, common.timeout())
        },
    )
}
