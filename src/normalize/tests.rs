use super::*;
use std::io::Write;
/// Records, rows (record_id, source_index, usage_start) and rejections of a chunk.
type Summary = (u64, Vec<(Option<String>, u64, i64)>, Vec<Rejection>);

fn summary(c: &Chunk) -> Summary {
    let rows = c
        .batches
        .iter()
        .flat_map(|b| {
            (0..b.len()).map(move |i| (b.record_id.get(i).map(str::to_string), b.source_index[i], b.usage_start[i]))
        })
        .collect();
    (c.records, rows, c.rejects.clone())
}

fn ndjson() -> Vec<u8> {
    let mut text = String::from("\u{feff}");
    for i in 0..300 {
        match i % 37 {
            5 => text.push_str("{\"id\": \"bad\", \"createdAt\": \"yesterday\"}\n"),
            11 => text.push_str("   \n"),
            17 => text.push_str("{not json\n"),
            _ => text.push_str(&format!(
                "{{\"id\":\"r{i}\",\"createdAt\":\"2024-03-10T22:{:02}:00Z\",\"stoppedAt\":\"2024-03-11T03:30:00Z\",\"environmentId\":\"e{i}\"}}\n",
                i % 60
            )),
        }
    }
    text.push_str("{\"id\":\"last\",\"createdAt\":\"2024-03-10T22:00:00Z\",\"environmentId\":\"e\"}");
    text.into_bytes()
}

/// A source's context as `read_source` makes it, outside a call.
static BUILTIN: std::sync::LazyLock<Registry> = std::sync::LazyLock::new(Registry::builtin);

fn test_ctx(options: &ReadOptions) -> Ctx<'_, 'static> {
    Ctx {
        source: 0,
        provider: None,
        forced: None,
        formats: &BUILTIN,
        options,
        whole: &NO_SOURCE,
        call: None,
        nonfinite: false,
    }
}

fn read_in_blocks(data: &[u8], name: &str, block: usize) -> Chunk {
    let path = std::env::temp_dir().join(format!("usagenorm-{}-{block}-{name}", std::process::id()));
    std::fs::File::create(&path).and_then(|mut f| f.write_all(data)).expect("write temp file");
    let options = ReadOptions::default();
    let mut ctx = test_ctx(&options);
    let file = std::fs::File::open(&path).expect("open temp file");
    let out = read_large_file(&mut ctx, name, file, data.len(), block).expect("read");
    let _ = std::fs::remove_file(&path);
    assert_eq!(ctx.provider.map(|p| p.id()), Some("gitpod"));
    out
}

fn rows(n: usize, source: u32) -> CanonicalBatch {
    let mut b = CanonicalBatch::default();
    (0..n).for_each(|i| b.push("gitpod", &Row::new("m", i as i64), source, i as u64));
    b
}

/// The serial line split `split_lines` must agree with.
fn lines_one_by_one(data: &[u8], lines_before: u64) -> (Vec<(u64, &[u8])>, u64) {
    let mut lines = Vec::new();
    let mut start = 0usize;
    let ends = memchr::memchr_iter(b'\n', data).chain(std::iter::once(data.len()));
    for (number, end) in (lines_before + 1..).zip(ends) {
        let line = &data[start..end];
        if !line.iter().all(u8::is_ascii_whitespace) {
            lines.push((number, line));
        }
        start = end + 1;
    }
    (lines, memchr::memchr_iter(b'\n', data).count() as u64)
}

#[test]
fn lines_split_in_parallel_agree_with_one_by_one() {
    let mut text = Vec::new();
    for i in 0..60_000u32 {
        let line = match i % 7 {
            0 => String::new(),
            3 => " \r".to_string(),
            _ => format!("{{\"n\": {i}, \"pad\": \"{}\"}}", "x".repeat((i % 50) as usize)),
        };
        text.extend_from_slice(line.as_bytes());
        text.push(b'\n');
    }
    assert!(text.len() > 1 << 20, "big enough to be split in pieces");
    for data in [&text[..], &text[..text.len() - 1], &text[..text.len() / 2 + 3], &text[..0], b"\n\n", b"{}"] {
        for before in [0, 41] {
            assert_eq!(split_lines(data, before), lines_one_by_one(data, before), "{} bytes", data.len());
        }
    }
}

