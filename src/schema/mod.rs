//! The canonical usage table: its columns, and `CanonicalBatch`, the columnar builder providers
//! push rows into. Strings are appended to one buffer per column (no allocation per value);
//! the Python layer turns a batch into a Polars DataFrame.

use std::borrow::Cow;

use crate::money::Decimal;

mod columns;
pub mod tags;
#[cfg(feature = "python")]
pub use columns::StrParts;
pub use columns::{LabelColumn, OptColumn, StrColumn, MAX_VALUE_LEN};
pub use tags::Tags;

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
    I64,
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
    ("revision", ColumnType::I64, true),
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
    /// Orders two versions of one record (same provider and record_id, other content) so
    /// deduplication keeps the newest: Suger's lastUpdateTime (µs), Exabits' uptime (ms), a
    /// format file's `revision` column. Kept in the table so that a canonical table read back
    /// dedupes against fresh records by the same rule.
    pub revision: Option<i64>,
}

impl<'a> Row<'a> {
    /// The first string column whose value is longer than a column can hold, if any.
    pub fn too_long(&self) -> Option<&'static str> {
        let long = |v: Option<&str>| v.is_some_and(|s| s.len() > MAX_VALUE_LEN);
        [
            ("record_id", self.record_id.as_deref()),
            ("account_id", self.account_id.as_deref()),
            ("customer_id", self.customer_id.as_deref()),
            ("project_id", self.project_id.as_deref()),
            ("user_id", self.user_id.as_deref()),
            ("resource_id", self.resource_id.as_deref()),
            ("resource_name", self.resource_name.as_deref()),
            ("resource_type", self.resource_type.as_deref()),
            ("metric", Some(&self.metric)),
            ("sku", self.sku.as_deref()),
            ("unit", self.unit.as_deref()),
            ("currency", self.currency.as_deref()),
            ("status", self.status.as_deref()),
            ("tags", Some(&self.tags)),
        ]
        .into_iter()
        .find(|(_, v)| long(*v))
        .map(|(name, _)| name)
    }

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

/// Rows of the canonical table, column by column. `source` holds an index into `sources`.
#[derive(Debug, Default, Clone)]
pub struct CanonicalBatch {
    pub provider: LabelColumn,
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
    pub charge_type: LabelColumn,
    pub usage_start: Vec<i64>,
    pub usage_end: OptColumn<i64>,
    pub quantity: OptColumn<f64>,
    pub unit: StrColumn,
    pub cost: OptColumn<Decimal>,
    pub unit_price: OptColumn<Decimal>,
    pub currency: StrColumn,
    pub status: StrColumn,
    pub billable: Vec<bool>,
    pub tags: StrColumn,
    pub source: Vec<u32>,
    pub source_index: Vec<u64>,
    pub revision: OptColumn<i64>,
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
        $m!(usage_start);
        $m!(billable);
        $m!(source);
        $m!(source_index);
    };
}

/// Applies `$m!(field)` to every `OptColumn` and `LabelColumn` of a batch.
macro_rules! opt_columns {
    ($m:ident) => {
        $m!(provider);
        $m!(charge_type);
        $m!(usage_end);
        $m!(quantity);
        $m!(cost);
        $m!(unit_price);
        $m!(revision);
    };
}

impl CanonicalBatch {
    /// Row `i` as `column=value` text, every column (tests compare readers with it).
    pub fn row_text(&self, i: usize) -> String {
        let mut s = String::new();
        macro_rules! text {
            ($f:ident) => {
                s.push_str(&format!("{}={:?} ", stringify!($f), self.$f.get(i)));
            };
        }
        str_columns!(text);
        vec_columns!(text);
        text!(provider);
        text!(charge_type);
        text!(usage_end);
        text!(quantity);
        text!(revision);
        for (name, col) in [("cost", &self.cost), ("unit_price", &self.unit_price)] {
            s.push_str(&format!("{name}={:?} ", col.get(i).map(|d| d.to_string())));
        }
        s
    }

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

    /// Room for `rows` more rows in every column that holds values or will when `other` is
    /// appended: a batch that small batches are merged into gets its final size at once
    /// instead of growing (and copying) by doubling.
    pub fn reserve_for(&mut self, other: &CanonicalBatch, rows: usize) {
        macro_rules! res {
            ($f:ident) => {
                self.$f.reserve_for(&other.$f, rows)
            };
        }
        str_columns!(res);
        opt_columns!(res);
        macro_rules! res_vec {
            ($f:ident) => {
                self.$f.reserve(rows)
            };
        }
        vec_columns!(res_vec);
    }

    /// Appends every row of `other`, shifting its source indices by `index_offset`.
    pub fn append(&mut self, other: CanonicalBatch, index_offset: u64) {
        macro_rules! app_str {
            ($f:ident) => {
                self.$f.append(other.$f)
            };
        }
        str_columns!(app_str);
        self.provider.append(other.provider);
        self.charge_type.append(other.charge_type);
        self.usage_start.extend_from_slice(&other.usage_start);
        self.usage_end.append(other.usage_end);
        self.quantity.append(other.quantity);
        self.cost.append(other.cost);
        self.unit_price.append(other.unit_price);
        self.billable.extend_from_slice(&other.billable);
        self.source.extend_from_slice(&other.source);
        self.source_index.extend(other.source_index.iter().map(|i| i + index_offset));
        self.revision.append(other.revision);
    }

