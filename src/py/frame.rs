//! Conversions between the core's columnar output and Polars DataFrames. Runs detached from
//! the interpreter; only the finished DataFrame crosses into Python.

use polars::prelude::*;
use polars_arrow::array::{Array as _, Utf8ViewArray, View};
use polars_arrow::bitmap::Bitmap;
use polars_arrow::datatypes::ArrowDataType;
use polars_buffer::Buffer;
use rayon::prelude::*;

use crate::aggregate::{Aggregated, KeyColumn, Nullable, UsageColumns};
use crate::normalize::NormalizeOutput;
use crate::pricing::{Priced, PricingInput, RateCard, MATCH_COLUMNS, OUTCOMES};
use crate::providers::Registry;
use crate::schema::kind::{self, Kind};
use crate::schema::{CanonicalBatch, Kept, OptColumn, StrParts};

fn strings<'a>(name: &str, it: impl Iterator<Item = Option<&'a str>>) -> Column {
    StringChunked::from_iter_options(name.into(), it).into_column()
}

fn decimals(name: &str, it: impl Iterator<Item = Option<i128>> + Clone) -> PolarsResult<Column> {
    if it.clone().all(|v| v.is_none()) {
        let nulls = Int128Chunked::full_null(name.into(), it.count());
        return Ok(nulls.into_decimal(38, crate::money::SCALE as usize)?.into_column());
    }
    Ok(Int128Chunked::from_iter_options(name.into(), it).into_decimal(38, crate::money::SCALE as usize)?.into_column())
}

/// A Utf8View column from one of the core's string columns, which are laid out as Arrow views
/// already: the views and text buffers are handed over as they are, only the validity is
/// packed into bits.
fn string_views(name: &str, part: StrParts) -> Column {
    if part.views.is_empty() {
        // A column the source formats never fill (say, Gitpod's cost): no views at all.
        return StringChunked::full_null(name.into(), part.len).into_column();
    }
    if part.buffers.len() > u32::MAX as usize {
        // Views address buffers with 32-bit indices (never seen in practice).
        return strings(name, (0..part.len).map(|i| part.get(i)));
    }
    let validity = part.valid.iter().any(|v| !v).then(|| part.valid.iter().copied().collect::<Bitmap>());
    let total_bytes = part.views.iter().map(|v| v[0] as usize).sum();
    let total_buffer = part.buffers.iter().map(String::len).sum();
    let views: Vec<View> = bytemuck::allocation::cast_vec(part.views);
    let buffers: Vec<Buffer<u8>> = part.buffers.into_iter().map(|t| Buffer::from(t.into_bytes())).collect();
    // SAFETY: the core builds each view the way Arrow does (`schema::StrColumn`): a value of at
    // most 12 bytes inline, zero-padded; a longer one by length, first 4 bytes, buffer index
    // and offset within one of these buffers, on char boundaries (it was appended as a `&str`).
    // Null values are zero views; the lengths are summed above.
    let array = unsafe {
        Utf8ViewArray::new_unchecked(
            ArrowDataType::Utf8View,
            Buffer::from(views),
            Buffer::from(buffers),
            validity,
            Some(total_bytes),
            total_buffer,
        )
    };
    StringChunked::with_chunk(name.into(), array).into_column()
}

/// A column of optional fixed-width values, handed over as they are.
fn optional<T: PolarsNumericType>(
    name: &str,
    (values, valid, len): (Vec<T::Native>, Vec<bool>, usize),
) -> ChunkedArray<T> {
    if values.is_empty() {
        return ChunkedArray::full_null(name.into(), len);
    }
    let validity = valid.iter().any(|v| !v).then(|| valid.iter().copied().collect::<Bitmap>());
    ChunkedArray::from_vec_validity(name.into(), values, validity)
}

fn money(name: &str, column: OptColumn<crate::money::Decimal>) -> PolarsResult<Column> {
    let (values, valid, len) = column.into_parts();
    money_parts(name, (values.into_iter().map(|d| d.0).collect(), valid, len))
}

/// A decimal(38, 9) column from its values (units of 10⁻⁹) and validity, handed over as they are.
fn money_parts(name: &str, parts: (Vec<i128>, Vec<bool>, usize)) -> PolarsResult<Column> {
    Ok(optional::<Int128Type>(name, parts).into_decimal(38, crate::money::SCALE as usize)?.into_column())
}

