//! The TOML loader (`core/src/loader.rs`) through its public entry point, as a probe binary
//! calls it: arbitrary bytes as the `--config` file of exaprobe-exec, then the cross-option
//! rules (`Settings::resolve`) and the renderer.
//!
//! Properties: never a panic (a bad file is a `LoadError`); a configuration that loads and
//! resolves has a printable name and renders only safe, single route commands in every state
//! ([`exaprobe_fuzz::check_routes`]).
#![no_main]

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::LazyLock;

use exaprobe_core::loader::load_with;
use exaprobe_core::settings::{ModeFlags, Settings};
use exaprobe_core::{Binary, Cli};
use exaprobe_exec::ExecOptions;
use libfuzzer_sys::fuzz_target;

const BINARY: Binary = Binary {
    name: "exaprobe-exec",
    about: "fuzzing",
};

/// One scratch file per fuzzing process, rewritten for every input.
static CONFIG: LazyLock<PathBuf> = LazyLock::new(|| {
    std::env::temp_dir().join(format!("exaprobe-fuzz-loader-{}.toml", std::process::id()))
});

fuzz_target!(|data: &[u8]| {
    std::fs::write(&*CONFIG, data).expect("write the scratch config file");
    let argv: Vec<OsString> = vec![
        BINARY.name.into(),
        "--config".into(),
        CONFIG.as_os_str().to_owned(),
    ];
    let Ok(options) = load_with::<Cli<ExecOptions>>(BINARY.command::<ExecOptions>(), &argv) else {
        return;
    };
    let modes = ModeFlags {
        dry_run: true,
        routes_optional: false,
    };
    let Ok(settings) = Settings::resolve(&options.common, BINARY.name, modes) else {
        return;
    };
    assert!(
        !settings.name.is_empty() && !settings.name.chars().any(char::is_control),
        "name {:?}",
        settings.name
    );
    exaprobe_fuzz::check_routes(&settings.routes);
});
