//! The TOML loader (`core/src/config/loader.rs`) through its public entry point, as a probe binary
//! calls it: arbitrary bytes as the `--config` file of a probe binary, then the cross-option
//! rules (`Settings::resolve`) and the renderer.
//!
//! Properties: never a panic (a bad file is a `LoadError`); a configuration that loads and
//! resolves has a printable name and renders only safe, single route commands in every state
//! (`check_routes`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::LazyLock;

use crate::config::loader::load_with;
use crate::config::options::{Binary, Cli};
use crate::config::settings::{ModeFlags, Settings};

/// No check options: the loader is fuzzed on the common ones, which every binary shares.
#[derive(Debug, Clone, clap::Args)]
struct NoOptions {}

const BINARY: Binary = Binary {
    drop_in: false,
    name: "exaprobe-fuzz",
    about: "fuzzing",
    example: "",
    environment: &[],
};

/// One scratch file per fuzzing process, rewritten for every input.
static CONFIG: LazyLock<PathBuf> = LazyLock::new(|| {
    std::env::temp_dir().join(format!("exaprobe-fuzz-loader-{}.toml", std::process::id()))
});

/// One toml_loader input (see the module documentation).
pub fn toml_loader(data: &[u8]) {
    std::fs::write(&*CONFIG, data).expect("write the scratch config file");
    let argv: Vec<OsString> = vec![
        BINARY.name.into(),
        "--config".into(),
        CONFIG.as_os_str().to_owned(),
    ];
    let Ok(options) = load_with::<Cli<NoOptions>>(BINARY.command::<NoOptions>(), &argv) else {
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
    super::routes::check_routes(&settings.routes);
}
