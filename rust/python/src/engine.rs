//! The one engine of the process: the core heap behind a lock, plus the identity tables that
//! give the same Python object for the same MDL, NET_BUFFER or NBL (`is` works like a pointer).
//!
//! Locking rules (they keep the binding free of deadlocks):
//! - no Python code runs while the lock is held (callbacks run between two lock sections);
//! - Python objects leaving the tables are dropped after the lock is released;
//! - long GIL-free work takes the lock inside `py.detach`, never the other way round.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use wfpsim_core::heap::SiteId;
use wfpsim_core::{Heap, MdlId, NbId, NblId};

use crate::objects::{Mdl, NetBuffer, NetBufferList};

pub struct Engine {
    pub heap: Heap,
    mdls: HashMap<u64, Py<Mdl>>,
    nbs: HashMap<u64, Py<NetBuffer>>,
    nbls: HashMap<u64, Py<NetBufferList>>,
    /// Python objects to drop once the lock is released.
    trash: Vec<Py<PyAny>>,
    pub track_sites: bool,
}

static ENGINE: LazyLock<Mutex<Engine>> = LazyLock::new(|| {
    Mutex::new(Engine {
        heap: Heap::new(),
        mdls: HashMap::new(),
        nbs: HashMap::new(),
        nbls: HashMap::new(),
        trash: Vec::new(),
        track_sites: true,
    })
});

fn lock() -> MutexGuard<'static, Engine> {
    // A panic inside a locked section is already reported to Python; the heap stays consistent
    // because every core operation validates before it mutates.
    ENGINE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` with the engine locked, then drops the Python objects it released.
pub fn with<R>(f: impl FnOnce(&mut Engine) -> R) -> R {
    let (out, trash) = {
        let mut e = lock();
        let out = f(&mut e);
        (out, std::mem::take(&mut e.trash))
    };
    drop(trash);
    out
}

/// Like `with`, but for long pure-Rust work: the GIL is released while it runs.
pub fn with_detached<R: Send>(py: Python<'_>, f: impl FnOnce(&mut Heap) -> R + Send) -> R {
    py.detach(|| {
        let mut e = lock();
        f(&mut e.heap)
    })
}

impl Engine {
    pub fn mdl_obj(&mut self, py: Python<'_>, id: MdlId) -> PyResult<Py<Mdl>> {
        if let Some(o) = self.mdls.get(&id.to_raw()) {
            return Ok(o.clone_ref(py));
        }
        let o = Py::new(py, Mdl { id })?;
        self.mdls.insert(id.to_raw(), o.clone_ref(py));
        Ok(o)
    }

    pub fn nb_obj(&mut self, py: Python<'_>, id: NbId) -> PyResult<Py<NetBuffer>> {
        if let Some(o) = self.nbs.get(&id.to_raw()) {
            return Ok(o.clone_ref(py));
        }
        let o = Py::new(py, NetBuffer { id })?;
        self.nbs.insert(id.to_raw(), o.clone_ref(py));
        Ok(o)
    }

    pub fn nbl_obj(&mut self, py: Python<'_>, id: NblId) -> PyResult<Py<NetBufferList>> {
        if let Some(o) = self.nbls.get(&id.to_raw()) {
            return Ok(o.clone_ref(py));
        }
        let o = Py::new(py, NetBufferList { id })?;
        self.nbls.insert(id.to_raw(), o.clone_ref(py));
        Ok(o)
    }

    /// Forgets the Python objects of everything the heap no longer holds (after a free that
    /// may have released several objects: an NBL with its NBs and MDLs).
    pub fn sweep(&mut self) {
        let heap = &self.heap;
        let trash = &mut self.trash;
        trash.extend(
            self.mdls
                .extract_if(|&raw, _| !heap.mdl_alive(MdlId::from_raw(raw)))
                .map(|(_, o)| o.into_any()),
        );
        trash.extend(
            self.nbs
                .extract_if(|&raw, _| !heap.nb_alive(NbId::from_raw(raw)))
                .map(|(_, o)| o.into_any()),
        );
        trash.extend(
            self.nbls
                .extract_if(|&raw, _| !heap.nbl_alive(NblId::from_raw(raw)))
                .map(|(_, o)| o.into_any()),
        );
    }

    /// Forgets the Python objects of specific freed handles (cheaper than a sweep).
    pub fn forget_nb(&mut self, id: NbId) {
        if let Some(o) = self.nbs.remove(&id.to_raw()) {
            self.trash.push(o.into_any());
        }
    }
    pub fn forget_mdl(&mut self, id: MdlId) {
        if let Some(o) = self.mdls.remove(&id.to_raw()) {
            self.trash.push(o.into_any());
        }
    }
}

/// The allocation site of the current Python caller, interned (0 when tracking is off).
pub fn caller_site(py: Python<'_>) -> SiteId {
    static CALLER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    if !with(|e| e.track_sites) {
        return 0;
    }
    let Ok(func) = CALLER.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py.import("wfpsim._sites")?.getattr("caller")?.unbind())
    }) else {
        return 0;
    };
    let Ok(site) = func.call0(py).and_then(|s| s.extract::<String>(py)) else {
        return 0;
    };
    with(|e| e.heap.intern_site(&site))
}
