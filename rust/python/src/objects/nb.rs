use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyMemoryView};
use wfpsim_core::heap::{DataBuffer, MdlOrigin, RetreatNeed};
use wfpsim_core::status::NDIS_STATUS_RESOURCES;
use wfpsim_core::{ErrorKind, MdlId, NbId};

use super::{Mdl, Pool};
use crate::engine::{self, caller_site};
use crate::errors::{raise, IntoPyResult};
use crate::memory;

/// A NET_BUFFER: one packet, a window (DataOffset, DataLength) over its MDL chain (`nbl.md §3`).
#[pyclass(frozen, weakref, dict, module = "wfpsim._core")]
pub struct NetBuffer {
    pub id: NbId,
}

/// NdisRetreatNetBufferDataStart for one NB; `allocate` is the optional AllocateMdlHandler,
/// called (outside the engine lock) with the requested size; it returns an MDL or None.
pub fn retreat_one(
    id: NbId,
    delta: u32,
    backfill: u32,
    allocate: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let Some(handler) = allocate else {
        return engine::with(|e| e.heap.retreat(id, delta, backfill)).py();
    };
    let need = engine::with(|e| e.heap.retreat_check(id, delta, backfill)).py()?;
    let front = match need {
        RetreatNeed::InPlace => None,
        RetreatNeed::Allocate { request, .. } => {
            let got = handler.call1((request,))?;
            if got.is_none() {
                return Err(raise(
                    ErrorKind::Resources,
                    Some(NDIS_STATUS_RESOURCES),
                    format!("the AllocateMdlHandler returned NULL for {request} bytes"),
                ));
            }
            let mdl = got.cast::<Mdl>().map_err(|_| {
                raise(
                    ErrorKind::InvalidParameter,
                    None,
                    "the AllocateMdlHandler must return an MDL or None",
                )
            })?;
            Some((mdl.get().id, MdlOrigin::RetreatHandler))
        }
    };
    engine::with(|e| e.heap.retreat_apply(id, delta, backfill, front)).py()
}

/// NdisAdvanceNetBufferDataStart for one NB; MDLs made by an AllocateMdlHandler are handed to
/// `free` (the FreeMdlHandler) after the engine has unlinked them.
pub fn advance_one(
    py: Python<'_>,
    id: NbId,
    delta: u32,
    free_mdl: bool,
    free: Option<&Bound<'_, PyAny>>,
) -> PyResult<()> {
    let handed: Vec<MdlId> = engine::with(|e| {
        let r = e.heap.advance(id, delta, free_mdl, free.is_some());
        if free_mdl {
            e.sweep();
        }
        r
    })
    .py()?;
    if let Some(handler) = free {
        for m in handed {
            let obj = engine::with(|e| e.mdl_obj(py, m))?;
            handler.call1((obj,))?;
        }
    }
    Ok(())
}

fn mdl_opt(py: Python<'_>, id: Option<MdlId>) -> PyResult<Option<Py<Mdl>>> {
    engine::with(|e| id.map(|m| e.mdl_obj(py, m)).transpose())
}

#[pymethods]
impl NetBuffer {
    /// NdisAllocateNetBuffer(PoolHandle, MdlChain, DataOffset, DataLength).
    #[staticmethod]
    #[pyo3(signature = (mdl_chain=None, data_offset=0, data_length=0, pool=None))]
    fn allocate(
        py: Python<'_>,
        mdl_chain: Option<&Bound<'_, Mdl>>,
        data_offset: u32,
        data_length: u64,
        pool: Option<&Bound<'_, Pool>>,
    ) -> PyResult<Py<NetBuffer>> {
        let site = caller_site(py);
        engine::with(|e| {
            let id = e
                .heap
                .alloc_nb(
                    pool.map(|p| p.get().id),
                    mdl_chain.map(|m| m.get().id),
                    data_offset,
                    data_length,
                    site,
                )
                .py()?;
            e.nb_obj(py, id)
        })
    }

