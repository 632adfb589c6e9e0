//! The Python binding: the only module that sees pyo3 or pyo3-polars. Each function takes its
//! arguments, runs the core detached from the interpreter, and returns DataFrames.

mod dumps;
mod errors;
mod frame;

use std::sync::mpsc::RecvTimeoutError;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3_polars::error::PyPolarsErr;
use pyo3_polars::{PyDataFrame, PySeries};

use crate::aggregate::AggregateSpec;
use crate::normalize::{Input, NormalizeOptions};
use crate::pricing::{PricingOptions, RateCard};
use crate::providers::{ReadOptions, Registry};
use crate::schema::Kept;
use crate::time::Every;

/// Allocate with Polars' own allocator (jemalloc/mimalloc in the `polars` wheel): the frames we
/// hand over are large and short-lived, and the system allocator returns such blocks to the
/// kernel only to fault them in again (measured: a third of normalize's time in page clearing).
#[global_allocator]
static ALLOC: pyo3_polars::PolarsAllocator = pyo3_polars::PolarsAllocator::new();

type Frames = (PyDataFrame, PyDataFrame, PyDataFrame, PyDataFrame);

/// Runs `work` without the GIL on a worker thread, on a thread pool of the call's own
/// (`cancel::run`: fork-safe, cancelled on its own), while this thread watches for Ctrl-C: on a
/// signal the call's token is cancelled (the core checks it between chunks) and the signal's
/// exception is raised. A panic in the core becomes a `RuntimeError`, never an abort. The result
/// is handed over the moment it is ready (signals are looked at every 20 ms while waiting), so a
/// small call costs no more than its work.
fn interruptible<T: Send>(py: Python<'_>, work: impl FnOnce() -> PyResult<T> + Send) -> PyResult<T> {
    interruptible_with(py, None, work)
}

/// How often a progress callback is called while a call runs.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The call's progress as the dict a progress callback receives.
fn progress_dict<'py>(py: Python<'py>, s: &crate::Snapshot) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    let d = pyo3::types::PyDict::new(py);
    d.set_item("phase", s.phase.name())?;
    d.set_item("sources", s.sources)?;
    d.set_item("sources_total", s.sources_total)?;
    d.set_item("bytes", s.bytes)?;
    d.set_item("bytes_total", s.bytes_total)?;
    d.set_item("records", s.records)?;
    Ok(d)
}

/// `interruptible`, calling `progress` (if given) with the call's progress every 100 ms while
/// it runs and once when its work is done; an exception the callback raises stops the call
/// and is raised.
fn interruptible_with<T: Send>(
    py: Python<'_>,
    progress: Option<&Bound<'_, PyAny>>,
    work: impl FnOnce() -> PyResult<T> + Send,
) -> PyResult<T> {
    let panicked = || PyRuntimeError::new_err("usagenorm: internal error (panic)");
    let token = crate::cancel::Token::new();
    std::thread::scope(|scope| {
        let (done, mut result) = std::sync::mpsc::sync_channel(1);
        let worker_token = token.clone();
        let handle = scope.spawn(move || {
            let _ = done.send(crate::cancel::run(&worker_token, work).map_err(PyErr::from).and_then(|r| r));
        });
        let mut shown = std::time::Instant::now();
        loop {
            // The receiver goes into the GIL-free wait and comes back (it is not `Sync`).
            let received;
            (received, result) = py.detach(move || (result.recv_timeout(std::time::Duration::from_millis(20)), result));
            match received {
                Ok(out) => {
                    let _ = handle.join();
                    if let (Some(callback), Ok(_)) = (progress, &out) {
                        let mut last = token.progress();
                        last.phase = crate::Phase::Done;
                        callback.call1((progress_dict(py, &last)?,))?;
                    }
                    return out;
                }
                // The worker ended without a result: it panicked.
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = handle.join();
                    return Err(panicked());
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            let mut stop = py.check_signals().err();
            if let Some(callback) = progress.filter(|_| stop.is_none() && shown.elapsed() >= PROGRESS_EVERY) {
                shown = std::time::Instant::now();
                stop = progress_dict(py, &token.progress()).and_then(|d| callback.call1((d,))).err();
            }
            if let Some(signal) = stop {
                token.cancel();
                // Without the GIL: the worker may need it to build its own error on the way out.
                py.detach(|| {
                    let _ = handle.join();
                });
                return Err(signal);
            }
        }
    })
}

/// A compiled format file (`usagenorm.Format` wraps it).
#[pyclass(frozen, name = "CompiledFormat", module = "usagenorm._core")]
struct CompiledFormat(std::sync::Arc<crate::spec::Compiled>);

#[pymethods]
impl CompiledFormat {
    #[getter]
    fn id(&self) -> &'static str {
        crate::providers::FormatReader::id(&*self.0)
    }
    #[getter]
    fn title(&self) -> &str {
        &self.0.info.title
    }
    #[getter]
    fn origin(&self) -> &str {
        &self.0.info.origin
    }
}

