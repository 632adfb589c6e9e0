//! A compiled format file at work: the same `FormatReader` face, the same typed readers
//! (`json::value`) and the same row and tags builders as the formats written in Rust.

use std::borrow::Cow;

use super::cond::CondRule;
use super::path::{Path, Scope};
use super::rules::{Col, Compiled, Fast, Kind, RecordsAt, RowRule, Source, Tree, ValueRule};
use super::value::{add, finish, same, text_of, typed, V};
use crate::json::{join_path, value, FieldError, FieldResult, Kind as JsonKind, Raw, RawObject};
use crate::money::Decimal;
use crate::providers::{
    count_warning, first_item_is, FormatInfo, FormatReader, Nested, PageRecords, ReadOptions, RecordReader, WholeSource,
};
use crate::schema::{charge_type, Row, Tags, HOURS};
use crate::time::MICROS_PER_HOUR;

impl FormatReader for Compiled {
    fn info(&self) -> &FormatInfo {
        &self.info
    }

    fn records_key(&self) -> &str {
        match &self.records {
            RecordsAt::Key(k) => k,
            RecordsAt::Nested { outer, .. } => outer.record_field().unwrap_or(""),
        }
    }

    fn is_page(&self, obj: &RawObject) -> bool {
        self.page.as_ref().is_some_and(|c| self.holds(c, obj))
    }

    fn is_record(&self, obj: &RawObject) -> bool {
        self.holds(&self.record, obj)
    }

    fn probes(&self) -> Vec<(bool, String)> {
        let mut out = Vec::new();
        for (page, cond) in [(true, self.page.as_ref()), (false, Some(&self.record))] {
            let Some(cond) = cond else { continue };
            let mut obj = serde_json::Map::new();
            cond.probe(&mut obj);
            let text = serde_json::Value::Object(obj).to_string();
            // Only a probe the format itself takes says something about it.
            if RawObject::from_validated(&text)
                .is_some_and(|o| if page { self.is_page(&o) } else { self.is_record(&o) })
            {
                out.push((page, text));
            }
        }
        out
    }

    fn page_records<'d>(&self, page: &RawObject<'d>) -> FieldResult<PageRecords<'d>> {
        match &self.records {
            RecordsAt::Key(k) => Ok(PageRecords::Array(page.array(k)?.unwrap_or_default())),
            RecordsAt::Nested { outer, inner } => {
                let mut records = Vec::new();
                let mut nested = Nested {
                    parents: Vec::new(),
                    places: Vec::new(),
                    outer: outer.text.clone(),
                    inner: inner.text.clone(),
                };
                for (i, parent) in elements(outer, page)?.into_iter().enumerate() {
                    let at = || format!("{}[{i}]", outer.text);
                    let parent = RawObject::parse(parent, &at())?;
                    let held = elements(inner, &parent).map_err(|e| e.within(&at()))?;
                    nested.places.extend((0..held.len()).map(|j| (i as u32, j as u32)));
                    records.extend(held);
                    nested.parents.push(parent);
                }
                Ok(PageRecords::Nested(records, nested))
            }
        }
    }

    fn open_page<'s>(
        &'s self,
        envelope: Option<&RawObject>,
        records: &[&str],
        nested: Option<&Nested>,
        options: &ReadOptions,
        _: &WholeSource,
    ) -> FieldResult<Box<dyn RecordReader + 's>> {
        let owned = |paths: &[Path], root: Option<&RawObject>| -> FieldResult<Vec<Option<String>>> {
            paths
                .iter()
                .map(|p| match root {
                    None => Ok(None),
                    Some(r) => p.locate_in(r).map(|v| v.map(|v| v.get().to_string())).map_err(|e| scoped(e, p)),
                })
                .collect()
        };
        let mut page = SpecPage {
            spec: self,
            page: owned(&self.page_paths, envelope)?,
            parents: Vec::new(),
            parent_of: Vec::new(),
            warning: None,
            hints: self.rows.iter().flat_map(|r| &r.columns).map(|_| Default::default()).collect(),
            skip: self
                .rows
                .iter()
                .flat_map(|r| &r.columns)
                .map(|c| c.skippable && !options.kept.has(c.col.name()))
                .collect(),
        };
        if let (RecordsAt::Nested { .. }, Some(nested)) = (&self.records, nested) {
            // The parents as `page_records` parsed them: no outer element is read again.
            let mut holds = vec![false; nested.parents.len()];
            for &(p, _) in &nested.places {
                if let Some(h) = holds.get_mut(p as usize) {
                    *h = true;
                }
            }
            page.parent_of = nested.places.iter().map(|&(p, _)| p).collect();
            for (parent, holds) in nested.parents.iter().zip(holds) {
                let values = if self.parent_paths.is_empty() || !holds {
                    Vec::new()
                } else {
                    owned(&self.parent_paths, Some(parent))?
                };
                page.parents.push(values);
            }
        }
        if let (Some(c), Some(env)) = (&self.count, envelope) {
            let stated = env.number(&c.field).ok().flatten();
            if !(c.zero_means_none && stated.is_none_or(|n| n <= 0.0)) {
                page.warning = count_warning(envelope, &c.field, records.len(), c.at_least);
            }
        }
        Ok(Box::new(page))
    }
}

