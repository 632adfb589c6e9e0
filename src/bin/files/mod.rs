//! The files under the paths given to the benchmark's programs, directories walked
//! recursively in sorted order (as `usagenorm.normalize` lists a folder).

use std::path::{Path, PathBuf};

/// Every file under `path` (itself when it is one), in sorted order.
pub fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(path).into_iter().flatten().flatten().map(|e| e.path()).collect();
        entries.sort();
        entries.iter().for_each(|p| collect(p, out));
    } else {
        out.push(path.to_path_buf());
    }
}