/// Compiles a format file's text (`syntax` "toml", or "json" for a dict); raises `FormatError`.
#[pyfunction]
fn compile_format(text: &str, origin: &str, syntax: &str) -> PyResult<CompiledFormat> {
    let compiled = match syntax {
        "toml" => crate::spec::from_toml(text, origin)?,
        "json" => crate::spec::from_json(text, origin)?,
        other => {
            return Err(crate::Error::InvalidArgument(format!("syntax must be toml or json, not {other:?}")).into())
        }
    };
    Ok(CompiledFormat(std::sync::Arc::new(compiled)))
}

/// The built-in formats, with `replace` in place of the built-in formats of their ids (the
/// test of format files that re-express a built-in one), and `formats` after them (checked:
/// unique ids, no overlaps).
fn registry(formats: &[Bound<'_, CompiledFormat>], replace: &[Bound<'_, CompiledFormat>]) -> PyResult<Registry> {
    let mut registry = Registry::builtin();
    for f in replace {
        registry = registry.replaced(f.get().0.clone())?;
    }
    for f in formats {
        registry = registry.with(f.get().0.clone())?;
    }
    Ok(registry)
}

/// Normalizes sources: `(name, None)` is a file path, `(name, bytes)` in-memory text.
/// Returns `(records, rejected, stats, conflicts)`.
#[pyfunction]
#[pyo3(signature = (sources, /, *, provider=None, errors="raise", period=None, dedupe=true, formats=Vec::new(), replace=Vec::new(), progress=None, columns=None, digests=false))]
#[allow(clippy::too_many_arguments)]
fn normalize(
    py: Python<'_>,
    sources: Vec<(String, Option<PyBackedBytes>)>,
    provider: Option<String>,
    errors: &str,
    period: Option<&str>,
    dedupe: bool,
    formats: Vec<Bound<'_, CompiledFormat>>,
    replace: Vec<Bound<'_, CompiledFormat>>,
    progress: Option<Bound<'_, PyAny>>,
    columns: Option<Vec<String>>,
    digests: bool,
) -> PyResult<Frames> {
    let kept = match &columns {
        None => Kept::ALL,
        Some(names) => Kept::only(names).map_err(crate::Error::InvalidArgument)?,
    };
    let options = NormalizeOptions {
        provider,
        errors: errors.parse()?,
        read: ReadOptions { kept, ..ReadOptions::with_period(period)? },
        dedupe,
        formats: registry(&formats, &replace)?,
        digests,
    };
    let inputs: Vec<Input> = sources.iter().map(|(name, data)| Input::new(name, data.as_deref())).collect();
    let frames = interruptible_with(py, progress.as_ref(), || {
        let mut out = crate::normalize(&inputs, &options)?;
        crate::cancel::report(|p| p.set_phase(crate::Phase::Frame));
        let records = if digests { frame::digests(&out.digests) } else { frame::canonical(&mut out, &kept) };
        Ok((records, frame::rejected(&out), frame::stats(&out), frame::conflicts(&out)))
    })?;
    let pl = |r: polars::prelude::PolarsResult<_>| r.map(PyDataFrame).map_err(|e| PyErr::from(PyPolarsErr::from(e)));
    Ok((pl(frames.0)?, pl(frames.1)?, pl(frames.2)?, pl(frames.3)?))
}

/// Splits usage into calendar buckets and sums it per group, batch by batch (see
/// `usagenorm.aggregate`): `add` takes the usage columns as Series and the group columns as a
/// frame of text (`unit` among them), `finish` gives the result. An eager call is one `add`.
#[pyclass(frozen, name = "Aggregator", module = "usagenorm._core")]
struct Aggregator {
    /// `None` once finished.
    state: std::sync::Mutex<Option<crate::aggregate::Aggregator>>,
}

#[pymethods]
impl Aggregator {
    #[new]
    #[pyo3(signature = (keys, /, *, every, tz="UTC", start=None, end=None, as_of=None, billable_only=true))]
    fn new(
        keys: Vec<String>,
        every: Option<&str>,
        tz: &str,
        start: Option<i64>,
        end: Option<i64>,
        as_of: Option<i64>,
        billable_only: bool,
    ) -> PyResult<Self> {
        let every = every.map(Every::parse).transpose().map_err(crate::Error::InvalidArgument)?;
        let spec = AggregateSpec { every, tz: tz.to_string(), start, end, as_of, billable_only };
        let unit_key = keys.iter().position(|k| k == "unit");
        let state = crate::aggregate::Aggregator::new(spec, keys, unit_key)?;
        Ok(Aggregator { state: std::sync::Mutex::new(Some(state)) })
    }

    #[pyo3(signature = (usage_start, usage_end, quantity, cost, billable, keys, /))]
    #[allow(clippy::too_many_arguments)]
    fn add(
        &self,
        py: Python<'_>,
        usage_start: PySeries,
        usage_end: PySeries,
        quantity: PySeries,
        cost: PySeries,
        billable: PySeries,
        keys: PyDataFrame,
    ) -> PyResult<()> {
        interruptible(py, || {
            let usage = frame::UsageFrame::new(&usage_start.0, &usage_end.0, &quantity.0, &cost.0, &billable.0)
                .map_err(PyPolarsErr::from)?;
            let names: Vec<String> = keys.0.get_column_names().iter().map(|n| n.to_string()).collect();
            let key_columns = frame::key_columns(&keys.0, &names).map_err(PyPolarsErr::from)?;
            let mut state =
                self.state.lock().map_err(|_| crate::Error::InvalidArgument("the aggregator failed".into()))?;
            let state = state.as_mut().ok_or_else(|| crate::Error::InvalidArgument("finish() was called".into()))?;
            Ok(state.add(&usage.view(), &key_columns)?)
        })
    }

