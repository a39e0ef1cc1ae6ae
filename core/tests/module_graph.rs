//! The core's modules form no import cycle (issue 25): every `crate::` path in a module's
//! non-test code is an edge to the module it names, and the graph must be a DAG.
//!
//! Comments (doc links) are not uses. A module is a file directly under `src/` (`app`, `probe`), a file or folder directly under
//! one of the folders (`config::options`, `engine::runner`, `kit::events`); what is inside a
//! folder module (`engine::runner::checker`) belongs to it. Test code (every `#[cfg(test)]`
//! item, `tests.rs`, `tests/`, the simulation) and the fuzzing entry points are left out:
//! tests may reach anywhere.
//!
//! Also here: no core source file is over 700 lines, its test-only items apart.
//!
//! `cargo test -p exaprobe-core --test module_graph -- --nocapture` prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module -> the modules it uses.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The folders whose children are modules of their own.
const FOLDERS: [&str; 5] = ["compat", "config", "engine", "kit", "observe"];

#[test]
fn core_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    for (module, uses) in &graph {
        eprintln!(
            "{module} -> {}",
            uses.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    assert!(graph.len() > 30, "too few modules found: {graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle among core's modules: {}", cycle.join(" -> "));
    }
}

/// The longest a core source file may be, its test-only items apart (issue 25): past it, a
/// file holds more than one job.
const MAX_LINES: usize = 700;

#[test]
fn no_core_source_file_is_over_700_lines_apart_from_its_tests() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut long = Vec::new();
    for file in rust_files(&src) {
        let relative = file.strip_prefix(&src).unwrap();
        if relative
            .iter()
            .any(|p| p == "tests" || p == "sim" || p == "tests.rs")
        {
            continue;
        }
        let lines = non_test_code(&std::fs::read_to_string(&file).unwrap())
            .lines()
            .count();
        if lines > MAX_LINES {
            long.push(format!("{} ({lines} lines)", relative.display()));
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines: {}",
        long.join(", ")
    );
}

#[test]
fn a_cycle_made_on_purpose_is_found() {
    let mut graph = Graph::new();
    let edge = |graph: &mut Graph, a: &str, b: &str| {
        graph.entry(a.into()).or_default().insert(b.into());
    };
    edge(&mut graph, "config::options", "kit::address");
    edge(&mut graph, "engine::runner", "config::settings");
    assert_eq!(find_cycle(&graph), None);
    edge(&mut graph, "config::settings", "engine::routing");
    edge(&mut graph, "engine::routing", "engine::runner");
    let cycle = find_cycle(&graph).expect("the cycle");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    // And in real sources: a module naming one that names it back.
    let dir = tempfile_dir();
    std::fs::create_dir_all(dir.join("engine")).unwrap();
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(
        dir.join("config/options.rs"),
        "use crate::engine::route::Prefix;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("engine/route.rs"),
        "fn f() { crate::config::options::x(); }\n#[cfg(test)]\nmod tests { use crate::app; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("engine/render.rs"),
        "#[cfg(test)]\nimpl X {\n    fn f() { crate::compat::x(); }\n}\nfn g() { crate::engine::route::y(); }\n",
    )
    .unwrap();
    let graph = module_graph(&dir);
    assert_eq!(
        graph["engine::route"],
        BTreeSet::from(["config::options".to_string()])
    );
    assert_eq!(
        graph["engine::render"],
        BTreeSet::from(["engine::route".to_string()]),
        "a test-only item is left out, the code after it read"
    );
    assert_eq!(
        graph["engine::route"],
        BTreeSet::from(["config::options".to_string()])
    );
    assert!(find_cycle(&graph).is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("exaprobe-module-graph-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Every module's uses, read from the sources under `src`.
fn module_graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    for file in rust_files(src) {
        let relative = file.strip_prefix(src).unwrap();
        let parts: Vec<String> = relative
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        if parts
            .iter()
            .any(|p| p == "tests" || p == "sim" || p == "fuzzing")
            || parts.first().is_some_and(|p| p == "lib")
        {
            continue;
        }
        let module = module_of(&parts);
        let text = std::fs::read_to_string(&file).unwrap();
        let code: String = non_test_code(&text)
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let code = code.as_str();
        let uses = graph.entry(module.clone()).or_default();
        uses.extend(crate_paths(code));
    }
    // `crate::compat::start` names an item of the folder's mod.rs, not a module of its own.
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for (module, uses) in graph.iter_mut() {
        *uses = uses
            .iter()
            .map(|used| match used.split_once("::") {
                Some((folder, _)) if !modules.contains(used) => folder.to_string(),
                _ => used.clone(),
            })
            .filter(|used| used != module)
            .collect();
    }
    graph
}

/// A file's code without its test-only items: each item after a `#[cfg(test)]` line (a test
/// module, a test helper `impl`, a counter) is left out, to the end of its braces (or its `;`).
/// Braces in strings and comments are rare enough in this code base to ignore.
fn non_test_code(text: &str) -> String {
    let mut code = String::with_capacity(text.len());
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            code.push_str(line);
            code.push('\n');
            continue;
        }
        let mut depth = 0i32;
        let mut opened = false;
        for item in lines.by_ref() {
            for c in item.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            let ended = (opened && depth <= 0) || (!opened && item.trim_end().ends_with(';'));
            if ended {
                break;
            }
        }
    }
    code
}

/// The module a file (its path parts under `src`, `.rs` dropped) belongs to.
fn module_of(parts: &[String]) -> String {
    let first = parts[0].as_str();
    if FOLDERS.contains(&first) && parts.len() > 1 && parts[1] != "mod" {
        format!("{first}::{}", parts[1])
    } else {
        first.to_string()
    }
}

/// The modules named by `crate::a::b` paths in `code` (a `use crate::a::{b, c}` names `a::b`
/// and `a::c`).
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `exaprobe_crate::` or the like
        }
        let first = identifier(rest);
        if first.is_empty() {
            continue;
        }
        if !FOLDERS.contains(&first) {
            found.insert(reexported(first).unwrap_or(first).to_string());
            continue;
        }
        let after = &rest[first.len()..];
        let Some(inner) = after.strip_prefix("::") else {
            found.insert(first.to_string());
            continue;
        };
        if let Some(group) = inner.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for name in group.split(',').map(|n| identifier(n.trim())) {
                if name.starts_with(|c: char| c.is_lowercase()) && name != "self" {
                    found.insert(format!("{first}::{name}"));
                } else if !name.is_empty() {
                    found.insert(first.to_string());
                }
            }
        } else {
            let second = identifier(inner);
            // `crate::kit::Thing` (a capital: an item of the folder's own mod.rs).
            if second.starts_with(|c: char| c.is_lowercase()) {
                found.insert(format!("{first}::{second}"));
            } else {
                found.insert(first.to_string());
            }
        }
    }
    found
}

/// The module defining an item the crate's root re-exports (`crate::Probe`).
fn reexported(item: &str) -> Option<&'static str> {
    Some(match item {
        "Probe" | "Outcome" | "Finding" | "Watcher" => "probe",
        "Gauge" => "observe",
        "Binary" | "CommonOptions" => "config::options",
        "main" => "app",
        _ => return None,
    })
}

fn identifier(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// A cycle (its modules in order, the first repeated at the end), if the graph has one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Visiting) => {
                let start = path.iter().position(|n| n == node).unwrap();
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_string(), Mark::Visiting);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}
