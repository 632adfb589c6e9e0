//! Rows and rejections as they are read: a part of a source (`Chunk`), a group of sources read by one
//! task (`Group`), and batches merged into frame chunks in output order (`push_batch`).

use super::*;

/// The rows of a group of consecutive sources, and what each source gave.
pub(super) struct Group {
    pub(super) batches: Vec<CanonicalBatch>,
    pub(super) rejects: Vec<Rejection>,
    /// Per source: its format, its records, its rejections and its rows.
    pub(super) read: Vec<(Option<&'static str>, u64, u64, u64)>,
    /// With `NormalizeOptions::digests`, its records' digests (first rows counted from the
    /// group's start) in place of its rows.
    pub(super) digests: Vec<Digest>,
}

/// Reads the sources `range` one after another, merging their rows as they arrive.
/// With `digests`, the group's records are reduced to their digests once it is read.
pub(super) fn read_group(
    inputs: &[Input],
    range: std::ops::Range<usize>,
    sizes: &[u64],
    base: &Ctx,
    digests: bool,
) -> Result<Group> {
    let mut group =
        Group { batches: Vec::new(), rejects: Vec::new(), read: Vec::with_capacity(range.len()), digests: Vec::new() };
    for (k, input) in range.clone().zip(&inputs[range]) {
        let (chunk, provider) = read_source(k as u32, input, base)?;
        let size = sizes.get(k).copied().unwrap_or(0);
        crate::cancel::report(|p| {
            p.sources.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            p.bytes.fetch_add(size, std::sync::atomic::Ordering::Relaxed);
        });
        let rows = chunk.batches.iter().map(|b| b.len() as u64).sum();
        group.read.push((provider, chunk.records, chunk.rejects.len() as u64, rows));
        chunk.batches.into_iter().for_each(|b| push_batch(&mut group.batches, b, 0));
        group.rejects.extend(chunk.rejects);
    }
    if digests {
        // Digested while its rows are at hand, and the rows dropped: a call that digests holds
        // one group's rows per thread, not every row it reads.
        group.digests = record_digests(&group.batches);
        group.batches = Vec::new();
    }
    Ok(group)
}

/// The output of part of a source, with `source_index` counted from the part's start.
#[derive(Debug, Default)]
pub(super) struct Chunk {
    pub(super) batches: Vec<CanonicalBatch>,
    pub(super) rejects: Vec<Rejection>,
    pub(super) records: u64,
}

impl Chunk {
    /// Appends a later part, shifting its indices past this part's records.
    pub(super) fn absorb(&mut self, mut later: Chunk) {
        let offset = self.records;
        later.batches.into_iter().for_each(|b| push_batch(&mut self.batches, b, offset));
        later.rejects.iter_mut().for_each(|r| r.source_index += offset);
        self.rejects.append(&mut later.rejects);
        self.records += later.records;
    }

    /// Appends the rows of the next record, read from a bare record.
    pub(super) fn push_rows(&mut self, provider: &'static str, rows: &mut Vec<Row>, kept: &Kept, source: u32) {
        if self.batches.last().is_none_or(|b| b.len() >= CHUNK_ROWS) {
            self.batches.push(CanonicalBatch::default());
        }
        if let Some(batch) = self.batches.last_mut() {
            push_record(batch, provider, rows, kept, source, self.records);
        }
        self.records += 1;
    }

    /// A part that is one rejected record or document.
    pub(super) fn rejected(
        ctx: &Ctx,
        line: Option<u64>,
        kind: ErrorKind,
        path: String,
        reason: String,
        raw: &[u8],
    ) -> Chunk {
        Chunk {
            batches: Vec::new(),
            rejects: vec![Rejection {
                source: ctx.source,
                kind,
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

/// Appends a record's rows (taking them from `rows`), storing the columns `kept` leaves out
/// as nulls where they may be null.
pub(super) fn push_record(
    batch: &mut CanonicalBatch,
    provider: &'static str,
    rows: &mut Vec<Row>,
    kept: &Kept,
    source: u32,
    index: u64,
) {
    let project = kept.projects();
    // Read where they are (not moved out one by one), then dropped.
    for row in rows.iter_mut() {
        if project {
            row.clear_unkept(kept);
        }
        batch.push(provider, row, source, index);
    }
    rows.clear();
}

/// Appends a batch (its source indices shifted by `offset`) to batches in output order, merging
/// small ones: a batch of fewer than `CHUNK_ROWS / 4` rows is copied into the last batch while
/// that has fewer than `CHUNK_ROWS` rows, and freed; a bigger one is kept as it is. A batch
/// that is followed by another will not grow again and gives back its spare capacity.
pub(super) fn push_batch(batches: &mut Vec<CanonicalBatch>, mut b: CanonicalBatch, offset: u64) {
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

pub(super) fn cap_raw(raw: &[u8]) -> String {
    if raw.len() <= MAX_RAW {
        String::from_utf8_lossy(raw).into_owned()
    } else {
        format!("{}… ({} bytes in all)", String::from_utf8_lossy(&raw[..MAX_RAW]), raw.len())
    }
}