    /// NdisAllocateNetBufferMdlAndData(PoolHandle): an NB with its own zeroed data of the pool's DataSize.
    #[staticmethod]
    fn allocate_mdl_and_data(py: Python<'_>, pool: &Bound<'_, Pool>) -> PyResult<Py<NetBuffer>> {
        let site = caller_site(py);
        engine::with(|e| {
            let id = e.heap.alloc_nb_mdl_and_data(pool.get().id, site).py()?;
            e.nb_obj(py, id)
        })
    }

    #[getter(Next)]
    fn next(&self, py: Python<'_>) -> PyResult<Option<Py<NetBuffer>>> {
        engine::with(|e| {
            let n = e.heap.nb(self.id).py()?.next;
            n.map(|x| e.nb_obj(py, x)).transpose()
        })
    }

    #[setter(Next)]
    fn set_next(&self, value: Option<&Bound<'_, NetBuffer>>) -> PyResult<()> {
        let next = value.map(|v| v.get().id);
        engine::with(|e| {
            if let Some(n) = next {
                e.heap.nb(n).py()?;
            }
            e.heap.nb_mut(self.id).py()?.next = next;
            Ok(())
        })
    }

    #[getter(MdlChain)]
    fn mdl_chain(&self, py: Python<'_>) -> PyResult<Option<Py<Mdl>>> {
        let id = engine::with(|e| e.heap.nb(self.id).map(|n| n.mdl_chain)).py()?;
        mdl_opt(py, id)
    }

    #[setter(MdlChain)]
    fn set_mdl_chain(&self, value: Option<&Bound<'_, Mdl>>) -> PyResult<()> {
        let m = value.map(|v| v.get().id);
        engine::with(|e| {
            e.heap.nb_mut(self.id).py()?.mdl_chain = m;
            Ok(())
        })
    }

    #[getter(CurrentMdl)]
    fn current_mdl(&self, py: Python<'_>) -> PyResult<Option<Py<Mdl>>> {
        let id = engine::with(|e| e.heap.nb(self.id).map(|n| n.current_mdl)).py()?;
        mdl_opt(py, id)
    }

    #[setter(CurrentMdl)]
    fn set_current_mdl(&self, value: Option<&Bound<'_, Mdl>>) -> PyResult<()> {
        let m = value.map(|v| v.get().id);
        engine::with(|e| {
            e.heap.nb_mut(self.id).py()?.current_mdl = m;
            Ok(())
        })
    }

    #[getter(CurrentMdlOffset)]
    fn current_mdl_offset(&self) -> PyResult<u32> {
        engine::with(|e| e.heap.nb(self.id).map(|n| n.current_mdl_offset)).py()
    }

    #[setter(CurrentMdlOffset)]
    fn set_current_mdl_offset(&self, value: u32) -> PyResult<()> {
        engine::with(|e| e.heap.nb_mut(self.id).map(|n| n.current_mdl_offset = value)).py()
    }

    #[getter(DataOffset)]
    fn data_offset(&self) -> PyResult<u32> {
        engine::with(|e| e.heap.nb(self.id).map(|n| n.data_offset)).py()
    }

    /// Setting DataOffset does not move CurrentMdl: call NdisAdjustNetBufferCurrentMdl, as in C.
    #[setter(DataOffset)]
    fn set_data_offset(&self, value: u32) -> PyResult<()> {
        engine::with(|e| e.heap.nb_mut(self.id).map(|n| n.data_offset = value)).py()
    }

    #[getter(DataLength)]
    fn data_length(&self) -> PyResult<u64> {
        engine::with(|e| e.heap.nb(self.id).map(|n| n.data_length)).py()
    }

    #[setter(DataLength)]
    fn set_data_length(&self, value: u64) -> PyResult<()> {
        engine::with(|e| e.heap.nb_mut(self.id).map(|n| n.data_length = value)).py()
    }

