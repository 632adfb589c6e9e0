//! The normalize driver: reads each source (file or bytes; gzip, BOM, JSON or NDJSON), detects
//! its format, splits it into pages and records, and turns records into canonical rows in
//! parallel with rayon. Every record read ends up as rows or as a `Rejection`; the per-source
//! `SourceStats` prove it (`records == accepted + rejected`).

use std::borrow::Cow;
use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde_json::value::RawValue;

use crate::dedupe::{dedupe, Conflict, DedupeResult};
use crate::error::{Error, Result};
use crate::json::{FieldError, FieldResult, Kind, Large, Raw, RawObject};
use crate::providers::{self, Provider, ReadOptions, RecordReader, WholeSource, NO_SOURCE, REGISTRY};
use crate::schema::{CanonicalBatch, Row};

/// Progress of the running `normalize` calls (process-wide, approximate when several run at
/// once): sources finished and records read. The command line polls it for its progress bar.
static SOURCES_DONE: AtomicU64 = AtomicU64::new(0);
static RECORDS_DONE: AtomicU64 = AtomicU64::new(0);

/// `(sources finished, records read)` since the last `normalize` call started.
pub fn progress() -> (u64, u64) {
    (SOURCES_DONE.load(Ordering::Relaxed), RECORDS_DONE.load(Ordering::Relaxed))
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
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        NormalizeOptions { provider: None, errors: ErrorMode::Raise, read: ReadOptions::default(), dedupe: true }
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
}

impl NormalizeOutput {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(CanonicalBatch::len).sum()
    }
}

