//! Deduplication of records that arrive more than once (overlapping pages, re-exports).
//!
//! Rules (README "Duplicates"):
//! - A record is all rows from one (source, source_index). Its content is every canonical
//!   column but `source` and `source_index`.
//! - Records with the same provider and record_id and identical content: the first (in output
//!   order) is kept, the rest are `duplicates`.
//! - Same provider and record_id, different content, is a conflict. When every version carries
//!   a revision (Suger: lastUpdateTime; Exabits: total_uptime, a running total) the highest
//!   revision wins (the later one on a tie) and the others are `superseded`; otherwise every
//!   version is kept. Either way each version is listed in the conflicts report.
//! - Records without a record_id are duplicates only when their content is identical.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use crate::hash::Fx;

use rayon::prelude::*;

use crate::schema::CanonicalBatch;

/// One version of a conflicting record, as reported to the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub provider: &'static str,
    pub record_id: String,
    pub source: u32,
    pub source_index: u64,
    pub revision: Option<i64>,
    /// `kept`, `superseded` (an older revision), or `kept_unresolved` (no rule applies).
    pub resolution: &'static str,
}

/// What deduplication removed, per source index.
#[derive(Debug, Default)]
pub struct DedupeResult {
    pub conflicts: Vec<Conflict>,
    /// Per source: identical copies dropped.
    pub duplicates: HashMap<u32, u64>,
    /// Per source: older revisions dropped.
    pub superseded: HashMap<u32, u64>,
}

/// A record's place: batch, and its rows `start..end`.
#[derive(Debug, Clone, Copy)]
struct Rec {
    batch: usize,
    start: usize,
    end: usize,
    hash: u64,
}

fn same_content(batches: &[CanonicalBatch], x: &Rec, y: &Rec) -> bool {
    x.hash == y.hash
        && x.end - x.start == y.end - y.start
        && (0..x.end - x.start).all(|k| batches[x.batch].same_content(x.start + k, &batches[y.batch], y.start + k))
}

/// A record's place packed into one number, batch in the high half and first row in the low
/// half, so places sort in output order.
type Loc = u64;

fn loc(batch: usize, start: usize) -> Loc {
    ((batch as u64) << 32) | start as u64
}

/// Whether rows `i` and `j` of a batch come from the same record.
fn same_record(b: &CanonicalBatch, i: usize, j: usize) -> bool {
    b.source[i] == b.source[j] && b.source_index[i] == b.source_index[j]
}

/// The first row of each record of a batch.
fn starts(b: &CanonicalBatch) -> impl Iterator<Item = usize> + '_ {
    (0..b.len()).filter(move |&i| i == 0 || !same_record(b, i - 1, i))
}

/// The record at `loc`: its rows run on while `source` and `source_index` stay the same.
fn rec_at(batches: &[CanonicalBatch], at: Loc) -> Rec {
    let (batch, start) = ((at >> 32) as usize, (at & u64::from(u32::MAX)) as usize);
    let b = &batches[batch];
    let mut end = start + 1;
    while end < b.len() && same_record(b, start, end) {
        end += 1;
    }
    Rec { batch, start, end, hash: 0 }
}

fn content_hash(batches: &[CanonicalBatch], rec: &Rec) -> u64 {
    let mut h = Fx::default();
    (rec.start..rec.end).for_each(|i| batches[rec.batch].hash_content(i, &mut h));
    h.finish()
}

/// A record's dedupe key: `(provider, record_id)`, or for records without an id
/// `(provider, content hash)`.
type DedupeKey<'b> = (&'b str, Option<&'b str>);

fn key<'b>(batches: &'b [CanonicalBatch], r: &Rec) -> DedupeKey<'b> {
    let b = &batches[r.batch];
    (b.provider.get(r.start).unwrap_or_default(), b.record_id.get(r.start))
}

/// The hash of a record's key: of `(provider, record_id)`, or its content hash without an id.
fn key_hash(batches: &[CanonicalBatch], r: &Rec) -> u64 {
    match key(batches, r) {
        (provider, Some(id)) => {
            let mut h = Fx::default();
            (provider, id).hash(&mut h);
            h.finish()
        }
        (_, None) => content_hash(batches, r),
    }
}

