//! Parsing Redis `INFO` text (`key:value` lines under `# Section` headers) and the fields the
//! probe reads from it.

use std::collections::HashMap;

/// The fields of one or more INFO sections.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Info(HashMap<String, String>);

impl Info {
    /// Parse INFO output; unknown and malformed lines are skipped.
    pub fn parse(text: &str) -> Info {
        Info(
            text.lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .filter_map(|line| line.split_once(':'))
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        )
    }

    /// A field as text.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A numeric field.
    pub fn number(&self, key: &str) -> Option<i64> {
        self.get(key)?.parse().ok()
    }

    /// `role:master` → true.
    pub fn is_master(&self) -> bool {
        self.get("role") == Some("master")
    }
}

/// Bytes a replica is behind its master, from the master's `master_repl_offset` and the
/// replica's `slave_repl_offset` (both read from INFO, so anything a server sends); never
/// negative.
pub fn lag_bytes(master_offset: i64, replica_offset: i64) -> u64 {
    let lag = i128::from(master_offset) - i128::from(replica_offset);
    u64::try_from(lag.max(0)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections() {
        let info = Info::parse(
            "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:6379\r\nmaster_link_status:up\r\n\
             master_last_io_seconds_ago:1\r\nmaster_sync_in_progress:0\r\nslave_repl_offset:1234\r\n\r\n\
             # Persistence\r\nloading:0\r\ngarbage line\r\n",
        );
        assert!(!info.is_master());
        assert_eq!(info.get("master_link_status"), Some("up"));
        assert_eq!(info.number("slave_repl_offset"), Some(1234));
        assert_eq!(info.number("loading"), Some(0));
        assert_eq!(info.get("garbage line"), None);
        assert_eq!(info.number("master_host"), None);
    }

    /// Offsets come from whatever a server sends: far apart ones must not overflow (a panic
    /// with overflow checks, a wrapped "no lag" without).
    #[test]
    fn lag_never_overflows() {
        assert_eq!(lag_bytes(2000, 1234), 766);
        assert_eq!(lag_bytes(100, 9000), 0);
        assert_eq!(lag_bytes(i64::MAX, -1), 1 << 63);
        assert_eq!(lag_bytes(i64::MAX, i64::MIN), u64::MAX);
        assert_eq!(lag_bytes(i64::MIN, i64::MAX), 0);
    }
}
