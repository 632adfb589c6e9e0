//! The storage of canonical columns, laid out as Arrow arrays so Polars takes them over
//! without copying: `StrColumn` (Utf8View), `LabelColumn` (a few static labels), `OptColumn`
//! (values with validity).

use std::hash::Hasher;

/// The longest value a string column holds: views store lengths and offsets in 32 bits.
pub const MAX_VALUE_LEN: usize = u32::MAX as usize;
/// Values of at most this many bytes live inside their view.
const INLINE: usize = 12;

/// A string column laid out the way Arrow's `Utf8View` arrays are, so Polars takes it over
/// without copying: per value a 16-byte view (its length; then the value itself when it is at
/// most 12 bytes, else its first 4 bytes, the index of the text buffer holding it and its offset
/// there) plus validity. A long value equal to the previous long value shares its bytes (a Suger
/// group's tags, repeated on each of its rows, are stored once). Leading nulls are only counted,
/// so a column a format never fills costs nothing.
#[derive(Debug, Default, Clone)]
pub struct StrColumn {
    pub(super) buffers: Vec<String>,
    pub(super) views: Vec<[u32; 4]>,
    pub(super) valid: Vec<bool>,
    /// Nulls pushed before the first value (then `views` is empty).
    pub(super) leading_nulls: usize,
    /// The view of the last long value pushed.
    pub(super) last_long: Option<[u32; 4]>,
    /// Long values pushed lately, so one that comes back is stored once (an OpenAI or
    /// Anthropic metric name, repeated on every record's rows in turn; a model's name).
    pub(super) recent: Recent,
}

/// A small table of the long values a column pushed lately: direct-mapped by a hash of the
/// value, each slot the view of the last value that hashed there (an all-zero view is empty).
/// A column whose values rarely come back (a record id) stops looking after `RECENT_TRIAL`
/// lookups with fewer than one hit in `RECENT_MIN_RATE`.
#[derive(Debug, Default, Clone)]
pub(super) struct Recent {
    slots: Vec<[u32; 4]>,
    lookups: u32,
    hits: u32,
    pub(super) off: bool,
}

const RECENT_SLOTS: usize = 256;
const RECENT_TRIAL: u32 = 64;
const RECENT_MIN_RATE: u32 = 8;

impl Recent {
    /// The slot for a value's bytes, `None` when the table is off.
    fn slot(&mut self, b: &[u8]) -> Option<usize> {
        if self.off {
            return None;
        }
        if self.lookups >= RECENT_TRIAL && self.hits * RECENT_MIN_RATE < self.lookups {
            self.off = true;
            self.slots = Vec::new();
            return None;
        }
        if self.slots.is_empty() {
            self.slots = vec![[0; 4]; RECENT_SLOTS];
        }
        self.lookups = self.lookups.saturating_add(1);
        // Its length and four words of the value, not all of it: values that differ only
        // elsewhere share a slot and take turns in it (stored again, never mistaken: a hit
        // compares every byte).
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(b.get(at..at + 8).unwrap_or(&[0; 8]));
            u64::from_le_bytes(w)
        };
        let n = b.len().saturating_sub(8);
        let mut h = crate::hash::Fx::default();
        h.write_usize(b.len());
        [0, n / 3, 2 * n / 3, n].into_iter().for_each(|at| h.write_u64(word(at)));
        Some((h.finish() >> 56) as usize % RECENT_SLOTS)
    }
}

/// The parts of a `StrColumn`, for the binding to hand to Polars.
pub struct StrParts {
    /// Empty when every value is null.
    pub views: Vec<[u32; 4]>,
    pub buffers: Vec<String>,
    /// One flag per view, or empty when no value is null.
    pub valid: Vec<bool>,
    pub len: usize,
}

/// Value `i` of a view column: `None` when null (or out of range).
fn value_at<'s>(views: &'s [[u32; 4]], valid: &[bool], buffers: &'s [String], i: usize) -> Option<&'s str> {
    if valid.get(i) == Some(&false) {
        return None;
    }
    let view = views.get(i)?;
    let len = view[0] as usize;
    if len <= INLINE {
        let bytes: &[u8] = bytemuck::cast_slice(&view[1..]);
        std::str::from_utf8(bytes.get(..len)?).ok()
    } else {
        let start = view[3] as usize;
        buffers.get(view[2] as usize)?.get(start..start + len)
    }
}

