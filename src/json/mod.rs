//! Borrowed access to JSON records: `RawObject` keeps each field as its raw text (`Raw`) so a
//! record is scanned once and each field is converted only when a provider asks for it.
//! serde_json validates each document once; the records and arrays inside it are then split by
//! `scan`, a structural scanner for text already known to be valid JSON.
//! Field readers return `FieldError`s that name the field and what was expected; the driver
//! prefixes the record's location to make the full JSON path.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::money::Decimal;
use crate::time;

mod document;
pub mod scan;
#[cfg(test)]
mod tests;

pub use document::*;

/// What kind of problem rejected a record, so that rejects can be filtered without matching
/// message text (the `kind` column of the rejected frame, `NormalizeError.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A required field is absent or null.
    Missing,
    /// A field (or the document) has another JSON type than the one expected.
    WrongType,
    /// A value too large, too small or too long to hold (a number, a time, a string, nesting).
    OutOfRange,
    /// A value of the right type that is not acceptable (a timestamp that does not parse, an
    /// end before its start, a negative quantity, a document of no known format, ...).
    Invalid,
    /// Text that is not JSON: malformed JSON, invalid UTF-8, a broken gzip stream, nothing.
    MalformedJson,
    /// The page's shared part is unusable, so each of its records is rejected.
    Page,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Missing,
        ErrorKind::WrongType,
        ErrorKind::OutOfRange,
        ErrorKind::Invalid,
        ErrorKind::MalformedJson,
        ErrorKind::Page,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Missing => "missing",
            ErrorKind::WrongType => "wrong_type",
            ErrorKind::OutOfRange => "out_of_range",
            ErrorKind::Invalid => "invalid",
            ErrorKind::MalformedJson => "malformed_json",
            ErrorKind::Page => "page",
        }
    }
}

/// A problem with one field of a record: `path` is relative to the record (`createdAt`,
/// `metaInfo.timestamp`, `resource.id`), or empty for the record itself.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub path: String,
    pub reason: String,
    pub kind: ErrorKind,
}

impl FieldError {
    /// A value that is not acceptable (`ErrorKind::Invalid`).
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError::of(ErrorKind::Invalid, path, reason)
    }

    pub fn of(kind: ErrorKind, path: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError { path: path.into(), reason: reason.into(), kind }
    }

    /// A required field that is absent or null; `why` adds to "required field is missing".
    pub fn missing(path: impl Into<String>, why: &str) -> Self {
        FieldError::of(ErrorKind::Missing, path, format!("required field is missing{why}"))
    }

    /// Puts `parent.` in front of the path (used when reading a nested object).
    pub fn within(mut self, parent: &str) -> Self {
        self.path = join_path(parent, &self.path);
        self
    }
}

/// A JSON path `field` (a key, `[i]`, or empty for the value itself) under `prefix`.
pub fn join_path(prefix: &str, field: &str) -> String {
    if field.is_empty() {
        prefix.to_string()
    } else if field.starts_with('[') {
        format!("{prefix}{field}")
    } else {
        format!("{prefix}.{field}")
    }
}

pub type FieldResult<T> = Result<T, FieldError>;

/// The raw text of one JSON value, a slice of a document serde_json has validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw<'a>(&'a str);

impl<'a> Raw<'a> {
    /// A raw value from text already known to be one valid JSON value (a record or NDJSON
    /// line that was parsed).
    pub fn of_valid(text: &'a str) -> Raw<'a> {
        Raw(text.trim())
    }

    pub fn get(self) -> &'a str {
        self.0
    }
}

impl<'a> From<&'a RawValue> for Raw<'a> {
    fn from(value: &'a RawValue) -> Raw<'a> {
        Raw(value.get())
    }
}

/// The JSON kind of a raw value, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    pub fn of(raw: Raw) -> Kind {
        match raw.get().as_bytes().first() {
            Some(b'"') => Kind::String,
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::Array,
            Some(b't') | Some(b'f') => Kind::Bool,
            Some(b'n') => Kind::Null,
            _ => Kind::Number,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::Array => "an array",
            Kind::Object => "an object",
        }
    }
}

/// Shortens a raw value for an error message.
pub fn snippet(raw: Raw) -> String {
    let text = raw.get();
    if text.len() <= 60 {
        text.to_string()
    } else {
        let mut end = 57;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &text[..end])
    }
}

fn wrong_kind(key: &str, expected: &str, raw: Raw) -> FieldError {
    FieldError::of(
        ErrorKind::WrongType,
        key,
        format!("expected {expected}, got {} {}", Kind::of(raw).name(), snippet(raw)),
    )
}