#[test]
fn small_batches_are_merged_into_chunks_and_big_ones_kept_as_they_are() {
    let mut out = Vec::new();
    push_batch(&mut out, rows(3, 0), 0);
    push_batch(&mut out, CanonicalBatch::default(), 0);
    push_batch(&mut out, rows(2, 1), 10);
    assert_eq!(out.len(), 1, "merged");
    assert_eq!(out[0].source_index, vec![0, 1, 2, 10, 11]);
    assert_eq!(out[0].source, vec![0, 0, 0, 1, 1]);
    push_batch(&mut out, rows(CHUNK_ROWS / 2, 2), 0);
    assert_eq!(out.len(), 2, "a big batch is not copied");
    push_batch(&mut out, rows(CHUNK_ROWS / 2 + 1, 3), 0);
    push_batch(&mut out, rows(1, 4), 0);
    assert_eq!(out.iter().map(CanonicalBatch::len).collect::<Vec<_>>(), vec![5, CHUNK_ROWS / 2, CHUNK_ROWS / 2 + 2]);
    let full = out.len() - 1;
    out[full].append(rows(CHUNK_ROWS, 5), 0);
    push_batch(&mut out, rows(1, 6), 0);
    assert_eq!(out.last().map(CanonicalBatch::len), Some(1), "a full batch takes no more rows");
    assert_eq!(
        out.iter().map(|b| b.usage_start.len()).sum::<usize>(),
        5 + CHUNK_ROWS / 2 + CHUNK_ROWS / 2 + 2 + CHUNK_ROWS + 1
    );
}

#[test]
fn ndjson_read_in_blocks_equals_reading_it_whole() {
    let data = ndjson();
    let options = ReadOptions::default();
    let mut ctx = test_ctx(&options);
    let whole = summary(&read_ndjson(&mut ctx, &data[3..], 0).0);
    assert_eq!(whole.0, 293, "300 lines + the last, minus the blank ones");
    assert!(whole.2.iter().any(|r| r.line == Some(18) && r.reason.starts_with("malformed JSON")));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&data).expect("gzip");
    let gz = gz.finish().expect("gzip");
    for block in [1, 7, 64, 1000, 1 << 20] {
        assert_eq!(summary(&read_in_blocks(&data, "x.ndjson", block)), whole, "block {block}");
        assert_eq!(summary(&read_in_blocks(&gz, "x.ndjson.gz", block)), whole, "gzip, block {block}");
    }
}

#[test]
fn a_large_json_document_is_read_whole() {
    let data = std::fs::read("examples/exports/gitpod.json").expect("sample");
    let options = ReadOptions::default();
    let mut ctx = test_ctx(&options);
    let whole = summary(&read_undecided(&mut ctx, &data));
    assert!(!whole.1.is_empty());
    assert_eq!(summary(&read_in_blocks(&data, "x.json", 16)), whole);
}

#[test]
fn a_plain_file_read_in_parallel_pieces_arrives_whole_and_in_order() {
    let data: Vec<u8> = (0..2 * READ_PIECE + 12_345).map(|i| (i * 7 % 251) as u8).collect();
    let path = std::env::temp_dir().join(format!("usagenorm-{}-pieces", std::process::id()));
    std::fs::write(&path, &data).expect("write temp file");
    let file = std::fs::File::open(&path).expect("open temp file");
    let (mut stream, gzip) = Stream::open(&file, data.len()).expect("open");
    assert!(!gzip);
    let mut buf = Vec::new();
    assert_eq!(stream.fill(&mut buf, 1000).expect("read"), 1000);
    stream.read_to_end(&mut buf).expect("read");
    assert_eq!(stream.fill(&mut buf, 10).expect("read"), 0);
    assert!(buf == data, "the pieces arrive whole and in order");
    // A file that is shorter than it was when it was opened is an error, not a short read.
    let (mut stream, _) = Stream::open(&file, data.len() + 10).expect("open");
    let e = stream.read_to_end(&mut Vec::new()).expect_err("shorter file");
    assert!(e.to_string().contains("became shorter"), "{e}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_broken_gzip_stream_keeps_the_lines_before_it() {
    let data = ndjson();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&data).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let cut = &gz[..gz.len() * 2 / 3];
    let out = read_in_blocks(cut, "x.ndjson.gz", 64);
    let last = out.rejects.last().expect("a rejection for the broken stream");
    assert!(last.reason.starts_with("not a readable gzip stream"), "{}", last.reason);
    assert!(out.records > 10 && out.records < 293);
    assert_eq!(out.records, out.rejects.len() as u64 + out.batches.iter().map(|b| b.len() as u64).sum::<u64>());
}

