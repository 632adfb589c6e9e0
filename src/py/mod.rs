//! The Python binding: the only module that sees pyo3 or pyo3-polars. Each function takes its
//! arguments, runs the core detached from the interpreter, and returns DataFrames.

mod errors;
mod frame;

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3_polars::error::PyPolarsErr;
use pyo3_polars::PyDataFrame;

use crate::normalize::{Input, NormalizeOptions};
use crate::providers::ReadOptions;

type Frames = (PyDataFrame, PyDataFrame, PyDataFrame, PyDataFrame);

/// Normalizes sources: `(name, None)` is a file path, `(name, bytes)` in-memory text.
/// Returns `(records, rejected, stats, conflicts)`.
#[pyfunction]
#[pyo3(signature = (sources, /, *, provider=None, errors="raise", period=None, dedupe=true))]
fn normalize(
    py: Python<'_>,
    sources: Vec<(String, Option<PyBackedBytes>)>,
    provider: Option<String>,
    errors: &str,
    period: Option<&str>,
    dedupe: bool,
) -> PyResult<Frames> {
    let options =
        NormalizeOptions { provider, errors: errors.parse()?, read: ReadOptions::with_period(period)?, dedupe };
    let inputs: Vec<Input> = sources.iter().map(|(name, data)| Input::new(name, data.as_deref())).collect();
    let frames = py.detach(|| -> crate::Result<_> {
        let out = crate::normalize(&inputs, &options)?;
        Ok((frame::canonical(&out), frame::rejected(&out), frame::stats(&out), frame::conflicts(&out)))
    })?;
    let pl = |r: polars::prelude::PolarsResult<_>| r.map(PyDataFrame).map_err(|e| PyErr::from(PyPolarsErr::from(e)));
    Ok((pl(frames.0)?, pl(frames.1)?, pl(frames.2)?, pl(frames.3)?))
}

/// The formats usagenorm reads and how each maps onto the canonical columns.
#[pyfunction]
fn formats() -> PyResult<PyDataFrame> {
    frame::formats().map(PyDataFrame).map_err(|e| PyPolarsErr::from(e).into())
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    m.add_function(wrap_pyfunction!(formats, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
