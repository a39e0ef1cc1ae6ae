//! One-line failure reasons shared by the probes, and the walk down an error's causes they are
//! read from.

use std::error::Error;
use std::io;

use crate::kit::escape::is_unsafe;

/// The first 80 bytes of what a server sent, printable (controls and bidi controls as spaces),
/// trimmed: enough to recognise a wrong banner or an error page in a log line without flooding
/// it.
pub fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(80)]);
    text.chars()
        .map(|c| if is_unsafe(c) { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// `text` on one line (controls and bidi controls as spaces, runs of them as one), at most
/// `max` bytes (cut on a character boundary): for reasons that come from the network.
pub fn one_line(text: &str, max: usize) -> String {
    let mut line = String::with_capacity(text.len().min(max));
    for word in text
        .split(|c: char| is_unsafe(c) || c == ' ')
        .filter(|w| !w.is_empty())
    {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if line.len() > max {
        let mut cut = max;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
    }
    line
}

/// An error and its causes on one line, each cause once (client libraries often print only
/// the outermost layer, and the useful part is a few sources deep).
pub fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text.replace('\n', " ")
}

/// An error and its causes, outermost first: for a probe that looks for a layer of its own
/// (its connector's failure, a refused answer) in what a client library returned.
pub fn causes<'a>(
    error: &'a (dyn Error + 'static),
) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |&error| error.source())
}

/// True when `error` or one of its causes is an `E`.
pub fn caused_by<E: Error + 'static>(error: &(dyn Error + 'static)) -> bool {
    causes(error).any(|cause| cause.is::<E>())
}

/// An I/O error as an operator reads it: "connection refused" rather than "Connection refused
/// (os error 111)", the same words from every probe.
pub fn io_error(error: &io::Error) -> String {
    match io_kind(error.kind()) {
        Some(words) => words.to_string(),
        None => error.to_string(),
    }
}

/// The plain words for the I/O error kinds a health check meets, `None` for the others.
pub fn io_kind(kind: io::ErrorKind) -> Option<&'static str> {
    Some(match kind {
        io::ErrorKind::ConnectionRefused => "connection refused",
        io::ErrorKind::ConnectionReset => "connection reset",
        io::ErrorKind::ConnectionAborted => "connection aborted",
        io::ErrorKind::UnexpectedEof => "connection closed early",
        io::ErrorKind::BrokenPipe => "connection closed (broken pipe)",
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => "unreachable",
        io::ErrorKind::NotFound => "no such socket",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_short_and_printable() {
        assert_eq!(preview(b"220 mail\r\n"), "220 mail");
        assert_eq!(preview(&[b'a'; 200]).len(), 80);
        assert_eq!(preview(b"\x1b[31mred"), "[31mred");
    }

    #[test]
    fn text_from_the_network_cannot_forge_or_reorder_a_log_line() {
        // A bidi override (Trojan Source) is a separator like a newline, not kept.
        let text = "NOT_SERVING\u{202E}gnivres\nsecond";
        assert_eq!(one_line(text, 300), "NOT_SERVING gnivres second");
        assert_eq!(preview(text.as_bytes()), "NOT_SERVING gnivres second");
    }

    #[test]
    fn chains_name_each_cause_once() {
        let inner = io::Error::other("inner\ncause");
        let outer = io::Error::other(OuterError(inner));
        assert_eq!(error_chain(&outer), "outer: inner cause");
    }

    #[test]
    fn causes_are_walked_outermost_first() {
        let inner = io::Error::other("inner");
        let outer = OuterError(inner);
        let words: Vec<String> = causes(&outer).map(|cause| cause.to_string()).collect();
        assert_eq!(words, ["outer", "inner"]);
        assert!(caused_by::<OuterError>(&outer));
        assert!(caused_by::<io::Error>(&outer));
        assert!(!caused_by::<std::fmt::Error>(&outer));
    }

    #[test]
    fn io_errors_in_plain_words() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(io_error(&refused), "connection refused");
        let other = io::Error::other("weird");
        assert_eq!(io_error(&other), "weird");
    }

    #[derive(Debug)]
    struct OuterError(io::Error);
    impl std::fmt::Display for OuterError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("outer")
        }
    }
    impl Error for OuterError {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }
}
