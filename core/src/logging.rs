//! Logging to stderr only (ExaBGP forwards a child's stderr to its own log), one line per event,
//! text or JSON, at a level set by `-v`/`-q` (or `EXAPROBE_LOG` as a tracing filter).

use tracing_subscriber::EnvFilter;

use crate::options::LogFormat;

/// Install the global subscriber. Safe to call once; later calls are ignored.
pub fn init(format: LogFormat, verbose: u8, quiet: u8) {
    let level = match (verbose, quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    let filter = EnvFilter::try_from_env("EXAPROBE_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
