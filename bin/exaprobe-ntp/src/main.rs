//! exaprobe-ntp: announce anycast prefixes to ExaBGP while an NTP server serves good time.
use std::process::ExitCode;

use exaprobe_core::{Binary, CommonOptions};
use exaprobe_ntp::{NtpOptions, NtpProbe};

fn main() -> ExitCode {
    let binary = Binary {
        drop_in: false,
        name: "exaprobe-ntp",
        about: "Announce anycast prefixes to ExaBGP while an NTP server answers with synchronised time",
        example: "--server 127.0.0.1 --root-distance-degraded 100ms",
        environment: &[],
    };
    exaprobe_core::main(binary, |ntp: &NtpOptions, common: &CommonOptions| {
        NtpProbe::new(ntp, common.timeout())
    })
}
