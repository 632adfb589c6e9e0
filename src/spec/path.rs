//! Paths of a format file: `a.b[0].c`, `items[*].cost` (a wildcard, in sums), and the scopes
//! `$page.x` (the page envelope), `$parent.x` (the element holding nested records), `$item.x`
//! and `$key` (the element or entry a row rule's `each` is at). A path without a scope reads
//! the record.

use crate::json::{parse_array, value::present, ErrorKind, FieldError, FieldResult, Kind, Raw, RawObject};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Record,
    Page,
    Parent,
    Item,
    Key,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
    /// Every element of an array, or every value of an object.
    Wild,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub scope: Scope,
    pub steps: Vec<Step>,
    /// The path as written, without its scope: how errors name the field.
    pub text: String,
    /// The path as written, with its scope.
    pub written: String,
}

impl Path {
    pub fn parse(written: &str) -> Result<Path, String> {
        let (scope, rest) = match written.split_once(['.', '[']).map_or(written, |(head, _)| head) {
            "$page" => (Scope::Page, &written[5..]),
            "$parent" => (Scope::Parent, &written[7..]),
            "$item" => (Scope::Item, &written[5..]),
            "$key" => (Scope::Key, &written[4..]),
            head if head.starts_with('$') => {
                return Err(format!("unknown scope {head:?} (allowed: $page, $parent, $item, $key)"))
            }
            _ => (Scope::Record, written),
        };
        let text = rest.strip_prefix('.').unwrap_or(rest);
        if scope == Scope::Record && text.is_empty() {
            return Err("a path must name a field".into());
        }
        if scope == Scope::Key && !text.is_empty() {
            return Err("$key is a string; it has no fields".into());
        }
        let mut steps = Vec::new();
        let mut key = String::new();
        let mut chars = text.chars().peekable();
        let end_key = |key: &mut String, steps: &mut Vec<Step>| -> Result<(), String> {
            if !key.is_empty() {
                steps.push(Step::Key(std::mem::take(key)));
            }
            Ok(())
        };
        while let Some(c) = chars.next() {
            match c {
                '.' => {
                    if key.is_empty() && !matches!(steps.last(), Some(Step::Index(_) | Step::Wild)) {
                        return Err("an empty field name".into());
                    }
                    end_key(&mut key, &mut steps)?;
                }
                '[' => {
                    end_key(&mut key, &mut steps)?;
                    let inner: String = chars.by_ref().take_while(|c| *c != ']').collect();
                    steps.push(match inner.as_str() {
                        "*" => Step::Wild,
                        n => Step::Index(n.parse().map_err(|_| format!("[{n}] is not an index or [*]"))?),
                    });
                    if chars.peek().is_some_and(|c| *c != '.' && *c != '[') {
                        return Err("a `.` or `[` must follow `]`".into());
                    }
                }
                ']' => return Err("an unmatched `]`".into()),
                c => key.push(c),
            }
        }
        if text.ends_with('.') {
            return Err("an empty field name".into());
        }
        end_key(&mut key, &mut steps)?;
        Ok(Path { scope, steps, text: text.to_string(), written: written.to_string() })
    }

    pub fn has_wildcard(&self) -> bool {
        self.steps.contains(&Step::Wild)
    }

    /// The record field this path starts at, if it reads the record.
    pub fn record_field(&self) -> Option<&str> {
        match (self.scope, self.steps.first()) {
            (Scope::Record, Some(Step::Key(k))) => Some(k),
            _ => None,
        }
    }

    /// The value at this path below `root` (`None` when absent or null on the way).
    pub fn locate<'a>(&self, root: Raw<'a>) -> FieldResult<Option<Raw<'a>>> {
        locate(root, &self.steps, "")
    }

    /// The value at this path in a record.
    pub fn locate_in<'a>(&self, record: &RawObject<'a>) -> FieldResult<Option<Raw<'a>>> {
        match self.steps.split_first() {
            Some((Step::Key(k), rest)) => match present(record.get(k)) {
                None => Ok(None),
                Some(v) => locate(v, rest, k),
            },
            _ => Ok(None),
        }
    }

    /// The value at this path below the record field it starts at, when that field's object
    /// has been parsed already (`obj`): steps from the second on.
    pub fn locate_below<'a>(&self, obj: &RawObject<'a>) -> FieldResult<Option<Raw<'a>>> {
        let (Some(Step::Key(first)), Some(Step::Key(second))) = (self.steps.first(), self.steps.get(1)) else {
            return Ok(None);
        };
        match present(obj.get(second)) {
            None => Ok(None),
            Some(v) if self.steps.len() == 2 => Ok(Some(v)),
            Some(v) => locate(v, &self.steps[2..], &format!("{first}.{second}")),
        }
    }

    /// Every value the path reaches through its wildcards, below `root`.
    pub fn locate_all<'a>(&self, root: Raw<'a>, out: &mut Vec<(String, Raw<'a>)>) -> FieldResult<()> {
        locate_all(root, &self.steps, String::new(), out)
    }
}

