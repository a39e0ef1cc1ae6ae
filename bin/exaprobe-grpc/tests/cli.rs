//! The exaprobe-grpc binary: `--check-config` shows what is checked, `--once` asks a real gRPC
//! server (testkit's tonic health server) and exits 0 for SERVING, 2 for NOT_SERVING, 1 for
//! UNKNOWN, each with the Nagios-style line.

use std::path::Path;

use exaprobe_testkit::cli::run;
use exaprobe_testkit::grpc::{Config, GrpcServer, ServingStatus};

const BINARY: &str = env!("CARGO_BIN_EXE_exaprobe-grpc");

fn binary() -> &'static Path {
    Path::new(BINARY)
}

#[test]
fn check_config_names_the_service_and_the_address() {
    let result = run(
        binary(),
        &[
            "--address",
            "[::1]:50051",
            "--service",
            "shop.v1.Cart",
            "--check-config",
            "--prefix",
            "192.0.2.1/32",
        ],
        &[],
    );
    assert_eq!(result.code, Some(0), "{result:?}");
    assert!(
        result
            .stdout
            .contains("check: grpc://[::1]:50051 service \"shop.v1.Cart\"\n"),
        "{result:?}"
    );
}

#[test]
fn once_against_a_real_server() {
    let server = GrpcServer::start(&Config::default());
    let address = server.address.to_string();
    server.set("shop.v1.Cart", ServingStatus::Serving);
    let args = ["--address", &address, "--service", "shop.v1.Cart", "--once"];
    let result = run(binary(), &args, &[]);
    assert_eq!(result.code, Some(0), "{result:?}");
    assert!(
        result.stdout.starts_with(&format!(
            "EXAPROBE-GRPC OK - grpc://{address} service \"shop.v1.Cart\": healthy"
        )),
        "{result:?}"
    );
    server.set("shop.v1.Cart", ServingStatus::Unknown);
    let result = run(binary(), &args, &[]);
    assert_eq!(result.code, Some(1), "{result:?}");
    assert!(result.stdout.contains("UNKNOWN (the server"), "{result:?}");
    server.set("shop.v1.Cart", ServingStatus::NotServing);
    let result = run(binary(), &args, &[]);
    assert_eq!(result.code, Some(2), "{result:?}");
    assert!(
        result.stdout.contains(&format!(
            "service \"shop.v1.Cart\" on {address}: NOT_SERVING"
        )),
        "{result:?}"
    );
}
