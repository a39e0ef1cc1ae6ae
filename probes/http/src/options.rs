//! The HTTP check's options, each validated when parsed (status lists, regexes, headers).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};

/// Options of the HTTP check.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpOptions {
    /// URL to request (http:// or https://; IPv6 literals as http://[::1]:8080/). A password in
    /// it is sent as basic auth and shown as ***; prefer --password-file.
    #[arg(long, value_name = "URL", value_parser = parse_url, help_heading = "HTTP check")]
    pub url: Url,
    /// File holding the basic-auth password for the URL's user (first line).
    #[arg(long, value_name = "FILE", help_heading = "HTTP check")]
    pub password_file: Option<PathBuf>,
    /// Request method.
    #[arg(long, default_value = "GET", value_parser = parse_method, value_name = "METHOD", help_heading = "HTTP check")]
    pub method: Method,
    /// Request header 'Name: value'. Repeatable.
    #[arg(long = "header", value_name = "'NAME: VALUE'", value_parser = parse_header, help_heading = "HTTP check")]
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Request body.
    #[arg(
        long,
        value_name = "TEXT",
        conflicts_with = "body_file",
        help_heading = "HTTP check"
    )]
    pub body: Option<String>,
    /// Request body read from a file (once, at start).
    #[arg(long, value_name = "FILE", help_heading = "HTTP check")]
    pub body_file: Option<PathBuf>,
    /// Acceptable status codes: a list of codes and ranges, e.g. 200-299,301.
    #[arg(
        long,
        default_value = "200-299",
        value_name = "LIST",
        help_heading = "HTTP check"
    )]
    pub expect_status: StatusRanges,
    /// The body must match this regular expression.
    #[arg(long, value_name = "REGEX", value_parser = exaprobe_core::kit::parse::bytes_regex, help_heading = "HTTP check")]
    pub expect_body: Option<regex::bytes::Regex>,
    /// The body must NOT match this regular expression (e.g. a maintenance page).
    #[arg(long, value_name = "REGEX", value_parser = exaprobe_core::kit::parse::bytes_regex, help_heading = "HTTP check")]
    pub reject_body: Option<regex::bytes::Regex>,
    /// A response header must exist and match: 'Name: REGEX'. Repeatable.
    #[arg(
        long = "expect-header",
        value_name = "'NAME: REGEX'",
        help_heading = "HTTP check"
    )]
    pub expect_headers: Vec<HeaderExpectation>,
    /// Read at most this many bytes of the body for the body checks (units: 64kB, 1MiB, ...).
    #[arg(long, default_value = "65536", value_parser = exaprobe_core::kit::parse::parse_byte_size_usize, value_name = "BYTES", help_heading = "HTTP check")]
    pub max_body_bytes: usize,
    /// Connect to this address instead of resolving the URL's host, keeping the host for the
    /// Host header and TLS: IP, IP:PORT, [IPV6]:PORT, or HOST:PORT:IP.
    #[arg(long, value_name = "ADDRESS", help_heading = "HTTP check")]
    pub connect_to: Option<ConnectTo>,
    /// Whom to trust and how much to verify for https:// URLs.
    #[command(flatten)]
    pub tls: exaprobe_tls::TlsArgs,
    /// Degraded when the server certificate expires in fewer than this many days.
    #[arg(long, value_name = "DAYS", help_heading = "HTTP check")]
    pub cert_expiry_warn: Option<u32>,
    /// Follow redirects (up to 10) instead of judging the 3xx answer.
    #[arg(long, help_heading = "HTTP check")]
    pub follow_redirects: bool,
    /// Use HTTP_PROXY/HTTPS_PROXY/NO_PROXY from the environment (ignored by default).
    #[arg(long, help_heading = "HTTP check")]
    pub use_env_proxy: bool,
    /// Speak HTTP/2 without negotiation (h2c on plain http://).
    #[arg(long, conflicts_with = "http1_only", help_heading = "HTTP check")]
    pub http2_prior_knowledge: bool,
    /// Only HTTP/1.1 (no h2 via ALPN).
    #[arg(long, help_heading = "HTTP check")]
    pub http1_only: bool,
    /// A new connection (TCP and TLS handshake) for every check instead of reusing one.
    #[arg(long, help_heading = "HTTP check")]
    pub fresh_connection: bool,
}

