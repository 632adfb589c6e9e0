//! JSON documents: one parsed document (`Doc`), documents one after another, pages and their
//! records, and the records read in parallel into rows or rejections.

use super::*;
use crate::schema::tags::skipping;

/// Reads text that is not one JSON document as a sequence of documents, up to the first that is
/// broken (its rest is one rejection); empty or invalid UTF-8 text is one rejection.
pub(super) fn read_json(ctx: &mut Ctx, data: &[u8]) -> Chunk {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Chunk::rejected(ctx, None, ErrorKind::MalformedJson, "$".into(), "the document is empty".into(), data);
    }
    let text = match std::str::from_utf8(data) {
        Ok(t) => t,
        Err(e) => {
            let reason = format!("invalid UTF-8 at byte {}", e.valid_up_to());
            return Chunk::rejected(ctx, None, ErrorKind::MalformedJson, "$".into(), reason, data);
        }
    };
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
    let mut out = Chunk::default();
    let mut doc = 0usize;
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => break,
            Some(Ok(value)) => {
                let prefix = format!("document {doc}: $");
                out.absorb(match Doc::parse(value.get()) {
                    Some(d) => {
                        if ctx.provider.is_none() {
                            ctx.provider = detect(ctx.formats, &d).ok().flatten();
                        }
                        read_document(ctx, d, value.get(), None, &prefix)
                    }
                    None => Chunk::rejected(
                        ctx,
                        None,
                        ErrorKind::WrongType,
                        prefix,
                        not_object_or_array(value.into()),
                        value.get().as_bytes(),
                    ),
                });
            }
            Some(Err(e)) => {
                let reason = format!("malformed JSON: {e}");
                out.absorb(Chunk::rejected(ctx, None, ErrorKind::MalformedJson, "$".into(), reason, &data[start..]));
                break;
            }
        }
        doc += 1;
    }
    out
}

pub(super) fn not_object_or_array(value: Raw) -> String {
    format!("expected a JSON object or array, got {}", Kind::of(value).name())
}

/// A JSON document parsed once: an object with raw field values, or an array of raw elements.
pub(super) enum Doc<'d> {
    Object(RawObject<'d>),
    Array(Vec<Raw<'d>>),
}

impl<'d> Doc<'d> {
    /// Parses `text` when it is exactly one JSON object or array: checked and split in one pass
    /// (`json::parse_checked`), a large one checked in parallel (`json::parse_large`), and
    /// whatever those leave (an error, something unusual) by serde_json.
    pub(super) fn parse(text: &'d str) -> Option<Doc<'d>> {
        let read =
            if text.len() > LARGE_DOCUMENT { crate::json::parse_large(text) } else { crate::json::parse_checked(text) };
        match read {
            Some(Large::Object(obj)) => return Some(Doc::Object(obj)),
            Some(Large::Array(items)) => return Some(Doc::Array(items)),
            None => {}
        }
        match text.trim_start().as_bytes().first() {
            Some(b'{') => serde_json::from_str(text).ok().map(Doc::Object),
            Some(b'[') => serde_json::from_str::<Vec<&RawValue>>(text)
                .ok()
                .map(|items| Doc::Array(items.into_iter().map(Raw::from).collect())),
            _ => None,
        }
    }
}

/// Reads one JSON document (a page, an array of pages or records, or one record). An empty
/// object is an empty response (proto3 JSON omits an empty list): no records.
pub(super) fn read_document<'d>(ctx: &Ctx, doc: Doc<'d>, text: &'d str, line: Option<u64>, prefix: &str) -> Chunk {
    if matches!(&doc, Doc::Object(obj) if obj.is_empty()) {
        return Chunk::default();
    }
    let provider = match ctx.provider {
        Some(p) => p,
        None => match detect(ctx.formats, &doc) {
            Ok(Some(p)) => p,
            Ok(None) => return Chunk::default(),
            Err(e) => return Chunk::rejected(ctx, line, e.kind, join_path(prefix, &e.path), e.reason, text.as_bytes()),
        },
    };
    let ctx = Ctx { provider: Some(provider), ..*ctx };
    match doc {
        Doc::Object(obj) if provider.is_page(&obj) => read_page(&ctx, provider, &obj, text, line, prefix),
        // A lone record: it is already parsed.
        Doc::Object(obj) => read_records(&ctx, provider, None, &[(obj, text)], line, prefix, At::Lone),
        Doc::Array(items) => {
            // Each element is parsed once and read with its own format (a list of pages of
            // several providers): pages one by one; runs of bare records of one format
            // between them share a page.
            let mut out = Chunk::default();
            let mut run: Vec<(RawObject<'d>, &'d str)> = Vec::new();
            let mut run_start = 0;
            let mut current = provider;
            let flush = |run: &mut Vec<(RawObject<'d>, &'d str)>, run_start: usize, p, out: &mut Chunk| {
                if !run.is_empty() {
                    let ctx = Ctx { provider: Some(p), ..ctx };
                    out.absorb(read_records(&ctx, p, None, run, line, prefix, At::From(run_start)));
                    run.clear();
                }
            };
            for (i, item) in items.iter().enumerate() {
                let obj = match RawObject::parse(*item, "") {
                    Ok(obj) => obj,
                    Err(e) => {
                        flush(&mut run, run_start, current, &mut out);
                        let path = format!("{prefix}[{i}]");
                        out.absorb(Chunk::rejected(&ctx, line, e.kind, path, e.reason, item.get().as_bytes()));
                        run_start = i + 1;
                        continue;
                    }
                };
                if obj.is_empty() {
                    // An empty response in a list of pages: no records.
                    flush(&mut run, run_start, current, &mut out);
                    run_start = i + 1;
                    continue;
                }
                let p = element_format(&ctx, current, &obj);
                if !same(p, current) {
                    flush(&mut run, run_start, current, &mut out);
                    run_start = i;
                    current = p;
                }
                if p.is_page(&obj) {
                    flush(&mut run, run_start, current, &mut out);
                    let own = Ctx { provider: Some(p), ..ctx };
                    out.absorb(read_page(&own, p, &obj, item.get(), line, &format!("{prefix}[{i}]")));
                    run_start = i + 1;
                } else {
                    run.push((obj, item.get()));
                }
            }
            flush(&mut run, run_start, current, &mut out);
            out
        }
    }
}

pub(super) fn read_page<'d>(
    ctx: &Ctx,
    provider: &dyn FormatReader,
    page: &RawObject<'d>,
    raw: &'d str,
    line: Option<u64>,
    prefix: &str,
) -> Chunk {
    let records = match provider.page_records(page) {
        Ok(r) => r,
        Err(e) => return Chunk::rejected(ctx, line, e.kind, join_path(prefix, &e.path), e.reason, raw.as_bytes()),
    };
    let page = PageRef { obj: page, raw, prefix };
    match records {
        PageRecords::Array(records) => {
            let key = provider.records_key();
            read_records(ctx, provider, Some(page), &records, line, &format!("{prefix}.{key}"), At::From(0))
        }
        PageRecords::Nested(records, nested) => {
            read_records(ctx, provider, Some(page), &records, line, prefix, At::Nested(&nested))
        }
    }
}