impl StrParts {
    /// Value `i`: `None` when null.
    pub fn get(&self, i: usize) -> Option<&str> {
        value_at(&self.views, &self.valid, &self.buffers, i)
    }
}

fn inline_view(b: &[u8]) -> [u32; 4] {
    let mut data = [0u8; INLINE];
    data[..b.len()].copy_from_slice(b);
    let word = |i: usize| u32::from_ne_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    [b.len() as u32, word(0), word(4), word(8)]
}

impl StrColumn {
    pub fn with_capacity(rows: usize) -> Self {
        StrColumn { views: Vec::with_capacity(rows), valid: Vec::with_capacity(rows), ..Default::default() }
    }

    /// Appends a value. A value longer than `MAX_VALUE_LEN` must be rejected before it gets here
    /// (`Row::too_long`); it would be stored empty.
    pub fn push(&mut self, v: Option<&str>) {
        let Some(s) = v else {
            if self.views.is_empty() {
                self.leading_nulls += 1;
            } else {
                self.views.push([0; 4]);
                self.valid.push(false);
            }
            return;
        };
        if self.views.is_empty() && self.leading_nulls > 0 {
            self.views.resize(self.leading_nulls, [0; 4]);
            self.valid.resize(self.leading_nulls, false);
            self.leading_nulls = 0;
        }
        let b = s.as_bytes();
        let view = if b.len() <= INLINE {
            inline_view(b)
        } else if b.len() > MAX_VALUE_LEN {
            [0; 4]
        } else {
            let prefix = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let same = |col: &StrColumn, p: [u32; 4]| {
                p[0] as usize == b.len() && p[1] == prefix && col.long_bytes(p) == Some(b)
            };
            match self.last_long.filter(|p| same(self, *p)) {
                Some(prev) => prev,
                None => {
                    let slot = self.recent.slot(b);
                    let seen = slot.and_then(|k| self.recent.slots.get(k).copied()).filter(|p| same(self, *p));
                    let view = match seen {
                        Some(view) => {
                            self.recent.hits += 1;
                            view
                        }
                        None => {
                            let (index, text) = self.buffer_for(b.len());
                            let offset = text.len() as u32;
                            text.push_str(s);
                            let view = [b.len() as u32, prefix, index as u32, offset];
                            if let Some(k) = slot.and_then(|k| self.recent.slots.get_mut(k)) {
                                *k = view;
                            }
                            view
                        }
                    };
                    self.last_long = Some(view);
                    view
                }
            }
        };
        self.views.push(view);
        self.valid.push(true);
    }

    /// The text buffer a long value of `len` bytes goes into (a new one when the last is full).
    pub(super) fn buffer_for(&mut self, len: usize) -> (usize, &mut String) {
        if self.buffers.last().is_none_or(|t| t.len() + len > MAX_VALUE_LEN) {
            self.buffers.push(String::with_capacity(len.max(1 << 12)));
        }
        let index = self.buffers.len() - 1;
        (index, &mut self.buffers[index])
    }

    pub(super) fn long_bytes(&self, view: [u32; 4]) -> Option<&[u8]> {
        let text = self.buffers.get(view[2] as usize)?;
        let start = view[3] as usize;
        text.as_bytes().get(start..start + view[0] as usize)
    }

    pub fn len(&self) -> usize {
        self.views.len() + self.leading_nulls
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        value_at(&self.views, &self.valid, &self.buffers, i)
    }

