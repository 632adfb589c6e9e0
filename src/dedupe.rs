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

macro_rules! content_columns {
    ($m:ident) => {
        $m!(str record_id);
        $m!(str account_id);
        $m!(str customer_id);
        $m!(str project_id);
        $m!(str user_id);
        $m!(str resource_id);
        $m!(str resource_name);
        $m!(str resource_type);
        $m!(str metric);
        $m!(str sku);
        $m!(str unit);
        $m!(str currency);
        $m!(str status);
        $m!(str tags);
        $m!(str provider);
        $m!(str charge_type);
        $m!(vec usage_start);
        $m!(opt usage_end);
        $m!(opt cost);
        $m!(opt unit_price);
        $m!(vec billable);
    };
}

fn hash_row(b: &CanonicalBatch, i: usize, h: &mut Fx) {
    macro_rules! hash_col {
        (str $f:ident) => {
            b.$f.get(i).hash(h)
        };
        (vec $f:ident) => {
            b.$f[i].hash(h)
        };
        (opt $f:ident) => {
            b.$f.get(i).hash(h)
        };
    }
    content_columns!(hash_col);
    b.quantity.get(i).map(f64::to_bits).hash(h);
}

fn rows_equal(a: &CanonicalBatch, i: usize, b: &CanonicalBatch, j: usize) -> bool {
    macro_rules! eq_col {
        (str $f:ident) => {
            if a.$f.get(i) != b.$f.get(j) {
                return false;
            }
        };
        (vec $f:ident) => {
            if a.$f[i] != b.$f[j] {
                return false;
            }
        };
        (opt $f:ident) => {
            if a.$f.get(i) != b.$f.get(j) {
                return false;
            }
        };
    }
    content_columns!(eq_col);
    a.quantity.get(i).map(f64::to_bits) == b.quantity.get(j).map(f64::to_bits)
}

fn same_content(batches: &[CanonicalBatch], x: &Rec, y: &Rec) -> bool {
    x.hash == y.hash
        && x.end - x.start == y.end - y.start
        && (0..x.end - x.start).all(|k| rows_equal(&batches[x.batch], x.start + k, &batches[y.batch], y.start + k))
}

/// Splits every batch into records, in output order.
fn records(batches: &[CanonicalBatch]) -> Vec<Rec> {
    batches
        .par_iter()
        .enumerate()
        .map(|(bi, b)| {
            let mut out = Vec::new();
            let mut start = 0;
            while start < b.len() {
                let mut end = start + 1;
                while end < b.len() && b.source[end] == b.source[start] && b.source_index[end] == b.source_index[start]
                {
                    end += 1;
                }
                out.push(Rec { batch: bi, start, end, hash: 0 });
                start = end;
            }
            out
        })
        .flatten_iter()
        .collect()
}

fn content_hash(batches: &[CanonicalBatch], rec: &Rec) -> u64 {
    let mut h = Fx::default();
    (rec.start..rec.end).for_each(|i| hash_row(&batches[rec.batch], i, &mut h));
    h.finish()
}

/// A record's dedupe key: `(provider, record_id)`, or for records without an id
/// `(provider, content hash)`.
type DedupeKey<'b> = (&'b str, Option<&'b str>);

fn key<'b>(batches: &'b [CanonicalBatch], r: &Rec) -> DedupeKey<'b> {
    let b = &batches[r.batch];
    (b.provider.get(r.start).unwrap_or_default(), b.record_id.get(r.start))
}

/// Groups of records sharing a key, as (has_id, members in output order); singletons are not
/// kept. Every record's key is hashed in parallel, the `(hash, record)` pairs are sorted in
/// parallel (16 bytes per record, the only per-record memory besides `recs`), and each run of
/// equal hashes, which is almost always one record, is split by the exact key.
fn repeated_groups(batches: &[CanonicalBatch], recs: &mut [Rec]) -> Vec<(bool, Vec<usize>)> {
    // Content hashes are the key of records without an id; computed in parallel.
    recs.par_iter_mut().for_each(|r| {
        if batches[r.batch].record_id.get(r.start).is_none() {
            r.hash = content_hash(batches, r);
        }
    });
    let recs: &[Rec] = recs;
    let mut order: Vec<(u64, usize)> = recs
        .par_iter()
        .enumerate()
        .map(|(i, r)| match key(batches, r) {
            (provider, Some(id)) => {
                let mut h = Fx::default();
                (provider, id).hash(&mut h);
                (h.finish(), i)
            }
            (_, None) => (r.hash, i),
        })
        .collect();
    order.par_sort_unstable();
    let runs: Vec<&[(u64, usize)]> = order.chunk_by(|a, b| a.0 == b.0).filter(|run| run.len() > 1).collect();
    let mut groups: Vec<(bool, Vec<usize>)> = runs
        .par_iter()
        .flat_map_iter(|run| {
            // Members stay in output order: the pairs sort by record after the hash.
            let mut split: Vec<(DedupeKey, Vec<usize>)> = Vec::new();
            for &(_, r) in run.iter() {
                let k = key(batches, &recs[r]);
                match split.iter_mut().find(|(sk, _)| *sk == k) {
                    Some((_, members)) => members.push(r),
                    None => split.push((k, vec![r])),
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
    let mut recs = records(batches);
    let mut result = DedupeResult::default();
    let mut drop: Vec<usize> = Vec::new();
    {
        let bs: &[CanonicalBatch] = batches;
        let groups = repeated_groups(bs, &mut recs);
        // Records with ids that repeat need their content hash too.
        for (_, group) in &groups {
            for &r in group {
                if recs[r].hash == 0 {
                    recs[r].hash = content_hash(bs, &recs[r]);
                }
            }
        }
        for (has_id, group) in groups {
            // Distinct contents in first-seen order; later identical copies are duplicates.
            let mut versions: Vec<usize> = Vec::new();
            for &r in &group {
                if versions.iter().any(|&v| same_content(bs, &recs[v], &recs[r])) {
                    drop.push(r);
                    *result.duplicates.entry(bs[recs[r].batch].source[recs[r].start]).or_default() += 1;
                } else {
                    versions.push(r);
                }
            }
            if !has_id || versions.len() < 2 {
                continue;
            }
            let revision = |r: usize| bs[recs[r].batch].revision.get(recs[r].start);
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
                        drop.push(v);
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
        for &r in &drop {
            let rec = &recs[r];
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
}
