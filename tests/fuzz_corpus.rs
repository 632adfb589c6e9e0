//! Every input in the fuzz corpus (`fuzz/corpus/<target>/`, and the seeds kept per format in
//! `fuzz/corpus/<format id>/`), every crash ever found (`fuzz/regressions/`), and every format's
//! sample export (`examples/exports/<id>.json`), replayed through the fuzz targets' own check on
//! each `cargo test`: no panic, and every record accounted for.

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

fn replay_picked(dir: &Path) -> usize {
    replay_with(dir, common::check_picked)
}

fn replay_with(dir: &Path, check: fn(&[u8])) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.flatten().map(|e| check(&std::fs::read(e.path()).expect("readable corpus file"))).count()
}

#[test]
fn fuzz_corpus_replays_cleanly() {
    // The checkout being tested, read when the test runs (see build.rs: a binary compiled for
    // another checkout that shares the target dir must not read that checkout's files).
    let repo = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = repo.join("fuzz");
    let mut total = 0;
    // One corpus folder per fuzz target: `detect`, and one per format (its id).
    let mut targets: Vec<String> = std::fs::read_dir(root.join("corpus"))
        .expect("fuzz/corpus")
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    targets.sort();
    let examples = repo.join("examples/exports");
    for id in usagenorm::providers::Registry::builtin().ids() {
        let sample = examples.join(format!("{id}.json"));
        let data = std::fs::read(&sample).unwrap_or_else(|e| panic!("format {id} has no sample {sample:?}: {e}"));
        common::check(&data, Some(id));
        common::check(&data, None);
        total += 1;
    }
    for target in targets.iter().map(String::as_str) {
        let (corpus, regressions) = (root.join("corpus").join(target), root.join("regressions").join(target));
        total += match target {
            "detect" => replay(&corpus, None) + replay(&regressions, None),
            "format" => replay_picked(&corpus) + replay_picked(&regressions),
            "format_file" => {
                // The seeds (the shipped files and the twins, each with its sample) read rows.
                let read = |dir: &Path| -> (usize, u64) {
                    let Ok(entries) = std::fs::read_dir(dir) else { return (0, 0) };
                    entries.flatten().fold((0, 0), |(n, rows), e| {
                        (n + 1, rows + common::check_format_file(&std::fs::read(e.path()).expect("readable")))
                    })
                };
                let ((n, rows), (m, _)) = (read(&corpus), read(&regressions));
                assert!(rows > 0, "the format-file seeds read no rows");
                n + m
            }
            id => replay(&corpus, Some(id)) + replay(&regressions, Some(id)),
        };
    }
    assert!(total >= 10, "the corpus should hold the seed exports at least, found {total}");
}
