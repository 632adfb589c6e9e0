//! Splits usage records across calendar buckets and sums them per (bucket, group), in
//! parallel and deterministically.
//!
//! - A record spanning [usage_start, usage_end) gives each bucket it overlaps
//!   `quantity × overlap / span` and the same share of its cost. Cost shares are exact: each
//!   is floored, and the remaining units of 10⁻⁹ go to the largest remainders (the earlier
//!   piece on a tie), so they add up to the record's cost to the last digit.
//! - A point record (end = start) goes whole into the bucket holding its start; so does a
//!   running record (end null) unless `as_of` gives it an end, and those are counted.
//! - `start` / `end` clip: only the part of a record inside [start, end) is counted.
//! - Sums are exact and order-free: cost in i128, quantity in a 256-bit fixed-point
//!   accumulator (`ExactSum`) rounded to f64 once, so the result is identical, bit for bit,
//!   whatever the row order or the number of threads.

use std::cmp::Ordering;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::hash::FastMap;
use crate::schema::HOURS;
use crate::time::{Calendar, Every, MICROS_PER_HOUR};

mod exact;
pub use exact::ExactSum;
use exact::EXACT_LIMIT;

/// A borrowed column with optional validity (`None`: no nulls).
#[derive(Debug, Clone, Copy)]
pub struct Nullable<'a, T> {
    pub values: &'a [T],
    pub valid: Option<&'a [bool]>,
}

impl<T: Copy> Nullable<'_, T> {
    #[inline]
    pub fn get(&self, i: usize) -> Option<T> {
        match self.valid {
            Some(v) if !v[i] => None,
            _ => Some(self.values[i]),
        }
    }
}

/// A string column encoded as codes into a dictionary (code order = first appearance).
#[derive(Debug, Clone, Default)]
pub struct KeyColumn {
    pub name: String,
    pub codes: Vec<u32>,
    pub values: Vec<Option<String>>,
}

impl KeyColumn {
    /// Encodes a column of optional strings.
    pub fn encode<'a>(name: &str, rows: impl Iterator<Item = Option<&'a str>>) -> KeyColumn {
        KeyColumn::from_keys(name, rows, |v| v.map(str::to_owned))
    }

    /// Encodes a column given as hashable keys (codes in order of first appearance); `value`
    /// gives a key's text the first time it is seen. The binding reads Arrow views as keys.
    pub fn from_keys<K: Copy + Eq + std::hash::Hash>(
        name: &str,
        keys: impl Iterator<Item = K>,
        mut value: impl FnMut(K) -> Option<String>,
    ) -> KeyColumn {
        let mut seen: FastMap<K, u32> = FastMap::default();
        let mut values = Vec::new();
        let mut last: Option<(K, u32)> = None;
        let codes = keys
            .map(|k| match last {
                Some((lk, lc)) if lk == k => lc,
                _ => {
                    let code = *seen.entry(k).or_insert_with(|| {
                        values.push(value(k));
                        (values.len() - 1) as u32
                    });
                    last = Some((k, code));
                    code
                }
            })
            .collect();
        KeyColumn { name: name.to_string(), codes, values }
    }

    /// A column with one value for `rows` rows.
    pub fn constant(name: &str, value: Option<&str>, rows: usize) -> KeyColumn {
        KeyColumn { name: name.to_string(), codes: vec![0; rows], values: vec![value.map(str::to_owned)] }
    }
}

/// The usage columns `aggregate` reads; all have the same length.
#[derive(Debug, Clone, Copy)]
pub struct UsageColumns<'a> {
    pub usage_start: Nullable<'a, i64>,
    pub usage_end: Nullable<'a, i64>,
    pub quantity: Nullable<'a, f64>,
    /// decimal(38, 9) as i128 units of 10⁻⁹.
    pub cost: Nullable<'a, i128>,
    /// `None`: every row is billable.
    pub billable: Option<Nullable<'a, bool>>,
}

