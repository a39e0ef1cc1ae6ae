//! The TCP check's options and their parsers: where to connect (`--address`), what to say and
//! expect (`--send`, `--expect`, `--max-read-bytes`), TLS, and `--keep-open` (the watcher's
//! kept connection).

use exaprobe_core::address::{HostPort, Syntax, parse_host_port};
use exaprobe_tls::TlsArgs;

/// Options of the TCP check.
#[derive(Debug, Clone, clap::Args)]
pub struct TcpOptions {
    /// Where to connect: HOST:PORT, IP:PORT or [IPV6]:PORT. Every address of a name is tried.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_address, help_heading = "TCP check")]
    pub address: HostPort,
    /// Send this after connecting (escapes: \r \n \t \\ \xHH).
    #[arg(long, value_name = "TEXT", help_heading = "TCP check")]
    pub send: Option<Payload>,
    /// The first bytes read must match this regular expression (e.g. '^220 ' for SMTP).
    #[arg(long, value_name = "REGEX", value_parser = exaprobe_core::kit::parse::bytes_regex, help_heading = "TCP check")]
    pub expect: Option<regex::bytes::Regex>,
    /// Read at most this many bytes looking for --expect (units: 4kB, 1MiB, ...).
    #[arg(long, default_value = "4096", value_parser = exaprobe_core::kit::parse::parse_byte_size_usize, value_name = "BYTES", help_heading = "TCP check")]
    pub max_read_bytes: usize,
    /// Complete a TLS handshake after connecting (then send/expect go over TLS).
    #[arg(long, help_heading = "TCP check")]
    pub tls: bool,
    /// Whom to trust and how much to verify with --tls.
    #[command(flatten)]
    pub tls_args: TlsArgs,
    /// Between checks, hold one connection open to --address (after the TLS handshake with
    /// --tls; nothing is ever sent on it, whatever --send says): the server closing or
    /// resetting it starts a check at once (an event, unless --events off).
    #[arg(long, help_heading = "TCP check")]
    pub keep_open: bool,
}

/// `--address` by the shared `HOST:PORT` rule: the port is required, IPv6 in brackets.
fn parse_address(text: &str) -> Result<HostPort, String> {
    parse_host_port(text, None, Syntax::Option)
}

/// The bytes of `--send`, escapes decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload(pub Vec<u8>);

impl std::str::FromStr for Payload {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        parse_escaped(text).map(Payload)
    }
}

/// Decode `\r \n \t \\ \0 \xHH` in `--send`.
pub fn parse_escaped(text: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buffer = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => bytes.push(b'\r'),
            Some('n') => bytes.push(b'\n'),
            Some('t') => bytes.push(b'\t'),
            Some('0') => bytes.push(0),
            Some('\\') => bytes.push(b'\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let byte = u8::from_str_radix(&hex, 16)
                    .map_err(|_| format!("'\\x{hex}' in '{text}' is not a hex byte"))?;
                bytes.push(byte);
            }
            Some(other) => return Err(format!("unknown escape '\\{other}' in '{text}'")),
            None => return Err(format!("'{text}' ends with a lone backslash")),
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(parse_escaped(r"PING\r\n").unwrap(), b"PING\r\n");
        assert_eq!(parse_escaped(r"a\\b\t\x41\0").unwrap(), b"a\\b\tA\0");
        assert!(parse_escaped(r"\q").is_err());
        assert!(parse_escaped(r"\xZZ").is_err());
        assert!(parse_escaped("end\\").is_err());
    }

    #[test]
    fn addresses() {
        for good in [
            "127.0.0.1:25",
            "[::1]:53",
            "mail.example:587",
            "localhost:1",
        ] {
            assert_eq!(
                parse_address(good).map(|a| a.to_string()),
                Ok(good.to_string())
            );
        }
        let error = parse_address("::1:80").unwrap_err();
        assert!(error.contains("[::1]:80"), "{error}");
        assert!(parse_address("::1").unwrap_err().contains("[::1]:PORT"));
        for bad in [
            "127.0.0.1",
            "host:0",
            "host:99999",
            ":25",
            "a b:25",
            "[]:25",
        ] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
    }
}
