//! SOA serial comparison with RFC 1982 serial number arithmetic (serials wrap at 2^32).

/// How far `local` is behind `reference`: `Some(n)` when behind by n, `Some(0)` when equal or
/// ahead, `None` when the distance is exactly 2^31 (RFC 1982 leaves that undefined).
pub fn serial_lag(reference: u32, local: u32) -> Option<u32> {
    let distance = reference.wrapping_sub(local);
    match distance {
        0 => Some(0),
        d if d < 1 << 31 => Some(d),
        d if d > 1 << 31 => Some(0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_wrapped() {
        assert_eq!(serial_lag(10, 10), Some(0));
        assert_eq!(serial_lag(12, 10), Some(2));
        assert_eq!(serial_lag(10, 12), Some(0), "ahead is not behind");
        assert_eq!(
            serial_lag(3, u32::MAX - 1),
            Some(5),
            "the reference wrapped past 2^32"
        );
        assert_eq!(serial_lag(u32::MAX, 2), Some(0), "local wrapped: ahead");
        assert_eq!(serial_lag(1 << 31, 0), None);
        assert_eq!(serial_lag(2026112404, 2026112401), Some(3));
    }

    proptest::proptest! {
        /// Adding n (< 2^31) to a serial makes the old one exactly n behind, wherever it wraps.
        #[test]
        fn increments_are_measured_exactly(local in proptest::num::u32::ANY, n in 0u32..(1 << 31)) {
            proptest::prop_assert_eq!(serial_lag(local.wrapping_add(n), local), Some(n));
        }

        /// A local serial is never both behind and ahead: one direction is always 0.
        #[test]
        fn antisymmetric(a in proptest::num::u32::ANY, b in proptest::num::u32::ANY) {
            if let (Some(x), Some(y)) = (serial_lag(a, b), serial_lag(b, a)) {
                proptest::prop_assert!(x == 0 || y == 0);
            }
        }
    }
}