/// Normalizes `inputs` into canonical rows.
pub fn normalize(inputs: &[Input], options: &NormalizeOptions) -> Result<NormalizeOutput> {
    let forced = match options.provider.as_deref() {
        None => None,
        Some(id) => Some(providers::by_id(id).ok_or_else(|| {
            Error::InvalidArgument(format!("unknown provider {id:?}; known: {}", providers::ids().join(", ")))
        })?),
    };
    let mut out = NormalizeOutput { sources: inputs.iter().map(Input::name).collect(), ..Default::default() };
    let mut read = Vec::with_capacity(inputs.len());
    let sizes: Vec<u64> = inputs.par_iter().map(Input::size_hint).collect();
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
    let groups: Vec<Result<Group>> =
        groups.into_par_iter().map(|range| read_group(inputs, range, forced, &options.read)).collect();
    // A Ctrl-C makes the remaining sources and chunks return nothing; the call then fails.
    crate::cancel::check()?;
    for group in groups {
        let group = group?;
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
                path: r.path.clone(),
                reason: r.reason.clone(),
            });
        }
    }
    let removed = if options.dedupe { dedupe(&mut out.batches) } else { DedupeResult::default() };
    crate::cancel::check()?;
    out.conflicts = removed.conflicts;
    let mut rows = vec![0u64; inputs.len()];
    for b in &out.batches {
        b.source.iter().for_each(|s| rows[*s as usize] += 1);
    }
    for (i, (provider, records, rejected)) in read.into_iter().enumerate() {
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

/// The rows of a group of consecutive sources, and what each source gave.
struct Group {
    batches: Vec<CanonicalBatch>,
    rejects: Vec<Rejection>,
    /// Per source: its format, its records and its rejections.
    read: Vec<(Option<&'static str>, u64, u64)>,
}

/// Reads the sources `range` one after another, merging their rows as they arrive.
fn read_group(
    inputs: &[Input],
    range: std::ops::Range<usize>,
    forced: Option<&'static dyn Provider>,
    options: &ReadOptions,
) -> Result<Group> {
    let mut group = Group { batches: Vec::new(), rejects: Vec::new(), read: Vec::with_capacity(range.len()) };
    for (k, input) in range.clone().zip(&inputs[range]) {
        let (chunk, provider) = read_source(k as u32, input, forced, options)?;
        group.read.push((provider, chunk.records, chunk.rejects.len() as u64));
        chunk.batches.into_iter().for_each(|b| push_batch(&mut group.batches, b, 0));
        group.rejects.extend(chunk.rejects);
    }
    Ok(group)
}

/// The output of part of a source, with `source_index` counted from the part's start.
#[derive(Debug, Default)]
struct Chunk {
    batches: Vec<CanonicalBatch>,
    rejects: Vec<Rejection>,
    records: u64,
}

impl Chunk {
    /// Appends a later part, shifting its indices past this part's records.
    fn absorb(&mut self, mut later: Chunk) {
        let offset = self.records;
        later.batches.into_iter().for_each(|b| push_batch(&mut self.batches, b, offset));
        later.rejects.iter_mut().for_each(|r| r.source_index += offset);
        self.rejects.append(&mut later.rejects);
        self.records += later.records;
    }

    /// Appends the rows of the next record, read from a bare record.
    fn push_rows(&mut self, provider: &'static str, rows: &mut Vec<Row>, source: u32) {
        if self.batches.last().is_none_or(|b| b.len() >= CHUNK_ROWS) {
            self.batches.push(CanonicalBatch::default());
        }
        if let Some(batch) = self.batches.last_mut() {
            for row in rows.drain(..) {
                batch.push(provider, &row, source, self.records);
            }
        }
        self.records += 1;
    }

    /// A part that is one rejected record or document.
    fn rejected(ctx: &Ctx, line: Option<u64>, path: String, reason: String, raw: &[u8]) -> Chunk {
        Chunk {
            batches: Vec::new(),
            rejects: vec![Rejection {
                source: ctx.source,
                source_index: 0,
                line,
                provider: ctx.provider.map(|p| p.id()),
                path,
                reason,
                raw: cap_raw(raw),
            }],
            records: 1,
        }
    }
}

/// Appends a batch (its source indices shifted by `offset`) to batches in output order, merging
/// small ones: a batch of fewer than `CHUNK_ROWS / 4` rows is copied into the last batch while
/// that has fewer than `CHUNK_ROWS` rows, and freed; a bigger one is kept as it is. A batch
/// that is followed by another will not grow again and gives back its spare capacity.
fn push_batch(batches: &mut Vec<CanonicalBatch>, mut b: CanonicalBatch, offset: u64) {
    if b.is_empty() {
        return;
    }
    match batches.last_mut() {
        Some(last) if b.len() < CHUNK_ROWS / 4 && last.len() < CHUNK_ROWS => {
            if last.usage_start.capacity() < last.len() + b.len() {
                last.reserve_for(&b, CHUNK_ROWS.saturating_sub(last.len()).max(b.len()));
            }
            last.append(b, offset)
        }
        last => {
            if let Some(last) = last {
                last.shrink_to_fit();
            }
            if offset > 0 {
                b.source_index.iter_mut().for_each(|i| *i += offset);
            }
            batches.push(b);
        }
    }
}

fn cap_raw(raw: &[u8]) -> String {
    if raw.len() <= MAX_RAW {
        String::from_utf8_lossy(raw).into_owned()
    } else {
        format!("{}… ({} bytes in all)", String::from_utf8_lossy(&raw[..MAX_RAW]), raw.len())
    }
}

/// What every part of one source shares.
#[derive(Clone, Copy)]
struct Ctx<'o> {
    source: u32,
    /// The source's format: forced, or detected from its first document that detects.
    provider: Option<&'static dyn Provider>,
    /// The format `provider=` forced, if any: then no element is detected on its own.
    forced: Option<&'static dyn Provider>,
    options: &'o ReadOptions,
    /// The text of the whole source (of the block, for a file read in blocks), for formats that
    /// learn from every record of it (`providers::WholeSource`).
    whole: &'o WholeSource<'o>,
    /// Whether the text may hold `json::NONFINITE_MARK` (in-memory text that `dumps` wrote from
    /// a float JSON cannot hold): then each record is searched for it and rejected by name.
    nonfinite: bool,
}

/// Files larger than this are read block by block when they hold NDJSON, so the whole file is
/// never in memory at once (a JSON document has to be read whole).
const STREAM_MIN: u64 = 64 << 20;
/// The size of one NDJSON block (it is extended to the end of its last line).
const BLOCK: usize = 128 << 20;

fn read_source(
    source: u32,
    input: &Input,
    forced: Option<&'static dyn Provider>,
    options: &ReadOptions,
) -> Result<(Chunk, Option<&'static str>)> {
    crate::cancel::check()?;
    let mut ctx = Ctx { source, provider: forced, forced, options, whole: &NO_SOURCE, nonfinite: false };
    let chunk = match input {
        Input::Path(p) => {
            let io_error = |e: std::io::Error| Error::Io {
                path: p.display().to_string(),
                message: e.to_string(),
                not_found: e.kind() == std::io::ErrorKind::NotFound,
            };
            let name = p.display().to_string();
            let mut file = std::fs::File::open(p).map_err(io_error)?;
            let len = file.metadata().map_err(io_error)?.len();
            if len > STREAM_MIN {
                read_large_file(&mut ctx, &name, file, len as usize, BLOCK).map_err(io_error)?
            } else {
                let mut buf = Vec::with_capacity(len as usize + 1);
                file.read_to_end(&mut buf).map_err(io_error)?;
                read_bytes(&mut ctx, &name, &buf).map_err(io_error)?
            }
        }
        Input::Bytes { name, data } => {
            ctx.nonfinite = memchr::memmem::find(data, crate::json::NONFINITE_MARK).is_some();
            // In-memory text is never read from a device: an error can only be gzip's, which
            // `read_stream` turns into a rejection.
            read_bytes(&mut ctx, name, data).unwrap_or_else(|e| gzip_rejected(&ctx, e))
        }
    };
    Ok((chunk, ctx.provider.map(|p| p.id())))
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];

/// Reads a source held in memory: plain text as it is, gzip through the same streaming reader
/// as a large file, so that a stream that breaks keeps what came before the break at any size.
fn read_bytes(ctx: &mut Ctx, name: &str, data: &[u8]) -> std::io::Result<Chunk> {
    if data.starts_with(GZIP_MAGIC) {
        let stream = Stream::Sequential(Box::new(flate2::bufread::MultiGzDecoder::new(data)));
        // Room for a typical compression ratio; the buffer grows if the text is larger.
        let capacity = data.len().saturating_mul(8).clamp(64 << 10, BLOCK + (1 << 20));
        return read_stream(ctx, name, stream, true, capacity, BLOCK);
    }
    Ok(read_text(ctx, name, data))
}

/// Reads plain text whole: NDJSON or one or more JSON documents (see `read_undecided`).
fn read_text(ctx: &mut Ctx, name: &str, data: &[u8]) -> Chunk {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let whole = WholeSource::new(data);
    let mut local = Ctx { whole: &whole, ..*ctx };
    let out = if ndjson_by_name(name) || looks_like_ndjson(data) {
        read_ndjson(&mut local, data, 0).0
    } else {
        read_undecided(&mut local, data)
    };
    ctx.provider = local.provider;
    out
}

/// Reads text that is not NDJSON by its name or its first line. What it is is decided from the
/// whole text: one JSON document if it parses as one; else NDJSON if any of its lines is a
/// JSON object or array by itself (a first line that is blank or broken does not hide the good
/// lines after it: only the bad lines are rejected); else a sequence of documents, read up to
/// the first that is broken, whose rest is one rejection.
fn read_undecided(ctx: &mut Ctx, data: &[u8]) -> Chunk {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(doc) = Doc::parse(text) {
            if ctx.provider.is_none() {
                // Detected here so the source's stats name its format.
                ctx.provider = detect(&doc).ok().flatten();
            }
            return read_document(ctx, doc, text, None, "$");
        }
    }
    if has_document_line(data) {
        return read_ndjson(ctx, data, 0).0;
    }
    read_json(ctx, data)
}

/// Whether any line of `data` is by itself a JSON object or array with something in it, starting
/// at the line's first character: a pretty-printed document indents what it nests, so a line of
/// one that happens to be a whole object does not make a broken document NDJSON.
fn has_document_line(data: &[u8]) -> bool {
    data.split(|&c| c == b'\n').any(|line| {
        let line = line.trim_ascii_end();
        line.len() > 2
            && matches!((line[0], line[line.len() - 1]), (b'{', b'}') | (b'[', b']'))
            && serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok()
    })
}

fn gzip_rejected(ctx: &Ctx, e: std::io::Error) -> Chunk {
    Chunk::rejected(ctx, None, "$".into(), format!("not a readable gzip stream: {e}"), &[])
}

