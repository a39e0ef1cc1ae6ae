//! Every option of every probe binary is documented in CONFIGURATION.md (a doc-drift check on
//! the release binaries' own `--help`).

use exaprobe_e2e::release_binary;

const BINARIES: &[&str] = &[
    "exaprobe-exec",
    "exaprobe-http",
    "exaprobe-tcp",
    "exaprobe-dns",
    "exaprobe-postgres",
    "exaprobe-redis",
    "exaprobe-grpc",
];

fn workspace_members() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"))
        .expect("workspace Cargo.toml")
}

#[test]
fn every_option_of_every_binary_is_in_configuration_md() {
    let reference =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../CONFIGURATION.md"))
            .unwrap();
    let members = workspace_members();
    let mut checked = 0;
    for binary in BINARIES {
        if !members.contains(&format!("\"bin/{binary}\"")) {
            continue;
        }
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
    assert!(checked >= 4, "only {checked} binaries checked");
}
