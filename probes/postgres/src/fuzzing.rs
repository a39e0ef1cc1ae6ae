//! The DSN helpers, reachable from the fuzz targets in `fuzz/` (feature `fuzzing`; not an API).

use crate::dsn;

/// The keys taken out of a DSN, as `(key, value)` pairs.
pub type ExtraPairs = Vec<(&'static str, String)>;

/// `dsn::split_extras`: the DSN without the keys tokio-postgres does not know, and those keys
/// as `(key, value)` pairs.
pub fn split_extras(text: &str) -> Result<(String, ExtraPairs), String> {
    let (clean, extras) = dsn::split_extras(text)?;
    let pairs = [
        ("sslmode", extras.sslmode),
        ("sslrootcert", extras.sslrootcert),
        ("sslcert", extras.sslcert),
        ("sslkey", extras.sslkey),
        ("passfile", extras.passfile),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.map(|value| (key, value)))
    .collect();
    Ok((clean, pairs))
}

/// `dsn::redact`: the DSN with any password replaced by `***`.
pub fn redact(text: &str) -> String {
    dsn::redact(text)
}

/// Whether the DSN carries a password, by the shared rule (`exaprobe_core::redact`).
pub fn has_password(text: &str) -> bool {
    exaprobe_core::redact::contains_password(text)
}

/// `dsn::pgpass_lookup`: the password for these connection parameters in `.pgpass` text.
pub fn pgpass_lookup(
    text: &str,
    host: &str,
    port: u16,
    database: &str,
    user: &str,
) -> Option<String> {
    dsn::pgpass_lookup(text, host, port, database, user)
}
