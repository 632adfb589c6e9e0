//! The canonical usage table: its columns, and `CanonicalBatch`, the columnar builder providers
//! push rows into. Strings are appended to one buffer per column (no allocation per value);
//! the Python layer turns a batch into a Polars DataFrame.

use std::borrow::Cow;

use crate::money::Decimal;

/// The physical type of a canonical column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Str,
    /// `datetime[μs, UTC]`.
    Datetime,
    F64,
    /// `decimal(38, 9)`.
    Decimal,
    Bool,
    U64,
}

/// Every canonical column, in output order, with its type and whether it may hold nulls.
pub const COLUMNS: &[(&str, ColumnType, bool)] = &[
    ("provider", ColumnType::Str, false),
    ("record_id", ColumnType::Str, true),
    ("account_id", ColumnType::Str, true),
    ("customer_id", ColumnType::Str, true),
    ("project_id", ColumnType::Str, true),
    ("user_id", ColumnType::Str, true),
    ("resource_id", ColumnType::Str, true),
    ("resource_name", ColumnType::Str, true),
    ("resource_type", ColumnType::Str, true),
    ("metric", ColumnType::Str, false),
    ("sku", ColumnType::Str, true),
    ("charge_type", ColumnType::Str, false),
    ("usage_start", ColumnType::Datetime, false),
    ("usage_end", ColumnType::Datetime, true),
    ("quantity", ColumnType::F64, true),
    ("unit", ColumnType::Str, true),
    ("cost", ColumnType::Decimal, true),
    ("unit_price", ColumnType::Decimal, true),
    ("currency", ColumnType::Str, true),
    ("status", ColumnType::Str, true),
    ("billable", ColumnType::Bool, false),
    ("tags", ColumnType::Str, false),
    ("source", ColumnType::Str, false),
    ("source_index", ColumnType::U64, false),
];

/// The `charge_type` values.
pub mod charge_type {
    pub const USAGE: &str = "usage";
    pub const COMMITTED: &str = "committed";
    pub const OVERAGE: &str = "overage";
}

/// The FOCUS spelling of the one unit every duration is converted to.
pub const HOURS: &str = "Hours";

/// One canonical row as a provider produces it; strings borrow from the input where they can.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    pub record_id: Option<Cow<'a, str>>,
    pub account_id: Option<Cow<'a, str>>,
    pub customer_id: Option<Cow<'a, str>>,
    pub project_id: Option<Cow<'a, str>>,
    pub user_id: Option<Cow<'a, str>>,
    pub resource_id: Option<Cow<'a, str>>,
    pub resource_name: Option<Cow<'a, str>>,
    pub resource_type: Option<Cow<'a, str>>,
    pub metric: Cow<'a, str>,
    pub sku: Option<Cow<'a, str>>,
    pub charge_type: &'static str,
    pub usage_start: i64,
    pub usage_end: Option<i64>,
    pub quantity: Option<f64>,
    pub unit: Option<Cow<'a, str>>,
    pub cost: Option<Decimal>,
    pub unit_price: Option<Decimal>,
    pub currency: Option<Cow<'a, str>>,
    pub status: Option<Cow<'a, str>>,
    pub billable: bool,
    pub tags: String,
    /// Not a column: orders two versions of one record (same provider and record_id, other
    /// content) so deduplication keeps the newest. Suger: lastUpdateTime; Exabits: uptime.
    pub revision: Option<i64>,
}

impl<'a> Row<'a> {
    /// A usage row with the given metric and start; everything else empty.
    pub fn new(metric: impl Into<Cow<'a, str>>, usage_start: i64) -> Row<'a> {
        Row {
            record_id: None,
            account_id: None,
            customer_id: None,
            project_id: None,
            user_id: None,
            resource_id: None,
            resource_name: None,
            resource_type: None,
            metric: metric.into(),
            sku: None,
            charge_type: charge_type::USAGE,
            usage_start,
            usage_end: None,
            quantity: None,
            unit: None,
            cost: None,
            unit_price: None,
            currency: None,
            status: None,
            billable: true,
            tags: String::from("{}"),
            revision: None,
        }
    }
}

/// A string column: one byte buffer, end offsets and validity.
#[derive(Debug, Default, Clone)]
pub struct StrColumn {
    bytes: String,
    ends: Vec<usize>,
    valid: Vec<bool>,
}

impl StrColumn {
    pub fn with_capacity(rows: usize) -> Self {
        StrColumn { bytes: String::new(), ends: Vec::with_capacity(rows), valid: Vec::with_capacity(rows) }
    }

