use numpy::{PyArray1, PyArrayMethods};
use pyo3::buffer::{Element, PyBuffer};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use wfpsim_core::heap::PacketMeta;
use wfpsim_core::{ErrorKind, NblId};

use super::NetBufferList;
use crate::engine::{self, caller_site};
use crate::errors::{raise, IntoPyResult};
use crate::memory;

/// A chain of NBLs linked by `Next`, handled in one call per operation (the batch face).
/// It is a view from its head: relinking `Next` from Python changes what it walks.
#[pyclass(frozen, module = "wfpsim._core")]
pub struct Chain {
    pub head: Option<NblId>,
}

/// Reads an integer array from any buffer (numpy int64/uint64/int32/uint32) or a sequence.
fn int_array(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u64>> {
    fn via<T: Element + Copy + TryInto<u64>>(obj: &Bound<'_, PyAny>) -> Option<PyResult<Vec<u64>>> {
        let buf = PyBuffer::<T>::get(obj).ok()?;
        let v = match buf.to_vec(obj.py()) {
            Ok(v) => v,
            Err(e) => return Some(Err(e)),
        };
        Some(
            v.into_iter()
                .map(|x| {
                    x.try_into().map_err(|_| {
                        raise(
                            ErrorKind::InvalidParameter,
                            None,
                            "negative offset or length",
                        )
                    })
                })
                .collect(),
        )
    }
    if let Some(r) = via::<u64>(obj)
        .or_else(|| via::<i64>(obj))
        .or_else(|| via::<u32>(obj))
        .or_else(|| via::<i32>(obj))
    {
        return r;
    }
    obj.extract::<Vec<u64>>().map_err(|_| {
        raise(
            ErrorKind::InvalidParameter,
            None,
            format!("{what} must be an integer array or sequence of non-negative ints"),
        )
    })
}

#[pymethods]
impl Chain {
    /// Builds one NBL per packet over `buffer[offsets[i] : offsets[i] + lengths[i]]`, zero-copy
    /// (or over a private copy with `copy=True`). Without `lengths`, each packet runs to the
    /// next offset (the last to the end of the buffer).
    #[staticmethod]
    #[pyo3(signature = (buffer, offsets, lengths=None, copy=false))]
    fn from_buffer(
        py: Python<'_>,
        buffer: &Bound<'_, PyAny>,
        offsets: &Bound<'_, PyAny>,
        lengths: Option<&Bound<'_, PyAny>>,
        copy: bool,
    ) -> PyResult<Chain> {
        let mem = if copy {
            memory::copy_in(buffer, 0)?.0
        } else {
            memory::lend(buffer, false)?
        };
        let offs = int_array(offsets, "offsets")?;
        let lens: Vec<u32> = match lengths {
            Some(l) => int_array(l, "lengths")?
                .into_iter()
                .map(|x| {
                    u32::try_from(x).map_err(|_| {
                        raise(ErrorKind::InvalidParameter, None, "a length exceeds ULONG")
                    })
                })
                .collect::<PyResult<_>>()?,
            None => {
                let mut v = Vec::with_capacity(offs.len());
                for (i, &o) in offs.iter().enumerate() {
                    let end = offs.get(i + 1).copied().unwrap_or(mem.len() as u64);
                    let len = end.checked_sub(o).ok_or_else(|| {
                        raise(
                            ErrorKind::InvalidParameter,
                            None,
                            "offsets must ascend when lengths are omitted",
                        )
                    })?;
                    v.push(u32::try_from(len).map_err(|_| {
                        raise(ErrorKind::InvalidParameter, None, "a packet exceeds ULONG")
                    })?);
                }
                v
            }
        };
        let site = caller_site(py);
        let nbls = engine::with(|e| e.heap.build_chain(&mem, &offs, &lens, None, site)).py()?;
        Ok(Chain {
            head: nbls.first().copied(),
        })
    }

    /// Builds a chain of copies of each bytes-like item (one NBL per item).
    #[staticmethod]
    fn from_packets(py: Python<'_>, packets: &Bound<'_, PyAny>) -> PyResult<Chain> {
        let mut data = Vec::new();
        let mut offs = Vec::new();
        let mut lens = Vec::new();
        for p in packets.try_iter()? {
            let p = p?;
            let buf = PyBuffer::<u8>::get(&p)?;
            offs.push(data.len() as u64);
            lens.push(
                u32::try_from(buf.len_bytes())
                    .map_err(|_| raise(ErrorKind::InvalidParameter, None, "packet too large"))?,
            );
            let start = data.len();
            data.resize(start + buf.len_bytes(), 0);
            buf.copy_to_slice(py, &mut data[start..])?;
        }
        let mem = wfpsim_core::memory::Buffer::owned(data);
        let site = caller_site(py);
        let nbls = engine::with(|e| {
            e.heap
                .build_chain(&mem, &offs, &lens, None::<&[PacketMeta]>, site)
        })
        .py()?;
        Ok(Chain {
            head: nbls.first().copied(),
        })
    }

    /// The first NBL, or None for an empty chain.
    #[getter]
    fn head(&self, py: Python<'_>) -> PyResult<Option<Py<NetBufferList>>> {
        engine::with(|e| self.head.map(|h| e.nbl_obj(py, h)).transpose())
    }

    fn __len__(&self) -> PyResult<usize> {
        match self.head {
            None => Ok(0),
            Some(h) => engine::with(|e| e.heap.chain_of(h).map(|c| c.len())).py(),
        }
    }

    /// `(NBLs, NBs, bytes of used data)` of the chain, counted in one walk.
    fn stats(&self) -> PyResult<(usize, usize, u64)> {
        let Some(h) = self.head else {
            return Ok((0, 0, 0));
        };
        engine::with(|e| -> wfpsim_core::Result<(usize, usize, u64)> {
            let (mut nbls, mut nbs, mut bytes) = (0, 0, 0);
            for nbl in e.heap.chain_of(h)? {
                nbls += 1;
                for nb in e.heap.nbs_of(nbl)? {
                    nbs += 1;
                    bytes += e.heap.nb(nb)?.data_length;
                }
            }
            Ok((nbls, nbs, bytes))
        })
        .py()
    }

    /// The NBLs as a list (creates their Python objects).
    fn tolist(&self, py: Python<'_>) -> PyResult<Vec<Py<NetBufferList>>> {
        let Some(h) = self.head else {
            return Ok(Vec::new());
        };
        engine::with(|e| {
            let ids = e.heap.chain_of(h).py()?;
            ids.into_iter().map(|n| e.nbl_obj(py, n)).collect()
        })
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let list = self.tolist(py)?;
        pyo3::types::PyList::new(py, list)?
            .into_any()
            .try_iter()
            .map(|i| i.into_any())
    }

    fn __getitem__(&self, py: Python<'_>, index: isize) -> PyResult<Py<NetBufferList>> {
        let Some(h) = self.head else {
            return Err(pyo3::exceptions::PyIndexError::new_err(
                "chain index out of range",
            ));
        };
        engine::with(|e| {
            let ids = e.heap.chain_of(h).py()?;
            let i = if index < 0 {
                ids.len() as isize + index
            } else {
                index
            };
            let id = usize::try_from(i)
                .ok()
                .and_then(|i| ids.get(i).copied())
                .ok_or_else(|| {
                    pyo3::exceptions::PyIndexError::new_err("chain index out of range")
                })?;
            e.nbl_obj(py, id)
        })
    }

    /// Retreat every NB of every NBL; the chain is unchanged on failure.
    #[pyo3(signature = (delta, backfill=0))]
    fn retreat(&self, delta: u32, backfill: u32) -> PyResult<usize> {
        let Some(h) = self.head else { return Ok(0) };
        engine::with(|e| e.heap.retreat_chain(h, delta, backfill)).py()
    }

    /// Advance every NB of every NBL; the chain is unchanged on failure.
    #[pyo3(signature = (delta, free_mdl=false))]
    fn advance(&self, delta: u32, free_mdl: bool) -> PyResult<usize> {
        let Some(h) = self.head else { return Ok(0) };
        engine::with(|e| {
            let r = e.heap.advance_chain(h, delta, free_mdl);
            if free_mdl {
                e.sweep();
            }
            r
        })
        .py()
    }

    /// Packs the chain back into numpy arrays: `(data: uint8, offsets: uint64, lengths: uint32)`,
    /// one entry per NB in order.
    fn export<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let ex = match self.head {
            Some(h) => engine::with_detached(py, |heap| heap.export_chain(h)).py()?,
            None => Default::default(),
        };
        let data = PyArray1::from_vec(py, ex.data);
        let offsets = PyArray1::from_vec(py, ex.offsets);
        let lengths = PyArray1::from_vec(py, ex.lengths);
        let _ = data.readonly();
        PyTuple::new(
            py,
            [data.into_any(), offsets.into_any(), lengths.into_any()],
        )
    }

    /// Frees every NBL of the chain (each with the free its kind needs).
    fn free(&self) -> PyResult<usize> {
        let Some(h) = self.head else { return Ok(0) };
        engine::with(|e| {
            let r = e.heap.free_chain(h);
            e.sweep();
            r
        })
        .py()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Leaving a `with` block frees the NBLs still alive.
    fn __exit__(
        &self,
        _t: Option<Bound<'_, PyAny>>,
        _v: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if let Some(h) = self.head {
            if engine::with(|e| e.heap.nbl_alive(h)) {
                self.free()?;
            }
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("<Chain of {} NBLs>", self.__len__().unwrap_or(0))
    }
}