/// A string that borrows from the input when it has no escapes.
struct BorrowedStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for BorrowedStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BorrowedStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(BorrowedStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Decodes a raw JSON string value.
fn decode_string(raw: Raw<'_>) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<BorrowedStr>(text).ok().map(|s| s.0)
}

/// A JSON object whose values are kept as raw text, in document order.
#[derive(Debug, Default, Clone)]
pub struct RawObject<'a> {
    fields: Vec<(Cow<'a, str>, Raw<'a>)>,
    /// Elements of large array values already split out (by field index), see `parse_large`.
    split: Vec<(usize, Vec<Raw<'a>>)>,
}

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(12));
                while let Some(key) = map.next_key::<BorrowedStr<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    fields.push((key.0, Raw::from(value)));
                }
                Ok(RawObject::new(fields, Vec::new()))
            }
        }
        d.deserialize_map(V)
    }
}

/// Fields of an object as read, in document order.
type Fields<'a> = Vec<(Cow<'a, str>, Raw<'a>)>;

impl<'a> RawObject<'a> {
    /// An object from its fields in document order. A key that repeats keeps its last value
    /// only, as Python's `json` and serde_json's `Value` do, so that no reader (the Suger
    /// `records` map, the tags) ever sees, or counts, both.
    #[inline]
    fn new(mut fields: Fields<'a>, mut split: Vec<(usize, Vec<Raw<'a>>)>) -> RawObject<'a> {
        if has_repeated_key(&fields) {
            let keep: Vec<bool> =
                (0..fields.len()).map(|i| !fields[i + 1..].iter().any(|(k, _)| *k == fields[i].0)).collect();
            let mut new_index = Vec::with_capacity(fields.len());
            let mut kept = 0;
            for &k in &keep {
                new_index.push(k.then_some(kept));
                kept += usize::from(k);
            }
            split = split.into_iter().filter_map(|(i, items)| Some((new_index.get(i).copied()??, items))).collect();
            let mut k = keep.into_iter();
            fields.retain(|_| k.next().unwrap_or(true));
        }
        RawObject { fields, split }
    }

    /// Reads a raw value as an object; `path` names it in the error.
    pub fn parse(raw: Raw<'a>, path: &str) -> FieldResult<RawObject<'a>> {
        if Kind::of(raw) != Kind::Object {
            return Err(wrong_kind(path, "an object", raw));
        }
        if let Some(fields) = scan::object(raw.get()) {
            return Ok(RawObject::new(fields, Vec::new()));
        }
        serde_json::from_str(raw.get())
            .map_err(|e| FieldError::of(ErrorKind::MalformedJson, path, format!("malformed object: {e}")))
    }

    /// An object from text already known to be valid JSON (an element of a document that was
    /// parsed): split by the structural scanner, by serde_json only if the scanner declines.
    /// `None` when the text is not an object.
    pub fn from_validated(text: &'a str) -> Option<RawObject<'a>> {
        match scan::object(text) {
            Some(fields) => Some(RawObject::new(fields, Vec::new())),
            None => serde_json::from_str(text).ok(),
        }
    }

    /// The raw value of `key` (the last one, if a key repeats), `None` when absent.
    pub fn get(&self, key: &str) -> Option<Raw<'a>> {
        self.fields.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// `get`, trying first the position `hint` holds (the records of one page usually list
    /// their keys in one order) and keeping where the key was found. Keys are unique in a
    /// `RawObject` (`new`), so a match at the hinted position is the value `get` gives.
    #[inline]
    pub fn get_hinted(&self, key: &str, hint: &std::sync::atomic::AtomicU32) -> Option<Raw<'a>> {
        use std::sync::atomic::Ordering::Relaxed;
        if let Some((k, v)) = self.fields.get(hint.load(Relaxed) as usize) {
            if k.len() == key.len() && k.as_bytes() == key.as_bytes() {
                return Some(*v);
            }
        }
        let at = self.fields.iter().rposition(|(k, _)| k == key)?;
        hint.store(at as u32, Relaxed);
        self.fields.get(at).map(|(_, v)| *v)
    }

    /// The value of `key` unless absent or null.
    fn present(&self, key: &str) -> Option<Raw<'a>> {
        self.get(key).filter(|v| Kind::of(*v) != Kind::Null)
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn fields(&self) -> impl Iterator<Item = (&str, Raw<'a>)> + '_ {
        self.fields.iter().map(|(k, v)| (k.as_ref(), *v))
    }

    /// Every field with its key as read: borrowed from the text unless the key had escapes.
    pub fn entries(&self) -> impl Iterator<Item = (Cow<'a, str>, Raw<'a>)> + '_ {
        self.fields.iter().map(|(k, v)| (k.clone(), *v))
    }

    /// A string field; absent or null is `None`.
    pub fn str(&self, key: &str) -> FieldResult<Option<Cow<'a, str>>> {
        value::str(key, self.get(key))
    }

    /// An identifier: a string, or an integer written as a number (kept as its text).
    pub fn id(&self, key: &str) -> FieldResult<Option<Cow<'a, str>>> {
        value::id(key, self.get(key))
    }

    /// A number: a JSON number, or a string holding one (proto3 JSON writes 64-bit integers as
    /// strings). Non-finite values are errors.
    pub fn number(&self, key: &str) -> FieldResult<Option<f64>> {
        value::number(key, self.get(key))
    }

    /// An exact decimal from the number's text (or a string holding one).
    pub fn decimal(&self, key: &str) -> FieldResult<Option<Decimal>> {
        value::decimal_shifted(key, self.get(key), 0)
    }

    /// A timestamp: RFC 3339 text, or an epoch number (see `time::from_epoch`).
    pub fn time(&self, key: &str) -> FieldResult<Option<i64>> {
        value::time(key, self.get(key))
    }

    /// A boolean.
    pub fn bool(&self, key: &str) -> FieldResult<Option<bool>> {
        value::bool(key, self.get(key))
    }

    /// A nested object.
    pub fn object(&self, key: &str) -> FieldResult<Option<RawObject<'a>>> {
        match self.present(key) {
            None => Ok(None),
            Some(raw) => RawObject::parse(raw, key).map(Some),
        }
    }

    /// A nested array, as its raw elements.
    pub fn array(&self, key: &str) -> FieldResult<Option<Vec<Raw<'a>>>> {
        let index = self.fields.iter().rposition(|(k, _)| k == key);
        if let Some((_, items)) = self.split.iter().find(|(i, _)| Some(*i) == index) {
            return Ok(Some(items.clone()));
        }
        match self.present(key) {
            None => Ok(None),
            Some(raw) => parse_array(raw).map(Some).map_err(|e| e.within(key)),
        }
    }
}

