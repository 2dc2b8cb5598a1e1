//! NET_BUFFER_LIST: allocation and free, clones with parent counts, WFP references, and the
//! context area with backfill (`nbl.md §4`, §6, §9, §10).

use super::{
    ContextBlock, Heap, InfoSlots, MdlId, MdlOrigin, NbId, NbOwner, NblId, NblKind, NetBufferList,
    PacketMeta, Pool, PoolId, SiteId, NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS, WFP_INFO_SLOT,
};
use crate::error::{Error, ErrorKind, Result};
use std::sync::Arc;

use crate::memory::Buffer;
use crate::status::{STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_PARAMETER};

/// (memory, start, used length, block Size) of the head context block.
pub type ContextRegion = (Arc<Buffer>, usize, usize, u16);

/// MEMORY_ALLOCATION_ALIGNMENT on 64-bit Windows: context sizes are multiples of it.
const MEMORY_ALLOCATION_ALIGNMENT: u16 = 16;

fn check_context_sizes(size: u16, backfill: u16) -> Result<()> {
    if !size.is_multiple_of(MEMORY_ALLOCATION_ALIGNMENT)
        || !backfill.is_multiple_of(MEMORY_ALLOCATION_ALIGNMENT)
    {
        return Err(Error::invalid(
            STATUS_INVALID_PARAMETER,
            format!("ContextSize {size} and ContextBackFill {backfill} must be multiples of MEMORY_ALLOCATION_ALIGNMENT (16)"),
        ));
    }
    Ok(())
}

impl Heap {
    pub(crate) fn new_nbl(
        &mut self,
        pool: Option<PoolId>,
        kind: NblKind,
        site: SiteId,
    ) -> Result<NblId> {
        if self.take_fault() {
            return Err(super::resources("NET_BUFFER_LIST allocation"));
        }
        Ok(NblId(self.nbls.insert(NetBufferList {
            next: None,
            first_nb: None,
            parent: None,
            child_ref_count: 0,
            status: 0,
            nbl_flags: 0,
            flags: 0,
            info: InfoSlots::default(),
            context: Vec::new(),
            prealloc_nb: None,
            kind,
            pool,
            wfp_refs: 0,
            intend_to_modify: false,
            meta: PacketMeta::default(),
            site,
        })))
    }

    fn nbl_pool(&self, pool: Option<PoolId>) -> Result<Option<(bool, u16, u32)>> {
        match pool {
            None => Ok(None),
            Some(p) => match self.pool(p)? {
                Pool::NetBufferList {
                    allocate_net_buffer,
                    context_size,
                    data_size,
                    ..
                } => Ok(Some((allocate_net_buffer, context_size, data_size))),
                Pool::NetBuffer { .. } => Err(Error::invalid(
                    STATUS_INVALID_PARAMETER,
                    "this is a NET_BUFFER pool; a NET_BUFFER_LIST pool handle is needed",
                )),
            },
        }
    }

    fn init_context(&mut self, nbl: NblId, size: u16, backfill: u16) -> Result<()> {
        let total = size as usize + backfill as usize;
        if total > 0 {
            let block = ContextBlock {
                data: Buffer::zeroed(total),
                size: total as u16,
                offset: backfill,
                pushed: false,
            };
            self.nbl_mut(nbl)?.context.push(block);
        }
        Ok(())
    }

    /// NdisAllocateNetBufferList. From an `fAllocateNetBuffer` pool the NBL comes with one NB
    /// (and an MDL plus data of the pool's DataSize); a `None` pool gives a bare NBL.
    pub fn alloc_nbl(
        &mut self,
        pool: Option<PoolId>,
        context_size: u16,
        context_backfill: u16,
        site: SiteId,
    ) -> Result<NblId> {
        check_context_sizes(context_size, context_backfill)?;
        let params = self.nbl_pool(pool)?;
        let nbl = self.new_nbl(pool, NblKind::Plain, site)?;
        let pool_ctx = params.map(|p| p.1).unwrap_or(0);
        let built = (|| {
            self.init_context(nbl, context_size.saturating_add(pool_ctx), context_backfill)?;
            if let Some((true, _, data_size)) = params {
                let mdl = if data_size > 0 {
                    Some(self.alloc_mdl_with(
                        Buffer::zeroed(data_size as usize),
                        0,
                        data_size as usize,
                        MdlOrigin::NbOwned,
                        site,
                    )?)
                } else {
                    None
                };
                let nb = self.new_nb(
                    None,
                    mdl,
                    0,
                    data_size as u64,
                    NbOwner::Preallocated(nbl),
                    site,
                )?;
                let n = self.nbl_mut(nbl)?;
                n.first_nb = Some(nb);
                n.prealloc_nb = Some(nb);
            }
            Ok(())
        })();
        if let Err(e) = built {
            let _ = self.release_nbl(nbl);
            return Err(e);
        }
        Ok(nbl)
    }