    /// The result and how many running records went whole into their start bucket.
    fn finish(&self, py: Python<'_>) -> PyResult<(PyDataFrame, u64)> {
        let state = self.state.lock().map(|mut s| s.take()).ok().flatten();
        let state = state.ok_or_else(|| crate::Error::InvalidArgument("finish() was called".into()))?;
        let (out, running) = interruptible(py, move || {
            let spec = state.spec().clone();
            let out = state.finish();
            Ok((
                frame::aggregated(&out, &spec.tz, spec.every.is_some()).map_err(PyPolarsErr::from)?,
                out.running_unsplit,
            ))
        })?;
        Ok((PyDataFrame(out), running))
    }
}

/// Validates a rate card given as text columns; raises `RateCardError` naming the row.
#[pyfunction]
fn check_rate_card(py: Python<'_>, card: PyDataFrame) -> PyResult<usize> {
    interruptible(py, || {
        let columns = frame::text_columns(&card.0).map_err(PyPolarsErr::from)?;
        RateCard::parse(&columns)?;
        Ok(columns.first().map_or(0, |c| c.1.len()))
    })
}

/// Prices usage (its columns as Series, the match columns as a frame of text) with a rate card
/// (text columns). Returns one row per usage row (cost, unit_price, currency, outcome) and the
/// card rows (from 1) that priced none.
#[pyfunction]
#[pyo3(signature = (usage_start, usage_end, quantity, cost, billable, unit, matches, card, /, *, overwrite=false, billable_only=true))]
#[allow(clippy::too_many_arguments)]
fn price(
    py: Python<'_>,
    usage_start: PySeries,
    usage_end: PySeries,
    quantity: PySeries,
    cost: PySeries,
    billable: PySeries,
    unit: PySeries,
    matches: PyDataFrame,
    card: PyDataFrame,
    overwrite: bool,
    billable_only: bool,
) -> PyResult<(PyDataFrame, Vec<usize>)> {
    let options = PricingOptions { overwrite, billable_only };
    let (out, unused) = interruptible(py, || {
        let card = RateCard::parse(&frame::text_columns(&card.0).map_err(PyPolarsErr::from)?)?;
        let usage = frame::UsageFrame::new(&usage_start.0, &usage_end.0, &quantity.0, &cost.0, &billable.0)
            .and_then(|u| frame::PricingFrame::new(u, &unit.0, &matches.0, &card))
            .map_err(PyPolarsErr::from)?;
        let mut priced = crate::pricing::price(&usage.input(), &card, options)?;
        let unused = std::mem::take(&mut priced.unused_rows);
        Ok((frame::priced(priced).map_err(PyPolarsErr::from)?, unused))
    })?;
    Ok((PyDataFrame(out), unused))
}

/// The bytes a frame's columns hold (text buffers once, views included), for the benchmark.
#[pyfunction]
fn _frame_bytes(py: Python<'_>, df: PyDataFrame) -> PyResult<usize> {
    interruptible(py, || Ok(frame::frame_bytes(&df.0)))
}

/// The formats usagenorm reads (built in, then `formats`) and how each maps onto the
/// canonical columns, with where each is defined and its FOCUS names.
#[pyfunction]
#[pyo3(signature = (formats=Vec::new(), replace=Vec::new()))]
fn formats(formats: Vec<Bound<'_, CompiledFormat>>, replace: Vec<Bound<'_, CompiledFormat>>) -> PyResult<PyDataFrame> {
    frame::formats(&registry(&formats, &replace)?).map(PyDataFrame).map_err(|e| PyPolarsErr::from(e).into())
}

/// The `tags` column of `df` (a frame with a String `tags`) as FOCUS Tags: nested values kept
/// as their JSON text.
#[pyfunction]
fn focus_tags(py: Python<'_>, df: PyDataFrame) -> PyResult<PyDataFrame> {
    Ok(PyDataFrame(interruptible(py, || Ok(frame::focus_tags(&df.0)?))?))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    m.add_function(wrap_pyfunction!(formats, m)?)?;
    m.add_function(wrap_pyfunction!(compile_format, m)?)?;
    m.add_class::<CompiledFormat>()?;
    m.add_function(wrap_pyfunction!(_frame_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(dumps::dumps, m)?)?;
    m.add_class::<Aggregator>()?;
    m.add_function(wrap_pyfunction!(check_rate_card, m)?)?;
    m.add_function(wrap_pyfunction!(price, m)?)?;
    m.add_function(wrap_pyfunction!(focus_tags, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MATCH_COLUMNS", crate::pricing::MATCH_COLUMNS.to_vec())?;
    Ok(())
}
