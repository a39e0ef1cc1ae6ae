//! exaprobe-icmp: announce anycast prefixes to ExaBGP while upstream hosts answer pings.
use std::process::ExitCode;

use exaprobe_core::{Binary, CommonOptions};
use exaprobe_icmp::{IcmpOptions, IcmpProbe};

fn main() -> ExitCode {
    let binary = Binary {
        drop_in: false,
        name: "exaprobe-icmp",
        about: "Announce anycast prefixes to ExaBGP while upstream hosts (or the default gateway) answer pings",
        example: "--gateway --count 3 --loss-down 50 --rtt-degraded 50ms",
        environment: &[],
    };
    exaprobe_core::main(binary, |icmp: &IcmpOptions, _common: &CommonOptions| {
        IcmpProbe::new(icmp)
    })
}
