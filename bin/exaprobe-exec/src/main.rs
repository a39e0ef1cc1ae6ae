//! exaprobe-exec: announce anycast prefixes to ExaBGP while a program exits 0.
use std::process::ExitCode;

use clap::Parser;
use exaprobe_core::{CommonOptions, ProbeOptions};
use exaprobe_exec::{ExecOptions, ExecProbe};

/// Announce anycast prefixes to ExaBGP while a program exits 0 (a drop-in for `exabgp healthcheck --cmd`).
#[derive(Debug, Parser)]
#[command(name = "exaprobe-exec", version, about, long_about = None)]
struct Options {
    #[command(flatten)]
    probe: ExecOptions,
    #[command(flatten)]
    common: CommonOptions,
}

impl ProbeOptions for Options {
    fn common(&self) -> &CommonOptions {
        &self.common
    }
}

fn main() -> ExitCode {
    exaprobe_core::main::<Options, _, _>(|options| {
        ExecProbe::new(&options.probe, options.common.timeout)
    })
}
