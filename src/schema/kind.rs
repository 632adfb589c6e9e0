//! The kinds of canonical column. A kind says how a `Row` holds one value, how a
//! `CanonicalBatch` stores the column (`Storage`), its type in the frame, whether it may be null
//! and whether deduplication compares it. The table in `schema/mod.rs` gives every column a kind;
//! everything that walks the columns is generated from that table.

use std::borrow::Cow;
use std::fmt::Debug;
use std::hash::Hash;

use super::{ColumnType, LabelColumn, OptColumn, StrColumn, MAX_VALUE_LEN};
use crate::money::Decimal;

pub trait Kind {
    /// How a `Row` (or `CanonicalBatch::push`) holds one value.
    type Value<'a>;
    /// How a batch stores the column.
    type Column: Storage;
    const TYPE: ColumnType;
    const NULLABLE: bool;
    /// Whether a record's content includes it (deduplication): a record's place (source and
    /// index) and its revision do not.
    const CONTENT: bool = true;
    fn push(column: &mut Self::Column, value: &Self::Value<'_>);
    /// Makes the value null where the kind may be null (a column a projection leaves out:
    /// `schema::Kept`); a value that may not be null is kept.
    fn clear(_: &mut Self::Value<'_>) {}
    /// Whether the value is longer than a column can hold.
    fn too_long(_: &Self::Value<'_>) -> bool {
        false
    }
}

/// What a batch does with every column alike.
pub trait Storage: Default + Clone + Debug {
    /// Room for `rows` more values (see `CanonicalBatch::reserve_for`).
    fn reserve_for(&mut self, other: &Self, rows: usize);
    fn append(&mut self, other: Self);
    fn shrink_to_fit(&mut self);
    fn filter(&self, keep: &[bool]) -> Self;
    /// Feeds value `i` to the content hash: equal values hash alike, whichever batch holds them.
    fn hash_at(&self, i: usize, h: &mut impl std::hash::Hasher);
    fn same_at(&self, i: usize, other: &Self, j: usize) -> bool;
    /// Value `i` as `Some(..)` / `None` text (tests compare readers with it).
    fn text_at(&self, i: usize) -> String;
}

impl Storage for StrColumn {
    fn reserve_for(&mut self, other: &Self, rows: usize) {
        StrColumn::reserve_for(self, other, rows)
    }
    fn append(&mut self, other: Self) {
        StrColumn::append(self, other)
    }
    fn shrink_to_fit(&mut self) {
        StrColumn::shrink_to_fit(self)
    }
    fn filter(&self, keep: &[bool]) -> Self {
        StrColumn::filter(self, keep)
    }
    fn hash_at(&self, i: usize, h: &mut impl std::hash::Hasher) {
        self.hash_value(i, h)
    }
    fn same_at(&self, i: usize, other: &Self, j: usize) -> bool {
        self.get(i) == other.get(j)
    }
    fn text_at(&self, i: usize) -> String {
        format!("{:?}", self.get(i))
    }
}

impl Storage for LabelColumn {
    fn reserve_for(&mut self, other: &Self, rows: usize) {
        LabelColumn::reserve_for(self, other, rows)
    }
    fn append(&mut self, other: Self) {
        LabelColumn::append(self, other)
    }
    fn shrink_to_fit(&mut self) {
        LabelColumn::shrink_to_fit(self)
    }
    fn filter(&self, keep: &[bool]) -> Self {
        LabelColumn::filter(self, keep)
    }
    fn hash_at(&self, i: usize, h: &mut impl std::hash::Hasher) {
        self.hash_value(i, h)
    }
    fn same_at(&self, i: usize, other: &Self, j: usize) -> bool {
        self.get(i) == other.get(j)
    }
    fn text_at(&self, i: usize) -> String {
        format!("{:?}", self.get(i))
    }
}

/// A fixed-width value: how it is hashed, compared and shown.
pub trait Scalar: Copy + Default + Debug + Send + Sync {
    fn hash_into(v: Option<Self>, h: &mut impl std::hash::Hasher);
    fn same(a: Option<Self>, b: Option<Self>) -> bool;
    fn text(v: Option<Self>) -> String {
        format!("{v:?}")
    }
}

macro_rules! hashed_scalars {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            fn hash_into(v: Option<Self>, h: &mut impl std::hash::Hasher) {
                v.hash(h)
            }
            fn same(a: Option<Self>, b: Option<Self>) -> bool {
                a == b
            }
        }
    )*};
}
hashed_scalars!(i64, u32, u64, bool);

