//! The TOML loader (`core/src/config/loader.rs`) through its public entry point, as a probe binary
//! calls it: arbitrary bytes as the `--config` file of exaprobe-exec, then the cross-option
//! rules (`Settings::resolve`) and the renderer.
//!
//! Properties: never a panic (a bad file is a `LoadError`); a configuration that loads and
//! resolves has a printable name and renders only safe, single route commands in every state
//! (`check_routes`).
//!
//! The property lives in core (`core/src/fuzzing/`), next to the private code it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| exaprobe_core::fuzzing::toml_loader(data));
