//! The normalize driver: reads each source (file or bytes; gzip, BOM, JSON or NDJSON), detects
//! its format, splits it into pages and records, and turns records into canonical rows in
//! parallel with rayon. Every record read ends up as rows or as a `Rejection`; the per-source
//! `SourceStats` prove it (`records == accepted + rejected`).
//!
//! The pipeline, one module per step: `source` reads bytes (a file whole or in blocks, gzip,
//! the BOM) and decides NDJSON or documents; `document` splits documents into pages and
//! records; `ndjson` reads lines; `detect` finds each element's format; `batch` gathers rows
//! and rejections into chunks, in order, with the accounting.

use std::borrow::Cow;
use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use crate::cancel::Phase;

use rayon::prelude::*;
use serde_json::value::RawValue;

use crate::dedupe::{dedupe, record_digests, Conflict, DedupeResult, Digest};
use crate::error::{Error, Result};
use crate::json::{join_path, ErrorKind, FieldError, FieldResult, Kind, Large, Raw, RawObject};
use crate::providers::{
    CallTimes, FormatReader, Nested, PageRecords, ReadOptions, RecordReader, Registry, WholeSource, NO_SOURCE,
};
use crate::schema::{CanonicalBatch, Kept, Row};

mod batch;
mod detect;
mod document;
mod ndjson;
mod source;
#[cfg(test)]
mod tests;

use batch::*;
use detect::*;
use document::*;
use ndjson::*;
use source::*;

/// Adds `n` records read to the running call's progress.
fn records_read(n: u64) {
    crate::cancel::report(|p| p.records.fetch_add(n, Ordering::Relaxed));
}

/// Batches are merged into batches of about this many rows while sources are read; each
/// becomes one chunk of the canonical frame, handed over without copying.
pub const CHUNK_ROWS: usize = 1 << 18;

/// Consecutive sources of up to this many input bytes are read by one task, which merges their
/// rows into `CHUNK_ROWS` batches as each source is read, while its rows are still in cache
/// (merging them all on one thread afterwards took 15% of the time, the other cores idle). A
/// group of 64 MB of the providers' pages is about 200k rows: a chunk of the frame as it is.
const GROUP_BYTES: u64 = 64 << 20;
/// Groups are smaller when the input is, down to this, so that every thread has about four.
const GROUP_MIN: u64 = 1 << 20;

/// Documents larger than this are checked in parallel (`json::parse_large`).
const LARGE_DOCUMENT: usize = 4 << 20;

/// Records per parallel work item within one page or NDJSON file.
const RECORD_CHUNK: usize = 2048;
/// Records per parallel task of one page: `RECORD_CHUNK`, or for a big page a share of it
/// large enough that each task's batch becomes a frame chunk as it is (no copy when merging).
fn records_per_task(records: usize) -> usize {
    (records / (2 * rayon::current_num_threads())).clamp(RECORD_CHUNK, CHUNK_ROWS)
}

/// The longest raw text kept in a rejection.
const MAX_RAW: usize = 1 << 20;

/// One source to normalize.
#[derive(Debug, Clone)]
pub enum Input<'a> {
    /// A file; `.gz` content is recognized by its magic bytes.
    Path(PathBuf),
    /// In-memory JSON or NDJSON text, named `name` in the output (`<memory>` by default).
    Bytes { name: String, data: &'a [u8] },
}

impl<'a> Input<'a> {
    /// A path when `data` is `None`, else in-memory text named `name`.
    pub fn new(name: &str, data: Option<&'a [u8]>) -> Input<'a> {
        match data {
            None => Input::Path(PathBuf::from(name)),
            Some(data) => Input::Bytes { name: name.to_string(), data },
        }
    }

    /// The size of the input in bytes, to plan the reading (0 when a file cannot be read; it
    /// fails later with a proper error).
    fn size_hint(&self) -> u64 {
        match self {
            Input::Path(p) => std::fs::metadata(p).map_or(0, |m| m.len()),
            Input::Bytes { data, .. } => data.len() as u64,
        }
    }

    pub fn name(&self) -> String {
        match self {
            Input::Path(p) => p.display().to_string(),
            Input::Bytes { name, .. } => name.clone(),
        }
    }
}

/// What to do with a bad record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorMode {
    /// Fail with the first bad record (in source order).
    #[default]
    Raise,
    /// Return bad records as rejections.
    Collect,
}