#[derive(Debug, Clone)]
pub struct AggregateSpec {
    /// `None`: no time buckets, one row per group.
    pub every: Option<Every>,
    pub tz: String,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub as_of: Option<i64>,
    pub billable_only: bool,
}

/// One row per (bucket, group), sorted by bucket then group values.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Aggregated {
    /// Empty without buckets.
    pub bucket_start: Vec<i64>,
    pub bucket_end: Vec<i64>,
    /// The group columns in the order given, each with one code per row.
    pub keys: Vec<GroupColumn>,
    pub quantity: Vec<Option<f64>>,
    pub cost: Vec<Option<i128>>,
    pub records: Vec<u64>,
    /// Running records placed whole in their start bucket (no `as_of`).
    pub running_unsplit: u64,
}

/// A group column of the result: one code per row into `values`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct GroupColumn {
    pub name: String,
    pub codes: Vec<u32>,
    pub values: Vec<Option<String>>,
}

impl GroupColumn {
    pub fn get(&self, row: usize) -> Option<&str> {
        self.values[self.codes[row] as usize].as_deref()
    }
}

/// `rows` records per parallel work item.
const ROW_CHUNK: usize = 1 << 16;

/// Aggregates `usage` into buckets and groups. `keys` are the group columns (the caller's
/// `by`, then `unit` and `currency`); `unit_key` is the index of `unit` among them.
pub fn aggregate(
    usage: &UsageColumns,
    keys: &[KeyColumn],
    unit_key: Option<usize>,
    spec: &AggregateSpec,
) -> Result<Aggregated> {
    let calendar = checked(spec)?;
    let (rows, running_unsplit, groups) = sum_batch(usage, keys, unit_key, spec, calendar.as_ref())?;
    let dictionaries: Vec<(String, Vec<Option<String>>)> =
        keys.iter().map(|k| (k.name.clone(), k.values.clone())).collect();
    Ok(finish(rows, running_unsplit, |id, out| groups.codes_into(id, out), &dictionaries, calendar.as_ref()))
}

/// The spec checked, and its calendar (`None` without buckets).
fn checked(spec: &AggregateSpec) -> Result<Option<Calendar>> {
    let calendar = match spec.every {
        Some(every) => Some(Calendar::new(every, &spec.tz).map_err(Error::InvalidArgument)?),
        None => {
            Calendar::new(Every::Days(1), &spec.tz).map_err(Error::InvalidArgument)?;
            None
        }
    };
    if let (Some(s), Some(e)) = (spec.start, spec.end) {
        if e <= s {
            return Err(Error::InvalidArgument("end must be after start".into()));
        }
    }
    Ok(calendar)
}

/// One batch summed per (bucket, group id), its running records left unsplit, and the group
/// ids (of `keys`' codes). Chunks of rows in parallel, each emitting contributions into hash partitions; then the
/// partitions in parallel, each summed in its own map. Sums are exact, so no order matters.
#[allow(clippy::type_complexity)]
fn sum_batch<'k>(
    usage: &UsageColumns,
    keys: &'k [KeyColumn],
    unit_key: Option<usize>,
    spec: &AggregateSpec,
    calendar: Option<&Calendar>,
) -> Result<(Vec<((i64, u64), Acc)>, u64, GroupIds<'k>)> {
    let rows = usage.usage_start.values.len();
    if keys.iter().any(|k| k.codes.len() != rows) {
        return Err(Error::InvalidArgument("the group columns and the usage columns differ in length".into()));
    }
    let groups = GroupIds::new(keys.iter().collect(), rows);
    let hours_unit: Vec<bool> = match unit_key {
        Some(k) => keys[k].values.iter().map(|v| v.as_deref() == Some(HOURS)).collect(),
        None => Vec::new(),
    };
    let ctx = Ctx { usage, calendar, spec, groups: &groups, keys, unit_key, hours_unit: &hours_unit };
    let chunks: Vec<(usize, usize)> = (0..rows).step_by(ROW_CHUNK).map(|s| (s, (s + ROW_CHUNK).min(rows))).collect();
    let partials = chunks
        .par_iter()
        .map(|&(from, to)| {
            let mut out = Partial::default();
            ctx.run(from, to, &mut out).map(|()| out)
        })
        .collect::<Result<Vec<Partial>>>()?;
    let running_unsplit = partials.iter().map(|p| p.running_unsplit).sum::<u64>();
    let summed: Vec<Vec<((i64, u64), Acc)>> = (0..PARTITIONS)
        .into_par_iter()
        .map(|part| {
            let mut map: FastMap<(i64, u64), Acc> = FastMap::default();
            for p in &partials {
                for c in &p.parts[part] {
                    map.entry((c.bucket, c.group)).or_default().add(c);
                }
            }
            map.into_iter().collect()
        })
        .collect();
    let summed = summed.into_iter().flatten().collect();
    drop(partials);
    Ok((summed, running_unsplit, groups))
}

