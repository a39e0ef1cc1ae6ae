//! The exec check: run a program, and its exit status says whether the service is healthy.
//!
//! The replacement for ExaBGP healthcheck's `--cmd`. The program runs directly (no shell) unless
//! `--shell` asks for `sh -c`. [`exaprobe_core::subprocess`] runs it: output read as it comes
//! (any amount), and when the program exits or the runner's timeout fires, everything it started
//! is killed and reaped. Exit 0 is healthy, an exit code listed in `--degraded-exit-code` is
//! degraded, anything else (or a signal) is unhealthy, with the tail of the program's output in
//! the reason. How much it wrote never matters.

mod options;

use std::ffi::{OsStr, OsString};
use std::os::fd::BorrowedFd;

use exaprobe_core::subprocess::{
    Ended, Finished, Pipes, Program, TAIL_BYTES, describe_status, run_blocking, run_captured,
    runs_without_runtime,
};
use exaprobe_core::{Outcome, Probe, SteadyCheck, SteadyEnd};

pub use options::ExecOptions;

/// Runs the configured program once per check.
#[derive(Debug)]
pub struct ExecProbe {
    program: OsString,
    args: Vec<OsString>,
    /// The program, its arguments and environment, converted for `posix_spawn` once: converting
    /// them for every spawn was a good part of a check's allocations.
    command: Program,
    degraded_exit_codes: Vec<i32>,
}

impl ExecProbe {
    /// Build the probe. The timeout is enforced by the runner (which kills the process group).
    pub fn new(options: &ExecOptions) -> anyhow::Result<Self> {
        let (flag, shell) = match (&options.shell, &options.cmd) {
            (None, Some(cmd)) => ("--cmd", Some(cmd)),
            (shell, _) => ("--shell", shell.as_ref()),
        };
        let (program, args) = match (shell, options.command.split_first()) {
            (Some(script), _) if script.trim().is_empty() => {
                // `sh -c ''` exits 0: an empty check would always be healthy.
                anyhow::bail!("{flag} is empty: give the command line to run through sh -c")
            }
            (Some(script), _) => (
                OsString::from("sh"),
                vec![OsString::from("-c"), OsString::from(script)],
            ),
            (None, Some((program, args))) => (program.clone(), args.to_vec()),
            (None, None) => {
                anyhow::bail!("no program to run: give -- PROGRAM [ARGS...] or --shell 'CMD'")
            }
        };
        if program.is_empty() {
            anyhow::bail!("the program to run is an empty string");
        }
        let command = Program::new(&program, &args).map_err(|error| match shell {
            Some(_) => anyhow::anyhow!("{flag}: {error}"),
            None => anyhow::anyhow!("the command to run: {error}"),
        })?;
        Ok(ExecProbe {
            program,
            args,
            command,
            degraded_exit_codes: options.degraded_exit_codes.clone(),
        })
    }
}

impl Probe for ExecProbe {
    /// The command line, through the shared redaction rule (a URL password in an argument is
    /// `***`, a newline is `\n`) so it stays one safe line in logs.
    fn describe(&self) -> String {
        exaprobe_core::redact::redact_text(
            &std::iter::once(&self.program)
                .chain(&self.args)
                .map(|part| exaprobe_core::redact::escape_controls(&part.to_string_lossy()))
                .collect::<Vec<_>>()
                .join(" "),
        )
    }

    async fn check(&mut self, _deadline: tokio::time::Instant) -> Outcome {
        let finished = run_captured(&self.command, TAIL_BYTES).await;
        verdict(&self.program, &self.degraded_exit_codes, finished)
    }

    /// The same check on the runner's autopilot thread: spawned and waited for there (where
    /// the kernel gives pidfds; elsewhere the checks stay with the runtime).
    fn steady(&self) -> Option<Box<dyn SteadyCheck>> {
        if !runs_without_runtime() {
            return None;
        }
        Some(Box::new(SteadyExec {
            program: self.program.clone(),
            command: self.command.clone(),
            degraded_exit_codes: self.degraded_exit_codes.clone(),
            pipes: Pipes::default(),
        }))
    }
}

/// The exec check without the runtime (see [`Probe::steady`]), with its own pipes.
struct SteadyExec {
    program: OsString,
    command: Program,
    degraded_exit_codes: Vec<i32>,
    pipes: Pipes,
}

impl SteadyCheck for SteadyExec {
    fn check(&mut self, deadline: std::time::Instant, stop: BorrowedFd<'_>) -> SteadyEnd {
        let finished =
            match run_blocking(&self.command, TAIL_BYTES, deadline, stop, &mut self.pipes) {
                Ok(Ended::Finished(finished)) => Ok(finished),
                Ok(Ended::TimedOut) => return SteadyEnd::TimedOut,
                Ok(Ended::Stopped) => return SteadyEnd::Stopped,
                Err(error) => Err(error),
            };
        SteadyEnd::Checked(verdict(&self.program, &self.degraded_exit_codes, finished))
    }
}

/// What a run of `program` says: exit 0 healthy, a code in `degraded` degraded, anything else
/// unhealthy with the status and the tail of its output as the reason.
fn verdict(program: &OsStr, degraded: &[i32], finished: std::io::Result<Finished>) -> Outcome {
    let finished = match finished {
        Ok(finished) => finished,
        Err(error) => {
            return Outcome::unhealthy(format!(
                "cannot run {}: {error}",
                program.to_string_lossy()
            ));
        }
    };
    if finished.status.success() {
        return Outcome::Healthy;
    }
    let mut reason = describe_status(&finished.status);
    if !finished.output_tail.is_empty() {
        reason.push_str(": ");
        reason.push_str(&finished.output_tail);
    }
    match finished.status.code() {
        Some(code) if degraded.contains(&code) => Outcome::degraded(reason),
        _ => Outcome::unhealthy(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_is_one_line_without_passwords() {
        let options = ExecOptions {
            shell: None,
            cmd: None,
            degraded_exit_codes: Vec::new(),
            command: [
                "curl",
                "-sf",
                "http://u:SECRETPW@127.0.0.1/",
                "a\nINFO forged",
            ]
            .map(OsString::from)
            .to_vec(),
        };
        let probe = ExecProbe::new(&options).unwrap();
        assert_eq!(
            probe.describe(),
            "curl -sf http://u:***@127.0.0.1/ a\\nINFO forged"
        );
    }

    /// A NUL byte cannot reach a program: refused when the probe is made, naming the option and
    /// never quoting the text (it may hold a password).
    #[test]
    fn a_nul_byte_is_refused_at_start_naming_the_option() {
        let options = |shell: Option<&str>, command: &[&str]| ExecOptions {
            shell: shell.map(str::to_string),
            cmd: None,
            degraded_exit_codes: Vec::new(),
            command: command.iter().map(OsString::from).collect(),
        };
        let error = ExecProbe::new(&options(Some("curl -u u:SECRET\0 x"), &[])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "--shell: argument 2 contains a NUL byte, which no program can be given"
        );
        let error = ExecProbe::new(&options(None, &["curl", "SECRET\0"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the command to run: argument 1 contains a NUL byte, which no program can be given"
        );
    }
}