    /// NdisAllocateNetBufferAndNetBufferList / FwpsAllocateNetBufferAndNetBufferList0: an NBL with
    /// one NB over `mdl_chain` (`None` pool = NDIS's default NB-capable pool).
    #[allow(clippy::too_many_arguments)]
    pub fn alloc_nbl_and_nb(
        &mut self,
        pool: Option<PoolId>,
        context_size: u16,
        context_backfill: u16,
        mdl_chain: Option<MdlId>,
        data_offset: u32,
        data_length: u64,
        site: SiteId,
    ) -> Result<NblId> {
        check_context_sizes(context_size, context_backfill)?;
        if let Some((allocate_nb, _, data_size)) = self.nbl_pool(pool)? {
            if !allocate_nb || data_size != 0 {
                return Err(Error::invalid(
                    STATUS_INVALID_PARAMETER,
                    "the pool must have fAllocateNetBuffer = TRUE and DataSize = 0 for NdisAllocateNetBufferAndNetBufferList",
                ));
            }
        }
        let nbl = self.new_nbl(pool, NblKind::Plain, site)?;
        let built = (|| {
            self.init_context(nbl, context_size, context_backfill)?;
            let nb = self.new_nb(
                None,
                mdl_chain,
                data_offset,
                data_length,
                NbOwner::Preallocated(nbl),
                site,
            )?;
            let n = self.nbl_mut(nbl)?;
            n.first_nb = Some(nb);
            n.prealloc_nb = Some(nb);
            Ok(())
        })();
        if let Err(e) = built {
            let _ = self.release_nbl(nbl);
            return Err(e);
        }
        Ok(nbl)
    }

    fn check_freeable(&self, n: &NetBufferList, what: &str) -> Result<()> {
        if n.child_ref_count > 0 {
            return Err(Error::state(
                Some(STATUS_INVALID_DEVICE_STATE),
                format!("{what}: this NET_BUFFER_LIST still has {} live clone(s) (ChildRefCount > 0); free the clones first", n.child_ref_count),
            ));
        }
        if n.wfp_refs > 0 {
            return Err(Error::state(
                Some(STATUS_INVALID_DEVICE_STATE),
                format!("{what}: this NET_BUFFER_LIST is still referenced by FwpsReferenceNetBufferList0 ({} reference(s))", n.wfp_refs),
            ));
        }
        Ok(())
    }

    fn stale_nbl(&mut self, id: NblId) -> Error {
        self.nbls
            .remove(id.0)
            .err()
            .unwrap_or_else(|| Error::state(None, "stale NET_BUFFER_LIST"))
    }

    /// NdisFreeNetBufferList / FwpsFreeNetBufferList0: frees the NBL and its preallocated NB;
    /// other NBs linked to it stay alive (their owner frees them).
    pub fn free_nbl(&mut self, id: NblId) -> Result<()> {
        let Ok(n) = self.nbl(id) else {
            return Err(self.stale_nbl(id));
        };
        if n.kind != NblKind::Plain {
            return Err(Error::state(
                Some(STATUS_INVALID_PARAMETER),
                "this NET_BUFFER_LIST is a clone: free it with FwpsFreeCloneNetBufferList0 / NdisFreeCloneNetBufferList",
            ));
        }
        self.check_freeable(n, "NdisFreeNetBufferList")?;
        if n.context.iter().any(|b| b.pushed) {
            return Err(Error::state(
                Some(STATUS_INVALID_PARAMETER),
                "context added with NdisAllocateNetBufferListContext must be released (NdisFreeNetBufferListContext) before the NBL is freed",
            ));
        }
        self.release_nbl(id)
    }