/// A URL, refused when it holds a control character (the URL standard would drop a newline or
/// tab silently, making another URL) or an unbracketed IPv6 address. Errors do not repeat the
/// value (clap shows it, redacted by the loader).
fn parse_url(text: &str) -> Result<Url, String> {
    exaprobe_core::redact::reject_controls(text)?;
    Url::parse(text).map_err(|error| {
        let authority = text
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
            .unwrap_or("");
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        match exaprobe_core::address::parse_host_port(
            hostport,
            Some(80),
            exaprobe_core::address::Syntax::Url,
        ) {
            Err(hint) if hostport.contains("::") || hostport.matches(':').count() > 1 => {
                format!("not a URL: {hint}")
            }
            _ => format!("not a URL: {error}"),
        }
    })
}

fn parse_method(text: &str) -> Result<Method, String> {
    Method::from_bytes(text.trim().to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("'{text}' is not an HTTP method"))
}

/// A header from `--header 'Name: value'`.
fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}' is not a header (expected 'Name: value')"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("'{}' is not a valid header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim()).map_err(|_| {
        format!("the value of header '{name}' has characters not allowed in a header")
    })?;
    Ok((name, value))
}

/// Acceptable status codes: codes and inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRanges(Vec<(u16, u16)>);

impl StatusRanges {
    /// True when `status` is acceptable.
    pub fn contains(&self, status: u16) -> bool {
        self.0
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&status))
    }
}

impl FromStr for StatusRanges {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |part: &str| {
            format!("'{part}' in '{text}' is not a status code or range (e.g. 200-299,301)")
        };
        let code = |part: &str, whole: &str| -> Result<u16, String> {
            part.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| bad(whole))
        };
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let range = match part.split_once('-') {
                Some((low, high)) => (code(low, part)?, code(high, part)?),
                None => (code(part, part)?, code(part, part)?),
            };
            if range.0 > range.1 {
                return Err(bad(part));
            }
            ranges.push(range);
        }
        if ranges.is_empty() {
            return Err("empty status list".into());
        }
        Ok(StatusRanges(ranges))
    }
}

impl fmt::Display for StatusRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(low, high)| {
                if low == high {
                    low.to_string()
                } else {
                    format!("{low}-{high}")
                }
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// `--expect-header 'Name: REGEX'`.
#[derive(Debug, Clone)]
pub struct HeaderExpectation {
    name: HeaderName,
    pattern: regex::Regex,
}

impl HeaderExpectation {
    /// Ok when the header exists and one of its values matches.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), String> {
        let values: Vec<&HeaderValue> = headers.get_all(&self.name).iter().collect();
        if values.is_empty() {
            return Err(format!("header {} missing", self.name));
        }
        if values
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| self.pattern.is_match(v)))
        {
            return Ok(());
        }
        let shown = values
            .first()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("(not text)");
        Err(format!(
            "header {} '{}' does not match '{}'",
            self.name,
            exaprobe_core::kit::reason::preview(shown.as_bytes()),
            self.pattern
        ))
    }
}

impl FromStr for HeaderExpectation {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (name, pattern) = text
            .split_once(':')
            .ok_or_else(|| format!("'{text}' is not 'Name: REGEX'"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("'{}' is not a valid header name", name.trim()))?;
        let pattern = exaprobe_core::kit::parse::regex(pattern.trim())?;
        Ok(HeaderExpectation { name, pattern })
    }
}

/// `--connect-to`: where to connect instead of resolving the URL's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectTo {
    /// This address, the URL's port.
    Address(IpAddr),
    /// This address and port.
    Socket(std::net::SocketAddr),
    /// Requests to HOST:PORT go to IP (same port).
    Mapping {
        /// Host the mapping applies to.
        host: String,
        /// Port the mapping applies to.
        port: u16,
        /// Address to connect to.
        address: IpAddr,
    },
}

impl ConnectTo {
    /// The name to override and the address to use, for a URL with `host` and `port`.
    pub fn resolve(&self, host: &str, port: u16) -> anyhow::Result<(String, std::net::SocketAddr)> {
        match self {
            ConnectTo::Address(ip) => Ok((host.to_string(), std::net::SocketAddr::new(*ip, port))),
            ConnectTo::Socket(address) => Ok((host.to_string(), *address)),
            ConnectTo::Mapping {
                host: from,
                port: from_port,
                address,
            } => {
                if !from.eq_ignore_ascii_case(host) || *from_port != port {
                    anyhow::bail!(
                        "--connect-to {from}:{from_port}:{address} does not match the URL's {host}:{port}"
                    );
                }
                Ok((host.to_string(), std::net::SocketAddr::new(*address, port)))
            }
        }
    }
}

