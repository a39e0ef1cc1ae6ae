//! Durations (`core/src/config/duration.rs`) and byte sizes (the shared `core/src/config/size.rs`).
//!
//! Properties: never a panic; an accepted duration is at most a year; `parse_positive_duration`
//! accepts exactly the non-zero durations `parse_duration` accepts; a plain number means seconds
//! (`N` = `Ns`, `Nms` is a thousandth of it, `Nm` sixty times, within float rounding); an
//! accepted size is the number times its unit and prints back to the same size.
#![no_main]

use std::time::Duration;

use exaprobe_core::kit::parse::{parse_byte_size, parse_duration, parse_positive_duration};
use libfuzzer_sys::fuzz_target;

fn close(a: Duration, b: Duration) -> bool {
    let (a, b) = (a.as_secs_f64(), b.as_secs_f64());
    // Each parse rounds to a nanosecond; scaling by 1000 scales that error too.
    (a - b).abs() <= 2e-6 + a.abs().max(b.abs()) * 1e-12
}

fn durations(text: &str) {
    let parsed = parse_duration(text);
    if let Ok(value) = parsed {
        assert!(
            value <= Duration::from_secs(365 * 86400),
            "{text:?} -> {value:?}"
        );
    }
    match parse_positive_duration(text) {
        Ok(value) => assert_eq!(Ok(value), parsed, "{text:?}"),
        Err(_) => assert!(parsed.is_err() || parsed == Ok(Duration::ZERO), "{text:?}"),
    }
    let number = text.trim();
    if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let seconds = parse_duration(&format!("{number}s"));
        assert_eq!(
            seconds.clone().ok(),
            parsed.clone().ok(),
            "{text:?} vs seconds"
        );
        if let Ok(seconds) = seconds {
            if let Ok(ms) = parse_duration(&format!("{number}ms")) {
                assert!(
                    close(ms * 1000, seconds),
                    "{number}ms = {ms:?}, {number}s = {seconds:?}"
                );
            } else {
                panic!("{number}s accepted but {number}ms refused");
            }
            if let Ok(minutes) = parse_duration(&format!("{number}m")) {
                assert!(close(minutes, seconds * 60), "{number}m = {minutes:?}");
            }
        }
    }
}

fn sizes(text: &str) {
    let Ok(size) = parse_byte_size(text) else {
        return;
    };
    assert_eq!(parse_byte_size(&size.to_string()), Ok(size), "{text:?}");
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let number: u64 = digits
        .parse()
        .expect("an accepted size starts with a number");
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
        other => panic!("{text:?} accepted with unit {other:?}"),
    };
    assert_eq!(number.checked_mul(scale), Some(size), "{text:?}");
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    durations(&text);
    sizes(&text);
});