    /// Removes the NBL and every NB allocated with it (still linked or not).
    fn release_nbl(&mut self, id: NblId) -> Result<()> {
        let mut owned: Vec<NbId> = self
            .nbs_of(id)
            .unwrap_or_default()
            .into_iter()
            .filter(|&nb| {
                self.nb(nb)
                    .is_ok_and(|n| n.owner == NbOwner::Preallocated(id))
            })
            .collect();
        let n = self.nbls.remove(id.0)?;
        if let Some(nb) = n.prealloc_nb {
            if !owned.contains(&nb) && self.nb_alive(nb) {
                owned.push(nb);
            }
        }
        for nb in owned {
            self.release_nb_owned(nb, &[MdlOrigin::NbOwned])?;
        }
        Ok(())
    }

    /// An NBL with one NB over `len` bytes of `buffer` at `start`, whose first `data_offset`
    /// bytes are headroom. The MDL and NB belong to the NBL and are freed with it.
    pub fn nbl_over(
        &mut self,
        buffer: Arc<Buffer>,
        start: usize,
        len: usize,
        data_offset: u32,
        site: SiteId,
    ) -> Result<NblId> {
        let nbl = self.alloc_nbl(None, 0, 0, site)?;
        match self.append_owned_nb(nbl, buffer, start, len, data_offset, site) {
            Ok(nb) => {
                self.nbl_mut(nbl)?.prealloc_nb = Some(nb);
                Ok(nbl)
            }
            Err(e) => {
                let _ = self.release_nbl(nbl);
                Err(e)
            }
        }
    }

    /// Appends to `nbl` a new NB (owned by the NBL) over `len` bytes of `buffer` at `start`,
    /// with `data_offset` bytes of headroom.
    pub fn append_owned_nb(
        &mut self,
        nbl: NblId,
        buffer: Arc<Buffer>,
        start: usize,
        len: usize,
        data_offset: u32,
        site: SiteId,
    ) -> Result<NbId> {
        let data_length = (len as u64)
            .checked_sub(data_offset as u64)
            .ok_or_else(|| {
                Error::invalid(
                    STATUS_INVALID_PARAMETER,
                    format!("headroom {data_offset} exceeds the {len}-byte buffer"),
                )
            })?;
        let last = self.nbs_of(nbl)?.last().copied();
        let mdl = self.alloc_mdl_with(buffer, start, len, MdlOrigin::NbOwned, site)?;
        let nb = match self.new_nb(
            None,
            Some(mdl),
            data_offset,
            data_length,
            NbOwner::Preallocated(nbl),
            site,
        ) {
            Ok(nb) => nb,
            Err(e) => {
                let _ = self.mdls.remove(mdl.0);
                return Err(e);
            }
        };
        match last {
            Some(l) => self.nb_mut(l)?.next = Some(nb),
            None => self.nbl_mut(nbl)?.first_nb = Some(nb),
        }
        Ok(nb)
    }

    /// Frees an NB and the MDLs of its chain whose origin is in `origins`. MDLs that NDIS's
    /// default allocator made in a retreat are NDIS's own memory and go with the NB
    /// (`nbl.md §7.2` leaves this open; [emu]); handler-made ones stay the driver's to free.
    pub(crate) fn release_nb_owned(&mut self, id: NbId, origins: &[MdlOrigin]) -> Result<()> {
        let chain = self.nb(id)?.mdl_chain;
        let mdls = self.mdl_chain(chain).unwrap_or_default();
        self.nbs.remove(id.0)?;
        for m in mdls {
            if self.mdl(m).is_ok_and(|x| {
                x.owner_nb == Some(id)
                    && (x.origin == MdlOrigin::RetreatDefault || origins.contains(&x.origin))
            }) {
                self.mdls.remove(m.0)?;
            }
        }
        Ok(())
    }

