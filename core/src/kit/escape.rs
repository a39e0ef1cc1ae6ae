//! Making operator-supplied text safe to print on one line: control characters (an ANSI escape
//! in a config value, a newline that would forge a second log line) and the Unicode bidi controls
//! that can make a line read differently from what it contains (Trojan Source, CVE-2021-42574)
//! are shown as `\u{…}` escapes. [`is_unsafe`] is also what `kit::reason` drops from text a
//! server sent.

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for characters that must not reach a terminal or a log line as they are.
pub(crate) fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every unsafe character escaped (`\n`, `\t`, `\r`, others as `\u{1b}`).
pub(crate) fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Longest error line printed, in characters (a long bad value is cut, not echoed in full).
const MAX_MESSAGE_CHARS: usize = 600;

/// `text` made safe to print as one line: unsafe characters escaped, cut to a sane length.
pub(crate) fn one_line(text: &str) -> String {
    let escaped = escape_controls(text.trim());
    if escaped.chars().count() <= MAX_MESSAGE_CHARS {
        return escaped.into_owned();
    }
    let mut cut: String = escaped.chars().take(MAX_MESSAGE_CHARS).collect();
    cut.push_str("… (cut)");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bidi() {
        assert_eq!(escape_controls("plain"), "plain");
        assert_eq!(escape_controls("x\u{1b}[31mRED"), "x\\u{1b}[31mRED");
        assert_eq!(escape_controls("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(escape_controls("abc\u{202E}fed"), "abc\\u{202e}fed");
        for c in [
            '\u{200E}', '\u{200F}', '\u{202A}', '\u{202D}', '\u{2066}', '\u{2069}', '\u{7f}',
            '\u{85}',
        ] {
            let escaped = escape_controls(&c.to_string()).into_owned();
            assert!(escaped.starts_with("\\u{"), "{c:?} → {escaped}");
        }
        assert_eq!(escape_controls("é ü ✓"), "é ü ✓");
    }

    proptest::proptest! {
        #[test]
        fn output_is_always_one_safe_line(text in "\\PC*|[\\x00-\\x1f\\u{202a}-\\u{202e}a-z]{0,20}") {
            let escaped = escape_controls(&text);
            proptest::prop_assert!(!escaped.chars().any(is_unsafe), "{escaped:?}");
        }
    }
}
