//! Which ExaBGP command dialect to speak, found from what ExaBGP answers, and one clear line when
//! the dialect in use looks wrong.
//!
//! ExaBGP 6 (API 6, its default) only understands target-first commands (`peer * announce ...`)
//! and answers `error` to the 4.2/5.0 forms (`announce route ...`, `neighbor A announce ...`);
//! 4.2 and 5.0 answer `error` to every `peer ...` command. A probe started with the wrong
//! `--exabgp-api` would otherwise only log "ExaBGP rejected a command" forever.
//!
//! Detection: every version answers [`VERSION_COMMAND`] with one line before its ACK (and without
//! an ACK when `exabgp.api.ack` is off), whatever the process encoder. Observed on loopback with
//! 4.2.25, 5.0.15 and the 6.0.0 snapshot (tests/tests/exabgp_api.rs proves it on every run):
//!
//! | ExaBGP | answer to `system version` |
//! |---|---|
//! | 4.2.25 | `exabgp 4.2.25` |
//! | 5.0.15 | `exabgp 5.0.15` |
//! | 6.0.0, API 6 (default) | `{"version": "6.0.0-20261125+uncontrolled", "application": "exabgp"}` |
//! | 6.0.0, `exabgp_api_version=4` | `exabgp 6.0.0-20261125+uncontrolled` |
//!
//! The bare `version` is not a reliable probe: ExaBGP 6 with API 6 answers it `error`.
//! The form of the answer, not the number, tells the dialect: a text answer comes from the legacy
//! dispatcher (4.2, 5.0, or 6 with API 4, where the legacy forms work), a JSON object from API 6.
//! Pure: the runner writes the command and feeds the lines it reads to [`parse_version_answer`].

use clap::ValueEnum;

/// The ExaBGP text API dialect to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ApiDialect {
    /// `neighbor A announce route ...` / `announce route ...`: ExaBGP 4.2 and 5.0.
    #[value(name = "4")]
    V4,
    /// `peer * announce route ...`: ExaBGP 6.
    #[value(name = "6")]
    V6,
}

/// What `--exabgp-api` says: a dialect, or find out from ExaBGP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ApiSetting {
    /// Ask ExaBGP (`system version`) at start and speak its dialect; 4 when it does not answer.
    Auto,
    /// ExaBGP 4.2 and 5.0.
    #[value(name = "4")]
    V4,
    /// ExaBGP 6.
    #[value(name = "6")]
    V6,
}

/// The command that every ExaBGP version answers with its version, before the ACK.
pub(crate) const VERSION_COMMAND: &str = "system version";

/// What ExaBGP's answer to [`VERSION_COMMAND`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DetectedExabgp {
    /// The version as ExaBGP reports it (`5.0.15`, `6.0.0-20261125+uncontrolled`), for the log.
    pub version: String,
    /// The dialect the answering dispatcher understands.
    pub dialect: ApiDialect,
}

/// Recognise ExaBGP's answer to [`VERSION_COMMAND`] in one line read from the pipe (without its
/// newline). `None` for anything else (ACKs, events, blank lines), so the caller can feed every
/// line it reads until the ACK (or, with ACKs off, until a deadline).
pub(crate) fn parse_version_answer(line: &str) -> Option<DetectedExabgp> {
    let line = line.trim();
    if let Some(version) = line.strip_prefix("exabgp ") {
        let version = version.trim();
        return is_version(version).then(|| DetectedExabgp {
            version: version.to_string(),
            dialect: ApiDialect::V4,
        });
    }
    if !line.starts_with('{') {
        return None;
    }
    // ExaBGP's JSON events carry an "exabgp" key and a "type"; only API 6's answer has these two.
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    if value.get("application")?.as_str()? != "exabgp" {
        return None;
    }
    let version = value.get("version")?.as_str()?.trim();
    is_version(version).then(|| DetectedExabgp {
        version: version.to_string(),
        dialect: ApiDialect::V6,
    })
}

/// A version starts with a digit and is one printable word (`4.2.25`, `6.0.0-2026+x`).
fn is_version(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_digit())
        && text.len() <= 64
        && text.bytes().all(|b| b.is_ascii_graphic())
}

/// How `--check-config` and the logs name a dialect: the option value and the command form.
pub(crate) fn describe(dialect: ApiDialect) -> &'static str {
    match dialect {
        ApiDialect::V4 => {
            "--exabgp-api 4 (ExaBGP 4.2 and 5.0: `announce route ...`, `neighbor A announce ...`)"
        }
        ApiDialect::V6 => {
            "--exabgp-api 6 (ExaBGP 6: `peer * announce ...`, `peer [A, B] announce ...`)"
        }
    }
}

