use super::document::PARALLEL_ARRAY;
use super::*;
use crate::schema::tags::nesting_depth;
use crate::schema::Tags;

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
    for bad in ["", "{", "[", r#"{"a"}"#, r#"{"a":}"#, r#"{"a":1,}"#, r#"[1,]"#, r#"{"a":1} x"#, r#"{"a:1}"#, "[1 2]"] {
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
    assert_eq!(items.iter().map(|r| r.get()).collect::<Vec<_>>(), serde.iter().map(|r| r.get()).collect::<Vec<_>>());
}

#[test]
fn large_documents_with_any_flaw_are_left_to_serde_json() {
    let deep = format!("{{\"x\":{}1{}}}", "[".repeat(120), "]".repeat(120));
    let control = "{\"i\u{1}d\":1}";
    for bad in [r#"{"id":"r1",}"#, r#"{"id":"r1" "x":1}"#, r#"{"id":01}"#, r#"{"id":"a\qb"}"#, control, "[1,2", &deep] {
        let page = big_page(30_000, Some(bad));
        assert!(parse_large(&page).is_none(), "{bad}");
        let whole: Result<RawObject, _> = serde_json::from_str(&page);
        assert!(whole.is_err() || bad == deep, "serde_json too rejects {bad}");
    }
    let page = big_page(30_000, None);
    assert!(parse_large(&format!("{page} x")).is_none());
    assert!(parse_large(&format!("{{\"k\":1}}{page}")).is_none());
    assert!(parse_large(&page.replacen("nextToken", "next\u{2}Token", 1)).is_none(), "a control character in a key");
}

#[test]
fn deep_tag_values_are_errors() {
    let deep = format!("{{\"x\": {}{}}}", "[".repeat(200), "]".repeat(200));
    let o = obj(&deep);
    let e = Tags::new().rest(&o, &[], "").unwrap_err();
    assert_eq!(e.path, "x");
    assert_eq!(nesting_depth(r#"[{"a": "[[["}]"#), 2);
}