/// A page envelope with its raw text and JSON path.
#[derive(Clone, Copy)]
pub(super) struct PageRef<'p, 'd> {
    obj: &'p RawObject<'d>,
    raw: &'d str,
    prefix: &'p str,
}

/// A record to read: raw (parsed when read) or already parsed (bare records, parsed during
/// detection), with its raw text for rejections.
pub(super) trait RecordSource<'d>: Sync {
    fn object(&self) -> FieldResult<Cow<'_, RawObject<'d>>>;
    fn raw(&self) -> &'d str;
}

impl<'d> RecordSource<'d> for Raw<'d> {
    fn object(&self) -> FieldResult<Cow<'_, RawObject<'d>>> {
        RawObject::parse(*self, "").map(Cow::Owned)
    }
    fn raw(&self) -> &'d str {
        self.get()
    }
}

impl<'d> RecordSource<'d> for (RawObject<'d>, &'d str) {
    fn object(&self) -> FieldResult<Cow<'_, RawObject<'d>>> {
        Ok(Cow::Borrowed(&self.0))
    }
    fn raw(&self) -> &'d str {
        self.1
    }
}

/// Where the records of one `read_records` call sit, for their paths.
#[derive(Clone, Copy)]
pub(super) enum At<'p> {
    /// A lone top-level record: its path is the prefix.
    Lone,
    /// `records[0]` is at this index of the array the prefix names.
    From(usize),
    /// Records nested in the page's outer array (`PageRecords::Nested`).
    Nested(&'p Nested<'p>),
}

