//! `--require`, `--require-min` and `--no-routes`, and the rules they must follow.

use std::path::{Path, PathBuf};

use clap::Args;

/// The options of required probes. Field docs are the `--help` text.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct RequireOptions {
    /// Another exaprobe's --state-file this probe requires: its DOWN fails this probe's route at
    /// once, DEGRADED adds --degraded-penalty, maintenance puts this probe in maintenance. Repeatable.
    #[arg(
        long = "require",
        value_name = "STATE-FILE",
        help_heading = "Required probes"
    )]
    pub(crate) require: Vec<PathBuf>,
    /// How many of the --require probes must be UP or DEGRADED (default: all; 1: any).
    #[arg(long, value_parser = crate::config::numbers::parse_count, value_name = "N", help_heading = "Required probes")]
    pub(crate) require_min: Option<u32>,
    /// Announce nothing: only check and publish the state (--state-file) for probes that
    /// --require this one. Still reads ExaBGP's pipe and exits when it closes.
    #[arg(long, help_heading = "Required probes")]
    pub(crate) no_routes: bool,
}

/// The requirements the run uses, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RequireSettings {
    /// The required state files, absolute, in the order given.
    pub(crate) files: Vec<PathBuf>,
    /// `--require-min` (`None`: all).
    pub(crate) min: Option<usize>,
    /// `--no-routes`.
    pub(crate) no_routes: bool,
}

impl RequireSettings {
    /// Validate `options`; `own` is this probe's `--state-file`. A path that exists and is
    /// not a regular file is refused now (a missing one is only DOWN until it appears).
    pub(crate) fn resolve(options: &RequireOptions, own: Option<&Path>) -> Result<Self, String> {
        let own = own.map(absolute);
        let mut files: Vec<PathBuf> = Vec::with_capacity(options.require.len());
        for given in &options.require {
            let file = absolute(given);
            if given.as_os_str().is_empty() || file.file_name().is_none() {
                return Err(format!("--require {} names no file", given.display()));
            }
            if let Ok(metadata) = std::fs::metadata(&file)
                && !metadata.is_file()
            {
                let kind = if metadata.is_dir() {
                    "a directory"
                } else {
                    "not a regular file"
                };
                return Err(format!(
                    "--require {}: it is {kind} (expected another exaprobe's --state-file)",
                    given.display()
                ));
            }
            if own.as_ref() == Some(&file) {
                return Err(format!(
                    "--require {} is this probe's own --state-file",
                    given.display()
                ));
            }
            if files.contains(&file) {
                return Err(format!("--require {} is given twice", given.display()));
            }
            files.push(file);
        }
        let min = options.require_min.map(|n| n as usize);
        match min {
            Some(n) if files.is_empty() => {
                return Err(format!("--require-min {n} needs at least one --require"));
            }
            Some(n) if n > files.len() => {
                return Err(format!(
                    "--require-min {n} is more than the {} --require given",
                    files.len()
                ));
            }
            _ => {}
        }
        Ok(RequireSettings {
            files,
            min,
            no_routes: options.no_routes,
        })
    }
}

