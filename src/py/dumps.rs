//! JSON text of the dicts a `requests` call returned, written straight from the Python objects:
//! the same text as `json.dumps(obj, separators=(",", ":"), allow_nan=False,
//! ensure_ascii=False).encode()`, without building Python strings on the way. Two things JSON
//! text cannot hold are written so that the reader rejects the one record holding them, by
//! name, instead of the whole page failing here: a float that is NaN or infinite becomes the
//! string `json::NONFINITE_MARK` + `NaN` / `Infinity` / `-Infinity`, and a lone surrogate in a
//! string its `\udXXX` escape (which the reader refuses to decode). It runs with the
//! GIL held (it reads Python objects), so it has to be cheap: the core then reads the text in
//! parallel like any other source.

use std::io::Write;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// Deeper nesting is refused (`json.dumps` would report a circular reference or recurse until
/// Python's limit).
const MAX_DEPTH: usize = 500;

/// JSON text of `obj` (dicts, lists, tuples, str, int, float, bool, None).
#[pyfunction]
pub fn dumps<'py>(py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::with_capacity(1 << 16);
    write_value(&mut out, obj, 0)?;
    Ok(PyBytes::new(py, &out))
}

fn write_value(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<()> {
    if let Ok(s) = obj.cast::<PyString>() {
        write_py_string(out, s)?;
    } else if let Ok(d) = obj.cast::<PyDict>() {
        let depth = deeper(depth)?;
        out.push(b'{');
        for (n, (k, v)) in d.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            write_key(out, &k)?;
            out.push(b':');
            write_value(out, &v, depth)?;
        }
        out.push(b'}');
    } else if let Ok(l) = obj.cast::<PyList>() {
        write_array(out, l.iter(), depth)?;
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        write_array(out, t.iter(), depth)?;
    } else if !write_scalar(out, obj)? {
        let name = obj.get_type().name()?;
        return Err(PyTypeError::new_err(format!("Object of type {name} is not JSON serializable")));
    }
    Ok(())
}

/// A list or tuple, as a JSON array.
fn write_array<'py>(out: &mut Vec<u8>, items: impl Iterator<Item = Bound<'py, PyAny>>, depth: usize) -> PyResult<()> {
    let depth = deeper(depth)?;
    out.push(b'[');
    for (n, v) in items.enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write_value(out, &v, depth)?;
    }
    out.push(b']');
    Ok(())
}

fn deeper(depth: usize) -> PyResult<usize> {
    if depth >= MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "nested more than {MAX_DEPTH} levels deep (or a circular reference)"
        )));
    }
    Ok(depth + 1)
}

/// A dict key as `json.dumps` writes it: str as it is; int, float, bool and None as their JSON
/// text in quotes.
fn write_key(out: &mut Vec<u8>, k: &Bound<'_, PyAny>) -> PyResult<()> {
    if let Ok(s) = k.cast::<PyString>() {
        return write_py_string(out, s);
    }
    out.push(b'"');
    if let Ok(f) = k.cast::<PyFloat>() {
        // A key is a name: a float key JSON cannot hold is written as Python's json names it.
        let v = f.value();
        if !v.is_finite() {
            out.extend_from_slice(nonfinite_name(v));
            out.push(b'"');
            return Ok(());
        }
    }
    if !write_scalar(out, k)? {
        let name = k.get_type().name()?;
        return Err(PyTypeError::new_err(format!("keys must be str, int, float, bool or None, not {name}")));
    }
    out.push(b'"');
    Ok(())
}

/// None, a bool, an int or a float as JSON; `false` for anything else (nothing written).
fn write_scalar(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    if obj.is_none() {
        out.extend_from_slice(b"null");
    } else if let Ok(b) = obj.cast::<PyBool>() {
        // Before int: bool is a subclass of int.
        out.extend_from_slice(if b.is_true() { b"true" } else { b"false" });
    } else if let Ok(i) = obj.cast::<PyInt>() {
        write_int(out, i)?;
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        write_float(out, f.value())?;
    } else {
        return Ok(false);
    }
    Ok(true)
}

fn write_int(out: &mut Vec<u8>, i: &Bound<'_, PyInt>) -> PyResult<()> {
    match i.extract::<i64>() {
        Ok(v) => {
            let _ = write!(out, "{v}");
        }
        // Beyond 64 bits: `int.__repr__`, as json.dumps (an int subclass's own repr is not used).
        Err(_) => {
            let text = i.py().get_type::<PyInt>().call_method1("__repr__", (i,))?;
            out.extend_from_slice(text.cast::<PyString>()?.to_str()?.as_bytes());
        }
    }
    Ok(())
}