    #[getter(ChecksumBias)]
    fn checksum_bias(&self) -> PyResult<u16> {
        engine::with(|e| e.heap.nb(self.id).map(|n| n.checksum_bias)).py()
    }

    #[setter(ChecksumBias)]
    fn set_checksum_bias(&self, value: u16) -> PyResult<()> {
        engine::with(|e| e.heap.nb_mut(self.id).map(|n| n.checksum_bias = value)).py()
    }

    /// Retreat the data start by `delta` bytes (NdisRetreatNetBufferDataStart); raises on failure.
    #[pyo3(signature = (delta, backfill=0, allocate=None))]
    fn retreat(
        &self,
        delta: u32,
        backfill: u32,
        allocate: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        retreat_one(self.id, delta, backfill, allocate)
    }

    /// Advance the data start by `delta` bytes (NdisAdvanceNetBufferDataStart).
    #[pyo3(signature = (delta, free_mdl=false, free=None))]
    fn advance(
        &self,
        py: Python<'_>,
        delta: u32,
        free_mdl: bool,
        free: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        advance_one(py, self.id, delta, free_mdl, free)
    }

    /// NdisAdjustNetBufferCurrentMdl.
    fn adjust_current_mdl(&self) -> PyResult<()> {
        engine::with(|e| e.heap.adjust_current_mdl(self.id)).py()
    }

    /// Checks the NB's invariants I1–I4 (`nbl.md §3.2`); raises naming the one broken.
    fn validate(&self) -> PyResult<()> {
        engine::with(|e| e.heap.validate_nb(self.id)).py()
    }

