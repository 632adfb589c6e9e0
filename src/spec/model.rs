//! What a format file may say, as read from TOML (or from a dict as JSON). Every table refuses
//! keys it does not know, so a misspelt key is an error naming the key and the keys allowed.
//! `docs/formats.md` is the reference of this language.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

/// A whole format file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatFile {
    /// The format's id: the `provider` column's value.
    pub id: String,
    pub title: String,
    /// The API call whose responses the format reads.
    #[serde(default)]
    pub api: String,
    pub focus: Option<Focus>,
    /// How to recognise a response page, and where its records are.
    pub page: Option<Page>,
    /// How to recognise a bare record (an NDJSON line, an element of a list of records).
    pub record: Record,
    /// Canonical column → where its value comes from, for every row of a record.
    pub columns: BTreeMap<String, Field>,
    /// Rows of a record, when it gives more than one (or none): each rule adds rows.
    #[serde(default)]
    pub rows: Vec<Rows>,
    #[serde(default)]
    pub tags: TagRules,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Focus {
    pub provider: String,
    pub service: String,
    pub category: String,
    /// One of the category's FOCUS subcategories; default `Other (<category>)`.
    pub subcategory: Option<String>,
    /// The ResourceType of a row that names a resource but no type; default `Resource`.
    pub resource_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// The path of the records array in a page: `data`, or `data[*].results` for records
    /// nested in the elements of an array (each element is then `$parent` to its records).
    pub records: String,
    pub detect: Cond,
    /// A count the page states about itself, checked against the records it holds.
    pub count: Option<Count>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Count {
    /// The page field holding the count.
    pub field: String,
    /// The count may exceed the records (a total over all pages, a limit).
    #[serde(default)]
    pub at_least: bool,
    /// A count of 0 means "no count" (a limit of 0: no limit).
    #[serde(default)]
    pub zero_means_none: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub detect: Cond,
}

/// A test on an object; every key given must hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cond {
    /// All these keys are present.
    pub has: Option<Vec<String>>,
    /// At least one of these keys is present.
    pub has_any: Option<Vec<String>>,
    /// None of these keys is present.
    pub lacks: Option<Vec<String>>,
    /// This key holds an array.
    pub array: Option<String>,
    /// This key holds an object.
    pub object: Option<String>,
    /// This key is absent or null.
    pub absent: Option<String>,
    /// These keys hold these values.
    pub equals: Option<BTreeMap<String, Value>>,
    /// These keys hold one of these values each.
    pub one_of: Option<BTreeMap<String, Vec<Value>>>,
    pub any: Option<Vec<Cond>>,
    pub all: Option<Vec<Cond>>,
    pub not: Option<Box<Cond>>,
    /// The object is (or is not) one of the format's bare records.
    pub record: Option<bool>,
    /// The first element of this array key is one of the format's bare records.
    pub first_record: Option<String>,
}

/// A rule adding rows to a record's output.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rows {
    /// The rule applies only to records for which this holds.
    pub when: Option<Cond>,
    /// One row per element of this array, or per entry of this object (`$item` is the
    /// element or the entry's value, `$key` the entry's key).
    pub each: Option<String>,
    /// One row per field of this list that is present and not null: `metric` is its name
    /// and `quantity` its value, unless `columns` says otherwise.
    pub fields: Option<Vec<String>>,
    /// Columns of these rows that differ from `[columns]`.
    #[serde(default)]
    pub columns: BTreeMap<String, Field>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagRules {
    /// Record fields kept out of the tags although no column reads them.
    #[serde(default)]
    pub skip: Vec<String>,
}

/// Where one column's value comes from, and how it is read. A bare string is a `path`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRules {
    /// One path, or several: the first that is present and not null.
    pub path: Option<Strings>,
    /// A constant.
    pub value: Option<Value>,
    /// Several paths' values as text, joined with `|` (a missing one as empty): an identity.
    pub join: Option<Vec<String>>,
    /// The hours from the first time to the second (null when either is missing).
    pub hours_between: Option<Vec<String>>,
    /// The sum of several numbers (a path may hold a `*` wildcard); missing ones count 0.
    pub sum: Option<Vec<String>>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The unit of a `duration` (`seconds`, `minutes`, `hours`, `days`, ...).
    pub unit: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// Added to the "required field is missing" message.
    pub hint: Option<String>,
    pub default: Option<Value>,
    /// Values that mean "none".
    pub null_if: Option<Vec<Value>>,
    /// Values replaced by others (a status to a billable flag, a code to a name).
    pub map: Option<BTreeMap<String, Value>>,
    /// What a value the map does not list becomes (by default: itself).
    pub otherwise: Option<Value>,
    /// An exact decimal times 10^scale (cents to dollars: -2).
    pub scale: Option<i32>,
    /// A number divided by this (minutes to hours: 60).
    pub divide: Option<f64>,
    /// `upper` or `lower`.
    pub case: Option<String>,
    /// A negative number is an error.
    #[serde(default)]
    pub non_negative: bool,
    /// On `unit`: when the unit is a duration, the quantity is converted to hours, the unit
    /// becomes `Hours`, and the unit as written goes to the tags.
    #[serde(default)]
    pub to_hours: bool,
}

/// A column's rules: from a table, or a bare path.
#[derive(Debug, Default)]
pub struct Field(pub FieldRules);

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Field, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path (a string) or a table of rules (path, value, type, ...)")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Field, E> {
                Ok(Field(FieldRules { path: Some(Strings(vec![s.to_string()])), ..Default::default() }))
            }
            fn visit_map<M: MapAccess<'de>>(self, m: M) -> Result<Field, M::Error> {
                FieldRules::deserialize(de::value::MapAccessDeserializer::new(m)).map(Field)
            }
        }
        d.deserialize_any(V)
    }
}

/// One string or a list of them.
#[derive(Debug, Default, Clone)]
pub struct Strings(pub Vec<String>);

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Strings, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Strings;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path or a list of paths")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Strings, E> {
                Ok(Strings(vec![s.to_string()]))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Strings, S::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(Strings(out))
            }
        }
        d.deserialize_any(V)
    }
}
