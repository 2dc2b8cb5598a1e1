//! Python memory in and out: lending a caller's buffer to the engine (bytes, bytearray,
//! memoryview, numpy), and zero-copy views of packet memory that keep it alive.

use std::os::raw::c_int;
use std::sync::Arc;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyMemoryView;
use wfpsim_core::memory::Buffer;
use wfpsim_core::ErrorKind;

use crate::errors::raise;

/// Lends the memory of any C-contiguous byte buffer to the engine, zero-copy. The buffer
/// export is held until the last MDL or view over it is gone (so a bytearray cannot be resized
/// underneath). Read-only objects (bytes) give read-only packet memory unless `writable` is
/// required, which is then an error naming the rule.
pub fn lend(obj: &Bound<'_, PyAny>, require_writable: bool) -> PyResult<Arc<Buffer>> {
    let buf: PyBuffer<u8> = PyBuffer::get(obj).map_err(|_| {
        raise(
            ErrorKind::InvalidParameter,
            None,
            format!(
                "packet memory must be a C-contiguous buffer of bytes (bytes, bytearray, memoryview, numpy uint8), not {}",
                obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
            ),
        )
    })?;
    if !buf.is_c_contiguous() {
        return Err(raise(
            ErrorKind::InvalidParameter,
            None,
            "packet memory must be C-contiguous",
        ));
    }
    let readonly = buf.readonly();
    if readonly && require_writable {
        return Err(raise(
            ErrorKind::InvalidParameter,
            None,
            "NdisAllocateMdl needs writable memory (bytearray, writable memoryview, numpy array); bytes is immutable",
        ));
    }
    let ptr = buf.buf_ptr() as *mut u8;
    let len = buf.len_bytes();
    // SAFETY: the PyBuffer export pins the memory (no resize, no free) until it is released,
    // which happens when the Buffer (and so the keepalive) is dropped.
    Ok(unsafe { Buffer::lent(ptr, len, readonly, Box::new(buf)) })
}

/// Engine-owned copy of any bytes-like object, with `headroom` zero bytes in front.
pub fn copy_in(obj: &Bound<'_, PyAny>, headroom: usize) -> PyResult<(Arc<Buffer>, usize)> {
    let buf: PyBuffer<u8> = PyBuffer::get(obj).map_err(|_| {
        raise(
            ErrorKind::InvalidParameter,
            None,
            "expected a bytes-like object (bytes, bytearray, memoryview, numpy uint8)",
        )
    })?;
    let mut v = vec![0u8; headroom + buf.len_bytes()];
    buf.copy_to_slice(obj.py(), &mut v[headroom..])?;
    let len = buf.len_bytes();
    Ok((Buffer::owned(v), len))
}

/// A window of packet memory exporting the buffer protocol. It holds the memory alive, so a
/// `memoryview` of it never dangles, whatever is freed in the engine meanwhile.
#[pyclass(frozen, module = "wfpsim._core")]
pub struct PacketView {
    buffer: Arc<Buffer>,
    start: usize,
    len: usize,
}

#[pymethods]
impl PacketView {
    fn __len__(&self) -> usize {
        self.len
    }

    /// # Safety
    /// Called by CPython with a valid `Py_buffer` to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let me = slf.get();
        let readonly = me.buffer.is_readonly();
        if readonly && (flags & ffi::PyBUF_WRITABLE) != 0 {
            return Err(PyBufferError::new_err(
                "packet memory is read-only (lent from an immutable object)",
            ));
        }
        let ptr = if me.len == 0 {
            me.buffer.as_ptr()
        } else {
            me.buffer.as_ptr().add(me.start)
        };
        let rc = ffi::PyBuffer_FillInfo(
            view,
            slf.as_ptr(),
            ptr as *mut std::ffi::c_void,
            me.len as ffi::Py_ssize_t,
            readonly as c_int,
            flags,
        );
        if rc == -1 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}

/// A `memoryview` over `len` bytes of `buffer` at `start` (writable unless the memory is read-only).
pub fn memoryview<'py>(
    py: Python<'py>,
    buffer: Arc<Buffer>,
    start: usize,
    len: usize,
) -> PyResult<Bound<'py, PyMemoryView>> {
    let view = Bound::new(py, PacketView { buffer, start, len })?;
    PyMemoryView::from(&view.into_any())
}