/// A string column whose values are `labels[pick]`, null where `valid` says so: the labels
/// are laid out once and every row's view points at its label.
fn label_views(name: &str, labels: &[&str], picks: impl Iterator<Item = u32>, valid: Option<&[bool]>) -> Column {
    let mut text = String::new();
    let ends: Vec<usize> = labels
        .iter()
        .map(|l| {
            text.push_str(l);
            text.len()
        })
        .collect();
    let starts: Vec<usize> = std::iter::once(0).chain(ends.iter().copied()).collect();
    if text.len() > u32::MAX as usize {
        let value = |(i, p): (usize, u32)| match valid.and_then(|v| v.get(i)) {
            Some(false) => None,
            _ => labels.get(p as usize).copied(),
        };
        return strings(name, picks.enumerate().map(value));
    }
    let bytes = text.as_bytes();
    let label_view = |p: u32| {
        let (s, e) = (starts.get(p as usize).copied().unwrap_or(0), ends.get(p as usize).copied().unwrap_or(0));
        View::new_from_bytes(bytes.get(s..e).unwrap_or_default(), 0, s as u32)
    };
    let lookup: Vec<View> = (0..labels.len() as u32).map(label_view).collect();
    let views: Vec<View> = picks.map(|p| lookup.get(p as usize).copied().unwrap_or_default()).collect();
    let validity = valid.filter(|v| v.iter().any(|x| !x)).map(|v| v.iter().copied().collect::<Bitmap>());
    let total_bytes = views.iter().map(|v| v.length as usize).sum();
    let total_buffer = text.len();
    // SAFETY: every view is one whole label of `text` (char boundaries of a `String`), or empty
    // (then null, or an empty label).
    let array = unsafe {
        Utf8ViewArray::new_unchecked(
            ArrowDataType::Utf8View,
            Buffer::from(views),
            Buffer::from(vec![Buffer::from(text.into_bytes())]),
            validity,
            Some(total_bytes),
            total_buffer,
        )
    };
    StringChunked::with_chunk(name.into(), array).into_column()
}

/// The canonical table, in the column order of `schema::COLUMNS`, built from the batches as
/// they leave `out`: each batch (about `normalize::CHUNK_ROWS` rows) becomes one chunk of every
/// column, its vectors and text handed over without copying. Polars keeps the chunks as they
/// are (`df.n_chunks()`); `df.rechunk()` makes one.
pub fn canonical(out: &mut NormalizeOutput, kept: &Kept) -> PolarsResult<DataFrame> {
    let mut frame: Option<DataFrame> = None;
    for batch in std::mem::take(&mut out.batches) {
        let part = canonical_chunk(batch, &out.sources, kept)?;
        match frame.as_mut() {
            None => frame = Some(part),
            Some(df) => {
                df.vstack_mut_owned(part)?;
            }
        }
    }
    match frame {
        Some(df) => Ok(df),
        None => canonical_chunk(CanonicalBatch::default(), &out.sources, kept),
    }
}

/// How each kind of canonical column becomes a frame column.
trait FrameKind: Kind {
    fn column(name: &str, column: Self::Column, sources: &[String]) -> PolarsResult<Column>;
}

macro_rules! text_kinds {
    ($($k:ident),*) => {$(
        impl FrameKind for kind::$k {
            fn column(name: &str, column: Self::Column, _: &[String]) -> PolarsResult<Column> {
                Ok(string_views(name, column.into_parts()))
            }
        }
    )*};
}
text_kinds!(OptStr, Text, Json, Label);

fn datetimes(name: &str, ca: Int64Chunked) -> Column {
    ca.with_name(name.into()).into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)).into_column()
}

impl FrameKind for kind::Time {
    fn column(name: &str, column: Vec<i64>, _: &[String]) -> PolarsResult<Column> {
        Ok(datetimes(name, Int64Chunked::from_vec(name.into(), column)))
    }
}

impl FrameKind for kind::OptTime {
    fn column(name: &str, column: OptColumn<i64>, _: &[String]) -> PolarsResult<Column> {
        Ok(datetimes(name, optional::<Int64Type>(name, column.into_parts())))
    }
}

impl FrameKind for kind::OptF64 {
    fn column(name: &str, column: OptColumn<f64>, _: &[String]) -> PolarsResult<Column> {
        Ok(optional::<Float64Type>(name, column.into_parts()).into_column())
    }
}

impl FrameKind for kind::OptMoney {
    fn column(name: &str, column: OptColumn<crate::money::Decimal>, _: &[String]) -> PolarsResult<Column> {
        money(name, column)
    }
}

