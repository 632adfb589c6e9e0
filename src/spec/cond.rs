//! The tests of a format file (`detect`, `when`), compiled; and the small documents they
//! describe, to find formats whose detection overlaps.

use serde_json::Value;

use super::compile::{mistake, Checked};
use super::model::Cond;

#[derive(Debug)]
pub enum CondRule {
    Has(Vec<String>),
    HasAny(Vec<String>),
    Lacks(Vec<String>),
    Array(String),
    Object(String),
    Absent(String),
    Equals(Vec<(String, Value)>),
    OneOf(Vec<(String, Vec<Value>)>),
    Any(Vec<CondRule>),
    All(Vec<CondRule>),
    Not(Box<CondRule>),
    Record(bool),
    FirstRecord(String),
}

pub fn cond(c: &Cond, key: &str) -> Checked<CondRule> {
    let mut all = Vec::new();
    let list = |v: &Option<Vec<String>>| v.clone();
    if let Some(v) = list(&c.has) {
        all.push(CondRule::Has(v));
    }
    if let Some(v) = list(&c.has_any) {
        all.push(CondRule::HasAny(v));
    }
    if let Some(v) = list(&c.lacks) {
        all.push(CondRule::Lacks(v));
    }
    if let Some(k) = &c.array {
        all.push(CondRule::Array(k.clone()));
    }
    if let Some(k) = &c.object {
        all.push(CondRule::Object(k.clone()));
    }
    if let Some(k) = &c.absent {
        all.push(CondRule::Absent(k.clone()));
    }
    if let Some(m) = &c.equals {
        all.push(CondRule::Equals(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()));
    }
    if let Some(m) = &c.one_of {
        if m.values().any(Vec::is_empty) {
            return Err(mistake(&format!("{key}.one_of"), "each key needs at least one value"));
        }
        all.push(CondRule::OneOf(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()));
    }
    if let Some(v) = &c.any {
        let any = v.iter().enumerate().map(|(i, c)| cond(c, &format!("{key}.any[{i}]"))).collect::<Checked<_>>()?;
        all.push(CondRule::Any(any));
    }
    if let Some(v) = &c.all {
        let each = v.iter().enumerate().map(|(i, c)| cond(c, &format!("{key}.all[{i}]"))).collect::<Checked<_>>()?;
        all.push(CondRule::All(each));
    }
    if let Some(n) = &c.not {
        all.push(CondRule::Not(Box::new(cond(n, &format!("{key}.not"))?)));
    }
    if let Some(r) = c.record {
        all.push(CondRule::Record(r));
    }
    if let Some(k) = &c.first_record {
        all.push(CondRule::FirstRecord(k.clone()));
    }
    match all.len() {
        0 => Err(mistake(
            key,
            "an empty test; use has, has_any, lacks, array, object, absent, equals, one_of, any, all, not, record, \
             first_record",
        )),
        1 => Ok(all.remove(0)),
        _ => Ok(CondRule::All(all)),
    }
}

impl CondRule {
    /// A small object this test holds for (the first alternative of an `any`), to try other
    /// formats' detection on; `None` when the test is only negative.
    pub fn probe(&self, out: &mut serde_json::Map<String, Value>) {
        match self {
            CondRule::Has(keys) => keys.iter().for_each(|k| {
                out.entry(k.clone()).or_insert(Value::Null);
            }),
            CondRule::HasAny(keys) => {
                if let Some(k) = keys.first() {
                    out.entry(k.clone()).or_insert(Value::Null);
                }
            }
            CondRule::Array(k) => {
                out.insert(k.clone(), Value::Array(Vec::new()));
            }
            CondRule::Object(k) => {
                out.insert(k.clone(), Value::Object(Default::default()));
            }
            CondRule::Equals(pairs) => pairs.iter().for_each(|(k, v)| {
                out.insert(k.clone(), v.clone());
            }),
            CondRule::OneOf(pairs) => pairs.iter().for_each(|(k, v)| {
                out.insert(k.clone(), v.first().cloned().unwrap_or(Value::Null));
            }),
            CondRule::Any(cs) => {
                if let Some(c) = cs.first() {
                    c.probe(out);
                }
            }
            CondRule::All(cs) => cs.iter().for_each(|c| c.probe(out)),
            _ => {}
        }
    }
}
