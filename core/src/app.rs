//! The `main` every probe binary calls: load options, set up logging, pick the mode (`--once`,
//! `--check-config`, `--dry-run`, normal) and run. Owns the exit codes.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Args, FromArgMatches};

use crate::config::exit::Exit;
use crate::config::loader::{LoadError, load_with};
use crate::config::options::{Binary, Cli, CommonOptions};
use crate::config::settings::{ModeFlags, Settings};
use crate::engine::render::Target;
use crate::engine::runner::ReloadError;
use crate::kit::escape::one_line;
use crate::probe::Probe;

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
    let command = binary.command::<T>();
    if let Some(code) = crate::config::docs::generate_if_asked(
        &binary,
        &crate::config::loader::with_env(command.clone()),
        &argv,
    ) {
        return code;
    }
    let name = binary.name.to_string();
    let options: Cli<T> = match load_with(command.clone(), &argv) {
        Ok(options) => options,
        Err(error) => return report_load_error(&name, error),
    };
    let binary = name;
    let common = options.common.clone();
    let (verbose, quiet) = crate::compat::log_levels(common.verbose, common.quiet, &common.compat);
    let syslog =
        crate::observe::syslog::target(&common.observe, common.name.as_deref().unwrap_or(&binary));
    crate::observe::logging::init(common.log_format, verbose, quiet, syslog);
    let modes = ModeFlags {
        dry_run: common.dry_run || crate::engine::output::stdout_is_terminal(),
        routes_optional: common.once,
    };
    let settings = match Settings::resolve(&common, &binary, modes) {
        Ok(settings) => settings,
        Err(error) => return config_error(&binary, &error.to_string(), common.once),
    };
    // `--user`/`--group` looked up before anything changes the host (and in --check-config).
    let privileges = if common.once {
        crate::compat::privileges::Target::default()
    } else {
        match crate::compat::privileges::resolve(
            common.compat.user.as_deref(),
            common.compat.group.as_deref(),
        ) {
            Ok(target) => target,
            Err(message) => return config_error(&binary, &message, false),
        }
    };
    if !common.once
        && let Err(message) = crate::compat::ip_setup::check(&common, &argv)
    {
        return config_error(&binary, &message, false);
    }
    // As `exabgp healthcheck` starts: pid file, addresses on lo, then privileges dropped.
    let added = if common.once || common.check_config {
        None
    } else {
        match crate::compat::start(&common, &argv, &privileges) {
            Ok(added) if added.interrupted || crate::compat::stop_signals::stopped() => {
                tracing::info!("stopped by a signal during the set-up");
                added.remove();
                crate::observe::logging::flush(std::time::Duration::from_millis(100));
                return Exit::Ok.into();
            }
            Ok(added) => Some(added),
            Err(message) => return config_error(&binary, &message, false),
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{binary}: cannot start the runtime: {error}");
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
            Err(error) => return config_error(&binary, &format!("{error:#}"), common.once),
        };
        if common.check_config {
            return check_config(&probe, &settings);
        }
        if common.once {
            let code = crate::engine::runner::once(probe, &settings).await;
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
                let options: Cli<T> = load_with(command.clone(), &argv)?;
                if explicit_prefixes && options.common.prefixes.is_empty() {
                    return Err(ReloadError::NoPrefixes);
                }
                let settings = Settings::resolve(&options.common, &reload_binary, modes)?;
                let probe = build(&options.probe, &options.common).map_err(ReloadError::Probe)?;
                Ok((settings, probe))
            });
        // A SIGTERM since the set-up, before the runner listens: exit as the runner would.
        if crate::compat::stop_signals::stopped() {
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

/// Print a load error as one line (`exaprobe-x: EXAPROBE_RISE: ...`) and return its exit code:
/// 64 for the command line, 78 for the environment or the config file; `--help` and
/// `--version` print clap's text.
fn report_load_error(binary: &str, error: LoadError) -> ExitCode {
    if let LoadError::Display(display) = &error {
        let _ = display.print();
    } else {
        eprintln!("{binary}: {}", error.message());
    }
    error.exit().into()
}

/// Print a cross-option or probe set-up error as one line; exit 78 (3 with `--once`).
fn config_error(binary: &str, message: &str, once: bool) -> ExitCode {
    eprintln!("{binary}: configuration error: {}", one_line(message));
    ExitCode::from(if once { Exit::Unknown } else { Exit::Config })
}

fn check_config<P: Probe>(probe: &P, settings: &Settings) -> ExitCode {
    use crate::engine::output::print_line;
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
    Exit::Ok.into()
}
