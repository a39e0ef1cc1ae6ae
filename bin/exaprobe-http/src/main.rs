//! exaprobe-http: announce anycast prefixes to ExaBGP while an HTTP(S) endpoint is healthy.
use std::process::ExitCode;

use exaprobe_core::{Binary, CommonOptions};
use exaprobe_http::{HttpOptions, HttpProbe};

fn main() -> ExitCode {
    let binary = Binary {
        drop_in: false,
        name: "exaprobe-http",
        about: "Announce anycast prefixes to ExaBGP while an HTTP(S) endpoint answers as expected",
        example: "--url http://127.0.0.1/health",
        environment: &[],
    };
    exaprobe_core::main(binary, |http: &HttpOptions, _common: &CommonOptions| {
        HttpProbe::new(http)
    })
}
