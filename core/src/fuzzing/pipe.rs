//! The stdin reader: `LineSplitter` and `classify` on whatever ExaBGP (or anything else) writes.
//!
//! Input: byte 0 picks the line limit (small, so overlong lines are common; 255 means the real
//! `MAX_LINE`), byte 1 seeds the chunk sizes, the rest is the stream. Properties:
//! - chunking invariance: any split of the stream into `feed` calls yields the same pieces as one
//!   call, and both match a plain reference model (split on `\n`, drop lines over the limit,
//!   decode lossily, strip trailing `\r`);
//! - no piece holds a newline, and a trailing partial line is never reported until its `\n`
//!   (unless it already exceeds the limit);
//! - `classify` ignores surrounding whitespace and only reports an ACK or a shutdown for the
//!   exact words or a JSON object.

use crate::engine::exabgp::{LineSplitter, MAX_LINE, Message, Piece, classify};

/// The pieces a stream should produce with limit `max`, computed the obvious way.
fn model(stream: &[u8], max: usize) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut segments: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    let partial = segments.pop().unwrap_or_default();
    for segment in segments {
        if segment.len() > max {
            pieces.push(Piece::Overlong);
        } else {
            let line = String::from_utf8_lossy(segment);
            pieces.push(Piece::Line(line.trim_end_matches('\r').to_string()));
        }
    }
    if partial.len() > max {
        pieces.push(Piece::Overlong);
    }
    pieces
}

fn check_classify(line: &str) {
    let message = classify(line);
    for padded in [
        format!(" {line}"),
        format!("{line}\r"),
        format!("\t{line}  "),
    ] {
        assert_eq!(classify(&padded), message, "whitespace changed {line:?}");
    }
    let word = line.trim();
    let json = word.starts_with('{')
        && serde_json::from_str::<serde_json::Value>(word).is_ok_and(|value| value.is_object());
    match message {
        Message::Done => assert!(word == "done" || json, "{line:?} read as done"),
        Message::Error => assert!(word == "error" || json, "{line:?} read as error"),
        Message::Shutdown => assert!(
            word == "shutdown" || word.starts_with("shutdown ") || json,
            "{line:?} read as shutdown"
        ),
        Message::ErrorDetail(detail) => {
            assert!(
                word.starts_with("error:"),
                "{line:?} read as an error detail"
            );
            assert!(
                !detail.contains('\n') && detail.chars().count() <= 300,
                "{detail:?}"
            );
        }
        Message::NeighborUp(peer) => {
            assert!(
                (word.starts_with("neighbor ") && word.ends_with(" up")) || json,
                "{line:?} read as a session up"
            );
            assert!(
                !peer.contains(['\n', ' ']) && peer.chars().count() <= 64,
                "{peer:?}"
            );
        }
        Message::Version(found) => assert!(
            word.starts_with("exabgp ") || json,
            "{line:?} read as a version answer ({found:?})"
        ),
        Message::Other => assert!(
            !matches!(word, "done" | "error" | "shutdown"),
            "{line:?} not recognised"
        ),
    }
}

/// One pipe_reader input (see the module documentation).
pub fn pipe_reader(data: &[u8]) {
    let [limit, seed, stream @ ..] = data else {
        return;
    };
    let max = if *limit == 255 {
        MAX_LINE
    } else {
        usize::from(*limit % 64) + 1
    };

    let mut whole = LineSplitter::new(max);
    let at_once = whole.feed(stream);

    let mut chunked = LineSplitter::new(max);
    let mut pieces = Vec::new();
    let mut rest = stream;
    let mut state = u32::from(*seed) | 0x100;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = (state % 17) as usize; // 0 too: an empty read must change nothing
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        pieces.extend(chunked.feed(chunk));
        rest = tail;
    }
    assert_eq!(pieces, at_once, "chunking changed the pieces");
    assert_eq!(at_once, model(stream, max), "pieces differ from the model");

    for piece in &at_once {
        if let Piece::Line(line) = piece {
            assert!(!line.contains('\n'), "newline inside {line:?}");
            assert!(!line.ends_with('\r'), "carriage return left on {line:?}");
            check_classify(line);
        }
    }
}
