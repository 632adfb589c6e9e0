//! Every input in the fuzz corpus (`fuzz/corpus/<target>/`), and every crash ever found
//! (`fuzz/regressions/`), replayed through the fuzz targets' own check on each `cargo test`:
//! no panic, and every record accounted for.

use std::path::Path;

#[path = "../fuzz/fuzz_targets/common.rs"]
mod common;

fn replay(dir: &Path, provider: Option<&str>) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut n = 0;
    for entry in entries.flatten() {
        let data = std::fs::read(entry.path()).expect("readable corpus file");
        common::check(&data, provider);
        n += 1;
    }
    n
}

#[test]
fn fuzz_corpus_replays_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut total = 0;
    // One corpus folder per fuzz target: `detect`, and one per format (its id).
    let mut targets: Vec<String> = std::fs::read_dir(root.join("corpus"))
        .expect("fuzz/corpus")
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    targets.sort();
    for id in usagenorm::providers::ids() {
        assert!(targets.iter().any(|t| t == id), "format {id} has no fuzz target corpus (fuzz/corpus/{id})");
    }
    for target in targets.iter().map(String::as_str) {
        let provider = (target != "detect").then_some(target);
        total += replay(&root.join("corpus").join(target), provider);
        total += replay(&root.join("regressions").join(target), provider);
    }
    assert!(total >= 10, "the corpus should hold the seed exports at least, found {total}");
}
