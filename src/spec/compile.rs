//! A format file checked and compiled, once, into the rules `read` runs on every record: paths
//! parsed, constants typed, every column's reader chosen. Any mistake is a `FormatError`
//! naming the key.

use serde_json::Value;

use super::cond::cond;
use super::model::{FieldRules, FormatFile, Rows};
use super::path::{Path, Scope, Step};
use super::rules::{Col, Compiled, Const, CountRule, Fast, Kind, RecordsAt, RowRule, Source, Tree, ValueRule};
use crate::money::Decimal;
use crate::providers::FormatInfo;
use crate::schema::charge_type;

/// A mistake in a format file: which key, and what is allowed.
pub struct Mistake {
    pub key: String,
    pub message: String,
}

pub(super) type Checked<T> = Result<T, Mistake>;

pub(super) fn mistake(key: &str, message: impl Into<String>) -> Mistake {
    Mistake { key: key.to_string(), message: message.into() }
}

pub fn compile(file: FormatFile, origin: &str) -> Checked<Compiled> {
    if file.id.is_empty() || !file.id.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_') {
        return Err(mistake("id", format!("{:?} must be lower-case letters, digits and _", file.id)));
    }
    let focus = file.focus.as_ref();
    let category = focus.map_or("Other", |f| &f.category);
    let Some(subcategories) = crate::providers::focus_subcategories(category) else {
        let all: Vec<&str> = crate::providers::FOCUS_CATEGORIES.iter().map(|(c, _)| *c).collect();
        return Err(mistake(
            "focus.category",
            format!("{category:?} is not a FOCUS ServiceCategory: one of {}", all.join(", ")),
        ));
    };
    let other = format!("Other ({category})");
    let subcategory = focus.and_then(|f| f.subcategory.as_deref()).unwrap_or(&other);
    if !subcategories.contains(&subcategory) {
        return Err(mistake(
            "focus.subcategory",
            format!(
                "{subcategory:?} is not a FOCUS ServiceSubcategory of {category:?}: one of {}",
                subcategories.join(", ")
            ),
        ));
    }
    let mut info = FormatInfo::builtin(
        &file.id,
        &file.title,
        &file.api,
        [
            focus.map_or(file.title.as_str(), |f| &f.provider),
            focus.map_or(file.title.as_str(), |f| &f.service),
            category,
            subcategory,
            focus.and_then(|f| f.resource_type.as_deref()).unwrap_or("Resource"),
        ],
        &[],
    );
    info.origin = origin.to_string();
    let records = match &file.page {
        None => RecordsAt::Key(String::new()),
        Some(p) => match p.records.split_once("[*].") {
            None => {
                let path = Path::parse(&p.records).map_err(|e| mistake("page.records", e))?;
                match path.steps.as_slice() {
                    [super::path::Step::Key(k)] if path.scope == Scope::Record => RecordsAt::Key(k.clone()),
                    _ => return Err(mistake("page.records", "a key, or `outer[*].inner` for nested records")),
                }
            }
            Some((outer, inner)) => {
                let parse = |p: &str| Path::parse(p).map_err(|e| mistake("page.records", e));
                let (outer, inner) = (parse(outer)?, parse(inner)?);
                if outer.scope != Scope::Record || inner.scope != Scope::Record || inner.has_wildcard() {
                    return Err(mistake("page.records", "nested records are `outer[*].inner`, plain paths"));
                }
                RecordsAt::Nested { outer, inner }
            }
        },
    };
    let page = file.page.as_ref().map(|p| cond(&p.detect, "page.detect")).transpose()?;
    let count = file.page.as_ref().and_then(|p| p.count.as_ref()).map(|c| CountRule {
        field: c.field.clone(),
        at_least: c.at_least,
        zero_means_none: c.zero_means_none,
    });
    let record = cond(&file.record.detect, "record.detect")?;
    let mut columns = Vec::new();
    for (name, field) in &file.columns {
        columns.push(value_rule(name, &field.0, &format!("columns.{name}"))?);
    }
    columns.sort_by_key(|c| c.col);
    let mut slots = 0;
    for c in &mut columns {
        c.shared = share(c, &mut slots);
    }
    let explicit_rows = !file.rows.is_empty();
    let mut rows = Vec::new();
    for (i, r) in file.rows.iter().enumerate() {
        rows.extend(row_rules(r, i, &columns, &mut slots)?);
    }
    if !explicit_rows {
        rows.push(RowRule { when: None, each: None, if_present: None, columns: columns.clone() });
    }
    for required in [Col::UsageStart, Col::Metric] {
        if !rows.iter().all(|r| r.columns.iter().any(|c| c.col == required)) {
            return Err(mistake("columns", format!("every row needs {}: give it in [columns]", required.name())));
        }
    }
    // Every rule gets its own field-position hint.
    for (slot, rule) in rows.iter_mut().flat_map(|r| r.columns.iter_mut()).enumerate() {
        rule.hint_slot = slot;
    }
    let mut compiled = Compiled {
        info,
        records,
        page,
        record,
        count,
        columns,
        multi_row: explicit_rows && (rows.len() > 1 || rows.iter().any(|r| r.each.is_some())),
        cache_slots: slots,
        rows,
        explicit_rows,
        mapped: Tree::default(),
        page_paths: Vec::new(),
        parent_paths: Vec::new(),
        to_hours: false,
        nested: Vec::new(),
    };
    let to_hours = compiled.all_rules().any(|r| r.col == Col::Unit && r.to_hours);
    compiled.to_hours = to_hours;
    // What a `join` reads only identifies the record: it stays in the tags unless a column
    // reads it too.
    let mut used: Vec<Path> = Vec::new();
    for rule in compiled.all_rules().filter(|r| !matches!(r.source, Source::Join(_))) {
        used.extend(rule_paths(rule).cloned());
    }
    for rule in compiled.all_rules().filter(|r| matches!(r.source, Source::Join(_))) {
        let scoped = rule_paths(rule).filter(|p| p.scope != Scope::Record).cloned().collect::<Vec<_>>();
        used.extend(scoped);
    }
    for r in &compiled.rows {
        used.extend(r.each.iter().cloned());
        used.extend(r.if_present.iter().cloned());
    }
    if let RecordsAt::Nested { .. } = compiled.records {
    } else if used.iter().any(|p| p.scope == Scope::Parent) {
        return Err(mistake("columns", "$parent needs nested records (page.records = \"outer[*].inner\")"));
    }
    for p in &used {
        if let (Scope::Record, [super::path::Step::Key(first), _, ..]) = (p.scope, p.steps.as_slice()) {
            if !compiled.nested.contains(first) {
                compiled.nested.push(first.clone());
            }
        }
        match p.scope {
            Scope::Record => compiled.mapped.add(&keys_of(p)),
            Scope::Page if !compiled.page_paths.contains(p) => compiled.page_paths.push(p.clone()),
            Scope::Parent if !compiled.parent_paths.contains(p) => compiled.parent_paths.push(p.clone()),
            _ => {}
        }
    }
    // Fields of each row rule's `fields` list are read from the item when the rule has `each`.
    for skip in &file.tags.skip {
        let p = Path::parse(skip).map_err(|e| mistake("tags.skip", e))?;
        compiled.mapped.add(&keys_of(&p));
    }
    compiled.info.mapping = compiled.mapping();
    Ok(compiled)
}

