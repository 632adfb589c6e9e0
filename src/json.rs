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

/// A problem with one field of a record: `path` is relative to the record (`createdAt`,
/// `metaInfo.timestamp`, `resource.id`), or empty for the record itself.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub path: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError { path: path.into(), reason: reason.into() }
    }

    /// Puts `parent.` in front of the path (used when reading a nested object).
    pub fn within(mut self, parent: &str) -> Self {
        self.path = if self.path.is_empty() {
            parent.to_string()
        } else if self.path.starts_with('[') {
            format!("{parent}{}", self.path)
        } else {
            format!("{parent}.{}", self.path)
        };
        self
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
    FieldError::new(key, format!("expected {expected}, got {} {}", Kind::of(raw).name(), snippet(raw)))
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
        serde_json::from_str(raw.get()).map_err(|e| FieldError::new(path, format!("malformed object: {e}")))
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
        match self.present(key) {
            None => Ok(None),
            Some(raw) => decode_string(raw).map(Some).ok_or_else(|| wrong_kind(key, "a string", raw)),
        }
    }

    /// An identifier: a string, or an integer written as a number (kept as its text).
    pub fn id(&self, key: &str) -> FieldResult<Option<Cow<'a, str>>> {
        match self.present(key) {
            None => Ok(None),
            Some(raw) if Kind::of(raw) == Kind::Number => Ok(Some(Cow::Borrowed(raw.get()))),
            Some(raw) => decode_string(raw).map(Some).ok_or_else(|| wrong_kind(key, "a string or number id", raw)),
        }
    }

    /// A number: a JSON number, or a string holding one (proto3 JSON writes 64-bit integers as
    /// strings). Non-finite values are errors.
    pub fn number(&self, key: &str) -> FieldResult<Option<f64>> {
        let Some(raw) = self.present(key) else { return Ok(None) };
        let text: Cow<str> = match Kind::of(raw) {
            Kind::Number => Cow::Borrowed(raw.get()),
            Kind::String => decode_string(raw).unwrap_or_default(),
            _ => return Err(wrong_kind(key, "a number", raw)),
        };
        match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && !text.trim().is_empty() && !text.contains(['i', 'I', 'n', 'N']) => Ok(Some(v)),
            Ok(_) => Err(FieldError::new(key, format!("number {} is out of range", snippet(raw)))),
            Err(_) => Err(FieldError::new(key, format!("expected a number, got {}", snippet(raw)))),
        }
    }

    /// An exact decimal from the number's text (or a string holding one).
    pub fn decimal(&self, key: &str) -> FieldResult<Option<Decimal>> {
        let Some(raw) = self.present(key) else { return Ok(None) };
        let text: Cow<str> = match Kind::of(raw) {
            Kind::Number => Cow::Borrowed(raw.get()),
            Kind::String => decode_string(raw).unwrap_or_default(),
            _ => return Err(wrong_kind(key, "a decimal number", raw)),
        };
        Decimal::parse(text.trim()).map(Some).map_err(|e| FieldError::new(key, format!("{}: {e}", snippet(raw))))
    }

    /// A timestamp: RFC 3339 text, or an epoch number (see `time::from_epoch`).
    pub fn time(&self, key: &str) -> FieldResult<Option<i64>> {
        let Some(raw) = self.present(key) else { return Ok(None) };
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
    pub fn bool(&self, key: &str) -> FieldResult<Option<bool>> {
        match self.present(key) {
            None => Ok(None),
            Some(raw) => match raw.get() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(wrong_kind(key, "a boolean", raw)),
            },
        }
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
            let found = obj.fields().find_map(|(k, v)| nonfinite_field(v).map(|(p, w)| (join_key(k, &p), w)));
            found
        }
        Kind::Array => parse_array(raw)
            .ok()?
            .into_iter()
            .enumerate()
            .find_map(|(i, v)| nonfinite_field(v).map(|(p, w)| (format!("[{i}]{}", dotted(&p)), w))),
        _ => None,
    }
}

fn dotted(path: &str) -> String {
    if path.is_empty() || path.starts_with('[') {
        path.to_string()
    } else {
        format!(".{path}")
    }
}

fn join_key(key: &str, rest: &str) -> String {
    format!("{key}{}", dotted(rest))
}

/// Whether a key occurs twice among `fields`. A 256-bit filter of each key's length and end
/// bytes leaves a full comparison for the rare key whose bit is already set, so that the
/// common object costs a few instructions per key.
fn has_repeated_key(fields: &Fields) -> bool {
    if fields.len() < 2 {
        return false;
    }
    let mut seen = [0u64; 4];
    for (i, (key, _)) in fields.iter().enumerate() {
        let b = key.as_bytes();
        let h = (b.len() as u32)
            .wrapping_mul(0x9E37)
            .wrapping_add(u32::from(b.first().copied().unwrap_or(0)).wrapping_mul(31))
            .wrapping_add(u32::from(b.last().copied().unwrap_or(0)).wrapping_mul(131))
            .wrapping_add(u32::from(b.get(b.len() / 2).copied().unwrap_or(0)).wrapping_mul(7));
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
        .map_err(|e| FieldError::new("", format!("malformed array: {e}")))
}

/// Array values longer than this are split while a large document is read (`parse_large`).
const PARALLEL_ARRAY: usize = 1 << 20;

/// A large document read by `parse_large`.
pub enum Large<'a> {
    Object(RawObject<'a>),
    Array(Vec<Raw<'a>>),
}

/// Reads one large JSON document (an object or an array) with the same result as serde_json
/// reading it whole, but with the elements of its big arrays checked in parallel: one
/// structural pass splits the document (and its big arrays into elements), then serde_json
/// validates each top-level value, or each element of a big array, on its own, in parallel.
/// `None` when anything is invalid or unusual: the caller then reads the document serially, and
/// serde_json names the error.
pub fn parse_large(text: &str) -> Option<Large<'_>> {
    use rayon::prelude::*;
    use serde::de::IgnoredAny;
    let valid = |v: &Raw| serde_json::from_str::<IgnoredAny>(v.get()).is_ok();
    match text.trim_start().as_bytes().first()? {
        b'{' => {
            let (fields, split) = scan::object_split(text, Some(PARALLEL_ARRAY))?;
            // A key with escapes was decoded (and so checked) by serde_json; a plain one may
            // still hold a control character, which JSON does not allow.
            if fields.iter().any(|(k, _)| matches!(k, Cow::Borrowed(k) if k.bytes().any(|c| c < 0x20))) {
                return None;
            }
            let values_ok = fields
                .par_iter()
                .enumerate()
                .filter(|(i, _)| !split.iter().any(|(j, _)| j == i))
                .all(|(_, (_, v))| valid(v));
            let items_ok = split.iter().all(|(_, items)| items.par_iter().all(valid));
            (values_ok && items_ok).then_some(Large::Object(RawObject::new(fields, split)))
        }
        b'[' => {
            let items = scan::array(text)?;
            items.par_iter().all(valid).then_some(Large::Array(items))
        }
        _ => None,
    }
}

/// Reads a JSON document of any size in one serial pass that checks it and splits it
/// (`scan::checked`); `None` where serde_json must read it (an error, or something unusual).
pub fn parse_checked(text: &str) -> Option<Large<'_>> {
    scan::checked(text)
}

