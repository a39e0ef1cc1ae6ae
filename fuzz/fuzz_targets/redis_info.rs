//! The Redis INFO parser (`probes/redis/src/info.rs`) and the lag computed from two INFO replies.
//!
//! Input: text; before the first NUL the replica's INFO, after it the master's. Properties:
//! never a panic (also not in the lag arithmetic, whatever offsets a server reports); every
//! `key:value` line outside comments is found, the last one winning, exactly as written
//! (trimmed), and numbers are what `i64` parsing of that value gives; the lag is the offset
//! difference when that is positive and representable, 0 when negative.
#![no_main]

use std::collections::HashMap;

use exaprobe_redis::{Info, lag_bytes};
use libfuzzer_sys::fuzz_target;

fn check(text: &str) -> Info {
    let info = Info::parse(text);
    let mut expected: HashMap<&str, &str> = HashMap::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            expected.insert(key, value);
        }
    }
    for (key, value) in &expected {
        assert_eq!(info.get(key), Some(*value), "{key:?} in {text:?}");
        assert_eq!(info.number(key), value.parse().ok(), "{key:?} in {text:?}");
    }
    assert_eq!(info.is_master(), expected.get("role") == Some(&"master"));
    info
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (replica, master) = text.split_once('\0').unwrap_or((&text, ""));
    let replica = check(replica);
    let master = check(master);
    if let (Some(master), Some(replica)) = (
        master.number("master_repl_offset"),
        replica.number("slave_repl_offset"),
    ) {
        let lag = lag_bytes(master, replica);
        let exact = i128::from(master) - i128::from(replica);
        if exact <= 0 {
            assert_eq!(lag, 0);
        } else {
            assert_eq!(
                u128::from(lag),
                exact.unsigned_abs().min(u128::from(u64::MAX))
            );
        }
    }
});
