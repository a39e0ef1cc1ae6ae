//! Option value parsers shared by the probes (for clap's `value_parser`), each refusing a bad
//! value with one line that clap prefixes with the option's name, and [`Limits`].

use std::fmt::Display;

pub use crate::config::duration::{parse_duration, parse_positive_duration};
pub use crate::config::size::{parse_byte_size, parse_byte_size_usize};

/// A regular expression over text (`--expect-answer`).
pub fn regex(text: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(text).map_err(|error| invalid_regex(text, &error))
}

/// A regular expression over bytes (`--expect`, `--expect-body`): what a server sends need not
/// be UTF-8.
pub fn bytes_regex(text: &str) -> Result<regex::bytes::Regex, String> {
    regex::bytes::Regex::new(text).map_err(|error| invalid_regex(text, &error))
}

fn invalid_regex(text: &str, error: &regex::Error) -> String {
    format!("'{text}' is not a valid regex: {error}")
}

/// A degraded level and a hard level of the same measure (`--degraded-lag` and `--max-lag`):
/// past the degraded level the service is announced with a worse MED, past the hard level it
/// is withdrawn. Built only through [`Limits::new`], which refuses a degraded level at or above
/// the hard one (it could never apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits<T> {
    degraded: Option<T>,
    hard: Option<T>,
}

/// Where a measured value stands against its [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// At or under both levels.
    Within,
    /// Over the degraded level only.
    Degraded,
    /// Over the hard level.
    Over,
}

impl<T: PartialOrd + Copy + Display> Limits<T> {
    /// Pair two options' values; `names` are the options (`("--degraded-lag", "--max-lag")`)
    /// for the error, which shows the values through `show`.
    pub fn new(
        degraded: Option<T>,
        hard: Option<T>,
        names: (&str, &str),
        show: impl Fn(T) -> String,
    ) -> Result<Self, String> {
        if let (Some(soft), Some(hard)) = (degraded, hard)
            && soft >= hard
        {
            return Err(format!(
                "{} ({}) must be below {} ({})",
                names.0,
                show(soft),
                names.1,
                show(hard)
            ));
        }
        Ok(Limits { degraded, hard })
    }

    /// True when neither level is set (nothing to measure).
    pub fn is_empty(&self) -> bool {
        self.degraded.is_none() && self.hard.is_none()
    }

    /// The hard level, for reasons.
    pub fn hard(&self) -> Option<T> {
        self.hard
    }

    /// The degraded level, for reasons.
    pub fn degraded(&self) -> Option<T> {
        self.degraded
    }

    /// Where `value` stands: over the hard level first, then over the degraded one.
    pub fn level(&self, value: T) -> Level {
        match (self.degraded, self.hard) {
            (_, Some(hard)) if value > hard => Level::Over,
            (Some(soft), _) if value > soft => Level::Degraded,
            _ => Level::Within,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_refuse_a_degraded_level_that_could_never_apply() {
        let error = Limits::new(Some(10u64), Some(10), ("--degraded-x", "--max-x"), |v| {
            v.to_string()
        })
        .unwrap_err();
        assert_eq!(error, "--degraded-x (10) must be below --max-x (10)");
        let limits = Limits::new(Some(5u64), Some(10), ("a", "b"), |v| v.to_string()).unwrap();
        assert_eq!(limits.level(5), Level::Within);
        assert_eq!(limits.level(6), Level::Degraded);
        assert_eq!(limits.level(11), Level::Over);
        let hard_only = Limits::new(None, Some(10u64), ("a", "b"), |v| v.to_string()).unwrap();
        assert_eq!(hard_only.level(9), Level::Within);
        assert!(
            Limits::<u64>::new(None, None, ("a", "b"), |v| v.to_string())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn regexes_name_the_bad_pattern() {
        assert!(regex("^ok$").is_ok());
        assert!(
            bytes_regex("(")
                .unwrap_err()
                .starts_with("'(' is not a valid regex")
        );
    }
}