    pub fn iter(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Feeds value `i` to a hasher: equal values (null with null) hash alike, whichever batch
    /// holds them. A short value is its view (length and zero-padded bytes, two words), so
    /// it is hashed without reading text.
    pub fn hash_value(&self, i: usize, h: &mut impl std::hash::Hasher) {
        let view = match self.views.get(i) {
            Some(v) if self.valid.get(i) != Some(&false) => *v,
            // Unlike any view's first word (a length below 2^32).
            _ => return h.write_u64(u64::MAX),
        };
        if view[0] as usize <= INLINE {
            h.write_u64(u64::from(view[0]) | u64::from(view[1]) << 32);
            h.write_u64(u64::from(view[2]) | u64::from(view[3]) << 32);
        } else {
            h.write_u64(u64::from(view[0]));
            h.write(self.long_bytes(view).unwrap_or_default());
        }
    }

    /// Appends every value of `other`, taking over its text buffers (no text is copied).
    pub fn append(&mut self, mut other: StrColumn) {
        if other.views.is_empty() {
            (0..other.leading_nulls).for_each(|_| self.push(None));
            return;
        }
        (0..self.leading_nulls).for_each(|_| {
            self.views.push([0; 4]);
            self.valid.push(false);
        });
        self.leading_nulls = 0;
        let base = self.buffers.len() as u32;
        self.views.extend(other.views.iter().map(|v| {
            if v[0] as usize > INLINE {
                [v[0], v[1], v[2] + base, v[3]]
            } else {
                *v
            }
        }));
        self.valid.append(&mut other.valid);
        self.buffers.append(&mut other.buffers);
        self.last_long = other.last_long.map(|v| [v[0], v[1], v[2] + base, v[3]]);
    }

    /// Keeps the rows whose `keep` flag is set.
    pub fn filter(&self, keep: &[bool]) -> StrColumn {
        let mut out = StrColumn::with_capacity(keep.iter().filter(|k| **k).count());
        for (i, k) in keep.iter().enumerate() {
            if *k {
                out.push(self.get(i));
            }
        }
        out
    }

    /// Room for `rows` more values, when this column or `other` (about to be appended) holds
    /// any value: a column that stays all null keeps costing nothing.
    pub(super) fn reserve_for(&mut self, other: &StrColumn, rows: usize) {
        if !self.views.is_empty() || !other.views.is_empty() {
            let rows = rows + self.leading_nulls;
            self.views.reserve(rows);
            self.valid.reserve(rows);
        }
    }

    /// Gives back the unused capacity of its vectors and text buffers.
    pub fn shrink_to_fit(&mut self) {
        self.views.shrink_to_fit();
        self.valid.shrink_to_fit();
        self.buffers.iter_mut().for_each(String::shrink_to_fit);
        self.buffers.shrink_to_fit();
        self.recent = Recent::default();
    }

    pub fn into_parts(self) -> StrParts {
        let len = self.len();
        StrParts { views: self.views, buffers: self.buffers, valid: self.valid, len }
    }
}

/// A never-null column of the core's static labels (provider ids, charge types), laid out as
/// Arrow views like `StrColumn` so the frame takes it over as it is: a label of at most 12
/// bytes lives in its views, a longer one is stored once per batch.
#[derive(Debug, Default, Clone)]
pub struct LabelColumn {
    pub(super) views: Vec<[u32; 4]>,
    pub(super) text: String,
    /// The distinct labels pushed, with their views (a handful at most).
    pub(super) labels: Vec<(&'static str, [u32; 4])>,
}

impl LabelColumn {
    pub(super) fn view_of(&mut self, label: &'static str) -> [u32; 4] {
        if let Some((_, view)) = self.labels.iter().find(|(l, _)| std::ptr::eq(*l, label) || *l == label) {
            return *view;
        }
        let b = label.as_bytes();
        let view = if b.len() <= INLINE {
            inline_view(b)
        } else if self.text.len() + b.len() > MAX_VALUE_LEN {
            // Labels are short names; one this long would be a bug, stored empty.
            [0; 4]
        } else {
            let view = [b.len() as u32, u32::from_le_bytes([b[0], b[1], b[2], b[3]]), 0, self.text.len() as u32];
            self.text.push_str(label);
            view
        };
        self.labels.push((label, view));
        view
    }

    pub fn push(&mut self, label: &'static str) {
        let view = match self.labels.last() {
            Some((l, v)) if std::ptr::eq(*l, label) => *v,
            _ => self.view_of(label),
        };
        self.views.push(view);
    }

    pub fn len(&self) -> usize {
        self.views.len()
    }

    pub fn is_empty(&self) -> bool {
        self.views.is_empty()
    }

    /// Label `i` (`None` out of range).
    pub fn get(&self, i: usize) -> Option<&'static str> {
        let view = self.views.get(i)?;
        self.labels.iter().find(|(_, v)| v == view).map(|(l, _)| *l)
    }

