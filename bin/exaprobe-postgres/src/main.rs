//! exaprobe-postgres: announce anycast prefixes to ExaBGP while PostgreSQL is healthy.
use std::process::ExitCode;

use exaprobe_core::{Binary, CommonOptions};
use exaprobe_postgres::{PostgresOptions, PostgresProbe};

fn main() -> ExitCode {
    let binary = Binary {
        name: "exaprobe-postgres",
        about: "Announce anycast prefixes to ExaBGP while a PostgreSQL server is healthy (role, lag, TLS)",
    };
    exaprobe_core::main(
        binary,
        |postgres: &PostgresOptions, common: &CommonOptions| {
            PostgresProbe::new(postgres, common.timeout)
        },
    )
}