/// When the FIRST command a probe sent was answered `error`: one line saying which
/// `--exabgp-api` to use if the dialect looks wrong, `None` if the error does not point at the
/// dialect. `detail` is the message of an `error: <message>` line that came before the ACK
/// (only ExaBGP 6 sends one, and only for a command whose form it understood, so any detail
/// means the dialect is right).
pub(crate) fn mismatch_hint(
    dialect: ApiDialect,
    command: &str,
    detail: Option<&str>,
) -> Option<String> {
    if detail.is_some_and(|d| !d.trim().is_empty()) {
        return None;
    }
    let first = command.split_whitespace().next().unwrap_or("");
    match dialect {
        ApiDialect::V4 if matches!(first, "announce" | "withdraw" | "neighbor") => Some(
            "ExaBGP answered `error` to the first command, written in the ExaBGP 4.2/5.0 form \
             (--exabgp-api 4); ExaBGP 6 answers that to every command not starting with `peer`: \
             if this ExaBGP is 6.x, run the probe with --exabgp-api 6"
                .to_string(),
        ),
        ApiDialect::V6 if first == "peer" => Some(
            "ExaBGP answered `error` to the first command, written in the ExaBGP 6 form \
             `peer ...` (--exabgp-api 6); ExaBGP 4.2 and 5.0 answer that to every `peer` command: \
             if this ExaBGP is 4.2 or 5.0, run the probe with --exabgp-api 4"
                .to_string(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detected(version: &str, dialect: ApiDialect) -> Option<DetectedExabgp> {
        Some(DetectedExabgp {
            version: version.to_string(),
            dialect,
        })
    }

    #[test]
    fn answers_of_every_version_verbatim() {
        assert_eq!(
            parse_version_answer("exabgp 4.2.25"),
            detected("4.2.25", ApiDialect::V4)
        );
        assert_eq!(
            parse_version_answer("exabgp 5.0.15"),
            detected("5.0.15", ApiDialect::V4)
        );
        assert_eq!(
            parse_version_answer(
                r#"{"version": "6.0.0-20261125+uncontrolled", "application": "exabgp"}"#
            ),
            detected("6.0.0-20261125+uncontrolled", ApiDialect::V6)
        );
        // ExaBGP 6 started with exabgp_api_version=4 answers in text: the legacy forms work.
        assert_eq!(
            parse_version_answer("exabgp 6.0.0-20261125+uncontrolled\r"),
            detected("6.0.0-20261125+uncontrolled", ApiDialect::V4)
        );
    }

    #[test]
    fn other_lines_are_not_answers() {
        for line in [
            "",
            "done",
            "error",
            "error: Could not parse route: route 192.0.2.9/32 next-hop banana",
            "shutdown 19414 19404",
            "neighbor 127.0.0.1 up",
            "exabgp",
            "exabgp is great",
            "exabgp 5.0.15 and more",
            r#"{ "exabgp": "5.0.0", "time": 1.5, "type": "notification", "notification": "shutdown" }"#,
            r#"{"api_version": 6, "description": "json-only"}"#,
            r#"{"version": "6.0.0", "application": "gobgp"}"#,
            r#"{"version": 6, "application": "exabgp"}"#,
            r#"{"version": "6.0.0", "application": "exabgp""#,
            "[1, 2]",
        ] {
            assert_eq!(parse_version_answer(line), None, "{line:?}");
        }
    }

    #[test]
    fn legacy_command_answered_error_points_at_api_6() {
        for command in [
            "announce route 192.0.2.1/32 next-hop self med 100",
            "withdraw route 192.0.2.1/32 next-hop self",
            "neighbor 127.0.0.1 announce route 192.0.2.1/32 next-hop self med 100",
        ] {
            let hint = mismatch_hint(ApiDialect::V4, command, None).expect(command);
            assert!(hint.contains("--exabgp-api 6"), "{hint}");
            assert!(!hint.contains('\n'));
        }
    }

    #[test]
    fn peer_command_answered_error_points_at_api_4() {
        for command in [
            "peer * announce route 192.0.2.1/32 next-hop self med 100",
            "peer [127.0.0.1, 127.0.0.2] withdraw route 192.0.2.1/32 next-hop self",
        ] {
            let hint = mismatch_hint(ApiDialect::V6, command, Some("")).expect(command);
            assert!(hint.contains("--exabgp-api 4"), "{hint}");
            assert!(!hint.contains('\n'));
        }
    }

    #[test]
    fn no_hint_when_the_error_is_not_about_the_dialect() {
        // ExaBGP 6 understood the form and says what is wrong with the route itself.
        assert_eq!(
            mismatch_hint(
                ApiDialect::V6,
                "peer * announce route 192.0.2.9/32 next-hop banana",
                Some("Could not parse route: route 192.0.2.9/32 next-hop banana"),
            ),
            None
        );
        assert_eq!(
            mismatch_hint(
                ApiDialect::V4,
                "announce route 192.0.2.9/32 next-hop banana",
                Some("Could not parse route"),
            ),
            None
        );
        // Commands that are not the dialect's route commands.
        assert_eq!(mismatch_hint(ApiDialect::V4, "peer * announce", None), None);
        assert_eq!(mismatch_hint(ApiDialect::V6, "announce route", None), None);
        assert_eq!(mismatch_hint(ApiDialect::V6, VERSION_COMMAND, None), None);
        assert_eq!(mismatch_hint(ApiDialect::V4, "", None), None);
    }

    #[test]
    fn descriptions_name_the_option() {
        assert!(describe(ApiDialect::V4).starts_with("--exabgp-api 4"));
        assert!(describe(ApiDialect::V6).starts_with("--exabgp-api 6"));
    }
}