/// Quantities compare by their bits (a NaN equals itself; 0.0 and -0.0 differ), as a value
/// written twice is the same bits.
impl Scalar for f64 {
    fn hash_into(v: Option<Self>, h: &mut impl std::hash::Hasher) {
        v.map(f64::to_bits).hash(h)
    }
    fn same(a: Option<Self>, b: Option<Self>) -> bool {
        a.map(f64::to_bits) == b.map(f64::to_bits)
    }
}

impl Scalar for Decimal {
    fn hash_into(v: Option<Self>, h: &mut impl std::hash::Hasher) {
        v.hash(h)
    }
    fn same(a: Option<Self>, b: Option<Self>) -> bool {
        a == b
    }
    fn text(v: Option<Self>) -> String {
        format!("{:?}", v.map(|d| d.to_string()))
    }
}

impl<T: Scalar> Storage for OptColumn<T> {
    fn reserve_for(&mut self, other: &Self, rows: usize) {
        OptColumn::reserve_for(self, other, rows)
    }
    fn append(&mut self, other: Self) {
        OptColumn::append(self, other)
    }
    fn shrink_to_fit(&mut self) {
        OptColumn::shrink_to_fit(self)
    }
    fn filter(&self, keep: &[bool]) -> Self {
        OptColumn::filter(self, keep)
    }
    fn hash_at(&self, i: usize, h: &mut impl std::hash::Hasher) {
        T::hash_into(self.get(i), h)
    }
    fn same_at(&self, i: usize, other: &Self, j: usize) -> bool {
        T::same(self.get(i), other.get(j))
    }
    fn text_at(&self, i: usize) -> String {
        T::text(self.get(i))
    }
}

impl<T: Scalar> Storage for Vec<T> {
    fn reserve_for(&mut self, _: &Self, rows: usize) {
        self.reserve(rows)
    }
    fn append(&mut self, other: Self) {
        self.extend_from_slice(&other)
    }
    fn shrink_to_fit(&mut self) {
        Vec::shrink_to_fit(self)
    }
    fn filter(&self, keep: &[bool]) -> Self {
        self.iter().zip(keep).filter(|(_, k)| **k).map(|(v, _)| *v).collect()
    }
    fn hash_at(&self, i: usize, h: &mut impl std::hash::Hasher) {
        T::hash_into(self.get(i).copied(), h)
    }
    fn same_at(&self, i: usize, other: &Self, j: usize) -> bool {
        T::same(self.get(i).copied(), other.get(j).copied())
    }
    fn text_at(&self, i: usize) -> String {
        T::text(self.get(i).copied())
    }
}

fn longer_than_a_column(s: &str) -> bool {
    s.len() > MAX_VALUE_LEN
}

/// Optional text (ids, names, unit, currency, status).
pub struct OptStr;
impl Kind for OptStr {
    type Value<'a> = Option<Cow<'a, str>>;
    type Column = StrColumn;
    const TYPE: ColumnType = ColumnType::Str;
    const NULLABLE: bool = true;
    fn clear(value: &mut Self::Value<'_>) {
        *value = None;
    }
    fn push(column: &mut StrColumn, value: &Self::Value<'_>) {
        column.push(value.as_deref())
    }
    fn too_long(value: &Self::Value<'_>) -> bool {
        value.as_deref().is_some_and(longer_than_a_column)
    }
}

/// Text every row has (the metric).
pub struct Text;
impl Kind for Text {
    type Value<'a> = Cow<'a, str>;
    type Column = StrColumn;
    const TYPE: ColumnType = ColumnType::Str;
    const NULLABLE: bool = false;
    fn push(column: &mut StrColumn, value: &Self::Value<'_>) {
        column.push(Some(value))
    }
    fn too_long(value: &Self::Value<'_>) -> bool {
        longer_than_a_column(value)
    }
}