/// The elements of the array at `path` in `obj` (none when absent or null).
fn elements<'d>(path: &Path, obj: &RawObject<'d>) -> FieldResult<Vec<Raw<'d>>> {
    match path.locate_in(obj)? {
        None => Ok(Vec::new()),
        Some(raw) => crate::json::parse_array(raw).map_err(|e| e.within(&path.text)),
    }
}

/// An error from a `$page` or `$parent` value, named with its scope.
fn scoped(mut e: FieldError, p: &Path) -> FieldError {
    if !e.path.starts_with('$') {
        let scope = p.written.strip_suffix(p.text.as_str()).unwrap_or("").trim_end_matches('.');
        e.path = join_path(scope, &e.path);
    }
    e
}

impl Compiled {
    fn holds(&self, c: &CondRule, obj: &RawObject) -> bool {
        match c {
            CondRule::Has(keys) => keys.iter().all(|k| obj.has(k)),
            CondRule::HasAny(keys) => keys.iter().any(|k| obj.has(k)),
            CondRule::Lacks(keys) => !keys.iter().any(|k| obj.has(k)),
            CondRule::Array(k) => obj.get(k).is_some_and(|v| v.get().starts_with('[')),
            CondRule::Object(k) => obj.get(k).is_some_and(|v| v.get().starts_with('{')),
            CondRule::Absent(k) => obj.get(k).is_none_or(|v| v.get() == "null"),
            CondRule::Equals(pairs) => pairs.iter().all(|(k, want)| obj.get(k).is_some_and(|v| same(v, want))),
            CondRule::OneOf(pairs) => {
                pairs.iter().all(|(k, wants)| obj.get(k).is_some_and(|v| wants.iter().any(|w| same(v, w))))
            }
            CondRule::Any(cs) => cs.iter().any(|c| self.holds(c, obj)),
            CondRule::All(cs) => cs.iter().all(|c| self.holds(c, obj)),
            CondRule::Not(c) => !self.holds(c, obj),
            CondRule::Record(want) => self.is_record(obj) == *want,
            CondRule::FirstRecord(k) => first_item_is(obj, k, |r| self.is_record(r)),
        }
    }
}

/// What one page shares with its records: `$page` values, each parent's `$parent` values.
struct SpecPage<'s> {
    spec: &'s Compiled,
    page: Vec<Option<String>>,
    parents: Vec<Vec<Option<String>>>,
    /// Per record of the page, the index of its parent.
    parent_of: Vec<u32>,
    warning: Option<String>,
    /// Per rule (`ValueRule::hint_slot`), where its record field was last found.
    hints: Vec<std::sync::atomic::AtomicU32>,
    /// Per rule (by `hint_slot`), whether it is not read: its column is left out and reading
    /// it cannot fail (`ValueRule::skippable`).
    skip: Vec<bool>,
}

/// A placeholder for the times a row has not read.
static NO_PATH: std::sync::LazyLock<Path> = std::sync::LazyLock::new(|| Path {
    scope: Scope::Key,
    steps: Vec::new(),
    text: String::new(),
    written: String::new(),
});