fn keys_of(p: &Path) -> Vec<String> {
    p.steps
        .iter()
        .map_while(|s| match s {
            super::path::Step::Key(k) => Some(k.clone()),
            _ => None,
        })
        .collect()
}

fn rule_paths(rule: &ValueRule) -> impl Iterator<Item = &Path> {
    let paths: Vec<&Path> = match &rule.source {
        Source::Paths(p) | Source::Join(p) | Source::Sum(p) => p.iter().collect(),
        Source::HoursBetween(a, b) => vec![a, b],
        Source::Const(_) => vec![],
    };
    paths.into_iter()
}

impl Compiled {
    pub fn all_rules(&self) -> impl Iterator<Item = &ValueRule> {
        self.rows.iter().flat_map(|r| r.columns.iter())
    }

    /// `(column, where from)` for `usagenorm.formats()`, written from the rules.
    fn mapping(&self) -> Vec<(String, String)> {
        let mut out: Vec<(Col, String)> = Vec::new();
        for rule in self.all_rules() {
            let from = describe(rule);
            match out.iter_mut().find(|(c, _)| *c == rule.col) {
                Some((_, have)) if !have.split("; ").any(|h| h == from) => *have = format!("{have}; {from}"),
                Some(_) => {}
                None => out.push((rule.col, from)),
            }
        }
        out.sort_by_key(|(c, _)| Col::NAMES.iter().position(|(_, k)| k == c));
        let mut mapping: Vec<(String, String)> = out.into_iter().map(|(c, f)| (c.name().to_string(), f)).collect();
        mapping.push(("tags".into(), "every field no rule reads".into()));
        mapping
    }
}