fn step_path(at: &str, step: &Step) -> String {
    match step {
        Step::Key(k) if at.is_empty() => k.clone(),
        Step::Key(k) => crate::json::join_path(at, k),
        Step::Index(i) => format!("{at}[{i}]"),
        Step::Wild => format!("{at}[*]"),
    }
}

fn not_container(at: &str, want: &str, raw: Raw) -> FieldError {
    FieldError::of(
        ErrorKind::WrongType,
        at,
        format!("expected {want}, got {} {}", Kind::of(raw).name(), crate::json::snippet(raw)),
    )
}

fn locate<'a>(mut raw: Raw<'a>, steps: &[Step], at: &str) -> FieldResult<Option<Raw<'a>>> {
    // The path so far, for an error only (reading a field must not allocate).
    let path_to = |i: usize| steps[..i].iter().fold(at.to_string(), |p, s| step_path(&p, s));
    for (i, step) in steps.iter().enumerate() {
        let next = match step {
            Step::Key(k) => {
                if Kind::of(raw) != Kind::Object {
                    return Err(not_container(&path_to(i), "an object", raw));
                }
                RawObject::parse(raw, "").map_err(|e| e.within(&path_to(i)))?.get(k)
            }
            Step::Index(n) => {
                if Kind::of(raw) != Kind::Array {
                    return Err(not_container(&path_to(i), "an array", raw));
                }
                parse_array(raw).map_err(|e| e.within(&path_to(i)))?.get(*n).copied()
            }
            Step::Wild => return Err(FieldError::new(path_to(i), "a wildcard reads several values; use it in a sum")),
        };
        match present(next) {
            None => return Ok(None),
            Some(v) => raw = v,
        }
    }
    Ok(Some(raw))
}

fn locate_all<'a>(raw: Raw<'a>, steps: &[Step], at: String, out: &mut Vec<(String, Raw<'a>)>) -> FieldResult<()> {
    let Some((step, rest)) = steps.split_first() else {
        out.push((at, raw));
        return Ok(());
    };
    let children: Vec<(String, Raw<'a>)> = match (step, Kind::of(raw)) {
        (Step::Key(k), Kind::Object) => {
            RawObject::parse(raw, &at)?.get(k).map(|v| (step_path(&at, step), v)).into_iter().collect()
        }
        (Step::Index(i), Kind::Array) => {
            parse_array(raw)?.get(*i).map(|v| (step_path(&at, step), *v)).into_iter().collect()
        }
        (Step::Wild, Kind::Array) => parse_array(raw)
            .map_err(|e| e.within(&at))?
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("{at}[{i}]"), v))
            .collect(),
        (Step::Wild, Kind::Object) => RawObject::parse(raw, &at)?
            .entries()
            .map(|(k, v)| (step_path(&at, &Step::Key(k.into_owned())), v))
            .collect(),
        (Step::Key(_), _) => return Err(not_container(&at, "an object", raw)),
        (_, _) => return Err(not_container(&at, "an array", raw)),
    };
    for (path, child) in children {
        if let Some(child) = present(Some(child)) {
            locate_all(child, rest, path, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_with_scopes_indexes_and_wildcards() {
        let p = Path::parse("$parent.amount.value").unwrap();
        assert_eq!(p.scope, Scope::Parent);
        assert_eq!(p.steps, vec![Step::Key("amount".into()), Step::Key("value".into())]);
        assert_eq!(p.text, "amount.value");
        let p = Path::parse("items[2].cost").unwrap();
        assert_eq!(p.steps, vec![Step::Key("items".into()), Step::Index(2), Step::Key("cost".into())]);
        assert!(Path::parse("items[*].cost").unwrap().has_wildcard());
        assert_eq!(Path::parse("$key").unwrap().scope, Scope::Key);
        for bad in ["", "a..b", "a.", "a[x]", "a]b", "$pg.x", "$key.x", "a[0]b"] {
            assert!(Path::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths_locate_values_and_name_what_is_wrong() {
        let doc: &serde_json::value::RawValue =
            serde_json::from_str(r#"{"a":{"b":[{"c":1},{"c":2}]},"n":null,"s":"x"}"#).unwrap();
        let obj = RawObject::parse(doc.into(), "").unwrap();
        let get = |p: &str| Path::parse(p).unwrap().locate_in(&obj).map(|v| v.map(|r| r.get().to_string()));
        assert_eq!(get("a.b[1].c").unwrap().as_deref(), Some("2"));
        assert_eq!(get("a.b[5].c").unwrap(), None);
        assert_eq!(get("n.x").unwrap(), None);
        let e = get("s.x").unwrap_err();
        assert_eq!((e.path.as_str(), e.kind), ("s", ErrorKind::WrongType));
        let mut all = Vec::new();
        Path::parse("a.b[*].c").unwrap().locate_all(doc.into(), &mut all).unwrap();
        assert_eq!(
            all.iter().map(|(p, v)| format!("{p}={}", v.get())).collect::<Vec<_>>(),
            ["a.b[0].c=1", "a.b[1].c=2"]
        );
    }
}