fn ndjson_by_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let stem = lower.strip_suffix(".gz").unwrap_or(&lower);
    stem.ends_with(".ndjson") || stem.ends_with(".jsonl")
}

/// Reads up to `want` more bytes into `buf`; returns how many arrived (0 at the end).
fn fill(reader: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> std::io::Result<usize> {
    let before = buf.len();
    reader.take(want as u64).read_to_end(buf)?;
    Ok(buf.len() - before)
}

/// Where a large file's bytes come from. A plain file is read at offsets in parallel pieces:
/// from the page cache a read is a copy into fresh memory, which one thread does at about
/// 1.5 GB/s, most of it the kernel handing over the new pages. A gzip stream is read in order.
enum Stream<'f> {
    #[cfg(unix)]
    Plain {
        file: &'f std::fs::File,
        at: u64,
        len: u64,
    },
    Sequential(Box<dyn Read + 'f>),
}

/// The size of the pieces a plain file is read in, in parallel.
const READ_PIECE: usize = 8 << 20;

impl<'f> Stream<'f> {
    /// The stream of `file`, `len` bytes long, and whether it is gzip.
    fn open(file: &'f std::fs::File, len: usize) -> std::io::Result<(Stream<'f>, bool)> {
        let mut plain = std::io::BufReader::with_capacity(1 << 20, file);
        let gzip = plain.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        if gzip {
            return Ok((Stream::Sequential(Box::new(flate2::bufread::MultiGzDecoder::new(plain))), true));
        }
        #[cfg(unix)]
        return Ok((Stream::Plain { file, at: 0, len: len as u64 }, false));
        #[cfg(not(unix))]
        {
            let _ = len;
            Ok((Stream::Sequential(Box::new(plain)), false))
        }
    }

    /// Appends up to `want` more bytes to `buf`; returns how many arrived (0 at the end). A
    /// plain file is read up to the length it had when it was opened.
    fn fill(&mut self, buf: &mut Vec<u8>, want: usize) -> std::io::Result<usize> {
        match self {
            #[cfg(unix)]
            Stream::Plain { file, at, len } => {
                use std::os::unix::fs::FileExt;
                let n = want.min(len.saturating_sub(*at) as usize);
                let before = buf.len();
                // Zeroed in parallel: the new memory's first touch is most of the cost.
                buf.par_extend(rayon::iter::repeat_n(0u8, n));
                let start = *at;
                buf[before..].par_chunks_mut(READ_PIECE).enumerate().try_for_each(|(k, piece)| {
                    file.read_exact_at(piece, start + (k * READ_PIECE) as u64).map_err(|e| {
                        if e.kind() == std::io::ErrorKind::UnexpectedEof {
                            std::io::Error::other("the file became shorter while it was read")
                        } else {
                            e
                        }
                    })
                })?;
                *at += n as u64;
                Ok(n)
            }
            Stream::Sequential(reader) => fill(reader, buf, want),
        }
    }

    /// Reads everything that is left.
    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        match self {
            #[cfg(unix)]
            Stream::Plain { at, len, .. } => {
                let rest = len.saturating_sub(*at) as usize;
                buf.reserve(rest + 1);
                self.fill(buf, rest).map(drop)
            }
            Stream::Sequential(reader) => reader.read_to_end(buf).map(drop),
        }
    }
}

/// Reads a large file (plain or gzip) through `read_stream`.
fn read_large_file(
    ctx: &mut Ctx,
    name: &str,
    file: std::fs::File,
    len: usize,
    block_size: usize,
) -> std::io::Result<Chunk> {
    let (reader, gzip) = Stream::open(&file, len)?;
    // A plain document up to twice a block is read without moving it (lines extend a block).
    let capacity = if gzip { block_size + (1 << 20).min(block_size) } else { len.min(2 * block_size) + 1 };
    read_stream(ctx, name, reader, gzip, capacity, block_size)
}

/// Reads a stream: NDJSON block by block, anything else whole (then decided as `read_text`
/// decides). Each block is parsed in parallel like a small file; line numbers and record
/// indices continue across blocks, and only one block and its rows are held besides the rows
/// already read. A gzip stream that breaks keeps the lines before the break, and the broken
/// tail is one rejection; a plain file that cannot be read is an error.
fn read_stream(
    ctx: &mut Ctx,
    name: &str,
    mut reader: Stream,
    gzip: bool,
    capacity: usize,
    block_size: usize,
) -> std::io::Result<Chunk> {
    let mut block = Vec::with_capacity(capacity);
    // The first read is large enough to see the BOM and the first line.
    let mut broken = None;
    if let Err(e) = reader.fill(&mut block, block_size.max(64 << 10)) {
        if !gzip {
            return Err(e);
        }
        broken = Some(e);
    }
    let bom = if block.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    if !(ndjson_by_name(name) || looks_like_ndjson(&block[bom..])) {
        if broken.is_none() {
            if let Err(e) = reader.read_to_end(&mut block) {
                if !gzip {
                    return Err(e);
                }
                broken = Some(e);
            }
        }
        let text = &block[bom..];
        let whole = WholeSource::new(text);
        let mut local = Ctx { whole: &whole, ..*ctx };
        let out = match broken {
            None => read_undecided(&mut local, text),
            // What arrived before the break: its lines, if it is NDJSON (a document cut short
            // is part of the broken tail).
            Some(e) => {
                let mut out =
                    if has_document_line(text) { read_ndjson(&mut local, text, 0).0 } else { Chunk::default() };
                out.absorb(gzip_rejected(&local, e));
                out
            }
        };
        ctx.provider = local.provider;
        return Ok(out);
    }
    let mut out = Chunk::default();
    let mut lines_before = 0u64;
    let mut skip = bom;
    let mut any_line = false;
    let mut at_end = broken.is_some();
    while crate::cancel::check().is_ok() {
        // Extend the block to the end of a line (or of the file).
        while !at_end && (memchr::memrchr(b'\n', &block[skip..]).is_none() || block.len() < block_size) {
            match reader.fill(&mut block, block_size) {
                Ok(0) => at_end = true,
                Ok(_) => {}
                Err(e) if gzip => {
                    broken = Some(e);
                    at_end = true;
                }
                Err(e) => return Err(e),
            }
        }
        let end = if at_end {
            block.len()
        } else {
            memchr::memrchr(b'\n', &block[skip..]).map_or(block.len(), |i| skip + i + 1)
        };
        let part = &block[skip..end];
        let mut part_breaks = None;
        if !part.iter().all(u8::is_ascii_whitespace) {
            any_line = true;
            let whole = WholeSource::new(part);
            let mut local = Ctx { whole: &whole, ..*ctx };
            let (chunk, breaks) = read_ndjson(&mut local, part, lines_before);
            ctx.provider = local.provider;
            out.absorb(chunk);
            part_breaks = Some(breaks);
        }
        if at_end {
            if let Some(e) = broken {
                any_line = true;
                out.absorb(gzip_rejected(ctx, e));
            }
            break;
        }
        lines_before += part_breaks.unwrap_or_else(|| memchr::memchr_iter(b'\n', part).count() as u64);
        block.drain(..end);
        skip = 0;
    }
    if !any_line {
        out.absorb(Chunk::rejected(ctx, None, "$".into(), "the document is empty".into(), &[]));
    }
    Ok(out)
}

