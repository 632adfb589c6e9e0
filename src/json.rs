//! Borrowed access to JSON records: `RawObject` keeps each field as its raw text (`&RawValue`)
//! so a record is scanned once and each field is converted only when a provider asks for it.
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
    pub fn of(raw: &RawValue) -> Kind {
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
pub fn snippet(raw: &RawValue) -> String {
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

fn wrong_kind(key: &str, expected: &str, raw: &RawValue) -> FieldError {
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
fn decode_string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<BorrowedStr>(text).ok().map(|s| s.0)
}

/// A JSON object whose values are kept as raw text, in document order.
#[derive(Debug, Default, Clone)]
pub struct RawObject<'a> {
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
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
                    fields.push((key.0, value));
                }
                Ok(RawObject { fields })
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> RawObject<'a> {
    /// Reads a raw value as an object; `path` names it in the error.
    pub fn parse(raw: &'a RawValue, path: &str) -> FieldResult<RawObject<'a>> {
        if Kind::of(raw) != Kind::Object {
            return Err(wrong_kind(path, "an object", raw));
        }
        serde_json::from_str(raw.get()).map_err(|e| FieldError::new(path, format!("malformed object: {e}")))
    }

    /// The raw value of `key` (the last one, if a key repeats), `None` when absent.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.fields.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The value of `key` unless absent or null.
    fn present(&self, key: &str) -> Option<&'a RawValue> {
        self.get(key).filter(|v| Kind::of(v) != Kind::Null)
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn fields(&self) -> impl Iterator<Item = (&str, &'a RawValue)> + '_ {
        self.fields.iter().map(|(k, v)| (k.as_ref(), *v))
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
    pub fn array(&self, key: &str) -> FieldResult<Option<Vec<&'a RawValue>>> {
        match self.present(key) {
            None => Ok(None),
            Some(raw) => parse_array(raw).map(Some).map_err(|e| e.within(key)),
        }
    }
}

/// Reads a raw value as an array of raw elements.
pub fn parse_array(raw: &RawValue) -> FieldResult<Vec<&RawValue>> {
    if Kind::of(raw) != Kind::Array {
        return Err(wrong_kind("", "an array", raw));
    }
    serde_json::from_str(raw.get()).map_err(|e| FieldError::new("", format!("malformed array: {e}")))
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
        Tags { buf: String::from("{") }
    }

    fn key(&mut self, key: &str) {
        if self.buf.len() > 1 {
            self.buf.push(',');
        }
        push_json_string(&mut self.buf, key);
        self.buf.push(':');
    }

    /// Adds a field with its raw JSON value, whitespace removed. A value nested deeper than
    /// serde_json's own limit for parsed documents (128) is an error, not a tag.
    pub fn raw(&mut self, key: &str, raw: &RawValue) -> FieldResult<()> {
        let text = raw.get();
        if text.starts_with(['{', '[']) && nesting_depth(text) > MAX_DEPTH {
            return Err(FieldError::new(key, format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.key(key);
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
                if prefix.is_empty() {
                    self.raw(k, v)?;
                } else {
                    self.raw(&format!("{prefix}{k}"), v)?;
                }
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

/// Appends `s` as a JSON string literal.
pub fn push_json_string(buf: &mut String, s: &str) {
    if s.bytes().all(|c| c >= 0x20 && c != b'"' && c != b'\\') {
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
    fn tags_are_compact_json() {
        let o = obj("{ \"a\" : { \"x\" : \"1 2\" },\n \"b\": [1, 2] }");
        let mut t = Tags::new();
        t.rest(&o, &["b"], "").unwrap();
        t.str("q\"uote", "v");
        assert_eq!(t.finish(), r#"{"a":{"x":"1 2"},"q\"uote":"v"}"#);
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
