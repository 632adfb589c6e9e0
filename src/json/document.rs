//! Whole documents read in one pass: `parse_checked` checks and splits a document in a single
//! scan, `parse_large` splits a large one and validates its pieces in parallel. Both accept
//! exactly what serde_json accepts; anything else is left to serde_json, which names the error.

use std::borrow::Cow;

use super::{scan, Raw, RawObject};

/// Array values longer than this are split while a large document is read (`parse_large`).
pub(super) const PARALLEL_ARRAY: usize = 1 << 20;

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
#[cfg(any(test, feature = "fuzzing"))]
pub fn assert_checked_agrees_with_serde(text: &str) -> bool {
    use super::Kind;
    use serde::de;
    use serde_json::value::RawValue;
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
