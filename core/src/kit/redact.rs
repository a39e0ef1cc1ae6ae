//! The one redaction rule: a password never reaches a log line, a status line or an error.
//!
//! Every place a target is shown (the `starting target=` log line, `--once`, `--check-config`,
//! clap's errors, the state dump) goes through this module, so the rule lives here only:
//!
//! - the password of a URL's userinfo becomes `***`: `http://user:***@host/`,
//!   `redis://:***@h:6379`, `postgresql://app:***@db/app`;
//! - a `password` or `sslpassword` key or URL parameter keeps its key and loses its value:
//!   `host=db password=*** user=app`, `postgres://db/app?password=***`.
//!
//! When a malformed value leaves it unclear where a password ends, more is hidden rather than
//! less. [`for_display`] also escapes control characters, so a value holding a newline cannot
//! forge a log line.

/// A URL or DSN value (`--url`, `--dsn`, a target) with its password replaced by `***`. The
/// whole value is one URL or DSN; its authority ends at the first `/`, `?` or `#` (RFC 3986), so
/// `http://h:8080/a?who=me@example` keeps its query. Idempotent.
pub fn redact_value(value: &str) -> String {
    redact_keys(
        &redact_userinfo(value, Scope::Whole, Precision::Exact),
        Scope::Whole,
    )
}

/// A free text (an error message quoting values) with every URL password and `password=` value
/// replaced by `***`. URLs end at whitespace or a quote; for a malformed URL more is hidden
/// rather than less. Idempotent.
pub fn redact_text(text: &str) -> String {
    redact_keys(
        &redact_userinfo(text, Scope::Tokens, Precision::Conservative),
        Scope::Tokens,
    )
}

/// An operator's raw input, possibly malformed (a password with an unencoded `/` or a space),
/// redacted as one value, hiding more rather than less: for errors that echo what was given.
pub fn redact_input(raw: &str) -> String {
    redact_keys(
        &redact_userinfo(raw, Scope::Whole, Precision::Conservative),
        Scope::Whole,
    )
}

/// True when an operator's input holds a password (to warn about one on the command line).
pub fn contains_password(raw: &str) -> bool {
    redact_input(raw) != raw
}

/// Redacted, with control characters escaped (`\n`, `\r`, `\t`, `\u{1b}`): the form in which a
/// target or an operator's value may be shown on one line.
pub fn for_display(value: &str) -> String {
    escape_controls(&redact_value(value))
}

/// Control characters written as escapes, so the text stays on one line and shows what it holds.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            c if c.is_control() => escaped.push_str(&c.escape_unicode().to_string()),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Refuse a value holding a control character (a newline in a URL would otherwise be dropped or
/// percent-encoded into another URL): the error names the character, not the value.
pub fn reject_controls(text: &str) -> Result<(), String> {
    match text.char_indices().find(|(_, c)| c.is_control()) {
        None => Ok(()),
        Some((at, c)) => Err(format!(
            "contains a control character ({}) at byte {at}: not accepted",
            escape_controls(&c.to_string())
        )),
    }
}

/// Characters that end a URL inside a free text.
fn ends_token(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>' | '`')
}

/// Where URLs end in a text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The text is one value.
    Whole,
    /// A free text: a URL ends at whitespace or a quote.
    Tokens,
}

/// Where a URL's userinfo ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Precision {
    /// As RFC 3986 says: at the last `@` before the path.
    Exact,
    /// Up to the last `@`, as if the password held an unencoded `/`, `?`, `#` or `@`.
    Conservative,
}

/// Hide the password in every `scheme://user:password@host` of `text`.
fn redact_userinfo(text: &str, scope: Scope, precision: Precision) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.find("://") {
        let after = found + 3;
        out.push_str(&rest[..after]);
        rest = &rest[after..];
        let token_end = match scope {
            Scope::Whole => rest.len(),
            Scope::Tokens => rest.find(ends_token).unwrap_or(rest.len()),
        };
        let token = &rest[..token_end];
        let Some((colon, at)) = password_span(token, precision) else {
            continue;
        };
        out.push_str(&token[..=colon]);
        out.push_str("***");
        rest = &rest[at..];
    }
    out.push_str(rest);
    out
}

