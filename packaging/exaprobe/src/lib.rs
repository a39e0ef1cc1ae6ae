//! The `exaprobe` meta package: no code, only the package that depends on every probe package
//! (see `[package.metadata.deb]` and `[package.metadata.generate-rpm]` in Cargo.toml).
