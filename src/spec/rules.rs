//! The compiled form of a format file (`compile` makes it, `read` runs it): per canonical
//! column a `ValueRule` (where its value comes from, its type, its checks), per row shape a
//! `RowRule`, and the `Tree` of record fields the rules read (the rest are tags).

use super::cond::CondRule;
use super::path::Path;
use crate::money::Decimal;
use crate::providers::FormatInfo;

/// A column a format file may fill (`revision` orders two versions of one record for dedupe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Col {
    // Read first, in this order, as the Rust formats do: times, then quantity and unit.
    UsageStart,
    UsageEnd,
    Quantity,
    Unit,
    RecordId,
    AccountId,
    CustomerId,
    ProjectId,
    UserId,
    ResourceId,
    ResourceName,
    ResourceType,
    Metric,
    Sku,
    ChargeType,
    Cost,
    UnitPrice,
    Currency,
    Status,
    Billable,
    Revision,
}

/// The values a row reads without the general evaluation: most columns of most formats are
/// a constant or one field of the record read as text, an id or a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fast {
    No,
    /// A constant with nothing to check.
    Const,
    /// `direct` read as a string, id or time, with no map, case or arithmetic (null markers,
    /// `otherwise`, a default and `required` allowed).
    Field,
}

/// How a column's value is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Id,
    Time,
    EpochS,
    EpochMs,
    EpochUs,
    Date,
    Number,
    Duration,
    Decimal,
    Bool,
}

impl Kind {
    pub(super) const NAMES: &[(&str, Kind)] = &[
        ("string", Kind::String),
        ("id", Kind::Id),
        ("time", Kind::Time),
        ("epoch_s", Kind::EpochS),
        ("epoch_ms", Kind::EpochMs),
        ("epoch_us", Kind::EpochUs),
        ("date", Kind::Date),
        ("number", Kind::Number),
        ("duration", Kind::Duration),
        ("decimal", Kind::Decimal),
        ("bool", Kind::Bool),
    ];
}

impl Col {
    pub(super) const NAMES: &[(&str, Col)] = &[
        ("record_id", Col::RecordId),
        ("account_id", Col::AccountId),
        ("customer_id", Col::CustomerId),
        ("project_id", Col::ProjectId),
        ("user_id", Col::UserId),
        ("resource_id", Col::ResourceId),
        ("resource_name", Col::ResourceName),
        ("resource_type", Col::ResourceType),
        ("metric", Col::Metric),
        ("sku", Col::Sku),
        ("charge_type", Col::ChargeType),
        ("usage_start", Col::UsageStart),
        ("usage_end", Col::UsageEnd),
        ("quantity", Col::Quantity),
        ("unit", Col::Unit),
        ("cost", Col::Cost),
        ("unit_price", Col::UnitPrice),
        ("currency", Col::Currency),
        ("status", Col::Status),
        ("billable", Col::Billable),
        ("revision", Col::Revision),
    ];

    pub fn name(self) -> &'static str {
        Col::NAMES.iter().find(|(_, c)| *c == self).map_or("", |(n, _)| n)
    }

    /// The types a column accepts, the first being its default.
    pub(super) fn kinds(self) -> &'static [Kind] {
        use Kind::*;
        match self {
            Col::UsageStart | Col::UsageEnd | Col::Revision => &[Time, EpochS, EpochMs, EpochUs, Date],
            Col::Quantity => &[Number, Duration],
            Col::Cost | Col::UnitPrice => &[Decimal],
            Col::Billable => &[Bool],
            Col::RecordId => &[Id, String],
            _ => &[String, Id],
        }
    }
}

