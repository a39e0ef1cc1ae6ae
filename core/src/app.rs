//! The `main` every probe binary calls: load options, set up logging, pick the mode (`--once`,
//! `--check-config`, `--dry-run`, normal) and run. Owns the exit codes.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Args, FromArgMatches};

use crate::loader::{LoadError, load_with, one_line};
use crate::options::{Binary, Cli, CommonOptions};
use crate::probe::Probe;
use crate::render::Target;
use crate::settings::{ModeFlags, Settings};

/// sysexits EX_USAGE: bad command line.
pub const EX_USAGE: u8 = 64;
/// sysexits EX_SOFTWARE: internal error (cannot start the runtime or signal handlers).
pub const EX_SOFTWARE: u8 = 70;
/// sysexits EX_CONFIG: bad value in the environment, the config file, or between options.
pub const EX_CONFIG: u8 = 78;
/// Nagios UNKNOWN, for `--once` when the probe cannot even be set up.
pub const NAGIOS_UNKNOWN: u8 = 3;

/// Run a probe binary: `build` makes the probe from its check options `T` and the common ones.
///
/// ```no_run
/// # use exaprobe_core::{Binary, CommonOptions};
/// # #[derive(Debug, Clone, clap::Args)] struct MyOptions {}
/// # struct MyProbe;
/// # impl exaprobe_core::Probe for MyProbe {
/// #     fn target(&self) -> String { String::new() }
/// #     async fn check(&mut self) -> exaprobe_core::Outcome { exaprobe_core::Outcome::Healthy }
/// # }
/// fn main() -> std::process::ExitCode {
///     let binary = Binary { name: "exaprobe-mine", about: "Announce while mine is healthy" };
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
    let command = binary.command::<T>();
    if let Some(code) =
        crate::docs::generate_if_asked(&crate::loader::with_env(command.clone()), &argv)
    {
        return code;
    }
    let name = binary.name.to_string();
    let options: Cli<T> = match load_with(command.clone(), &argv) {
        Ok(options) => options,
        Err(error) => return report_load_error(&name, error),
    };
    let binary = name;
    let common = options.common.clone();
    let syslog =
        crate::observe::syslog::target(&common.observe, common.name.as_deref().unwrap_or(&binary));
    crate::logging::init(common.log_format, common.verbose, common.quiet, syslog);
    let modes = ModeFlags {
        dry_run: common.dry_run || crate::output::stdout_is_terminal(),
        routes_optional: common.once,
    };
    let settings = match Settings::resolve(&common, &binary, modes) {
        Ok(settings) => settings,
        Err(message) => return config_error(&binary, &message, common.once),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{binary}: cannot start the runtime: {error}");
            return ExitCode::from(EX_SOFTWARE);
        }
    };
    let span = tracing::info_span!("exaprobe", probe = %settings.name);
    let _entered = span.enter();
    let code = runtime.block_on(async move {
        let probe = match build(&options.probe, &options.common) {
            Ok(probe) => probe,
            Err(error) => return config_error(&binary, &format!("{error:#}"), common.once),
        };
        if common.check_config {
            return check_config(&probe, &settings);
        }
        if common.once {
            let code = crate::runner::once(probe, &settings).await;
            // A check that timed out may have left descendants: kill and reap them first.
            crate::subprocess::shutdown(std::time::Duration::from_millis(500)).await;
            return code;
        }
        let reload_binary = binary.clone();
        let reload: crate::runner::Reload<P> =
            Box::new(move || -> Result<(Settings, P), String> {
                let options: Cli<T> =
                    load_with(command.clone(), &argv).map_err(|error| error.message())?;
                let settings = Settings::resolve(&options.common, &reload_binary, modes)
                    .map_err(|message| one_line(&message))?;
                let probe = build(&options.probe, &options.common)
                    .map_err(|error| one_line(&format!("{error:#}")))?;
                Ok((settings, probe))
            });
        let code = crate::runner::run(probe, settings, reload).await;
        // What a dropped check or hook left behind; short, within SIGTERM's 1.5 s exit budget.
        crate::subprocess::shutdown(std::time::Duration::from_millis(250)).await;
        code
    });
    // The stdin reader sits in a blocking read on tokio's blocking pool: do not wait for it.
    runtime.shutdown_background();
    crate::logging::flush(std::time::Duration::from_millis(100));
    code
}

/// Print a load error as one line (`exaprobe-x: EXAPROBE_RISE: ...`) and return its exit code:
/// 64 for the command line, 78 for the environment or the config file; `--help` and
/// `--version` print clap's text.
fn report_load_error(binary: &str, error: LoadError) -> ExitCode {
    if let LoadError::Display(display) = &error {
        let _ = display.print();
    } else {
        eprintln!("{binary}: {}", error.message());
    }
    ExitCode::from(error.exit_code())
}

/// Print a cross-option or probe set-up error as one line; exit 78 (3 with `--once`).
fn config_error(binary: &str, message: &str, once: bool) -> ExitCode {
    eprintln!("{binary}: configuration error: {}", one_line(message));
    ExitCode::from(if once { NAGIOS_UNKNOWN } else { EX_CONFIG })
}

fn check_config<P: Probe>(probe: &P, settings: &Settings) -> ExitCode {
    use crate::output::print_line;
    print_line(&format!("{}: configuration OK", settings.name));
    print_line(&format!("check: {}", probe.target()));
    let dialect = crate::dialect::describe(settings.routes.dialect);
    if settings.detect_dialect {
        print_line(&format!(
            "dialect: --exabgp-api auto: asks ExaBGP at start (`system version`); the lines below are {dialect}, used when it does not answer"
        ));
    } else {
        print_line(&format!("dialect: {dialect}"));
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
    ExitCode::SUCCESS
}