/// For tests and the fuzzer: checks `parse_checked` against serde_json on `text`, panicking on a
/// difference: what it accepts, serde_json accepts, with the same fields (or elements) at the
/// same places, and every top-level array split into serde_json's elements. Returns whether it
/// accepted the text.
#[doc(hidden)]
pub fn assert_checked_agrees_with_serde(text: &str) -> bool {
    let Some(read) = parse_checked(text) else { return false };
    let place = |r: &str| (r.as_ptr() as usize - text.as_ptr() as usize, r.len());
    let elements = |raw: &str| -> Vec<(usize, usize)> {
        let items: Vec<&RawValue> = serde_json::from_str(raw).expect("serde_json reads the array");
        items.iter().map(|r| place(r.get())).collect()
    };
    assert!(serde_json::from_str::<de::IgnoredAny>(text).is_ok(), "accepted what serde_json rejects: {text:?}");
    match read {
        Large::Object(obj) => {
            let want: RawObject = serde_json::from_str(text).expect("serde_json reads the object");
            let fields = |o: &RawObject| -> Vec<(String, (usize, usize))> {
                o.fields.iter().map(|(k, v)| (k.to_string(), place(v.get()))).collect()
            };
            assert_eq!(fields(&obj), fields(&want), "fields of {text:?}");
            for (i, (_, value)) in obj.fields.iter().enumerate() {
                let split = obj.split.iter().find(|(j, _)| *j == i);
                match split {
                    Some((_, items)) => {
                        let got: Vec<_> = items.iter().map(|r| place(r.get())).collect();
                        assert_eq!(got, elements(value.get()), "elements of {text:?}");
                    }
                    None => assert_ne!(Kind::of(*value), Kind::Array, "an array field not split in {text:?}"),
                }
            }
        }
        Large::Array(items) => {
            let got: Vec<_> = items.iter().map(|r| place(r.get())).collect();
            assert_eq!(got, elements(text), "elements of {text:?}");
        }
    }
    true
}

/// A structural scanner for JSON text that serde_json has already validated (every `Raw` is a
/// slice of such a document): it finds where keys and values begin and end and checks nothing
/// else. On anything unexpected it returns `None` and the caller parses with serde_json, which
/// gives the error its message; it never panics.
pub mod scan {
    use std::borrow::Cow;

    use super::Raw;

    /// Deeper values are left to serde_json (whose limit is 128 for a whole document).
    const MAX_SCAN_DEPTH: usize = 100;

    fn ws(b: &[u8], mut i: usize) -> usize {
        while matches!(b.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            i += 1;
        }
        i
    }