fn describe(rule: &ValueRule) -> String {
    let konst = |c: &Const| match c {
        Const::Null => "null".to_string(),
        Const::Str(s) => format!("{s:?}"),
        Const::Num(n) => n.to_string(),
        Const::Dec(d) => d.to_string(),
        Const::Time(t) => crate::time::format_utc(*t),
        Const::Bool(b) => b.to_string(),
    };
    let mut s = match &rule.source {
        Source::Paths(p) => p.iter().map(|p| p.written.as_str()).collect::<Vec<_>>().join(", else "),
        Source::Const(c) => konst(c),
        Source::Join(p) => {
            format!("{} joined with |", p.iter().map(|p| p.written.as_str()).collect::<Vec<_>>().join(", "))
        }
        Source::HoursBetween(a, b) => format!("{} − {} in hours", b.written, a.written),
        Source::Sum(p) => p.iter().map(|p| p.written.as_str()).collect::<Vec<_>>().join(" + "),
    };
    if rule.scale != 0 {
        s = format!("{s} × 10^{}", rule.scale);
    }
    if let Some(d) = rule.divide {
        s = format!("{s} / {d}");
    }
    if rule.hours_per.is_some() {
        s = format!("{s} in hours");
    }
    if let Some(d) = &rule.default {
        s = format!("{s} (default {})", konst(d));
    }
    s
}

/// The rules of one `[[rows]]` entry: one, or one per entry of its `fields`.
/// A cache slot for a value that reads no `$item` or `$key` (the same for every row of a record).
fn share(rule: &ValueRule, slots: &mut usize) -> Option<usize> {
    if rule_paths(rule).any(|p| matches!(p.scope, Scope::Item | Scope::Key)) {
        return None;
    }
    *slots += 1;
    Some(*slots - 1)
}

fn row_rules(r: &Rows, i: usize, base: &[ValueRule], slots: &mut usize) -> Checked<Vec<RowRule>> {
    let key = format!("rows[{i}]");
    let when = r.when.as_ref().map(|c| cond(c, &format!("{key}.when"))).transpose()?.map(std::sync::Arc::new);
    let each = r.each.as_deref().map(|p| Path::parse(p).map_err(|e| mistake(&format!("{key}.each"), e))).transpose()?;
    if each.as_ref().is_some_and(|p| !matches!(p.scope, Scope::Record | Scope::Parent)) {
        return Err(mistake(&format!("{key}.each"), "each reads the record or $parent"));
    }
    let mut own = Vec::new();
    for (name, field) in &r.columns {
        let mut rule = value_rule(name, &field.0, &format!("{key}.columns.{name}"))?;
        rule.shared = share(&rule, slots);
        own.push(rule);
    }
    let merged = |extra: Vec<ValueRule>| -> Vec<ValueRule> {
        let mut cols: Vec<ValueRule> = extra;
        for rule in own.iter().chain(base) {
            if !cols.iter().any(|c| c.col == rule.col) {
                cols.push(rule.clone());
            }
        }
        cols.sort_by_key(|c| c.col);
        cols
    };
    let Some(fields) = &r.fields else {
        return Ok(vec![RowRule { when, each, if_present: None, columns: merged(Vec::new()) }]);
    };
    let scope = if each.is_some() { "$item." } else { "" };
    let mut out = Vec::new();
    for f in fields {
        let path = Path::parse(&format!("{scope}{f}"))
            .map_err(|e| mistake(&format!("{key}.fields"), format!("{f:?}: {e}")))?;
        let extra = vec![
            value_rule("metric", &FieldRules { value: Some(Value::String(f.clone())), ..Default::default() }, &key)?,
            value_rule(
                "quantity",
                &FieldRules { path: Some(super::model::Strings(vec![path.written.clone()])), ..Default::default() },
                &key,
            )?,
        ];
        // The rule's own metric or quantity, if it gives one, wins over the field's.
        let extra = extra.into_iter().filter(|e| !own.iter().any(|o| o.col == e.col)).collect();
        out.push(RowRule { when: when.clone(), each: each.clone(), if_present: Some(path), columns: merged(extra) });
    }
    Ok(out)
}

