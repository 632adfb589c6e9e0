//! The `tags` column: a compact JSON object of every provider field that has no column of its own.

use std::cell::Cell;

use crate::json::{ErrorKind, FieldError, FieldResult, Raw, RawObject};

thread_local! {
    /// Whether the `Tags` made on this thread now are skipped (`skipping`).
    static SKIPPED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (one format reading one page or record, on this thread) with the tags skipped when
/// `skip` is set: a query that does not select the `tags` column does not pay for writing them.
/// Skipped tags are `{}`; their values are still checked (nesting depth), so that the same
/// records are rejected either way.
pub fn skipping<T>(skip: bool, f: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SKIPPED.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SKIPPED.with(|s| s.replace(skip)));
    f()
}

/// Builds the `tags` column: a compact JSON object of every provider field without a column.
#[derive(Clone)]
pub struct Tags {
    buf: String,
    /// False inside `skipping(true, ..)`: nothing is written and `finish` gives `{}`.
    on: bool,
}

impl Default for Tags {
    fn default() -> Self {
        Self::new()
    }
}

impl Tags {
    pub fn new() -> Self {
        if SKIPPED.with(Cell::get) {
            return Tags { buf: String::new(), on: false };
        }
        // Room for a typical record's tags at once: growing from one byte reallocated each
        // record's tags five or six times (4% of Exabits' time in reallocation).
        let mut buf = String::with_capacity(384);
        buf.push('{');
        Tags { buf, on: true }
    }

    fn key(&mut self, key: &str) {
        self.prefixed_key("", key);
    }

    /// Writes the key `prefix` + `key`.
    fn prefixed_key(&mut self, prefix: &str, key: &str) {
        if !self.on {
            return;
        }
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
            return Err(FieldError::of(
                ErrorKind::OutOfRange,
                format!("{prefix}{key}"),
                format!("nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        if self.on {
            self.prefixed_key(prefix, key);
            push_compact(&mut self.buf, text);
        }
        Ok(())
    }

    /// Adds a field with its raw JSON value under `prefix` + `key`.
    pub fn raw_under(&mut self, prefix: &str, key: &str, raw: Raw) -> FieldResult<()> {
        self.prefixed_raw(prefix, key, raw)
    }

    /// Adds the members of `finished`, the text of another finished `Tags`.
    pub fn extend(&mut self, finished: &str) {
        let inner = finished.strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or("");
        if self.on && !inner.is_empty() {
            if self.buf.len() > 1 {
                self.buf.push(',');
            }
            self.buf.push_str(inner);
        }
    }

    pub fn str(&mut self, key: &str, value: &str) {
        if self.on {
            self.key(key);
            push_json_string(&mut self.buf, value);
        }
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
        if !self.on {
            return String::from("{}");
        }
        self.buf.push('}');
        self.buf
    }
}

/// The deepest nesting a tag value may have: serde_json's limit for the documents it parses.
pub const MAX_DEPTH: usize = 128;

/// How deeply arrays and objects nest in JSON text (strings skipped).
pub(crate) fn nesting_depth(text: &str) -> usize {
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

/// A `tags` text as FOCUS's KeyValueFormat wants it: a JSON object whose values are never an
/// object or an array. Such a value is kept whole, as its compact JSON text in a string (the
/// key unchanged); the other values are kept as they are. `None`: `text` is not a JSON object.
#[cfg_attr(not(feature = "python"), allow(dead_code))]
pub fn flat_for_focus(text: &str) -> Option<String> {
    let obj = RawObject::parse(Raw::of_valid(text.trim()), "").ok()?;
    if !obj.fields().any(|(_, v)| v.get().starts_with(['{', '['])) {
        return Some(text.to_string());
    }
    let mut tags = Tags::new();
    for (k, v) in obj.fields() {
        let value = v.get();
        if value.starts_with(['{', '[']) {
            let mut compact = String::with_capacity(value.len());
            push_compact(&mut compact, value);
            tags.str(k, &compact);
        } else {
            tags.key(k);
            push_compact(&mut tags.buf, value);
        }
    }
    Some(tags.finish())
}

#[cfg(test)]
mod tests {
    use super::{flat_for_focus, skipping, Tags};
    use crate::json::Raw;

    fn written() -> (String, bool) {
        let mut t = Tags::new();
        t.str("a", "x");
        let ok = t.raw("b", Raw::of_valid("[1]")).is_ok();
        let deep = "[".repeat(200) + &"]".repeat(200);
        let rejected = t.raw("c", Raw::of_valid(&deep)).is_err();
        (t.finish(), ok && rejected)
    }

    #[test]
    fn skipped_tags_are_empty_but_still_checked_and_the_setting_ends_with_the_call() {
        assert_eq!(written(), (r#"{"a":"x","b":[1]}"#.to_string(), true));
        assert_eq!(skipping(true, written), ("{}".to_string(), true));
        assert_eq!(skipping(true, || skipping(false, written)), (r#"{"a":"x","b":[1]}"#.to_string(), true));
        assert_eq!(written().0, r#"{"a":"x","b":[1]}"#);
    }

    #[test]
    fn focus_tags_keep_nested_values_as_json_text() {
        assert_eq!(flat_for_focus(r#"{"a":1,"b":"x"}"#).as_deref(), Some(r#"{"a":1,"b":"x"}"#));
        assert_eq!(
            flat_for_focus(r#"{"a":{"k": [1, "v"]},"b":[],"c":null,"d\"e":true}"#).as_deref(),
            Some(r#"{"a":"{\"k\":[1,\"v\"]}","b":"[]","c":null,"d\"e":true}"#)
        );
        assert_eq!(flat_for_focus("{}").as_deref(), Some("{}"));
        assert_eq!(flat_for_focus("[1]"), None);
        assert_eq!(flat_for_focus("{\"a\":"), None);
        assert_eq!(flat_for_focus(""), None);
    }
}
