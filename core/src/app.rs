//! The `main` every probe binary calls: load options, set up logging, pick the mode (`--once`,
//! `--check-config`, `--dry-run`, normal) and run. Owns the exit codes.
//!
//! [`main`] only gathers the process's argv, environment and streams; [`run`] does the rest
//! with them as parameters, so start-up, `--once` and `--check-config` are tested in-process
//! (`app/tests.rs`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Command, FromArgMatches};

use crate::config::exit::Exit;
use crate::config::loader::{LoadError, load_from};
use crate::config::options::{Binary, Cli, CommonOptions};
use crate::config::settings::{ModeFlags, Settings};
use crate::engine::render::Target;
use crate::engine::runner::ReloadError;
use crate::kit::escape::one_line;
use crate::probe::Probe;

/// The environment the options are read from (`EXAPROBE_*`): the process's, or a test's.
pub(crate) type Environment = BTreeMap<String, OsString>;

/// The process's environment (variables whose names are not UTF-8 are no option's).
pub(crate) fn process_environment() -> Environment {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value)))
        .collect()
}

/// Where [`run`] writes what it prints itself: errors, `--help`, the `--check-config` summary,
/// the `--once` status line. (Under ExaBGP the runner speaks to the process's stdin and stdout
/// itself: `engine::exabgp`, `engine::output`.)
pub(crate) struct Io<'a> {
    /// Standard output.
    pub(crate) out: &'a mut dyn Write,
    /// Standard error.
    pub(crate) err: &'a mut dyn Write,
    /// Whether stdout is a terminal (a person watching: `--dry-run` implied).
    pub(crate) stdout_is_terminal: bool,
    /// The process's own streams: logging is set up (stderr or syslog, for the whole process),
    /// and clap prints `--help` itself (coloured on a terminal). A test leaves both alone.
    pub(crate) process: bool,
}

/// Run a probe binary: `build` makes the probe from its check options `T` and the common ones.
///
/// ```no_run
/// # use exaprobe_core::{Binary, CommonOptions};
/// # #[derive(Debug, Clone, clap::Args)] struct MyOptions {}
/// # struct MyProbe;
/// # impl exaprobe_core::Probe for MyProbe {
/// #     fn describe(&self) -> String { String::new() }
/// #     async fn check(&mut self, _deadline: tokio::time::Instant) -> exaprobe_core::Outcome { exaprobe_core::Outcome::Healthy }
/// # }
/// fn main() -> std::process::ExitCode {
///     let binary = Binary {
///         drop_in: false,
///         name: "exaprobe-mine",
///         about: "Announce while mine is healthy",
///         example: "--mine 127.0.0.1",
///         environment: &[],
///     };
///     exaprobe_core::main(binary, |_mine: &MyOptions, _common: &CommonOptions| Ok(MyProbe))
/// }
/// ```
pub fn main<T, P, F>(binary: Binary, build: F) -> ExitCode
where
    T: Args + FromArgMatches + 'static,
    P: Probe + Send + 'static,
    F: Fn(&T, &CommonOptions) -> anyhow::Result<P> + Send + 'static,
{
    let argv: Vec<OsString> = std::env::args_os().collect();
    if let Some(code) = crate::config::docs::generate_if_asked(
        &binary,
        &crate::config::loader::with_env(binary.command::<T>()),
        &argv,
    ) {
        return code;
    }
    let mut out = StdoutLines::default();
    let mut err = std::io::stderr();
    let mut io = Io {
        out: &mut out,
        err: &mut err,
        stdout_is_terminal: crate::engine::output::stdout_is_terminal(),
        process: true,
    };
    run(binary, build, argv, process_environment(), &mut io)
}

/// Options from `argv`, expanded once (`-sF`, a healthcheck `-F` file:
/// [`crate::compat::expand_argv`]), the environment and the TOML file; with the expanded
/// argv, which the drop-in reads too.
pub(crate) fn load<O: FromArgMatches>(
    command: &Command,
    argv: &[OsString],
    env: &Environment,
) -> Result<(O, Vec<OsString>), LoadError> {
    let argv = crate::compat::expand_argv(command, argv)?;
    let options = load_from(command.clone(), &argv, &|name| env.get(name).cloned())?;
    Ok((options, argv))
}