fn value_rule(name: &str, f: &FieldRules, key: &str) -> Checked<ValueRule> {
    let col = Col::NAMES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c).ok_or_else(|| {
        let allowed: Vec<&str> = Col::NAMES.iter().map(|(n, _)| *n).collect();
        let why = if ["provider", "tags", "source", "source_index"].contains(&name) {
            format!("{name} is set by usagenorm")
        } else {
            format!("{name:?} is not a canonical column")
        };
        mistake(key, format!("{why}; allowed: {}", allowed.join(", ")))
    })?;
    let kind = match &f.kind {
        None => col.kinds()[0],
        Some(k) => {
            let kind = Kind::NAMES.iter().find(|(n, _)| n == k).map(|(_, k)| *k).ok_or_else(|| {
                let names: Vec<&str> = Kind::NAMES.iter().map(|(n, _)| *n).collect();
                mistake(&format!("{key}.type"), format!("{k:?} is not a type; allowed: {}", names.join(", ")))
            })?;
            if !col.kinds().contains(&kind) {
                let names: Vec<&str> = col
                    .kinds()
                    .iter()
                    .filter_map(|k| Kind::NAMES.iter().find(|(_, n)| n == k).map(|(n, _)| *n))
                    .collect();
                return Err(mistake(&format!("{key}.type"), format!("{name} takes {}", names.join(", "))));
            }
            kind
        }
    };
    let paths = |list: &[String], sub: &str| -> Checked<Vec<Path>> {
        list.iter()
            .map(|p| Path::parse(p).map_err(|e| mistake(&format!("{key}.{sub}"), format!("{p:?}: {e}"))))
            .collect()
    };
    let mut sources = Vec::new();
    if let Some(p) = &f.path {
        let p = paths(&p.0, "path")?;
        if p.is_empty() || p.iter().any(Path::has_wildcard) {
            return Err(mistake(&format!("{key}.path"), "one path or more, without wildcards (use sum)"));
        }
        sources.push(Source::Paths(p));
    }
    if let Some(v) = &f.value {
        sources.push(Source::Const(constant(v, col, kind, &format!("{key}.value"))?));
    }
    if let Some(j) = &f.join {
        if col != Col::RecordId && !col.kinds().contains(&Kind::String) {
            return Err(mistake(&format!("{key}.join"), "join makes text"));
        }
        sources.push(Source::Join(paths(j, "join")?));
    }
    if let Some(h) = &f.hours_between {
        let p = paths(h, "hours_between")?;
        if col != Col::Quantity || p.len() != 2 {
            return Err(mistake(&format!("{key}.hours_between"), "quantity = { hours_between = [start, end] }"));
        }
        let mut p = p.into_iter();
        if let (Some(a), Some(b)) = (p.next(), p.next()) {
            sources.push(Source::HoursBetween(a, b));
        }
    }
    if let Some(s) = &f.sum {
        if col != Col::Quantity && col != Col::Cost && col != Col::UnitPrice {
            return Err(mistake(&format!("{key}.sum"), "sum makes a quantity, cost or unit_price"));
        }
        sources.push(Source::Sum(paths(s, "sum")?));
    }
    let source = match sources.len() {
        1 => sources.remove(0),
        0 if f.default.is_some() => Source::Const(Const::Null),
        _ => return Err(mistake(key, "give exactly one of path, value, join, hours_between, sum")),
    };
    let hours_per = match (kind, &f.unit) {
        (Kind::Duration, Some(u)) => Some(crate::time::hours_per(u).ok_or_else(|| {
            mistake(
                &format!("{key}.unit"),
                format!("{u:?} is not a duration unit (seconds, minutes, hours, days, ...)"),
            )
        })?),
        (Kind::Duration, None) => return Err(mistake(&format!("{key}.unit"), "a duration needs its unit")),
        (_, Some(_)) => return Err(mistake(&format!("{key}.unit"), "unit goes with type = \"duration\"")),
        _ => None,
    };
    let texts = |v: &Option<Vec<Value>>| v.iter().flatten().map(value_text).collect::<Vec<_>>();
    let map = f
        .map
        .iter()
        .flatten()
        .map(|(k, v)| Ok((k.clone(), constant(v, col, kind, &format!("{key}.map.{k}"))?)))
        .collect::<Checked<Vec<_>>>()?;
    let upper = match f.case.as_deref() {
        None => None,
        Some("upper") => Some(true),
        Some("lower") => Some(false),
        Some(c) => return Err(mistake(&format!("{key}.case"), format!("{c:?}: allowed: upper, lower"))),
    };
    if f.scale.is_some() && kind != Kind::Decimal {
        return Err(mistake(&format!("{key}.scale"), "scale goes with exact decimals (cost, unit_price)"));
    }
    if f.divide.is_some_and(|d| !(d.is_finite() && d != 0.0)) || (f.divide.is_some() && col != Col::Quantity) {
        return Err(mistake(&format!("{key}.divide"), "a quantity divided by a finite number other than 0"));
    }
    if f.to_hours && col != Col::Unit {
        return Err(mistake(&format!("{key}.to_hours"), "to_hours goes on the unit column"));
    }
    let direct = match &source {
        Source::Paths(p) => match p.as_slice() {
            [only] if only.scope == Scope::Record && only.steps.len() == 1 => only.record_field().map(str::to_string),
            _ => None,
        },
        _ => None,
    };
    let plain = f.default.is_none()
        && !f.required
        && !f.non_negative
        && f.divide.is_none()
        && hours_per.is_none()
        && upper.is_none();
    let checked_only = !f.non_negative
        && f.divide.is_none()
        && hours_per.is_none()
        && upper.is_none()
        && f.map.as_ref().is_none_or(|m| m.is_empty());
    let fast = match &source {
        Source::Const(_) if plain && f.map.as_ref().is_none_or(|m| m.is_empty()) => Fast::Const,
        Source::Paths(_)
            if direct.is_some() && checked_only && matches!(kind, Kind::String | Kind::Id | Kind::Time) =>
        {
            Fast::Field
        }
        _ => Fast::No,
    };
    let known_time = matches!(col, Col::UsageStart | Col::UsageEnd)
        && kind == Kind::Time
        && f.default.is_none()
        && f.map.as_ref().is_none_or(|m| m.is_empty())
        && f.null_if.as_ref().is_none_or(|n| n.is_empty())
        && f.otherwise.is_none()
        && matches!(&source, Source::Paths(p) if p.len() == 1);
    // A join writes any value as its text and is never null: only a path that steps into a
    // value (which may not be an object) can fail.
    let skippable = matches!(&source, Source::Join(paths) if paths.iter().all(|p| match p.scope {
        Scope::Record => p.steps.len() == 1 && matches!(p.steps.first(), Some(Step::Key(_))),
        Scope::Page | Scope::Parent | Scope::Key => true,
        Scope::Item => false,
    })) && matches!(
        col,
        Col::RecordId
            | Col::AccountId
            | Col::CustomerId
            | Col::ProjectId
            | Col::UserId
            | Col::ResourceId
            | Col::ResourceName
            | Col::ResourceType
            | Col::Sku
            | Col::Currency
            | Col::Status
    );
    Ok(ValueRule {
        col,
        shared: None,
        skippable,
        plain,
        known_time,
        hint_slot: 0,
        fast,
        direct,
        source,
        kind,
        required: f.required,
        hint: f.hint.clone().unwrap_or_default(),
        default: f.default.as_ref().map(|v| constant(v, col, kind, &format!("{key}.default"))).transpose()?,
        null_if: texts(&f.null_if),
        map,
        otherwise: f.otherwise.as_ref().map(|v| constant(v, col, kind, &format!("{key}.otherwise"))).transpose()?,
        scale: f.scale.unwrap_or(0),
        divide: f.divide,
        upper,
        non_negative: f.non_negative,
        hours_per,
        to_hours: f.to_hours,
    })
}

