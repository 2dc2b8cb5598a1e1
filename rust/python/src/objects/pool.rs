use pyo3::prelude::*;
use wfpsim_core::heap::{Pool as CorePool, PoolId};

use crate::engine;
use crate::errors::IntoPyResult;

/// An NDIS pool handle (NdisAllocateNetBufferListPool / NdisAllocateNetBufferPool).
#[pyclass(frozen, module = "wfpsim._core")]
pub struct Pool {
    pub id: PoolId,
}

#[pymethods]
impl Pool {
    /// A NET_BUFFER_LIST pool (`NET_BUFFER_LIST_POOL_PARAMETERS`).
    #[staticmethod]
    #[pyo3(signature = (protocol_id=0, allocate_net_buffer=true, context_size=0, data_size=0, tag=0))]
    fn net_buffer_list(
        protocol_id: u8,
        allocate_net_buffer: bool,
        context_size: u16,
        data_size: u32,
        tag: u32,
    ) -> PyResult<Pool> {
        let p = CorePool::NetBufferList {
            protocol_id,
            allocate_net_buffer,
            context_size,
            data_size,
            tag,
        };
        engine::with(|e| e.heap.alloc_pool(p))
            .py()
            .map(|id| Pool { id })
    }

    /// A NET_BUFFER pool (`NET_BUFFER_POOL_PARAMETERS`).
    #[staticmethod]
    #[pyo3(signature = (data_size=0, tag=0))]
    fn net_buffer(data_size: u32, tag: u32) -> PyResult<Pool> {
        engine::with(|e| e.heap.alloc_pool(CorePool::NetBuffer { data_size, tag }))
            .py()
            .map(|id| Pool { id })
    }

    /// NdisFreeNetBufferListPool / NdisFreeNetBufferPool: only when nothing from it is allocated.
    fn free(&self) -> PyResult<()> {
        engine::with(|e| e.heap.free_pool(self.id)).py()
    }

    #[getter]
    fn protocol_id(&self) -> PyResult<u8> {
        engine::with(|e| match e.heap.pool(self.id)? {
            CorePool::NetBufferList { protocol_id, .. } => Ok(protocol_id),
            CorePool::NetBuffer { .. } => Ok(0),
        })
        .py()
    }

    #[getter]
    fn tag(&self) -> PyResult<u32> {
        engine::with(|e| match e.heap.pool(self.id)? {
            CorePool::NetBufferList { tag, .. } | CorePool::NetBuffer { tag, .. } => Ok(tag),
        })
        .py()
    }

    #[getter]
    fn handle(&self) -> u64 {
        self.id.to_raw()
    }

    fn __repr__(&self) -> String {
        engine::with(|e| {
            format!(
                "<Pool {:#x} {:?}>",
                self.id.to_raw(),
                e.heap.pool(self.id).ok()
            )
        })
    }
}