/// Everything [`main`] does after gathering the process's argv, environment and streams;
/// returns the exit code.
pub(crate) fn run<T, P, F>(
    binary: Binary,
    build: F,
    argv: Vec<OsString>,
    env: Environment,
    io: &mut Io<'_>,
) -> ExitCode
where
    T: Args + FromArgMatches + 'static,
    P: Probe + Send + 'static,
    F: Fn(&T, &CommonOptions) -> anyhow::Result<P> + Send + 'static,
{
    let command = binary.command::<T>();
    let binary = binary.name.to_string();
    let (options, expanded): (Cli<T>, _) = match load(&command, &argv, &env) {
        Ok(loaded) => loaded,
        Err(error) => return report_load_error(io, &binary, error),
    };
    let common = options.common.clone();
    let (verbose, quiet) = crate::compat::log_levels(common.verbose, common.quiet, &common.compat);
    let syslog =
        crate::observe::syslog::target(&common.observe, common.name.as_deref().unwrap_or(&binary));
    if io.process {
        crate::observe::logging::init(common.log_format, verbose, quiet, syslog);
    }
    let modes = ModeFlags {
        dry_run: common.dry_run || io.stdout_is_terminal,
        routes_optional: common.once,
    };
    // The addresses (lo's when no --prefix is given) and hooks, before the settings.
    let drop_in = match crate::compat::prepare(&common, &expanded) {
        Ok(drop_in) => drop_in,
        Err(error) => return config_error(io, &binary, &error.to_string(), common.once),
    };
    let settings = match Settings::resolve_with(&common, drop_in.addresses.clone(), &binary, modes)
    {
        Ok(settings) => settings,
        Err(error) => return config_error(io, &binary, &error.to_string(), common.once),
    };
    // `--user`/`--group` looked up, IP set-up checked, before anything changes the host (and
    // in --check-config).
    let privileges = if common.once {
        crate::compat::Privileges::default()
    } else {
        match drop_in.check(&common) {
            Ok(target) => target,
            Err(error) => return config_error(io, &binary, &error.to_string(), false),
        }
    };
    // As `exabgp healthcheck` starts: pid file, addresses on lo, then privileges dropped.
    let added = if common.once || common.check_config {
        None
    } else {
        match drop_in.start(&common, &privileges) {
            Ok(added) if added.interrupted || crate::compat::stopped() => {
                tracing::info!("stopped by a signal during the set-up");
                added.remove();
                crate::observe::logging::flush(std::time::Duration::from_millis(100));
                return Exit::Ok.into();
            }
            Ok(added) => Some(added),
            Err(error) => return config_error(io, &binary, &error.to_string(), false),
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(io.err, "{binary}: cannot start the runtime: {error}");
            if let Some(added) = added {
                added.remove();
            }
            return Exit::Software.into();
        }
    };
    let span = tracing::info_span!("exaprobe", probe = %settings.name);
    let _entered = span.enter();
    let code = runtime.block_on(async move {
        let probe = match build(&options.probe, &options.common) {
            Ok(probe) => probe,
            Err(error) => return config_error(io, &binary, &format!("{error:#}"), common.once),
        };
        if common.check_config {
            return check_config(io.out, &probe, &settings);
        }
        if common.once {
            let code = crate::engine::runner::once(probe, &settings, io.out).await;
            // A check that timed out may have left descendants: kill and reap them first.
            crate::kit::subprocess::shutdown(std::time::Duration::from_millis(500)).await;
            return code;
        }
        let reload_binary = binary.clone();
        // Prefixes given at start are never replaced by lo's addresses on a reload: an emptied
        // list would announce whatever else lives on lo (another service's address).
        let explicit_prefixes = !common.prefixes.is_empty();
        let reload: crate::engine::runner::Reload<P> =
            Box::new(move || -> Result<(Settings, P), ReloadError> {
                let (options, expanded): (Cli<T>, _) = load(&command, &argv, &env)?;
                if explicit_prefixes && options.common.prefixes.is_empty() {
                    return Err(ReloadError::NoPrefixes);
                }
                let drop_in = crate::compat::prepare(&options.common, &expanded)?;
                let settings = Settings::resolve_with(
                    &options.common,
                    drop_in.addresses,
                    &reload_binary,
                    modes,
                )?;
                let probe = build(&options.probe, &options.common).map_err(ReloadError::Probe)?;
                Ok((settings, probe))
            });
        // A SIGTERM since the set-up, before the runner listens: exit as the runner would.
        if crate::compat::stopped() {
            return Exit::Ok.into();
        }
        let code = crate::engine::runner::run(probe, settings, reload).await;
        // What a dropped check or hook left behind; short, within SIGTERM's 1.5 s exit budget.
        crate::kit::subprocess::shutdown(std::time::Duration::from_millis(250)).await;
        code
    });
    // The stdin reader sits in a blocking read on tokio's blocking pool: do not wait for it.
    runtime.shutdown_background();
    if let Some(added) = added {
        added.remove();
    }
    crate::observe::logging::flush(std::time::Duration::from_millis(100));
    code
}