impl FrameKind for kind::Flag {
    fn column(name: &str, column: Vec<bool>, _: &[String]) -> PolarsResult<Column> {
        Ok(BooleanChunked::from_iter_values(name.into(), column.into_iter()).into_column())
    }
}

impl FrameKind for kind::Revision {
    fn column(name: &str, column: OptColumn<i64>, _: &[String]) -> PolarsResult<Column> {
        Ok(optional::<Int64Type>(name, column.into_parts()).into_column())
    }
}

impl FrameKind for kind::SourceId {
    fn column(name: &str, column: Vec<u32>, sources: &[String]) -> PolarsResult<Column> {
        let names: Vec<&str> = sources.iter().map(String::as_str).collect();
        Ok(label_views(name, &names, column.into_iter(), None))
    }
}

impl FrameKind for kind::Index {
    fn column(name: &str, column: Vec<u64>, _: &[String]) -> PolarsResult<Column> {
        Ok(UInt64Chunked::from_vec(name.into(), column).into_column())
    }
}

/// `canonical_chunk`, from the table of canonical columns.
macro_rules! chunk_builder {
    (all [$($c:ident: $ck:ident,)*] $($by_origin:tt)*) => {
        /// One chunk of the canonical table from one batch, its columns built in parallel, in
        /// the table's order: the columns `kept` holds.
        fn canonical_chunk(b: CanonicalBatch, sources: &[String], kept: &Kept) -> PolarsResult<DataFrame> {
            type Build<'a> = Box<dyn FnOnce() -> PolarsResult<Column> + Send + 'a>;
            let height = b.len();
            let CanonicalBatch { $($c,)* } = b;
            let mut builders: Vec<Build<'_>> = Vec::new();
            $(if kept.$c {
                builders.push(Box::new(move || <kind::$ck as FrameKind>::column(stringify!($c), $c, sources)));
            })*
            let columns = builders.into_par_iter().map(|build| build()).collect::<PolarsResult<Vec<Column>>>()?;
            DataFrame::new(height, columns)
        }
    };
}
crate::schema::canonical_table!(chunk_builder);

/// One row per record digest (`dedupe::record_digests`): `__rec` its first row, `__n` its rows,
/// `__h` 64 bits of its content's hash (it tells apart versions of one key: the key's 128 bits
/// tell keys apart, and a record without an id is keyed by its content's 128 bits), `__id`
/// whether it has an id, `__k` / `__l` its key's hash (low and high halves), and its `revision`.
pub fn digests(d: &[crate::dedupe::Digest]) -> PolarsResult<DataFrame> {
    let u64s = |name: &str, f: fn(&crate::dedupe::Digest) -> u64| {
        UInt64Chunked::from_vec(name.into(), d.iter().map(f).collect()).into_column()
    };
    DataFrame::new_infer_height(vec![
        u64s("__rec", |d| d.first_row),
        UInt32Chunked::from_vec("__n".into(), d.iter().map(|d| d.rows).collect()).into_column(),
        u64s("__h", |d| d.content as u64),
        BooleanChunked::from_iter_values("__id".into(), d.iter().map(|d| d.has_id)).into_column(),
        u64s("__k", |d| d.key as u64),
        u64s("__l", |d| (d.key >> 64) as u64),
        Int64Chunked::from_iter_options("revision".into(), d.iter().map(|d| d.revision)).into_column(),
    ])
}

/// One row per rejected record.
pub fn rejected(out: &NormalizeOutput) -> PolarsResult<DataFrame> {
    let r = &out.rejects;
    DataFrame::new_infer_height(vec![
        strings("source", r.iter().map(|x| out.sources.get(x.source as usize).map(String::as_str))),
        UInt64Chunked::from_iter_values("source_index".into(), r.iter().map(|x| x.source_index)).into_column(),
        UInt64Chunked::from_iter_options("line".into(), r.iter().map(|x| x.line)).into_column(),
        strings("provider", r.iter().map(|x| x.provider)),
        strings("kind", r.iter().map(|x| Some(x.kind.name()))),
        strings("path", r.iter().map(|x| Some(x.path.as_str()))),
        strings("reason", r.iter().map(|x| Some(x.reason.as_str()))),
        strings("raw", r.iter().map(|x| Some(x.raw.as_str()))),
    ])
}

