//! What the gRPC probe's test files share: the probe from argv, the deadline the runner gives,
//! and a TLS server with the test CA.

use std::time::Duration;

use clap::Parser;
use exaprobe_grpc::{GrpcOptions, GrpcProbe};
use exaprobe_testkit::certs::Pki;
use exaprobe_testkit::grpc::{Config, GrpcServer, ServingStatus};

/// The probes' `--timeout`.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(1);

/// The deadline a check started now gets under TIMEOUT (the runner gives the same).
pub(crate) fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + TIMEOUT.mul_f64(0.95)
}

/// A probe from its command-line options.
pub(crate) fn probe(args: &[&str]) -> GrpcProbe {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        grpc: GrpcOptions,
    }
    let mut argv = vec!["exaprobe-grpc"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{e}"));
    GrpcProbe::new(&cli.grpc, TIMEOUT).unwrap()
}

/// A TLS server with a certificate for svc.example from a test CA, `shop.Cart` SERVING; the
/// CA's file is `--ca-file`.
pub(crate) fn tls_server() -> (Pki, GrpcServer) {
    let pki = Pki::new("exaprobe grpc test CA");
    let identity = pki.server(&["svc.example"], (-1, 30));
    let server = GrpcServer::start(&Config {
        tls: Some(identity.server_config(&[b"h2"])),
        ..Config::default()
    });
    server.set("shop.Cart", ServingStatus::Serving);
    (pki, server)
}