/// Reads records that share one page; `at` says where they sit.
pub(super) fn read_records<'d, R: RecordSource<'d>>(
    ctx: &Ctx,
    provider: &dyn FormatReader,
    page: Option<PageRef<'_, 'd>>,
    records: &[R],
    line: Option<u64>,
    prefix: &str,
    at: At,
) -> Chunk {
    let path_of = |j: usize| match at {
        At::From(f) => format!("{prefix}[{}]", f + j),
        At::Lone => prefix.to_string(),
        At::Nested(nested) => nested.path(j).map_or_else(|| prefix.to_string(), |p| join_path(prefix, &p)),
    };
    let nested = match at {
        At::Nested(n) => Some(n),
        _ => None,
    };
    let mut out = Chunk::default();
    let raws: Vec<&'d str> = records.iter().map(R::raw).collect();
    let per_task = records_per_task(records.len());
    // A marked non-finite float in the page's own fields spoils what it shares with every record.
    let page_marked = page.filter(|_| ctx.nonfinite).and_then(|p| {
        p.obj.fields().filter(|(k, _)| *k != provider.records_key()).find_map(|(k, v)| {
            let e = nonfinite_error(v.get())?;
            Some(e.within(k))
        })
    });
    let result = match page_marked {
        Some(e) => Err(e),
        None => skipping(!ctx.options.kept.tags, || {
            provider.open_page(page.map(|p| p.obj), &raws, nested, ctx.options, ctx.whole)
        })
        .map(|reader| {
            let parts: Vec<Chunk> = records
                .par_chunks(per_task)
                .enumerate()
                .map(|(c, chunk)| {
                    read_chunk(ctx, provider.id(), &*reader, chunk, c * per_task, line, &|j| path_of(c * per_task + j))
                })
                .collect();
            parts.into_iter().for_each(|p| out.absorb(p));
        }),
    };
    let Err(e) = result else { return out };
    // The page's shared part is unusable: every record of it is rejected with that reason.
    let page_path = join_path(page.map_or(prefix, |p| p.prefix), &e.path);
    let reason = format!("page: {}", e.reason);
    let mut out = Chunk::default();
    if records.is_empty() {
        let raw = page.map_or(&b""[..], |p| p.raw.as_bytes());
        return Chunk::rejected(ctx, line, ErrorKind::Page, page_path, reason, raw);
    }
    for r in records {
        out.absorb(Chunk::rejected(ctx, line, ErrorKind::Page, page_path.clone(), reason.clone(), r.raw().as_bytes()));
    }
    out
}

pub(super) fn read_chunk<'d, R: RecordSource<'d>>(
    ctx: &Ctx,
    provider: &'static str,
    reader: &dyn RecordReader,
    chunk: &[R],
    first: usize,
    line: Option<u64>,
    path_of: &dyn Fn(usize) -> String,
) -> Chunk {
    let mut out = Chunk::default();
    if crate::cancel::check().is_err() {
        return out;
    }
    let mut batch = CanonicalBatch::default();
    let mut rows: Vec<Row<'d>> = Vec::with_capacity(4);
    for (j, record) in chunk.iter().enumerate() {
        let index = j as u64;
        let raw = record.raw();
        let marked = if ctx.nonfinite { nonfinite_error(raw) } else { None };
        let result = match marked {
            Some(e) => Err(e),
            None => record
                .object()
                .and_then(|rec| skipping(!ctx.options.kept.tags, || reader.rows(&rec, first + j, &mut rows)))
                .and_then(|()| fits(&rows)),
        };
        match result {
            Ok(()) => {
                let first = batch.is_empty();
                push_record(&mut batch, provider, &mut rows, &ctx.options.kept, ctx.source, index);
                if first {
                    // As many rows for each record still to come as this one gave, in every
                    // column that holds a value (one still all null stays free).
                    batch.reserve_for(&CanonicalBatch::default(), batch.len() * (chunk.len() - j - 1));
                }
            }
            Err(FieldError { path, reason, kind }) => {
                rows.clear();
                out.rejects.push(Rejection {
                    source: ctx.source,
                    kind,
                    source_index: index,
                    line,
                    provider: Some(provider),
                    path: join_path(&path_of(j), &path),
                    reason,
                    raw: cap_raw(raw.as_bytes()),
                });
            }
        }
    }
    out.records = chunk.len() as u64;
    records_read(out.records);
    batch.shrink_to_fit();
    out.batches.push(batch);
    out
}

/// A record (or document) holding a float JSON cannot hold, which `dumps` marked: why it is
/// rejected, as a field error.
pub(super) fn nonfinite_error(text: &str) -> Option<FieldError> {
    let (path, what) = crate::json::nonfinite_field(Raw::of_valid(text))?;
    Some(FieldError::new(path, format!("{what} is not a number JSON can hold (the float was NaN or infinite)")))
}

/// The rejection of an NDJSON line that holds a marked non-finite float.
pub(super) fn nonfinite_rejected(ctx: &Ctx, line: Option<u64>, prefix: &str, text: &str) -> Option<Chunk> {
    let e = nonfinite_error(text)?;
    Some(Chunk::rejected(ctx, line, e.kind, join_path(prefix, &e.path), e.reason, text.as_bytes()))
}

/// Rejects a record whose rows hold a text value too long for a string column (4 GiB).
pub(super) fn fits(rows: &[Row]) -> FieldResult<()> {
    match rows.iter().find_map(Row::too_long) {
        None => Ok(()),
        Some(column) => Err(FieldError::of(
            ErrorKind::OutOfRange,
            "",
            format!("the value for column {column} is longer than 4 GiB"),
        )),
    }
}
