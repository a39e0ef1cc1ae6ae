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
//!
//! The property lives in core (`core/src/fuzzing/`), next to the private code it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| exaprobe_core::fuzzing::pipe_reader(data));