/// Whether text holds several JSON values, the first of them on the first line.
fn looks_like_ndjson(data: &[u8]) -> bool {
    let Some(nl) = memchr::memchr(b'\n', data) else { return false };
    let rest = &data[nl + 1..];
    if rest.iter().all(u8::is_ascii_whitespace) {
        return false;
    }
    let first = &data[..nl];
    if first.iter().all(u8::is_ascii_whitespace) {
        return false;
    }
    // Cheap test first: a complete one-line document ends with `}` or `]`.
    let trimmed = first.trim_ascii_end();
    matches!(trimmed.last(), Some(b'}') | Some(b']')) && serde_json::from_slice::<serde::de::IgnoredAny>(first).is_ok()
}

/// Reads text that is not one JSON document as a sequence of documents, up to the first that is
/// broken (its rest is one rejection); empty or invalid UTF-8 text is one rejection.
fn read_json(ctx: &mut Ctx, data: &[u8]) -> Chunk {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Chunk::rejected(ctx, None, "$".into(), "the document is empty".into(), data);
    }
    let text = match std::str::from_utf8(data) {
        Ok(t) => t,
        Err(e) => {
            let reason = format!("invalid UTF-8 at byte {}", e.valid_up_to());
            return Chunk::rejected(ctx, None, "$".into(), reason, data);
        }
    };
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
    let mut out = Chunk::default();
    let mut doc = 0usize;
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => break,
            Some(Ok(value)) => {
                let prefix = format!("document {doc}: $");
                out.absorb(match Doc::parse(value.get()) {
                    Some(d) => {
                        if ctx.provider.is_none() {
                            ctx.provider = detect(&d).ok().flatten();
                        }
                        read_document(ctx, d, value.get(), None, &prefix)
                    }
                    None => {
                        Chunk::rejected(ctx, None, prefix, not_object_or_array(value.into()), value.get().as_bytes())
                    }
                });
            }
            Some(Err(e)) => {
                let reason = format!("malformed JSON: {e}");
                out.absorb(Chunk::rejected(ctx, None, "$".into(), reason, &data[start..]));
                break;
            }
        }
        doc += 1;
    }
    out
}

fn not_object_or_array(value: Raw) -> String {
    format!("expected a JSON object or array, got {}", Kind::of(value).name())
}

/// A JSON document parsed once: an object with raw field values, or an array of raw elements.
enum Doc<'d> {
    Object(RawObject<'d>),
    Array(Vec<Raw<'d>>),
}

impl<'d> Doc<'d> {
    /// Parses `text` when it is exactly one JSON object or array: checked and split in one pass
    /// (`json::parse_checked`), a large one checked in parallel (`json::parse_large`), and
    /// whatever those leave (an error, something unusual) by serde_json.
    fn parse(text: &'d str) -> Option<Doc<'d>> {
        let read =
            if text.len() > LARGE_DOCUMENT { crate::json::parse_large(text) } else { crate::json::parse_checked(text) };
        match read {
            Some(Large::Object(obj)) => return Some(Doc::Object(obj)),
            Some(Large::Array(items)) => return Some(Doc::Array(items)),
            None => {}
        }
        match text.trim_start().as_bytes().first() {
            Some(b'{') => serde_json::from_str(text).ok().map(Doc::Object),
            Some(b'[') => serde_json::from_str::<Vec<&RawValue>>(text)
                .ok()
                .map(|items| Doc::Array(items.into_iter().map(Raw::from).collect())),
            _ => None,
        }
    }
}

/// Lines of NDJSON text with their numbers.
type Lines<'d> = Vec<(u64, &'d [u8])>;

/// The non-blank lines of NDJSON text with their 1-based numbers (the first line is number
/// `lines_before + 1`), and how many line breaks the text holds. Text of a megabyte or more is
/// cut at line breaks into pieces that are split in parallel.
fn split_lines(data: &[u8], lines_before: u64) -> (Lines<'_>, u64) {
    let pieces = if data.len() < 1 << 20 { 1 } else { 2 * rayon::current_num_threads() };
    let mut bounds = vec![0];
    for k in 1..pieces {
        let at = (data.len() / pieces * k).max(bounds.last().copied().unwrap_or(0));
        match memchr::memchr(b'\n', data.get(at..).unwrap_or_default()) {
            Some(i) => bounds.push(at + i + 1),
            None => break,
        }
    }
    bounds.push(data.len());
    bounds.dedup();
    let last = bounds.len().saturating_sub(2);
    // Each piece: its lines numbered from 0 within it, and its line breaks. A piece other than
    // the last ends with a line break, after which nothing of it is left.
    let parts: Vec<(Lines, u64)> = bounds
        .windows(2)
        .enumerate()
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|(k, w)| {
            let piece = data.get(w[0]..w[1]).unwrap_or_default();
            let mut lines = Vec::new();
            let mut start = 0usize;
            let mut breaks = 0u64;
            let tail = (k == last).then_some(piece.len());
            for (number, end) in (0..).zip(memchr::memchr_iter(b'\n', piece).inspect(|_| breaks += 1).chain(tail)) {
                let line = piece.get(start..end).unwrap_or_default();
                if !line.iter().all(u8::is_ascii_whitespace) {
                    lines.push((number, line));
                }
                start = end + 1;
            }
            (lines, breaks)
        })
        .collect();
    let mut lines = Vec::with_capacity(parts.iter().map(|p| p.0.len()).sum());
    let mut first = lines_before + 1;
    for (part, breaks) in parts {
        lines.extend(part.into_iter().map(|(n, line)| (first + n, line)));
        first += breaks;
    }
    (lines, first - lines_before - 1)
}