/// A value's text as maps and null markers compare it: a string's content, else its JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn constant(v: &Value, col: Col, kind: Kind, key: &str) -> Checked<Const> {
    let bad = |want: &str| mistake(key, format!("{v} is not {want} (for {})", col.name()));
    Ok(match (kind, v) {
        (_, Value::Null) => Const::Null,
        (Kind::String | Kind::Id, Value::String(s)) => {
            if col == Col::ChargeType
                && ![charge_type::USAGE, charge_type::COMMITTED, charge_type::OVERAGE].contains(&s.as_str())
            {
                return Err(mistake(key, format!("{s:?}: charge_type is usage, committed or overage")));
            }
            Const::Str(crate::providers::intern(s))
        }
        (Kind::Id, Value::Number(n)) => Const::Str(crate::providers::intern(&n.to_string())),
        (Kind::String | Kind::Id, _) => return Err(bad("a string")),
        (Kind::Number | Kind::Duration, Value::Number(n)) => Const::Num(n.as_f64().ok_or_else(|| bad("a number"))?),
        (Kind::Number | Kind::Duration, _) => return Err(bad("a number")),
        (Kind::Decimal, Value::Number(_) | Value::String(_)) => {
            Const::Dec(Decimal::parse(&value_text(v)).map_err(|e| mistake(key, format!("{v}: {e}")))?)
        }
        (Kind::Decimal, _) => return Err(bad("a decimal")),
        (Kind::Bool, Value::Bool(b)) => Const::Bool(*b),
        (Kind::Bool, _) => return Err(bad("true or false")),
        (_, Value::String(s)) => {
            Const::Time(crate::time::parse_rfc3339(s).map_err(|e| mistake(key, format!("{s:?}: {e}")))?)
        }
        (_, _) => return Err(bad("an RFC 3339 time")),
    })
}
