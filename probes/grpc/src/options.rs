//! The gRPC check's options and their parsers: what to ask (`--service`), where (`--address`,
//! `--authority`), and the shared TLS options.

use std::str::FromStr;

use exaprobe_core::address::{HostPort, Syntax, parse_host_port};
use tonic::codegen::http::uri::Authority;

/// Options of the gRPC check.
#[derive(Debug, Clone, clap::Args)]
pub struct GrpcOptions {
    /// Where the gRPC server listens: HOST:PORT, IP:PORT or [IPV6]:PORT. Every address of a name
    /// is tried.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_address, help_heading = "gRPC check")]
    pub address: HostPort,
    /// The service to ask grpc.health.v1.Health/Check about; empty or absent: the server's
    /// overall health.
    #[arg(long, value_name = "NAME", value_parser = parse_service, help_heading = "gRPC check")]
    pub service: Option<String>,
    /// The :authority of the requests, HOST or HOST:PORT (default: --address); with --tls also
    /// the name the certificate is verified against, unless --tls-server-name is given.
    #[arg(long, value_name = "HOST[:PORT]", value_parser = parse_authority, help_heading = "gRPC check")]
    pub authority: Option<Authority>,
    /// Speak gRPC over TLS (ALPN h2) instead of plain-text HTTP/2.
    #[arg(long, help_heading = "gRPC check")]
    pub tls: bool,
    /// Whom to trust and how much to verify with --tls; the certificate is verified against
    /// --tls-server-name, else the host of --authority, else the host of --address.
    #[command(flatten)]
    pub tls_args: exaprobe_tls::TlsArgs,
}

/// `--address` by the shared `HOST:PORT` rule: the port is required, IPv6 in brackets.
fn parse_address(text: &str) -> Result<HostPort, String> {
    parse_host_port(text, None, Syntax::Option)
}

/// `--service`: any text a protobuf string holds, but one line (it is named in every reason).
fn parse_service(text: &str) -> Result<String, String> {
    exaprobe_core::redact::reject_controls(text)?;
    Ok(text.to_string())
}

/// `--authority`: an HTTP/2 authority without user information (which gRPC never sends).
fn parse_authority(text: &str) -> Result<Authority, String> {
    if text.contains('@') {
        return Err("an authority is HOST or HOST:PORT, without user@".into());
    }
    let authority = Authority::from_str(text)
        .map_err(|_| format!("'{text}' is not a valid authority (HOST or HOST:PORT)"))?;
    if authority.host().is_empty() {
        return Err(format!("'{text}' has no host"));
    }
    let port = authority.as_str()[authority.host().len()..].strip_prefix(':');
    if port.is_some_and(|port| !matches!(port.parse::<u16>(), Ok(1..))) {
        return Err(format!(
            "'{text}': the port is not a number from 1 to 65535"
        ));
    }
    Ok(authority)
}

/// The host of an authority as a TLS name: IPv6 without its brackets.
pub(crate) fn authority_host(authority: &Authority) -> &str {
    authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        for good in ["svc.example", "svc.example:443", "[::1]:50051", "10.0.0.1"] {
            assert_eq!(parse_authority(good).unwrap().as_str(), good);
        }
        assert_eq!(
            authority_host(&parse_authority("[::1]:50051").unwrap()),
            "::1"
        );
        for bad in [
            "user@svc.example",
            "svc example",
            "",
            ":443",
            "svc:port",
            "svc:0",
            "svc:",
        ] {
            assert!(parse_authority(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn services_are_one_line() {
        assert_eq!(parse_service("pkg.Service").unwrap(), "pkg.Service");
        assert_eq!(parse_service("").unwrap(), "");
        assert!(parse_service("a\nb").is_err());
    }
}