/// Where paths of one row are read.
struct Scope2<'r, 'a> {
    record: &'r RawObject<'a>,
    /// The record's objects that paths read into, parsed once (`Compiled::nested`).
    nested: &'r [std::cell::OnceCell<Option<RawObject<'a>>>],
    parent: &'r [Option<String>],
    /// The element or entry value of a rule's `each`, with its path in the record.
    item: Option<(Raw<'a>, String)>,
    key: Option<Cow<'a, str>>,
}

/// A value found at a path, with the name errors give it: in the record, or in what the page
/// shares (owned by the reader).
enum Found<'a, 's> {
    Record(Raw<'a>, Cow<'s, str>),
    Shared(Raw<'s>, Cow<'s, str>),
    Key(Cow<'a, str>),
}

impl SpecPage<'_> {
    fn find<'a, 's>(&'s self, sc: &Scope2<'s, 'a>, p: &'s Path) -> FieldResult<Option<Found<'a, 's>>> {
        let shared = |slots: &'s [Option<String>], paths: &[Path]| {
            paths
                .iter()
                .position(|q| q == p)
                .and_then(|i| slots.get(i)?.as_deref())
                .map(|t| Found::Shared(Raw::of_valid(t), Cow::Borrowed(p.written.as_str())))
        };
        Ok(match p.scope {
            Scope::Record => {
                let found = match self.nested_object(sc, p) {
                    Some(obj) => p.locate_below(obj)?,
                    None => p.locate_in(sc.record)?,
                };
                found.map(|v| Found::Record(v, Cow::Borrowed(p.text.as_str())))
            }
            Scope::Page => shared(&self.page, &self.spec.page_paths),
            Scope::Parent => shared(sc.parent, &self.spec.parent_paths),
            Scope::Item => match &sc.item {
                None => None,
                Some((raw, at)) => {
                    let found = p.locate(*raw).map_err(|e| e.within(at))?;
                    found.map(|v| Found::Record(v, Cow::Owned(join_path(at, &p.text))))
                }
            },
            Scope::Key => sc.key.clone().map(Found::Key),
        })
    }

    /// The parsed object a record path reads into, when the format memoizes it and the record
    /// holds an object there (anything else is read, and reported, by the general path).
    fn nested_object<'r, 'a>(&self, sc: &Scope2<'r, 'a>, p: &Path) -> Option<&'r RawObject<'a>> {
        let (Some(super::path::Step::Key(first)), true) = (p.steps.first(), p.steps.len() >= 2) else { return None };
        self.nested_at(sc, first)
    }

    /// The record's object under top-level `key`, parsed once per record for every path and
    /// the tags (`None` when the format does not memoize it or the record holds no object there).
    fn nested_at<'r, 'a>(&self, sc: &Scope2<'r, 'a>, key: &str) -> Option<&'r RawObject<'a>> {
        let cell = sc.nested.get(self.spec.nested.iter().position(|k| k == key)?)?;
        cell.get_or_init(|| {
            let v = value::present(sc.record.get(key))?;
            (JsonKind::of(v) == JsonKind::Object).then(|| RawObject::parse(v, "").ok()).flatten()
        })
        .as_ref()
    }

    /// A `Fast::Field` column's value: its record field read by its type.
    #[inline(always)]
    fn field<'a>(&self, rule: &ValueRule, sc: &Scope2<'_, 'a>) -> FieldResult<V<'a>> {
        let Some(key) = &rule.direct else { return Ok(V::Null) };
        let raw = match self.hints.get(rule.hint_slot) {
            Some(hint) => sc.record.get_hinted(key, hint),
            None => sc.record.get(key),
        };
        let Some(raw) = value::present(raw) else { return finish(rule, V::Null, Some(key)) };
        if !rule.null_if.is_empty() {
            let text = text_of(raw);
            if rule.null_if.iter().any(|n| *n == *text) {
                return finish(rule, V::Null, Some(key));
            }
        }
        if let Some(c) = &rule.otherwise {
            return finish(rule, V::of(c), Some(key));
        }
        let some = Some(raw);
        let v = match rule.kind {
            Kind::Id => value::id(key, some)?.map_or(V::Null, V::Str),
            Kind::Time => value::time(key, some)?.map_or(V::Null, V::Time),
            _ => value::str(key, some)?.map_or(V::Null, V::Str),
        };
        finish(rule, v, Some(key))
    }

    /// A column's value for one row; `known` holds the times this row has read already (a
    /// Gitpod quantity is the hours between the row's own start and end: not read twice).
    fn eval<'a>(&self, rule: &ValueRule, sc: &Scope2<'_, 'a>, known: &[(&Path, Option<i64>)]) -> FieldResult<V<'a>> {
        if let Some(key) = &rule.direct {
            let raw = match self.hints.get(rule.hint_slot) {
                Some(hint) => sc.record.get_hinted(key, hint),
                None => sc.record.get(key),
            };
            return match value::present(raw) {
                None => finish(rule, V::Null, Some(key)),
                Some(raw) => finish(rule, typed(rule, raw, key)?, Some(key)),
            };
        }
        let found = match &rule.source {
            Source::Const(c) => return finish(rule, V::of(c), None),
            Source::Paths(paths) => {
                let mut found = None;
                for p in paths {
                    if let Some(f) = self.find(sc, p)? {
                        found = Some(f);
                        break;
                    }
                }
                found
            }
            Source::Join(paths) => {
                // Written straight into one string (no string per part), with room for a
                // typical id so that it rarely grows.
                let mut joined = String::with_capacity(128);
                for (i, p) in paths.iter().enumerate() {
                    if i > 0 {
                        joined.push('|');
                    }
                    match self.find(sc, p)? {
                        None => {}
                        Some(Found::Key(k)) => joined.push_str(&k),
                        Some(Found::Record(raw, _)) => joined.push_str(&text_of(raw)),
                        Some(Found::Shared(raw, _)) => joined.push_str(&text_of(raw)),
                    }
                }
                return finish(rule, V::Str(Cow::Owned(joined)), None);
            }
            Source::HoursBetween(a, b) => {
                let time = |p: &Path| -> FieldResult<Option<i64>> {
                    if let Some((_, t)) = known.iter().find(|(q, _)| q.scope == p.scope && q.text == p.text) {
                        return Ok(*t);
                    }
                    Ok(match self.find(sc, p)? {
                        None => None,
                        Some(Found::Record(raw, name)) => value::time(&name, Some(raw))?,
                        Some(Found::Shared(raw, name)) => value::time(&name, Some(raw))?,
                        Some(Found::Key(k)) => crate::time::parse_rfc3339(&k).ok(),
                    })
                };
                let v = match (time(a)?, time(b)?) {
                    (Some(s), Some(e)) => V::Num((e - s) as f64 / MICROS_PER_HOUR as f64),
                    _ => V::Null,
                };
                return finish(rule, v, None);
            }
            Source::Sum(paths) => return finish(rule, self.sum(rule, sc, paths)?, None),
        };
        match found {
            None => finish(rule, V::Null, None),
            Some(Found::Key(k)) => finish(rule, V::Str(k), None),
            Some(Found::Record(raw, name)) => {
                let v = typed(rule, raw, &name)?;
                finish(rule, v, Some(&name))
            }
            Some(Found::Shared(raw, name)) => {
                let v = typed(rule, raw, &name)?.owned();
                finish(rule, v, Some(&name))
            }
        }
    }

    fn sum<'a>(&self, rule: &ValueRule, sc: &Scope2<'_, 'a>, paths: &[Path]) -> FieldResult<V<'a>> {
        let (mut num, mut dec, mut any) = (0.0f64, Decimal(0), false);
        for p in paths {
            let mut values = Vec::new();
            match p.scope {
                Scope::Record => {
                    let Some(crate::spec::path::Step::Key(first)) = p.steps.first() else { continue };
                    let Some(root) = value::present(sc.record.get(first)) else { continue };
                    let rest = Path { steps: p.steps[1..].to_vec(), ..p.clone() };
                    rest.locate_all(root, &mut values).map_err(|e| e.within(first))?;
                    values.iter_mut().for_each(|(at, _)| *at = join_path(first, at));
                }
                Scope::Item => {
                    if let Some((raw, at)) = &sc.item {
                        p.locate_all(*raw, &mut values).map_err(|e| e.within(at))?;
                        values.iter_mut().for_each(|(path, _)| *path = join_path(at, path));
                    }
                }
                _ => {
                    if let Some(Found::Shared(raw, name)) = self.find(sc, p)? {
                        match typed(rule, raw, &name)? {
                            V::Num(n) => num += n,
                            V::Dec(d) => dec = add(dec, d, &name)?,
                            _ => {}
                        }
                        any = true;
                    }
                    continue;
                }
            }
            for (at, raw) in values {
                any = true;
                match typed(rule, raw, &at)? {
                    V::Num(n) => num += n,
                    V::Dec(d) => dec = add(dec, d, &at)?,
                    _ => {}
                }
            }
        }
        Ok(match (any, rule.kind) {
            (false, _) => V::Null,
            (true, Kind::Decimal) => V::Dec(dec),
            (true, _) => V::Num(num),
        })
    }

    /// One row of a record under one rule (at one `each` element, if the rule has `each`), at
    /// the end of `out`.
    fn row<'a>(
        &self,
        rule: &RowRule,
        sc: &Scope2<'_, 'a>,
        tags: &std::cell::OnceCell<String>,
        cache: &[std::cell::OnceCell<V<'a>>],
        out: &mut Vec<Row<'a>>,
    ) -> FieldResult<()> {
        if let Some(p) = &rule.if_present {
            if self.find(sc, p)?.is_none() {
                return Ok(());
            }
        }
        // Written where it stays (a row is some 400 bytes: not built, then moved). A record that
        // fails leaves it half written: `rows` drops the record's rows on an error.
        out.push(Row::untagged("", 0));
        let Some(row) = out.last_mut() else { return Ok(()) };
        let (mut start, mut start_name): (Option<i64>, Option<&ValueRule>) = (None, None);
        let mut converted = None;
        let mut known: [(&Path, Option<i64>); 2] = [(&NO_PATH, None), (&NO_PATH, None)];
        let mut n_known = 0;
        for col in &rule.columns {
            if self.skip.get(col.hint_slot).copied().unwrap_or(false) {
                continue;
            }
            let v = match (col.fast, &col.source) {
                (Fast::Const, Source::Const(c)) => V::of(c),
                (Fast::Field, _) => self.field(col, sc)?,
                _ => match col.shared.and_then(|i| cache.get(i)) {
                    None => self.eval(col, sc, &known[..n_known])?,
                    Some(slot) => match slot.get() {
                        Some(v) => v.clone(),
                        None => {
                            let v = self.eval(col, sc, &known[..n_known])?;
                            let _ = slot.set(v.clone());
                            v
                        }
                    },
                },
            };
            let name = || col.name();
            if let (true, Source::Paths(paths)) = (col.known_time, &col.source) {
                if let ([only], Some(slot)) = (paths.as_slice(), known.get_mut(n_known)) {
                    *slot = (only, if let V::Time(t) = v { Some(t) } else { None });
                    n_known += 1;
                }
            }
            let s = |v: V<'a>| match v {
                V::Str(s) => Some(s),
                _ => None,
            };
            match col.col {
                Col::UsageStart => {
                    let V::Time(t) = v else { return Err(FieldError::missing(name(), &col.hint)) };
                    (start, start_name) = (Some(t), Some(col));
                    row.usage_start = t;
                }
                Col::UsageEnd => {
                    let end = if let V::Time(t) = v { Some(t) } else { None };
                    if let (Some(e), Some(s)) = (end, start) {
                        if e < s {
                            let start_name = start_name.map_or("usage_start", ValueRule::name);
                            return Err(FieldError::new(name(), format!("ends before {start_name}")));
                        }
                    }
                    row.usage_end = end;
                }
                Col::Revision => row.revision = if let V::Time(t) = v { Some(t) } else { None },
                Col::Quantity => row.quantity = if let V::Num(n) = v { Some(n) } else { None },
                Col::Unit => {
                    let unit = s(v);
                    let hours = match (&unit, row.quantity, col.to_hours) {
                        (Some(u), Some(q), true) => crate::providers::duration_to_hours(q, u),
                        _ => None,
                    };
                    match hours {
                        Some(h) => {
                            row.quantity = Some(h);
                            row.unit = Some(Cow::Borrowed(HOURS));
                            converted = Some(col);
                        }
                        None => row.unit = unit,
                    }
                }
                Col::Cost => row.cost = if let V::Dec(d) = v { Some(d) } else { None },
                Col::UnitPrice => row.unit_price = if let V::Dec(d) = v { Some(d) } else { None },
                Col::Billable => row.billable = !matches!(v, V::Bool(false)),
                Col::Metric => row.metric = s(v).ok_or_else(|| FieldError::missing(name(), &col.hint))?,
                Col::ChargeType => {
                    row.charge_type = match s(v).as_deref() {
                        None | Some("usage") => charge_type::USAGE,
                        Some("committed") => charge_type::COMMITTED,
                        Some("overage") => charge_type::OVERAGE,
                        Some(other) => {
                            return Err(FieldError::new(
                                name(),
                                format!("charge_type must be usage, committed or overage, not {other:?}"),
                            ))
                        }
                    }
                }
                Col::RecordId => row.record_id = s(v),
                Col::AccountId => row.account_id = s(v),
                Col::CustomerId => row.customer_id = s(v),
                Col::ProjectId => row.project_id = s(v),
                Col::UserId => row.user_id = s(v),
                Col::ResourceId => row.resource_id = s(v),
                Col::ResourceName => row.resource_name = s(v),
                Col::ResourceType => row.resource_type = s(v),
                Col::Sku => row.sku = s(v),
                Col::Currency => row.currency = s(v),
                Col::Status => row.status = s(v),
            }
        }
        // The record's own tags are the same for each of its rows: written once (after the first
        // row's columns, so a bad field is reported before a bad tag, as the Rust formats do).
        let record_tags = match tags.get() {
            Some(t) => t,
            None => {
                let mut t = Tags::new();
                // An object no column has read into yet is parsed here, and kept for the
                // columns of the record's later rows.
                rest(&mut t, sc.record, &self.spec.mapped, &Prefix::Top, &|k| self.nested_at(sc, k))?;
                if let Some(w) = &self.warning {
                    t.str("_page_warning", w);
                }
                tags.get_or_init(|| t.finish())
            }
        };
        // A row without a converted unit keeps its empty tags (`Row::untagged`) until the record
        // is done: then it gets the record's (moved into its last row, not copied).
        if let Some(unit) = converted {
            // The unit as written goes first.
            let mut t = Tags::new();
            if let Source::Paths(paths) = &unit.source {
                for p in paths {
                    if let Some(Found::Record(raw, name)) = self.find(sc, p)? {
                        t.raw_under("", &name, raw)?;
                        break;
                    }
                }
            }
            t.extend(record_tags);
            row.tags = t.finish();
        }
        Ok(())
    }
}

