//! The exit codes of every probe binary, in one place: `main`, the man page's EXIT STATUS and
//! the README's table all come from [`Exit`].

use std::process::ExitCode;

/// How a probe binary ends. Nagios plugin codes for `--once`, sysexits for errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// A normal end (a signal, ExaBGP gone), `--once` OK, `--help`, `--check-config`.
    Ok,
    /// `--once`: degraded or disabled.
    Warning,
    /// `--once`: unhealthy.
    Critical,
    /// `--once`: the probe could not be set up from its options.
    Unknown,
    /// sysexits EX_USAGE: bad command line.
    Usage,
    /// sysexits EX_SOFTWARE: the runtime or the signal handlers cannot start.
    Software,
    /// sysexits EX_CONFIG: a bad environment value, config file, or combination of options.
    Config,
}

impl Exit {
    /// Every exit, in the order the documentation lists them.
    pub(crate) const ALL: [Exit; 7] = [
        Exit::Ok,
        Exit::Warning,
        Exit::Critical,
        Exit::Unknown,
        Exit::Usage,
        Exit::Software,
        Exit::Config,
    ];

    /// The process exit status.
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Warning => 1,
            Exit::Critical => 2,
            Exit::Unknown => 3,
            Exit::Usage => 64,
            Exit::Software => 70,
            Exit::Config => 78,
        }
    }

    /// What it means, for the man page and the README (Markdown backticks for option names).
    pub(crate) fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => {
                "normal end (signal, ExaBGP gone); `--once`: OK; `--help`, `--version`, `--check-config`"
            }
            Exit::Warning => "`--once`: WARNING (degraded or disabled)",
            Exit::Critical => "`--once`: CRITICAL (unhealthy)",
            Exit::Unknown => "`--once`: UNKNOWN (the probe could not be set up from its options)",
            Exit::Usage => "usage error: bad command line (EX_USAGE)",
            Exit::Software => {
                "internal error: cannot start the runtime or signal handlers (EX_SOFTWARE)"
            }
            Exit::Config => {
                "configuration error: bad environment value, config file, or combination of options (EX_CONFIG)"
            }
        }
    }

    /// The README's table, row for row.
    #[cfg(test)]
    fn markdown_table() -> String {
        let mut table = String::from("| code | meaning |\n|------|---------|\n");
        for exit in Exit::ALL {
            table.push_str(&format!("| {:<4} | {} |\n", exit.code(), exit.meaning()));
        }
        table
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_table_is_the_enum() {
        let readme = include_str!("../../../README.md");
        let table = Exit::markdown_table();
        assert!(
            readme.contains(&table),
            "README.md's exit code table must read exactly:\n{table}"
        );
    }

    #[test]
    fn codes_are_distinct() {
        let mut codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        codes.dedup();
        assert_eq!(codes.len(), Exit::ALL.len());
    }
}
