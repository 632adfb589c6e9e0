//! Conversions between the core's columnar output and Polars DataFrames. Runs detached from
//! the interpreter; only the finished DataFrame crosses into Python.

use polars::prelude::*;
use rayon::prelude::*;

use crate::aggregate::{Aggregated, KeyColumn, Nullable, UsageColumns};
use crate::normalize::NormalizeOutput;
use crate::pricing::{Priced, PricingInput, RateCard, MATCH_COLUMNS};
use crate::providers::REGISTRY;
use crate::schema::{CanonicalBatch, StrColumn};

fn strings<'a>(name: &str, it: impl Iterator<Item = Option<&'a str>>) -> Column {
    StringChunked::from_iter_options(name.into(), it).into_column()
}

fn utc_datetimes(name: &str, it: impl Iterator<Item = Option<i64>>) -> Column {
    Int64Chunked::from_iter_options(name.into(), it)
        .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        .into_column()
}

fn decimals(name: &str, it: impl Iterator<Item = Option<i128>>) -> PolarsResult<Column> {
    Ok(Int128Chunked::from_iter_options(name.into(), it).into_decimal(38, crate::money::SCALE as usize)?.into_column())
}

/// The canonical table, in the column order of `schema::COLUMNS`. Columns are built in
/// parallel (each is an independent copy out of the batches).
pub fn canonical(out: &NormalizeOutput) -> PolarsResult<DataFrame> {
    type Build<'a> = Box<dyn Fn() -> PolarsResult<Column> + Send + Sync + 'a>;
    let b = &out.batches;
    let s = |name: &'static str, col: fn(&CanonicalBatch) -> &StrColumn| -> Build<'_> {
        Box::new(move || Ok(strings(name, b.iter().flat_map(move |x| col(x).iter()))))
    };
    let builders: Vec<Build<'_>> = vec![
        Box::new(|| Ok(strings("provider", b.iter().flat_map(|x| x.provider.iter().map(|p| Some(*p)))))),
        s("record_id", |x| &x.record_id),
        s("account_id", |x| &x.account_id),
        s("customer_id", |x| &x.customer_id),
        s("project_id", |x| &x.project_id),
        s("user_id", |x| &x.user_id),
        s("resource_id", |x| &x.resource_id),
        s("resource_name", |x| &x.resource_name),
        s("resource_type", |x| &x.resource_type),
        s("metric", |x| &x.metric),
        s("sku", |x| &x.sku),
        Box::new(|| Ok(strings("charge_type", b.iter().flat_map(|x| x.charge_type.iter().map(|c| Some(*c)))))),
        Box::new(|| Ok(utc_datetimes("usage_start", b.iter().flat_map(|x| x.usage_start.iter().map(|t| Some(*t)))))),
        Box::new(|| Ok(utc_datetimes("usage_end", b.iter().flat_map(|x| x.usage_end.iter().copied())))),
        Box::new(|| {
            Ok(Float64Chunked::from_iter_options("quantity".into(), b.iter().flat_map(|x| x.quantity.iter().copied()))
                .into_column())
        }),
        s("unit", |x| &x.unit),
        Box::new(|| decimals("cost", b.iter().flat_map(|x| x.cost.iter().map(|c| c.map(|d| d.0))))),
        Box::new(|| decimals("unit_price", b.iter().flat_map(|x| x.unit_price.iter().map(|c| c.map(|d| d.0))))),
        s("currency", |x| &x.currency),
        s("status", |x| &x.status),
        Box::new(|| {
            Ok(BooleanChunked::from_iter_values("billable".into(), b.iter().flat_map(|x| x.billable.iter().copied()))
                .into_column())
        }),
        s("tags", |x| &x.tags),
        Box::new(|| {
            let names =
                b.iter().flat_map(|x| x.source.iter().map(|i| out.sources.get(*i as usize).map(String::as_str)));
            Ok(strings("source", names))
        }),
        Box::new(|| {
            let idx = b.iter().flat_map(|x| x.source_index.iter().copied());
            Ok(UInt64Chunked::from_iter_values("source_index".into(), idx).into_column())
        }),
    ];
    let columns = builders.par_iter().map(|build| build()).collect::<PolarsResult<Vec<Column>>>()?;
    DataFrame::new_infer_height(columns)
}

/// One row per rejected record.
pub fn rejected(out: &NormalizeOutput) -> PolarsResult<DataFrame> {
    let r = &out.rejects;
    DataFrame::new_infer_height(vec![
        strings("source", r.iter().map(|x| out.sources.get(x.source as usize).map(String::as_str))),
        UInt64Chunked::from_iter_values("source_index".into(), r.iter().map(|x| x.source_index)).into_column(),
        UInt64Chunked::from_iter_options("line".into(), r.iter().map(|x| x.line)).into_column(),
        strings("provider", r.iter().map(|x| x.provider)),
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
pub fn formats() -> PolarsResult<DataFrame> {
    let rows: Vec<_> =
        REGISTRY.iter().flat_map(|p| p.info().mapping.iter().map(move |(col, from)| (p.info(), *col, *from))).collect();
    DataFrame::new_infer_height(vec![
        strings("provider", rows.iter().map(|r| Some(r.0.id))),
        strings("title", rows.iter().map(|r| Some(r.0.title))),
        strings("api", rows.iter().map(|r| Some(r.0.api))),
        strings("column", rows.iter().map(|r| Some(r.1))),
        strings("source_field", rows.iter().map(|r| Some(r.2))),
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
    /// Reads the columns the Python wrapper prepared (named `__usage_start`, ... so they never
    /// clash with group columns): datetimes in µs UTC, f64, decimal(38, 9), bool.
    pub fn new(df: &DataFrame) -> PolarsResult<UsageFrame> {
        let billable = df.column("__billable")?.bool()?.rechunk().into_owned();
        let values = billable.downcast_iter().next().map(|a| a.values().iter().collect()).unwrap_or_default();
        let valid = billable.downcast_iter().next().and_then(|a| a.validity()).map(|b| b.iter().collect());
        Ok(UsageFrame {
            start: Contiguous::new(df.column("__usage_start")?.datetime()?.physical()),
            end: Contiguous::new(df.column("__usage_end")?.datetime()?.physical()),
            quantity: Contiguous::new(df.column("__quantity")?.f64()?),
            cost: Contiguous::new(df.column("__cost")?.decimal()?.physical()),
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
    names.par_iter().map(|n| Ok(KeyColumn::encode(n, df.column(n)?.str()?.iter()))).collect()
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
    /// Encodes the unit and the match columns the card uses; the others stay empty constants.
    pub fn new(df: &DataFrame, card: &RateCard) -> PolarsResult<PricingFrame> {
        let used = card.used_columns();
        let rows = df.height();
        let matches = MATCH_COLUMNS
            .iter()
            .enumerate()
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|(k, name)| {
                Ok(if used.contains(&k) {
                    KeyColumn::encode(name, df.column(name)?.str()?.iter())
                } else {
                    KeyColumn::constant(name, None, rows)
                })
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        Ok(PricingFrame {
            usage: UsageFrame::new(df)?,
            unit: KeyColumn::encode("unit", df.column("__unit")?.str()?.iter()),
            matches,
        })
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

/// The rate-card cost, unit price, currency and outcome of each row.
pub fn priced(out: &Priced) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        decimals("cost", out.cost.iter().copied())?,
        decimals("unit_price", out.unit_price.iter().copied())?,
        strings("currency", out.currency.iter().map(|c| c.map(|i| out.currencies[i as usize].as_str()))),
        strings("outcome", out.outcome.iter().map(|o| Some(o.name()))),
    ])
}