/// The per-source accounting.
pub fn stats(out: &NormalizeOutput) -> PolarsResult<DataFrame> {
    let s = &out.stats;
    let count = |name: &str, f: fn(&crate::SourceStats) -> u64| {
        UInt64Chunked::from_iter_values(name.into(), s.iter().map(f)).into_column()
    };
    DataFrame::new_infer_height(vec![
        strings("source", s.iter().map(|x| Some(x.source.as_str()))),
        strings("provider", s.iter().map(|x| x.provider)),
        count("records", |x| x.records),
        count("accepted", |x| x.accepted),
        count("rejected", |x| x.rejected),
        count("duplicates", |x| x.duplicates),
        count("superseded", |x| x.superseded),
        count("rows", |x| x.rows),
    ])
}

/// Every version of every conflicting record, with how it was resolved.
pub fn conflicts(out: &NormalizeOutput) -> PolarsResult<DataFrame> {
    let c = &out.conflicts;
    DataFrame::new_infer_height(vec![
        strings("provider", c.iter().map(|x| Some(x.provider))),
        strings("record_id", c.iter().map(|x| Some(x.record_id.as_str()))),
        strings("source", c.iter().map(|x| out.sources.get(x.source as usize).map(String::as_str))),
        UInt64Chunked::from_iter_values("source_index".into(), c.iter().map(|x| x.source_index)).into_column(),
        Int64Chunked::from_iter_options("revision".into(), c.iter().map(|x| x.revision)).into_column(),
        strings("resolution", c.iter().map(|x| Some(x.resolution))),
    ])
}

/// One row per (format, canonical column) with where the value comes from.
pub fn formats(registry: &Registry) -> PolarsResult<DataFrame> {
    let rows: Vec<_> = registry
        .iter()
        .flat_map(|p| p.info().mapping.iter().map(move |(col, from)| (p.info(), col.as_str(), from.as_str())))
        .collect();
    DataFrame::new_infer_height(vec![
        strings("provider", rows.iter().map(|r| Some(r.0.id))),
        strings("title", rows.iter().map(|r| Some(r.0.title.as_str()))),
        strings("api", rows.iter().map(|r| Some(r.0.api.as_str()))),
        strings("column", rows.iter().map(|r| Some(r.1))),
        strings("source_field", rows.iter().map(|r| Some(r.2))),
        strings("origin", rows.iter().map(|r| Some(r.0.origin.as_str()))),
        strings("focus_provider", rows.iter().map(|r| Some(r.0.focus.provider.as_str()))),
        strings("focus_service", rows.iter().map(|r| Some(r.0.focus.service.as_str()))),
        strings("focus_category", rows.iter().map(|r| Some(r.0.focus.category.as_str()))),
        strings("focus_subcategory", rows.iter().map(|r| Some(r.0.focus.subcategory.as_str()))),
        strings("focus_resource_type", rows.iter().map(|r| Some(r.0.focus.resource_type.as_str()))),
    ])
}

/// A numeric column made contiguous, with its validity as bools, to lend to the core.
pub struct Contiguous<T: PolarsNumericType> {
    ca: ChunkedArray<T>,
    valid: Option<Vec<bool>>,
}

impl<T: PolarsNumericType> Contiguous<T> {
    pub fn new(ca: &ChunkedArray<T>) -> Self {
        let ca = ca.rechunk().into_owned();
        let valid = ca.downcast_iter().next().and_then(|a| a.validity()).map(|b| b.iter().collect());
        Contiguous { ca, valid }
    }

    pub fn view(&self) -> Nullable<'_, T::Native> {
        let values = self.ca.downcast_iter().next().map(|a| a.values().as_slice()).unwrap_or(&[]);
        Nullable { values, valid: self.valid.as_deref() }
    }
}

/// The columns of a usage frame, held for the duration of one `aggregate` call.
pub struct UsageFrame {
    start: Contiguous<Int64Type>,
    end: Contiguous<Int64Type>,
    quantity: Contiguous<Float64Type>,
    cost: Contiguous<Int128Type>,
    billable: (Vec<bool>, Option<Vec<bool>>),
}

impl UsageFrame {
    /// The usage columns, each its own Series (so they never clash with group or match
    /// columns, whatever those are named): datetimes in µs UTC, f64, decimal(38, 9), bool, of
    /// one length.
    pub fn new(
        start: &Series,
        end: &Series,
        quantity: &Series,
        cost: &Series,
        billable: &Series,
    ) -> PolarsResult<UsageFrame> {
        let rows = start.len();
        if [end, quantity, cost, billable].iter().any(|s| s.len() != rows) {
            return Err(PolarsError::ShapeMismatch("the usage columns differ in length".into()));
        }
        let billable = billable.bool()?.rechunk().into_owned();
        let values = billable.downcast_iter().next().map(|a| a.values().iter().collect()).unwrap_or_default();
        let valid = billable.downcast_iter().next().and_then(|a| a.validity()).map(|b| b.iter().collect());
        Ok(UsageFrame {
            start: Contiguous::new(start.datetime()?.physical()),
            end: Contiguous::new(end.datetime()?.physical()),
            quantity: Contiguous::new(quantity.f64()?),
            cost: Contiguous::new(cost.decimal()?.physical()),
            billable: (values, valid),
        })
    }