impl std::str::FromStr for ErrorMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<ErrorMode> {
        match s {
            "raise" => Ok(ErrorMode::Raise),
            "collect" => Ok(ErrorMode::Collect),
            _ => Err(Error::InvalidArgument(format!("errors must be \"raise\" or \"collect\", not {s:?}"))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NormalizeOptions {
    /// Force one format instead of detecting it.
    pub provider: Option<String>,
    pub errors: ErrorMode,
    pub read: ReadOptions,
    /// Drop duplicate records and resolve conflicts (see `crate::dedupe`).
    pub dedupe: bool,
    /// The formats to detect and read: the built-in ones and any format files added.
    pub formats: Registry,
    /// Reduce each record to its digest (`NormalizeOutput::digests`, for a dedupe across calls)
    /// instead of keeping its rows (`batches` is then empty); needs `dedupe: false`.
    pub digests: bool,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        NormalizeOptions {
            provider: None,
            errors: ErrorMode::Raise,
            read: ReadOptions::default(),
            dedupe: true,
            formats: Registry::builtin(),
            digests: false,
        }
    }
}

/// A record (or a document that yielded no records) that could not be normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// Index into `NormalizeOutput::sources`.
    pub source: u32,
    pub source_index: u64,
    /// 1-based line for NDJSON input.
    pub line: Option<u64>,
    pub provider: Option<&'static str>,
    /// What kind of problem it is.
    pub kind: ErrorKind,
    /// JSON path of the offending field.
    pub path: String,
    pub reason: String,
    /// The record's raw text (at most 1 MiB).
    pub raw: String,
}

/// The accounting of one source: `records == accepted + rejected + duplicates + superseded`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStats {
    pub source: String,
    pub provider: Option<&'static str>,
    /// Records read (a document that yields no records but fails counts as one).
    pub records: u64,
    /// Records whose rows are in the output.
    pub accepted: u64,
    pub rejected: u64,
    /// Identical copies of a record seen earlier, dropped.
    pub duplicates: u64,
    /// Older revisions of a record, dropped in favour of a newer one.
    pub superseded: u64,
    /// Rows in the output (a Suger group or a VMware item may give several).
    pub rows: u64,
}

#[derive(Debug, Default)]
pub struct NormalizeOutput {
    pub sources: Vec<String>,
    /// Row batches in output order (sources in the order given, then source_index).
    pub batches: Vec<CanonicalBatch>,
    pub rejects: Vec<Rejection>,
    pub stats: Vec<SourceStats>,
    /// Every version of every record whose id came with different content.
    pub conflicts: Vec<Conflict>,
    /// With `NormalizeOptions::digests`, every record's digest in output order (first rows
    /// numbered as if `batches` held the rows).
    pub digests: Vec<Digest>,
}

impl NormalizeOutput {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(CanonicalBatch::len).sum()
    }
}

