//! Checks of the codebase's shape, run by `make test` (`tests/modules.rs`).
//!
//! [`modules_of`] reads a crate's `src/` as text: each file is a module, named by its path
//! (`routes/offers.rs` is `routes::offers`), and depends on every module of the same crate it
//! names through `crate::…` or `super::…` outside comments. [`cycles`] finds the modules that
//! depend on themselves through others.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// Each module of the crate at `root` with the modules of that crate it names.
pub fn modules_of(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let src = root.join("src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    let modules: BTreeMap<String, String> = files
        .iter()
        .filter_map(|f| {
            let name = module_name(&src, f)?;
            Some((name, std::fs::read_to_string(f).ok()?))
        })
        .collect();
    let known: BTreeSet<&str> = modules.keys().map(String::as_str).collect();
    modules
        .iter()
        .map(|(name, text)| {
            let named = references(name, text)
                .into_iter()
                .filter_map(|path| longest_known(&path, &known))
                .filter(|m| m != name && !name.starts_with(&format!("{m}::")))
                .collect();
            (name.clone(), named)
        })
        .collect()
}

/// Every cycle's modules, each cycle once (as a strongly connected component of two or more).
pub fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    let reach = |from: &String| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(m) = todo.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut found: Vec<BTreeSet<String>> = Vec::new();
    for (m, from_m) in &reachable {
        if !from_m.contains(*m) || found.iter().any(|c| c.contains(*m)) {
            continue;
        }
        let component: BTreeSet<String> = from_m
            .iter()
            .filter(|o| reachable.get(o).is_some_and(|r| r.contains(*m)))
            .cloned()
            .collect();
        found.push(component);
    }
    found
}

fn collect(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// `lib.rs` and `main.rs` are the crate root (left out: the root may name every module);
/// `a/mod.rs` is `a`, `a/b.rs` is `a::b`.
fn module_name(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [one] if one == "lib" || one == "main" => None,
        [.., last] if last == "mod" => Some(parts[..parts.len() - 1].join("::")),
        _ => Some(parts.join("::")),
    }
}

/// The paths a module's code names through `crate::` or `super::`, as absolute module paths.
fn references(module: &str, text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
    let mut found = Vec::new();
    for (prefix, base) in [("crate::", ""), ("super::", parent)] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(prefix) {
            // `super::` inside a word (`self_super::`) is not a path.
            let before = rest[..at].chars().next_back();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            for path in paths_at(rest) {
                let full = if base.is_empty() {
                    path
                } else {
                    format!("{base}::{path}")
                };
                found.push(full);
            }
        }
    }
    found
}

/// The paths that start `text`: `a::b` or, for a group, `{a, b::c, d::{e}}` as `a`, `b::c`, `d`.
fn paths_at(text: &str) -> Vec<String> {
    if let Some(group) = text.strip_prefix('{') {
        let mut depth = 0;
        let mut end = group.len();
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    end = i;
                    break;
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
        let inner = &group[..end];
        let mut items = Vec::new();
        let (mut depth, mut start) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&inner[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        items.push(&inner[start..]);
        return items
            .into_iter()
            .filter_map(|item| path_of(item.trim()))
            .collect();
    }
    path_of(text).into_iter().collect()
}

fn path_of(text: &str) -> Option<String> {
    let path: String = text
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
        .collect();
    let path = path.trim_end_matches(':').to_owned();
    (!path.is_empty()).then_some(path)
}

/// The longest prefix of `path` that is a module of the crate.
fn longest_known(path: &str, known: &BTreeSet<&str>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|p| known.contains(p.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_nested_groups_give_each_path() {
        let paths = paths_at("{a, b::c, d::{e, f}, self}; x");
        assert_eq!(paths, ["a", "b::c", "d", "self"]);
        assert_eq!(paths_at("fence::advance(&txn)"), ["fence::advance"]);
    }

    #[test]
    fn a_cycle_is_found_once_and_a_chain_is_none() {
        let graph = |edges: &[(&str, &str)]| {
            let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (a, b) in edges {
                g.entry(a.to_string()).or_default().insert(b.to_string());
                g.entry(b.to_string()).or_default();
            }
            g
        };
        assert!(cycles(&graph(&[("a", "b"), ("b", "c")])).is_empty());
        let found = cycles(&graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0], ["a", "b", "c"].map(String::from).into());
    }

    #[test]
    fn comments_and_the_root_name_nothing() {
        assert!(references("a", "// uses crate::b\n/// [`crate::c`]").is_empty());
        assert_eq!(references("r::x", "use super::y;"), ["r::y"]);
        assert_eq!(module_name(Path::new("src"), Path::new("src/lib.rs")), None);
        assert_eq!(
            module_name(Path::new("src"), Path::new("src/routes/mod.rs")).as_deref(),
            Some("routes")
        );
    }
}
