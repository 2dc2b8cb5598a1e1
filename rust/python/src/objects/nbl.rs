use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyMemoryView, PyTuple};
use wfpsim_core::heap::{NblKind, MAX_NET_BUFFER_LIST_INFO};
use wfpsim_core::status::STATUS_INVALID_PARAMETER;
use wfpsim_core::{ErrorKind, NbId, NblId};

use super::nb::{advance_one, retreat_one};
use super::{Chain, Mdl, NetBuffer, Pool};
use crate::engine::{self, caller_site};
use crate::errors::{raise, IntoPyResult};
use crate::memory;

/// A NET_BUFFER_LIST: a list of packets (NBs) sharing out-of-band information (`nbl.md §4`).
#[pyclass(frozen, weakref, dict, module = "wfpsim._core")]
pub struct NetBufferList {
    pub id: NblId,
}

fn check_slot(index: usize) -> PyResult<()> {
    if index >= MAX_NET_BUFFER_LIST_INFO {
        return Err(raise(
            ErrorKind::InvalidParameter,
            Some(STATUS_INVALID_PARAMETER),
            format!("NetBufferListInfo index {index} is outside 0..{MAX_NET_BUFFER_LIST_INFO} (MaxNetBufferListInfo)"),
        ));
    }
    Ok(())
}

impl NetBufferList {
    fn nbs(&self) -> PyResult<Vec<NbId>> {
        engine::with(|e| e.heap.nbs_of(self.id).map(|v| v.to_vec())).py()
    }

    /// Frees with the function its kind needs, and forgets the Python objects that went with it.
    pub fn free_any(id: NblId) -> PyResult<()> {
        engine::with(|e| {
            let r = match e.heap.nbl(id) {
                Ok(n) => match n.kind {
                    NblKind::Plain => e.heap.free_nbl(id),
                    NblKind::WfpClone => e.heap.free_clone(id, 0, true),
                    NblKind::NdisClone { flags } => e.heap.free_clone(id, flags, false),
                },
                Err(_) => e.heap.free_nbl(id),
            };
            e.sweep();
            r
        })
        .py()
    }
}

#[pymethods]
impl NetBufferList {
    // ---- construction ----

    /// A one-packet NBL holding a copy of `data`, with `backfill` bytes of headroom in front
    /// (so a later retreat by up to `backfill` allocates nothing).
    #[staticmethod]
    #[pyo3(signature = (data, backfill=0))]
    pub fn from_bytes(
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        backfill: u32,
    ) -> PyResult<Py<NetBufferList>> {
        let (mem, len) = memory::copy_in(data, backfill as usize)?;
        let site = caller_site(py);
        engine::with(|e| {
            let id = e
                .heap
                .nbl_over(mem, 0, backfill as usize + len, backfill, site)
                .py()?;
            e.nbl_obj(py, id)
        })
    }

    /// A one-packet NBL over the caller's memory, zero-copy (`offset`/`length` select a window;
    /// bytes before `offset` are headroom a retreat may use).
    #[staticmethod]
    #[pyo3(signature = (buffer, offset=0, length=None))]
    fn from_buffer(
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        offset: u32,
        length: Option<usize>,
    ) -> PyResult<Py<NetBufferList>> {
        let mem = memory::lend(buffer, false)?;
        let total = mem.len();
        let end = match length {
            Some(l) => offset as usize + l,
            None => total,
        };
        if end > total || offset as usize > total {
            return Err(raise(
                ErrorKind::InvalidParameter,
                None,
                format!("window {offset}..{end} exceeds the {total}-byte buffer"),
            ));
        }
        let site = caller_site(py);
        engine::with(|e| {
            let id = e.heap.nbl_over(mem, 0, end, offset, site).py()?;
            e.nbl_obj(py, id)
        })
    }

