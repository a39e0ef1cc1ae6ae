//! Byte sizes as operators write them, one parser for every option that takes bytes.
//!
//! The units are those of the servers exaprobe checks, so a value copied from `redis.conf` or
//! `postgresql.conf` means the same here (case does not matter, a space may separate the unit):
//!
//! - plain number or `B`: bytes;
//! - `k`, `m`, `g`, `t` (decimal, as in redis.conf): 1000, 1000², 1000³, 1000⁴ bytes;
//! - `kB`, `MB`, `GB`, `TB` (binary, as PostgreSQL and Redis read them) and `KiB`, `MiB`, `GiB`,
//!   `TiB`: 1024, 1024², 1024³, 1024⁴ bytes.

/// What a size looks like, for error messages.
const EXAMPLES: &str = "e.g. 1048576, 512kB, 16MB, 64MiB, 1k";

/// Parse a byte size (see the module documentation for the units). Used as a clap
/// `value_parser` by every option that takes bytes.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size ({EXAMPLES})"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "m" => 1000_u64.pow(2),
        "g" => 1000_u64.pow(3),
        "t" => 1000_u64.pow(4),
        "kb" | "kib" => 1 << 10,
        "mb" | "mib" => 1 << 20,
        "gb" | "gib" => 1 << 30,
        "tb" | "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "'{text}' has an unknown unit '{}' (use k, m, g for powers of 1000; kB, MB, GB or KiB, MiB, GiB for powers of 1024)",
                unit.trim()
            ));
        }
    };
    value
        .checked_mul(scale)
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// [`parse_byte_size`] for options held as `usize` (buffer limits).
pub fn parse_byte_size_usize(text: &str) -> Result<usize, String> {
    let bytes = parse_byte_size(text)?;
    usize::try_from(bytes).map_err(|_| format!("'{text}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        for (text, bytes) in [
            ("1048576", 1_048_576),
            ("0", 0),
            ("10B", 10),
            ("1k", 1000),
            ("2M", 2_000_000),
            ("1g", 1_000_000_000),
            ("512kB", 512 * 1024),
            ("16MB", 16 << 20),
            ("16mb", 16 << 20),
            ("64MiB", 64 << 20),
            ("1 GB", 1 << 30),
            ("1TiB", 1 << 40),
            (" 3 kib ", 3 * 1024),
        ] {
            assert_eq!(parse_byte_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn garbage_is_rejected_with_the_value() {
        assert!(parse_byte_size("x").unwrap_err().contains("'x'"));
        assert!(parse_byte_size("").is_err());
        assert!(parse_byte_size("-1").is_err());
        assert!(parse_byte_size("1.5MB").is_err());
        assert!(
            parse_byte_size("5 parsecs")
                .unwrap_err()
                .contains("unknown unit 'parsecs'")
        );
        assert!(
            parse_byte_size("99999999999999999999TB")
                .unwrap_err()
                .contains("'99999999999999999999TB'")
        );
        assert!(
            parse_byte_size("20000000TB")
                .unwrap_err()
                .contains("too large")
        );
        assert_eq!(parse_byte_size_usize("64kB"), Ok(65536));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in ".{0,20}") {
            let _ = parse_byte_size(&text);
        }

        #[test]
        fn plain_numbers_round_trip(n in 0u64..u64::MAX) {
            proptest::prop_assert_eq!(parse_byte_size(&n.to_string()), Ok(n));
        }
    }
}
