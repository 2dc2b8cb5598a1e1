use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyMemoryView};
use wfpsim_core::{ErrorKind, MdlId};

use crate::engine::{self, caller_site};
use crate::errors::{raise, IntoPyResult};
use crate::memory;

/// An MDL: one virtually contiguous buffer (`nbl.md §2`). `Next` chains MDLs.
#[pyclass(frozen, weakref, dict, module = "wfpsim._core")]
pub struct Mdl {
    pub id: MdlId,
}

/// `sizeof(MDL)` on x64 (`nbl.md §2.1`), for the `Size` field.
const MDL_HEADER_SIZE: usize = 48;

#[pymethods]
impl Mdl {
    /// NdisAllocateMdl over `length` bytes (default: all) of a writable buffer, from `offset`.
    /// The memory is lent, not copied: writes through the MDL are seen in the buffer.
    #[staticmethod]
    #[pyo3(signature = (buffer, length=None, offset=0))]
    pub fn allocate(
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        length: Option<usize>,
        offset: usize,
    ) -> PyResult<Py<Mdl>> {
        let mem = memory::lend(buffer, true)?;
        let length = length.unwrap_or(mem.len().saturating_sub(offset));
        let site = caller_site(py);
        engine::with(|e| {
            let id = e.heap.alloc_mdl(mem, offset, length, site).py()?;
            e.mdl_obj(py, id)
        })
    }

    /// Engine-owned zeroed memory of `length` bytes behind a new MDL.
    #[staticmethod]
    pub fn zeroed(py: Python<'_>, length: usize) -> PyResult<Py<Mdl>> {
        let site = caller_site(py);
        engine::with(|e| {
            let id = e
                .heap
                .alloc_mdl(wfpsim_core::memory::Buffer::zeroed(length), 0, length, site)
                .py()?;
            e.mdl_obj(py, id)
        })
    }

    #[getter(Next)]
    fn next(&self, py: Python<'_>) -> PyResult<Option<Py<Mdl>>> {
        engine::with(|e| {
            let next = e.heap.mdl(self.id).py()?.next;
            next.map(|m| e.mdl_obj(py, m)).transpose()
        })
    }

    #[setter(Next)]
    fn set_next(&self, value: Option<&Bound<'_, Mdl>>) -> PyResult<()> {
        let next = value.map(|v| v.get().id);
        engine::with(|e| {
            if let Some(n) = next {
                e.heap.mdl(n).py()?;
            }
            e.heap.mdl_mut(self.id).py()?.next = next;
            Ok(())
        })
    }

    #[getter(ByteCount)]
    fn byte_count(&self) -> PyResult<u32> {
        engine::with(|e| Ok(e.heap.mdl(self.id).py()?.byte_count))
    }

    /// Drivers shorten an MDL in place (NdisAdjustMdlLength); it may not grow past its memory.
    #[setter(ByteCount)]
    fn set_byte_count(&self, value: u32) -> PyResult<()> {
        engine::with(|e| {
            let m = e.heap.mdl_mut(self.id).py()?;
            if m.start + value as usize > m.buffer.len() {
                return Err(raise(
                    ErrorKind::InvalidParameter,
                    None,
                    format!(
                        "ByteCount {value} exceeds the {} bytes of memory this MDL describes",
                        m.buffer.len() - m.start
                    ),
                ));
            }
            m.byte_count = value;
            Ok(())
        })
    }

    #[getter(MdlFlags)]
    fn mdl_flags(&self) -> PyResult<u16> {
        engine::with(|e| Ok(e.heap.mdl(self.id).py()?.flags))
    }

    /// The buffer's address (`MmGetSystemAddressForMdlSafe`): real, for alignment arithmetic.
    #[getter(MappedSystemVa)]
    fn mapped_system_va(&self) -> PyResult<usize> {
        engine::with(|e| {
            let m = e.heap.mdl(self.id).py()?;
            Ok(m.buffer.addr() + m.start)
        })
    }

    #[getter(StartVa)]
    fn start_va(&self) -> PyResult<usize> {
        Ok(self.mapped_system_va()? & !0xFFF)
    }

    #[getter(ByteOffset)]
    fn byte_offset(&self) -> PyResult<usize> {
        Ok(self.mapped_system_va()? & 0xFFF)
    }

    /// `sizeof(MDL)` plus one PFN entry per page spanned.
    #[getter(Size)]
    fn size(&self) -> PyResult<usize> {
        let va = self.mapped_system_va()?;
        let len = self.byte_count()? as usize;
        let pages = ((va & 0xFFF) + len).div_ceil(4096);
        Ok(MDL_HEADER_SIZE + pages * 8)
    }

    /// The bytes the MDL describes, as a zero-copy `memoryview` (writable unless lent read-only).
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyMemoryView>> {
        let (buf, start, len) = engine::with(|e| e.heap.mdl_region(self.id)).py()?;
        memory::memoryview(py, buf, start, len)
    }

    fn tobytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        engine::with(|e| Ok(PyBytes::new(py, e.heap.mdl_bytes(self.id).py()?)))
    }

    /// NdisFreeMdl: frees the MDL, never the memory.
    fn free(&self) -> PyResult<()> {
        engine::with(|e| {
            e.heap.free_mdl(self.id).py()?;
            e.forget_mdl(self.id);
            Ok(())
        })
    }

    /// The raw handle (stable while the MDL lives; like a pointer value).
    #[getter]
    fn handle(&self) -> u64 {
        self.id.to_raw()
    }

    #[getter]
    fn alive(&self) -> bool {
        engine::with(|e| e.heap.mdl_alive(self.id))
    }

    fn __repr__(&self) -> String {
        engine::with(|e| match e.heap.mdl(self.id) {
            Ok(m) => format!(
                "<MDL {:#x} ByteCount={} {:?}>",
                self.id.to_raw(),
                m.byte_count,
                m.origin
            ),
            Err(_) => format!("<MDL {:#x} (freed)>", self.id.to_raw()),
        })
    }
}