/// A JSON object written by the core (the tags).
pub struct Json;
impl Kind for Json {
    type Value<'a> = String;
    type Column = StrColumn;
    const TYPE: ColumnType = ColumnType::Str;
    const NULLABLE: bool = false;
    fn push(column: &mut StrColumn, value: &String) {
        column.push(Some(value))
    }
    fn too_long(value: &String) -> bool {
        longer_than_a_column(value)
    }
}

/// One of the core's static labels (a provider id, a charge type).
pub struct Label;
impl Kind for Label {
    type Value<'a> = &'static str;
    type Column = LabelColumn;
    const TYPE: ColumnType = ColumnType::Str;
    const NULLABLE: bool = false;
    fn push(column: &mut LabelColumn, value: &&'static str) {
        column.push(value)
    }
}

/// An instant every row has, µs since the epoch (UTC).
pub struct Time;
impl Kind for Time {
    type Value<'a> = i64;
    type Column = Vec<i64>;
    const TYPE: ColumnType = ColumnType::Datetime;
    const NULLABLE: bool = false;
    fn push(column: &mut Vec<i64>, value: &i64) {
        column.push(*value)
    }
}

/// An optional instant, µs since the epoch (UTC).
pub struct OptTime;
impl Kind for OptTime {
    type Value<'a> = Option<i64>;
    type Column = OptColumn<i64>;
    const TYPE: ColumnType = ColumnType::Datetime;
    const NULLABLE: bool = true;
    fn clear(value: &mut Self::Value<'_>) {
        *value = None;
    }
    fn push(column: &mut OptColumn<i64>, value: &Option<i64>) {
        column.push(*value)
    }
}

/// An optional float (the quantity).
pub struct OptF64;
impl Kind for OptF64 {
    type Value<'a> = Option<f64>;
    type Column = OptColumn<f64>;
    const TYPE: ColumnType = ColumnType::F64;
    const NULLABLE: bool = true;
    fn clear(value: &mut Self::Value<'_>) {
        *value = None;
    }
    fn push(column: &mut OptColumn<f64>, value: &Option<f64>) {
        column.push(*value)
    }
}

/// An optional exact amount, decimal(38, 9).
pub struct OptMoney;
impl Kind for OptMoney {
    type Value<'a> = Option<Decimal>;
    type Column = OptColumn<Decimal>;
    const TYPE: ColumnType = ColumnType::Decimal;
    const NULLABLE: bool = true;
    fn clear(value: &mut Self::Value<'_>) {
        *value = None;
    }
    fn push(column: &mut OptColumn<Decimal>, value: &Option<Decimal>) {
        column.push(*value)
    }
}

/// A flag every row has.
pub struct Flag;
impl Kind for Flag {
    type Value<'a> = bool;
    type Column = Vec<bool>;
    const TYPE: ColumnType = ColumnType::Bool;
    const NULLABLE: bool = false;
    fn push(column: &mut Vec<bool>, value: &bool) {
        column.push(*value)
    }
}

/// What orders two versions of one record: not part of its content.
pub struct Revision;
impl Kind for Revision {
    type Value<'a> = Option<i64>;
    type Column = OptColumn<i64>;
    const TYPE: ColumnType = ColumnType::I64;
    const NULLABLE: bool = true;
    fn clear(value: &mut Self::Value<'_>) {
        *value = None;
    }
    const CONTENT: bool = false;
    fn push(column: &mut OptColumn<i64>, value: &Option<i64>) {
        column.push(*value)
    }
}

/// The source a row came from: an index into the call's sources, a path in the frame.
pub struct SourceId;
impl Kind for SourceId {
    type Value<'a> = u32;
    type Column = Vec<u32>;
    const TYPE: ColumnType = ColumnType::Str;
    const NULLABLE: bool = false;
    const CONTENT: bool = false;
    fn push(column: &mut Vec<u32>, value: &u32) {
        column.push(*value)
    }
}

/// The record's index within its source.
pub struct Index;
impl Kind for Index {
    type Value<'a> = u64;
    type Column = Vec<u64>;
    const TYPE: ColumnType = ColumnType::U64;
    const NULLABLE: bool = false;
    const CONTENT: bool = false;
    fn push(column: &mut Vec<u64>, value: &u64) {
        column.push(*value)
    }
}