    /// The used data as one zero-copy writable `memoryview`, when it lies in one MDL.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyMemoryView>> {
        let region = engine::with(|e| -> PyResult<_> {
            e.heap.validate_nb(self.id).py()?;
            let nb = e.heap.nb(self.id).py()?;
            let len = nb.data_length as usize;
            let Some(cur) = nb.current_mdl else {
                return Ok((wfpsim_core::memory::Buffer::owned(Vec::new()), 0, 0));
            };
            let m = e.heap.mdl(cur).py()?;
            let avail = (m.byte_count - nb.current_mdl_offset) as usize;
            if len > avail {
                return Err(raise(
                    ErrorKind::InvalidState,
                    None,
                    format!("the data ({len} bytes) spans several MDLs, so no single view exists; use nb.views() or nb.tobytes()"),
                ));
            }
            Ok((
                m.buffer.clone(),
                m.start + nb.current_mdl_offset as usize,
                len,
            ))
        })?;
        memory::memoryview(py, region.0, region.1, region.2)
    }

    /// The used data as zero-copy `memoryview`s, one per MDL piece.
    fn views<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let pieces = engine::with(|e| -> PyResult<Vec<_>> {
            e.heap.validate_nb(self.id).py()?;
            let nb = e.heap.nb(self.id).py()?;
            let mut left = nb.data_length as usize;
            let mut skip = nb.current_mdl_offset as usize;
            let mut out = Vec::new();
            for m in e.heap.mdl_chain(nb.current_mdl).py()? {
                if left == 0 {
                    break;
                }
                let mdl = e.heap.mdl(m).py()?;
                let n = (mdl.byte_count as usize - skip).min(left);
                if n > 0 {
                    out.push((mdl.buffer.clone(), mdl.start + skip, n));
                }
                left -= n;
                skip = 0;
            }
            Ok(out)
        })?;
        let list = PyList::empty(py);
        for (b, s, n) in pieces {
            list.append(memory::memoryview(py, b, s, n)?)?;
        }
        Ok(list)
    }

    /// The used data, copied.
    fn tobytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let v = engine::with(|e| e.heap.nb_bytes(self.id)).py()?;
        Ok(PyBytes::new(py, &v))
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.tobytes(py)
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.data_length()? as usize)
    }

    /// NdisGetDataBuffer: a writable view into the packet when the first `bytes_needed` bytes are
    /// contiguous and aligned; else a copy into `storage` (returned, the same object); else None.
    #[pyo3(signature = (bytes_needed, storage=None, align_multiple=1, align_offset=0))]
    fn get_data_buffer<'py>(
        &self,
        py: Python<'py>,
        bytes_needed: u32,
        storage: Option<Bound<'py, PyAny>>,
        align_multiple: u32,
        align_offset: u32,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let outcome = engine::with(|e| -> PyResult<_> {
            Ok(
                match e
                    .heap
                    .get_data_buffer(self.id, bytes_needed, align_multiple, align_offset)
                    .py()?
                {
                    DataBuffer::Direct { mdl, offset } => {
                        let m = e.heap.mdl(mdl).py()?;
                        Some((m.buffer.clone(), m.start + offset as usize))
                    }
                    _ => None,
                },
            )
        })?;
        if let Some((buf, start)) = outcome {
            return Ok(Some(
                memory::memoryview(py, buf, start, bytes_needed as usize)?.into_any(),
            ));
        }
        let enough = engine::with(|e| {
            e.heap
                .nb(self.id)
                .map(|n| n.data_length >= bytes_needed as u64)
        })
        .py()?;
        let Some(storage) = storage else {
            return Ok(None);
        };
        if bytes_needed == 0 || !enough {
            return Ok(None);
        }
        let mem = memory::lend(&storage, true)?;
        if mem.len() < bytes_needed as usize {
            return Err(raise(
                ErrorKind::InvalidParameter,
                None,
                format!(
                    "Storage holds {} bytes; BytesNeeded is {bytes_needed}",
                    mem.len()
                ),
            ));
        }
        let out = mem.slice_mut(0, bytes_needed as usize).py()?;
        engine::with(|e| e.heap.copy_out(self.id, 0, out)).py()?;
        Ok(Some(storage))
    }

    /// NdisCopyFromNetBufferToNetBuffer into this NB: returns the bytes copied (may be fewer).
    #[pyo3(signature = (source, bytes_to_copy, destination_offset=0, source_offset=0))]
    fn copy_from(
        &self,
        source: &Bound<'_, NetBuffer>,
        bytes_to_copy: u32,
        destination_offset: u32,
        source_offset: u32,
    ) -> PyResult<u32> {
        let src = source.get().id;
        engine::with(|e| {
            e.heap.copy_nb_to_nb(
                self.id,
                destination_offset,
                bytes_to_copy,
                src,
                source_offset,
            )
        })
        .py()
    }

    /// The MDLs of the chain, in order.
    fn mdls(&self, py: Python<'_>) -> PyResult<Vec<Py<Mdl>>> {
        engine::with(|e| {
            let first = e.heap.nb(self.id).py()?.mdl_chain;
            let ids = e.heap.mdl_chain(first).py()?;
            ids.into_iter().map(|m| e.mdl_obj(py, m)).collect()
        })
    }

    /// NdisFreeNetBuffer (for NBs from NetBuffer.allocate).
    fn free(&self) -> PyResult<()> {
        engine::with(|e| {
            e.heap.free_nb(self.id).py()?;
            e.forget_nb(self.id);
            e.sweep();
            Ok(())
        })
    }

    #[getter]
    fn handle(&self) -> u64 {
        self.id.to_raw()
    }

    #[getter]
    fn alive(&self) -> bool {
        engine::with(|e| e.heap.nb_alive(self.id))
    }

    fn __repr__(&self) -> String {
        engine::with(|e| match e.heap.nb(self.id) {
            Ok(n) => format!(
                "<NET_BUFFER {:#x} DataOffset={} DataLength={}>",
                self.id.to_raw(),
                n.data_offset,
                n.data_length
            ),
            Err(_) => format!("<NET_BUFFER {:#x} (freed)>", self.id.to_raw()),
        })
    }
}
