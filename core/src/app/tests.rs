//! Start-up, `--check-config` and `--once` in-process, through [`super::run`] with a test's
//! argv, environment and buffers.

use super::*;

/// A probe whose check says what the test set, with no options of its own.
struct Fixed {
    healthy: bool,
}

impl Probe for Fixed {
    fn describe(&self) -> String {
        "fixed".into()
    }

    async fn check(&mut self, _deadline: tokio::time::Instant) -> crate::probe::Outcome {
        if self.healthy {
            crate::probe::Outcome::Healthy
        } else {
            crate::probe::Outcome::unhealthy("the service said no")
        }
    }
}

/// `--healthy false` makes the check fail; `--refuse` makes building the probe fail.
#[derive(Debug, Clone, clap::Args)]
struct FixedOptions {
    /// Whether the check passes.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    healthy: bool,
    /// Refuse the options when building the probe.
    #[arg(long)]
    refuse: bool,
}

const BINARY: Binary = Binary {
    drop_in: false,
    name: "exaprobe-fixed",
    about: "a test probe",
    example: "",
    environment: &[],
};

/// What a run printed and how it ended.
#[derive(Debug)]
struct Ran {
    code: ExitCode,
    out: String,
    err: String,
}

fn run_with(args: &[&str], env: &[(&str, &str)]) -> Ran {
    let argv: Vec<OsString> = std::iter::once("exaprobe-fixed")
        .chain(args.iter().copied())
        .map(OsString::from)
        .collect();
    let env: Environment = env
        .iter()
        .map(|(name, value)| (name.to_string(), OsString::from(value)))
        .collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut io = Io {
        out: &mut out,
        err: &mut err,
        stdout_is_terminal: false,
        process: false,
    };
    let build = |options: &FixedOptions, _: &CommonOptions| {
        if options.refuse {
            anyhow::bail!("--refuse: the probe refuses its options");
        }
        Ok(Fixed {
            healthy: options.healthy,
        })
    };
    let code = run(BINARY, build, argv, env, &mut io);
    Ran {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

fn run_args(args: &[&str]) -> Ran {
    run_with(args, &[])
}

/// Every one of `lines` is a whole line of `out`.
fn has_lines(out: &str, lines: &[&str]) {
    for line in lines {
        assert!(out.lines().any(|l| l == *line), "{line}:\n{out}");
    }
}

fn code(exit: u8) -> ExitCode {
    ExitCode::from(exit)
}

#[test]
fn check_config_prints_the_check_and_every_state() {
    let ran = run_args(&[
        "--prefix",
        "192.0.2.1",
        "--name",
        "web",
        "--exabgp-api",
        "4",
        "--check-config",
    ]);
    assert_eq!((ran.code, ran.err.as_str()), (code(0), ""), "{ran:?}");
    let lines: Vec<&str> = ran.out.lines().collect();
    assert_eq!(lines[0], "web: configuration OK");
    assert_eq!(lines[1], "check: fixed");
    assert!(lines[2].starts_with("dialect: "), "{lines:?}");
    assert!(lines[3].starts_with("timing: interval "), "{lines:?}");
    for label in ["UP", "DOWN", "DISABLED", "EXIT"] {
        assert!(
            lines
                .iter()
                .any(|line| line.starts_with(label) && line.contains("192.0.2.1/32")),
            "{label}: {lines:?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("UP ") && line.contains("announce route 192.0.2.1/32")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("EXIT ") && line.contains("withdraw route 192.0.2.1/32")),
        "{lines:?}"
    );

    // ExaBGP 6's form, to a neighbor.
    let ran = run_args(&[
        "--check-config",
        "--prefix",
        "192.0.2.1/32",
        "--exabgp-api",
        "6",
        "--neighbor",
        "127.0.0.1",
    ]);
    assert_eq!(ran.code, code(0), "{ran:?}");
    has_lines(
        &ran.out,
        &[
            "UP       peer 127.0.0.1 announce route 192.0.2.1/32 next-hop self med 100",
            "EXIT     peer 127.0.0.1 withdraw route 192.0.2.1/32 next-hop self",
        ],
    );
}

/// An option of one value given twice is taken, the last one winning, as `exabgp healthcheck`
/// (argparse) does; list options still add up; in a `-F` file, the command line still wins.
#[test]
fn an_option_given_twice_takes_the_last_value_as_the_healthcheck_does() {
    let ran = run_args(&[
        "--check-config",
        "--debounce",
        "--debounce",
        "--interval",
        "5",
        "--interval",
        "6",
        "--ip",
        "192.0.2.1",
        "--up-metric",
        "10",
        "--up-metric",
        "50",
        "--community",
        "65000:1",
        "--community",
        "65000:2",
        "--ip",
        "192.0.2.2",
    ]);
    assert_eq!(ran.code, code(0), "{ran:?}");
    has_lines(
        &ran.out,
        &[
            "UP       announce route 192.0.2.1/32 next-hop self med 50 community [ 65000:1 65000:2 ]",
            "UP       announce route 192.0.2.2/32 next-hop self med 51 community [ 65000:1 65000:2 ]",
        ],
    );
    assert!(ran.out.contains("interval 6s"), "{}", ran.out);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("healthcheck.conf");
    std::fs::write(
        &file,
        "debounce\ndebounce\nup-metric = 20\nup-metric = 30\ndown-metric = 700\n\
         down-metric = 800\nip = 192.0.2.3\n",
    )
    .unwrap();
    let file = file.display().to_string();
    let ran = run_args(&[
        "--check-config",
        "-F",
        &file,
        "--up-metric",
        "60",
        "--ip",
        "192.0.2.1",
    ]);
    assert_eq!(ran.code, code(0), "{ran:?}");
    // The command line's value over the file's; the file's last over its first; lists add up,
    // the file's first (as the healthcheck reads it: its ips [192.0.2.3, 192.0.2.1], up-metric
    // 60, down-metric 800).
    has_lines(
        &ran.out,
        &[
            "UP       announce route 192.0.2.3/32 next-hop self med 60",
            "UP       announce route 192.0.2.1/32 next-hop self med 61",
            "DOWN     announce route 192.0.2.3/32 next-hop self med 800",
        ],
    );
}

/// A bad value is one line on stderr naming the option by where it came from, and the exit
/// code says which: 64 for the command line, 78 for the environment and the config file.
#[test]
fn a_bad_option_is_one_line_naming_its_source_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("probe.toml");
    std::fs::write(&toml, "prefix = '192.0.2.1'\nrise = 'lots'\n").unwrap();
    let toml = toml.display().to_string();
    let whole = "is not a whole number from 1 to 1000";
    /// Arguments, environment, stderr, exit code.
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, String, u8);
    let cases: Vec<Case> = vec![
        (
            vec!["--prefix", "192.0.2.1", "--rise", "abc"],
            vec![],
            format!("exaprobe-fixed: --rise: 'abc' {whole}\n"),
            64,
        ),
        (
            vec!["--prefix", "192.0.2.1"],
            vec![("EXAPROBE_RISE", "abc")],
            format!("exaprobe-fixed: EXAPROBE_RISE: 'abc' {whole}\n"),
            78,
        ),
        (
            vec!["--config", &toml],
            vec![],
            format!("exaprobe-fixed: rise in {toml} line 2: 'lots' {whole}\n"),
            78,
        ),
        (
            vec!["--bogus"],
            vec![],
            "exaprobe-fixed: unknown option '--bogus' (see --help)\n".into(),
            64,
        ),
        (
            vec!["--prefix", "192.0.2.1/32\nannounce route 0.0.0.0/0"],
            vec![],
            "exaprobe-fixed: --prefix: invalid value '192.0.2.1/32\\nannounce route 0.0.0.0/0': '192.0.2.1/32 announce route 0.0.0.0/0' is not a prefix (expected e.g. 192.0.2.1/32 or 2001:db8::/48)\n".into(),
            64,
        ),
        (
            vec!["--prefix", "192.0.2.1", "--community", "65000:1\nannounce route 0.0.0.0/0"],
            vec![],
            "exaprobe-fixed: --community: invalid value '65000:1\\nannounce route 0.0.0.0/0': 'announce' is not a community (expected ASN:VALUE with 16-bit numbers, or one of no-export, no-advertise, no-export-subconfed, nopeer, blackhole)\n".into(),
            64,
        ),
        (
            vec![],
            vec![],
            "exaprobe-fixed: configuration error: no prefix to announce: give at least one --prefix (alias --ip)\n".into(),
            78,
        ),
        (
            vec!["--prefix", "2001:db8::/48", "--next-hop", "10.0.0.1"],
            vec![],
            "exaprobe-fixed: configuration error: IPv6 prefix 2001:db8::/48 needs an IPv6 next hop: --next-hop 10.0.0.1 is IPv4, give --next-hop6\n".into(),
            78,
        ),
        (
            vec!["--prefix", "192.0.2.1", "--refuse"],
            vec![],
            "exaprobe-fixed: configuration error: --refuse: the probe refuses its options\n"
                .into(),
            78,
        ),
        (
            vec!["--ip", "10.0.0.0/8", "--check-config"],
            vec![],
            "exaprobe-fixed: configuration error: --ip 10.0.0.0/8 has 16777216 addresses: IP set-up adds each to the interface and takes at most 65536; give --no-ip-setup to announce the networks without adding their addresses\n".into(),
            78,
        ),
        (
            vec!["--prefix", "192.0.2.1", "--user", "no-such-user-x", "--check-config"],
            vec![],
            "exaprobe-fixed: configuration error: --user no-such-user-x: no such user\n".into(),
            78,
        ),
    ];
    for (args, env, stderr, exit) in cases {
        let ran = run_with(&args, &env);
        assert_eq!(
            (ran.err.as_str(), ran.code, ran.out.as_str()),
            (stderr.as_str(), code(exit), ""),
            "{args:?} {env:?}"
        );
    }
}

/// `--help` goes to stdout (exit 0) and names every option's variable.
#[test]
fn help_is_printed_with_the_environment_variables() {
    let ran = run_args(&["--help"]);
    assert_eq!((ran.code, ran.err.as_str()), (code(0), ""));
    assert!(ran.out.contains("[env: EXAPROBE_RISE=]"), "{}", ran.out);
}

/// `--once`: the Nagios status line on stdout and its code; a configuration error is UNKNOWN
/// (3), as Nagios expects of a plugin that could not run.
#[test]
fn once_prints_a_status_line_and_exits_with_its_nagios_code() {
    let ran = run_args(&["--name", "web", "--once"]);
    assert_eq!((ran.code, ran.err.as_str()), (code(0), ""), "{ran:?}");
    assert!(
        ran.out.starts_with("WEB OK - fixed: healthy in ") && ran.out.contains("| time="),
        "{}",
        ran.out
    );
    assert_eq!(ran.out.lines().count(), 1, "{}", ran.out);

    let ran = run_args(&["--name", "web", "--healthy", "false", "--once"]);
    assert_eq!(ran.code, code(2), "{ran:?}");
    assert!(
        ran.out
            .starts_with("WEB CRITICAL - fixed: the service said no | time="),
        "{}",
        ran.out
    );

    let dir = tempfile::tempdir().unwrap();
    let disable = dir.path().join("maintenance");
    std::fs::write(&disable, "").unwrap();
    let disable = disable.display().to_string();
    let ran = run_args(&["--name", "web", "--disable", &disable, "--once"]);
    assert_eq!(
        (ran.code, ran.out),
        (
            code(1),
            format!("WEB WARNING - disabled: maintenance file {disable} exists\n")
        )
    );

    let ran = run_args(&["--refuse", "--once"]);
    assert_eq!(
        (ran.code, ran.err.as_str(), ran.out.as_str()),
        (
            code(3),
            "exaprobe-fixed: configuration error: --refuse: the probe refuses its options\n",
            ""
        )
    );
}

/// The environment and a TOML file fill what the command line leaves, in that order (command
/// line > environment > file > default), and a healthcheck `-F` file is read as its options.
#[test]
fn environment_toml_and_healthcheck_files_are_layered() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("probe.toml");
    std::fs::write(
        &toml,
        "prefix = '192.0.2.1'\nname = 'from-file'\nrise = 9\n",
    )
    .unwrap();
    let toml = toml.display().to_string();
    let ran = run_with(
        &["--config", &toml, "--rise", "4", "--check-config"],
        &[
            ("EXAPROBE_NAME", "from-env"),
            ("EXAPROBE_FALL", "7"),
            ("EXAPROBE_RISE", "5"),
        ],
    );
    assert_eq!(ran.code, code(0), "{ran:?}");
    assert!(
        ran.out.starts_with("from-env: configuration OK\n"),
        "{}",
        ran.out
    );
    assert!(ran.out.contains("rise 4, fall 7"), "{}", ran.out);

    let hc = dir.path().join("hc.conf");
    std::fs::write(&hc, "name = hc\nip = 192.0.2.9\nno-ip-setup\n").unwrap();
    let ran = run_args(&["-F", &hc.display().to_string(), "--check-config"]);
    assert_eq!(ran.code, code(0), "{ran:?}");
    assert!(ran.out.starts_with("hc: configuration OK\n"), "{}", ran.out);
    assert!(ran.out.contains("192.0.2.9/32"), "{}", ran.out);
}
