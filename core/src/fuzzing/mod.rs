//! Entry points for exaprobe's own fuzz targets (`fuzz/`) and end-to-end tests, behind the
//! `fuzzing` feature: each takes raw input and checks a property of code that stays private to
//! the core. Not an API.

mod loader;
mod pipe;
mod routes;

pub use loader::toml_loader;
pub use pipe::pipe_reader;
pub use routes::route_render;

/// The command that asks ExaBGP its version (`system version`).
pub const VERSION_COMMAND: &str = crate::engine::dialect::VERSION_COMMAND;

/// ExaBGP's answer to [`VERSION_COMMAND`] read as the runner reads it: the version and the API
/// dialect it implies (4 or 6).
pub fn version_answer(line: &str) -> Option<(String, u8)> {
    crate::engine::dialect::parse_version_answer(line)
        .map(|found| (found.version, dialect_number(found.dialect)))
}

/// The hint logged when ExaBGP refuses `command` in `dialect` (4 or 6), as the runner words it.
pub fn mismatch_hint(dialect: u8, command: &str, detail: Option<&str>) -> Option<String> {
    let dialect = if dialect == 6 {
        crate::engine::dialect::ApiDialect::V6
    } else {
        crate::engine::dialect::ApiDialect::V4
    };
    crate::engine::dialect::mismatch_hint(dialect, command, detail)
}

fn dialect_number(dialect: crate::engine::dialect::ApiDialect) -> u8 {
    match dialect {
        crate::engine::dialect::ApiDialect::V4 => 4,
        crate::engine::dialect::ApiDialect::V6 => 6,
    }
}
