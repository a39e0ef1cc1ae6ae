//! exaprobe-tcp: announce anycast prefixes to ExaBGP while a TCP service is healthy.
use std::process::ExitCode;

use exaprobe_core::{Binary, CommonOptions};
use exaprobe_tcp::{TcpOptions, TcpProbe};

fn main() -> ExitCode {
    let binary = Binary {
        drop_in: false,
        name: "exaprobe-tcp",
        about: "Announce anycast prefixes to ExaBGP while a TCP service accepts connections (and answers as expected)",
        example: "--address 127.0.0.1:25 --expect '^220 '",
        environment: &[],
    };
    exaprobe_core::main(binary, |tcp: &TcpOptions, common: &CommonOptions| {
        TcpProbe::new(tcp, common.timeout())
    })
}
