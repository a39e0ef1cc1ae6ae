//! libpq connection strings and environment, as operators already write them.
//!
//! tokio-postgres parses most of a libpq DSN but not every key libpq knows (`verify-ca`,
//! `verify-full`, `sslrootcert`, `passfile`, ...). This module takes those keys out before
//! tokio-postgres sees the string, redacts passwords for display, and reads `.pgpass` files.

use std::borrow::Cow;

/// Keys handled here rather than by tokio-postgres.
const EXTRA_KEYS: &[&str] = &["sslmode", "sslrootcert", "sslcert", "sslkey", "passfile"];

/// DSN keys tokio-postgres does not understand, taken out of the string.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Extras {
    /// `sslmode`, any libpq value.
    pub sslmode: Option<String>,
    /// `sslrootcert`: CA bundle.
    pub sslrootcert: Option<String>,
    /// `sslcert`: client certificate.
    pub sslcert: Option<String>,
    /// `sslkey`: client key.
    pub sslkey: Option<String>,
    /// `passfile`: a .pgpass file.
    pub passfile: Option<String>,
}

impl Extras {
    fn set(&mut self, key: &str, value: String) {
        match key {
            "sslmode" => self.sslmode = Some(value),
            "sslrootcert" => self.sslrootcert = Some(value),
            "sslcert" => self.sslcert = Some(value),
            "sslkey" => self.sslkey = Some(value),
            "passfile" => self.passfile = Some(value),
            _ => {}
        }
    }
}

fn url_body(dsn: &str) -> Option<&str> {
    dsn.strip_prefix("postgresql://")
        .or_else(|| dsn.strip_prefix("postgres://"))
}

fn url_prefix_len(dsn: &str) -> usize {
    if dsn.starts_with("postgresql://") {
        "postgresql://".len()
    } else {
        "postgres://".len()
    }
}

fn decode(text: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| format!("'{text}' is not valid percent-encoded UTF-8"))
}

/// A `key = value` connection string, tokenized like libpq.
fn keyword_pairs(dsn: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = dsn.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            if chars.peek().is_some() {
                return Err("expected a key before '='".into());
            }
            return Ok(pairs);
        }
        // libpq keywords are plain names; anything else (say a URL) must not survive cleaning,
        // where it could turn the string into a URL with a password redaction never saw.
        if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err("a key may only hold letters, digits and '_'".into());
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("expected '=' after '{key}'"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quoted value for '{key}'")),
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
            if value.is_empty() {
                return Err(format!("missing value for '{key}'"));
            }
        }
        pairs.push((key, value));
    }
}

fn quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('\'');
    quoted
}

/// Where a URL's query string starts: after the credentials, which may hold a `?`.
fn url_query_start(dsn: &str) -> Option<usize> {
    let start = dsn.find('@').map_or(url_prefix_len(dsn), |at| at + 1);
    dsn[start..].find('?').map(|i| start + i)
}

/// Take the keys tokio-postgres does not know out of `dsn`.
pub(crate) fn split_extras(dsn: &str) -> Result<(String, Extras), String> {
    let dsn = dsn.trim();
    let mut extras = Extras::default();
    if url_body(dsn).is_some() {
        let Some(query_at) = url_query_start(dsn) else {
            return Ok((dsn.to_string(), extras));
        };
        let mut kept = Vec::new();
        for param in dsn[query_at + 1..].split('&').filter(|p| !p.is_empty()) {
            let (key, value) = param
                .split_once('=')
                .ok_or_else(|| format!("URL parameter '{param}' has no '='"))?;
            let key = decode(key)?;
            if EXTRA_KEYS.contains(&key.as_str()) {
                extras.set(&key, decode(value)?);
            } else {
                kept.push(param);
            }
        }
        let mut clean = dsn[..query_at].to_string();
        if !kept.is_empty() {
            clean.push('?');
            clean.push_str(&kept.join("&"));
        }
        return Ok((clean, extras));
    }
    let mut kept = Vec::new();
    for (key, value) in keyword_pairs(dsn)? {
        if EXTRA_KEYS.contains(&key.as_str()) {
            extras.set(&key, value);
        } else {
            kept.push(format!("{key}={}", quote(&value)));
        }
    }
    Ok((kept.join(" "), extras))
}