/// In the part of a URL after `://`, the byte positions of the `:` before the password and of
/// the `@` after it, when there is a password.
fn password_span(token: &str, precision: Precision) -> Option<(usize, usize)> {
    let at = match precision {
        Precision::Exact => {
            let authority_end = token.find(['/', '?', '#']).unwrap_or(token.len());
            token[..authority_end].rfind('@')?
        }
        // A password holding an unencoded '/', '?', '#' or '@' makes the URL malformed: its end
        // is then the last '@' of the token (`host:80/a?b@c` is hidden too: in an error
        // message, more rather than less).
        Precision::Conservative => token.rfind('@')?,
    };
    let colon = token[..at].find(':')?;
    (token[colon + 1..at] != *"***").then_some((colon, at))
}

/// Hide the value of every `password=` and `sslpassword=` key or parameter of `text`.
fn redact_keys(text: &str, scope: Scope) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find("password") {
        let key_at = search + found;
        let key_end = key_at + "password".len();
        search = key_end;
        let key_start = if lower[..key_at].ends_with("ssl") {
            key_at - 3
        } else {
            key_at
        };
        if lower[..key_start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            continue;
        }
        let after_key = &text[key_end..];
        let spaces = after_key.len() - after_key.trim_start().len();
        let Some(value_part) = after_key.trim_start().strip_prefix('=') else {
            continue;
        };
        let value_trimmed = value_part.trim_start();
        let value_at = key_end + spaces + 1 + (value_part.len() - value_trimmed.len());
        let in_url = lower[..key_start].ends_with(['?', '&', ';']);
        let value_len = value_length(value_trimmed, in_url, scope);
        if value_len == 0 || &text[value_at..value_at + value_len] == "***" {
            continue;
        }
        out.push_str(&text[copied..value_at]);
        out.push_str("***");
        copied = value_at + value_len;
        search = copied;
    }
    out.push_str(&text[copied..]);
    out
}