    /// NdisAllocateCloneNetBufferList (`wfp = false`: Parent/ChildRefCount untouched, the caller
    /// keeps them) or FwpsAllocateCloneNetBufferList0 (`wfp = true`: sets Parent, bumps the
    /// parent's ChildRefCount, carries WFP's private injection history).
    /// Clone geometry follows `nbl.md §9.1` [emu] reading (a).
    pub fn clone_nbl(
        &mut self,
        orig: NblId,
        flags: u32,
        wfp: bool,
        copy_info: bool,
        site: SiteId,
    ) -> Result<NblId> {
        if wfp && flags != 0 {
            return Err(Error::invalid(
                STATUS_INVALID_PARAMETER,
                format!("allocateCloneFlags must be 0: no flags are defined (got {flags:#x})"),
            ));
        }
        if !wfp && flags & !NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS != 0 {
            return Err(Error::invalid(
                STATUS_INVALID_PARAMETER,
                format!("AllocateCloneFlags {flags:#x} has bits other than NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS"),
            ));
        }
        let nbs = self.nbs_of(orig)?;
        for &nb in &nbs {
            self.validate_nb(nb)?;
        }
        let kind = if wfp {
            NblKind::WfpClone
        } else {
            NblKind::NdisClone { flags }
        };
        let clone = self.new_nbl(None, kind, site)?;
        let built = self.clone_nbs(
            clone,
            &nbs,
            flags & NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS != 0,
            site,
        );
        if let Err(e) = built {
            if let Ok(made) = self.nbs_of(clone) {
                for nb in made {
                    let _ = self.release_nb_owned(nb, &[MdlOrigin::Clone]);
                }
            }
            let _ = self.nbls.remove(clone.0);
            return Err(e);
        }
        let (info, meta, nbl_flags) = {
            let o = self.nbl(orig)?;
            (o.info.clone(), o.meta, o.nbl_flags)
        };
        let c = self.nbl_mut(clone)?;
        c.meta = meta;
        if copy_info {
            c.info = info;
            c.nbl_flags = nbl_flags;
        } else if wfp {
            c.info.set(WFP_INFO_SLOT, info.get(WFP_INFO_SLOT));
        }
        if wfp {
            c.parent = Some(orig);
            self.nbl_mut(orig)?.child_ref_count += 1;
        }
        Ok(clone)
    }

    fn clone_nbs(
        &mut self,
        clone: NblId,
        nbs: &[NbId],
        original_mdls: bool,
        site: SiteId,
    ) -> Result<()> {
        let mut prev: Option<NbId> = None;
        for &onb in nbs {
            let (cur, cur_off, len, chain, offset) = {
                let n = self.nb(onb)?;
                (
                    n.current_mdl,
                    n.current_mdl_offset,
                    n.data_length,
                    n.mdl_chain,
                    n.data_offset,
                )
            };
            let new_nb = if original_mdls {
                let id = self.new_nb(None, chain, offset, len, NbOwner::Clone(clone), site)?;
                let n = self.nb_mut(id)?;
                n.current_mdl = cur;
                n.current_mdl_offset = cur_off;
                id
            } else {
                let mut first: Option<MdlId> = None;
                let mut last: Option<MdlId> = None;
                for m in self.mdl_chain(cur)? {
                    let (buf, start, n) = self.mdl_region(m)?;
                    let new = self.alloc_mdl_with(buf, start, n, MdlOrigin::Clone, site)?;
                    match last {
                        Some(l) => self.mdl_mut(l)?.next = Some(new),
                        None => first = Some(new),
                    }
                    last = Some(new);
                }
                let id = self.new_nb(None, first, cur_off, len, NbOwner::Clone(clone), site)?;
                // Chain built from CurrentMdl on; point at the first new MDL even when cur_off sits
                // on its end (canonical_current would otherwise pick a zero-length successor).
                let n = self.nb_mut(id)?;
                n.current_mdl = first;
                n.current_mdl_offset = cur_off;
                id
            };
            match prev {
                Some(p) => self.nb_mut(p)?.next = Some(new_nb),
                None => self.nbl_mut(clone)?.first_nb = Some(new_nb),
            }
            prev = Some(new_nb);
        }
        Ok(())
    }

