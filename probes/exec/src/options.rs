//! The exec check's options: the program (`-- PROGRAM [ARGS]...`, or a command line through
//! `--shell`, or `--cmd` as `exabgp healthcheck` spells it) and the exit codes that mean degraded.

use std::ffi::OsString;

/// Options of the exec check.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecOptions {
    /// Run this command line through `sh -c` instead of PROGRAM [ARGS...].
    #[arg(
        long,
        value_name = "CMD",
        conflicts_with = "command",
        help_heading = "Exec check"
    )]
    pub shell: Option<String>,
    /// Exit code that means degraded (announce with a worse MED) instead of down. Repeatable.
    #[arg(long = "degraded-exit-code", value_name = "CODE", value_parser = clap::value_parser!(i32).range(1..=255), help_heading = "Exec check")]
    pub degraded_exit_codes: Vec<i32>,
    /// The program to run and its arguments (after `--`). Exit 0 means healthy.
    #[arg(
        last = true,
        value_name = "PROGRAM [ARGS]...",
        required_unless_present_any = ["shell", "cmd"]
    )]
    pub command: Vec<OsString>,
    // After `command`, so that the config file key `command` stays the program list (a key
    // names the first option with that name or alias).
    /// The same as --shell, as `exabgp healthcheck` spells it (`--cmd`, `--command`, `-c`).
    #[arg(
        long = "cmd",
        short = 'c',
        visible_alias = "command",
        value_name = "CMD",
        conflicts_with_all = ["command", "shell"],
        help_heading = "Exec check"
    )]
    pub cmd: Option<String>,
}