    /// Feeds label `i` to a hasher (as `StrColumn::hash_value` would not: labels are compared
    /// only with labels).
    pub fn hash_value(&self, i: usize, h: &mut impl std::hash::Hasher) {
        std::hash::Hash::hash(&self.get(i), h)
    }

    /// Appends every label of `other`.
    pub fn append(&mut self, other: LabelColumn) {
        let remap: Vec<([u32; 4], [u32; 4])> = other.labels.iter().map(|(l, v)| (*v, self.view_of(l))).collect();
        if remap.iter().all(|(from, to)| from == to) {
            // The usual case (short labels live in their views): copied as they are.
            self.views.extend_from_slice(&other.views);
            return;
        }
        let mapped = |v: &[u32; 4]| remap.iter().find(|(from, _)| from == v).map_or([0; 4], |(_, to)| *to);
        self.views.extend(other.views.iter().map(mapped));
    }

    pub fn filter(&self, keep: &[bool]) -> LabelColumn {
        let mut out = LabelColumn::default();
        keep.iter().enumerate().filter(|(_, k)| **k).filter_map(|(i, _)| self.get(i)).for_each(|l| out.push(l));
        out
    }

    pub fn shrink_to_fit(&mut self) {
        self.views.shrink_to_fit();
    }

    pub(super) fn reserve_for(&mut self, _: &LabelColumn, rows: usize) {
        self.views.reserve(rows);
    }

    pub fn into_parts(self) -> StrParts {
        let len = self.views.len();
        let buffers = if self.text.is_empty() { Vec::new() } else { vec![self.text] };
        StrParts { views: self.views, buffers, valid: Vec::new(), len }
    }
}

/// A column of optional fixed-width values: the values and their validity, with leading nulls
/// only counted (a column a format never fills, like Gitpod's cost, costs nothing).
#[derive(Debug, Clone, Default)]
pub struct OptColumn<T> {
    pub(super) values: Vec<T>,
    pub(super) valid: Vec<bool>,
    pub(super) leading_nulls: usize,
}

impl<T: Copy + Default> OptColumn<T> {
    pub fn push(&mut self, v: Option<T>) {
        if self.values.is_empty() && v.is_none() {
            self.leading_nulls += 1;
            return;
        }
        if self.leading_nulls > 0 {
            self.values.resize(self.leading_nulls, T::default());
            self.valid.resize(self.leading_nulls, false);
            self.leading_nulls = 0;
        }
        self.values.push(v.unwrap_or_default());
        self.valid.push(v.is_some());
    }

    pub fn get(&self, i: usize) -> Option<T> {
        self.valid.get(i).copied().unwrap_or(false).then(|| self.values.get(i).copied()).flatten()
    }

    pub fn len(&self) -> usize {
        self.values.len() + self.leading_nulls
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = Option<T>> + Clone + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    pub fn append(&mut self, other: OptColumn<T>) {
        if self.values.is_empty() && other.values.is_empty() {
            self.leading_nulls += other.leading_nulls;
            return;
        }
        // Both sides' leading nulls become values, then other's values are copied as they are.
        let nulls = std::mem::take(&mut self.leading_nulls) + other.leading_nulls;
        self.values.resize(self.values.len() + nulls, T::default());
        self.valid.resize(self.valid.len() + nulls, false);
        self.values.extend_from_slice(&other.values);
        self.valid.extend_from_slice(&other.valid);
    }

    pub fn shrink_to_fit(&mut self) {
        self.values.shrink_to_fit();
        self.valid.shrink_to_fit();
    }

    pub(super) fn reserve_for(&mut self, other: &OptColumn<T>, rows: usize) {
        if !self.values.is_empty() || !other.values.is_empty() {
            let rows = rows + self.leading_nulls;
            self.values.reserve(rows);
            self.valid.reserve(rows);
        }
    }

    /// `(values, validity, len)`; values and validity are empty when every value is null.
    pub fn into_parts(self) -> (Vec<T>, Vec<bool>, usize) {
        let len = self.len();
        (self.values, self.valid, len)
    }

    pub fn filter(&self, keep: &[bool]) -> OptColumn<T> {
        let mut out = OptColumn::default();
        self.iter().zip(keep).filter(|(_, k)| **k).for_each(|(v, _)| out.push(v));
        out
    }
}
