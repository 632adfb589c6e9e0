//! Formats described in a file instead of Rust (`docs/formats.md`): a TOML file (or a dict)
//! is checked and compiled once (`compile`) into rules that implement the same `FormatReader`
//! the Rust formats do (`read`), so a format file runs on the same driver, typed readers, row
//! builder and tags writer, in parallel, without the GIL.

mod compile;
mod cond;
mod model;
mod path;
mod read;
mod rules;
mod value;

pub use rules::Compiled;

use crate::error::{Error, Result};

/// Compiles a format file's TOML text; `origin` names it in errors and in `formats()`.
pub fn from_toml(text: &str, origin: &str) -> Result<Compiled> {
    let file: model::FormatFile = toml::from_str(text).map_err(|e| Error::Format {
        origin: origin.to_string(),
        // A span from the start is the whole document (a missing top-level key): no key to name.
        key: e.span().filter(|s| s.start > 0).map(|s| key_at(text, s.start)).unwrap_or_default(),
        message: e.message().to_string(),
    })?;
    checked(file, origin)
}

/// Compiles a format given as JSON text (a Python dict, dumped).
pub fn from_json(text: &str, origin: &str) -> Result<Compiled> {
    let file: model::FormatFile = serde_json::from_str(text).map_err(|e| Error::Format {
        origin: origin.to_string(),
        key: String::new(),
        message: e.to_string().split(" at line ").next().unwrap_or_default().to_string(),
    })?;
    checked(file, origin)
}

fn checked(file: model::FormatFile, origin: &str) -> Result<Compiled> {
    compile::compile(file, origin).map_err(|m| Error::Format {
        origin: origin.to_string(),
        key: m.key,
        message: m.message,
    })
}

/// The line of a TOML text an error points at, as `line N` (TOML errors carry a byte span).
fn key_at(text: &str, offset: usize) -> String {
    let line = text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1;
    let key = text.lines().nth(line - 1).and_then(|l| l.split('=').next()).map(str::trim).unwrap_or("");
    if key.is_empty() || key.starts_with('[') {
        format!("line {line}")
    } else {
        format!("{key} (line {line})")
    }
}

/// The format files shipped in usagenorm (`python/usagenorm/formats/*.toml`, listed by
/// `build.rs`, in name order): `(file name, text)`.
pub const SHIPPED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/shipped_formats.rs"));

/// Format files that re-express built-in Rust formats (same ids), to prove they read the same.
#[cfg(test)]
pub const TWINS: &[(&str, &str)] = &[
    ("gitpod.toml", include_str!("../../python/usagenorm/formats/twins/gitpod.toml")),
    ("consumption_log.toml", include_str!("../../python/usagenorm/formats/twins/consumption_log.toml")),
];

/// A shipped format file compiled (they are checked by the tests: a failure here is a bug).
pub fn shipped(name: &str, text: &str) -> Result<Compiled> {
    from_toml(text, &format!("usagenorm/formats/{name}"))
}

#[cfg(test)]
mod tests;