    /// An NBL of several NBs: each item is a NetBuffer (linked as is; its owner frees it) or a
    /// bytes-like object (copied into an NB that belongs to the NBL).
    #[staticmethod]
    fn from_buffers(py: Python<'_>, items: &Bound<'_, PyAny>) -> PyResult<Py<NetBufferList>> {
        let site = caller_site(py);
        let nbl = engine::with(|e| e.heap.alloc_nbl(None, 0, 0, site)).py()?;
        let built = (|| -> PyResult<()> {
            for item in items.try_iter()? {
                let item = item?;
                if let Ok(nb) = item.cast::<NetBuffer>() {
                    let id = nb.get().id;
                    engine::with(|e| -> PyResult<()> {
                        e.heap.nb(id).py()?;
                        match e.heap.nbs_of(nbl).py()?.last() {
                            Some(&l) => e.heap.nb_mut(l).py()?.next = Some(id),
                            None => e.heap.nbl_mut(nbl).py()?.first_nb = Some(id),
                        }
                        Ok(())
                    })?;
                } else {
                    let (mem, len) = memory::copy_in(&item, 0)?;
                    engine::with(|e| e.heap.append_owned_nb(nbl, mem, 0, len, 0, site)).py()?;
                }
            }
            Ok(())
        })();
        if let Err(err) = built {
            let _ = engine::with(|e| {
                if let Ok(n) = e.heap.nbl_mut(nbl) {
                    n.first_nb = None;
                }
                e.heap.free_nbl(nbl)
            });
            return Err(err);
        }
        engine::with(|e| e.nbl_obj(py, nbl))
    }

    /// NdisAllocateNetBufferList(PoolHandle, ContextSize, ContextBackFill).
    #[staticmethod]
    #[pyo3(signature = (pool=None, context_size=0, context_backfill=0))]
    fn allocate(
        py: Python<'_>,
        pool: Option<&Bound<'_, Pool>>,
        context_size: u16,
        context_backfill: u16,
    ) -> PyResult<Py<NetBufferList>> {
        let site = caller_site(py);
        engine::with(|e| {
            let id = e
                .heap
                .alloc_nbl(
                    pool.map(|p| p.get().id),
                    context_size,
                    context_backfill,
                    site,
                )
                .py()?;
            e.nbl_obj(py, id)
        })
    }

    /// NdisAllocateNetBufferAndNetBufferList / FwpsAllocateNetBufferAndNetBufferList0.
    #[staticmethod]
    #[pyo3(signature = (mdl_chain=None, data_offset=0, data_length=0, pool=None, context_size=0, context_backfill=0))]
    fn allocate_with_net_buffer(
        py: Python<'_>,
        mdl_chain: Option<&Bound<'_, Mdl>>,
        data_offset: u32,
        data_length: u64,
        pool: Option<&Bound<'_, Pool>>,
        context_size: u16,
        context_backfill: u16,
    ) -> PyResult<Py<NetBufferList>> {
        let site = caller_site(py);
        engine::with(|e| {
            let id = e
                .heap
                .alloc_nbl_and_nb(
                    pool.map(|p| p.get().id),
                    context_size,
                    context_backfill,
                    mdl_chain.map(|m| m.get().id),
                    data_offset,
                    data_length,
                    site,
                )
                .py()?;
            e.nbl_obj(py, id)
        })
    }

    // ---- WDK fields ----

    #[getter(Next)]
    fn next(&self, py: Python<'_>) -> PyResult<Option<Py<NetBufferList>>> {
        engine::with(|e| {
            let n = e.heap.nbl(self.id).py()?.next;
            n.map(|x| e.nbl_obj(py, x)).transpose()
        })
    }

    #[setter(Next)]
    fn set_next(&self, value: Option<&Bound<'_, NetBufferList>>) -> PyResult<()> {
        let next = value.map(|v| v.get().id);
        engine::with(|e| {
            if let Some(n) = next {
                e.heap.nbl(n).py()?;
            }
            e.heap.nbl_mut(self.id).py()?.next = next;
            Ok(())
        })
    }

    #[getter(FirstNetBuffer)]
    fn first_net_buffer(&self, py: Python<'_>) -> PyResult<Option<Py<NetBuffer>>> {
        engine::with(|e| {
            let n = e.heap.nbl(self.id).py()?.first_nb;
            n.map(|x| e.nb_obj(py, x)).transpose()
        })
    }

    #[setter(FirstNetBuffer)]
    fn set_first_net_buffer(&self, value: Option<&Bound<'_, NetBuffer>>) -> PyResult<()> {
        let nb = value.map(|v| v.get().id);
        engine::with(|e| {
            if let Some(n) = nb {
                e.heap.nb(n).py()?;
            }
            e.heap.nbl_mut(self.id).py()?.first_nb = nb;
            Ok(())
        })
    }

