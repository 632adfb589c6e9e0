//! Lists the format files shipped in the package (`python/usagenorm/formats/*.toml`) for
//! `spec::SHIPPED`, so that shipping a format is adding its file: no list to edit.

use std::fmt::Write;
use std::path::Path;

fn main() {
    // The checkout being built, read when the script runs: `env!` would bake in the checkout the
    // script was first compiled for, and a target dir shared by several checkouts (the Makefile's,
    // CI's) reuses that binary, which then lists a folder that may be gone.
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|e| panic!("CARGO_MANIFEST_DIR: {e}"));
    let dir = Path::new(&root).join("python/usagenorm/formats");
    println!("cargo:rerun-if-changed={}", dir.display());
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut files: Vec<_> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
    if files.is_empty() {
        panic!("no format files in {}", dir.display());
    }
    files.sort();
    let mut out = String::from("&[\n");
    for f in files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let _ = writeln!(out, "    ({name:?}, include_str!({:?})),", f.display().to_string());
    }
    out.push(']');
    let target = Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("shipped_formats.rs");
    if let Err(e) = std::fs::write(&target, out) {
        panic!("cannot write {}: {e}", target.display());
    }
}