/// The JSON text `dumps` writes for a float that JSON cannot hold, followed by `NaN`,
/// `Infinity` or `-Infinity`: a string that starts with the escape of U+FFFF, which `dumps`
/// otherwise never writes (it writes that character as itself). The reader rejects the record
/// that holds it, naming the field, instead of the whole page failing to be written.
pub const NONFINITE_MARK: &[u8] = b"\"\\uffff";

/// Where in `raw` a value `dumps` marked as non-finite sits: its path within `raw` and what it
/// was (`NaN`, `Infinity`, `-Infinity`). Only values whose text holds the mark are searched.
pub fn nonfinite_field(raw: Raw) -> Option<(String, String)> {
    let text = raw.get();
    memchr::memmem::find(text.as_bytes(), NONFINITE_MARK)?;
    match Kind::of(raw) {
        Kind::String => {
            let what = text.strip_prefix("\"\\uffff")?.strip_suffix('"')?;
            matches!(what, "NaN" | "Infinity" | "-Infinity").then(|| (String::new(), what.to_string()))
        }
        Kind::Object => {
            let obj = RawObject::parse(raw, "").ok()?;
            let found = obj.fields().find_map(|(k, v)| nonfinite_field(v).map(|(p, w)| (join_path(k, &p), w)));
            found
        }
        Kind::Array => parse_array(raw)
            .ok()?
            .into_iter()
            .enumerate()
            .find_map(|(i, v)| nonfinite_field(v).map(|(p, w)| (join_path(&format!("[{i}]"), &p), w))),
        _ => None,
    }
}

/// Whether a key occurs twice among `fields`. A 256-bit filter of each key's length and last
/// byte leaves a full comparison for the rare key whose bit is already set, so that the common
/// object costs a couple of instructions per key.
#[inline]
fn has_repeated_key(fields: &Fields) -> bool {
    if fields.len() < 2 {
        return false;
    }
    let mut seen = [0u64; 4];
    for (i, (key, _)) in fields.iter().enumerate() {
        let b = key.as_bytes();
        let h = (b.len() as u32).wrapping_mul(37).wrapping_add(u32::from(b.last().copied().unwrap_or(0)));
        let (word, bit) = ((h >> 6) as usize & 3, 1u64 << (h & 63));
        if seen[word] & bit != 0 && fields[..i].iter().any(|(k, _)| k == key) {
            return true;
        }
        seen[word] |= bit;
    }
    false
}

