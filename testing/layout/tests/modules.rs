//! No module of a service or shared crate depends on itself through other modules.

use std::path::Path;

#[test]
fn no_crate_has_a_module_cycle() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut found = Vec::new();
    for group in ["services", "crates"] {
        let mut crates: Vec<_> = std::fs::read_dir(workspace.join(group))
            .expect("the workspace's folders")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("src").is_dir())
            .collect();
        crates.sort();
        for root in crates {
            let name = root.file_name().unwrap().to_string_lossy().into_owned();
            for cycle in slotcast_layout::cycles(&slotcast_layout::modules_of(&root)) {
                let modules: Vec<&str> = cycle.iter().map(String::as_str).collect();
                found.push(format!("{name}: {}", modules.join(", ")));
            }
        }
    }
    assert!(found.is_empty(), "module cycles:\n{}", found.join("\n"));
}
