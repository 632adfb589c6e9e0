//! NDJSON: text split into numbered lines (in parallel pieces when large), each line a record, a
//! page or a rejection of its own.

use super::*;
use crate::schema::tags::skipping;

/// Lines of NDJSON text with their numbers.
pub(super) type Lines<'d> = Vec<(u64, &'d [u8])>;

/// The non-blank lines of NDJSON text with their 1-based numbers (the first line is number
/// `lines_before + 1`), and how many line breaks the text holds. Text of a megabyte or more is
/// cut at line breaks into pieces that are split in parallel.
pub(super) fn split_lines(data: &[u8], lines_before: u64) -> (Lines<'_>, u64) {
    let pieces = if data.len() < 1 << 20 { 1 } else { 2 * rayon::current_num_threads() };
    let mut bounds = vec![0];
    for k in 1..pieces {
        let at = (data.len() / pieces * k).max(bounds.last().copied().unwrap_or(0));
        match memchr::memchr(b'\n', data.get(at..).unwrap_or_default()) {
            Some(i) => bounds.push(at + i + 1),
            None => break,
        }
    }
    bounds.push(data.len());
    bounds.dedup();
    let last = bounds.len().saturating_sub(2);
    // Each piece: its lines numbered from 0 within it, and its line breaks. A piece other than
    // the last ends with a line break, after which nothing of it is left.
    let parts: Vec<(Lines, u64)> = bounds
        .windows(2)
        .enumerate()
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|(k, w)| {
            let piece = data.get(w[0]..w[1]).unwrap_or_default();
            let mut lines = Vec::new();
            let mut start = 0usize;
            let mut breaks = 0u64;
            let tail = (k == last).then_some(piece.len());
            for (number, end) in (0..).zip(memchr::memchr_iter(b'\n', piece).inspect(|_| breaks += 1).chain(tail)) {
                let line = piece.get(start..end).unwrap_or_default();
                if !line.iter().all(u8::is_ascii_whitespace) {
                    lines.push((number, line));
                }
                start = end + 1;
            }
            (lines, breaks)
        })
        .collect();
    let mut lines = Vec::with_capacity(parts.iter().map(|p| p.0.len()).sum());
    let mut first = lines_before + 1;
    for (part, breaks) in parts {
        lines.extend(part.into_iter().map(|(n, line)| (first + n, line)));
        first += breaks;
    }
    (lines, first - lines_before - 1)
}

/// Reads NDJSON text whose first line is line `lines_before + 1` of its source; also returns
/// how many line breaks the text holds.
pub(super) fn read_ndjson<'d>(ctx: &mut Ctx, data: &'d [u8], lines_before: u64) -> (Chunk, u64) {
    let (lines, breaks) = split_lines(data, lines_before);
    if lines.is_empty() {
        return (
            Chunk::rejected(ctx, None, ErrorKind::MalformedJson, "$".into(), "the document is empty".into(), data),
            breaks,
        );
    }
    if ctx.provider.is_none() {
        // Detect once per file, from the first line that detects.
        ctx.provider = lines.iter().find_map(|(_, l)| {
            let doc = Doc::parse(std::str::from_utf8(l).ok()?)?;
            detect(ctx.formats, &doc).ok().flatten()
        });
    }
    let ctx = *ctx;
    let parts: Vec<Chunk> = lines
        .par_chunks(records_per_task(lines.len()))
        .map(|chunk| {
            let mut out = Chunk::default();
            if crate::cancel::check().is_err() {
                return out;
            }
            let mut rows: Vec<Row<'d>> = Vec::with_capacity(4);
            // Bare records (the common NDJSON) go straight into the chunk's batch; pages, arrays
            // and bad lines take the general path.
            let mut read_line = |reader: Option<&dyn RecordReader>, out: &mut Chunk, number: u64, line: &'d [u8]| {
                let text = match std::str::from_utf8(line) {
                    Ok(text) => text,
                    Err(e) => {
                        let reason = format!("invalid UTF-8 at byte {}", e.valid_up_to());
                        return out.absorb(Chunk::rejected(
                            &ctx,
                            Some(number),
                            ErrorKind::MalformedJson,
                            "$".into(),
                            reason,
                            line,
                        ));
                    }
                };
                if ctx.nonfinite {
                    if let Some(c) = nonfinite_rejected(&ctx, Some(number), "$", text) {
                        return out.absorb(c);
                    }
                }
                let doc = Doc::parse(text);
                // A line of another format than the file's (concatenated exports) is read with
                // its own format.
                let own = match (&doc, ctx.provider) {
                    (Some(Doc::Object(obj)), Some(provider)) => {
                        Some(element_format(&ctx, provider, obj)).filter(|p| !same(*p, provider))
                    }
                    _ => None,
                };
                match (doc, reader, ctx.provider) {
                    // An empty object is an empty response: no records.
                    (Some(Doc::Object(obj)), _, _) if obj.is_empty() => {}
                    (Some(doc), _, _) if own.is_some() => {
                        out.absorb(read_document(&Ctx { provider: own, ..ctx }, doc, text, Some(number), "$"))
                    }
                    (Some(Doc::Object(obj)), Some(reader), Some(provider)) if !provider.is_page(&obj) => {
                        let read = skipping(!ctx.options.kept.tags, || reader.rows(&obj, 0, &mut rows));
                        match read.and_then(|()| fits(&rows)) {
                            Ok(()) => out.push_rows(provider.id(), &mut rows, &ctx.options.kept, ctx.source),
                            Err(FieldError { path, reason, kind }) => {
                                rows.clear();
                                let mut c =
                                    Chunk::rejected(&ctx, Some(number), kind, join_path("$", &path), reason, line);
                                c.rejects[0].provider = Some(provider.id());
                                out.absorb(c);
                            }
                        }
                    }
                    (Some(doc), _, _) => out.absorb(read_document(&ctx, doc, text, Some(number), "$")),
                    (None, _, _) => {
                        let (kind, reason) = match serde_json::from_str::<&RawValue>(text) {
                            Ok(v) => (ErrorKind::WrongType, not_object_or_array(v.into())),
                            Err(e) => (ErrorKind::MalformedJson, format!("malformed JSON: {e}")),
                        };
                        out.absorb(Chunk::rejected(&ctx, Some(number), kind, "$".into(), reason, line));
                    }
                }
            };
            let lone = match ctx.provider {
                Some(provider) => {
                    skipping(!ctx.options.kept.tags, || provider.open_page(None, &[], None, ctx.options, ctx.whole))
                        .map(|reader| {
                            for (number, line) in chunk {
                                read_line(Some(&*reader), &mut out, *number, line);
                            }
                        })
                }
                None => Err(FieldError::new("", "no format detected")),
            };
            if lone.is_err() {
                out = Chunk::default();
                for (number, line) in chunk {
                    read_line(None, &mut out, *number, line);
                }
            }
            records_read(chunk.len() as u64);
            out.batches.iter_mut().for_each(CanonicalBatch::shrink_to_fit);
            out
        })
        .collect();
    let mut out = Chunk::default();
    parts.into_iter().for_each(|p| out.absorb(p));
    (out, breaks)
}