/// Groups of records sharing a key, as (has_id, members in output order); singletons are not
/// kept. Every record's key is hashed in parallel, batch by batch, into `(hash, place)` pairs
/// (16 bytes per record: all the memory dedupe needs per record); the pairs are sorted in
/// parallel and each run of equal hashes, almost always a single record, is split by the
/// exact key.
fn repeated_groups(batches: &[CanonicalBatch]) -> Vec<(bool, Vec<Loc>)> {
    // Filled in place, batch by batch, so the pairs are never held twice.
    let counts: Vec<usize> = batches.par_iter().map(|b| starts(b).count()).collect();
    let mut order: Vec<(u64, Loc)> = vec![(0, 0); counts.iter().sum()];
    let mut parts: Vec<&mut [(u64, Loc)]> = Vec::with_capacity(batches.len());
    let mut rest: &mut [(u64, Loc)] = &mut order;
    for &n in &counts {
        let (part, tail) = rest.split_at_mut(n);
        parts.push(part);
        rest = tail;
    }
    parts.into_par_iter().zip(batches.par_iter()).enumerate().for_each(|(bi, (part, b))| {
        for (slot, start) in part.iter_mut().zip(starts(b)) {
            let r = rec_at(batches, loc(bi, start));
            *slot = (key_hash(batches, &r), loc(bi, start));
        }
    });
    order.par_sort_unstable();
    let runs: Vec<&[(u64, Loc)]> = order.chunk_by(|a, b| a.0 == b.0).filter(|run| run.len() > 1).collect();
    let mut groups: Vec<(bool, Vec<Loc>)> = runs
        .par_iter()
        .flat_map_iter(|run| {
            // Members stay in output order: the pairs sort by place after the hash.
            let mut split: Vec<(DedupeKey, Vec<Loc>)> = Vec::new();
            for &(_, at) in run.iter() {
                let k = key(batches, &rec_at(batches, at));
                match split.iter_mut().find(|(sk, _)| *sk == k) {
                    Some((_, members)) => members.push(at),
                    None => split.push((k, vec![at])),
                }
            }
            split.into_iter().filter(|(_, m)| m.len() > 1).map(|((_, id), m)| (id.is_some(), m))
        })
        .collect();
    // Deterministic report order: by each group's first record.
    groups.sort_by_key(|(_, g)| g[0]);
    groups
}

/// Removes duplicate and superseded records from `batches`, in place.
pub fn dedupe(batches: &mut [CanonicalBatch]) -> DedupeResult {
    let mut result = DedupeResult::default();
    let mut drop: Vec<Rec> = Vec::new();
    {
        let bs: &[CanonicalBatch] = batches;
        for (has_id, group) in repeated_groups(bs) {
            // The group's records with their content hashes.
            let recs: Vec<Rec> = group
                .iter()
                .map(|&at| {
                    let mut r = rec_at(bs, at);
                    r.hash = content_hash(bs, &r);
                    r
                })
                .collect();
            // Distinct contents in first-seen order; later identical copies are duplicates.
            let mut versions: Vec<usize> = Vec::new();
            for (i, r) in recs.iter().enumerate() {
                if versions.iter().any(|&v| same_content(bs, &recs[v], r)) {
                    drop.push(*r);
                    *result.duplicates.entry(bs[r.batch].source[r.start]).or_default() += 1;
                } else {
                    versions.push(i);
                }
            }
            if !has_id || versions.len() < 2 {
                continue;
            }
            let revision = |v: usize| bs[recs[v].batch].revision.get(recs[v].start);
            let winner = if versions.iter().all(|&v| revision(v).is_some()) {
                versions.iter().copied().max_by_key(|&v| (revision(v), v))
            } else {
                None
            };
            for &v in &versions {
                let rec = &recs[v];
                let b = &bs[rec.batch];
                let resolution = match winner {
                    None => "kept_unresolved",
                    Some(w) if w == v => "kept",
                    Some(_) => {
                        drop.push(*rec);
                        *result.superseded.entry(b.source[rec.start]).or_default() += 1;
                        "superseded"
                    }
                };
                result.conflicts.push(Conflict {
                    provider: b.provider.get(rec.start).unwrap_or_default(),
                    record_id: b.record_id.get(rec.start).unwrap_or_default().to_string(),
                    source: b.source[rec.start],
                    source_index: b.source_index[rec.start],
                    revision: revision(v),
                    resolution,
                });
            }
        }
    }
    if !drop.is_empty() {
        let mut keep: Vec<Vec<bool>> = batches.iter().map(|b| vec![true; b.len()]).collect();
        for rec in &drop {
            keep[rec.batch][rec.start..rec.end].iter_mut().for_each(|k| *k = false);
        }
        for (b, k) in batches.iter_mut().zip(&keep) {
            if k.iter().any(|x| !x) {
                *b = b.filter(k);
            }
        }
    }
    result
}