/// `aggregate` batch by batch: each `add` sums one batch of rows into the totals, `finish`
/// gives the result `aggregate` gives on all the rows at once, bit for bit (the sums are
/// exact, so neither the batches nor their order matter). It holds one sum per (bucket, group)
/// seen and the group values' dictionaries: memory is the result's size, not the rows'.
#[derive(Debug)]
pub struct Aggregator {
    spec: AggregateSpec,
    calendar: Option<Calendar>,
    names: Vec<String>,
    unit_key: Option<usize>,
    /// Per group column, its values (the code is the position) and their codes.
    values: Vec<Vec<Option<String>>>,
    lookup: Vec<FastMap<Option<String>, u32>>,
    /// Each distinct combination of codes, numbered as it appears.
    ids: FastMap<Vec<u32>, u64>,
    tuples: Vec<Vec<u32>>,
    totals: FastMap<(i64, u64), Acc>,
    running_unsplit: u64,
}

impl Aggregator {
    /// Checks the spec. `names` are the group columns every batch gives, in order; `unit_key`
    /// the index of `unit` among them.
    pub fn new(spec: AggregateSpec, names: Vec<String>, unit_key: Option<usize>) -> Result<Aggregator> {
        let calendar = checked(&spec)?;
        let k = names.len();
        Ok(Aggregator {
            spec,
            calendar,
            names,
            unit_key,
            values: vec![Vec::new(); k],
            lookup: vec![FastMap::default(); k],
            ids: FastMap::default(),
            tuples: Vec::new(),
            totals: FastMap::default(),
            running_unsplit: 0,
        })
    }

    /// Sums one batch: `usage` and `keys` (the group columns named as in `new`) of one length.
    pub fn add(&mut self, usage: &UsageColumns, keys: &[KeyColumn]) -> Result<()> {
        if keys.len() != self.names.len() || keys.iter().zip(&self.names).any(|(k, n)| &k.name != n) {
            return Err(Error::InvalidArgument(format!("a batch's group columns must be {:?}", self.names)));
        }
        let (summed, running_unsplit, groups) =
            sum_batch(usage, keys, self.unit_key, &self.spec, self.calendar.as_ref())?;
        self.running_unsplit += running_unsplit;
        // The batch's codes become the aggregator's, then its sums join the totals.
        let remap: Vec<Vec<u32>> =
            keys.iter().enumerate().map(|(k, col)| col.values.iter().map(|v| self.code(k, v)).collect()).collect();
        let mut codes: Vec<u32> = Vec::with_capacity(keys.len());
        for ((bucket, id), acc) in summed {
            groups.codes_into(id, &mut codes);
            codes.iter_mut().zip(&remap).for_each(|(c, map)| *c = map[*c as usize]);
            let gid = match self.ids.get(codes.as_slice()) {
                Some(gid) => *gid,
                None => {
                    let gid = self.tuples.len() as u64;
                    self.tuples.push(codes.clone());
                    self.ids.insert(codes.clone(), gid);
                    gid
                }
            };
            self.totals.entry((bucket, gid)).or_default().merge(&acc);
        }
        Ok(())
    }