#[test]
fn columns_left_out_are_stored_as_nulls_and_the_rest_as_before() {
    // Every bundled export (JSON pages and NDJSON), with dedupe off, read whole and projected.
    let dir =
        std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("examples/exports");
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("examples").map(|e| e.expect("entry").path()).collect();
    paths.sort();
    let inputs: Vec<Input> = paths.into_iter().map(Input::Path).collect();
    let all = NormalizeOptions { dedupe: false, errors: ErrorMode::Collect, ..Default::default() };
    let whole = normalize(&inputs, &all).expect("read whole");
    let kept = Kept::only(&["provider", "metric", "usage_start", "quantity", "unit", "cost"]).expect("columns");
    let some = NormalizeOptions { read: ReadOptions { kept, ..ReadOptions::default() }, ..all };
    let projected = normalize(&inputs, &some).expect("read projected");
    assert_eq!(projected.rejects.len(), whole.rejects.len());
    assert_eq!(
        projected.stats.iter().map(|s| (s.records, s.rows)).collect::<Vec<_>>(),
        whole.stats.iter().map(|s| (s.records, s.rows)).collect::<Vec<_>>()
    );
    let rows = |b: &[CanonicalBatch]| -> Vec<String> {
        b.iter().flat_map(|b| (0..b.len()).map(move |i| b.row_text(i))).collect()
    };
    let (full, cut) = (rows(&whole.batches), rows(&projected.batches));
    assert!(full.len() > 20, "the examples give rows");
    assert_eq!(cut.len(), full.len());
    // `row_text` writes `name=value ` per column, in the table's order (values may hold spaces).
    let fields = |text: &str| -> Vec<(&'static str, String)> {
        let starts: Vec<(usize, &'static str)> = crate::schema::COLUMNS
            .iter()
            .scan(0, |from, (name, _, _)| {
                let at = *from + text[*from..].find(&format!("{name}="))?;
                *from = at + name.len() + 1;
                Some((at, *name))
            })
            .collect();
        assert_eq!(starts.len(), crate::schema::COLUMNS.len(), "{text}");
        let ends = starts.iter().skip(1).map(|s| s.0).chain([text.len()]);
        starts.iter().zip(ends).map(|(&(at, name), end)| (name, text[at..end].trim_end().to_string())).collect()
    };
    let mut nulled = 0;
    for (f, c) in full.iter().zip(&cut) {
        for ((column, fv), (_, cv)) in fields(f).into_iter().zip(fields(c)) {
            if ["provider", "metric", "usage_start", "quantity", "unit", "cost"].contains(&column) {
                assert_eq!(fv, cv);
            } else if *cv != fv {
                // Left out: null where the column may be null, `{}` for tags not written.
                assert!(cv.ends_with("=None") || cv == "tags=Some(\"{}\")", "{cv} (was {fv})");
                nulled += 1;
            }
        }
    }
    assert!(nulled > full.len(), "record ids, accounts, tags ... were left out");
    // Dedupe compares every column: it cannot run on part of them.
    let both = NormalizeOptions { dedupe: true, ..some };
    assert!(matches!(normalize(&inputs, &both), Err(Error::InvalidArgument(m)) if m.contains("needs dedupe=False")));
    assert!(Kept::only(&["usage_start", "nope"]).is_err_and(|e| e.contains("\"nope\" is not a canonical column")));
}

#[test]
fn a_call_that_digests_gives_the_digests_of_the_rows_it_would_give() {
    // Sources large enough to be read in several groups (in parallel, each digested on its
    // own), with rejections and records of several rows among them.
    let mut inputs: Vec<(String, Vec<u8>)> =
        (0..5).map(|k| (format!("s{k}.ndjson"), ndjson().repeat(2_000 + 500 * k))).collect();
    let dir =
        std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("examples/exports");
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("examples").map(|e| e.expect("entry").path()).collect();
    paths.sort();
    inputs.extend(paths.iter().map(|p| (p.display().to_string(), std::fs::read(p).expect("example"))));
    let inputs: Vec<Input> = inputs.iter().map(|(name, data)| Input::Bytes { name: name.clone(), data }).collect();
    assert!(inputs.iter().map(Input::size_hint).sum::<u64>() > 8 * GROUP_MIN, "several groups");
    let rows = NormalizeOptions { dedupe: false, errors: ErrorMode::Collect, ..Default::default() };
    let whole = normalize(&inputs, &rows).expect("read");
    let digested = normalize(&inputs, &NormalizeOptions { digests: true, ..rows.clone() }).expect("digests");
    assert!(digested.batches.is_empty(), "no rows kept");
    let expected = record_digests(&whole.batches);
    assert!(expected.len() > 10_000 && expected.iter().any(|d| d.rows > 1), "many records, some of several rows");
    assert_eq!(digested.digests, expected);
    assert_eq!(digested.stats, whole.stats);
    assert_eq!(digested.rejects, whole.rejects);
    // Dedupe compares rows in the call: digests are for a dedupe across calls.
    let both = NormalizeOptions { digests: true, dedupe: true, ..rows };
    assert!(matches!(normalize(&inputs, &both), Err(Error::InvalidArgument(m)) if m.contains("digests need")));
}