    #[getter(ParentNetBufferList)]
    fn parent(&self, py: Python<'_>) -> PyResult<Option<Py<NetBufferList>>> {
        engine::with(|e| {
            let n = e.heap.nbl(self.id).py()?.parent;
            n.filter(|p| e.heap.nbl_alive(*p))
                .map(|x| e.nbl_obj(py, x))
                .transpose()
        })
    }

    /// Drivers maintain Parent/ChildRefCount themselves around NdisAllocateCloneNetBufferList.
    #[setter(ParentNetBufferList)]
    fn set_parent(&self, value: Option<&Bound<'_, NetBufferList>>) -> PyResult<()> {
        let p = value.map(|v| v.get().id);
        engine::with(|e| e.heap.nbl_mut(self.id).map(|n| n.parent = p)).py()
    }

    #[getter(ChildRefCount)]
    fn child_ref_count(&self) -> PyResult<i32> {
        engine::with(|e| e.heap.nbl(self.id).map(|n| n.child_ref_count)).py()
    }

    #[setter(ChildRefCount)]
    fn set_child_ref_count(&self, value: i32) -> PyResult<()> {
        engine::with(|e| e.heap.nbl_mut(self.id).map(|n| n.child_ref_count = value)).py()
    }

    /// The completion status (an unsigned 32-bit NTSTATUS / NDIS_STATUS).
    #[getter(Status)]
    fn status(&self) -> PyResult<u32> {
        engine::with(|e| e.heap.nbl(self.id).map(|n| n.status)).py()
    }

    #[setter(Status)]
    fn set_status(&self, value: i64) -> PyResult<()> {
        if !(-0x8000_0000..=0xFFFF_FFFF).contains(&value) {
            return Err(raise(
                ErrorKind::InvalidParameter,
                None,
                format!("Status {value:#x} is not a 32-bit status"),
            ));
        }
        engine::with(|e| e.heap.nbl_mut(self.id).map(|n| n.status = value as u32)).py()
    }

    #[getter(NblFlags)]
    fn nbl_flags(&self) -> PyResult<u32> {
        engine::with(|e| e.heap.nbl(self.id).map(|n| n.nbl_flags)).py()
    }

    #[setter(NblFlags)]
    fn set_nbl_flags(&self, value: u32) -> PyResult<()> {
        engine::with(|e| e.heap.nbl_mut(self.id).map(|n| n.nbl_flags = value)).py()
    }

    #[getter(Flags)]
    fn flags(&self) -> PyResult<u32> {
        engine::with(|e| e.heap.nbl(self.id).map(|n| n.flags)).py()
    }

    #[setter(Flags)]
    fn set_flags(&self, value: u32) -> PyResult<()> {
        engine::with(|e| e.heap.nbl_mut(self.id).map(|n| n.flags = value)).py()
    }

    /// `NET_BUFFER_LIST_INFO(nbl, index)`: the pointer-sized value of an OOB slot.
    fn get_info(&self, index: usize) -> PyResult<usize> {
        check_slot(index)?;
        engine::with(|e| e.heap.nbl(self.id).map(|n| n.info.get(index))).py()
    }

    fn set_info(&self, index: usize, value: usize) -> PyResult<()> {
        check_slot(index)?;
        engine::with(|e| e.heap.nbl_mut(self.id).map(|n| n.info.set(index, value))).py()
    }