/// Normalizes `inputs` into canonical rows.
pub fn normalize(inputs: &[Input], options: &NormalizeOptions) -> Result<NormalizeOutput> {
    if options.dedupe && options.read.kept.projects() {
        let why = "leaving columns out needs dedupe=False: dedupe compares every column";
        return Err(Error::InvalidArgument(why.into()));
    }
    if options.digests && (options.dedupe || options.read.kept.projects()) {
        let why = "digests need dedupe=False and every column: a digest covers a record's whole content";
        return Err(Error::InvalidArgument(why.into()));
    }
    let forced = match options.provider.as_deref() {
        None => None,
        Some(id) => Some(options.formats.get(id).ok_or_else(|| {
            Error::InvalidArgument(format!("unknown provider {id:?}; known: {}", options.formats.ids().join(", ")))
        })?),
    };
    let mut out = NormalizeOutput { sources: inputs.iter().map(Input::name).collect(), ..Default::default() };
    let mut read = Vec::with_capacity(inputs.len());
    let sizes: Vec<u64> = inputs.par_iter().map(Input::size_hint).collect();
    crate::cancel::report(|p| {
        p.sources_total.store(inputs.len() as u64, Ordering::Relaxed);
        p.bytes_total.store(sizes.iter().sum(), Ordering::Relaxed);
        p.set_phase(Phase::Reading);
    });
    // Consecutive sources of about GROUP_BYTES make a group, read by one task; the groups are
    // read in parallel, and their rows (already in chunks) appended in order.
    let total: u64 = sizes.iter().sum();
    let group_bytes = (total / (4 * rayon::current_num_threads() as u64)).clamp(GROUP_MIN, GROUP_BYTES);
    let mut groups = Vec::new();
    let mut start = 0;
    while start < inputs.len() {
        let mut end = start + 1;
        let mut bytes = sizes[start];
        while end < inputs.len() && bytes + sizes[end] <= group_bytes {
            bytes += sizes[end];
            end += 1;
        }
        groups.push(start..end);
        start = end;
    }
    // Every source's record times, read again only if a format asks (`CallTimes`).
    let load = |scan: fn(&[u8]) -> Vec<i64>| -> Vec<i64> {
        inputs
            .par_iter()
            .flat_map_iter(|input| source_text(input).map(|text| scan(&text)).unwrap_or_default())
            .collect()
    };
    let call = CallTimes::new(&load);
    let base = Ctx {
        source: 0,
        provider: forced,
        forced,
        formats: &options.formats,
        options: &options.read,
        whole: &NO_SOURCE,
        call: Some(&call),
        nonfinite: false,
    };
    let groups: Vec<Result<Group>> =
        groups.into_par_iter().map(|range| read_group(inputs, range, &sizes, &base, options.digests)).collect();
    // A Ctrl-C makes the remaining sources and chunks return nothing; the call then fails.
    crate::cancel::check()?;
    let mut row = 0;
    for group in groups {
        let group = group?;
        out.digests.extend(group.digests.into_iter().map(|d| Digest { first_row: d.first_row + row, ..d }));
        row += group.read.iter().map(|r| r.3).sum::<u64>();
        read.extend(group.read);
        group.batches.into_iter().for_each(|b| push_batch(&mut out.batches, b, 0));
        out.rejects.extend(group.rejects);
    }
    if let Some(last) = out.batches.last_mut() {
        last.shrink_to_fit();
    }
    if options.errors == ErrorMode::Raise {
        if let Some(r) = out.rejects.first() {
            return Err(Error::Record {
                source_name: out.sources[r.source as usize].clone(),
                index: r.source_index,
                line: r.line,
                provider: r.provider,
                kind: r.kind,
                path: r.path.clone(),
                reason: r.reason.clone(),
            });
        }
    }
    crate::cancel::report(|p| p.set_phase(Phase::Dedupe));
    let removed = if options.dedupe { dedupe(&mut out.batches) } else { DedupeResult::default() };
    crate::cancel::check()?;
    out.conflicts = removed.conflicts;
    // Rows per source: of the rows kept, or with digests (no dedupe, no rows kept) of those read.
    let rows: Vec<u64> = if options.digests {
        read.iter().map(|r| r.3).collect()
    } else {
        let mut rows = vec![0u64; inputs.len()];
        out.batches.iter().flat_map(|b| &b.source).for_each(|s| rows[*s as usize] += 1);
        rows
    };
    for (i, (provider, records, rejected, _)) in read.into_iter().enumerate() {
        let key = i as u32;
        let duplicates = removed.duplicates.get(&key).copied().unwrap_or(0);
        let superseded = removed.superseded.get(&key).copied().unwrap_or(0);
        out.stats.push(SourceStats {
            source: out.sources[i].clone(),
            provider,
            records,
            accepted: records - rejected - duplicates - superseded,
            rejected,
            duplicates,
            superseded,
            rows: rows[i],
        });
    }
    Ok(out)
}

/// What every part of one source shares.
#[derive(Clone, Copy)]
struct Ctx<'o, 'r> {
    source: u32,
    /// The source's format: forced, or detected from its first document that detects.
    provider: Option<&'r dyn FormatReader>,
    /// The format `provider=` forced, if any: then no element is detected on its own.
    forced: Option<&'r dyn FormatReader>,
    /// The formats to detect among.
    formats: &'r Registry,
    options: &'o ReadOptions,
    /// The text of the whole source (of the block, for a file read in blocks), for formats that
    /// learn from every record of it (`providers::WholeSource`).
    whole: &'o WholeSource<'o>,
    /// Every source of the call, for what one source is too short to tell (`CallTimes`).
    call: Option<&'o CallTimes<'o>>,
    /// Whether the text may hold `json::NONFINITE_MARK` (in-memory text that `dumps` wrote from
    /// a float JSON cannot hold): then each record is searched for it and rejected by name.
    nonfinite: bool,
}
