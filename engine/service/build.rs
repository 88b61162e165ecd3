//! Embeds the console (`console/`, plain ES modules and CSS, no build step of its own):
//! writes `$OUT_DIR/console_assets.rs`, a table of every file under `console/` with
//! its bytes included, so that adding, renaming or removing a file there changes what
//! the binary serves with nothing to keep in step by hand.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("console");
    // Cargo scans a directory given here, so a new or changed file reruns this.
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut table = String::from("&[\n");
    for (name, path) in &files {
        writeln!(
            table,
            "    ({name:?}, include_bytes!({:?})),",
            path.display()
        )
        .expect("writing to a String");
    }
    table.push(']');
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    std::fs::write(out.join("console_assets.rs"), table).expect("OUT_DIR is writable");
}

/// Every file under `dir`, as its path relative to `root` with `/` separators, and its
/// absolute path.
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("the console's sources, {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        // Editors' and systems' hidden files (`.swp`, `.DS_Store`) are not the console's.
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let name = path
                .strip_prefix(root)
                .expect("under the root")
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            files.push((name, path));
        }
    }
}
