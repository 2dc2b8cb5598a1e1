//! MDLs: NdisAllocateMdl / NdisFreeMdl and chain walking (`nbl.md §2`).

use std::sync::Arc;

use super::{Heap, Mdl, MdlId, MdlOrigin, SiteId, SmallIds, MDL_SOURCE_IS_NONPAGED_POOL};
use crate::error::{Error, ErrorKind, Result};
use crate::memory::Buffer;
use crate::status::STATUS_INVALID_PARAMETER;

impl Heap {
    /// NdisAllocateMdl over `len` bytes of `buffer` starting at `start`.
    pub fn alloc_mdl(
        &mut self,
        buffer: Arc<Buffer>,
        start: usize,
        len: usize,
        site: SiteId,
    ) -> Result<MdlId> {
        self.alloc_mdl_with(buffer, start, len, MdlOrigin::Caller, site)
    }

    pub(crate) fn alloc_mdl_with(
        &mut self,
        buffer: Arc<Buffer>,
        start: usize,
        len: usize,
        origin: MdlOrigin,
        site: SiteId,
    ) -> Result<MdlId> {
        let byte_count = u32::try_from(len).map_err(|_| {
            Error::invalid(
                STATUS_INVALID_PARAMETER,
                format!("MDL length {len} exceeds ULONG"),
            )
        })?;
        if start.checked_add(len).is_none_or(|end| end > buffer.len()) {
            return Err(Error::invalid(
                STATUS_INVALID_PARAMETER,
                format!(
                    "MDL of {len} bytes at offset {start} does not fit a {}-byte buffer",
                    buffer.len()
                ),
            ));
        }
        if self.take_fault() {
            return Err(super::resources("NdisAllocateMdl"));
        }
        let mdl = Mdl {
            buffer,
            start,
            byte_count,
            next: None,
            flags: MDL_SOURCE_IS_NONPAGED_POOL,
            origin,
            owner_nb: None,
            site,
        };
        Ok(MdlId(self.mdls.insert(mdl)))
    }

    /// NdisFreeMdl: frees the MDL only, never the memory it describes (`nbl.md §2.3`).
    pub fn free_mdl(&mut self, id: MdlId) -> Result<()> {
        let origin = self.mdl(id).map_err(|_| double_free_mdl(id))?.origin;
        if matches!(origin, MdlOrigin::Clone | MdlOrigin::NbOwned) {
            return Err(Error::new(
                ErrorKind::InvalidState,
                Some(STATUS_INVALID_PARAMETER),
                format!("NdisFreeMdl: this MDL belongs to NDIS ({origin:?}); it is freed with its NET_BUFFER_LIST"),
            ));
        }
        self.mdls.remove(id.0).map(|_| ())
    }

    /// Read-only bytes an MDL describes.
    pub fn mdl_bytes(&self, id: MdlId) -> Result<&[u8]> {
        let m = self.mdl(id)?;
        m.buffer.slice(m.start, m.byte_count as usize)
    }

    /// (buffer, start, len) of an MDL: what a zero-copy view needs to keep memory alive.
    pub fn mdl_region(&self, id: MdlId) -> Result<(Arc<Buffer>, usize, usize)> {
        let m = self.mdl(id)?;
        Ok((m.buffer.clone(), m.start, m.byte_count as usize))
    }

    /// MDLs of a chain in order, checking every link (stale links and cycles are errors).
    pub fn mdl_chain(&self, first: Option<MdlId>) -> Result<SmallIds<MdlId>> {
        let mut out = SmallIds::new();
        let mut cur = first;
        while let Some(id) = cur {
            if out.len() > self.mdls.live() {
                return Err(Error::state(None, "MDL chain has a cycle (Mdl.Next loops)"));
            }
            cur = self.mdl(id)?.next;
            out.push(id);
        }
        Ok(out)
    }

    /// Σ ByteCount over a chain: the T of invariant I1.
    pub fn chain_capacity(&self, first: Option<MdlId>) -> Result<u64> {
        let mut total = 0u64;
        let mut cur = first;
        let mut steps = 0usize;
        while let Some(id) = cur {
            let m = self.mdl(id)?;
            total += m.byte_count as u64;
            cur = m.next;
            steps += 1;
            if steps > self.mdls.live() {
                return Err(Error::state(None, "MDL chain has a cycle (Mdl.Next loops)"));
            }
        }
        Ok(total)
    }
}

fn double_free_mdl(id: MdlId) -> Error {
    Error::new(
        ErrorKind::DoubleFree,
        None,
        format!(
            "double free: this MDL was already freed (handle {:#x})",
            id.to_raw()
        ),
    )
}