/// The DSN with any password replaced by `***`, for logs and debug output: the shared rule of
/// every probe in its conservative form ([`exaprobe_core::redact::redact_input`]: up to the
/// last `@`, as libpq-style parsers read a URL's user information, found by fuzzing), control
/// characters escaped.
pub(crate) fn redact(dsn: &str) -> String {
    exaprobe_core::redact::escape_controls(&exaprobe_core::redact::redact_input(dsn.trim()))
}

/// Refuse what would make a DSN unsafe to show or ambiguous to read: a control character in a
/// URL or inside a `key=value` value (whitespace between pairs is fine), and in a URL an IPv6
/// host with a port outside brackets (`postgresql://::1:5432/db`; write `[::1]:5432`).
pub(crate) fn check_values(dsn: &str) -> Result<(), String> {
    let dsn = dsn.trim();
    if url_body(dsn).is_none() {
        for (key, value) in keyword_pairs(dsn).unwrap_or_default() {
            exaprobe_core::redact::reject_controls(&value)
                .map_err(|why| format!("the value of '{key}' {why}"))?;
        }
        return Ok(());
    }
    exaprobe_core::redact::reject_controls(dsn)?;
    let body = &dsn[url_prefix_len(dsn)..];
    let authority = body.split(['/', '?']).next().unwrap_or("");
    let hosts = authority
        .rsplit_once('@')
        .map_or(authority, |(_, hosts)| hosts);
    for host in hosts.split(',').filter(|h| !h.is_empty()) {
        exaprobe_core::address::parse_host_port(
            host,
            Some(5432),
            exaprobe_core::address::Syntax::Url,
        )?;
    }
    Ok(())
}

/// Split one `.pgpass` line into its five fields, unescaping `\:` and `\\`.
fn pgpass_fields(line: &str) -> Option<Vec<String>> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut()?.extend(chars.next()),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut()?.push(c),
        }
    }
    (fields.len() == 5).then_some(fields)
}