/// A value known when the file is compiled (a constant, a default, a map's result). Text is
/// interned (`providers::intern`: kept once per process per distinct text) so that rows borrow
/// it instead of copying it per row.
#[derive(Debug, Clone, PartialEq)]
pub enum Const {
    Null,
    Str(&'static str),
    Num(f64),
    Dec(Decimal),
    Time(i64),
    Bool(bool),
}

#[derive(Debug, Clone)]
pub enum Source {
    /// The first of these paths that is present.
    Paths(Vec<Path>),
    Const(Const),
    Join(Vec<Path>),
    HoursBetween(Path, Path),
    Sum(Vec<Path>),
}

#[derive(Debug, Clone)]
pub struct ValueRule {
    pub col: Col,
    pub source: Source,
    /// The record key the value is, when its source is one plain field of the record (most
    /// are): read without the general path machinery.
    pub direct: Option<String>,
    pub kind: Kind,
    pub required: bool,
    pub hint: String,
    pub default: Option<Const>,
    /// Values (as text: a string's content, else its JSON) that mean none.
    pub null_if: Vec<String>,
    /// Values (as text) replaced by constants.
    pub map: Vec<(String, Const)>,
    pub otherwise: Option<Const>,
    pub scale: i32,
    pub divide: Option<f64>,
    pub upper: Option<bool>,
    pub non_negative: bool,
    /// A `duration`'s `(hours, per)` (see `time::hours_per`).
    pub hours_per: Option<(i128, i128)>,
    pub to_hours: bool,
    /// No default, requirement, check or arithmetic: the value read is the value.
    pub plain: bool,
    /// A `usage_start` / `usage_end` read as a time from one path, plainly: the row keeps it,
    /// so that `hours_between` the same path does not read it again.
    pub known_time: bool,
    /// This rule's slot among the page's field-position hints (`SpecPage::hints`).
    pub hint_slot: usize,
    /// How a row reads it without the general evaluation (`SpecPage::row`).
    pub fast: Fast,
    /// The slot of the per-record cache this value is kept in when a record gives several rows
    /// (a value that does not depend on the row's field or `each` element is read once).
    pub shared: Option<usize>,
    /// Reading it cannot fail and no other column reads it (a join of the record's own fields,
    /// `$page` / `$parent` values and keys into an id or label column): a call that leaves its
    /// column out does not read it, and rejects the same records.
    pub skippable: bool,
}

impl ValueRule {
    /// What errors call the value: its (first) path as written, else the column.
    pub fn name(&self) -> &str {
        match &self.source {
            Source::Paths(p) => p.first().map_or(self.col.name(), |p| p.text.as_str()),
            Source::HoursBetween(_, end) => &end.text,
            _ => self.col.name(),
        }
    }
}

/// A rule adding rows: `fields` lists are expanded when compiled into one rule per field.
#[derive(Debug)]
pub struct RowRule {
    pub when: Option<std::sync::Arc<CondRule>>,
    pub each: Option<Path>,
    /// The row exists only when this path is present (one rule per entry of `fields`).
    pub if_present: Option<Path>,
    /// Every column of the row: `[columns]` with the rule's own columns over them.
    pub columns: Vec<ValueRule>,
}

/// Where a page's records are.
#[derive(Debug)]
pub enum RecordsAt {
    Key(String),
    /// `outer[*].inner`: the arrays at `inner` in each element of the array at `outer`.
    Nested {
        outer: Path,
        inner: Path,
    },
}

#[derive(Debug)]
pub struct CountRule {
    pub field: String,
    pub at_least: bool,
    pub zero_means_none: bool,
}

/// A compiled format file.
#[derive(Debug)]
pub struct Compiled {
    pub info: FormatInfo,
    pub records: RecordsAt,
    pub page: Option<CondRule>,
    pub record: CondRule,
    pub count: Option<CountRule>,
    pub columns: Vec<ValueRule>,
    /// At least one: without `[[rows]]`, one row of `[columns]` per record.
    pub rows: Vec<RowRule>,
    /// The file has `[[rows]]`: a record that none of them applies to is rejected.
    pub explicit_rows: bool,
    /// A record may give several rows: values they share are read once per record.
    pub multi_row: bool,
    /// The size of that per-record cache (`ValueRule::shared`).
    pub cache_slots: usize,
    /// Record fields some rule reads: the tags hold the others. A nested path keeps the rest
    /// of its object in the tags (`metaInfo.timestamp` read: `metaInfo.other` tagged).
    pub mapped: Tree,
    /// `$page` and `$parent` paths, resolved once per page (or per parent element).
    pub page_paths: Vec<Path>,
    pub parent_paths: Vec<Path>,
    /// The `unit` column converts durations to hours.
    pub to_hours: bool,
    /// Record fields whose object some path reads into (`cache_creation` of
    /// `cache_creation.ephemeral_5m_input_tokens`): parsed once per record.
    pub nested: Vec<String>,
}

/// Record fields read by the rules, as a tree of keys (`None`: the whole value is read). A
/// list, searched in order: formats read a handful of fields, and a record's keys are compared
/// against them one by one, the way the Rust formats' `MAPPED` lists are.
#[derive(Debug, Default)]
pub struct Tree(pub Vec<(String, Option<Tree>)>);

impl Tree {
    pub fn get(&self, key: &str) -> Option<&Option<Tree>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, t)| t)
    }

    pub(super) fn add(&mut self, keys: &[String]) {
        let Some((first, rest)) = keys.split_first() else { return };
        let at = match self.0.iter().position(|(k, _)| k == first) {
            Some(i) => i,
            None => {
                self.0.push((first.clone(), Some(Tree::default())));
                self.0.len() - 1
            }
        };
        let entry = &mut self.0[at].1;
        match (entry, rest.is_empty()) {
            (e, true) => *e = None,
            (Some(t), false) => t.add(rest),
            (None, false) => {}
        }
    }
}
