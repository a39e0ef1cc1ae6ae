//! exaprobe-grpc: announce anycast prefixes to ExaBGP while a gRPC server reports SERVING.
use std::process::ExitCode;

use exaprobe_core::{Binary, CommonOptions};
use exaprobe_grpc::{GrpcOptions, GrpcProbe};

fn main() -> ExitCode {
    let binary = Binary {
        drop_in: false,
        name: "exaprobe-grpc",
        about: "Announce anycast prefixes to ExaBGP while a gRPC server reports SERVING to the standard health check",
        example: "--address 127.0.0.1:50051 --service shop.v1.Cart",
        environment: &[],
    };
    exaprobe_core::main(binary, |grpc: &GrpcOptions, common: &CommonOptions| {
        GrpcProbe::new(grpc, common.timeout())
    })
}