/// `path` made absolute against the working directory, without touching the file system
/// (so a file that does not exist yet has one spelling, shared with its writer's).
pub(crate) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        require: &[&Path],
        min: Option<u32>,
        own: Option<&Path>,
    ) -> Result<RequireSettings, String> {
        let options = RequireOptions {
            require: require.iter().map(|p| p.to_path_buf()).collect(),
            require_min: min,
            no_routes: false,
        };
        RequireSettings::resolve(&options, own)
    }

    #[test]
    fn bad_requirements_are_one_line_naming_the_option() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let a = d.join("a.json");
        let shown = d.display();
        let cases: Vec<(Result<RequireSettings, String>, String)> = vec![
            (
                resolve(&[d], None, None),
                format!("--require {shown}: it is a directory (expected another exaprobe's --state-file)"),
            ),
            (
                resolve(&[Path::new("/dev/null")], None, None),
                "--require /dev/null: it is not a regular file (expected another exaprobe's --state-file)".into(),
            ),
            (
                resolve(&[&a, &a], None, None),
                format!("--require {} is given twice", a.display()),
            ),
            (
                resolve(&[&a], None, Some(&a)),
                format!("--require {} is this probe's own --state-file", a.display()),
            ),
            (resolve(&[], Some(1), None), "--require-min 1 needs at least one --require".into()),
            (
                resolve(&[&a], Some(2), None),
                "--require-min 2 is more than the 1 --require given".into(),
            ),
        ];
        for (result, expected) in cases {
            assert_eq!(result.unwrap_err(), expected);
        }
        let fine = resolve(&[&a, Path::new("relative.json")], Some(1), None).unwrap();
        assert_eq!(fine.files[0], a, "a missing file is fine at start");
        assert!(fine.files[1].is_absolute());
        assert_eq!(fine.min, Some(1));
    }

    /// A probe with no options of its own.
    #[derive(Debug, Clone, clap::Args)]
    struct NoOptions {}

    type Cli = crate::config::options::Cli<NoOptions>;

    fn load(
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Cli, crate::config::load_error::LoadError> {
        use clap::CommandFactory;
        let argv: Vec<std::ffi::OsString> = std::iter::once("exaprobe-test")
            .chain(args.iter().copied())
            .map(Into::into)
            .collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        crate::config::loader::load_from(Cli::command(), &argv, &|name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.into())
        })
    }

    #[test]
    fn every_source_gives_requirements_and_bad_values_name_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("probe.toml");
        std::fs::write(
            &config,
            "require = ['/run/a.json', '/run/b.json']\nrequire-min = 1\nno-routes = true\n",
        )
        .unwrap();
        let config = config.to_str().unwrap();
        let from_file = load(&["--config", config], &[]).unwrap().common.require;
        assert_eq!(
            from_file.require,
            [PathBuf::from("/run/a.json"), PathBuf::from("/run/b.json")]
        );
        assert_eq!(
            (from_file.require_min, from_file.no_routes),
            (Some(1), true)
        );
        let from_env = load(&[], &[("EXAPROBE_REQUIRE", "/run/c.json")])
            .unwrap()
            .common
            .require;
        assert_eq!(from_env.require, [PathBuf::from("/run/c.json")]);
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (
                &["--require-min", "0"],
                &[],
                "--require-min: '0' is not a whole number from 1 to 1000",
            ),
            (
                &[],
                &[("EXAPROBE_REQUIRE_MIN", "many")],
                "EXAPROBE_REQUIRE_MIN: 'many' is not a whole number from 1 to 1000",
            ),
            (
                &[],
                &[("EXAPROBE_NO_ROUTES", "perhaps")],
                "EXAPROBE_NO_ROUTES: invalid value 'perhaps': expected true or false",
            ),
        ];
        for (args, env, expected) in cases {
            let error = load(args, env).expect_err("refused");
            assert_eq!(error.message(), *expected, "{args:?} {env:?}");
        }
    }

    #[test]
    fn no_routes_announces_nothing_and_refuses_prefixes() {
        use crate::config::settings::{ModeFlags, Settings};
        let run = ModeFlags {
            dry_run: false,
            routes_optional: false,
        };
        let options = load(&["--no-routes"], &[]).unwrap().common;
        let settings = Settings::resolve(&options, "test", run).unwrap();
        assert!(settings.routes.prefixes.is_empty() && settings.require.no_routes);
        assert!(
            !settings.detect_dialect,
            "nothing to render: no dialect to ask for"
        );
        let options = load(&["--no-routes", "--prefix", "192.0.2.1"], &[])
            .unwrap()
            .common;
        assert_eq!(
            Settings::resolve(&options, "test", run)
                .unwrap_err()
                .to_string(),
            "--no-routes announces nothing, but 1 prefix(es) are given (--prefix 192.0.2.1/32)"
        );
    }
}