/// How Python's json names a float JSON cannot hold.
fn nonfinite_name(v: f64) -> &'static [u8] {
    match (v.is_nan(), v > 0.0) {
        (true, _) => b"NaN",
        (false, true) => b"Infinity",
        (false, false) => b"-Infinity",
    }
}

/// A float as Python's `repr` writes it (shortest digits that read back the same, exponent
/// below 1e-4 and from 1e16 on, written `e-05` / `e+16`).
fn write_float(out: &mut Vec<u8>, v: f64) -> PyResult<()> {
    if !v.is_finite() {
        out.extend_from_slice(crate::json::NONFINITE_MARK);
        out.extend_from_slice(nonfinite_name(v));
        out.push(b'"');
        return Ok(());
    }
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(v);
    // ryu writes plain decimals as Python does, except from 1e-5 down to 1e-4 (four zeros).
    if !text.contains('e') && !text.trim_start_matches('-').starts_with("0.0000") {
        out.extend_from_slice(text.as_bytes());
        return Ok(());
    }
    let (neg, text) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text),
    };
    // ryu's text as digits and the place of the decimal point (`decpt`: 0.0012 is 12 at -2).
    let (mantissa, exp) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0) + 1),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: String = int.chars().chain(frac.chars()).collect();
    let mut decpt = if exp != 0 { exp } else { int.len() as i32 };
    let lead = digits.len() - digits.trim_start_matches('0').len();
    digits.drain(..lead);
    decpt -= lead as i32;
    digits.truncate(digits.trim_end_matches('0').len());
    if neg {
        out.push(b'-');
    }
    if digits.is_empty() {
        out.extend_from_slice(b"0.0");
        return Ok(());
    }
    let n = digits.len() as i32;
    if -4 < decpt && decpt <= 16 {
        if decpt <= 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-decpt) as usize));
            out.extend_from_slice(digits.as_bytes());
        } else if decpt >= n {
            out.extend_from_slice(digits.as_bytes());
            out.extend(std::iter::repeat_n(b'0', (decpt - n) as usize));
            out.extend_from_slice(b".0");
        } else {
            let (a, b) = digits.split_at(decpt as usize);
            out.extend_from_slice(a.as_bytes());
            out.push(b'.');
            out.extend_from_slice(b.as_bytes());
        }
    } else {
        let (a, b) = digits.split_at(1);
        out.extend_from_slice(a.as_bytes());
        if !b.is_empty() {
            out.push(b'.');
            out.extend_from_slice(b.as_bytes());
        }
        let e = decpt - 1;
        let _ = write!(out, "e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    Ok(())
}

/// A Python str as a JSON string; a lone surrogate (which UTF-8 cannot hold) as its escape.
fn write_py_string(out: &mut Vec<u8>, s: &Bound<'_, PyString>) -> PyResult<()> {
    if let Ok(text) = s.to_str() {
        write_string(out, text);
        return Ok(());
    }
    // UTF-8 with the surrogates kept as three-byte sequences (ED A0..BF 80..BF).
    let bytes = s.call_method1("encode", ("utf-8", "surrogatepass"))?;
    let mut rest: &[u8] = bytes.cast::<PyBytes>()?.as_bytes();
    out.push(b'"');
    loop {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                write_escaped(out, text);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                write_escaped(out, std::str::from_utf8(good).unwrap_or_default());
                let [a, b, c, ..] = *bad else { break };
                let unit = (u32::from(a & 0x0f) << 12) | (u32::from(b & 0x3f) << 6) | u32::from(c & 0x3f);
                let _ = write!(out, "\\u{unit:04x}");
                rest = &bad[3..];
            }
        }
    }
    out.push(b'"');
    Ok(())
}

/// A JSON string: `"`, `\` and control characters escaped as `json.dumps` escapes them.
fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_escaped(out, s);
    out.push(b'"');
}

/// The inside of a JSON string.
fn write_escaped(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    let mut from = 0;
    for (i, &c) in b.iter().enumerate() {
        let short: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&b[from..i]);
        if short.is_empty() {
            let _ = write!(out, "\\u{c:04x}");
        } else {
            out.extend_from_slice(short);
        }
        from = i + 1;
    }
    out.extend_from_slice(&b[from..]);
}