/// Reads NDJSON text whose first line is line `lines_before + 1` of its source; also returns
/// how many line breaks the text holds.
fn read_ndjson<'d>(ctx: &mut Ctx, data: &'d [u8], lines_before: u64) -> (Chunk, u64) {
    let (lines, breaks) = split_lines(data, lines_before);
    if lines.is_empty() {
        return (Chunk::rejected(ctx, None, "$".into(), "the document is empty".into(), data), breaks);
    }
    if ctx.provider.is_none() {
        // Detect once per file, from the first line that detects.
        ctx.provider = lines.iter().find_map(|(_, l)| {
            let doc = Doc::parse(std::str::from_utf8(l).ok()?)?;
            detect(&doc).ok().flatten()
        });
    }
    let ctx = *ctx;
    let parts: Vec<Chunk> = lines
        .par_chunks(records_per_task(lines.len()))
        .map(|chunk| {
            let mut out = Chunk::default();
            if crate::cancel::check().is_err() {
                return out;
            }
            let mut rows: Vec<Row<'d>> = Vec::with_capacity(4);
            // Bare records (the common NDJSON) go straight into the chunk's batch; pages, arrays
            // and bad lines take the general path.
            let mut read_line = |reader: Option<&dyn RecordReader>, out: &mut Chunk, number: u64, line: &'d [u8]| {
                let text = match std::str::from_utf8(line) {
                    Ok(text) => text,
                    Err(e) => {
                        let reason = format!("invalid UTF-8 at byte {}", e.valid_up_to());
                        return out.absorb(Chunk::rejected(&ctx, Some(number), "$".into(), reason, line));
                    }
                };
                if ctx.nonfinite {
                    if let Some(c) = nonfinite_rejected(&ctx, Some(number), "$", text) {
                        return out.absorb(c);
                    }
                }
                let doc = Doc::parse(text);
                // A line of another format than the file's (concatenated exports) is read with
                // its own format.
                let own = match (&doc, ctx.provider) {
                    (Some(Doc::Object(obj)), Some(provider)) => {
                        Some(element_format(&ctx, provider, obj)).filter(|p| !same(*p, provider))
                    }
                    _ => None,
                };
                match (doc, reader, ctx.provider) {
                    // An empty object is an empty response: no records.
                    (Some(Doc::Object(obj)), _, _) if obj.is_empty() => {}
                    (Some(doc), _, _) if own.is_some() => {
                        out.absorb(read_document(&Ctx { provider: own, ..ctx }, doc, text, Some(number), "$"))
                    }
                    (Some(Doc::Object(obj)), Some(reader), Some(provider)) if !provider.is_page(&obj) => {
                        match reader.rows(&obj, &mut rows).and_then(|()| fits(&rows)) {
                            Ok(()) => out.push_rows(provider.id(), &mut rows, ctx.source),
                            Err(FieldError { path, reason }) => {
                                rows.clear();
                                let mut c = Chunk::rejected(&ctx, Some(number), join_path("$", &path), reason, line);
                                c.rejects[0].provider = Some(provider.id());
                                out.absorb(c);
                            }
                        }
                    }
                    (Some(doc), _, _) => out.absorb(read_document(&ctx, doc, text, Some(number), "$")),
                    (None, _, _) => {
                        let reason = match serde_json::from_str::<&RawValue>(text) {
                            Ok(v) => not_object_or_array(v.into()),
                            Err(e) => format!("malformed JSON: {e}"),
                        };
                        out.absorb(Chunk::rejected(&ctx, Some(number), "$".into(), reason, line));
                    }
                }
            };
            let lone = match ctx.provider {
                Some(provider) => provider.with_page(None, &[], ctx.options, ctx.whole, &mut |reader| {
                    for (number, line) in chunk {
                        read_line(Some(reader), &mut out, *number, line);
                    }
                }),
                None => Err(FieldError::new("", "no format detected")),
            };
            if lone.is_err() {
                out = Chunk::default();
                for (number, line) in chunk {
                    read_line(None, &mut out, *number, line);
                }
            }
            RECORDS_DONE.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            out.batches.iter_mut().for_each(CanonicalBatch::shrink_to_fit);
            out
        })
        .collect();
    let mut out = Chunk::default();
    parts.into_iter().for_each(|p| out.absorb(p));
    (out, breaks)
}

/// Which format a document is: `Ok(None)` for an empty array or object (nothing to detect).
fn detect(doc: &Doc) -> std::result::Result<Option<&'static dyn Provider>, String> {
    match doc {
        Doc::Object(obj) => detect_object(obj),
        Doc::Array(items) => match items.first() {
            None => Ok(None),
            Some(item) => detect_object(&RawObject::parse(*item, "$[0]").map_err(|e| e.reason)?),
        },
    }
}

