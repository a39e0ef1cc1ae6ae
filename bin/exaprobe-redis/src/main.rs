//! exaprobe-redis: announce anycast prefixes to ExaBGP while a Redis node is healthy.
use std::process::ExitCode;

use exaprobe_core::{Binary, CommonOptions};
use exaprobe_redis::{RedisOptions, RedisProbe};

fn main() -> ExitCode {
    let binary = Binary {
        drop_in: false,
        name: "exaprobe-redis",
        about: "Announce anycast prefixes to ExaBGP while a Redis node is healthy (role, replica link, Sentinel)",
        example: "--url redis://127.0.0.1:6379 --role master",
        environment: &[(
            "REDISCLI_AUTH",
            "the password, when no --password-file is given",
        )],
    };
    exaprobe_core::main(binary, |redis: &RedisOptions, _common: &CommonOptions| {
        RedisProbe::new(redis)
    })
}