/// Length of a key's value at the start of `text`: a libpq quoted value (`'...'`, backslash
/// escapes), a URL parameter (up to `&` or whitespace), or a bare word (up to whitespace).
fn value_length(text: &str, in_url: bool, scope: Scope) -> usize {
    let mut chars = text.char_indices();
    if text.starts_with('\'') {
        chars.next();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '\'' => return i + 1,
                _ => {}
            }
        }
        return text.len();
    }
    while let Some((i, c)) = chars.next() {
        let end = if in_url {
            // Not at a quote or `#`, and in a whole value not at a space either: tokio-postgres
            // reads a parameter up to `&` (found by fuzzing). In free text a space ends it.
            c == '&' || (c.is_whitespace() && scope != Scope::Whole)
        } else {
            c.is_whitespace()
        };
        if end {
            return i;
        }
        if c == '\\' && !in_url {
            chars.next();
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords() {
        for (input, shown) in [
            ("http://user:SECRETPW@host/", "http://user:***@host/"),
            ("redis://:SECRETPW@h:6379", "redis://:***@h:6379"),
            (
                "postgresql://app:SECRETPW@db:5432/app?sslmode=require",
                "postgresql://app:***@db:5432/app?sslmode=require",
            ),
            (
                "rediss://u:p@ss@[::1]:6380/0",
                "rediss://u:***@[::1]:6380/0",
            ),
            ("http://user@host/", "http://user@host/"),
            ("http://u:p%2Fw@host/", "http://u:***@host/"),
            (
                "http://host:8080/a?who=me@example",
                "http://host:8080/a?who=me@example",
            ),
            ("no url here", "no url here"),
            ("://", "://"),
        ] {
            assert_eq!(redact_value(input), shown, "{input}");
            assert_eq!(redact_value(shown), shown, "idempotent: {shown}");
        }
    }

    #[test]
    fn malformed_input_hides_more() {
        for (input, shown) in [
            ("http://u:pa/ss@host/", "http://u:***@host/"),
            ("http://u:pa ss@host/", "http://u:***@host/"),
            (
                "redis://:SECRETPW@127.0.0.1:notaport",
                "redis://:***@127.0.0.1:notaport",
            ),
            (
                "http://host:8080/a?who=me@example",
                "http://host:***@example",
            ),
        ] {
            assert_eq!(redact_input(input), shown, "{input}");
        }
        assert!(contains_password("--url=redis://:pw@h"));
        assert!(!contains_password("--url=redis://h:6379/0"));
    }

    #[test]
    fn key_value_passwords() {
        for (input, shown) in [
            (
                "host=h password=SECRETPW user=u",
                "host=h password=*** user=u",
            ),
            (
                "host=h password = 'SE CRET' user=u",
                "host=h password = *** user=u",
            ),
            (r"password='it\'s' dbname=x", "password=*** dbname=x"),
            ("sslpassword=SECRETPW", "sslpassword=***"),
            (
                "postgres://u@h/db?password=SECRETPW&x=1",
                "postgres://u@h/db?password=***&x=1",
            ),
            ("PASSWORD=SECRETPW", "PASSWORD=***"),
            ("password='unterminated SECRETPW", "password=***"),
            ("password missing", "password missing"),
            ("--password-file=/etc/pw", "--password-file=/etc/pw"),
            ("PGPASSWORD is set", "PGPASSWORD is set"),
        ] {
            assert_eq!(redact_value(input), shown, "{input}");
            assert_eq!(redact_text(input), shown, "{input}");
        }
    }

    #[test]
    fn url_parameters_run_to_the_ampersand_as_tokio_postgres_reads_them() {
        // Found by fuzzing: a password parameter holding a quote, a `#` or a space.
        assert_eq!(
            redact_input("postgresql://h/db?password=s'cret&x=1"),
            "postgresql://h/db?password=***&x=1"
        );
        assert_eq!(
            redact_input("postgresql://h/db?password=secre#t"),
            "postgresql://h/db?password=***"
        );
        assert_eq!(
            redact_input("postgresql://?password=*** xpk"),
            "postgresql://?password=***"
        );
        assert!(contains_password("postgresql://?password=*** xpk"));
    }

    #[test]
    fn free_text_clap_error() {
        let error = "error: invalid value 'redis://:SECRETPW@127.0.0.1:notaport' for '--url <URL>': bad port";
        let shown = redact_text(error);
        assert!(!shown.contains("SECRETPW"), "{shown}");
        assert!(shown.contains("'redis://:***@127.0.0.1:notaport' for '--url <URL>'"));
        let error = "invalid value 'host=h password=SECRETPW' for '--dsn'";
        assert!(!redact_text(error).contains("SECRETPW"));
        let error = "see http://u:a/b@h and http://x:80/y?z@w then http://v:SECRETPW@h/";
        assert!(!redact_text(error).contains("SECRETPW"));
    }

    #[test]
    fn display_escapes_control_characters() {
        assert_eq!(
            for_display("user='a\nINFO forged' x\t\u{1b}"),
            "user='a\\nINFO forged' x\\t\\u{1b}"
        );
        assert_eq!(for_display("http://u:p@h/\r"), "http://u:***@h/\\r");
        assert!(reject_controls("http://h/").is_ok());
        let error = reject_controls("http://h/\nx").unwrap_err();
        assert!(error.contains("\\n") && !error.contains('\n'), "{error}");
    }

    proptest::proptest! {
        #[test]
        fn idempotent_and_never_panics(text in ".{0,60}") {
            for redact in [redact_value, redact_text, redact_input] {
                let once = redact(&text);
                proptest::prop_assert_eq!(redact(&once), once.clone());
            }
            proptest::prop_assert!(!for_display(&text).chars().any(char::is_control));
        }

        #[test]
        fn url_passwords_never_survive(
            scheme in "(http|https|redis|rediss|postgresql)",
            user in "[a-z]{0,6}",
            password in "[A-Za-z0-9!$%&()*+,;=@:/?#-]{1,16}",
            host in "[a-z]{1,8}(:[0-9]{1,5})?",
        ) {
            let url = format!("{scheme}://{user}:{password}XQZ@{host}/");
            for shown in [redact_input(&url), redact_text(&format!("bad '{url}' here"))] {
                proptest::prop_assert!(!shown.contains("XQZ"), "{} -> {}", url, shown);
            }
            let encoded = format!("{scheme}://{user}:{}XQZ@{host}/", password.replace(['/', '?', '#', '@', '%'], "%25"));
            proptest::prop_assert!(!redact_value(&encoded).contains("XQZ"), "{}", encoded);
        }

        #[test]
        fn dsn_passwords_never_survive(password in "[^'\\\\\\s]{1,16}") {
            let dsn = format!("host=h password={password}XQZ user=u");
            proptest::prop_assert!(!redact_value(&dsn).contains("XQZ"));
            let quoted = format!("host=h password='{password} XQZ' user=u");
            proptest::prop_assert!(!redact_text(&quoted).contains("XQZ"));
        }
    }
}