/// Reads a raw value as an array of raw elements.
pub fn parse_array(raw: Raw<'_>) -> FieldResult<Vec<Raw<'_>>> {
    if Kind::of(raw) != Kind::Array {
        return Err(wrong_kind("", "an array", raw));
    }
    if let Some(items) = scan::array(raw.get()) {
        return Ok(items);
    }
    serde_json::from_str::<Vec<&RawValue>>(raw.get())
        .map(|items| items.into_iter().map(Raw::from).collect())
        .map_err(|e| FieldError::of(ErrorKind::MalformedJson, "", format!("malformed array: {e}")))
}

/// Typed reads of one value (`None`: absent), named `key` in errors: what `RawObject`'s typed
/// getters do with a field, for values found some other way (a format file's paths).
pub mod value {
    use super::*;

    /// Absent or null is `None`.
    pub fn present(value: Option<Raw>) -> Option<Raw> {
        value.filter(|v| Kind::of(*v) != Kind::Null)
    }

    /// A string field; absent or null is `None`.
    pub fn str<'a>(key: &str, value: Option<Raw<'a>>) -> FieldResult<Option<Cow<'a, str>>> {
        match present(value) {
            None => Ok(None),
            Some(raw) => decode_string(raw).map(Some).ok_or_else(|| wrong_kind(key, "a string", raw)),
        }
    }

    /// An identifier: a string, or an integer written as a number (kept as its text).
    pub fn id<'a>(key: &str, value: Option<Raw<'a>>) -> FieldResult<Option<Cow<'a, str>>> {
        match present(value) {
            None => Ok(None),
            Some(raw) if Kind::of(raw) == Kind::Number => Ok(Some(Cow::Borrowed(raw.get()))),
            Some(raw) => decode_string(raw).map(Some).ok_or_else(|| wrong_kind(key, "a string or number id", raw)),
        }
    }

    /// A number: a JSON number, or a string holding one (proto3 JSON writes 64-bit integers as
    /// strings). Non-finite values are errors.
    pub fn number(key: &str, value: Option<Raw>) -> FieldResult<Option<f64>> {
        let Some(raw) = present(value) else { return Ok(None) };
        let text: Cow<str> = match Kind::of(raw) {
            Kind::Number => Cow::Borrowed(raw.get()),
            Kind::String => decode_string(raw).unwrap_or_default(),
            _ => return Err(wrong_kind(key, "a number", raw)),
        };
        match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && !text.trim().is_empty() && !text.contains(['i', 'I', 'n', 'N']) => Ok(Some(v)),
            Ok(_) => {
                Err(FieldError::of(ErrorKind::OutOfRange, key, format!("number {} is out of range", snippet(raw))))
            }
            Err(_) => Err(FieldError::new(key, format!("expected a number, got {}", snippet(raw)))),
        }
    }

    /// An exact decimal from the number's text (or a string holding one), times 10^`shift`.
    pub fn decimal_shifted(key: &str, value: Option<Raw>, shift: i32) -> FieldResult<Option<Decimal>> {
        let Some(raw) = present(value) else { return Ok(None) };
        let text: Cow<str> = match Kind::of(raw) {
            Kind::Number => Cow::Borrowed(raw.get()),
            Kind::String => decode_string(raw).unwrap_or_default(),
            _ => return Err(wrong_kind(key, "a decimal number", raw)),
        };
        Decimal::parse_shifted(text.trim(), shift).map(Some).map_err(|e| {
            let kind = match e {
                crate::money::DecimalError::OutOfRange => ErrorKind::OutOfRange,
                crate::money::DecimalError::NotANumber => ErrorKind::Invalid,
            };
            FieldError::of(kind, key, format!("{}: {e}", snippet(raw)))
        })
    }

    /// A timestamp: RFC 3339 text, or an epoch number (see `time::from_epoch`).
    pub fn time(key: &str, value: Option<Raw>) -> FieldResult<Option<i64>> {
        let Some(raw) = present(value) else { return Ok(None) };
        let parsed = match Kind::of(raw) {
            Kind::String => {
                let s = decode_string(raw).unwrap_or_default();
                let t = s.trim();
                if !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
                    t.parse::<f64>().map_err(|_| "not a number").and_then(time::from_epoch)
                } else {
                    time::parse_rfc3339(t)
                }
            }
            Kind::Number => raw.get().parse::<f64>().map_err(|_| "not a number").and_then(time::from_epoch),
            _ => return Err(wrong_kind(key, "a timestamp", raw)),
        };
        parsed.map(Some).map_err(|why| FieldError::new(key, format!("{why}: {}", snippet(raw))))
    }

    /// A boolean.
    pub fn bool(key: &str, value: Option<Raw>) -> FieldResult<Option<bool>> {
        match present(value) {
            None => Ok(None),
            Some(raw) => match raw.get() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(wrong_kind(key, "a boolean", raw)),
            },
        }
    }
}
