//! The parse-only floor for the benchmark: reads every file given (directories recursively) and
//! parses it with serde_json into `IgnoredAny`, in parallel over files with rayon (NDJSON: each
//! line). The least work any JSON normalizer must do. Prints one JSON line: files, bytes,
//! documents, seconds, peak RSS.
//!
//!     parse_floor PATH...

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::de::IgnoredAny;

fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(path).into_iter().flatten().flatten().map(|e| e.path()).collect();
        entries.sort();
        entries.iter().for_each(|p| collect(p, out));
    } else {
        out.push(path.to_path_buf());
    }
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let mut files = Vec::new();
    std::env::args().skip(1).for_each(|a| collect(Path::new(&a), &mut files));
    let start = Instant::now();
    let (bytes, docs): (usize, usize) = files
        .par_iter()
        .map(|f| {
            let data = std::fs::read(f).unwrap_or_default();
            let name = f.to_string_lossy();
            let docs = if name.ends_with(".ndjson") || name.ends_with(".jsonl") {
                // Lines in parallel too, as usagenorm does.
                let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
                lines.par_iter().filter(|l| serde_json::from_slice::<IgnoredAny>(l).is_ok()).count()
            } else {
                usize::from(serde_json::from_slice::<IgnoredAny>(&data).is_ok())
            };
            (data.len(), docs)
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{{\"files\": {}, \"bytes\": {bytes}, \"documents\": {docs}, \"seconds\": {seconds:.6}, \"peak_rss_mb\": {:.1}}}",
        files.len(),
        peak_rss_mb()
    );
}
