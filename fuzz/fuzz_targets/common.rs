#![allow(dead_code)] // each target uses its own part
//! Shared by every fuzz target: normalize the input (as JSON, as NDJSON and gzip-free bytes),
//! in collect mode, and check that nothing is lost and no panic escapes; and check the
//! one-pass JSON reader against serde_json on it.

use usagenorm::{normalize, ErrorMode, Input, NormalizeOptions};

pub fn check(data: &[u8], provider: Option<&str>) {
    // The one-pass checking reader accepts only what serde_json accepts, and reads it the same.
    if let Ok(text) = std::str::from_utf8(data) {
        usagenorm::assert_checked_agrees_with_serde(text);
    }
    for name in ["fuzz.json", "fuzz.ndjson"] {
        let options = NormalizeOptions {
            provider: provider.map(str::to_string),
            errors: ErrorMode::Collect,
            ..Default::default()
        };
        let input = [Input::Bytes { name: name.to_string(), data }];
        let out = normalize(&input, &options).expect("collect mode never fails on bytes");
        for s in &out.stats {
            // Every record read is accepted, rejected, or a counted duplicate.
            assert_eq!(s.records, s.accepted + s.rejected + s.duplicates + s.superseded);
        }
        assert_eq!(out.rows() as u64, out.stats.iter().map(|s| s.rows).sum::<u64>());
    }
}

/// `data` after its first byte, forced to the registry's format that the first byte picks.
pub fn check_picked(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else { return };
    let ids = usagenorm::providers::Registry::builtin().ids();
    check(rest, ids.get(pick as usize % ids.len().max(1)).copied());
}

/// Compiles the text before the first NUL byte as a format file; when it compiles (and does not
/// collide with a built-in format), reads the bytes after it with it, forced and detected.
/// Returns the rows read.
pub fn check_format_file(data: &[u8]) -> u64 {
    let (spec, input) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(text) = std::str::from_utf8(spec) else { return 0 };
    let Ok(format) = usagenorm::spec::from_toml(text, "fuzz.toml") else { return 0 };
    let id = usagenorm::providers::FormatReader::id(&format);
    let base = usagenorm::providers::Registry::builtin();
    let format = std::sync::Arc::new(format);
    let registry = match base.with(format.clone()) {
        Ok(r) => r,
        Err(_) => match base.replaced(format) {
            Ok(r) => r,
            Err(_) => return 0,
        },
    };
    let mut rows = 0;
    for provider in [Some(id), None] {
        let options = NormalizeOptions {
            provider: provider.map(str::to_string),
            errors: ErrorMode::Collect,
            formats: registry.clone(),
            ..Default::default()
        };
        let out = normalize(&[Input::Bytes { name: "fuzz.json".into(), data: input }], &options)
            .expect("collect mode never fails on bytes");
        for s in &out.stats {
            assert_eq!(s.records, s.accepted + s.rejected + s.duplicates + s.superseded);
        }
        assert_eq!(out.rows() as u64, out.stats.iter().map(|s| s.rows).sum::<u64>());
        rows += out.rows() as u64;
    }
    rows
}
