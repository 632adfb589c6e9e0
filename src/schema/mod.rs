//! The canonical usage table: its columns, declared once in `canonical_table!`, and the two
//! things generated from that table here: `Row`, one row as a provider produces it, and
//! `CanonicalBatch`, the columnar builder rows are pushed into. Strings are appended to one
//! buffer per column (no allocation per value); the binding turns a batch into a Polars
//! DataFrame from the same table (`py/frame.rs`).

use std::borrow::Cow;

mod columns;
pub mod kind;
pub mod tags;
#[cfg(feature = "python")]
pub use columns::StrParts;
pub use columns::{LabelColumn, OptColumn, StrColumn, MAX_VALUE_LEN};
use kind::{Kind, Storage};
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

/// The canonical table: every column, in output order, with its kind (`schema::kind`: how a
/// row holds it, how a batch stores it, its type, whether it may be null, whether it is part of
/// a record's content). Calls `$then!` with the columns twice: all of them in order
/// (`all [name: Kind, ...]`), then by where a value comes from — `given` with each push (the
/// format's id), `row` (read from the record, in a `Row`; `= value` is what `Row::new` starts
/// from, else the type's default) and `place` (where the record came from).
///
/// Adding a column is one line here (and its kind, when it is a new one).
macro_rules! canonical_table {
    ($then:ident) => {
        $crate::schema::canonical_table! { @emit $then
            given [provider: Label]
            row [
                record_id: OptStr,
                account_id: OptStr,
                customer_id: OptStr,
                project_id: OptStr,
                user_id: OptStr,
                resource_id: OptStr,
                resource_name: OptStr,
                resource_type: OptStr,
                metric: Text,
                sku: OptStr,
                charge_type: Label = $crate::schema::charge_type::USAGE,
                usage_start: Time,
                usage_end: OptTime,
                quantity: OptF64,
                unit: OptStr,
                cost: OptMoney,
                unit_price: OptMoney,
                currency: OptStr,
                status: OptStr,
                billable: Flag = true,
                /// `{}` from `Row::new`; empty from `Row::untagged`.
                tags: Json,
                /// Orders two versions of one record (same provider and record_id, other
                /// content) so deduplication keeps the newest: Suger's lastUpdateTime (µs),
                /// Exabits' uptime (ms), a format file's `revision` column. Kept in the table
                /// so that a canonical table read back dedupes against fresh records by the
                /// same rule.
                revision: Revision,
            ]
            place [source: SourceId, source_index: Index]
        }
    };
    (@emit $then:ident
        given [$($g:ident: $gk:ident),*]
        row [$($(#[$m:meta])* $r:ident: $rk:ident $(= $rd:expr)?,)*]
        place [$($p:ident: $pk:ident),*]
    ) => {
        $then! {
            all [$($g: $gk,)* $($r: $rk,)* $($p: $pk,)*]
            given [$($g: $gk),*]
            row [$($(#[$m])* $r: $rk $(= $rd)?,)*]
            place [$($p: $pk),*]
        }
    };
}
pub(crate) use canonical_table;

/// `Row::new`'s starting value of a column: the one the table gives, else the type's default.
macro_rules! start_value {
    () => {
        Default::default()
    };
    ($v:expr) => {
        $v
    };
}

/// Generates `COLUMNS`, `Row` and `CanonicalBatch` from the table.
macro_rules! define_table {
    (
        all [$($c:ident: $ck:ident,)*]
        given [$($g:ident: $gk:ident),*]
        row [$($(#[$m:meta])* $r:ident: $rk:ident $(= $rd:expr)?,)*]
        place [$($p:ident: $pk:ident),*]
    ) => {
        /// Every canonical column, in output order, with its type and whether it may hold nulls.
        pub const COLUMNS: &[(&str, ColumnType, bool)] =
            &[$((stringify!($c), <kind::$ck as Kind>::TYPE, <kind::$ck as Kind>::NULLABLE),)*];

        /// One canonical row as a provider produces it; strings borrow from the input where
        /// they can.
        #[derive(Debug, Clone)]
        pub struct Row<'a> {
            $($(#[$m])* pub $r: <kind::$rk as Kind>::Value<'a>,)*
        }

        impl<'a> Row<'a> {
            /// A usage row with the given metric and start, tags `{}`; everything else empty.
            pub fn new(metric: impl Into<Cow<'a, str>>, usage_start: i64) -> Row<'a> {
                Row { tags: String::from("{}"), ..Row::untagged(metric, usage_start) }
            }

            /// `new` with empty tags (no allocation), for a reader that writes the tags itself.
            pub fn untagged(metric: impl Into<Cow<'a, str>>, usage_start: i64) -> Row<'a> {
                Row { metric: metric.into(), usage_start, ..Row::start() }
            }

            fn start() -> Row<'a> {
                Row { $($r: start_value!($($rd)?),)* }
            }

            /// Makes null every column `kept` leaves out that may be null (a projection: the
            /// value was read and checked, it is not stored).
            pub fn clear_unkept(&mut self, kept: &Kept) {
                $(if !kept.$r {
                    <kind::$rk as Kind>::clear(&mut self.$r);
                })*
            }

            /// The first column whose value is longer than a column can hold, if any.
            pub fn too_long(&self) -> Option<&'static str> {
                $(if <kind::$rk as Kind>::too_long(&self.$r) {
                    return Some(stringify!($r));
                })*
                None
            }
        }

        /// The canonical columns a call hands on (a scan's projection): the others that may be
        /// null are stored as nulls and left out of the frame, the rest left out of the frame.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct Kept {
            $(pub $c: bool,)*
        }

        impl Default for Kept {
            fn default() -> Kept {
                Kept::ALL
            }
        }

        impl Kept {
            pub const ALL: Kept = Kept { $($c: true,)* };

            /// Whether the column named is kept (an unknown name is not).
            pub fn has(&self, name: &str) -> bool {
                match name {
                    $(stringify!($c) => self.$c,)*
                    _ => false,
                }
            }

            /// Whether a column may be left out (false: every column is kept).
            pub fn projects(&self) -> bool {
                *self != Kept::ALL
            }

            /// The columns named (in any order; an unknown name is an error that lists the
            /// canonical columns).
            pub fn only<S: AsRef<str>>(names: &[S]) -> Result<Kept, String> {
                let mut kept = Kept { $($c: false,)* };
                for name in names {
                    match name.as_ref() {
                        $(stringify!($c) => kept.$c = true,)*
                        other => {
                            let all: Vec<&str> = COLUMNS.iter().map(|c| c.0).collect();
                            return Err(format!("{other:?} is not a canonical column (they are {})", all.join(", ")));
                        }
                    }
                }
                Ok(kept)
            }
        }

        /// Rows of the canonical table, column by column. `source` holds an index into the
        /// call's sources.
        #[derive(Debug, Default, Clone)]
        pub struct CanonicalBatch {
            $(pub $c: <kind::$ck as Kind>::Column,)*
        }

        impl CanonicalBatch {
            /// Appends one row that came from record `source_index` of source `source`.
            pub fn push(
                &mut self,
                $($g: <kind::$gk as Kind>::Value<'_>,)*
                row: &Row,
                $($p: <kind::$pk as Kind>::Value<'_>,)*
            ) {
                $(<kind::$gk as Kind>::push(&mut self.$g, &$g);)*
                $(<kind::$rk as Kind>::push(&mut self.$r, &row.$r);)*
                $(<kind::$pk as Kind>::push(&mut self.$p, &$p);)*
            }

            /// Room for `rows` more rows in every column that holds values or will when `other`
            /// is appended: a batch that small batches are merged into gets its final size at
            /// once instead of growing (and copying) by doubling.
            pub fn reserve_for(&mut self, other: &CanonicalBatch, rows: usize) {
                $(Storage::reserve_for(&mut self.$c, &other.$c, rows);)*
            }

            /// Appends every row of `other`, shifting its source indices by `index_offset`.
            pub fn append(&mut self, other: CanonicalBatch, index_offset: u64) {
                let from = self.source_index.len();
                $(Storage::append(&mut self.$c, other.$c);)*
                self.source_index.iter_mut().skip(from).for_each(|i| *i += index_offset);
            }

            /// Gives back the unused capacity of every column: a finished batch is kept until
            /// the frame is built, and growth by doubling leaves up to half of each vector empty.
            pub fn shrink_to_fit(&mut self) {
                $(Storage::shrink_to_fit(&mut self.$c);)*
            }

            /// Keeps the rows whose `keep` flag is set.
            pub fn filter(&self, keep: &[bool]) -> CanonicalBatch {
                CanonicalBatch { $($c: Storage::filter(&self.$c, keep),)* }
            }

            /// Feeds row `i`'s content (every column a kind counts as content) to a hasher.
            pub fn hash_content(&self, i: usize, h: &mut impl std::hash::Hasher) {
                $(if <kind::$ck as Kind>::CONTENT {
                    Storage::hash_at(&self.$c, i, h);
                })*
            }

            /// Whether row `i` has the content of row `j` of `other`.
            pub fn same_content(&self, i: usize, other: &CanonicalBatch, j: usize) -> bool {
                $((!<kind::$ck as Kind>::CONTENT || Storage::same_at(&self.$c, i, &other.$c, j)))&&*
            }

            /// Row `i` as `column=value` text, every column (tests compare readers with it).
            pub fn row_text(&self, i: usize) -> String {
                let mut s = String::new();
                $(s.push_str(&format!("{}={} ", stringify!($c), Storage::text_at(&self.$c, i)));)*
                s
            }
        }
    };
}

canonical_table!(define_table);

/// The `charge_type` values.
pub mod charge_type {
    pub const USAGE: &str = "usage";
    pub const COMMITTED: &str = "committed";
    pub const OVERAGE: &str = "overage";
}

/// The FOCUS spelling of the one unit every duration is converted to.
pub const HOURS: &str = "Hours";

impl CanonicalBatch {
    pub fn len(&self) -> usize {
        self.usage_start.len()
    }

    pub fn is_empty(&self) -> bool {
        self.usage_start.is_empty()
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
    fn long_values_that_come_back_are_stored_once() {
        // An OpenAI or Anthropic metric column: a record's rows name the same few metrics in
        // turn, so each value follows a different one.
        let names = ["uncached_input_tokens", "cache_read_input_tokens", "output_tokens_of_a_record"];
        let mut a = StrColumn::default();
        for round in 0..200 {
            for name in names {
                a.push(Some(name));
            }
            a.push(if round % 2 == 0 { None } else { Some("short") });
        }
        let stored: usize = a.buffers.iter().map(String::len).sum();
        assert_eq!(stored, names.iter().map(|n| n.len()).sum::<usize>(), "each name once");
        for round in 0..200 {
            for (k, name) in names.iter().enumerate() {
                assert_eq!(a.get(round * 4 + k), Some(*name));
            }
        }
        // Appended, filtered and pushed again, every value reads back as it was.
        let mut b = StrColumn::default();
        b.push(Some("output_tokens_of_a_record"));
        b.push(Some("a value only b holds, long"));
        a.append(b);
        a.push(Some("a value only b holds, long"));
        a.push(Some("uncached_input_tokens"));
        let n = a.len();
        assert_eq!(a.get(n - 4), Some("output_tokens_of_a_record"));
        assert_eq!(a.get(n - 3), Some("a value only b holds, long"));
        assert_eq!(a.get(n - 2), Some("a value only b holds, long"));
        assert_eq!(a.get(n - 1), Some("uncached_input_tokens"));
        let keep: Vec<bool> = (0..n).map(|i| i >= n - 4).collect();
        assert_eq!(
            a.filter(&keep).iter().collect::<Vec<_>>(),
            [
                "output_tokens_of_a_record",
                "a value only b holds, long",
                "a value only b holds, long",
                "uncached_input_tokens"
            ]
            .map(Some)
            .to_vec()
        );
    }

    #[test]
    fn a_column_of_distinct_long_values_stops_looking_them_up() {
        let mut a = StrColumn::default();
        let values: Vec<String> = (0..2000).map(|i| format!("record-{i:08}-of-a-page")).collect();
        values.iter().for_each(|v| a.push(Some(v)));
        assert!(a.recent.off, "no value came back: the table is dropped");
        assert_eq!(a.buffers.iter().map(String::len).sum::<usize>(), values.iter().map(String::len).sum::<usize>());
        assert!(values.iter().enumerate().all(|(i, v)| a.get(i) == Some(v.as_str())));
        // Values that differ only where the slot's hash does not look share a slot and take
        // turns in it: stored again, never mistaken for each other.
        let mut b = StrColumn::default();
        let twins = ["abcdefghijklmnopq0rstuvwxyz0123456789", "abcdefghijklmnopq1rstuvwxyz0123456789"];
        (0..10).for_each(|i| b.push(Some(twins[i % 2])));
        assert!((0..10).all(|i| b.get(i) == Some(twins[i % 2])));
        assert_eq!(b.buffers.iter().map(String::len).sum::<usize>(), 10 * 37, "one slot, taken in turn");
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
