//! Route and attribute parsers (`core/src/engine/route.rs`) and the renderer (`core/src/engine/render.rs`).
//!
//! Input: byte 0 holds switches (dialect, withdraw-on-down, local preference, path id), the rest
//! is text split on NUL into the values of a route policy (prefixes, next hops, community lists,
//! AS paths, path id, neighbors); values that do not parse are left out, as the option parser
//! would refuse them. Properties:
//! - a value any parser accepts displays as printable ASCII without spaces (AS paths: single
//!   spaces between numbers), and displays the same after a second parse (stable);
//! - every line the policy renders, in every state and both dialects, is one printable line
//!   that parses as exactly one ExaBGP route command with well-formed values
//!   (`check_routes`).
//!
//! The property lives in core (`core/src/fuzzing/`), next to the private code it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| exaprobe_core::fuzzing::route_render(data));
