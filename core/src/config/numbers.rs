//! Whole numbers in a range, as options take them (rise, fall, MEDs), with one wording for
//! every mistake.

/// Rise and fall: 1 to 1000 checks.
pub(crate) fn parse_count(text: &str) -> Result<u32, String> {
    whole_number(text, 1, 1000)
}

/// A whole number from `min` to `max`, or the one-line reason it is not.
pub(crate) fn whole_number(text: &str, min: u32, max: u32) -> Result<u32, String> {
    let trimmed = text.trim();
    trimmed
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("'{trimmed}' is not a whole number from {min} to {max}"))
}
