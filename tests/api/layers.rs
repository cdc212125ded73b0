//! The layering of `src/`, checked from the code: every `crate::…` path each file names is an
//! edge from its layer to another. Adapters → use cases (desk, commands) → core and the store
//! port; nothing points back up, and no two layers import each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layer a file of `src/` belongs to: its top-level module, with each chat adapter
/// (`chat::slack`, `chat::discord`) a layer of its own.
fn layer_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).unwrap();
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    match parts.as_slice() {
        [chat, adapter, ..] if chat == "chat" && adapter != "mod" => format!("chat::{adapter}"),
        [first, ..] => first.clone(),
        [] => unreachable!(),
    }
}

/// The layer a `crate::a::b…` path points into.
fn layer_of_path(path: &str) -> String {
    let mut parts = path.split("::");
    let first = parts.next().unwrap_or_default();
    match (first, parts.next()) {
        ("chat", Some(adapter @ ("slack" | "discord"))) => format!("chat::{adapter}"),
        _ => first.to_string(),
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::…` path in `text` (in `use` lines, grouped imports such as
/// `crate::{a, b::C}` and inline paths alike), skipping comments.
fn crate_paths(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let path_char = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let item = item.trim();
                let len = item.find(|c: char| !path_char(c)).unwrap_or(item.len());
                if len > 0 {
                    out.push(item[..len].trim_end_matches(':').to_string());
                }
            }
            rest = &group[end..];
        } else {
            let end = after.find(|c: char| !path_char(c)).unwrap_or(after.len());
            out.push(after[..end].trim_end_matches(':').to_string());
            rest = &after[end..];
        }
    }
    out
}

/// Layer → the layers its files name, and where.
fn edges() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut edges: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for file in files {
        let from = layer_of(&file);
        if from == "lib" || from == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for path in crate_paths(&text) {
            let to = layer_of_path(&path);
            if to != from && !to.is_empty() {
                edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_default()
                    .insert(format!(
                        "{} (crate::{path})",
                        file.strip_prefix(src()).unwrap().display()
                    ));
            }
        }
    }
    edges
}

/// Edges no change may add: (from, to, why).
const FORBIDDEN: &[(&str, &str, &str)] = &[
    (
        "chat::slack",
        "chat::discord",
        "adapters do not know each other",
    ),
    (
        "chat::discord",
        "chat::slack",
        "adapters do not know each other",
    ),
    ("store", "chat", "the store knows SQL, not platforms"),
    ("store", "chat::slack", "the store knows SQL, not platforms"),
    (
        "store",
        "chat::discord",
        "the store knows SQL, not platforms",
    ),
    ("store", "http", "the store knows SQL, not the web"),
    (
        "store",
        "inbox",
        "workers subscribe to the store, not the other way",
    ),
    (
        "store",
        "outbox",
        "workers subscribe to the store, not the other way",
    ),
    (
        "store",
        "worker",
        "workers subscribe to the store, not the other way",
    ),
    (
        "store",
        "schedule",
        "workers subscribe to the store, not the other way",
    ),
    ("store", "desk", "the store calls no use case back"),
    ("store", "cmd", "the store calls no use case back"),
    ("desk", "cmd", "commands use the desk, not the other way"),
    (
        "desk",
        "chat",
        "adapters call the desk; the desk defines the ports it needs",
    ),
    ("desk", "chat::slack", "the desk knows no platform"),
    ("desk", "chat::discord", "the desk knows no platform"),
    ("desk", "http", "the desk knows no transport"),
    ("cmd", "chat", "command handlers know no platform"),
    ("cmd", "chat::slack", "command handlers know no platform"),
    ("cmd", "chat::discord", "command handlers know no platform"),
    ("cmd", "http", "command handlers know no transport"),
    ("desk", "web", "the desk knows no transport"),
    ("cmd", "web", "command handlers know no transport"),
    ("store", "web", "the store knows SQL, not the web"),
    ("web", "chat", "the web view knows no platform"),
    ("web", "chat::slack", "the web view knows no platform"),
    ("web", "chat::discord", "the web view knows no platform"),
];

#[test]
fn the_core_imports_nothing_outside_the_core() {
    let edges = edges();
    let out: Vec<String> = edges
        .get("core")
        .map(|to| {
            to.iter()
                .map(|(l, w)| format!("core → {l}: {w:?}"))
                .collect()
        })
        .unwrap_or_default();
    assert!(out.is_empty(), "{}", out.join("\n"));
}

#[test]
fn no_layer_imports_what_it_must_not() {
    let edges = edges();
    let mut found = Vec::new();
    for (from, to, why) in FORBIDDEN {
        if let Some(where_) = edges.get(*from).and_then(|t| t.get(*to)) {
            found.push(format!("{from} → {to} ({why}): {where_:?}"));
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn layers_import_each_other_in_no_cycle() {
    let edges = edges();
    // Depth-first search for a back edge; reports the first cycle with the files that make it.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in edges.get(node).map(|t| t.keys()).into_iter().flatten() {
            if let Some(c) = visit(next, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, &edges, &mut Vec::new(), &mut done) {
            let why: Vec<String> = cycle
                .windows(2)
                .map(|w| format!("{} → {}: {:?}", w[0], w[1], edges[&w[0]][&w[1]]))
                .collect();
            panic!("import cycle {}\n{}", cycle.join(" → "), why.join("\n"));
        }
    }
}

#[test]
fn the_checker_sees_every_form_of_path() {
    let text = "use crate::core::types::{A, B};\n\
                let x = crate::worker::run_rounds(1); // crate::http is only a comment\n\
                use crate::{\n chat,\n store::Store};";
    assert_eq!(
        crate_paths(text),
        vec!["core::types", "worker::run_rounds", "chat", "store::Store"]
    );
    assert_eq!(layer_of_path("chat::slack::client"), "chat::slack");
    assert_eq!(layer_of_path("chat::Delivery"), "chat");
    assert_eq!(layer_of_path("store::Store"), "store");
}
