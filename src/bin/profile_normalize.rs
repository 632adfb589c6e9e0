//! `normalize` on files, the core alone (no Python, no Polars frame), for profiling:
//!
//!     cargo build --profile profiling --bin profile_normalize
//!     RAYON_NUM_THREADS=1 perf record -g target/profiling/profile_normalize bench/data/full/pages/vmware
//!
//! Reads every `.json` / `.ndjson` / `.gz` file under the paths given, in sorted order, as
//! `usagenorm.normalize(paths)` does with the default options, and prints one JSON line: the
//! rows, rejections and seconds. `profile_normalize --runs N` repeats the call N times;
//! `--columns provider,metric,...` keeps only those columns (dedupe off, as a scan's projection).

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
    // `--columns a,b,c`: a scan's projection (with dedupe off, as a projecting scan reads).
    let mut kept = None;
    if let Some(i) = args.iter().position(|a| a == "--columns") {
        let names: Vec<String> =
            args.get(i + 1).map(|c| c.split(',').map(str::to_string).collect()).unwrap_or_default();
        kept = Some(usagenorm::Kept::only(&names).unwrap_or_else(|e| {
            eprintln!("profile_normalize: {e}");
            std::process::exit(2)
        }));
        args.drain(i..(i + 2).min(args.len()));
    }
    let mut files = Vec::new();
    args.iter().for_each(|a| files::collect(Path::new(a), &mut files));
    files.retain(|f| f.extension().is_some_and(|e| e == "json" || e == "ndjson" || e == "gz"));
    let inputs: Vec<Input> = files.into_iter().map(Input::Path).collect();
    let mut options = NormalizeOptions::default();
    if let Some(kept) = kept {
        options.read.kept = kept;
        options.dedupe = false;
    }
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
