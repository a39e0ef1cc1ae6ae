//! exaprobe-redis: announce anycast prefixes to ExaBGP while a Redis node is healthy.
use std::process::ExitCode;

use exaprobe_core::{Binary, CommonOptions};
use exaprobe_redis::{RedisOptions, RedisProbe};

fn main() -> ExitCode {
    let binary = Binary {
        name: "exaprobe-redis",
        about: "Announce anycast prefixes to ExaBGP while a Redis node is healthy (role, replica link, Sentinel)",
    };
    exaprobe_core::main(binary, |redis: &RedisOptions, _common: &CommonOptions| {
        RedisProbe::new(redis)
    })
}
