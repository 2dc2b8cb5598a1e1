//! Engine errors → the exception classes of `wfpsim.errors`, with `.status` set.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use wfpsim_core::{Error, ErrorKind};

fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::UseAfterFree => "UseAfterFreeError",
        ErrorKind::DoubleFree => "DoubleFreeError",
        ErrorKind::InvalidParameter => "InvalidParameterError",
        ErrorKind::InvalidState => "InvalidStateError",
        ErrorKind::Resources => "ResourcesError",
        ErrorKind::Malformed => "MalformedPacketError",
        ErrorKind::Contract => "ContractViolation",
        ErrorKind::Io => "CaptureError",
    }
}

/// The class `wfpsim.errors.<name>`.
pub fn error_class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let m = MODULE.get_or_try_init(py, || -> PyResult<Py<PyModule>> {
        Ok(py.import("wfpsim.errors")?.unbind())
    })?;
    Ok(m.bind(py).getattr(name)?.cast_into::<PyType>()?)
}

/// Builds the Python exception for an engine error.
pub fn to_py(e: Error) -> PyErr {
    Python::attach(|py| match error_class(py, class_name(e.kind)) {
        Ok(cls) => PyErr::from_type(cls, (e.message, e.status)),
        Err(err) => err,
    })
}

/// `?`-friendly conversion: `heap.op().map_err(to_py)?` is spelled `heap.op().py()?`.
pub trait IntoPyResult<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, Error> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// An error of a given class raised from the binding itself (argument conversion and the like).
pub fn raise(kind: ErrorKind, status: Option<u32>, message: impl Into<String>) -> PyErr {
    to_py(Error::new(kind, status, message))
}