/// Which format an object is: the one it is a page of, else the one it is a record of.
fn detect_object(obj: &RawObject) -> std::result::Result<Option<&'static dyn Provider>, String> {
    if obj.is_empty() {
        return Ok(None);
    }
    let pages: Vec<_> = REGISTRY.iter().copied().filter(|p| p.is_page(obj)).collect();
    let found = if pages.is_empty() { REGISTRY.iter().copied().filter(|p| p.is_record(obj)).collect() } else { pages };
    match found.as_slice() {
        [one] => Ok(Some(*one)),
        [] => Err(format!("the document matches no known format (tried {})", providers::ids().join(", "))),
        many => Err(format!(
            "the document matches more than one format ({}); pass provider= to choose",
            many.iter().map(|p| p.id()).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// The format of one element of a source (an element of a top-level array, or an NDJSON
/// line), given the format `current` of the elements before it: the forced format; else
/// `current` when the element is one of its pages or records (no search); else the element's
/// own format when it has one; else `current`, whose reader then names what is wrong with it.
fn element_format(ctx: &Ctx, current: &'static dyn Provider, obj: &RawObject) -> &'static dyn Provider {
    if let Some(forced) = ctx.forced {
        return forced;
    }
    if current.is_record(obj) || current.is_page(obj) {
        return current;
    }
    detect_object(obj).ok().flatten().unwrap_or(current)
}

fn same(a: &dyn Provider, b: &dyn Provider) -> bool {
    a.id() == b.id()
}

/// Reads one JSON document (a page, an array of pages or records, or one record). An empty
/// object is an empty response (proto3 JSON omits an empty list): no records.
fn read_document<'d>(ctx: &Ctx, doc: Doc<'d>, text: &'d str, line: Option<u64>, prefix: &str) -> Chunk {
    if matches!(&doc, Doc::Object(obj) if obj.is_empty()) {
        return Chunk::default();
    }
    let provider = match ctx.provider {
        Some(p) => p,
        None => match detect(&doc) {
            Ok(Some(p)) => p,
            Ok(None) => return Chunk::default(),
            Err(reason) => return Chunk::rejected(ctx, line, prefix.to_string(), reason, text.as_bytes()),
        },
    };
    let ctx = Ctx { provider: Some(provider), ..*ctx };
    match doc {
        Doc::Object(obj) if provider.is_page(&obj) => read_page(&ctx, provider, &obj, text, line, prefix),
        // A lone record: it is already parsed.
        Doc::Object(obj) => read_records(&ctx, provider, None, &[(obj, text)], line, prefix, None),
        Doc::Array(items) => {
            // Each element is parsed once and read with its own format (a list of pages of
            // several providers): pages one by one; runs of bare records of one format
            // between them share a page.
            let mut out = Chunk::default();
            let mut run: Vec<(RawObject<'d>, &'d str)> = Vec::new();
            let mut run_start = 0;
            let mut current = provider;
            let flush = |run: &mut Vec<(RawObject<'d>, &'d str)>, run_start: usize, p, out: &mut Chunk| {
                if !run.is_empty() {
                    let ctx = Ctx { provider: Some(p), ..ctx };
                    out.absorb(read_records(&ctx, p, None, run, line, prefix, Some(run_start)));
                    run.clear();
                }
            };
            for (i, item) in items.iter().enumerate() {
                let obj = match RawObject::parse(*item, "") {
                    Ok(obj) => obj,
                    Err(e) => {
                        flush(&mut run, run_start, current, &mut out);
                        let path = format!("{prefix}[{i}]");
                        out.absorb(Chunk::rejected(&ctx, line, path, e.reason, item.get().as_bytes()));
                        run_start = i + 1;
                        continue;
                    }
                };
                if obj.is_empty() {
                    // An empty response in a list of pages: no records.
                    flush(&mut run, run_start, current, &mut out);
                    run_start = i + 1;
                    continue;
                }
                let p = element_format(&ctx, current, &obj);
                if !same(p, current) {
                    flush(&mut run, run_start, current, &mut out);
                    run_start = i;
                    current = p;
                }
                if p.is_page(&obj) {
                    flush(&mut run, run_start, current, &mut out);
                    let own = Ctx { provider: Some(p), ..ctx };
                    out.absorb(read_page(&own, p, &obj, item.get(), line, &format!("{prefix}[{i}]")));
                    run_start = i + 1;
                } else {
                    run.push((obj, item.get()));
                }
            }
            flush(&mut run, run_start, current, &mut out);
            out
        }
    }
}

fn read_page<'d>(
    ctx: &Ctx,
    provider: &'static dyn Provider,
    page: &RawObject<'d>,
    raw: &'d str,
    line: Option<u64>,
    prefix: &str,
) -> Chunk {
    let key = provider.records_key();
    let records = match page.array(key) {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => return Chunk::rejected(ctx, line, join_path(prefix, &e.path), e.reason, raw.as_bytes()),
    };
    let page = PageRef { obj: page, raw, prefix };
    read_records(ctx, provider, Some(page), &records, line, &format!("{prefix}.{key}"), Some(0))
}

/// A page envelope with its raw text and JSON path.
#[derive(Clone, Copy)]
struct PageRef<'p, 'd> {
    obj: &'p RawObject<'d>,
    raw: &'d str,
    prefix: &'p str,
}

/// A record to read: raw (parsed when read) or already parsed (bare records, parsed during
/// detection), with its raw text for rejections.
trait RecordSource<'d>: Sync {
    fn object(&self) -> FieldResult<Cow<'_, RawObject<'d>>>;
    fn raw(&self) -> &'d str;
}

impl<'d> RecordSource<'d> for Raw<'d> {
    fn object(&self) -> FieldResult<Cow<'_, RawObject<'d>>> {
        RawObject::parse(*self, "").map(Cow::Owned)
    }
    fn raw(&self) -> &'d str {
        self.get()
    }
}

impl<'d> RecordSource<'d> for (RawObject<'d>, &'d str) {
    fn object(&self) -> FieldResult<Cow<'_, RawObject<'d>>> {
        Ok(Cow::Borrowed(&self.0))
    }
    fn raw(&self) -> &'d str {
        self.1
    }
}

/// Reads records that share one page. `first` is the index of `records[0]` in the array the
/// path prefix names, or `None` for a lone top-level record.
fn read_records<'d, R: RecordSource<'d>>(
    ctx: &Ctx,
    provider: &'static dyn Provider,
    page: Option<PageRef<'_, 'd>>,
    records: &[R],
    line: Option<u64>,
    prefix: &str,
    first: Option<usize>,
) -> Chunk {
    let path_of = |j: usize| match first {
        Some(f) => format!("{prefix}[{}]", f + j),
        None => prefix.to_string(),
    };
    let mut out = Chunk::default();
    let raws: Vec<&'d str> = records.iter().map(R::raw).collect();
    let per_task = records_per_task(records.len());
    // A marked non-finite float in the page's own fields spoils what it shares with every record.
    let page_marked = page.filter(|_| ctx.nonfinite).and_then(|p| {
        p.obj.fields().filter(|(k, _)| *k != provider.records_key()).find_map(|(k, v)| {
            let e = nonfinite_error(v.get())?;
            Some(FieldError::new(join_path(k, &e.path), e.reason))
        })
    });
    let result = match page_marked {
        Some(e) => Err(e),
        None => provider.with_page(page.map(|p| p.obj), &raws, ctx.options, ctx.whole, &mut |reader| {
            let parts: Vec<Chunk> = records
                .par_chunks(per_task)
                .enumerate()
                .map(|(c, chunk)| read_chunk(ctx, provider.id(), reader, chunk, line, &|j| path_of(c * per_task + j)))
                .collect();
            parts.into_iter().for_each(|p| out.absorb(p));
        }),
    };
    let Err(e) = result else { return out };
    // The page's shared part is unusable: every record of it is rejected with that reason.
    let page_path = join_path(page.map_or(prefix, |p| p.prefix), &e.path);
    let reason = format!("page: {}", e.reason);
    let mut out = Chunk::default();
    if records.is_empty() {
        let raw = page.map_or(&b""[..], |p| p.raw.as_bytes());
        return Chunk::rejected(ctx, line, page_path, reason, raw);
    }
    for r in records {
        out.absorb(Chunk::rejected(ctx, line, page_path.clone(), reason.clone(), r.raw().as_bytes()));
    }
    out
}