/// The process's stdout as a writer: each line through `engine::output`, the only writer of
/// stdout.
#[derive(Default)]
struct StdoutLines {
    /// Bytes of a line not ended yet.
    partial: Vec<u8>,
}

impl Write for StdoutLines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            crate::engine::output::print_line(&String::from_utf8_lossy(&line[..end]));
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            crate::engine::output::print_line(&String::from_utf8_lossy(&line));
        }
        Ok(())
    }
}

/// Print a load error as one line (`exaprobe-x: EXAPROBE_RISE: ...`) and return its exit code:
/// 64 for the command line, 78 for the environment or the config file; `--help` and
/// `--version` print clap's text.
fn report_load_error(io: &mut Io<'_>, binary: &str, error: LoadError) -> ExitCode {
    match &error {
        LoadError::Display(display) if io.process => {
            let _ = display.print();
        }
        LoadError::Display(display) => {
            let stream = if display.use_stderr() {
                &mut *io.err
            } else {
                &mut *io.out
            };
            let _ = write!(stream, "{}", display.render());
        }
        _ => {
            let _ = writeln!(io.err, "{binary}: {}", error.message());
        }
    }
    error.exit().into()
}

/// Print a cross-option or probe set-up error as one line; exit 78 (3 with `--once`).
fn config_error(io: &mut Io<'_>, binary: &str, message: &str, once: bool) -> ExitCode {
    let _ = writeln!(
        io.err,
        "{binary}: configuration error: {}",
        one_line(message)
    );
    ExitCode::from(if once { Exit::Unknown } else { Exit::Config })
}

/// `--check-config`: what the probe would check, and the ExaBGP commands of every state.
fn check_config<P: Probe>(out: &mut dyn Write, probe: &P, settings: &Settings) -> ExitCode {
    let mut print_line = |line: &str| {
        let _ = writeln!(out, "{line}");
    };
    print_line(&format!("{}: configuration OK", settings.name));
    print_line(&format!("check: {}", probe.describe()));
    let dialect = crate::engine::dialect::describe(settings.routes.dialect);
    if settings.detect_dialect {
        print_line(&format!(
            "dialect: --exabgp-api auto: asks ExaBGP at start (`system version`); the lines below are {dialect}, used when it does not answer"
        ));
    } else {
        print_line(&format!("dialect: {dialect}"));
    }
    for line in crate::engine::require::describe(&settings.require) {
        print_line(&line);
    }
    let t = &settings.timing;
    print_line(&format!(
        "timing: interval {:?}, fast-interval {:?}, timeout {:?}, rise {}, fall {}",
        t.interval, t.fast_interval, t.timeout, settings.hysteresis.rise, settings.hysteresis.fall
    ));
    let draining = settings
        .safety
        .drain
        .map(|_| ("DRAINING", Target::Draining { penalty: 0 }));
    let targets = [
        Some(("UP", Target::Up { penalty: 0 })),
        draining,
        Some(("DOWN", Target::Down)),
        Some(("DISABLED", Target::Disabled)),
        Some(("EXIT", Target::Gone)),
    ];
    for (label, target) in targets.into_iter().flatten() {
        for line in settings
            .routes
            .plan(target)
            .into_values()
            .flat_map(|a| a.lines)
        {
            print_line(&format!("{label:<8} {line}"));
        }
    }
    let _ = out.flush();
    Exit::Ok.into()
}

// Last in the file: `core/tests/module_graph.rs` reads a file's code up to its first
// `#[cfg(test)]`.
#[cfg(test)]
mod tests;