/// The password for (host, port, database, user) in `.pgpass` text: first matching line wins,
/// `*` matches anything. Unix-socket hosts match `localhost`, as in libpq.
pub(crate) fn pgpass_lookup(
    text: &str,
    host: &str,
    port: u16,
    database: &str,
    user: &str,
) -> Option<String> {
    let host = if host.is_empty() || host.starts_with('/') {
        "localhost"
    } else {
        host
    };
    let port = port.to_string();
    let wanted = [host, port.as_str(), database, user];
    text.lines()
        .map(|line| line.trim_end_matches('\r'))
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .filter_map(pgpass_fields)
        .find(|fields| {
            fields
                .iter()
                .zip(wanted)
                .all(|(field, value)| field == "*" || field == value)
        })
        .and_then(|fields| fields.into_iter().nth(4))
        .filter(|password| !password.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_extras_are_removed_and_the_rest_requoted() {
        let (clean, extras) = split_extras(
            "host=db1 port = 5433 sslmode=verify-full sslrootcert='/etc/ca dir/ca.pem' application_name='my app'",
        )
        .unwrap();
        assert_eq!(clean, "host='db1' port='5433' application_name='my app'");
        assert_eq!(extras.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(extras.sslrootcert.as_deref(), Some("/etc/ca dir/ca.pem"));
        let config: tokio_postgres::Config = clean.parse().unwrap();
        assert_eq!(config.get_ports(), &[5433]);
        assert_eq!(config.get_application_name(), Some("my app"));
    }

    #[test]
    fn quotes_and_backslashes_survive_requoting() {
        let (clean, _) = split_extras(r"password='it\'s \\ x' user=a\ b").unwrap();
        let config: tokio_postgres::Config = clean.parse().unwrap();
        assert_eq!(config.get_password(), Some(&br"it's \ x"[..]));
        assert_eq!(config.get_user(), Some("a b"));
    }

    #[test]
    fn url_extras_are_removed() {
        let (clean, extras) =
            split_extras("postgresql://u:p%3Fw@[::1]:5433/db?sslmode=verify-ca&application_name=x&passfile=%2Ftmp%2Fpp")
                .unwrap();
        assert_eq!(
            clean,
            "postgresql://u:p%3Fw@[::1]:5433/db?application_name=x"
        );
        assert_eq!(extras.sslmode.as_deref(), Some("verify-ca"));
        assert_eq!(extras.passfile.as_deref(), Some("/tmp/pp"));
        let (clean, _) = split_extras("postgres://h/db?sslmode=require").unwrap();
        assert_eq!(clean, "postgres://h/db");
        let (clean, _) = split_extras("postgres://u:pa?ss@h/db").unwrap();
        assert_eq!(clean, "postgres://u:pa?ss@h/db");
    }

    #[test]
    fn malformed_strings_are_errors_not_panics() {
        assert!(split_extras("host").is_err());
        assert!(split_extras("host=").is_err());
        assert!(split_extras("host='x").is_err());
        assert!(split_extras("=x").is_err());
        assert!(split_extras("postgres://h/db?sslmode").is_err());
        assert!(split_extras("postgres://h/db?sslmode=%ff").is_err());
        assert_eq!(split_extras("").unwrap().0, "");
    }

    /// Found by fuzzing (postgres_dsn): a URL-like key made the cleaned DSN a URL, whose
    /// password the redaction (which saw a key=value string) left in place.
    #[test]
    fn keys_are_plain_names() {
        let raw = "sslmode=require postgresql://u:secret@h/db?x=1";
        assert!(split_extras(raw).is_err());
        assert!(!redact(raw).contains("secret"), "{}", redact(raw));
    }

    #[test]
    fn passwords_are_redacted() {
        // Found by fuzzing: tokio-postgres reads everything up to the last `@` as user
        // information, here user `h/db?application_nstgres` and password `//h/db?...=a`.
        let odd = "postgres://h/db?application_nstgres://h/db?application_name=a@b";
        assert!(
            !redact(odd).contains("application_name=a@"),
            "{}",
            redact(odd)
        );
        assert_eq!(
            redact("postgres://u:secret@h:5/db"),
            "postgres://u:***@h:5/db"
        );
        assert_eq!(
            redact("postgres://u@h/db?password=secret&x=1"),
            "postgres://u@h/db?password=***&x=1"
        );
        assert_eq!(
            redact("host=h password='se cret' user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(
            redact("host=h password='unterminated"),
            "host=h password=***"
        );
        assert_eq!(redact("host=h user='a\nb'"), "host=h user='a\\nb'");
        assert_eq!(redact("host=h user=u"), "host=h user=u");
    }

    #[test]
    fn control_characters_and_bare_ipv6_are_refused() {
        assert!(check_values("host=h\n  dbname=app\tuser=u").is_ok());
        let error = check_values("host=h user='a\nINFO forged'").unwrap_err();
        assert!(error.contains("'user'") && error.contains("\\n"), "{error}");
        assert!(check_values("postgresql://u@h/d\nb").is_err());
        assert!(check_values("postgresql://u@[::1]:5432,h2:5433,%2Frun/db").is_ok());
        let error = check_values("postgresql://u@::1:5432/db").unwrap_err();
        assert!(error.contains("[::1]:5432"), "{error}");
    }

    #[test]
    fn pgpass_matching() {
        let text = "# comment\n\
                    other:*:*:*:nope\n\
                    localhost:5432:app:bob:sock\\:pw\n\
                    db1:*:*:bob:tcp\\\\pw\n\
                    *:*:*:*:fallback\n";
        assert_eq!(
            pgpass_lookup(text, "/var/run/postgresql", 5432, "app", "bob").as_deref(),
            Some("sock:pw")
        );
        assert_eq!(
            pgpass_lookup(text, "db1", 6543, "x", "bob").as_deref(),
            Some("tcp\\pw")
        );
        assert_eq!(
            pgpass_lookup(text, "db2", 1, "x", "eve").as_deref(),
            Some("fallback")
        );
        assert_eq!(pgpass_lookup("a:b\n", "a", 1, "x", "y"), None);
        assert_eq!(pgpass_lookup("", "a", 1, "x", "y"), None);
    }
}
