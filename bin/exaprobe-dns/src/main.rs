//! exaprobe-dns: announce anycast prefixes to ExaBGP while a DNS server is healthy.
use std::process::ExitCode;

use exaprobe_core::{Binary, CommonOptions};
use exaprobe_dns::{DnsOptions, DnsProbe};

fn main() -> ExitCode {
    let binary = Binary {
        drop_in: false,
        name: "exaprobe-dns",
        about: "Announce anycast prefixes to ExaBGP while a DNS server answers as expected",
        example: "--server 127.0.0.1 --query example.com --type SOA",
        environment: &[],
    };
    exaprobe_core::main(binary, |dns: &DnsOptions, _common: &CommonOptions| {
        DnsProbe::new(dns)
    })
}
