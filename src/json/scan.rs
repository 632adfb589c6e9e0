//! A structural scanner for JSON text that serde_json has already validated (every `Raw` is a
//! slice of such a document): it finds where keys and values begin and end and checks nothing
//! else. On anything unexpected it returns `None` and the caller parses with serde_json, which
//! gives the error its message; it never panics.

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
            let repo = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
            let path = format!("{repo}/examples/exports/{name}.json");
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