/// Where `rest` is in the record: at its top, or in an object under a key (its tags' prefix,
/// written only when a field there goes to the tags).
enum Prefix<'p> {
    Top,
    Under(&'p Prefix<'p>, &'p str),
}

impl Prefix<'_> {
    fn text(&self) -> String {
        match self {
            Prefix::Top => String::new(),
            Prefix::Under(outer, key) => format!("{}{key}.", outer.text()),
        }
    }
}

/// Every field of `obj` no rule reads, into the tags (a nested read keeps the rest of its
/// object, under `key.`).
/// `parsed` gives the objects already parsed for the record's paths (top level only).
fn rest<'a>(
    tags: &mut Tags,
    obj: &RawObject<'a>,
    tree: &Tree,
    prefix: &Prefix,
    parsed: &dyn Fn(&str) -> Option<&'a RawObject<'a>>,
) -> FieldResult<()> {
    for (k, v) in obj.fields() {
        match tree.get(k) {
            None => match prefix {
                Prefix::Top => tags.raw_under("", k, v)?,
                under => tags.raw_under(&under.text(), k, v)?,
            },
            Some(None) => {}
            Some(Some(sub)) => {
                if JsonKind::of(v) == JsonKind::Object {
                    let inner = Prefix::Under(prefix, k);
                    match parsed(k).filter(|_| matches!(prefix, Prefix::Top)) {
                        Some(obj) => rest(tags, obj, sub, &inner, &|_| None)?,
                        None => rest(tags, &RawObject::parse(v, k)?, sub, &inner, &|_| None)?,
                    }
                }
            }
        }
    }
    Ok(())
}