    pub fn view(&self) -> UsageColumns<'_> {
        UsageColumns {
            usage_start: self.start.view(),
            usage_end: self.end.view(),
            quantity: self.quantity.view(),
            cost: self.cost.view(),
            billable: Some(Nullable { values: &self.billable.0, valid: self.billable.1.as_deref() }),
        }
    }
}

/// Encodes string columns of `df` as group keys.
pub fn key_columns(df: &DataFrame, names: &[String]) -> PolarsResult<Vec<KeyColumn>> {
    names.par_iter().map(|n| Ok(encode_key(n, df.column(n)?.str()?))).collect()
}

/// A string column as a `KeyColumn`, like `KeyColumn::encode` (codes in order of first
/// appearance) but reading Arrow's views: a value of at most 12 bytes lives in its view, so it
/// is looked up as one 128-bit number (length and bytes, padding masked off) without touching
/// any text; a longer one by its text.
fn encode_key(name: &str, ca: &StringChunked) -> KeyColumn {
    #[derive(Clone, Copy, PartialEq, Eq, Hash)]
    enum Key<'a> {
        Null,
        Short(u128),
        Long(&'a str),
    }
    let keys = ca.downcast_iter().flat_map(|array| {
        let validity = array.validity();
        array.views().iter().enumerate().map(move |(i, view)| {
            if validity.is_some_and(|v| !v.get_bit(i)) {
                (Key::Null, None)
            } else if view.length <= View::MAX_INLINE_SIZE {
                let bits = 32 + 8 * view.length;
                let short = if bits >= 128 { view.as_u128() } else { view.as_u128() & ((1u128 << bits) - 1) };
                (Key::Short(short), Some((array, i)))
            } else {
                (Key::Long(array.value(i)), Some((array, i)))
            }
        })
    });
    // The text of a key seen for the first time is read from its row.
    let at = std::cell::Cell::new(None);
    KeyColumn::from_keys(
        name,
        keys.map(|(k, row)| {
            at.set(row);
            k
        }),
        |k| (k != Key::Null).then(|| at.get().map(|(array, i)| array.value(i).to_owned())).flatten(),
    )
}

/// The aggregate result: bucket columns in `tz` (when bucketed), keys, sums, counts.
pub fn aggregated(out: &Aggregated, tz: &str, bucketed: bool) -> PolarsResult<DataFrame> {
    let mut columns = Vec::new();
    if bucketed {
        let zone = TimeZone::opt_try_new(Some(tz))?;
        for (name, values) in [("bucket_start", &out.bucket_start), ("bucket_end", &out.bucket_end)] {
            columns.push(
                Int64Chunked::from_vec(name.into(), values.clone())
                    .into_datetime(TimeUnit::Microseconds, zone.clone())
                    .into_column(),
            );
        }
    }
    for key in &out.keys {
        columns.push(strings(&key.name, (0..key.codes.len()).map(|r| key.get(r))));
    }
    columns.push(Float64Chunked::from_iter_options("quantity".into(), out.quantity.iter().copied()).into_column());
    columns.push(decimals("cost", out.cost.iter().copied())?);
    columns.push(UInt64Chunked::from_vec("records".into(), out.records.clone()).into_column());
    DataFrame::new_infer_height(columns)
}

/// A frame of text columns (the rate card), column by column.
pub fn text_columns(df: &DataFrame) -> PolarsResult<Vec<(String, Vec<Option<String>>)>> {
    df.columns()
        .iter()
        .map(|c| Ok((c.name().to_string(), c.str()?.iter().map(|v| v.map(str::to_owned)).collect())))
        .collect()
}

/// The prepared pricing columns, held for one `price` call.
pub struct PricingFrame {
    usage: UsageFrame,
    unit: KeyColumn,
    matches: Vec<KeyColumn>,
}