impl FromStr for ConnectTo {
    type Err = String;
    /// IP or IP:PORT by the shared `HOST:PORT` rule (a bare IPv6 address has no port), else
    /// HOST:PORT:IP.
    fn from_str(text: &str) -> Result<Self, String> {
        use exaprobe_core::address::{Syntax, parse_host_port};
        let text = text.trim();
        let bad = || format!("'{text}' is not IP, IP:PORT, [IPV6]:PORT or HOST:PORT:IP");
        // Port 0 is never written (the parser refuses it): it marks "no port given".
        match parse_host_port(text, Some(0), Syntax::Option) {
            Ok(address) => match address.ip() {
                Some(ip) if address.port == 0 => return Ok(ConnectTo::Address(ip)),
                Some(ip) => {
                    return Ok(ConnectTo::Socket(std::net::SocketAddr::new(
                        ip,
                        address.port,
                    )));
                }
                None => {}
            },
            Err(hint) if hint.contains("ambiguous") => return Err(hint),
            Err(_) => {}
        }
        let mut parts = text.splitn(3, ':');
        let (Some(host), Some(port), Some(address)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let port = port.parse::<u16>().map_err(|_| bad())?;
        let address = address
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .map_err(|_| bad())?;
        if host.is_empty() {
            return Err(bad());
        }
        Ok(ConnectTo::Mapping {
            host: host.to_string(),
            port,
            address,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges() {
        let ranges: StatusRanges = "200-299, 301,418".parse().unwrap();
        assert!(
            ranges.contains(200)
                && ranges.contains(299)
                && ranges.contains(301)
                && ranges.contains(418)
        );
        assert!(!ranges.contains(300) && !ranges.contains(503));
        assert_eq!(ranges.to_string(), "200-299,301,418");
        for bad in ["", "abc", "299-200", "99", "600", "200-", "2OO"] {
            assert!(bad.parse::<StatusRanges>().is_err(), "{bad}");
        }
    }

    #[test]
    fn connect_to_forms() {
        assert_eq!(
            "127.0.0.1".parse(),
            Ok(ConnectTo::Address("127.0.0.1".parse().unwrap()))
        );
        assert_eq!(
            "::1".parse(),
            Ok(ConnectTo::Address("::1".parse().unwrap()))
        );
        assert_eq!(
            "[::1]:8443".parse(),
            Ok(ConnectTo::Socket("[::1]:8443".parse().unwrap()))
        );
        assert_eq!(
            "www.example.com:443:192.0.2.7".parse(),
            Ok(ConnectTo::Mapping {
                host: "www.example.com".into(),
                port: 443,
                address: "192.0.2.7".parse().unwrap()
            })
        );
        assert_eq!(
            "www.example.com:443:2001:db8::7"
                .parse::<ConnectTo>()
                .unwrap()
                .resolve("www.example.com", 443)
                .unwrap()
                .1,
            "[2001:db8::7]:443".parse().unwrap()
        );
        assert!(
            "www.example.com:443:192.0.2.7"
                .parse::<ConnectTo>()
                .unwrap()
                .resolve("other.example", 443)
                .is_err()
        );
        for bad in ["", "example.com", "host:port:ip", ":443:192.0.2.1"] {
            assert!(bad.parse::<ConnectTo>().is_err(), "{bad}");
        }
        let error = "::1:8443".parse::<ConnectTo>().unwrap_err();
        assert!(error.contains("[::1]:8443"), "{error}");
    }

    #[test]
    fn urls_with_control_characters_or_bare_ipv6_are_refused() {
        assert!(parse_url("http://127.0.0.1/health").is_ok());
        for bad in [
            "http://127.0.0.1/he\nalth",
            "http://127.0.0.1/\t",
            "http://h/\r",
        ] {
            let error = parse_url(bad).unwrap_err();
            assert!(error.contains("control character"), "{error}");
        }
        let error = parse_url("http://::1:8080/").unwrap_err();
        assert!(error.contains("[::1]:8080"), "{error}");
        let error = parse_url("http://u:SECRETPW@h:port/").unwrap_err();
        assert!(!error.contains("SECRETPW"), "{error}");
    }

    #[test]
    fn headers_and_expectations() {
        let (name, value) = parse_header("X-Token: abc def").unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("x-token", "abc def")
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("Bad Name: x").is_err());
        assert!(parse_header("X: a\nb").is_err());
        let expectation: HeaderExpectation = "X-Ready: ^yes$".parse().unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(
            expectation.check(&headers).unwrap_err(),
            "header x-ready missing"
        );
        headers.insert("x-ready", HeaderValue::from_static("no"));
        assert!(
            expectation
                .check(&headers)
                .unwrap_err()
                .contains("'no' does not match '^yes$'")
        );
        headers.insert("x-ready", HeaderValue::from_static("yes"));
        assert!(expectation.check(&headers).is_ok());
        assert!("X: (".parse::<HeaderExpectation>().is_err());
    }
}
