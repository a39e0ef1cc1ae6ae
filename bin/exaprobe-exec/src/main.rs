//! exaprobe-exec: announce anycast prefixes to ExaBGP while a program exits 0.
use std::process::ExitCode;

use exaprobe_core::{Binary, CommonOptions};
use exaprobe_exec::{ExecOptions, ExecProbe};

fn main() -> ExitCode {
    let binary = Binary {
        drop_in: true,
        name: "exaprobe-exec",
        about: "Announce anycast prefixes to ExaBGP while a program exits 0 (a drop-in for `exabgp healthcheck`: same options)",
        example: "-- /usr/bin/systemctl is-active --quiet nginx",
        environment: &[],
    };
    exaprobe_core::main(binary, |exec: &ExecOptions, _common: &CommonOptions| {
        ExecProbe::new(exec)
    })
}