    pub fn push(&mut self, v: Option<&str>) {
        if let Some(s) = v {
            self.bytes.push_str(s);
        }
        self.ends.push(self.bytes.len());
        self.valid.push(v.is_some());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The text of every value end to end, the end offset of each value, and which are present.
    pub fn into_parts(self) -> (String, Vec<usize>, Vec<bool>) {
        (self.bytes, self.ends, self.valid)
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        if !*self.valid.get(i)? {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.bytes.get(start..self.ends[i])
    }

    pub fn iter(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    pub fn append(&mut self, other: &StrColumn) {
        let base = self.bytes.len();
        self.bytes.push_str(&other.bytes);
        self.ends.extend(other.ends.iter().map(|e| e + base));
        self.valid.extend_from_slice(&other.valid);
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
}

/// Rows of the canonical table, column by column. `source` holds an index into `sources`.
#[derive(Debug, Default, Clone)]
pub struct CanonicalBatch {
    pub provider: Vec<&'static str>,
    pub record_id: StrColumn,
    pub account_id: StrColumn,
    pub customer_id: StrColumn,
    pub project_id: StrColumn,
    pub user_id: StrColumn,
    pub resource_id: StrColumn,
    pub resource_name: StrColumn,
    pub resource_type: StrColumn,
    pub metric: StrColumn,
    pub sku: StrColumn,
    pub charge_type: Vec<&'static str>,
    pub usage_start: Vec<i64>,
    pub usage_end: Vec<Option<i64>>,
    pub quantity: Vec<Option<f64>>,
    pub unit: StrColumn,
    pub cost: Vec<Option<Decimal>>,
    pub unit_price: Vec<Option<Decimal>>,
    pub currency: StrColumn,
    pub status: StrColumn,
    pub billable: Vec<bool>,
    pub tags: StrColumn,
    pub source: Vec<u32>,
    pub source_index: Vec<u64>,
    pub revision: Vec<Option<i64>>,
}

/// Applies `$m!(field)` to every string column of a batch.
macro_rules! str_columns {
    ($m:ident) => {
        $m!(record_id);
        $m!(account_id);
        $m!(customer_id);
        $m!(project_id);
        $m!(user_id);
        $m!(resource_id);
        $m!(resource_name);
        $m!(resource_type);
        $m!(metric);
        $m!(sku);
        $m!(unit);
        $m!(currency);
        $m!(status);
        $m!(tags);
    };
}

/// Applies `$m!(field)` to every plain `Vec` column of a batch.
macro_rules! vec_columns {
    ($m:ident) => {
        $m!(provider);
        $m!(charge_type);
        $m!(usage_start);
        $m!(usage_end);
        $m!(quantity);
        $m!(cost);
        $m!(unit_price);
        $m!(billable);
        $m!(source);
        $m!(source_index);
        $m!(revision);
    };
}

impl CanonicalBatch {
    pub fn len(&self) -> usize {
        self.usage_start.len()
    }

    pub fn is_empty(&self) -> bool {
        self.usage_start.is_empty()
    }

    /// Appends one row that came from record `source_index` of source `source`.
    pub fn push(&mut self, provider: &'static str, row: &Row, source: u32, source_index: u64) {
        self.provider.push(provider);
        self.record_id.push(row.record_id.as_deref());
        self.account_id.push(row.account_id.as_deref());
        self.customer_id.push(row.customer_id.as_deref());
        self.project_id.push(row.project_id.as_deref());
        self.user_id.push(row.user_id.as_deref());
        self.resource_id.push(row.resource_id.as_deref());
        self.resource_name.push(row.resource_name.as_deref());
        self.resource_type.push(row.resource_type.as_deref());
        self.metric.push(Some(&row.metric));
        self.sku.push(row.sku.as_deref());
        self.charge_type.push(row.charge_type);
        self.usage_start.push(row.usage_start);
        self.usage_end.push(row.usage_end);
        self.quantity.push(row.quantity);
        self.unit.push(row.unit.as_deref());
        self.cost.push(row.cost);
        self.unit_price.push(row.unit_price);
        self.currency.push(row.currency.as_deref());
        self.status.push(row.status.as_deref());
        self.billable.push(row.billable);
        self.tags.push(Some(&row.tags));
        self.source.push(source);
        self.source_index.push(source_index);
        self.revision.push(row.revision);
    }

    /// Appends every row of `other`, shifting its source indices by `index_offset`.
    pub fn append(&mut self, other: &CanonicalBatch, index_offset: u64) {
        macro_rules! app_str {
            ($f:ident) => {
                self.$f.append(&other.$f)
            };
        }
        str_columns!(app_str);
        self.provider.extend_from_slice(&other.provider);
        self.charge_type.extend_from_slice(&other.charge_type);
        self.usage_start.extend_from_slice(&other.usage_start);
        self.usage_end.extend_from_slice(&other.usage_end);
        self.quantity.extend_from_slice(&other.quantity);
        self.cost.extend_from_slice(&other.cost);
        self.unit_price.extend_from_slice(&other.unit_price);
        self.billable.extend_from_slice(&other.billable);
        self.source.extend_from_slice(&other.source);
        self.source_index.extend(other.source_index.iter().map(|i| i + index_offset));
        self.revision.extend_from_slice(&other.revision);
    }

    /// Keeps the rows whose `keep` flag is set.
    pub fn filter(&self, keep: &[bool]) -> CanonicalBatch {
        let mut out = CanonicalBatch::default();
        macro_rules! filt_str {
            ($f:ident) => {
                out.$f = self.$f.filter(keep)
            };
        }
        macro_rules! filt_vec {
            ($f:ident) => {
                out.$f = self.$f.iter().zip(keep).filter(|(_, k)| **k).map(|(v, _)| v.clone()).collect()
            };
        }
        str_columns!(filt_str);
        vec_columns!(filt_vec);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str_column_round_trip_and_append() {
        let mut a = StrColumn::default();
        a.push(Some("x"));
        a.push(None);
        a.push(Some(""));
        let mut b = StrColumn::default();
        b.push(Some("yz"));
        a.append(&b);
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![Some("x"), None, Some(""), Some("yz")]);
        let f = a.filter(&[false, true, true, true]);
        assert_eq!(f.iter().collect::<Vec<_>>(), vec![None, Some(""), Some("yz")]);
    }

    #[test]
    fn batch_append_shifts_source_index() {
        let row = Row::new("m", 0);
        let mut a = CanonicalBatch::default();
        a.push("gitpod", &row, 0, 0);
        let mut b = CanonicalBatch::default();
        b.push("gitpod", &row, 0, 0);
        b.push("gitpod", &row, 0, 1);
        a.append(&b, 10);
        assert_eq!(a.source_index, vec![0, 10, 11]);
        assert_eq!(a.len(), 3);
        assert_eq!(a.metric.get(2), Some("m"));
    }
}