    /// For the string starting at `b[i] == '"'`: the index after its closing quote, and
    /// whether it has escapes.
    fn string_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
        let mut j = i + 1;
        let mut escaped = false;
        loop {
            let k = j + memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
            if b.get(k) == Some(&b'\\') {
                escaped = true;
                j = k + 2;
            } else {
                return Some((k + 1, escaped));
            }
        }
    }

    /// The index after the value that starts at `b[i]`.
    fn value_end(b: &[u8], i: usize) -> Option<usize> {
        match b.get(i)? {
            b'"' => string_end(b, i).map(|(end, _)| end),
            b'{' | b'[' => {
                let mut depth = 0usize;
                let mut j = i;
                loop {
                    match b.get(j)? {
                        b'"' => {
                            j = string_end(b, j)?.0;
                            continue;
                        }
                        b'{' | b'[' => {
                            depth += 1;
                            if depth > MAX_SCAN_DEPTH {
                                return None;
                            }
                        }
                        b'}' | b']' => {
                            depth = depth.checked_sub(1)?;
                            if depth == 0 {
                                return Some(j + 1);
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
            }
            _ => {
                let mut j = i;
                while !matches!(b.get(j), None | Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')) {
                    j += 1;
                }
                (j > i).then_some(j)
            }
        }
    }

    /// The fields of a JSON object, in order.
    pub fn object(text: &str) -> Option<Vec<(Cow<'_, str>, Raw<'_>)>> {
        object_split(text, None).map(|(fields, _)| fields)
    }

    /// The elements of the array starting at `b[i] == '['`, and the index after it. An array
    /// that runs on past `PARALLEL_SCAN` bytes is split in parallel (`elements_parallel`).
    fn array_at(text: &str, i: usize) -> Option<(Vec<Raw<'_>>, usize)> {
        let serial = if rayon::current_num_threads() > 1 { PARALLEL_SCAN } else { usize::MAX };
        array_split(text, i, serial)
    }

    /// `array_at`, going parallel after `serial` bytes of elements.
    fn array_split(text: &str, mut i: usize, serial: usize) -> Option<(Vec<Raw<'_>>, usize)> {
        let b = text.as_bytes();
        if b.get(i) != Some(&b'[') {
            return None;
        }
        let mut items = Vec::new();
        i = ws(b, i + 1);
        if b.get(i) == Some(&b']') {
            return Some((items, i + 1));
        }
        let first = i;
        match elements(text, i, i.saturating_add(serial), &mut items)? {
            Next::End(end) => Some((items, end)),
            Next::More(at) => elements_parallel(text, first, at, items),
        }
    }

    /// Where a run of array elements stopped.
    enum Next {
        /// At the start of the next element, at or after the run's limit.
        More(usize),
        /// Past the array's closing bracket.
        End(usize),
    }

    /// Array elements from `i` (where one starts) until the array ends or the next element
    /// starts at or after `limit`.
    fn elements<'t>(text: &'t str, mut i: usize, limit: usize, items: &mut Vec<Raw<'t>>) -> Option<Next> {
        let b = text.as_bytes();
        loop {
            if i >= limit {
                return Some(Next::More(i));
            }
            let end = value_end(b, i)?;
            items.push(Raw(text.get(i..end)?));
            i = ws(b, end);
            match b.get(i)? {
                b',' => i = ws(b, i + 1),
                b']' => return Some(Next::End(i + 1)),
                _ => return None,
            }
        }
    }

    /// An array read this far serially is split in parallel from here on.
    const PARALLEL_SCAN: usize = 4 << 20;

    /// The rest of a long array's elements, from `at`, found in parallel with the same result
    /// as `elements`. The text after `at` is cut into pieces; in each piece a guess is made at
    /// where an element starts (the first element's opening `{"key":` after a comma), and the
    /// elements are scanned from there. The pieces are then joined in order: a piece is used
    /// only when the scan before it stopped exactly at its guess (then the guess is a real
    /// element start, and the piece's scan is the one a serial scan would make); anything
    /// else is scanned again serially from where the real scan stands.
    fn elements_parallel<'t>(
        text: &'t str,
        first: usize,
        at: usize,
        mut items: Vec<Raw<'t>>,
    ) -> Option<(Vec<Raw<'t>>, usize)> {
        use rayon::prelude::*;
        let b = text.as_bytes();
        let sig = object_signature(b, first);
        let pieces = 4 * rayon::current_num_threads();
        let size = (b.len() - at) / pieces + 1;
        let mut starts: Vec<usize> = match sig {
            Some(sig) => {
                let finder = memchr::memmem::Finder::new(sig);
                (1..pieces).into_par_iter().filter_map(|k| guess(b, at + k * size, &finder)).collect()
            }
            None => Vec::new(),
        };
        starts.dedup();
        // A guessed piece's scan is bounded, so a wrong guess cannot run through the document.
        let runs: Vec<Option<(Vec<Raw<'t>>, Next)>> = starts
            .par_iter()
            .enumerate()
            .map(|(k, &start)| {
                let limit = starts.get(k + 1).copied().unwrap_or(usize::MAX);
                let bound = limit.saturating_add(size).min(b.len());
                let text = text.get(..bound)?;
                let mut run = Vec::new();
                let next = elements(text, start, limit, &mut run)?;
                Some((run, next))
            })
            .collect();
        items.reserve(runs.iter().flatten().map(|(run, _)| run.len()).sum());
        let mut runs = runs;
        let mut i = at;
        let mut k = 0;
        loop {
            // The first piece not yet passed by the real scan.
            while starts.get(k).is_some_and(|&start| start < i) {
                k += 1;
            }
            let next = if starts.get(k) == Some(&i) {
                match runs[k].take() {
                    Some((run, next)) => {
                        items.extend(run);
                        next
                    }
                    None => elements(text, i, starts.get(k + 1).copied().unwrap_or(usize::MAX), &mut items)?,
                }
            } else {
                elements(text, i, starts.get(k).copied().unwrap_or(usize::MAX), &mut items)?
            };
            match next {
                Next::End(end) => return Some((items, end)),
                Next::More(next) => i = next,
            }
        }
    }

    /// The opening of the object element at `b[i]`, up to the colon after its first key:
    /// `{"id":`. `None` when the element is not an object or its first key has escapes.
    fn object_signature(b: &[u8], i: usize) -> Option<&[u8]> {
        if b.get(i..i + 2)? != b"{\"" {
            return None;
        }
        let close = i + 2 + memchr::memchr2(b'"', b'\\', b.get(i + 2..(i + 66).min(b.len()))?)?;
        (b.get(close) == Some(&b'"') && b.get(close + 1) == Some(&b':')).then(|| &b[i..close + 2])
    }

    /// The first place at or after `from` where the signature follows a comma (and whitespace).
    fn guess(b: &[u8], from: usize, finder: &memchr::memmem::Finder) -> Option<usize> {
        let mut from = from;
        loop {
            let at = from + finder.find(b.get(from..)?)?;
            let before = b[..at].iter().rposition(|c| !matches!(c, b' ' | b'\n' | b'\r' | b'\t'));
            if before.is_some_and(|p| b[p] == b',') {
                return Some(at);
            }
            from = at + 1;
        }
    }

    /// The elements of a JSON array, in order.
    pub fn array(text: &str) -> Option<Vec<Raw<'_>>> {
        let b = text.as_bytes();
        let (items, end) = array_at(text, ws(b, 0))?;
        (ws(b, end) == b.len()).then_some(items)
    }

    /// The fields of a JSON object; with `big`, the elements of every array value longer than
    /// `big` bytes are split out in the same pass (by field index).
    #[allow(clippy::type_complexity)]
    pub fn object_split(
        text: &str,
        big: Option<usize>,
    ) -> Option<(Vec<(Cow<'_, str>, Raw<'_>)>, Vec<(usize, Vec<Raw<'_>>)>)> {
        let b = text.as_bytes();
        let mut i = ws(b, 0);
        if b.get(i) != Some(&b'{') {
            return None;
        }
        let mut fields = Vec::with_capacity(12);
        let mut split = Vec::new();
        i = ws(b, i + 1);
        if b.get(i) == Some(&b'}') {
            return (ws(b, i + 1) == b.len()).then_some((fields, split));
        }
        loop {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let key;
            (key, i) = key_at(text, i, string_end(b, i)?)?;
            let end = match big {
                Some(big) if b.get(i) == Some(&b'[') => {
                    let (items, end) = array_at(text, i)?;
                    if end - i > big {
                        split.push((fields.len(), items));
                    }
                    end
                }
                _ => value_end(b, i)?,
            };
            fields.push((key, Raw(text.get(i..end)?)));
            i = ws(b, end);
            match b.get(i)? {
                b',' => i = ws(b, i + 1),
                b'}' => return (ws(b, i + 1) == b.len()).then_some((fields, split)),
                _ => return None,
            }
        }
    }

    /// Reads a whole JSON document in one pass that both checks it and splits it: an object
    /// into its fields (and every array value into its elements), an array into its elements.
    /// It accepts only what serde_json accepts; `None` for anything else, and for anything
    /// unusual (nesting deeper than 100, a key that does not decode), where the caller reads
    /// the document with serde_json, which gives the error its message.
    pub fn checked(text: &str) -> Option<super::Large<'_>> {
        let b = text.as_bytes();
        let start = ws(b, 0);
        let end = b.len() - b.iter().rev().take_while(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t')).count();
        // Compact JSON holds no control character at all; otherwise each string is checked.
        let strict = has_control(b.get(start..end)?);
        let v = Checker { b, strict };
        match b.get(start)? {
            b'{' => {
                let mut fields = Vec::with_capacity(12);
                let mut split = Vec::new();
                let mut i = ws(b, start + 1);
                if b.get(i) != Some(&b'}') {
                    loop {
                        let key;
                        (key, i) = key_at(text, i, v.string(i)?)?;
                        let value_end = if b.get(i) == Some(&b'[') {
                            let (items, value_end) = v.elements(text, i)?;
                            split.push((fields.len(), items));
                            value_end
                        } else {
                            v.value(i, 1)?
                        };
                        fields.push((key, Raw(text.get(i..value_end)?)));
                        i = ws(b, value_end);
                        match b.get(i)? {
                            b',' => i = ws(b, i + 1),
                            b'}' => break,
                            _ => return None,
                        }
                    }
                }
                (ws(b, i + 1) == b.len()).then_some(super::Large::Object(super::RawObject::new(fields, split)))
            }
            b'[' => {
                let (items, array_end) = v.elements(text, start)?;
                (ws(b, array_end) == b.len()).then_some(super::Large::Array(items))
            }
            _ => None,
        }
    }

    /// Whether bytes hold a control character (which JSON allows only as whitespace between
    /// tokens, never inside a string).
    fn has_control(b: &[u8]) -> bool {
        b.chunks(256).any(|c| c.iter().fold(false, |any, &x| any | (x < 0x20)))
    }

    /// A checking scanner over one document.
    struct Checker<'b> {
        b: &'b [u8],
        /// Whether strings must be checked for control characters.
        strict: bool,
    }

    impl Checker<'_> {
        /// The elements of the valid array at `text[i] == '['` (a top-level one or a top-level
        /// field's), and the index after it.
        fn elements<'t>(&self, text: &'t str, i: usize) -> Option<(Vec<Raw<'t>>, usize)> {
            let mut items = Vec::new();
            let mut sliced = true;
            let end = self.array(i, 1, &mut |s, e| match text.get(s..e) {
                Some(t) => items.push(Raw(t)),
                None => sliced = false,
            })?;
            sliced.then_some((items, end))
        }

        /// The index after the valid JSON value at `b[i]`.
        fn value(&self, i: usize, depth: usize) -> Option<usize> {
            let b = self.b;
            match b.get(i)? {
                b'"' => self.string(i).map(|(end, _)| end),
                b'{' => {
                    if depth >= MAX_SCAN_DEPTH {
                        return None;
                    }
                    let mut j = ws(b, i + 1);
                    if b.get(j) == Some(&b'}') {
                        return Some(j + 1);
                    }
                    loop {
                        j = ws(b, self.string(j)?.0);
                        if b.get(j) != Some(&b':') {
                            return None;
                        }
                        j = ws(b, self.value(ws(b, j + 1), depth + 1)?);
                        match b.get(j)? {
                            b',' => j = ws(b, j + 1),
                            b'}' => return Some(j + 1),
                            _ => return None,
                        }
                    }
                }
                b'[' => self.array(i, depth, &mut |_, _| {}),
                b't' => literal(b, i, b"true"),
                b'f' => literal(b, i, b"false"),
                b'n' => literal(b, i, b"null"),
                _ => number(b, i),
            }
        }

        /// The index after the valid array at `b[i] == '['`, telling `element` where each
        /// element starts and ends.
        fn array(&self, i: usize, depth: usize, element: &mut dyn FnMut(usize, usize)) -> Option<usize> {
            let b = self.b;
            if depth >= MAX_SCAN_DEPTH || b.get(i) != Some(&b'[') {
                return None;
            }
            let mut j = ws(b, i + 1);
            if b.get(j) == Some(&b']') {
                return Some(j + 1);
            }
            loop {
                let end = self.value(j, depth + 1)?;
                element(j, end);
                j = ws(b, end);
                match b.get(j)? {
                    b',' => j = ws(b, j + 1),
                    b']' => return Some(j + 1),
                    _ => return None,
                }
            }
        }

        /// For the valid string at `b[i] == '"'`: the index after its closing quote, and
        /// whether it has escapes.
        fn string(&self, i: usize) -> Option<(usize, bool)> {
            let b = self.b;
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let mut j = i + 1;
            let mut escaped = false;
            loop {
                let k = j + memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
                if self.strict && has_control(&b[j..k]) {
                    return None;
                }
                if b[k] == b'"' {
                    return Some((k + 1, escaped));
                }
                escaped = true;
                j = match b.get(k + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => k + 2,
                    b'u' if b.get(k + 2..k + 6)?.iter().all(u8::is_ascii_hexdigit) => k + 6,
                    _ => return None,
                };
            }
        }
    }

    /// The index after the literal `word` at `b[i]`.
    fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
        (b.get(i..i + word.len())? == word).then_some(i + word.len())
    }

    /// The index after the valid JSON number at `b[i]`.
    fn number(b: &[u8], i: usize) -> Option<usize> {
        let digits = |mut j: usize| {
            while b.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
            j
        };
        let mut j = i + usize::from(b.get(i) == Some(&b'-'));
        j = match b.get(j)? {
            b'0' => j + 1,
            b'1'..=b'9' => digits(j + 1),
            _ => return None,
        };
        if b.get(j) == Some(&b'.') {
            let end = digits(j + 1);
            if end == j + 1 {
                return None;
            }
            j = end;
        }
        if matches!(b.get(j), Some(b'e' | b'E')) {
            j += 1 + usize::from(matches!(b.get(j + 1), Some(b'+' | b'-')));
            let end = digits(j);
            if end == j {
                return None;
            }
            j = end;
        }
        Some(j)
    }

    /// The key whose string runs from `text[i] == '"'` to `end` (decoded when `escaped`), and
    /// where its value starts, past the colon.
    #[inline]
    fn key_at(text: &str, i: usize, (end, escaped): (usize, bool)) -> Option<(Cow<'_, str>, usize)> {
        let b = text.as_bytes();
        let key = if escaped {
            Cow::Owned(serde_json::from_str::<String>(text.get(i..end)?).ok()?)
        } else {
            Cow::Borrowed(text.get(i + 1..end - 1)?)
        };
        let colon = ws(b, end);
        (b.get(colon) == Some(&b':')).then(|| (key, ws(b, colon + 1)))
    }

    /// The first element of a JSON array, without reading the rest.
    pub fn first_element(text: &str) -> Option<Raw<'_>> {
        let b = text.as_bytes();
        let i = ws(b, 0);
        if b.get(i) != Some(&b'[') {
            return None;
        }
        let i = ws(b, i + 1);
        if b.get(i) == Some(&b']') {
            return None;
        }
        let end = value_end(b, i)?;
        Some(Raw(text.get(i..end)?))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn rng(seed: u64) -> impl FnMut() -> usize {
            let mut state = seed;
            move || {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 33) as usize
            }
        }

        /// An array of records that nest arrays of objects with the same first key, so that
        /// guesses land on nested elements as well as on real ones; some records open with
        /// another key, some separators have whitespace.
        fn records(n: usize, seed: u64) -> String {
            let mut next = rng(seed);
            let mut s = String::from("[");
            for k in 0..n {
                if k > 0 {
                    s.push_str(if next().is_multiple_of(5) { " ,\n " } else { "," });
                }
                s += &match next() % 4 {
                    0 => format!(r#"{{"id":{k},"sub":[{{"id":1}},{{"id":"x,{{\"id\":"}}],"s":"a\\\"b]}}"}}"#),
                    1 => format!(r#"{{"id":"{k}","deep":{{"a":[[1,2],{{"id":[]}},{{"id":{{}}}}]}}}}"#),
                    2 => format!(r#"{{"other":{k},"id":null}}"#),
                    _ => format!(r#"{{"id":{k}}}"#),
                };
            }
            s.push(']');
            s
        }

        fn spans(text: &str, items: &[Raw]) -> Vec<(usize, usize)> {
            items.iter().map(|r| (r.get().as_ptr() as usize - text.as_ptr() as usize, r.get().len())).collect()
        }

        fn split(text: &str, serial: usize, threads: usize) -> Option<(Vec<(usize, usize)>, usize)> {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| array_split(text, 0, serial)).map(|(items, end)| (spans(text, &items), end))
        }

        #[test]
        fn parallel_split_equals_the_serial_scan() {
            for seed in 0..20 {
                let text = records(2000 + seed as usize * 37, seed);
                let serial = split(&text, usize::MAX, 1).unwrap();
                assert_eq!(serial.1, text.len());
                assert_eq!(serial.0.len(), 2000 + seed as usize * 37);
                for threads in [2, 3, 5] {
                    for from in [0, 1, 100, 5000, text.len() / 2] {
                        assert_eq!(
                            split(&text, from, threads).as_ref(),
                            Some(&serial),
                            "seed {seed}, {threads} threads, from {from}"
                        );
                    }
                }
            }
        }

        #[test]
        fn parallel_split_of_broken_text_fails_or_agrees_like_the_serial_scan() {
            let base = records(3000, 7);
            let mut next = rng(99);
            for round in 0..300 {
                let mut text = base.clone().into_bytes();
                for _ in 0..1 + round % 3 {
                    let at = next() % text.len();
                    text[at] = b"{}[]\",:\\ x"[next() % 10];
                }
                if round % 7 == 0 {
                    text.truncate(next() % text.len());
                }
                let text = String::from_utf8(text).unwrap();
                let serial = split(&text, usize::MAX, 1);
                assert_eq!(split(&text, 64, 3), serial, "round {round}");
            }
        }

        #[test]
        fn checked_reads_what_serde_json_reads_and_rejects_what_it_rejects() {
            let accepted = [
                r#"{}"#,
                r#" [ ] "#,
                "{\"a\" : [1, -0.5e+3, 2E-7, \"x\\u00e9\\n\\\"\", true, false, null, {}, []] ,\n\t\"b\":{\"c\":[[]]}}\n",
                r#"[{"id":1},{"id":"2","v":[{"id":3}]}]"#,
                r#"{"a":1,"a":2}"#,
                "{\"k\\u0041y\":0}",
                "{\"\u{e9}t\u{e9}\":\"\u{1F600}\"}",
            ];
            for text in accepted {
                assert!(crate::json::assert_checked_agrees_with_serde(text), "should accept {text:?}");
            }
            // serde_json rejects each of these; checked must too. (Some it leaves to serde_json
            // without being wrong, e.g. nesting deeper than 100.)
            let rejected = [
                "",
                " ",
                "{",
                "[",
                "{]",
                "[}",
                "[1,]",
                "{\"a\":1,}",
                "{,}",
                "[,1]",
                "{\"a\"}",
                "{\"a\":}",
                "{a:1}",
                "[01]",
                "[-]",
                "[1.]",
                "[.5]",
                "[1e]",
                "[1e+]",
                "[+1]",
                "[tru]",
                "[nul]",
                "[True]",
                "[\"a\tb\"]",
                "[\"a\nb\"]",
                "[\"\\x\"]",
                "[\"\\u12\"]",
                "[\"\\u12g4\"]",
                "[\"abc]",
                "[1] [2]",
                "{} x",
                "[1 2]",
                "{\"a\":1 \"b\":2}",
                "[\"\u{1}\"]",
            ];
            for text in rejected {
                assert!(serde_json::from_str::<serde::de::IgnoredAny>(text).is_err(), "serde_json accepts {text:?}");
                assert!(!crate::json::assert_checked_agrees_with_serde(text), "should reject {text:?}");
            }
            // Valid or not, these are left to serde_json: a lone value, a key that does not
            // decode (a lone surrogate), nesting deeper than 100.
            let deep = format!("{}{}", "[".repeat(150), "]".repeat(150));
            for text in ["1", "\"s\"", "{\"\\ud800\":1}", &deep] {
                assert!(!crate::json::assert_checked_agrees_with_serde(text), "should leave {text:?}");
            }
        }

        #[test]
        fn checked_agrees_with_serde_json_on_broken_exports() {
            let mut next = rng(5);
            let mut accepted = 0;
            for name in ["gitpod", "suger", "exabits", "vmware", "consumption_log"] {
                let path = format!("{}/examples/exports/{name}.json", env!("CARGO_MANIFEST_DIR"));
                let base = std::fs::read_to_string(path).expect("sample export");
                assert!(crate::json::assert_checked_agrees_with_serde(&base), "{name} is read in one pass");
                for round in 0..400 {
                    let mut text = base.clone().into_bytes();
                    for _ in 0..1 + round % 2 {
                        let at = next() % text.len();
                        if text[at].is_ascii() {
                            text[at] = b"{}[]\",:\\ \t\n0-.eE+tfnu1x"[next() % 23];
                        }
                    }
                    let text = String::from_utf8(text).expect("ASCII replaced by ASCII");
                    accepted += usize::from(crate::json::assert_checked_agrees_with_serde(&text));
                }
            }
            // Some changes keep the text valid (a digit for a digit, a space for a space...).
            assert!(accepted > 100, "{accepted} of 2000 broken exports were still valid");
        }

        #[test]
        fn an_array_that_ends_early_in_a_long_text_ends_where_it_ends() {
            // The guesses land in the text after the array; only the real scan counts.
            let tail = records(500, 3);
            let text = format!(r#"[{{"id":1}},{{"id":2}}],{tail}"#);
            let (items, end) = split(&text, 8, 4).unwrap();
            assert_eq!(items.len(), 2);
            assert_eq!(&text[end..end + 1], ",");
        }
    }
}

/// Builds the `tags` column: a compact JSON object of every provider field without a column.
#[derive(Clone)]
pub struct Tags {
    buf: String,
}

impl Default for Tags {
    fn default() -> Self {
        Self::new()
    }
}

impl Tags {
    pub fn new() -> Self {
        // Room for a typical record's tags at once: growing from one byte reallocated each
        // record's tags five or six times (4% of Exabits' time in reallocation).
        let mut buf = String::with_capacity(384);
        buf.push('{');
        Tags { buf }
    }

    fn key(&mut self, key: &str) {
        self.prefixed_key("", key);
    }

    /// Writes the key `prefix` + `key`.
    fn prefixed_key(&mut self, prefix: &str, key: &str) {
        if self.buf.len() > 1 {
            self.buf.push(',');
        }
        if prefix.is_empty() {
            push_json_string(&mut self.buf, key);
        } else if is_plain(prefix) && is_plain(key) {
            self.buf.push('"');
            self.buf.push_str(prefix);
            self.buf.push_str(key);
            self.buf.push('"');
        } else {
            push_json_string(&mut self.buf, &format!("{prefix}{key}"));
        }
        self.buf.push(':');
    }

    /// Adds a field with its raw JSON value, whitespace removed. A value nested deeper than
    /// serde_json's own limit for parsed documents (128) is an error, not a tag.
    pub fn raw(&mut self, key: &str, raw: Raw) -> FieldResult<()> {
        self.prefixed_raw("", key, raw)
    }

    fn prefixed_raw(&mut self, prefix: &str, key: &str, raw: Raw) -> FieldResult<()> {
        let text = raw.get();
        if text.starts_with(['{', '[']) && nesting_depth(text) > MAX_DEPTH {
            return Err(FieldError::new(format!("{prefix}{key}"), format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.prefixed_key(prefix, key);
        push_compact(&mut self.buf, text);
        Ok(())
    }

    pub fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        push_json_string(&mut self.buf, value);
    }

    /// Adds every field of `obj` whose key is not in `mapped`, under `prefix` + key.
    pub fn rest(&mut self, obj: &RawObject, mapped: &[&str], prefix: &str) -> FieldResult<()> {
        for (k, v) in obj.fields() {
            if !mapped.contains(&k) {
                self.prefixed_raw(prefix, k, v)?;
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> String {
        self.buf.push('}');
        self.buf
    }
}

/// The deepest nesting a tag value may have: serde_json's limit for the documents it parses.
pub const MAX_DEPTH: usize = 128;

/// How deeply arrays and objects nest in JSON text (strings skipped).
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    max = max.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    max
}

/// Whether `s` can be written between quotes as it is.
fn is_plain(s: &str) -> bool {
    s.bytes().all(|c| c >= 0x20 && c != b'"' && c != b'\\')
}

/// Appends `s` as a JSON string literal.
pub fn push_json_string(buf: &mut String, s: &str) {
    if is_plain(s) {
        buf.push('"');
        buf.push_str(s);
        buf.push('"');
    } else {
        // Serializing a &str cannot fail.
        buf.push_str(&serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\"")));
    }
}

/// Appends JSON text with the insignificant whitespace removed.
pub fn push_compact(buf: &mut String, text: &str) {
    if !text.bytes().any(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t')) {
        buf.push_str(text);
        return;
    }
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            buf.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            buf.push(c);
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            buf.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(text: &str) -> RawObject<'_> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn typed_readers() {
        let o = obj(r#"{"s":"a\"b","n":"12.5","m":3,"t":"2024-01-01T00:00:00Z","e":1724945437,"z":null}"#);
        assert_eq!(o.str("s").unwrap().unwrap(), "a\"b");
        assert_eq!(o.number("n").unwrap(), Some(12.5));
        assert_eq!(o.number("m").unwrap(), Some(3.0));
        assert_eq!(o.id("m").unwrap().unwrap(), "3");
        assert_eq!(o.time("t").unwrap(), Some(1_704_067_200_000_000));
        assert_eq!(o.time("e").unwrap(), Some(1_724_945_437_000_000));
        assert_eq!(o.str("z").unwrap(), None);
        assert_eq!(o.str("missing").unwrap(), None);
    }

    #[test]
    fn type_errors_name_the_field() {
        let o = obj(r#"{"s":[1],"n":"abc","big":1e400,"o":[]}"#);
        let e = o.str("s").unwrap_err();
        assert_eq!(e.path, "s");
        assert!(e.reason.contains("expected a string, got an array"), "{}", e.reason);
        assert!(o.number("n").is_err());
        assert!(o.number("big").unwrap_err().reason.contains("out of range"));
        assert!(o.object("o").unwrap_err().reason.contains("expected an object"));
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_only() {
        let o = obj(r#"{"a":1,"dup":{"x":1},"b":2,"dup":{"x":2}}"#);
        assert_eq!(
            o.fields().map(|(k, v)| format!("{k}={}", v.get())).collect::<Vec<_>>(),
            ["a=1", "b=2", "dup={\"x\":2}"]
        );
        let mut t = Tags::new();
        t.rest(&o, &[], "").unwrap();
        assert_eq!(t.finish(), r#"{"a":1,"b":2,"dup":{"x":2}}"#);
        // The checking scanner (split arrays keep their field) and the large-document reader agree.
        let text = r#"{"r":[1],"k":1,"r":[2,3],"k":2}"#;
        let Some(Large::Object(checked)) = parse_checked(text) else { panic!("checked") };
        assert_eq!(checked.array("r").unwrap().unwrap().iter().map(|r| r.get()).collect::<Vec<_>>(), ["2", "3"]);
        assert_eq!(checked.get("k").map(Raw::get), Some("2"));
        assert_eq!(checked.fields().count(), 2);
        // Many keys, to pass the filter's collisions, and no false repeats.
        let many: String = (0..300).map(|i| format!("\"k{i}\":{i},")).collect::<String>() + "\"k7\":\"last\"";
        let text = format!("{{{many}}}");
        let o = obj(&text);
        assert_eq!(o.fields().count(), 300);
        assert_eq!(o.get("k7").map(Raw::get), Some("\"last\""));
    }

    #[test]
    fn non_finite_marks_are_found_by_path() {
        let text = r#"{"a":1,"records":{"x":"\uffffNaN"},"l":[0,{"y":"\uffff-Infinity"}]}"#;
        assert_eq!(nonfinite_field(Raw::of_valid(text)), Some(("records.x".into(), "NaN".into())));
        let text = r#"{"l":[0,{"y":"\uffff-Infinity"}]}"#;
        assert_eq!(nonfinite_field(Raw::of_valid(text)), Some(("l[1].y".into(), "-Infinity".into())));
        assert_eq!(nonfinite_field(Raw::of_valid(r#"{"s":"\uffffelse"}"#)), None);
    }

    #[test]
    fn tags_are_compact_json() {
        let o = obj("{ \"a\" : { \"x\" : \"1 2\" },\n \"b\": [1, 2] }");
        let mut t = Tags::new();
        t.rest(&o, &["b"], "").unwrap();
        t.str("q\"uote", "v");
        assert_eq!(t.finish(), r#"{"a":{"x":"1 2"},"q\"uote":"v"}"#);
    }

    /// serde_json's reading of an object, for comparison with the scanner.
    fn serde_fields(text: &str) -> Vec<(String, String)> {
        let o: RawObject = serde_json::from_str(text).unwrap();
        o.fields().map(|(k, v)| (k.to_string(), v.get().to_string())).collect()
    }

    /// Checks the scanner against serde_json on every object and array nested in `text`.
    fn scan_agrees(text: &str) {
        match text.trim_start().as_bytes().first() {
            Some(b'{') => {
                let scanned: Vec<(String, String)> = RawObject::new(scan::object(text).unwrap(), Vec::new())
                    .fields()
                    .map(|(k, v)| (k.to_string(), v.get().to_string()))
                    .collect();
                assert_eq!(scanned, serde_fields(text), "{text}");
                scanned.iter().for_each(|(_, v)| scan_agrees(v));
            }
            Some(b'[') => {
                let serde: Vec<&RawValue> = serde_json::from_str(text).unwrap();
                let scanned = scan::array(text).unwrap();
                assert_eq!(
                    scanned.iter().map(|r| r.get()).collect::<Vec<_>>(),
                    serde.iter().map(|r| r.get()).collect::<Vec<_>>()
                );
                assert_eq!(scan::first_element(text).map(Raw::get), serde.first().map(|r| r.get()));
                scanned.iter().for_each(|v| scan_agrees(v.get()));
            }
            _ => {}
        }
    }

    #[test]
    fn the_scanner_agrees_with_serde_json_on_valid_json() {
        let cases = [
            r#"{}"#,
            r#" { } "#,
            r#"[]"#,
            "[ 1 , -2.5e+3,true,false,null, \"x\" ]",
            r#"{"a":1,"b":"two","c":[1,{"d":"]}"}],"e":{"f":null}}"#,
            "{ \"k\\\"ey\" : \"v\\\\\" , \"\\u00e9t\u{e9}\" :\n\t[ {\"x\":\"{[\"} ] }",
            r#"{"s":"a \"quoted\" } string","n":-0.0,"big":1e400,"deep":[[[[[]]]]]}"#,
            r#"{"dup":1,"dup":2}"#,
        ];
        for case in cases {
            scan_agrees(case);
        }
        for f in ["gitpod", "suger", "exabits", "vmware", "consumption_log"] {
            let text = std::fs::read_to_string(format!("examples/exports/{f}.json")).unwrap();
            scan_agrees(&text);
        }
    }

    #[test]
    fn the_scanner_gives_up_on_what_it_cannot_read() {
        for bad in
            ["", "{", "[", r#"{"a"}"#, r#"{"a":}"#, r#"{"a":1,}"#, r#"[1,]"#, r#"{"a":1} x"#, r#"{"a:1}"#, "[1 2]"]
        {
            assert!(scan::object(bad).is_none() && scan::array(bad).is_none(), "{bad}");
        }
    }

    /// A page of `n` records of about 100 bytes, with `bad` put in place of record 1.
    fn big_page(n: usize, bad: Option<&str>) -> String {
        let records: Vec<String> = (0..n)
            .map(|i| match bad.filter(|_| i == 1) {
                Some(b) => b.to_string(),
                None => {
                    format!(r#"{{"id":"r{i}","createdAt":"2024-03-10T22:00:00Z","n":{i}.5,"tags":{{"a":[1,"x\"y"]}}}}"#)
                }
            })
            .collect();
        format!("{{\"nextToken\": \"t\",\n \"records\": [{}], \"small\": [1, 2] }}", records.join(",\n"))
    }

    #[test]
    fn large_documents_read_in_parallel_equal_serde_json() {
        let page = big_page(30_000, None);
        assert!(page.len() > 2 * PARALLEL_ARRAY);
        let Some(Large::Object(fast)) = parse_large(&page) else { panic!("a valid page") };
        assert_eq!(fast.split.len(), 1, "the records array is split, the small one is not");
        let fields: Vec<_> = fast.fields().map(|(k, v)| (k.to_string(), v.get().to_string())).collect();
        assert_eq!(fields, serde_fields(&page));
        let slow: RawObject = serde_json::from_str(&page).unwrap();
        for key in ["records", "small"] {
            let (a, b) = (fast.array(key).unwrap().unwrap(), slow.array(key).unwrap().unwrap());
            assert_eq!(a.iter().map(|r| r.get()).collect::<Vec<_>>(), b.iter().map(|r| r.get()).collect::<Vec<_>>());
        }
        let array = format!("[{}]", (0..30_000).map(|i| format!(r#"{{"i":{i}}}"#)).collect::<Vec<_>>().join(","));
        let Some(Large::Array(items)) = parse_large(&array) else { panic!("a valid array") };
        let serde: Vec<&RawValue> = serde_json::from_str(&array).unwrap();
        assert_eq!(
            items.iter().map(|r| r.get()).collect::<Vec<_>>(),
            serde.iter().map(|r| r.get()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn large_documents_with_any_flaw_are_left_to_serde_json() {
        let deep = format!("{{\"x\":{}1{}}}", "[".repeat(120), "]".repeat(120));
        let control = "{\"i\u{1}d\":1}";
        for bad in
            [r#"{"id":"r1",}"#, r#"{"id":"r1" "x":1}"#, r#"{"id":01}"#, r#"{"id":"a\qb"}"#, control, "[1,2", &deep]
        {
            let page = big_page(30_000, Some(bad));
            assert!(parse_large(&page).is_none(), "{bad}");
            let whole: Result<RawObject, _> = serde_json::from_str(&page);
            assert!(whole.is_err() || bad == deep, "serde_json too rejects {bad}");
        }
        let page = big_page(30_000, None);
        assert!(parse_large(&format!("{page} x")).is_none());
        assert!(parse_large(&format!("{{\"k\":1}}{page}")).is_none());
        assert!(
            parse_large(&page.replacen("nextToken", "next\u{2}Token", 1)).is_none(),
            "a control character in a key"
        );
    }

    #[test]
    fn deep_tag_values_are_errors() {
        let deep = format!("{{\"x\": {}{}}}", "[".repeat(200), "]".repeat(200));
        let o = obj(&deep);
        let e = Tags::new().rest(&o, &[], "").unwrap_err();
        assert_eq!(e.path, "x");
        assert_eq!(nesting_depth(r#"[{"a": "[[["}]"#), 2);
    }
}
