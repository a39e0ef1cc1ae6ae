//! Wall-clock time for the state file, the syslog header and the flap-hold log line, without a
//! date crate: UTC only.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 before it, which a sane clock never is).
pub(crate) fn unix_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

/// The civil UTC date and time of `at`: (year, month 1-12, day, hour, minute, second).
fn civil(at: SystemTime) -> (i64, u32, u32, u64, u64, u64) {
    let seconds = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
    )
}

/// RFC 3339 UTC with whole seconds: `2026-11-25T21:52:21Z`.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    let (year, month, day, hour, minute, second) = civil(at);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// The BSD syslog timestamp (RFC 3164): `Nov  5 09:04:01`, here in UTC.
pub(crate) fn syslog_stamp(at: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (_, month, day, hour, minute, second) = civil(at);
    let name = MONTHS[(month as usize).saturating_sub(1) % 12];
    format!("{name} {day:>2} {hour:02}:{minute:02}:{second:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        let at = UNIX_EPOCH + Duration::from_secs(1_795_038_741);
        assert_eq!(rfc3339(at), "2026-11-18T21:52:21Z");
        assert_eq!(syslog_stamp(at), "Nov 18 21:52:21");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_723);
        assert_eq!(rfc3339(leap), "2000-02-29T01:02:03Z");
        assert_eq!(syslog_stamp(leap), "Feb 29 01:02:03");
        assert_eq!(syslog_stamp(UNIX_EPOCH), "Jan  1 00:00:00");
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_millis(1500)), 1.5);
    }
}
