//! Failure reasons for PostgreSQL errors: one line per failure class (SQLSTATE), and which
//! errors mean the connection is gone.

pub(crate) use exaprobe_core::kit::reason::error_chain;

/// A one-line reason for a server error, distinct per failure class (SQLSTATE).
pub(crate) fn describe_db_error(code: &str, message: &str) -> String {
    let class = match code {
        "53300" => "too many connections",
        "57P03" if message.contains("starting up") => "server is starting up",
        "57P03" if message.contains("shutting down") => "server is shutting down",
        "57P03" if message.contains("recovery mode") => "server is in crash recovery",
        "57P03" if message.contains("not yet accepting") => {
            "server is not accepting connections yet (recovery not consistent)"
        }
        "57P03" => "server is not accepting connections",
        "57P01" => "connection terminated by the server (shutdown or pg_terminate_backend)",
        "57P02" => "server crashed (connection terminated by crash shutdown)",
        "28P01" | "28000" => "authentication failed",
        "3D000" => "database does not exist",
        "57014" => "query canceled (statement_timeout)",
        "25006" => "server is read-only",
        _ => return format!("server error {code}: {message}"),
    };
    format!("{class} ({code}: {message})")
}

/// Errors after which the connection is useless: reconnect rather than report.
pub(crate) fn is_connection_lost(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        None => error.as_db_error().is_none(),
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || code.starts_with("57P")
        }
    }
}

pub(crate) fn describe_error(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return describe_db_error(db.code().code(), db.message());
    }
    if let Some(why) = exaprobe_tls::describe_chain(error) {
        return format!("TLS handshake failed: {why}");
    }
    let text = error_chain(error);
    if text.contains("password missing") {
        return "authentication failed: the server asks for a password and none is configured \
                (--password-file, PGPASSWORD or .pgpass)"
            .to_string();
    }
    text
}