impl PricingFrame {
    /// Encodes the unit and the match columns of `matches` (named as `MATCH_COLUMNS`) the
    /// card uses; the others stay empty constants.
    pub fn new(usage: UsageFrame, unit: &Series, matches: &DataFrame, card: &RateCard) -> PolarsResult<PricingFrame> {
        let used = card.used_columns();
        let rows = unit.len();
        // The unit and the used match columns, encoded in parallel; the others are constants.
        let mut encoded = std::iter::once(("unit", None))
            .chain(MATCH_COLUMNS.iter().enumerate().map(|(k, name)| (*name, Some(used.contains(&k)))))
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|(name, used)| {
                Ok(match used {
                    None => encode_key(name, unit.str()?),
                    Some(true) => encode_key(name, matches.column(name)?.str()?),
                    Some(false) => KeyColumn::constant(name, None, rows),
                })
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        let unit = encoded.remove(0);
        Ok(PricingFrame { usage, unit, matches: encoded })
    }

    pub fn input(&self) -> PricingInput<'_> {
        let u = self.usage.view();
        PricingInput {
            usage_start: u.usage_start,
            usage_end: u.usage_end,
            quantity: u.quantity,
            cost: u.cost,
            billable: u.billable.unwrap_or(Nullable { values: &[], valid: None }),
            unit: &self.unit,
            matches: &self.matches,
        }
    }
}

/// The rate-card cost, unit price, currency and outcome of each row, each column built from
/// the core's vectors as they are (no value goes through an iterator of options).
pub fn priced(out: Priced) -> PolarsResult<DataFrame> {
    let Priced { cost, cost_valid, unit_price, unit_price_valid, currency, currencies, outcome, .. } = out;
    let len = outcome.len();
    let currencies: Vec<&str> = currencies.iter().map(String::as_str).collect();
    let currency = label_views("currency", &currencies, currency.into_iter(), Some(&cost_valid));
    let names: Vec<&str> = OUTCOMES.iter().map(|o| o.name()).collect();
    let outcome = label_views("outcome", &names, outcome.iter().map(|o| *o as u32), None);
    DataFrame::new_infer_height(vec![
        money_parts("cost", (cost, cost_valid, len))?,
        money_parts("unit_price", (unit_price, unit_price_valid, len))?,
        currency,
        outcome,
    ])
}

/// The bytes a frame's columns hold in memory: each buffer once (view arrays share their text
/// buffers, within a column and across chunks) plus the 16-byte views, which Polars'
/// `estimated_size` leaves out (it counts a view column as the total length of its values).
/// An all-null chunk counts nothing: Polars points it at one shared zeroed buffer (or, past
/// 8 MB, at zeroed pages never touched). The benchmark reports peak memory as interpreter +
/// this + working set.
pub fn frame_bytes(df: &DataFrame) -> usize {
    let mut seen = std::collections::HashSet::new();
    let mut bytes = 0;
    for column in df.columns() {
        for array in column.as_materialized_series().chunks() {
            if array.null_count() == array.len() {
                continue;
            }
            let validity = array.validity().map_or(0, |v| v.len().div_ceil(8));
            bytes += validity
                + match array.as_any().downcast_ref::<Utf8ViewArray>() {
                    Some(a) => {
                        let text =
                            a.data_buffers().iter().filter(|b| seen.insert(b.as_ptr() as usize)).map(|b| b.len());
                        a.len() * 16 + text.sum::<usize>()
                    }
                    None => polars_arrow::compute::aggregate::estimated_bytes_size(array.as_ref()) - validity,
                };
        }
    }
    bytes
}

/// The `tags` column of `df` in FOCUS's KeyValueFormat (`schema::tags::flat_for_focus`), in
/// parallel; a value that is not a JSON object is an error naming its row (1-based).
pub fn focus_tags(df: &DataFrame) -> crate::error::Result<DataFrame> {
    let polars = |e: PolarsError| crate::error::Error::Column(e.to_string());
    let ca = df.column("tags").and_then(|c| c.str()).map_err(polars)?;
    let values: Vec<Option<&str>> = ca.iter().collect();
    let flat: Vec<Option<String>> = values
        .par_iter()
        .enumerate()
        .map(|(i, v)| match v {
            None => Ok(None),
            Some(text) => crate::schema::tags::flat_for_focus(text)
                .map(Some)
                .ok_or_else(|| crate::error::Error::Column(format!("row {i}: tags is not a JSON object: {text:.60}"))),
        })
        .collect::<crate::error::Result<_>>()?;
    DataFrame::new_infer_height(vec![Column::new("tags".into(), flat)]).map_err(polars)
}
