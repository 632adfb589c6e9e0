//! The one mapping from the core's `Error` to Python exceptions. The exception classes are
//! defined in `usagenorm/_errors.py` so they carry attributes (source, index, path, ...).

use pyo3::exceptions::{PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::IntoPyObjectExt;

use crate::error::Error;

fn raise(py: Python<'_>, class: &str, message: String, attrs: &[(&str, Py<PyAny>)]) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let cls = py.import("usagenorm._errors")?.getattr(class)?;
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
                "NormalizeError",
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
            Error::Column(_) => raise(py, "ColumnError", message, &[]),
            Error::RateCard { row, .. } => raise(py, "RateCardError", message, &[("row", any(py, row))]),
        })
    }
}
