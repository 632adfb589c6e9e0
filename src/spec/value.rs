//! A value as a format file's rules read it (`read`): typed from its raw JSON by the rule's
//! kind, after null markers and maps, then finished (default, `required`, arithmetic, checks).

use std::borrow::Cow;

use super::rules::{Const, Kind, ValueRule};
use crate::json::{value, ErrorKind, FieldError, FieldResult, Kind as JsonKind, Raw};
use crate::money::Decimal;

/// Whether a raw value is the JSON value `want`.
pub(super) fn same(v: Raw, want: &serde_json::Value) -> bool {
    match want {
        serde_json::Value::String(s) => value::str("", Some(v)).ok().flatten().is_some_and(|t| t == *s),
        other => *other == serde_json::from_str::<serde_json::Value>(v.get()).unwrap_or_default(),
    }
}

/// A value as it is read, before it goes into its column.
#[derive(Debug, Clone)]
pub(super) enum V<'a> {
    Null,
    Str(Cow<'a, str>),
    Num(f64),
    Dec(Decimal),
    Time(i64),
    Bool(bool),
}

impl<'a> V<'a> {
    pub(super) fn of(c: &Const) -> V<'a> {
        match c {
            Const::Null => V::Null,
            Const::Str(s) => V::Str(Cow::Borrowed(s)),
            Const::Num(n) => V::Num(*n),
            Const::Dec(d) => V::Dec(*d),
            Const::Time(t) => V::Time(*t),
            Const::Bool(b) => V::Bool(*b),
        }
    }

    pub(super) fn owned<'b>(self) -> V<'b> {
        match self {
            V::Str(s) => V::Str(Cow::Owned(s.into_owned())),
            V::Null => V::Null,
            V::Num(n) => V::Num(n),
            V::Dec(d) => V::Dec(d),
            V::Time(t) => V::Time(t),
            V::Bool(b) => V::Bool(b),
        }
    }
}

pub(super) fn add(a: Decimal, b: Decimal, at: &str) -> FieldResult<Decimal> {
    a.0.checked_add(b.0)
        .map(Decimal)
        .filter(|d| Decimal::parse(&d.to_string()).is_ok())
        .ok_or_else(|| FieldError::of(ErrorKind::OutOfRange, at, "the sum is outside the range of decimal(38, 9)"))
}

/// A value's text for joins, maps and null markers: a string's content, else its JSON.
pub(super) fn text_of(raw: Raw<'_>) -> Cow<'_, str> {
    match value::str("", Some(raw)) {
        Ok(Some(s)) => s,
        _ => Cow::Borrowed(raw.get()),
    }
}

/// The value read at `raw` with the rule's type, after its null markers and map.
pub(super) fn typed<'x>(rule: &ValueRule, raw: Raw<'x>, name: &str) -> FieldResult<V<'x>> {
    if JsonKind::of(raw) == JsonKind::Null {
        return Ok(V::Null);
    }
    if !rule.null_if.is_empty() || !rule.map.is_empty() {
        let text = text_of(raw);
        if rule.null_if.iter().any(|n| *n == *text) {
            return Ok(V::Null);
        }
        if let Some((_, c)) = rule.map.iter().find(|(k, _)| *k == *text) {
            return Ok(V::of(c));
        }
    }
    if let Some(c) = &rule.otherwise {
        return Ok(V::of(c));
    }
    let some = Some(raw);
    let epoch = |factor: f64| -> FieldResult<V<'x>> {
        let Some(n) = value::number(name, some)? else { return Ok(V::Null) };
        let micros = n * factor;
        if micros.abs() >= 9.2e18 {
            return Err(FieldError::of(ErrorKind::OutOfRange, name, format!("epoch time {n} is out of range")));
        }
        Ok(V::Time(micros.round() as i64))
    };
    Ok(match rule.kind {
        Kind::String => value::str(name, some)?.map_or(V::Null, V::Str),
        Kind::Id => value::id(name, some)?.map_or(V::Null, V::Str),
        Kind::Time => value::time(name, some)?.map_or(V::Null, V::Time),
        Kind::EpochS => epoch(1e6)?,
        Kind::EpochMs => epoch(1e3)?,
        Kind::EpochUs => epoch(1.0)?,
        Kind::Date => match value::str(name, some)? {
            None => V::Null,
            Some(d) => {
                let d = d.trim();
                let parsed = if d.len() == 10 {
                    crate::time::parse_rfc3339(&format!("{d}T00:00:00Z"))
                } else {
                    crate::time::parse_rfc3339(d)
                };
                V::Time(parsed.map_err(|_| {
                    FieldError::new(name, format!("expected a date (YYYY-MM-DD) or an RFC 3339 time, got {d:?}"))
                })?)
            }
        },
        Kind::Number | Kind::Duration => value::number(name, some)?.map_or(V::Null, V::Num),
        Kind::Decimal => value::decimal_shifted(name, some, rule.scale)?.map_or(V::Null, V::Dec),
        Kind::Bool => value::bool(name, some)?.map_or(V::Null, V::Bool),
    })
}

/// A value's default, `required`, and its arithmetic and checks; `name` names the value in
/// errors (by default the rule's own name, worked out only for an error).
#[inline(always)]
pub(super) fn finish<'a>(rule: &ValueRule, v: V<'a>, name: Option<&str>) -> FieldResult<V<'a>> {
    if rule.plain {
        return Ok(v);
    }
    finish_checked(rule, v, name)
}

fn finish_checked<'a>(rule: &ValueRule, v: V<'a>, name: Option<&str>) -> FieldResult<V<'a>> {
    let name = || name.unwrap_or_else(|| rule.name());
    let v = match (v, &rule.default) {
        (V::Null, Some(d)) => V::of(d),
        (v, _) => v,
    };
    Ok(match v {
        V::Null if rule.required => return Err(FieldError::missing(name(), &rule.hint)),
        V::Num(n) => {
            if rule.non_negative && n < 0.0 {
                return Err(FieldError::new(name(), format!("negative quantity {n}")));
            }
            let n = rule.divide.map_or(n, |d| n / d);
            V::Num(rule.hours_per.map_or(n, |(h, per)| n * (h as f64 / per as f64)))
        }
        V::Dec(d) if rule.non_negative && d.is_negative() => {
            return Err(FieldError::new(name(), format!("negative {} {d}", rule.col.name())))
        }
        V::Str(s) => match rule.upper {
            Some(true) if s.bytes().any(|c| c.is_ascii_lowercase()) => V::Str(Cow::Owned(s.to_ascii_uppercase())),
            Some(false) if s.bytes().any(|c| c.is_ascii_uppercase()) => V::Str(Cow::Owned(s.to_ascii_lowercase())),
            _ => V::Str(s),
        },
        v => v,
    })
}