    /// Gives back the unused capacity of every column: a finished batch is kept until the
    /// frame is built, and growth by doubling leaves up to half of each vector empty.
    pub fn shrink_to_fit(&mut self) {
        macro_rules! shrink {
            ($f:ident) => {
                self.$f.shrink_to_fit()
            };
        }
        str_columns!(shrink);
        vec_columns!(shrink);
        opt_columns!(shrink);
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
        macro_rules! filt_opt {
            ($f:ident) => {
                out.$f = self.$f.filter(keep)
            };
        }
        opt_columns!(filt_opt);
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
        b.push(Some("a value longer than twelve bytes"));
        b.push(Some("a value longer than twelve bytes"));
        b.push(Some("twelve bytes"));
        a.append(b);
        let long = Some("a value longer than twelve bytes");
        let all = vec![Some("x"), None, Some(""), Some("yz"), long, long, Some("twelve bytes")];
        assert_eq!(a.iter().collect::<Vec<_>>(), all);
        assert_eq!(a.buffers.iter().map(String::len).sum::<usize>(), 32, "the repeated value is stored once");
        let f = a.filter(&[false, true, true, true, true, false, true]);
        assert_eq!(f.iter().collect::<Vec<_>>(), vec![None, Some(""), Some("yz"), long, Some("twelve bytes")]);
    }

    #[test]
    fn optional_columns_count_leading_nulls_and_keep_order() {
        let mut a: OptColumn<i64> = OptColumn::default();
        a.push(None);
        a.push(None);
        assert_eq!((a.len(), a.values.len()), (2, 0));
        let mut b = OptColumn::default();
        b.push(None);
        b.push(Some(7));
        b.push(None);
        a.append(b);
        a.append(OptColumn { values: Vec::new(), valid: Vec::new(), leading_nulls: 2 });
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![None, None, None, Some(7), None, None, None]);
        let f = a.filter(&[false, false, false, true, true, false, false]);
        assert_eq!(f.iter().collect::<Vec<_>>(), vec![Some(7), None]);
        assert_eq!(a.get(99), None);
    }

    #[test]
    fn leading_nulls_cost_nothing_until_a_value_arrives() {
        let mut a = StrColumn::default();
        a.push(None);
        a.push(None);
        assert_eq!((a.len(), a.views.len()), (2, 0));
        let mut b = StrColumn::default();
        b.push(None);
        a.append(b.clone());
        assert_eq!((a.len(), a.views.len()), (3, 0));
        b.push(Some("a long value, in a buffer"));
        a.append(b);
        a.push(Some("short"));
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            vec![None, None, None, None, Some("a long value, in a buffer"), Some("short")]
        );
        let mut c = StrColumn::default();
        c.push(Some("another long value, in a buffer"));
        a.append(c);
        assert_eq!(a.get(6), Some("another long value, in a buffer"));
        assert_eq!(a.get(7), None);
    }

    #[test]
    fn equal_values_hash_alike_however_their_columns_were_built() {
        use std::hash::Hasher;
        let hash = |c: &StrColumn, i: usize| {
            let mut h = crate::hash::Fx::default();
            c.hash_value(i, &mut h);
            h.finish()
        };
        let long = "a value longer than twelve bytes";
        // Leading nulls only counted, a long value stored once for two rows, and a column
        // appended after another (its buffer indices shifted).
        let mut a = StrColumn::default();
        [None, None, Some("short"), Some(long), Some(long)].into_iter().for_each(|v| a.push(v));
        let mut b = StrColumn::default();
        b.push(Some("x"));
        let mut tail = StrColumn::default();
        [None, Some(long), Some("short"), Some(""), None].into_iter().for_each(|v| tail.push(v));
        b.append(tail);
        assert_eq!(hash(&a, 0), hash(&b, 1)); // null
        assert_eq!(hash(&a, 3), hash(&b, 2)); // long
        assert_eq!(hash(&a, 4), hash(&b, 2));
        assert_eq!(hash(&a, 2), hash(&b, 3)); // short
        assert_ne!(hash(&b, 4), hash(&b, 5)); // "" is not null
        assert_ne!(hash(&a, 2), hash(&a, 3));
    }

    #[test]
    fn label_columns_store_a_long_label_once_and_remap_it_on_append() {
        let mut a = LabelColumn::default();
        ["gitpod", "consumption_log", "consumption_log", "gitpod"].into_iter().for_each(|l| a.push(l));
        let mut b = LabelColumn::default();
        ["consumption_log", "suger", "a_third_long_label"].into_iter().for_each(|l| b.push(l));
        assert_eq!(b.text, "consumption_loga_third_long_label");
        a.append(b);
        let all = [
            "gitpod",
            "consumption_log",
            "consumption_log",
            "gitpod",
            "consumption_log",
            "suger",
            "a_third_long_label",
        ];
        assert_eq!((0..a.len()).map(|i| a.get(i)).collect::<Vec<_>>(), all.map(Some).to_vec());
        assert_eq!(a.text, "consumption_loga_third_long_label", "each long label once");
        let parts = a.filter(&[false, true, false, false, false, true, true]).into_parts();
        assert_eq!(
            (0..parts.len).map(|i| parts.get(i)).collect::<Vec<_>>(),
            vec![Some("consumption_log"), Some("suger"), Some("a_third_long_label")]
        );
        assert!(parts.valid.is_empty(), "never null");
    }

    #[test]
    fn batch_append_shifts_source_index() {
        let row = Row::new("m", 0);
        let mut a = CanonicalBatch::default();
        a.push("gitpod", &row, 0, 0);
        let mut b = CanonicalBatch::default();
        b.push("gitpod", &row, 0, 0);
        b.push("gitpod", &row, 0, 1);
        a.append(b, 10);
        assert_eq!(a.source_index, vec![0, 10, 11]);
        assert_eq!(a.len(), 3);
        assert_eq!(a.metric.get(2), Some("m"));
    }
}
