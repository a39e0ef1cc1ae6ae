//! The only module that writes to stdout: stdout is ExaBGP's command pipe, and a stray byte on
//! it is a malformed command. A workspace lint (clippy.toml `disallowed-methods`, `print_stdout`)
//! rejects stdout writes anywhere else.

#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::io::Write as _;

use tokio::io::AsyncWriteExt;

/// Async writer of ExaBGP commands to stdout.
pub struct CommandOutput {
    stdout: tokio::io::Stdout,
}

impl CommandOutput {
    /// The process's stdout.
    pub fn new() -> Self {
        CommandOutput {
            stdout: tokio::io::stdout(),
        }
    }

    /// Write `text` (whole lines, each ending in `\n`) and flush.
    pub async fn write_lines(&mut self, text: &str) -> std::io::Result<()> {
        self.stdout.write_all(text.as_bytes()).await?;
        self.stdout.flush().await
    }
}

impl Default for CommandOutput {
    fn default() -> Self {
        Self::new()
    }
}

/// Print one line for a person (`--once` status, `--check-config` summary) and flush.
pub fn print_line(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// True when stdout is a terminal: a person is watching, not ExaBGP.
pub fn stdout_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
}
