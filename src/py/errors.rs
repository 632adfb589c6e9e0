//! The one mapping from the core's `Error` to Python exceptions. The exception classes are
//! defined in `usagenorm/_errors.py` so they carry attributes (source, index, path, ...).

use pyo3::exceptions::{PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;
use pyo3::IntoPyObjectExt;

use crate::error::Error;

/// The exception classes of `usagenorm._errors`, looked up once per process.
#[derive(Clone, Copy)]
enum Class {
    Normalize,
    Column,
    RateCard,
    Format,
}

static CLASSES: [PyOnceLock<Py<PyAny>>; 4] =
    [PyOnceLock::new(), PyOnceLock::new(), PyOnceLock::new(), PyOnceLock::new()];

impl Class {
    fn get(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        let cell = &CLASSES[self as usize];
        if let Some(cls) = cell.get(py) {
            return Ok(cls.bind(py).clone());
        }
        let name = match self {
            Class::Normalize => "NormalizeError",
            Class::Column => "ColumnError",
            Class::RateCard => "RateCardError",
            Class::Format => "FormatError",
        };
        let cls = py.import("usagenorm._errors")?.getattr(name)?.unbind();
        Ok(cell.get_or_init(py, || cls).bind(py).clone())
    }
}

fn raise(py: Python<'_>, class: Class, message: String, attrs: &[(&str, Py<PyAny>)]) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let cls = class.get(py)?;
        let kwargs = PyDict::new(py);
        for (k, v) in attrs {
            kwargs.set_item(k, v)?;
        }
        Ok(PyErr::from_value(cls.call((message.clone(),), Some(&kwargs))?))
    };
    build().unwrap_or_else(|e| e)
}

fn any<'py>(py: Python<'py>, v: impl IntoPyObject<'py>) -> Py<PyAny> {
    v.into_py_any(py).unwrap_or_else(|_| py.None())
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        let message = err.to_string();
        Python::attach(|py| match err {
            Error::Record { source_name, index, line, provider, kind, path, reason } => raise(
                py,
                Class::Normalize,
                message,
                &[
                    ("source", any(py, source_name)),
                    ("index", any(py, index)),
                    ("line", any(py, line)),
                    ("provider", any(py, provider)),
                    ("kind", any(py, kind.name())),
                    ("path", any(py, path)),
                    ("reason", any(py, reason)),
                ],
            ),
            Error::Io { not_found: true, .. } => PyFileNotFoundError::new_err(message),
            Error::Io { .. } => PyOSError::new_err(message),
            Error::InvalidArgument(_) => PyValueError::new_err(message),
            Error::Cancelled => PyKeyboardInterrupt::new_err(message),
            Error::Column(_) => raise(py, Class::Column, message, &[]),
            Error::RateCard { row, usage_row, .. } => {
                raise(py, Class::RateCard, message, &[("row", any(py, row)), ("usage_row", any(py, usage_row))])
            }
            Error::Format { origin, key, .. } => {
                raise(py, Class::Format, message, &[("origin", any(py, origin)), ("key", any(py, key))])
            }
        })
    }
}