    /// NdisFreeCloneNetBufferList (`wfp = false`, flags must equal the allocation's) or
    /// FwpsFreeCloneNetBufferList0 (`wfp = true`: decrements the parent's ChildRefCount).
    pub fn free_clone(&mut self, id: NblId, flags: u32, wfp: bool) -> Result<()> {
        let Ok(n) = self.nbl(id) else {
            return Err(self.stale_nbl(id));
        };
        match (n.kind, wfp) {
            (NblKind::WfpClone, true) => {
                if flags != 0 {
                    return Err(Error::invalid(STATUS_INVALID_PARAMETER, format!("freeCloneFlags must be 0 (got {flags:#x})")));
                }
            }
            (NblKind::NdisClone { flags: f }, false) => {
                if f != flags {
                    return Err(Error::invalid(
                        STATUS_INVALID_PARAMETER,
                        format!("FreeCloneFlags {flags:#x} differ from the AllocateCloneFlags {f:#x} the clone was made with"),
                    ));
                }
            }
            (NblKind::Plain, _) => {
                return Err(Error::state(
                    Some(STATUS_INVALID_PARAMETER),
                    "this NET_BUFFER_LIST is not a clone: free it with NdisFreeNetBufferList / FwpsFreeNetBufferList0",
                ))
            }
            (NblKind::WfpClone, false) => {
                return Err(Error::state(
                    Some(STATUS_INVALID_PARAMETER),
                    "this clone was made by FwpsAllocateCloneNetBufferList0: free it with FwpsFreeCloneNetBufferList0",
                ))
            }
            (NblKind::NdisClone { .. }, true) => {
                return Err(Error::state(
                    Some(STATUS_INVALID_PARAMETER),
                    "this clone was made by NdisAllocateCloneNetBufferList: free it with NdisFreeCloneNetBufferList",
                ))
            }
        }
        self.check_freeable(n, "free clone")?;
        let parent = n.parent;
        for nb in self.nbs_of(id)? {
            if matches!(self.nb(nb)?.owner, NbOwner::Clone(owner) if owner == id) {
                self.release_nb_owned(nb, &[MdlOrigin::Clone])?;
            }
        }
        self.nbls.remove(id.0)?;
        if wfp {
            if let Some(p) = parent {
                if let Ok(pn) = self.nbl_mut(p) {
                    pn.child_ref_count -= 1;
                }
            }
        }
        Ok(())
    }

    /// FwpsReferenceNetBufferList0.
    pub fn reference(&mut self, id: NblId, intend_to_modify: bool) -> Result<()> {
        let n = self.nbl_mut(id)?;
        n.wfp_refs += 1;
        n.intend_to_modify |= intend_to_modify;
        Ok(())
    }

    /// FwpsDereferenceNetBufferList0: must pair with a reference.
    pub fn dereference(&mut self, id: NblId) -> Result<()> {
        let n = self.nbl_mut(id)?;
        if n.wfp_refs == 0 {
            return Err(Error::new(
                ErrorKind::Contract,
                Some(STATUS_INVALID_PARAMETER),
                "FwpsDereferenceNetBufferList0 without a matching FwpsReferenceNetBufferList0",
            ));
        }
        n.wfp_refs -= 1;
        if n.wfp_refs == 0 {
            n.intend_to_modify = false;
        }
        Ok(())
    }

    // ---- context (`nbl.md §4.6`) ----

    /// NdisAllocateNetBufferListContext.
    pub fn alloc_context(&mut self, id: NblId, size: u16, backfill: u16) -> Result<()> {
        check_context_sizes(size, backfill)?;
        let fault = self.take_fault();
        let n = self.nbl_mut(id)?;
        if let Some(head) = n.context.first_mut() {
            if head.offset >= size {
                head.offset -= size;
                return Ok(());
            }
        }
        if fault {
            return Err(super::resources("NdisAllocateNetBufferListContext"));
        }
        let total = size as u32 + backfill as u32;
        let total = u16::try_from(total).map_err(|_| {
            Error::invalid(
                STATUS_INVALID_PARAMETER,
                "ContextSize + ContextBackFill exceeds USHORT",
            )
        })?;
        n.context.insert(
            0,
            ContextBlock {
                data: Buffer::zeroed(total as usize),
                size: total,
                offset: backfill,
                pushed: true,
            },
        );
        Ok(())
    }

    /// NdisFreeNetBufferListContext: gives back `size` bytes; a pushed block that becomes wholly
    /// unused is released.
    pub fn free_context(&mut self, id: NblId, size: u16) -> Result<()> {
        let n = self.nbl_mut(id)?;
        let Some(head) = n.context.first_mut() else {
            return Err(Error::state(
                Some(STATUS_INVALID_PARAMETER),
                "NdisFreeNetBufferListContext: the NBL has no context",
            ));
        };
        if head.offset as u32 + size as u32 > head.size as u32 {
            return Err(Error::invalid(
                STATUS_INVALID_PARAMETER,
                format!("NdisFreeNetBufferListContext({size}) frees more than the {} bytes of used context", head.size - head.offset),
            ));
        }
        head.offset += size;
        if head.offset == head.size && head.pushed {
            n.context.remove(0);
        }
        Ok(())
    }

    /// The used context of the head block: (memory, start, length) for a view.
    pub fn context_region(&self, id: NblId) -> Result<Option<ContextRegion>> {
        Ok(self.nbl(id)?.context.first().map(|b| {
            (
                b.data.clone(),
                b.offset as usize,
                (b.size - b.offset) as usize,
                b.size,
            )
        }))
    }
}
