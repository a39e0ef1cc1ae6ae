//! The PostgreSQL DSN helpers (`probes/postgres/src/dsn.rs`): libpq key=value and URL strings,
//! password redaction and `.pgpass` lookup.
//!
//! Input: text; the part before the first NUL is a DSN, the parts after it are a `.pgpass`
//! entry (host, port, database, user, password). Properties:
//! - never a panic;
//! - taking the extra keys out is idempotent: the cleaned string has none left and cleans to
//!   itself (so the re-quoting of values round-trips);
//! - redaction hides the password: when tokio-postgres finds a password in the DSN,
//!   `has_password` is true and the redacted DSN does not show it;
//! - an entry written in `.pgpass` syntax (with `\` escapes) is found again by the lookup.
#![no_main]

use exaprobe_postgres::fuzzing::{has_password, pgpass_lookup, redact, split_extras};
use libfuzzer_sys::fuzz_target;

/// The password tokio-postgres reads from the cleaned DSN, if it parses.
fn password_of(dsn: &str) -> Option<Vec<u8>> {
    let (clean, _) = split_extras(dsn).ok()?;
    if clean.trim().is_empty() {
        return None;
    }
    let config: tokio_postgres::Config = clean.parse().ok()?;
    config.get_password().map(<[u8]>::to_vec)
}

fn check_dsn(dsn: &str) {
    let redacted = redact(dsn);
    let Ok((clean, _)) = split_extras(dsn) else {
        return;
    };
    let again = split_extras(&clean).unwrap_or_else(|e| panic!("{clean:?} from {dsn:?}: {e}"));
    // Whitespace before a removed `?` may end the cleaned string; cleaning trims it.
    assert_eq!(again.0, clean.trim(), "cleaning {dsn:?} is not idempotent");
    assert!(again.1.is_empty(), "extras left in {clean:?}");
    if let Some(password) = password_of(dsn)
        && !password.is_empty()
        && password != b"***"
    {
        assert!(has_password(dsn), "password in {dsn:?} not detected");
        // The redacted text is for display (control characters escaped), not to be parsed
        // again: what must hold is that the password does not show. Checked for passwords long
        // and distinctive enough (letters and digits) to be told apart from the rest of the
        // string, written literally as the password's value and nowhere else: `pass\wor` is the
        // password "passwor", which the kept keyword `password` shows without any leak.
        if let Ok(password) = std::str::from_utf8(&password)
            && password.len() >= 6
            && password.bytes().all(|b| b.is_ascii_alphanumeric())
            && dsn.matches(password).count() == 1
            && [
                format!("password={password}"),
                format!("password='{password}'"),
                format!(":{password}@"),
            ]
            .iter()
            .any(|literal| dsn.contains(literal.as_str()))
        {
            assert!(
                !redacted.contains(password),
                "redact({dsn:?}) = {redacted:?} shows the password {password:?}"
            );
        }
    }
}

fn escape(field: &str) -> String {
    field.replace('\\', "\\\\").replace(':', "\\:")
}

fn check_pgpass(fields: &[&str]) {
    let [host, port, database, user, password, ..] = fields else {
        return;
    };
    let Ok(port) = port.parse::<u16>() else {
        return;
    };
    if [host, database, user, password]
        .iter()
        .any(|f| f.contains(['\n', '\r']))
        || password.is_empty()
    {
        return;
    }
    let file_host = if host.is_empty() || host.starts_with('/') {
        "localhost"
    } else {
        host
    };
    let line = [file_host, &port.to_string(), database, user, password]
        .map(escape)
        .join(":");
    if line.starts_with('#') {
        return; // a comment in libpq too
    }
    let text = format!("# an entry written by the fuzzer\n{line}\n");
    assert_eq!(
        pgpass_lookup(&text, host, port, database, user).as_deref(),
        Some(*password),
        "{text:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let dsn = parts.next().unwrap_or_default();
    check_dsn(dsn);
    let fields: Vec<&str> = parts.collect();
    check_pgpass(&fields);
    // Arbitrary .pgpass text must not panic either.
    let _ = pgpass_lookup(dsn, "localhost", 5432, "app", "bob");
});
