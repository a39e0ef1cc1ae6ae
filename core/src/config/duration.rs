//! Durations as operators write them: plain seconds like ExaBGP's healthcheck (`5`, `0.5`) or
//! with a unit (`500ms`, `2s`, `1m`, `1h`).

use std::time::Duration;

/// What a duration looks like, for error messages.
pub(crate) const EXPECTED: &str =
    "expected seconds like 5 or 0.5, or a number with a unit: 500ms, 2s, 1m, 1h";

/// The shortest interval or timeout: below this a probe would check back to back.
pub(crate) const MINIMUM_INTERVAL: Duration = Duration::from_millis(10);

/// Parse a duration; plain numbers are seconds. Used as a clap `value_parser` by every probe.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("empty duration ({EXPECTED})"));
    }
    if text.starts_with('-') {
        return Err(format!("'{text}' is negative ({EXPECTED})"));
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration ({EXPECTED})"))?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "'{text}' has an unknown unit '{other}' (use ms, s, m or h)"
            ));
        }
    };
    let seconds = value * scale;
    if !seconds.is_finite() || seconds > 365.0 * 86400.0 {
        return Err(format!(
            "'{text}' is too long a duration (at most 365 days)"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parse a duration that must be above zero (deadlines and ages).
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let value = parse_duration(text)?;
    if value.is_zero() {
        return Err(format!("'{}' must be greater than zero", text.trim()));
    }
    Ok(value)
}

/// Parse an interval or a check timeout: at least [`MINIMUM_INTERVAL`], so a typo
/// (`--interval 0.000000001`) cannot make the probe check back to back.
pub(crate) fn parse_interval(text: &str) -> Result<Duration, String> {
    let value = parse_duration(text)?;
    if value.is_zero() {
        // `exabgp healthcheck --interval 0` announces once and exits; `--timeout 0` waits for
        // ever. exaprobe does neither (a helper that exits is respawned by ExaBGP, which shuts
        // down after 6 starts in 64 s), and says so.
        return Err(format!(
            "'{}' is shorter than the minimum of 10ms (exaprobe never exits on its own and every check has a deadline, unlike exabgp healthcheck's 0)",
            text.trim()
        ));
    }
    if value < MINIMUM_INTERVAL {
        return Err(format!(
            "'{}' is shorter than the minimum of 10ms",
            text.trim()
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_numbers_are_seconds() {
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration(" 1.5 s"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn garbage_is_rejected_with_the_value() {
        for bad in ["", "abc", "5x", "-1", "1e999", "..", "5 parsecs"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        assert!(parse_duration("5x").unwrap_err().contains("'5x'"));
        assert!(parse_positive_duration("0").is_err());
        assert!(parse_positive_duration("0ms").is_err());
        assert_eq!(
            parse_duration("-1").unwrap_err(),
            format!("'-1' is negative ({EXPECTED})")
        );
        assert_eq!(
            parse_interval("0.000000001").unwrap_err(),
            "'0.000000001' is shorter than the minimum of 10ms"
        );
        assert_eq!(parse_interval("10ms"), Ok(MINIMUM_INTERVAL));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".{0,20}") {
            let _ = parse_duration(&text);
        }

        #[test]
        fn milliseconds_round_trip(ms in 0u64..10_000_000) {
            proptest::prop_assert_eq!(parse_duration(&format!("{ms}ms")), Ok(Duration::from_millis(ms)));
        }
    }
}