fn read_chunk<'d, R: RecordSource<'d>>(
    ctx: &Ctx,
    provider: &'static str,
    reader: &dyn RecordReader,
    chunk: &[R],
    line: Option<u64>,
    path_of: &dyn Fn(usize) -> String,
) -> Chunk {
    let mut out = Chunk::default();
    if crate::cancel::check().is_err() {
        return out;
    }
    let mut batch = CanonicalBatch::default();
    let mut rows: Vec<Row<'d>> = Vec::with_capacity(4);
    for (j, record) in chunk.iter().enumerate() {
        let index = j as u64;
        let raw = record.raw();
        let marked = if ctx.nonfinite { nonfinite_error(raw) } else { None };
        let result = match marked {
            Some(e) => Err(e),
            None => record.object().and_then(|rec| reader.rows(&rec, &mut rows)).and_then(|()| fits(&rows)),
        };
        match result {
            Ok(()) => {
                let first = batch.is_empty();
                for row in rows.drain(..) {
                    batch.push(provider, &row, ctx.source, index);
                }
                if first {
                    // As many rows for each record still to come as this one gave, in every
                    // column that holds a value (one still all null stays free).
                    batch.reserve_for(&CanonicalBatch::default(), batch.len() * (chunk.len() - j - 1));
                }
            }
            Err(FieldError { path, reason }) => {
                rows.clear();
                out.rejects.push(Rejection {
                    source: ctx.source,
                    source_index: index,
                    line,
                    provider: Some(provider),
                    path: join_path(&path_of(j), &path),
                    reason,
                    raw: cap_raw(raw.as_bytes()),
                });
            }
        }
    }
    out.records = chunk.len() as u64;
    RECORDS_DONE.fetch_add(out.records, Ordering::Relaxed);
    batch.shrink_to_fit();
    out.batches.push(batch);
    out
}

/// A record (or document) holding a float JSON cannot hold, which `dumps` marked: why it is
/// rejected, as a field error.
fn nonfinite_error(text: &str) -> Option<FieldError> {
    let (path, what) = crate::json::nonfinite_field(Raw::of_valid(text))?;
    Some(FieldError::new(path, format!("{what} is not a number JSON can hold (the float was NaN or infinite)")))
}

/// The rejection of an NDJSON line that holds a marked non-finite float.
fn nonfinite_rejected(ctx: &Ctx, line: Option<u64>, prefix: &str, text: &str) -> Option<Chunk> {
    let e = nonfinite_error(text)?;
    Some(Chunk::rejected(ctx, line, join_path(prefix, &e.path), e.reason, text.as_bytes()))
}

/// Rejects a record whose rows hold a text value too long for a string column (4 GiB).
fn fits(rows: &[Row]) -> FieldResult<()> {
    match rows.iter().find_map(Row::too_long) {
        None => Ok(()),
        Some(column) => Err(FieldError::new("", format!("the value for column {column} is longer than 4 GiB"))),
    }
}

