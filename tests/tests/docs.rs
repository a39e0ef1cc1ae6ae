//! Every option of every probe binary is documented in CONFIGURATION.md (a doc-drift check on
//! the release binaries' own `--help`).

use exaprobe_e2e::{release_binary, workspace_root};

/// Every probe binary of the workspace: the members named `bin/exaprobe-*`, so a new probe is
/// checked without being listed here.
fn binaries() -> Vec<String> {
    let manifest: toml::Table = std::fs::read_to_string(workspace_root().join("Cargo.toml"))
        .expect("workspace Cargo.toml")
        .parse()
        .expect("workspace Cargo.toml parses");
    manifest["workspace"]["members"]
        .as_array()
        .expect("workspace members")
        .iter()
        .filter_map(|member| member.as_str()?.strip_prefix("bin/"))
        .filter(|name| name.starts_with("exaprobe-"))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_option_of_every_binary_is_in_configuration_md() {
    let reference = std::fs::read_to_string(workspace_root().join("CONFIGURATION.md")).unwrap();
    let mut checked = 0;
    for binary in &binaries() {
        assert!(
            reference.contains(&format!("## {binary}")),
            "CONFIGURATION.md has no section for {binary}"
        );
        let output = std::process::Command::new(release_binary(binary))
            .arg("--help")
            .output()
            .unwrap();
        assert!(output.status.success());
        let help = String::from_utf8_lossy(&output.stdout);
        let longs: Vec<&str> = help
            .split_whitespace()
            .filter(|word| word.starts_with("--") && word.len() > 2)
            .map(|word| word.trim_end_matches([',', '.', ')', '`', ';']))
            .filter(|word| {
                word.chars()
                    .skip(2)
                    .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit())
            })
            .collect();
        assert!(longs.len() > 40, "{binary}: {longs:?}");
        for long in longs {
            assert!(
                reference.contains(&format!("`{long}")) || reference.contains(&format!(" {long}")),
                "{binary}: {long} is not in CONFIGURATION.md"
            );
        }
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} binaries checked");
}
