//! `--url`: where the node is (TCP host and port, or a Unix socket), TLS or not, which database,
//! and credentials found in the URL (accepted, but shown nowhere).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// TCP host (name or address) and port.
    Tcp {
        /// Host name or address (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// A Unix socket path.
    Unix(PathBuf),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Endpoint::Tcp { host, port } => write!(f, "{host}:{port}"),
            Endpoint::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A parsed `--url`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// Where.
    pub endpoint: Endpoint,
    /// `rediss://`.
    pub tls: bool,
    /// Database number.
    pub db: i64,
    /// User name from the URL.
    pub username: Option<String>,
    /// Password from the URL (never displayed).
    pub password: Option<String>,
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.endpoint {
            Endpoint::Unix(path) => write!(f, "unix://{}?db={}", path.display(), self.db),
            tcp => write!(
                f,
                "{}://{tcp}/{}",
                if self.tls { "rediss" } else { "redis" },
                self.db
            ),
        }
    }
}

impl FromStr for RedisUrl {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "--url is not a Redis URL ({why}): expected redis://HOST:PORT[/DB], rediss://..., or unix:///PATH"
            )
        };
        exaprobe_core::redact::reject_controls(text).map_err(|why| format!("--url {why}"))?;
        let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("no scheme"))?;
        if scheme == "unix" || scheme == "redis+unix" {
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            if !path.starts_with('/') {
                return Err(bad("the socket path must be absolute"));
            }
            let db = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("db="))
                .map(|db| db.parse::<i64>().map_err(|_| bad("db is not a number")))
                .transpose()?
                .unwrap_or(0);
            return Ok(RedisUrl {
                endpoint: Endpoint::Unix(PathBuf::from(path)),
                tls: false,
                db,
                username: None,
                password: None,
            });
        }
        let tls = match scheme {
            "redis" => false,
            "rediss" => true,
            _ => return Err(bad("scheme must be redis, rediss or unix")),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, hostport) = match authority.rsplit_once('@') {
            Some((credentials, hostport)) => (Some(credentials), hostport),
            None => (None, authority),
        };
        let (username, password) = match credentials {
            None => (None, None),
            Some(credentials) => match credentials.split_once(':') {
                Some((user, password)) => (
                    (!user.is_empty()).then(|| user.to_string()),
                    Some(password.to_string()),
                ),
                None => (Some(credentials.to_string()), None),
            },
        };
        let address = exaprobe_core::address::parse_host_port(
            hostport,
            Some(6379),
            exaprobe_core::address::Syntax::Url,
        )
        .map_err(|why| bad(&why))?;
        let (host, port) = (address.host_string(), address.port);
        let db = if path.is_empty() {
            0
        } else {
            path.parse::<i64>()
                .map_err(|_| bad("the path must be a database number"))?
        };
        Ok(RedisUrl {
            endpoint: Endpoint::Tcp { host, port },
            tls,
            db,
            username,
            password,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let url: RedisUrl = "redis://127.0.0.1:6380/2".parse().unwrap();
        assert_eq!(
            url.endpoint,
            Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: 6380
            }
        );
        assert_eq!((url.db, url.tls), (2, false));
        let url: RedisUrl = "rediss://app:s3cret@[::1]/0".parse().unwrap();
        assert_eq!(
            url.endpoint,
            Endpoint::Tcp {
                host: "::1".into(),
                port: 6379
            }
        );
        assert!(url.tls);
        assert_eq!(
            (url.username.as_deref(), url.password.as_deref()),
            (Some("app"), Some("s3cret"))
        );
        assert_eq!(
            url.to_string(),
            "rediss://[::1]:6379/0",
            "no credentials when shown"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        let url: RedisUrl = "redis://:pw@cache.example".parse().unwrap();
        assert_eq!((url.username, url.password.as_deref()), (None, Some("pw")));
        let url: RedisUrl = "unix:///run/redis/redis.sock?db=3".parse().unwrap();
        assert_eq!(url.endpoint, Endpoint::Unix("/run/redis/redis.sock".into()));
        assert_eq!(url.db, 3);
        for bad in [
            "127.0.0.1:6379",
            "http://x",
            "redis://",
            "redis://h:port",
            "redis://h/x",
            "unix://relative",
            "redis://[::1",
            "redis://h:6379/0\n",
            "redis://::1",
        ] {
            assert!(bad.parse::<RedisUrl>().is_err(), "{bad}");
        }
        let error = "redis://::1:6380".parse::<RedisUrl>().unwrap_err();
        assert!(error.contains("[::1]:6380"), "{error}");
        let error = "redis://:SECRETPW@h:notaport"
            .parse::<RedisUrl>()
            .unwrap_err();
        assert!(!error.contains("SECRETPW"), "{error}");
    }
}