    /// What it was made with.
    pub fn spec(&self) -> &AggregateSpec {
        &self.spec
    }

    fn code(&mut self, key: usize, value: &Option<String>) -> u32 {
        let values = &mut self.values[key];
        *self.lookup[key].entry(value.clone()).or_insert_with(|| {
            values.push(value.clone());
            (values.len() - 1) as u32
        })
    }

    /// The result: one row per (bucket, group), sorted by bucket then group values.
    pub fn finish(self) -> Aggregated {
        let rows: Vec<((i64, u64), Acc)> = self.totals.into_iter().collect();
        let keys: Vec<(String, Vec<Option<String>>)> = self.names.into_iter().zip(self.values).collect();
        let tuples = self.tuples;
        let codes_of = |id: u64, out: &mut Vec<u32>| {
            out.clear();
            out.extend_from_slice(&tuples[id as usize]);
        };
        finish(rows, self.running_unsplit, codes_of, &keys, self.calendar.as_ref())
    }
}

/// Ids for the distinct combinations of several key columns' codes: the mixed-radix number of
/// a row's codes (each below its column's radix, so two combinations never share an id), or,
/// when those numbers would not fit in 64 bits, the combinations numbered as they appear.
/// Shared by `aggregate` (group keys) and `pricing` (a row's unit and match values).
pub(crate) struct GroupIds<'k> {
    keys: Vec<&'k KeyColumn>,
    radix: Vec<u64>,
    interned: Option<(Vec<u64>, Vec<Vec<u32>>)>,
}

