//! Source I/O: a file read whole or, when large, in blocks (a plain file at offsets in parallel, gzip
//! in order); in-memory bytes; gzip recognised by its magic bytes and read through one streaming
//! reader at every size; the BOM skipped; NDJSON or JSON documents decided from the text.

use super::*;

/// Files larger than this are read block by block when they hold NDJSON, so the whole file is
/// never in memory at once (a JSON document has to be read whole).
pub(super) const STREAM_MIN: u64 = 64 << 20;
/// The size of one NDJSON block (it is extended to the end of its last line).
pub(super) const BLOCK: usize = 128 << 20;

pub(super) fn read_source(source: u32, input: &Input, base: &Ctx) -> Result<(Chunk, Option<&'static str>)> {
    crate::cancel::check()?;
    let mut ctx = Ctx { source, ..*base };
    let chunk = match input {
        Input::Path(p) => {
            let io_error = |e: std::io::Error| Error::Io {
                path: p.display().to_string(),
                message: e.to_string(),
                not_found: e.kind() == std::io::ErrorKind::NotFound,
            };
            let name = p.display().to_string();
            let mut file = std::fs::File::open(p).map_err(io_error)?;
            let len = file.metadata().map_err(io_error)?.len();
            if len > STREAM_MIN {
                read_large_file(&mut ctx, &name, file, len as usize, BLOCK).map_err(io_error)?
            } else {
                let mut buf = Vec::with_capacity(len as usize + 1);
                file.read_to_end(&mut buf).map_err(io_error)?;
                read_bytes(&mut ctx, &name, &buf).map_err(io_error)?
            }
        }
        Input::Bytes { name, data } => {
            ctx.nonfinite = memchr::memmem::find(data, crate::json::NONFINITE_MARK).is_some();
            // In-memory text is never read from a device: an error can only be gzip's, which
            // `read_stream` turns into a rejection.
            read_bytes(&mut ctx, name, data).unwrap_or_else(|e| gzip_rejected(&ctx, e))
        }
    };
    Ok((chunk, ctx.provider.map(|p| p.id())))
}

pub(super) const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];

/// A source's whole text again (gzip inflated as far as it reads), for `CallTimes`; `None`
/// when it cannot be read.
pub(super) fn source_text<'a>(input: &'a Input) -> Option<Cow<'a, [u8]>> {
    let data: Cow<[u8]> = match input {
        Input::Path(p) => Cow::Owned(std::fs::read(p).ok()?),
        Input::Bytes { data, .. } => Cow::Borrowed(data),
    };
    if !data.starts_with(GZIP_MAGIC) {
        return Some(data);
    }
    let mut text = Vec::new();
    // A stream that breaks keeps what came before the break, as the reader does.
    let _ = flate2::read::MultiGzDecoder::new(&data[..]).read_to_end(&mut text);
    Some(Cow::Owned(text))
}

/// Reads a source held in memory: plain text as it is, gzip through the same streaming reader
/// as a large file, so that a stream that breaks keeps what came before the break at any size.
pub(super) fn read_bytes(ctx: &mut Ctx, name: &str, data: &[u8]) -> std::io::Result<Chunk> {
    if data.starts_with(GZIP_MAGIC) {
        let stream = Stream::Sequential(Box::new(flate2::bufread::MultiGzDecoder::new(data)));
        // Room for a typical compression ratio; the buffer grows if the text is larger.
        let capacity = data.len().saturating_mul(8).clamp(64 << 10, BLOCK + (1 << 20));
        return read_stream(ctx, name, stream, true, capacity, BLOCK);
    }
    Ok(read_text(ctx, name, data))
}

/// Reads plain text whole: NDJSON or one or more JSON documents (see `read_undecided`).
pub(super) fn read_text(ctx: &mut Ctx, name: &str, data: &[u8]) -> Chunk {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let whole = WholeSource::within(data, ctx.call);
    let mut local = Ctx { whole: &whole, ..*ctx };
    let out = if ndjson_by_name(name) || looks_like_ndjson(data) {
        read_ndjson(&mut local, data, 0).0
    } else {
        read_undecided(&mut local, data)
    };
    ctx.provider = local.provider;
    out
}

/// Reads text that is not NDJSON by its name or its first line. What it is is decided from the
/// whole text: one JSON document if it parses as one; else NDJSON if any of its lines is a
/// JSON object or array by itself (a first line that is blank or broken does not hide the good
/// lines after it: only the bad lines are rejected); else a sequence of documents, read up to
/// the first that is broken, whose rest is one rejection.
pub(super) fn read_undecided(ctx: &mut Ctx, data: &[u8]) -> Chunk {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(doc) = Doc::parse(text) {
            if ctx.provider.is_none() {
                // Detected here so the source's stats name its format.
                ctx.provider = detect(ctx.formats, &doc).ok().flatten();
            }
            return read_document(ctx, doc, text, None, "$");
        }
    }
    if has_document_line(data) {
        return read_ndjson(ctx, data, 0).0;
    }
    read_json(ctx, data)
}