impl RecordReader for SpecPage<'_> {
    fn rows<'a>(&self, record: &RawObject<'a>, index: usize, out: &mut Vec<Row<'a>>) -> FieldResult<()> {
        let first = out.len();
        let read = self.record_rows(record, index, out);
        if read.is_err() {
            // Rows are written in place (`row`): a record that fails leaves none.
            out.truncate(first);
        }
        read
    }
}

impl SpecPage<'_> {
    fn record_rows<'a>(&self, record: &RawObject<'a>, index: usize, out: &mut Vec<Row<'a>>) -> FieldResult<()> {
        let spec = self.spec;
        let parent = self.parent_of.get(index).and_then(|p| self.parents.get(*p as usize));
        let nested: Vec<std::cell::OnceCell<Option<RawObject<'a>>>> =
            spec.nested.iter().map(|_| std::cell::OnceCell::new()).collect();
        let base = Scope2 { record, nested: &nested, parent: parent.map_or(&[], Vec::as_slice), item: None, key: None };
        let first = out.len();
        let mut applied = false;
        let tags = std::cell::OnceCell::new();
        // What the rows of a record share, read once (only formats whose records give several).
        let cache: Vec<std::cell::OnceCell<V<'a>>> = if spec.multi_row {
            (0..spec.cache_slots).map(|_| std::cell::OnceCell::new()).collect()
        } else {
            Vec::new()
        };
        // Consecutive rules from one `fields` list share their test: it is evaluated once.
        let mut last_when: Option<(*const CondRule, bool)> = None;
        for rule in &spec.rows {
            if let Some(c) = &rule.when {
                let ptr = std::sync::Arc::as_ptr(c);
                let holds = match last_when {
                    Some((p, h)) if p == ptr => h,
                    _ => spec.holds(c, record),
                };
                last_when = Some((ptr, holds));
                if !holds {
                    continue;
                }
            }
            applied = true;
            let Some(each) = &rule.each else {
                self.row(rule, &base, &tags, &cache, out)?;
                continue;
            };
            let items: Vec<(Raw<'a>, String, Option<Cow<'a, str>>)> = match self.find(&base, each)? {
                None => Vec::new(),
                Some(Found::Record(raw, at)) => match JsonKind::of(raw) {
                    JsonKind::Array => crate::json::parse_array(raw)
                        .map_err(|e| e.within(&at))?
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (v, format!("{at}[{i}]"), None))
                        .collect(),
                    JsonKind::Object => {
                        RawObject::parse(raw, &at)?.entries().map(|(k, v)| (v, join_path(&at, &k), Some(k))).collect()
                    }
                    _ => return Err(FieldError::new(at, "each needs an array or an object")),
                },
                Some(_) => {
                    return Err(FieldError::new(&each.written, "each reads the record's own arrays and objects"))
                }
            };
            for (raw, at, key) in items {
                let sc = Scope2 { item: Some((raw, at)), key, ..base_clone(&base) };
                self.row(rule, &sc, &tags, &cache, out)?;
            }
        }
        if spec.explicit_rows && !applied {
            return Err(FieldError::new("", "no [[rows]] rule of the format applies to this record"));
        }
        if let Some(mut record_tags) = tags.into_inner() {
            let pending: Vec<usize> = (first..out.len()).filter(|&i| out[i].tags.is_empty()).collect();
            if let Some((&last, rest)) = pending.split_last() {
                for &i in rest {
                    out[i].tags.clone_from(&record_tags);
                }
                out[last].tags = std::mem::take(&mut record_tags);
            }
        }
        Ok(())
    }
}

fn base_clone<'r, 'a>(s: &Scope2<'r, 'a>) -> Scope2<'r, 'a> {
    Scope2 { record: s.record, nested: s.nested, parent: s.parent, item: s.item.clone(), key: s.key.clone() }
}
