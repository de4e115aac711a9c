//! The shape a newcomer reads (issue 13), kept by a test: `main.rs` only dispatches, no
//! source file runs past 400 lines without saying why at its top, no two sibling
//! modules import each other (directly or around a circle), and no librdkafka call that
//! blocks its thread for seconds runs on the runtime's workers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 400;
const MAX_MAIN_LINES: usize = 80;
/// What a long file's opening doc comment says to explain its length.
const LENGTH_REASON: &str = "longer than 400 lines";

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crates whose sources are held to these rules: their `src` directory, and the name
/// their modules are told apart by (edm's own have none).
const CRATES: &[(&str, &str)] = &[("src", ""), ("crates/edm-broker/src", "edm_broker")];

fn all_sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (src, _) in CRATES {
        sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join(src), &mut files);
    }
    files.sort();
    files
}

/// The module path of a file's crate root: none for edm, `edm_broker` for the broker's.
fn crate_of(file: &Path) -> (PathBuf, Vec<String>) {
    CRATES
        .iter()
        .rev()
        .map(|(src, name)| (Path::new(env!("CARGO_MANIFEST_DIR")).join(src), name))
        .find(|(src, _)| file.starts_with(src))
        .map(|(src, name)| {
            let root = (!name.is_empty()).then(|| name.to_string());
            (src, root.into_iter().collect())
        })
        .expect("a crate's source")
}

/// The module path of a source file: `src/store/orders/dynamo.rs` → `store::orders::dynamo`
/// (and `edm_broker::…` for the broker crate's).
fn module_of(file: &Path) -> Vec<String> {
    let (src, root) = crate_of(file);
    let relative = file
        .strip_prefix(&src)
        .expect("under src")
        .with_extension("");
    let mut parts: Vec<String> = root;
    parts.extend(
        relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code of a file without its `#[cfg(test)]` module (tests may reach anywhere).
fn code_of(text: &str) -> &str {
    text.split("#[cfg(test)]\nmod tests {")
        .next()
        .unwrap_or(text)
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The modules a file's code names: `crate::a::b…` (below `root`, its crate's) and
/// `super::x` (in `use` lists too).
fn references(root: &[String], module: &[String], code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let path: String = code[at + 7..]
            .chars()
            .take_while(|&c| is_name(c) || c == ':')
            .collect();
        found.push(
            root.iter()
                .cloned()
                .chain(path.split("::").filter(|p| !p.is_empty()).map(String::from))
                .collect(),
        );
    }
    let parent = &module[..module.len().saturating_sub(1)];
    for (at, _) in code.match_indices("super::") {
        if at > 0 && code[..at].ends_with("::") {
            continue; // `super::super::…` or `crate::…::super`: rare here, and covered above
        }
        let rest = &code[at + 7..];
        let names: Vec<String> = if let Some(list) = rest.strip_prefix('{') {
            let list = &list[..list.find('}').unwrap_or(list.len())];
            list.split(',')
                .filter_map(|item| {
                    let name: String = item.trim().chars().take_while(|&c| is_name(c)).collect();
                    (!name.is_empty()).then_some(name)
                })
                .collect()
        } else {
            vec![rest.chars().take_while(|&c| is_name(c)).collect()]
        };
        for name in names.into_iter().filter(|n| !n.is_empty()) {
            found.push(parent.iter().cloned().chain([name]).collect());
        }
    }
    found
}

#[test]
fn main_only_dispatches() {
    let main = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/main.rs"))
        .expect("main.rs");
    let lines = main.lines().count();
    assert!(lines <= MAX_MAIN_LINES, "src/main.rs has {lines} lines");
}

#[test]
fn no_source_file_runs_long_without_saying_why() {
    let long: Vec<String> = all_sources()
        .into_iter()
        .filter_map(|file| {
            let text = std::fs::read_to_string(&file).expect("readable");
            let lines = text.lines().count();
            let opening: String = text
                .lines()
                .take_while(|line| line.starts_with("//!"))
                .collect::<Vec<_>>()
                .join(" ");
            (lines > MAX_LINES && !opening.to_lowercase().contains(LENGTH_REASON))
                .then(|| format!("{} ({lines} lines)", file.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines with no reason at the top: {long:?}"
    );
}

#[test]
fn no_two_sibling_modules_import_each_other() {
    // Edges between siblings: a file in module a::b naming a::c gives b → c under a.
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for file in all_sources() {
        let module = module_of(&file);
        let text = std::fs::read_to_string(&file).expect("readable");
        let (_, root) = crate_of(&file);
        for target in references(&root, &module, code_of(&text)) {
            let common = module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            if common < module.len() && common < target.len() {
                edges
                    .entry(module[..=common].to_vec())
                    .or_default()
                    .insert(target[..=common].to_vec());
            }
        }
    }
    // A circle: a module that reaches itself through its siblings.
    let mut circles = Vec::new();
    for start in edges.keys() {
        let mut stack = vec![vec![start.clone()]];
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            let last = path.last().expect("non-empty");
            for next in edges.get(last).into_iter().flatten() {
                if next == start {
                    let names: Vec<String> = path.iter().map(|m| m.join("::")).collect();
                    circles.push(format!("{} → {}", names.join(" → "), start.join("::")));
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push(longer);
                }
            }
        }
    }
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}

#[test]
fn the_circle_check_sees_a_circle() {
    // The parser on two files that import each other, so the check above cannot pass by
    // seeing nothing.
    let a = vec!["store".to_string(), "orders".into(), "dynamo".into()];
    let b = vec!["store".to_string(), "orders".into(), "dynamo_item".into()];
    let from_a = references(
        &[],
        &a,
        "use super::{OrderStoreError, dynamo_item, updated_now};",
    );
    let from_b = references(
        &[],
        &b,
        "use super::dynamo::{OUTBOX, PENDING_EVENT};\nx(crate::event::Status)",
    );
    assert!(from_a.contains(&b), "{from_a:?}");
    assert!(from_b.iter().any(|r| r.starts_with(&a)), "{from_b:?}");
    assert!(
        from_b.contains(&vec!["event".into(), "Status".into()]),
        "{from_b:?}"
    );
}

/// librdkafka's `flush` blocks its thread for up to its timeout. On one of the runtime's
/// workers it stalls every task there (an embedded broker that should answer it, other
/// services): it is called only inside `spawn_blocking`, and everywhere else through
/// `EventProducer::flush`, which is async.
#[test]
fn no_blocking_flush_runs_on_the_runtime() {
    let mut found = Vec::new();
    for file in all_sources() {
        let text = std::fs::read_to_string(&file).expect("readable");
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if !code.contains(".flush(") || code.contains("fn flush") {
                continue;
            }
            let awaited = code.contains(".await");
            let in_blocking = lines[n.saturating_sub(3)..=n]
                .iter()
                .any(|l| l.contains("spawn_blocking"));
            let ours = file.components().any(|c| c.as_os_str() == "broker");
            if !awaited && !in_blocking && !ours {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "a blocking flush on the runtime: {found:#?}"
    );
}
