//! The Redis check's options and their parsers: where the node is (`--url`), who logs in, what
//! it must be (`--role`, link age, lag, a canary key) and which Sentinels have a say.

use std::time::Duration;

use exaprobe_core::address::{HostPort, Syntax, parse_host_port};

use crate::target::RedisUrl;

/// Which role the node must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Writable master (for a write VIP).
    Master,
    /// Replica (for a read VIP).
    Replica,
    /// Either.
    Any,
}

/// Options of the Redis check.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisOptions {
    /// redis://[USER@]HOST:PORT[/DB], rediss:// for TLS, unix:///PATH[?db=N]. IPv6 as [::1].
    #[arg(
        long,
        default_value = "redis://127.0.0.1:6379",
        value_name = "URL",
        help_heading = "Redis check"
    )]
    pub url: RedisUrl,
    /// ACL user name (AUTH USER PASSWORD).
    #[arg(long, value_name = "USER", help_heading = "Redis check")]
    pub username: Option<String>,
    /// File holding the password (first line). Otherwise REDISCLI_AUTH, as redis-cli.
    #[arg(long, value_name = "FILE", help_heading = "Redis check")]
    pub password_file: Option<std::path::PathBuf>,
    /// Required role (from INFO replication).
    #[arg(long, value_enum, default_value = "any", help_heading = "Redis check")]
    pub role: Role,
    /// A replica is unhealthy when it last heard from its master longer ago than this.
    #[arg(long, value_parser = exaprobe_core::kit::parse::parse_positive_duration, value_name = "DURATION", help_heading = "Redis check")]
    pub max_link_age: Option<Duration>,
    /// A replica is unhealthy when it is more than this many bytes behind its master (units:
    /// 512kB, 16MB, 64MiB, 1m).
    #[arg(long, value_name = "BYTES", value_parser = exaprobe_core::kit::parse::parse_byte_size, help_heading = "Redis check")]
    pub max_lag_bytes: Option<u64>,
    /// A replica is degraded (worse MED) when more than this many bytes behind its master.
    #[arg(long, value_name = "BYTES", value_parser = exaprobe_core::kit::parse::parse_byte_size, help_heading = "Redis check")]
    pub degraded_lag_bytes: Option<u64>,
    /// GET KEY must return VALUE (a canary key written by your application).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_key_value, help_heading = "Redis check")]
    pub expect_key: Option<(String, String)>,
    /// Ask this Sentinel who the master is; announce only if it is this node. Repeat (or give
    /// a comma-separated list) for several Sentinels: the check asks them in turn until one
    /// answers, and the event watcher subscribes to one and fails over to the next.
    #[arg(
        long,
        value_name = "HOST:PORT",
        value_parser = parse_address,
        value_delimiter = ',',
        requires = "master_name",
        help_heading = "Redis check"
    )]
    pub sentinel: Vec<HostPort>,
    /// The master name known to the Sentinel.
    #[arg(
        long,
        value_name = "NAME",
        requires = "sentinel",
        help_heading = "Redis check"
    )]
    pub master_name: Option<String>,
    /// This node's address as the Sentinel reports it (default: the host:port of --url).
    #[arg(
        long,
        value_name = "HOST:PORT",
        value_parser = parse_address,
        requires = "sentinel",
        help_heading = "Redis check"
    )]
    pub announce_address: Option<HostPort>,
    /// Whom to trust and how much to verify for rediss:// URLs.
    #[command(flatten)]
    pub tls: exaprobe_tls::TlsArgs,
    /// A new connection for every check instead of reusing one.
    #[arg(long, help_heading = "Redis check")]
    pub fresh_connection: bool,
}

/// `--sentinel` and `--announce-address` by the shared `HOST:PORT` rule (port required, IPv6
/// in brackets).
pub(crate) fn parse_address(text: &str) -> Result<HostPort, String> {
    parse_host_port(text, None, Syntax::Option)
}

pub(crate) fn parse_key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("'{text}' is not KEY=VALUE"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values() {
        assert_eq!(
            parse_key_value("canary=ok"),
            Ok(("canary".into(), "ok".into()))
        );
        assert_eq!(parse_key_value("k=a=b"), Ok(("k".into(), "a=b".into())));
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("novalue").is_err());
    }

    #[test]
    fn sentinels_repeat_or_come_as_a_list() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            redis: RedisOptions,
        }
        let cli = Cli::try_parse_from([
            "exaprobe-redis",
            "--sentinel",
            "127.0.0.1:26379,[::1]:26380",
            "--sentinel",
            "s3.example:26381",
            "--master-name",
            "cache",
        ])
        .unwrap();
        let shown: Vec<String> = cli.redis.sentinel.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["127.0.0.1:26379", "[::1]:26380", "s3.example:26381"]
        );
    }
}
