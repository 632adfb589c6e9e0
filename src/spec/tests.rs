use std::sync::Arc;

use super::*;
use crate::normalize::{normalize, ErrorMode, Input, NormalizeOptions, NormalizeOutput};
use crate::providers::{FormatReader, Registry};

fn examples(name: &str) -> Vec<u8> {
    // Read when the test runs (see build.rs on checkouts sharing a target dir).
    let repo = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let path = std::path::Path::new(&repo).join("examples/exports").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn run(registry: &Registry, name: &str, data: &[u8], provider: Option<&str>) -> NormalizeOutput {
    let options = NormalizeOptions {
        provider: provider.map(str::to_string),
        errors: ErrorMode::Collect,
        formats: registry.clone(),
        ..Default::default()
    };
    normalize(&[Input::Bytes { name: name.to_string(), data }], &options).expect("collect mode")
}

fn twin(id: &str) -> Registry {
    let (name, text) = TWINS.iter().find(|(n, _)| n.trim_end_matches(".toml") == id).expect("a twin");
    Registry::builtin().replaced(Arc::new(shipped(name, text).expect("the twin compiles"))).expect("replaced")
}

/// Everything a normalize call gives, as comparable text (rows column by column).
fn digest(out: &NormalizeOutput) -> String {
    let mut s = String::new();
    for b in &out.batches {
        for i in 0..b.len() {
            s.push_str(&b.row_text(i));
            s.push('\n');
        }
    }
    s.push_str(&format!("{:?}\n{:?}\n{:?}", out.rejects, out.stats, out.conflicts));
    s
}

#[test]
fn every_shipped_format_file_compiles_and_registers() {
    let registry = Registry::builtin();
    for (name, text) in SHIPPED.iter().chain(TWINS) {
        let f = shipped(name, text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!f.info().mapping.is_empty());
    }
    for id in ["openai", "anthropic", "github"] {
        assert!(registry.get(id).is_some_and(|f| f.info().origin.ends_with(&format!("{id}.toml"))), "{id}");
    }
}

#[test]
fn twins_read_their_samples_exactly_as_the_rust_formats() {
    for id in ["gitpod", "consumption_log"] {
        let data = examples(&format!("{id}.json"));
        let (rust, file) = (run(&Registry::builtin(), "s.json", &data, None), run(&twin(id), "s.json", &data, None));
        assert!(rust.rows() > 0, "{id}");
        assert_eq!(digest(&rust), digest(&file), "{id}");
    }
}

#[test]
fn mistakes_in_a_format_file_name_the_key_and_what_is_allowed() {
    let base = "id = \"acme\"\ntitle = \"Acme\"\n[record]\ndetect = { has = [\"a\"] }\n";
    for (extra, want) in [
        ("[columns]\nmetric = { value = \"m\" }\nusage_start = \"t\"\nbogus = \"x\"\n", "\"bogus\" is not a canonical column; allowed: record_id"),
        ("[columns]\nmetric = { value = \"m\" }\nusage_start = { path = \"t\", typ = \"time\" }\n", "unknown field `typ`"),
        ("[columns]\nmetric = { value = \"m\" }\nusage_start = { path = \"t\", type = \"clock\" }\n", "\"clock\" is not a type; allowed: string"),
        ("[columns]\nmetric = { value = \"m\" }\nusage_start = { path = \"a..b\" }\n", "columns.usage_start.path: \"a..b\": an empty field name"),
        ("[columns]\nmetric = { value = \"m\" }\nquantity = { path = \"q\", type = \"decimal\" }\nusage_start = \"t\"\n", "quantity takes number, duration"),
        ("[columns]\nusage_start = \"t\"\n", "every row needs metric"),
        ("[columns]\nmetric = { value = \"m\" }\nusage_start = \"t\"\ntags = \"x\"\n", "tags is set by usagenorm"),
        ("[columns]\nmetric = { value = \"m\" }\nusage_start = \"t\"\ncharge_type = { value = \"free\" }\n", "charge_type is usage, committed or overage"),
    ] {
        let e = from_toml(&format!("{base}{extra}"), "acme.toml").unwrap_err().to_string();
        assert!(e.starts_with("acme.toml: "), "{e}");
        assert!(e.contains(want), "{e}\nwanted: {want}");
    }
}

#[test]
fn the_new_providers_read_their_documents() {
    let openai = br#"{"object":"page","has_more":false,"next_page":null,"data":[
      {"object":"bucket","start_time":1772443060,"end_time":1772496000,"results":[
        {"object":"organization.usage.completions.result","input_tokens":229280,"input_cached_tokens":40960,
         "output_tokens":35210,"num_model_requests":412,"project_id":"proj_1","user_id":null,"model":"gpt-5-mini"}]},
      {"object":"bucket","start_time":1772496000,"end_time":1772582400,"results":[]},
      {"object":"bucket","start_time":1772409600,"end_time":1772496000,"results":[
        {"object":"organization.costs.result","amount":{"value":0.04580000000000000000000000000000000,"currency":"usd"},
         "line_item":"gpt-5-mini, input","project_id":"proj_1","quantity":183200,"quantity_unit":"tokens"},
        {"object":"organization.usage.mystery.result","n":1}]}]}"#;
    let out = run(&Registry::builtin(), "openai.json", openai, None);
    assert_eq!(out.stats[0].provider, Some("openai"));
    assert_eq!((out.stats[0].records, out.stats[0].rejected, out.rows()), (3, 1, 4));
    assert_eq!(out.rejects[0].path, "$.data[2].results[1]");
    let b = &out.batches[0];
    let text: Vec<String> = (0..b.len()).map(|i| b.row_text(i)).collect();
    assert!(
        text[0].contains("metric=Some(\"input_tokens\")") && text[0].contains("quantity=Some(229280.0)"),
        "{}",
        text[0]
    );
    assert!(text[0].contains("usage_start=Some(1772443060000000)") && text[0].contains("unit=Some(\"tokens\")"));
    assert!(text[0].contains("input_cached_tokens"), "breakdowns stay in the tags: {}", text[0]);
    assert!(text[2].contains("metric=Some(\"num_model_requests\")") && text[2].contains("unit=Some(\"requests\")"));
    assert!(text[3].contains("cost=Some(\"0.0458\")") && text[3].contains("currency=Some(\"USD\")"), "{}", text[3]);
    // Each record takes its own bucket's times, past an empty bucket.
    assert!(text[3].contains("usage_start=Some(1772409600000000)"), "{}", text[3]);

    let anthropic = br#"{"data":[{"starting_at":"2026-03-02T00:00:00Z","ending_at":"2026-03-03T00:00:00Z","results":[
        {"amount":"458.202","currency":"USD","cost_type":"tokens","token_type":"uncached_input_tokens",
         "description":"Claude Sonnet 4.5 Usage - Input Tokens","model":"claude-sonnet-4-5","workspace_id":null},
        {"uncached_input_tokens":10,"cache_creation":{"ephemeral_5m_input_tokens":5,"ephemeral_1h_input_tokens":0},
         "cache_read_input_tokens":7,"output_tokens":3,"model":"m",
         "server_tool_use":{"web_search_requests":1,"code_execution_requests":4,"tool":{"name":"t"}}}]},
      {"starting_at":"2026-03-03T00:00:00Z","ending_at":"2026-03-04T00:00:00Z","results":[]}],
      "has_more":false,"next_page":null}"#;
    let out = run(&Registry::builtin(), "anthropic.json", anthropic, None);
    assert_eq!(out.stats[0].provider, Some("anthropic"));
    assert_eq!((out.stats[0].records, out.stats[0].rejected, out.rows()), (2, 0, 7));
    let b = &out.batches[0];
    assert!(b.row_text(0).contains("cost=Some(\"4.58202\")"), "{}", b.row_text(0));
    let tokens: Vec<String> = (1..6).map(|i| b.row_text(i)).collect();
    assert!(tokens[1].contains("metric=Some(\"cache_creation.ephemeral_5m_input_tokens\")"), "{}", tokens[1]);
    // What no rule reads inside an object a rule reads into stays in the tags, under its key;
    // every row of the record has the same tags.
    let tags = r#"\"server_tool_use.code_execution_requests\":4,\"server_tool_use.tool\":{\"name\":\"t\"}"#;
    assert!((1..7).all(|i| b.row_text(i).contains(tags)), "{}", b.row_text(6));

    let github = br#"{"usageItems":[{"date":"2026-03-02T00:00:00Z","product":"actions","sku":"Actions Linux",
        "quantity":1840.0,"unitType":"Minutes","pricePerUnit":0.006,"grossAmount":11.04,"discountAmount":11.04,
        "netAmount":0.0,"organizationName":"octo-org","repositoryName":"api-server"},
        {"date":"2023-08-01","product":"Actions","sku":"Actions storage","quantity":312.5,"unitType":"GigabyteHours",
        "pricePerUnit":0.000336,"grossAmount":0.105,"discountAmount":0,"netAmount":0.105,"organizationName":"GitHub"}]}"#;
    let out = run(&Registry::builtin(), "github.json", github, None);
    assert_eq!(out.stats[0].provider, Some("github"));
    assert_eq!((out.stats[0].records, out.rows()), (2, 2));
    let b = &out.batches[0];
    assert!(b.row_text(0).contains("quantity=Some(30.666666666666668)"), "{}", b.row_text(0));
    assert!(b.row_text(0).contains("unit=Some(\"Hours\")"), "{}", b.row_text(0));
    assert!(b.row_text(0).contains(r#"\"unitType\":\"Minutes\""#), "the unit as written stays in the tags");
    assert!(
        b.row_text(1).contains("cost=Some(\"0.105\")") && b.row_text(1).contains("usage_start=Some(1690848000000000)")
    );
    let empty = run(&Registry::builtin(), "github.json", br#"{"usageItems":[]}"#, None);
    assert_eq!((empty.stats[0].records, empty.rejects.len()), (0, 0));
}

#[test]
fn a_format_whose_detection_overlaps_another_is_refused_naming_both() {
    let text = "id = \"acme\"\ntitle = \"Acme\"\n[page]\nrecords = \"records\"\ndetect = { array = \"records\" }\n\
                [record]\ndetect = { has = [\"acmeId\"] }\n[columns]\nmetric = { value = \"m\" }\nusage_start = \"t\"\n";
    let acme = Arc::new(from_toml(text, "acme.toml").unwrap());
    let e = Registry::builtin().with(acme).unwrap_err().to_string();
    assert!(e.contains("\"acme\" (acme.toml) overlaps format \"gitpod\" (built-in)"), "{e}");
    // A twin of a format overlaps the format it re-expresses, in the other direction too.
    let (name, text) = TWINS[0];
    let e = Registry::builtin().with(Arc::new(shipped(name, text).unwrap())).unwrap_err().to_string();
    assert!(e.contains("already registered"), "{e}");
}

#[test]
fn rows_per_entry_of_an_object_with_key_and_item() {
    let text = r#"
id = "meter"
title = "Meter groups"
[record]
detect = { has = ["groupId", "dims"] }
[columns]
record_id = "groupId"
usage_start = { path = "at", type = "date", required = true }
[[rows]]
each = "dims"
columns = { metric = "$key", quantity = { path = "$item", type = "number", non_negative = true } }
"#;
    let registry = Registry::builtin().with(Arc::new(from_toml(text, "meter.toml").unwrap())).unwrap();
    let data = br#"[{"groupId":"g1","at":"2026-01-02","dims":{"seats":3,"api":1200},"note":"x"},
                   {"groupId":"g2","at":"2026-01-02","dims":{}},
                   {"groupId":"g3","at":"2026-01-02","dims":{"seats":-1}}]"#;
    let out = run(&registry, "m.json", data, None);
    assert_eq!((out.stats[0].records, out.stats[0].rejected, out.rows()), (3, 1, 2));
    let b = &out.batches[0];
    assert!(b.row_text(0).contains(r#"metric=Some("seats")"#) && b.row_text(0).contains("quantity=Some(3.0)"));
    assert!(b.row_text(1).contains(r#"metric=Some("api")"#) && b.row_text(1).contains(r#"{\"note\":\"x\"}"#));
    assert_eq!(
        (out.rejects[0].path.as_str(), out.rejects[0].reason.as_str()),
        ("$[2].dims.seats", "negative quantity -1")
    );
}

#[test]
fn a_format_file_maps_every_canonical_column_but_the_ones_the_core_writes() {
    // The format language's column names are the table's (`schema::canonical_table!`), less
    // the columns the core fills itself: the format's id, the tags, the record's place.
    let mapped: Vec<&str> = rules::Col::NAMES.iter().map(|(n, _)| *n).collect();
    let table: Vec<&str> = crate::schema::COLUMNS.iter().map(|(n, _, _)| *n).collect();
    let by_core = ["provider", "tags", "source", "source_index"];
    assert_eq!(mapped, table.iter().copied().filter(|n| !by_core.contains(n)).collect::<Vec<_>>());
}

#[test]
fn a_join_left_out_is_not_read_and_the_same_records_are_rejected() {
    // `sku` joins top-level fields (cannot fail: not read when left out); `resource_id` joins a
    // nested path (may fail: read, and its record rejected, either way).
    let text = r#"
id = "joined"
title = "Joined ids"
[record]
detect = { has = ["meter", "at"] }
[columns]
record_id = "id"
usage_start = { path = "at", required = true }
metric = "meter"
sku = { join = ["meter", "plan", "region"] }
resource_id = { join = ["meter", "host.name"] }
"#;
    let compiled = from_toml(text, "joined.toml").unwrap();
    let skippable: Vec<(&str, bool)> = compiled.rows[0].columns.iter().map(|c| (c.col.name(), c.skippable)).collect();
    assert!(skippable.contains(&("sku", true)) && skippable.contains(&("resource_id", false)), "{skippable:?}");
    assert!(skippable.iter().filter(|(n, _)| !["sku"].contains(n)).all(|(_, s)| !s), "{skippable:?}");
    let registry = Registry::builtin().with(Arc::new(compiled)).unwrap();
    let data = br#"[{"id":"a","meter":"cpu","at":"2026-01-02T00:00:00Z","plan":{"x":1},"host":{"name":"h1"}},
                   {"id":"b","meter":"cpu","at":"2026-01-02T00:00:00Z","plan":"p","host":"not an object"}]"#;
    let read = |kept: crate::schema::Kept| {
        let options = NormalizeOptions {
            errors: ErrorMode::Collect,
            dedupe: false,
            formats: registry.clone(),
            read: crate::providers::ReadOptions { kept, ..Default::default() },
            ..Default::default()
        };
        normalize(&[Input::Bytes { name: "j.json".into(), data }], &options).expect("collect mode")
    };
    let whole = read(crate::schema::Kept::ALL);
    let part = read(crate::schema::Kept::only(&["record_id", "usage_start", "metric"]).unwrap());
    assert_eq!((whole.rows(), part.rows()), (1, 1));
    assert_eq!(format!("{:?}", whole.rejects), format!("{:?}", part.rejects));
    assert_eq!(whole.rejects[0].path, "$[1].host");
    assert!(whole.batches[0].row_text(0).contains(r#"sku=Some("cpu|{\"x\":1}|")"#), "{}", whole.batches[0].row_text(0));
    assert!(part.batches[0].row_text(0).contains("sku=None"));
}