/// A record reduced to what a dedupe across calls compares (a scan's streamed dedupe,
/// `python/usagenorm/_dedupe.py`): its first row (in the call's output order), its rows, a
/// 128-bit hash of its content (every content column of its rows, in order), a 128-bit hash
/// of its key (`(provider, record_id)`; its content's without an id) and its revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    pub first_row: u64,
    pub rows: u32,
    pub content: u128,
    pub has_id: bool,
    pub key: u128,
    pub revision: Option<i64>,
}

/// Writes what `Hash` feeds a hasher into a byte buffer: the whole encoding of a record, hashed
/// at once by xxh3-128. (`Hash` writes strings with a terminator and options with a tag, so
/// different values give different bytes.)
struct Encoded(Vec<u8>);

impl Hasher for Encoded {
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
    fn finish(&self) -> u64 {
        0
    }
}

/// The digest of every record of `batches`, in output order (batches in parallel). A record is
/// its consecutive rows of one (source, source_index), within one batch (as `dedupe` reads them).
pub fn record_digests(batches: &[CanonicalBatch]) -> Vec<Digest> {
    let firsts: Vec<u64> = batches
        .iter()
        .scan(0u64, |row, b| {
            let at = *row;
            *row += b.len() as u64;
            Some(at)
        })
        .collect();
    batches
        .par_iter()
        .enumerate()
        .zip(firsts)
        .flat_map_iter(|((batch, b), first)| {
            let mut buf = Encoded(Vec::with_capacity(1024));
            let starts: Vec<usize> = starts(b).chain([b.len()]).collect();
            let spans: Vec<(usize, usize)> = starts.windows(2).map(|w| (w[0], w[1])).collect();
            spans.into_iter().map(move |(start, end)| {
                buf.0.clear();
                (start..end).for_each(|i| b.hash_content(i, &mut buf));
                let content = xxhash_rust::xxh3::xxh3_128(&buf.0);
                let (provider, id) = key(batches, &Rec { batch, start, end, hash: 0 });
                let key = match id {
                    Some(id) => {
                        buf.0.clear();
                        (provider, id).hash(&mut buf);
                        xxhash_rust::xxh3::xxh3_128(&buf.0)
                    }
                    None => content,
                };
                Digest {
                    first_row: first + start as u64,
                    rows: (end - start) as u32,
                    content,
                    has_id: id.is_some(),
                    key,
                    revision: b.revision.get(start),
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Row;

    fn batch(rows: &[(Option<&str>, u64, f64, Option<i64>)]) -> CanonicalBatch {
        let mut b = CanonicalBatch::default();
        for (id, idx, q, rev) in rows {
            let mut r = Row::new("m", 0);
            r.record_id = id.map(Into::into);
            r.quantity = Some(*q);
            r.revision = *rev;
            b.push("p", &r, 0, *idx);
        }
        b
    }

    #[test]
    fn digests_match_copies_wherever_they_are_and_nothing_else() {
        let row = |id: Option<&'static str>, idx: u64, q: f64, metric: &'static str, tags: &str| {
            let mut r = Row::new(metric, 0);
            r.record_id = id.map(Into::into);
            r.quantity = Some(q);
            r.tags = tags.to_string();
            (r, idx)
        };
        let push = |rows: &[(Row, u64)], source: u32| {
            let mut b = CanonicalBatch::default();
            rows.iter().for_each(|(r, idx)| b.push("p", r, source, *idx));
            b
        };
        // Batch 0: record a (two rows), b, then one without an id. Batch 1 (another source):
        // the same three, then a with its rows swapped, a with other tags, -0.0 for 0.0.
        let a = [row(Some("a"), 0, 1.0, "x", "{}"), row(Some("a"), 0, 2.0, "y", "{}")];
        let b = row(Some("b"), 1, 0.0, "x", "{}");
        let none = row(None, 2, 3.0, "x", "{\"k\":1}");
        let first = push(&[a[0].clone(), a[1].clone(), b.clone(), none.clone()], 0);
        let swapped = [row(Some("a"), 3, 2.0, "y", "{}"), row(Some("a"), 3, 1.0, "x", "{}")];
        let tagged = [row(Some("a"), 4, 1.0, "x", "{\"t\":1}"), row(Some("a"), 4, 2.0, "y", "{}")];
        let negative = row(Some("b"), 5, -0.0, "x", "{}");
        let mut later = vec![a[0].clone(), a[1].clone(), b, none];
        later.extend(swapped);
        later.extend(tagged);
        later.push(negative);
        let batches = vec![first, push(&later, 1)];
        let d = record_digests(&batches);
        assert_eq!(
            d.iter().map(|d| (d.first_row, d.rows)).collect::<Vec<_>>(),
            [(0, 2), (2, 1), (3, 1), (4, 2), (6, 1), (7, 1), (8, 2), (10, 2), (12, 1)]
        );
        // Copies in another batch and source: the same digests.
        for k in 0..3 {
            assert_eq!((d[k].content, d[k].key, d[k].has_id), (d[k + 3].content, d[k + 3].key, d[k + 3].has_id));
        }
        // One key for a's versions, other contents; a record without an id is keyed by content.
        assert!(d[6].key == d[0].key && d[7].key == d[0].key);
        let contents: std::collections::HashSet<u128> = [0, 1, 2, 6, 7, 8].iter().map(|&k| d[k].content).collect();
        assert_eq!(contents.len(), 6);
        assert!(!d[2].has_id && d[2].key == d[2].content && d[0].key != d[0].content);
    }

    #[test]
    fn identical_copies_are_dropped_once() {
        let mut bs = vec![batch(&[
            (Some("a"), 0, 1.0, None),
            (Some("a"), 1, 1.0, None),
            (None, 2, 5.0, None),
            (None, 3, 5.0, None),
        ])];
        let r = dedupe(&mut bs);
        assert_eq!(bs[0].source_index, vec![0, 2]);
        assert_eq!(r.duplicates.get(&0), Some(&2));
        assert!(r.conflicts.is_empty());
    }

    #[test]
    fn highest_revision_wins_a_conflict() {
        let mut bs = vec![batch(&[(Some("a"), 0, 1.0, Some(20)), (Some("a"), 1, 2.0, Some(10))])];
        let r = dedupe(&mut bs);
        assert_eq!(bs[0].source_index, vec![0]);
        assert_eq!(r.conflicts.iter().map(|c| c.resolution).collect::<Vec<_>>(), vec!["kept", "superseded"]);
    }

    #[test]
    fn conflicts_without_revisions_keep_both() {
        let mut bs = vec![batch(&[(Some("a"), 0, 1.0, None), (Some("a"), 1, 2.0, None)])];
        let r = dedupe(&mut bs);
        assert_eq!(bs[0].len(), 2);
        assert_eq!(r.conflicts.len(), 2);
        assert!(r.conflicts.iter().all(|c| c.resolution == "kept_unresolved"));
    }

    #[test]
    fn records_of_several_rows_are_matched_across_batches() {
        // Record 0 of each batch has two rows (a Suger group); batch 1 repeats batch 0's.
        let rows = |ids: &[(&str, u64)], source: u32| {
            let mut b = CanonicalBatch::default();
            for (id, idx) in ids {
                let mut r = Row::new("m", 0);
                r.record_id = Some((*id).into());
                b.push("p", &r, source, *idx);
            }
            b
        };
        let mut bs = vec![rows(&[("g", 0), ("g", 0), ("x", 1)], 0), rows(&[("g", 0), ("g", 0), ("y", 1)], 1)];
        let r = dedupe(&mut bs);
        assert_eq!(bs.iter().map(CanonicalBatch::len).collect::<Vec<_>>(), vec![3, 1]);
        assert_eq!(bs[1].record_id.get(0), Some("y"));
        assert_eq!(r.duplicates.get(&1), Some(&1));
        // A copy with one row less is a different version of "g", not a duplicate.
        let mut bs = vec![rows(&[("g", 0), ("g", 0)], 0), rows(&[("g", 0)], 1)];
        let r = dedupe(&mut bs);
        assert_eq!(bs.iter().map(CanonicalBatch::len).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(r.conflicts.len(), 2);
    }
}
