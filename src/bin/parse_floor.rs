//! The parse-only floor for the benchmark: reads every file given (directories recursively) and
//! parses it, in parallel over files with rayon (NDJSON: each line). The least work any JSON
//! normalizer must do. Parsers: serde_json into `IgnoredAny`, and with the `floor` feature also
//! simd-json (its tape: the structural index every simd-json reader builds) and sonic-rs into
//! `IgnoredAny`; each runs twice, alternating, and keeps its best time. The floor is the fastest.
//! Prints one JSON line: files, bytes, documents, seconds (the floor), parser (its name), the
//! seconds of each parser, peak RSS.
//!
//!     parse_floor PATH...
//!
//! With `--write MB` instead: the least time in which any normalizer can put a frame of MB
//! megabytes in memory. It writes MB into fresh memory (64 MB blocks: glibc maps each anew, so
//! every page is faulted in and zeroed by the kernel, as a new process's frame is) over the
//! rayon pool's threads, three times, and prints the best as `{"write_mb": .., "seconds": ..}`.

mod files;

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::de::IgnoredAny;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Whether one JSON text parses (mutable: simd-json parses in place).
type Parser = fn(&mut [u8]) -> bool;

fn serde_json(text: &mut [u8]) -> bool {
    serde_json::from_slice::<IgnoredAny>(text).is_ok()
}

#[cfg(feature = "floor")]
fn simd_json(text: &mut [u8]) -> bool {
    simd_json::to_tape(text).is_ok()
}

#[cfg(feature = "floor")]
fn sonic_rs(text: &mut [u8]) -> bool {
    sonic_rs::from_slice::<IgnoredAny>(text).is_ok()
}

const PARSERS: &[(&str, Parser)] = &[
    ("serde_json", serde_json),
    #[cfg(feature = "floor")]
    ("simd_json", simd_json),
    #[cfg(feature = "floor")]
    ("sonic_rs", sonic_rs),
];

/// Reads and parses every file once: (bytes, documents parsed, seconds).
fn run(files: &[PathBuf], parse: Parser) -> (usize, usize, f64) {
    let start = Instant::now();
    let (bytes, docs) = files
        .par_iter()
        .map(|f| {
            let mut data = std::fs::read(f).unwrap_or_default();
            let len = data.len();
            let name = f.to_string_lossy();
            let docs = if name.ends_with(".ndjson") || name.ends_with(".jsonl") {
                // Lines in parallel too, as usagenorm does.
                let mut lines: Vec<&mut [u8]> = data.split_mut(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
                lines.par_iter_mut().map(|l| usize::from(parse(l))).sum()
            } else {
                usize::from(parse(&mut data))
            };
            (len, docs)
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    (bytes, docs, start.elapsed().as_secs_f64())
}

/// Writes `mb` megabytes into fresh 64 MB blocks over the rayon pool: seconds.
fn write_fresh(mb: usize) -> f64 {
    const BLOCK: usize = 64 << 20;
    let total = mb << 20;
    let start = Instant::now();
    let touched: usize = (0..total.div_ceil(BLOCK))
        .into_par_iter()
        .map(|i| {
            let n = BLOCK.min(total - i * BLOCK);
            let block = vec![i as u8 | 1; n];
            // Read back so that the writes are not optimized away.
            block.iter().step_by(4096).map(|b| usize::from(*b)).sum::<usize>()
        })
        .sum();
    std::hint::black_box(touched);
    start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, mb] = args.as_slice() {
        if flag == "--write" {
            let Ok(mb) = mb.parse::<usize>() else {
                eprintln!("parse_floor --write MB: MB must be a whole number, not {mb:?}");
                std::process::exit(2);
            };
            let best = (0..3).map(|_| write_fresh(mb)).fold(f64::INFINITY, f64::min);
            println!("{{\"write_mb\": {mb}, \"seconds\": {best:.6}}}");
            return;
        }
    }
    let mut files = Vec::new();
    std::env::args().skip(1).for_each(|a| files::collect(Path::new(&a), &mut files));
    let mut best = vec![f64::INFINITY; PARSERS.len()];
    let (mut bytes, mut docs) = (0, 0);
    for _ in 0..2 {
        for (i, (_, parse)) in PARSERS.iter().enumerate() {
            let (b, d, seconds) = run(&files, *parse);
            (bytes, docs) = (b, d);
            best[i] = best[i].min(seconds);
        }
    }
    let fastest = (0..PARSERS.len()).min_by(|&a, &b| best[a].total_cmp(&best[b])).unwrap_or(0);
    let each: Vec<String> = PARSERS.iter().zip(&best).map(|((name, _), s)| format!("\"{name}\": {s:.6}")).collect();
    println!(
        "{{\"files\": {}, \"bytes\": {bytes}, \"documents\": {docs}, \"seconds\": {:.6}, \"parser\": \"{}\", {}, \"peak_rss_mb\": {:.1}}}",
        files.len(),
        best[fastest],
        PARSERS[fastest].0,
        each.join(", "),
        peak_rss_mb()
    );
}