fn join_path(prefix: &str, field: &str) -> String {
    if field.is_empty() {
        prefix.to_string()
    } else if field.starts_with('[') {
        format!("{prefix}{field}")
    } else {
        format!("{prefix}.{field}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Records, rows (record_id, source_index, usage_start) and rejections of a chunk.
    type Summary = (u64, Vec<(Option<String>, u64, i64)>, Vec<Rejection>);

    fn summary(c: &Chunk) -> Summary {
        let rows = c
            .batches
            .iter()
            .flat_map(|b| {
                (0..b.len()).map(move |i| (b.record_id.get(i).map(str::to_string), b.source_index[i], b.usage_start[i]))
            })
            .collect();
        (c.records, rows, c.rejects.clone())
    }

    fn ndjson() -> Vec<u8> {
        let mut text = String::from("\u{feff}");
        for i in 0..300 {
            match i % 37 {
                5 => text.push_str("{\"id\": \"bad\", \"createdAt\": \"yesterday\"}\n"),
                11 => text.push_str("   \n"),
                17 => text.push_str("{not json\n"),
                _ => text.push_str(&format!(
                    "{{\"id\":\"r{i}\",\"createdAt\":\"2024-03-10T22:{:02}:00Z\",\"stoppedAt\":\"2024-03-11T03:30:00Z\",\"environmentId\":\"e{i}\"}}\n",
                    i % 60
                )),
            }
        }
        text.push_str("{\"id\":\"last\",\"createdAt\":\"2024-03-10T22:00:00Z\",\"environmentId\":\"e\"}");
        text.into_bytes()
    }

    fn read_in_blocks(data: &[u8], name: &str, block: usize) -> Chunk {
        let path = std::env::temp_dir().join(format!("usagenorm-{}-{block}-{name}", std::process::id()));
        std::fs::File::create(&path).and_then(|mut f| f.write_all(data)).expect("write temp file");
        let options = ReadOptions::default();
        let mut ctx =
            Ctx { source: 0, provider: None, forced: None, options: &options, whole: &NO_SOURCE, nonfinite: false };
        let file = std::fs::File::open(&path).expect("open temp file");
        let out = read_large_file(&mut ctx, name, file, data.len(), block).expect("read");
        let _ = std::fs::remove_file(&path);
        assert_eq!(ctx.provider.map(|p| p.id()), Some("gitpod"));
        out
    }

    fn rows(n: usize, source: u32) -> CanonicalBatch {
        let mut b = CanonicalBatch::default();
        (0..n).for_each(|i| b.push("gitpod", &Row::new("m", i as i64), source, i as u64));
        b
    }

    /// The serial line split `split_lines` must agree with.
    fn lines_one_by_one(data: &[u8], lines_before: u64) -> (Vec<(u64, &[u8])>, u64) {
        let mut lines = Vec::new();
        let mut start = 0usize;
        let ends = memchr::memchr_iter(b'\n', data).chain(std::iter::once(data.len()));
        for (number, end) in (lines_before + 1..).zip(ends) {
            let line = &data[start..end];
            if !line.iter().all(u8::is_ascii_whitespace) {
                lines.push((number, line));
            }
            start = end + 1;
        }
        (lines, memchr::memchr_iter(b'\n', data).count() as u64)
    }

    #[test]
    fn lines_split_in_parallel_agree_with_one_by_one() {
        let mut text = Vec::new();
        for i in 0..60_000u32 {
            let line = match i % 7 {
                0 => String::new(),
                3 => " \r".to_string(),
                _ => format!("{{\"n\": {i}, \"pad\": \"{}\"}}", "x".repeat((i % 50) as usize)),
            };
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
        }
        assert!(text.len() > 1 << 20, "big enough to be split in pieces");
        for data in [&text[..], &text[..text.len() - 1], &text[..text.len() / 2 + 3], &text[..0], b"\n\n", b"{}"] {
            for before in [0, 41] {
                assert_eq!(split_lines(data, before), lines_one_by_one(data, before), "{} bytes", data.len());
            }
        }
    }

    #[test]
    fn small_batches_are_merged_into_chunks_and_big_ones_kept_as_they_are() {
        let mut out = Vec::new();
        push_batch(&mut out, rows(3, 0), 0);
        push_batch(&mut out, CanonicalBatch::default(), 0);
        push_batch(&mut out, rows(2, 1), 10);
        assert_eq!(out.len(), 1, "merged");
        assert_eq!(out[0].source_index, vec![0, 1, 2, 10, 11]);
        assert_eq!(out[0].source, vec![0, 0, 0, 1, 1]);
        push_batch(&mut out, rows(CHUNK_ROWS / 2, 2), 0);
        assert_eq!(out.len(), 2, "a big batch is not copied");
        push_batch(&mut out, rows(CHUNK_ROWS / 2 + 1, 3), 0);
        push_batch(&mut out, rows(1, 4), 0);
        assert_eq!(
            out.iter().map(CanonicalBatch::len).collect::<Vec<_>>(),
            vec![5, CHUNK_ROWS / 2, CHUNK_ROWS / 2 + 2]
        );
        let full = out.len() - 1;
        out[full].append(rows(CHUNK_ROWS, 5), 0);
        push_batch(&mut out, rows(1, 6), 0);
        assert_eq!(out.last().map(CanonicalBatch::len), Some(1), "a full batch takes no more rows");
        assert_eq!(
            out.iter().map(|b| b.usage_start.len()).sum::<usize>(),
            5 + CHUNK_ROWS / 2 + CHUNK_ROWS / 2 + 2 + CHUNK_ROWS + 1
        );
    }

    #[test]
    fn ndjson_read_in_blocks_equals_reading_it_whole() {
        let data = ndjson();
        let options = ReadOptions::default();
        let mut ctx =
            Ctx { source: 0, provider: None, forced: None, options: &options, whole: &NO_SOURCE, nonfinite: false };
        let whole = summary(&read_ndjson(&mut ctx, &data[3..], 0).0);
        assert_eq!(whole.0, 293, "300 lines + the last, minus the blank ones");
        assert!(whole.2.iter().any(|r| r.line == Some(18) && r.reason.starts_with("malformed JSON")));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).expect("gzip");
        let gz = gz.finish().expect("gzip");
        for block in [1, 7, 64, 1000, 1 << 20] {
            assert_eq!(summary(&read_in_blocks(&data, "x.ndjson", block)), whole, "block {block}");
            assert_eq!(summary(&read_in_blocks(&gz, "x.ndjson.gz", block)), whole, "gzip, block {block}");
        }
    }

    #[test]
    fn a_large_json_document_is_read_whole() {
        let data = std::fs::read("examples/exports/gitpod.json").expect("sample");
        let options = ReadOptions::default();
        let mut ctx =
            Ctx { source: 0, provider: None, forced: None, options: &options, whole: &NO_SOURCE, nonfinite: false };
        let whole = summary(&read_undecided(&mut ctx, &data));
        assert!(!whole.1.is_empty());
        assert_eq!(summary(&read_in_blocks(&data, "x.json", 16)), whole);
    }

    #[test]
    fn a_plain_file_read_in_parallel_pieces_arrives_whole_and_in_order() {
        let data: Vec<u8> = (0..2 * READ_PIECE + 12_345).map(|i| (i * 7 % 251) as u8).collect();
        let path = std::env::temp_dir().join(format!("usagenorm-{}-pieces", std::process::id()));
        std::fs::write(&path, &data).expect("write temp file");
        let file = std::fs::File::open(&path).expect("open temp file");
        let (mut stream, gzip) = Stream::open(&file, data.len()).expect("open");
        assert!(!gzip);
        let mut buf = Vec::new();
        assert_eq!(stream.fill(&mut buf, 1000).expect("read"), 1000);
        stream.read_to_end(&mut buf).expect("read");
        assert_eq!(stream.fill(&mut buf, 10).expect("read"), 0);
        assert!(buf == data, "the pieces arrive whole and in order");
        // A file that is shorter than it was when it was opened is an error, not a short read.
        let (mut stream, _) = Stream::open(&file, data.len() + 10).expect("open");
        let e = stream.read_to_end(&mut Vec::new()).expect_err("shorter file");
        assert!(e.to_string().contains("became shorter"), "{e}");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_broken_gzip_stream_keeps_the_lines_before_it() {
        let data = ndjson();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let cut = &gz[..gz.len() * 2 / 3];
        let out = read_in_blocks(cut, "x.ndjson.gz", 64);
        let last = out.rejects.last().expect("a rejection for the broken stream");
        assert!(last.reason.starts_with("not a readable gzip stream"), "{}", last.reason);
        assert!(out.records > 10 && out.records < 293);
        assert_eq!(out.records, out.rejects.len() as u64 + out.batches.iter().map(|b| b.len() as u64).sum::<u64>());
    }
}