    /// All OOB slots as a tuple (a copy).
    #[getter(NetBufferListInfo)]
    fn info_tuple<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let info = engine::with(|e| e.heap.nbl(self.id).map(|n| n.info.all())).py()?;
        PyTuple::new(py, info)
    }

    // ---- context ----

    /// `NET_BUFFER_LIST_CONTEXT_DATA_START`: the used context as a writable view, or None.
    #[getter]
    fn context<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyMemoryView>>> {
        match engine::with(|e| e.heap.context_region(self.id)).py()? {
            Some((b, s, n, _)) => Ok(Some(memory::memoryview(py, b, s, n)?)),
            None => Ok(None),
        }
    }

    /// `NET_BUFFER_LIST_CONTEXT_DATA_SIZE`: the head block's Size (used + unused), 0 without context.
    #[getter]
    fn context_size(&self) -> PyResult<u16> {
        Ok(engine::with(|e| e.heap.context_region(self.id))
            .py()?
            .map(|r| r.3)
            .unwrap_or(0))
    }

    /// NdisAllocateNetBufferListContext.
    #[pyo3(signature = (size, backfill=0))]
    fn alloc_context(&self, size: u16, backfill: u16) -> PyResult<()> {
        engine::with(|e| e.heap.alloc_context(self.id, size, backfill)).py()
    }

    /// NdisFreeNetBufferListContext.
    fn free_context(&self, size: u16) -> PyResult<()> {
        engine::with(|e| e.heap.free_context(self.id, size)).py()
    }

    // ---- Pythonic access ----

    /// The NBs, in order.
    #[getter]
    fn net_buffers(&self, py: Python<'_>) -> PyResult<Vec<Py<NetBuffer>>> {
        let ids = self.nbs()?;
        engine::with(|e| ids.into_iter().map(|n| e.nb_obj(py, n)).collect())
    }

    /// The first NB's data as a zero-copy view (see `NetBuffer.data`).
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let first = self
            .first_net_buffer(py)?
            .ok_or_else(|| raise(ErrorKind::InvalidState, None, "this NBL has no NET_BUFFER"))?;
        first.bind(py).getattr("data")
    }

    /// Every NB's data, concatenated (a copy).
    fn tobytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let data = engine::with(|e| -> wfpsim_core::Result<Vec<u8>> {
            let mut out = Vec::new();
            for nb in e.heap.nbs_of(self.id)? {
                out.extend(e.heap.nb_bytes(nb)?);
            }
            Ok(out)
        })
        .py()?;
        Ok(PyBytes::new(py, &data))
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.tobytes(py)
    }

    /// Retreat every NB (NdisRetreatNetBufferListDataStart); unchanged on failure.
    #[pyo3(signature = (delta, backfill=0, allocate=None, free=None))]
    fn retreat(
        &self,
        py: Python<'_>,
        delta: u32,
        backfill: u32,
        allocate: Option<&Bound<'_, PyAny>>,
        free: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        if allocate.is_none() {
            return engine::with(|e| e.heap.retreat_nbl(self.id, delta, backfill)).py();
        }
        let nbs = self.nbs()?;
        for (i, &nb) in nbs.iter().enumerate() {
            if let Err(err) = retreat_one(nb, delta, backfill, allocate) {
                for &done in &nbs[..i] {
                    let _ = advance_one(py, done, delta, true, free);
                }
                return Err(err);
            }
        }
        Ok(())
    }

    /// Advance every NB (NdisAdvanceNetBufferListDataStart).
    #[pyo3(signature = (delta, free_mdl=false, free=None))]
    fn advance(
        &self,
        py: Python<'_>,
        delta: u32,
        free_mdl: bool,
        free: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        if free.is_none() {
            return engine::with(|e| {
                let r = e.heap.advance_nbl(self.id, delta, free_mdl);
                e.sweep();
                r
            })
            .py();
        }
        for nb in self.nbs()? {
            advance_one(py, nb, delta, free_mdl, free)?;
        }
        Ok(())
    }

    /// A clone sharing this NBL's memory. `wfp=True` (default) is FwpsAllocateCloneNetBufferList0:
    /// the clone's ParentNetBufferList is this NBL and ChildRefCount rises. `wfp=False` is
    /// NdisAllocateCloneNetBufferList with `flags`; `copy_info` also copies the OOB slots.
    #[pyo3(signature = (wfp=true, flags=0, copy_info=false))]
    fn clone(
        &self,
        py: Python<'_>,
        wfp: bool,
        flags: u32,
        copy_info: bool,
    ) -> PyResult<Py<NetBufferList>> {
        let site = caller_site(py);
        engine::with(|e| {
            let id = e
                .heap
                .clone_nbl(self.id, flags, wfp, copy_info, site)
                .py()?;
            e.nbl_obj(py, id)
        })
    }

    /// One single-NB clone per NB, linked by `Next` (raw sends need one NB per NBL).
    fn split(&self, py: Python<'_>) -> PyResult<Chain> {
        let site = caller_site(py);
        let parts = engine::with(|e| e.heap.split_nbl(self.id, site)).py()?;
        Ok(Chain {
            head: parts.first().copied(),
        })
    }

    /// The chain that starts at this NBL (walks `Next`).
    fn chain(&self) -> Chain {
        Chain {
            head: Some(self.id),
        }
    }

    /// FwpsReferenceNetBufferList0.
    #[pyo3(signature = (intend_to_modify=false))]
    fn reference(&self, intend_to_modify: bool) -> PyResult<()> {
        engine::with(|e| e.heap.reference(self.id, intend_to_modify)).py()
    }

    /// FwpsDereferenceNetBufferList0.
    fn dereference(&self) -> PyResult<()> {
        engine::with(|e| e.heap.dereference(self.id)).py()
    }

    #[getter]
    fn references(&self) -> PyResult<u32> {
        engine::with(|e| e.heap.nbl(self.id).map(|n| n.wfp_refs)).py()
    }

    #[getter]
    fn intend_to_modify(&self) -> PyResult<bool> {
        engine::with(|e| e.heap.nbl(self.id).map(|n| n.intend_to_modify)).py()
    }

    /// "plain", "wfp_clone" or "ndis_clone": which free function this NBL needs.
    #[getter]
    fn kind(&self) -> PyResult<&'static str> {
        engine::with(|e| {
            e.heap.nbl(self.id).map(|n| match n.kind {
                NblKind::Plain => "plain",
                NblKind::WfpClone => "wfp_clone",
                NblKind::NdisClone { .. } => "ndis_clone",
            })
        })
        .py()
    }

    /// Frees with the right function for its kind (plain free, or the clone free).
    fn free(&self) -> PyResult<()> {
        Self::free_any(self.id)
    }

    /// The clone free with explicit flags: `wfp=True` is FwpsFreeCloneNetBufferList0 (flags must
    /// be 0), `wfp=False` is NdisFreeCloneNetBufferList (flags must equal the allocation's).
    #[pyo3(signature = (flags=0, wfp=true))]
    fn free_clone(&self, flags: u32, wfp: bool) -> PyResult<()> {
        engine::with(|e| {
            let r = e.heap.free_clone(self.id, flags, wfp);
            e.sweep();
            r
        })
        .py()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Leaving a `with` block frees the NBL unless it was already freed.
    fn __exit__(
        &self,
        _t: Option<Bound<'_, PyAny>>,
        _v: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if engine::with(|e| e.heap.nbl_alive(self.id)) {
            Self::free_any(self.id)?;
        }
        Ok(false)
    }

    // ---- replay metadata ----

    #[getter]
    fn timestamp_ns(&self) -> PyResult<i64> {
        engine::with(|e| e.heap.nbl(self.id).map(|n| n.meta.ts_ns)).py()
    }
    #[setter]
    fn set_timestamp_ns(&self, v: i64) -> PyResult<()> {
        engine::with(|e| e.heap.nbl_mut(self.id).map(|n| n.meta.ts_ns = v)).py()
    }
    #[getter]
    fn orig_len(&self) -> PyResult<u32> {
        engine::with(|e| e.heap.nbl(self.id).map(|n| n.meta.orig_len)).py()
    }
    #[setter]
    fn set_orig_len(&self, v: u32) -> PyResult<()> {
        engine::with(|e| e.heap.nbl_mut(self.id).map(|n| n.meta.orig_len = v)).py()
    }
    #[getter]
    fn link_type(&self) -> PyResult<u32> {
        engine::with(|e| e.heap.nbl(self.id).map(|n| n.meta.link_type)).py()
    }
    #[setter]
    fn set_link_type(&self, v: u32) -> PyResult<()> {
        engine::with(|e| e.heap.nbl_mut(self.id).map(|n| n.meta.link_type = v)).py()
    }

    #[getter]
    fn handle(&self) -> u64 {
        self.id.to_raw()
    }

    #[getter]
    fn alive(&self) -> bool {
        engine::with(|e| e.heap.nbl_alive(self.id))
    }

    fn __repr__(&self) -> String {
        engine::with(|e| match e.heap.nbl(self.id) {
            Ok(n) => format!(
                "<NET_BUFFER_LIST {:#x} {:?} NBs={} Status={:#010x}>",
                self.id.to_raw(),
                n.kind,
                e.heap.nb_count(self.id).unwrap_or(0),
                n.status
            ),
            Err(_) => format!("<NET_BUFFER_LIST {:#x} (freed)>", self.id.to_raw()),
        })
    }
}
