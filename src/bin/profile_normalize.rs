//! `normalize` on files, the core alone (no Python, no Polars frame), for profiling:
//!
//!     cargo build --profile profiling --bin profile_normalize
//!     RAYON_NUM_THREADS=1 perf record -g target/profiling/profile_normalize bench/data/full/pages/vmware
//!
//! Reads every `.json` / `.ndjson` / `.gz` file under the paths given, in sorted order, as
//! `usagenorm.normalize(paths)` does with the default options, and prints one JSON line: the
//! rows, rejections and seconds. `profile_normalize --runs N` repeats the call N times.

mod files;

use std::path::Path;
use std::time::Instant;

use usagenorm::{normalize, Input, NormalizeOptions};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut runs = 1;
    if let Some(i) = args.iter().position(|a| a == "--runs") {
        runs = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(1);
        args.drain(i..(i + 2).min(args.len()));
    }
    let mut files = Vec::new();
    args.iter().for_each(|a| files::collect(Path::new(a), &mut files));
    files.retain(|f| f.extension().is_some_and(|e| e == "json" || e == "ndjson" || e == "gz"));
    let inputs: Vec<Input> = files.into_iter().map(Input::Path).collect();
    let options = NormalizeOptions::default();
    for _ in 0..runs {
        let start = Instant::now();
        match normalize(&inputs, &options) {
            Ok(out) => {
                let rows: usize = out.batches.iter().map(|b| b.len()).sum();
                println!(
                    "{{\"sources\": {}, \"rows\": {rows}, \"rejected\": {}, \"seconds\": {:.6}}}",
                    inputs.len(),
                    out.rejects.len(),
                    start.elapsed().as_secs_f64()
                );
            }
            Err(e) => {
                eprintln!("profile_normalize: {e}");
                std::process::exit(1);
            }
        }
    }
}