impl<'k> GroupIds<'k> {
    pub(crate) fn new(keys: Vec<&'k KeyColumn>, rows: usize) -> GroupIds<'k> {
        let radix: Vec<u64> = keys.iter().map(|k| k.values.len().max(1) as u64).collect();
        let fits = radix.iter().try_fold(1u64, |acc, r| acc.checked_mul(*r)).is_some();
        if fits {
            return GroupIds { keys, radix, interned: None };
        }
        let mut ids: FastMap<Vec<u32>, u64> = FastMap::default();
        let mut tuples = Vec::new();
        let per_row = (0..rows)
            .map(|i| {
                let t: Vec<u32> = keys.iter().map(|k| k.codes[i]).collect();
                *ids.entry(t.clone()).or_insert_with(|| {
                    tuples.push(t);
                    (tuples.len() - 1) as u64
                })
            })
            .collect();
        GroupIds { keys, radix, interned: Some((per_row, tuples)) }
    }

    #[inline]
    pub(crate) fn of_row(&self, i: usize) -> u64 {
        match &self.interned {
            Some((per_row, _)) => per_row[i],
            None => self.keys.iter().zip(&self.radix).rev().fold(0u64, |acc, (k, r)| acc * r + k.codes[i] as u64),
        }
    }

    /// Every id is below this.
    pub(crate) fn count(&self) -> u64 {
        match &self.interned {
            Some((_, tuples)) => tuples.len() as u64,
            None => self.radix.iter().product(),
        }
    }

    /// The codes of the combination numbered `id`, one per key column, into `out`.
    fn codes_into(&self, id: u64, out: &mut Vec<u32>) {
        out.clear();
        match &self.interned {
            Some((_, tuples)) => out.extend_from_slice(&tuples[id as usize]),
            None => {
                let mut rest = id;
                out.extend(self.radix.iter().map(|r| {
                    let c = rest % r;
                    rest /= r;
                    c as u32
                }));
            }
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Acc {
    quantity: ExactSum,
    has_quantity: bool,
    cost: i128,
    has_cost: bool,
    records: u64,
}

/// Hash partitions of the contributions: each (bucket, group) lands in one partition, so the
/// partitions aggregate in parallel with small maps and never need merging.
const PARTITIONS: usize = 64;

/// One record's share of one (bucket, group).
#[derive(Debug, Clone, Copy)]
struct Contribution {
    bucket: i64,
    group: u64,
    quantity: f64,
    cost: i128,
    /// 1: has a quantity; 2: has a cost; 4: counts the record in this bucket.
    flags: u8,
}

fn partition(bucket: i64, group: u64) -> usize {
    let h = (bucket as u64 ^ group.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 58) as usize % PARTITIONS
}

/// What one chunk of rows produced.
#[derive(Debug)]
struct Partial {
    parts: Vec<Vec<Contribution>>,
    running_unsplit: u64,
}

impl Default for Partial {
    fn default() -> Self {
        Partial { parts: vec![Vec::new(); PARTITIONS], running_unsplit: 0 }
    }
}

impl Acc {
    fn merge(&mut self, other: &Acc) {
        self.quantity.add_sum(&other.quantity);
        self.has_quantity |= other.has_quantity;
        self.cost += other.cost;
        self.has_cost |= other.has_cost;
        self.records += other.records;
    }

    fn add(&mut self, c: &Contribution) {
        if c.flags & 1 != 0 {
            // Finite and in range: checked when the contribution was made.
            let _ = self.quantity.add(c.quantity);
            self.has_quantity = true;
        }
        if c.flags & 2 != 0 {
            self.cost += c.cost;
            self.has_cost = true;
        }
        self.records += (c.flags >> 2) as u64 & 1;
    }
}

/// One piece of a record: `overlap` µs of its span, counted (`inside`) in `bucket` or not.
#[derive(Debug, Clone, Copy)]
struct Piece {
    bucket: i64,
    overlap: i64,
    inside: bool,
}

struct Ctx<'c, 'a> {
    usage: &'c UsageColumns<'a>,
    calendar: Option<&'c Calendar>,
    spec: &'c AggregateSpec,
    groups: &'c GroupIds<'c>,
    keys: &'c [KeyColumn],
    unit_key: Option<usize>,
    hours_unit: &'c [bool],
}

impl Ctx<'_, '_> {
    fn run(&self, from: usize, to: usize, out: &mut Partial) -> Result<()> {
        let mut pieces: Vec<Piece> = Vec::with_capacity(8);
        let mut shares: Vec<i128> = Vec::with_capacity(8);
        let u = self.usage;
        for i in from..to {
            // Cheap (one relaxed load); often enough that Ctrl-C lands in well under a second
            // even when each row spans thousands of buckets.
            if i % 64 == 0 {
                crate::cancel::check()?;
            }
            if self.spec.billable_only && u.billable.and_then(|b| b.get(i)) == Some(false) {
                continue;
            }
            let start = u.usage_start.get(i).ok_or_else(|| Error::Column(format!("usage_start is null in row {i}")))?;
            let mut quantity = u.quantity.get(i);
            let end = match (u.usage_end.get(i), self.spec.as_of) {
                (Some(e), _) if e < start => {
                    return Err(Error::Column(format!("row {i}: usage_end is before usage_start")));
                }
                (Some(e), _) => e,
                (None, Some(as_of)) => {
                    let e = as_of.max(start);
                    // A running runtime record has no quantity yet: its hours so far are the quantity.
                    let is_hours = self.unit_key.is_some_and(|k| self.hours_unit[self.keys[k].codes[i] as usize]);
                    if quantity.is_none() && is_hours {
                        quantity = Some((e - start) as f64 / MICROS_PER_HOUR as f64);
                    }
                    e
                }
                (None, None) => {
                    out.running_unsplit += 1;
                    start
                }
            };
            self.pieces(start, end, &mut pieces);
            if !pieces.iter().any(|p| p.inside) {
                continue;
            }
            let cost = u.cost.get(i);
            if let Some(c) = cost {
                allocate(c, &pieces, end - start, &mut shares);
            }
            let group = self.groups.of_row(i);
            let span = (end - start) as f64;
            let mut last_bucket = None;
            for (j, p) in pieces.iter().enumerate().filter(|(_, p)| p.inside) {
                let mut c = Contribution { bucket: p.bucket, group, quantity: 0.0, cost: 0, flags: 0 };
                if let Some(q) = quantity {
                    let share = if end == start || p.overlap == end - start { q } else { q * p.overlap as f64 / span };
                    if !share.is_finite() || share.abs() >= EXACT_LIMIT {
                        return Err(Error::Column(format!("row {i}: quantity {share} cannot be summed exactly")));
                    }
                    c.quantity = share;
                    c.flags |= 1;
                }
                if cost.is_some() {
                    c.cost = shares[j];
                    c.flags |= 2;
                }
                // A record split by a clip edge inside one bucket still counts once there.
                if last_bucket != Some(p.bucket) {
                    c.flags |= 4;
                    last_bucket = Some(p.bucket);
                }
                out.parts[partition(p.bucket, group)].push(c);
            }
        }
        Ok(())
    }

    /// The pieces of [start, end): the part before the clip, one per bucket inside, the part after.
    fn pieces(&self, start: i64, end: i64, out: &mut Vec<Piece>) {
        out.clear();
        let lo = self.spec.start.unwrap_or(i64::MIN);
        let hi = self.spec.end.unwrap_or(i64::MAX);
        if end == start {
            let inside = start >= lo && start < hi;
            out.push(Piece { bucket: self.bucket_of(start), overlap: 0, inside });
            return;
        }
        let (a, b) = (start.max(lo), end.min(hi));
        if a >= b {
            out.push(Piece { bucket: 0, overlap: end - start, inside: false });
            return;
        }
        if a > start {
            out.push(Piece { bucket: 0, overlap: a - start, inside: false });
        }
        match self.calendar {
            None => out.push(Piece { bucket: 0, overlap: b - a, inside: true }),
            Some(cal) => {
                let mut bucket = cal.bucket_start(a);
                while bucket < b {
                    let next = cal.bucket_end(bucket);
                    let overlap = next.min(b) - bucket.max(a);
                    out.push(Piece { bucket, overlap, inside: true });
                    bucket = next;
                }
            }
        }
        if end > b {
            out.push(Piece { bucket: 0, overlap: end - b, inside: false });
        }
    }

    fn bucket_of(&self, t: i64) -> i64 {
        self.calendar.map_or(0, |c| c.bucket_start(t))
    }
}

/// Splits `cost` over pieces in proportion to their overlap, exactly (largest remainder).
fn allocate(cost: i128, pieces: &[Piece], span: i64, shares: &mut Vec<i128>) {
    shares.clear();
    if pieces.len() == 1 || span == 0 {
        shares.push(cost);
        shares.extend(std::iter::repeat_n(0, pieces.len().saturating_sub(1)));
        return;
    }
    let (sign, c) = (cost.signum(), cost.abs());
    let s = span as i128;
    let (whole, part) = (c / s, c % s);
    let mut remainders: Vec<(i128, usize)> = Vec::with_capacity(pieces.len());
    let mut given = 0i128;
    for (j, p) in pieces.iter().enumerate() {
        let o = p.overlap as i128;
        // c·o/s without overflow: (c div s)·o + (c mod s)·o / s, with (c mod s)·o < s².
        let base = whole * o + part * o / s;
        remainders.push((part * o % s, j));
        shares.push(base);
        given += base;
    }
    let left = (c - given) as usize;
    remainders.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    for &(_, j) in remainders.iter().take(left) {
        shares[j] += 1;
    }
    shares.iter_mut().for_each(|v| *v *= sign);
}

fn finish(
    rows: Vec<((i64, u64), Acc)>,
    running_unsplit: u64,
    codes_of: impl Fn(u64, &mut Vec<u32>),
    keys: &[(String, Vec<Option<String>>)],
    calendar: Option<&Calendar>,
) -> Aggregated {
    let k = keys.len();
    // Codes of every output row, flat; and each dictionary's sort rank (nulls first), so the
    // sort compares integers, not strings.
    let mut codes: Vec<u32> = Vec::with_capacity(rows.len() * k);
    let mut one = Vec::with_capacity(k);
    for ((_, id), _) in &rows {
        codes_of(*id, &mut one);
        codes.extend_from_slice(&one);
    }
    let ranks: Vec<Vec<u32>> = keys
        .iter()
        .map(|(_, values)| {
            let mut order: Vec<u32> = (0..values.len() as u32).collect();
            order.sort_by(|a, b| cmp_nulls_first(values[*a as usize].as_deref(), values[*b as usize].as_deref()));
            let mut rank = vec![0u32; values.len()];
            order.iter().enumerate().for_each(|(r, code)| rank[*code as usize] = r as u32);
            rank
        })
        .collect();
    let mut order: Vec<u32> = (0..rows.len() as u32).collect();
    let rank_of = |row: u32, key: usize| ranks[key][codes[row as usize * k + key] as usize];
    order.par_sort_unstable_by(|&a, &b| {
        rows[a as usize].0 .0.cmp(&rows[b as usize].0 .0).then_with(|| {
            (0..k)
                .map(|key| rank_of(a, key).cmp(&rank_of(b, key)))
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        })
    });
    let mut out = Aggregated { running_unsplit, ..Default::default() };
    out.keys = keys
        .iter()
        .enumerate()
        .map(|(key, (name, values))| GroupColumn {
            name: name.clone(),
            codes: order.iter().map(|r| codes[*r as usize * k + key]).collect(),
            values: values.clone(),
        })
        .collect();
    if let Some(cal) = calendar {
        let mut ends: FastMap<i64, i64> = FastMap::default();
        for r in &order {
            let bucket = rows[*r as usize].0 .0;
            out.bucket_start.push(bucket);
            out.bucket_end.push(*ends.entry(bucket).or_insert_with(|| cal.bucket_end(bucket)));
        }
    }
    for r in &order {
        let acc = &rows[*r as usize].1;
        out.quantity.push(acc.has_quantity.then(|| acc.quantity.to_f64()));
        out.cost.push(acc.has_cost.then_some(acc.cost));
        out.records.push(acc.records);
    }
    out
}

fn cmp_nulls_first(a: Option<&str>, b: Option<&str>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, _) => Ordering::Less,
        (_, None) => Ordering::Greater,
        (Some(x), Some(y)) => x.cmp(y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{format_utc, parse_rfc3339};

    #[test]
    fn allocation_adds_up_exactly() {
        let pieces: Vec<Piece> = [1, 1, 1].iter().map(|&o| Piece { bucket: 0, overlap: o, inside: true }).collect();
        let mut shares = vec![];
        allocate(100, &pieces, 3, &mut shares);
        assert_eq!(shares, vec![34, 33, 33]);
        allocate(-100, &pieces, 3, &mut shares);
        assert_eq!(shares, vec![-34, -33, -33]);
        allocate(i128::MAX / 4, &pieces, 3, &mut shares);
        assert_eq!(shares.iter().sum::<i128>(), i128::MAX / 4);
    }

    fn t(s: &str) -> i64 {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn splits_across_days_with_exact_cost() {
        let start = [t("2024-03-10T22:00:00Z"), t("2024-03-11T01:00:00Z")];
        let end = [t("2024-03-11T03:00:00Z"), t("2024-03-11T01:00:00Z")];
        let quantity = [5.0, 2.0];
        let cost = [1_000_000_001i128, 7];
        let usage = UsageColumns {
            usage_start: Nullable { values: &start, valid: None },
            usage_end: Nullable { values: &end, valid: None },
            quantity: Nullable { values: &quantity, valid: None },
            cost: Nullable { values: &cost, valid: None },
            billable: None,
        };
        let keys = [KeyColumn::encode("unit", [Some("Hours"), Some("Hours")].into_iter())];
        let spec = AggregateSpec {
            every: Some(Every::Days(1)),
            tz: "UTC".into(),
            start: None,
            end: None,
            as_of: None,
            billable_only: true,
        };
        let out = aggregate(&usage, &keys, Some(0), &spec).unwrap();
        assert_eq!(
            out.bucket_start.iter().map(|b| format_utc(*b)).collect::<Vec<_>>(),
            ["2024-03-10T00:00:00Z", "2024-03-11T00:00:00Z"]
        );
        assert_eq!(out.quantity, vec![Some(2.0), Some(5.0)]);
        // 1.000000001 split 2h:3h -> 0.4000000004 and 0.6000000006 (exact), plus the point record's 7.
        assert_eq!(out.cost, vec![Some(400_000_000), Some(600_000_001 + 7)]);
        assert_eq!(out.records, vec![1, 2]);
    }

    #[test]
    fn batches_sum_to_the_result_of_one_call_bit_for_bit() {
        // Quantities whose f64 sum depends on the order: batches must not round on their own.
        let n = 600;
        let start: Vec<i64> = (0..n).map(|i| t("2024-03-10T00:00:00Z") + i * 3_600_000_000 / 7).collect();
        let end: Vec<i64> = start.iter().map(|s| s + 5 * 3_600_000_000).collect();
        let quantity: Vec<f64> = (0..n).map(|i| [0.1, 1e16, -1e16, 0.7, 3.3e-9][i as usize % 5]).collect();
        let cost: Vec<i128> = (0..n as i128).map(|i| i * 1_000_000_007 % 999_999_937).collect();
        let project: Vec<Option<&str>> = (0..n).map(|i| [Some("a"), None, Some("b")][i as usize % 3]).collect();
        let unit: Vec<Option<&str>> = (0..n).map(|i| [Some("Hours"), Some("GB")][i as usize % 2]).collect();
        let spec = |every| AggregateSpec {
            every,
            tz: "Europe/Berlin".into(),
            start: None,
            end: None,
            as_of: None,
            billable_only: true,
        };
        let columns = |from: usize, to: usize| {
            let usage = UsageColumns {
                usage_start: Nullable { values: &start[from..to], valid: None },
                usage_end: Nullable { values: &end[from..to], valid: None },
                quantity: Nullable { values: &quantity[from..to], valid: None },
                cost: Nullable { values: &cost[from..to], valid: None },
                billable: None,
            };
            // Each batch numbers its own values, in the order it meets them.
            let keys = vec![
                KeyColumn::encode("project_id", project[from..to].iter().copied()),
                KeyColumn::encode("unit", unit[from..to].iter().copied()),
            ];
            (usage, keys)
        };
        for every in [Some(Every::SubDay(3_600_000_000)), Some(Every::Days(1)), None] {
            let (usage, keys) = columns(0, n as usize);
            let whole = aggregate(&usage, &keys, Some(1), &spec(every)).unwrap();
            let mut batched = Aggregator::new(spec(every), vec!["project_id".into(), "unit".into()], Some(1)).unwrap();
            for (from, to) in [(401, 600), (0, 1), (1, 250), (250, 401)] {
                let (usage, keys) = columns(from, to);
                batched.add(&usage, &keys).unwrap();
            }
            let rows = |a: &Aggregated| {
                (0..a.records.len())
                    .map(|r| {
                        let keys: Vec<Option<String>> = a.keys.iter().map(|k| k.get(r).map(str::to_owned)).collect();
                        let bucket = (a.bucket_start.get(r).copied(), a.bucket_end.get(r).copied());
                        (bucket, keys, a.quantity[r].map(f64::to_bits), a.cost[r], a.records[r])
                    })
                    .collect::<Vec<_>>()
            };
            let batched = batched.finish();
            assert!(whole.records.len() > 3);
            assert_eq!(rows(&batched), rows(&whole));
        }
        let mut wrong = Aggregator::new(spec(None), vec!["unit".into()], Some(0)).unwrap();
        let (usage, keys) = columns(0, 10);
        assert!(wrong.add(&usage, &keys).is_err());
    }
}
