//! `previews` (run by `make previews`): writes every preview and an `index.html` to the folder
//! given as the first argument (`var/previews` by default). Not part of any service.

use std::path::PathBuf;

use anyhow::Context as _;

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "var/previews".to_owned()),
    );
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let previews = slotcast_previews::all()?;
    for preview in &previews {
        let path = dir.join(&preview.file);
        std::fs::write(&path, &preview.body)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let index = dir.join("index.html");
    std::fs::write(&index, slotcast_previews::index(&previews))
        .with_context(|| format!("writing {}", index.display()))?;
    println!("{} previews in {}", previews.len(), index.display());
    Ok(())
}