/// Whether any line of `data` is by itself a JSON object or array with something in it, starting
/// at the line's first character: a pretty-printed document indents what it nests, so a line of
/// one that happens to be a whole object does not make a broken document NDJSON.
pub(super) fn has_document_line(data: &[u8]) -> bool {
    data.split(|&c| c == b'\n').any(|line| {
        let line = line.trim_ascii_end();
        line.len() > 2
            && matches!((line[0], line[line.len() - 1]), (b'{', b'}') | (b'[', b']'))
            && serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok()
    })
}

pub(super) fn gzip_rejected(ctx: &Ctx, e: std::io::Error) -> Chunk {
    Chunk::rejected(ctx, None, ErrorKind::MalformedJson, "$".into(), format!("not a readable gzip stream: {e}"), &[])
}

pub(super) fn ndjson_by_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let stem = lower.strip_suffix(".gz").unwrap_or(&lower);
    stem.ends_with(".ndjson") || stem.ends_with(".jsonl")
}

/// Reads up to `want` more bytes into `buf`; returns how many arrived (0 at the end).
pub(super) fn fill(reader: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> std::io::Result<usize> {
    let before = buf.len();
    reader.take(want as u64).read_to_end(buf)?;
    Ok(buf.len() - before)
}

/// Where a large file's bytes come from. A plain file is read at offsets in parallel pieces:
/// from the page cache a read is a copy into fresh memory, which one thread does at about
/// 1.5 GB/s, most of it the kernel handing over the new pages. A gzip stream is read in order.
pub(super) enum Stream<'f> {
    #[cfg(unix)]
    Plain {
        file: &'f std::fs::File,
        at: u64,
        len: u64,
    },
    Sequential(Box<dyn Read + 'f>),
}

/// The size of the pieces a plain file is read in, in parallel.
pub(super) const READ_PIECE: usize = 8 << 20;

impl<'f> Stream<'f> {
    /// The stream of `file`, `len` bytes long, and whether it is gzip.
    pub(super) fn open(file: &'f std::fs::File, len: usize) -> std::io::Result<(Stream<'f>, bool)> {
        let mut plain = std::io::BufReader::with_capacity(1 << 20, file);
        let gzip = plain.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        if gzip {
            return Ok((Stream::Sequential(Box::new(flate2::bufread::MultiGzDecoder::new(plain))), true));
        }
        #[cfg(unix)]
        return Ok((Stream::Plain { file, at: 0, len: len as u64 }, false));
        #[cfg(not(unix))]
        {
            let _ = len;
            Ok((Stream::Sequential(Box::new(plain)), false))
        }
    }

    /// Appends up to `want` more bytes to `buf`; returns how many arrived (0 at the end). A
    /// plain file is read up to the length it had when it was opened.
    pub(super) fn fill(&mut self, buf: &mut Vec<u8>, want: usize) -> std::io::Result<usize> {
        match self {
            #[cfg(unix)]
            Stream::Plain { file, at, len } => {
                use std::os::unix::fs::FileExt;
                let n = want.min(len.saturating_sub(*at) as usize);
                let before = buf.len();
                // Zeroed in parallel: the new memory's first touch is most of the cost.
                buf.par_extend(rayon::iter::repeat_n(0u8, n));
                let start = *at;
                buf[before..].par_chunks_mut(READ_PIECE).enumerate().try_for_each(|(k, piece)| {
                    file.read_exact_at(piece, start + (k * READ_PIECE) as u64).map_err(|e| {
                        if e.kind() == std::io::ErrorKind::UnexpectedEof {
                            std::io::Error::other("the file became shorter while it was read")
                        } else {
                            e
                        }
                    })
                })?;
                *at += n as u64;
                Ok(n)
            }
            Stream::Sequential(reader) => fill(reader, buf, want),
        }
    }

    /// Reads everything that is left.
    pub(super) fn read_to_end(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        match self {
            #[cfg(unix)]
            Stream::Plain { at, len, .. } => {
                let rest = len.saturating_sub(*at) as usize;
                buf.reserve(rest + 1);
                self.fill(buf, rest).map(drop)
            }
            Stream::Sequential(reader) => reader.read_to_end(buf).map(drop),
        }
    }
}

/// Reads a large file (plain or gzip) through `read_stream`.
pub(super) fn read_large_file(
    ctx: &mut Ctx,
    name: &str,
    file: std::fs::File,
    len: usize,
    block_size: usize,
) -> std::io::Result<Chunk> {
    let (reader, gzip) = Stream::open(&file, len)?;
    // A plain document up to twice a block is read without moving it (lines extend a block).
    let capacity = if gzip { block_size + (1 << 20).min(block_size) } else { len.min(2 * block_size) + 1 };
    read_stream(ctx, name, reader, gzip, capacity, block_size)
}

/// Reads a stream: NDJSON block by block, anything else whole (then decided as `read_text`
/// decides). Each block is parsed in parallel like a small file; line numbers and record
/// indices continue across blocks, and only one block and its rows are held besides the rows
/// already read. A gzip stream that breaks keeps the lines before the break, and the broken
/// tail is one rejection; a plain file that cannot be read is an error.
pub(super) fn read_stream(
    ctx: &mut Ctx,
    name: &str,
    mut reader: Stream,
    gzip: bool,
    capacity: usize,
    block_size: usize,
) -> std::io::Result<Chunk> {
    let mut block = Vec::with_capacity(capacity);
    // The first read is large enough to see the BOM and the first line.
    let mut broken = None;
    if let Err(e) = reader.fill(&mut block, block_size.max(64 << 10)) {
        if !gzip {
            return Err(e);
        }
        broken = Some(e);
    }
    let bom = if block.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    if !(ndjson_by_name(name) || looks_like_ndjson(&block[bom..])) {
        if broken.is_none() {
            if let Err(e) = reader.read_to_end(&mut block) {
                if !gzip {
                    return Err(e);
                }
                broken = Some(e);
            }
        }
        let text = &block[bom..];
        let whole = WholeSource::within(text, ctx.call);
        let mut local = Ctx { whole: &whole, ..*ctx };
        let out = match broken {
            None => read_undecided(&mut local, text),
            // What arrived before the break: its lines, if it is NDJSON (a document cut short
            // is part of the broken tail).
            Some(e) => {
                let mut out =
                    if has_document_line(text) { read_ndjson(&mut local, text, 0).0 } else { Chunk::default() };
                out.absorb(gzip_rejected(&local, e));
                out
            }
        };
        ctx.provider = local.provider;
        return Ok(out);
    }
    let mut out = Chunk::default();
    let mut lines_before = 0u64;
    let mut skip = bom;
    let mut any_line = false;
    let mut at_end = broken.is_some();
    while crate::cancel::check().is_ok() {
        // Extend the block to the end of a line (or of the file).
        while !at_end && (memchr::memrchr(b'\n', &block[skip..]).is_none() || block.len() < block_size) {
            match reader.fill(&mut block, block_size) {
                Ok(0) => at_end = true,
                Ok(_) => {}
                Err(e) if gzip => {
                    broken = Some(e);
                    at_end = true;
                }
                Err(e) => return Err(e),
            }
        }
        let end = if at_end {
            block.len()
        } else {
            memchr::memrchr(b'\n', &block[skip..]).map_or(block.len(), |i| skip + i + 1)
        };
        let part = &block[skip..end];
        let mut part_breaks = None;
        if !part.iter().all(u8::is_ascii_whitespace) {
            any_line = true;
            let whole = WholeSource::within(part, ctx.call);
            let mut local = Ctx { whole: &whole, ..*ctx };
            let (chunk, breaks) = read_ndjson(&mut local, part, lines_before);
            ctx.provider = local.provider;
            out.absorb(chunk);
            part_breaks = Some(breaks);
        }
        if at_end {
            if let Some(e) = broken {
                any_line = true;
                out.absorb(gzip_rejected(ctx, e));
            }
            break;
        }
        lines_before += part_breaks.unwrap_or_else(|| memchr::memchr_iter(b'\n', part).count() as u64);
        block.drain(..end);
        skip = 0;
    }
    if !any_line {
        out.absorb(Chunk::rejected(
            ctx,
            None,
            ErrorKind::MalformedJson,
            "$".into(),
            "the document is empty".into(),
            &[],
        ));
    }
    Ok(out)
}

/// Whether text holds several JSON values, the first of them on the first line.
pub(super) fn looks_like_ndjson(data: &[u8]) -> bool {
    let Some(nl) = memchr::memchr(b'\n', data) else { return false };
    let rest = &data[nl + 1..];
    if rest.iter().all(u8::is_ascii_whitespace) {
        return false;
    }
    let first = &data[..nl];
    if first.iter().all(u8::is_ascii_whitespace) {
        return false;
    }
    // Cheap test first: a complete one-line document ends with `}` or `]`.
    let trimmed = first.trim_ascii_end();
    matches!(trimmed.last(), Some(b'}') | Some(b']')) && serde_json::from_slice::<serde::de::IgnoredAny>(first).is_ok()
}
