//! NET_BUFFER: allocation, the used/unused data-space invariants, retreat and advance, and
//! data access (`nbl.md §3`, §7, §8).

use super::{
    Heap, MdlId, MdlOrigin, NbId, NbOwner, NetBuffer, Pool, PoolId, SiteId, MAX_DATA_LENGTH,
};
use crate::bytes::{Pieces, PiecesRef};
use crate::error::{Error, ErrorKind, Result};
use crate::memory::Buffer;
use crate::status::{NDIS_STATUS_FAILURE, STATUS_INVALID_PARAMETER};

/// What a retreat needs before it can be applied (the two-phase form lets a caller-supplied
/// allocator run between check and apply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetreatNeed {
    /// Enough unused space: no allocation.
    InPlace,
    /// `shortfall` bytes are missing; the allocator is asked for `request` = shortfall + DataBackFill.
    Allocate { shortfall: u32, request: u32 },
}

/// Outcome of NdisGetDataBuffer (`nbl.md §8.1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataBuffer {
    /// The bytes are contiguous and aligned: a view into `mdl` at `offset`.
    Direct { mdl: MdlId, offset: u32 },
    /// Not contiguous (or misaligned): the caller copies into Storage if it gave one.
    NeedsCopy,
    /// Not enough data, or BytesNeeded == 0.
    Null,
}

fn failure(msg: String) -> Error {
    Error::new(ErrorKind::InvalidParameter, Some(NDIS_STATUS_FAILURE), msg)
}

impl Heap {
    // ---- allocation ----

    /// NdisAllocateNetBuffer: an NB over `mdl_chain` with the given window.
    pub fn alloc_nb(
        &mut self,
        pool: Option<PoolId>,
        mdl_chain: Option<MdlId>,
        data_offset: u32,
        data_length: u64,
        site: SiteId,
    ) -> Result<NbId> {
        if let Some(p) = pool {
            if !matches!(self.pool(p)?, Pool::NetBuffer { .. }) {
                return Err(Error::invalid(
                    STATUS_INVALID_PARAMETER,
                    "NdisAllocateNetBuffer needs a NET_BUFFER pool handle",
                ));
            }
        }
        self.new_nb(
            pool,
            mdl_chain,
            data_offset,
            data_length,
            NbOwner::Standalone,
            site,
        )
    }

    pub(crate) fn new_nb(
        &mut self,
        pool: Option<PoolId>,
        mdl_chain: Option<MdlId>,
        data_offset: u32,
        data_length: u64,
        owner: NbOwner,
        site: SiteId,
    ) -> Result<NbId> {
        self.check_window(mdl_chain, data_offset, data_length)?;
        if self.take_fault() {
            return Err(super::resources("NET_BUFFER allocation"));
        }
        let (current_mdl, current_mdl_offset) = self.canonical_current(mdl_chain, data_offset)?;
        let nb = NetBuffer {
            next: None,
            mdl_chain,
            current_mdl,
            current_mdl_offset,
            data_offset,
            data_length,
            checksum_bias: 0,
            pool,
            owner,
            site,
        };
        let id = NbId(self.nbs.insert(nb));
        self.claim_engine_mdls(id, mdl_chain);
        Ok(id)
    }

    /// Marks the engine-made MDLs of a new NB's chain (pool data, batch buffers, clone MDLs) as
    /// that NB's, so they are freed with it and with nothing else.
    fn claim_engine_mdls(&mut self, id: NbId, chain: Option<MdlId>) {
        let mut cur = chain;
        let mut steps = 0usize;
        while let Some(m) = cur {
            let Ok(mdl) = self.mdls.get_mut(m.0) else {
                return;
            };
            if mdl.owner_nb.is_none() && matches!(mdl.origin, MdlOrigin::NbOwned | MdlOrigin::Clone)
            {
                mdl.owner_nb = Some(id);
            }
            cur = mdl.next;
            steps += 1;
            if steps > self.mdls.live() {
                return;
            }
        }
    }

    /// NdisAllocateNetBufferMdlAndData: an NB with its own MDL and zeroed data of the pool's DataSize.
    pub fn alloc_nb_mdl_and_data(&mut self, pool: PoolId, site: SiteId) -> Result<NbId> {
        let Pool::NetBuffer { data_size, .. } = self.pool(pool)? else {
            return Err(Error::invalid(
                STATUS_INVALID_PARAMETER,
                "NdisAllocateNetBufferMdlAndData needs a NET_BUFFER pool",
            ));
        };
        let mdl = self.alloc_mdl_with(
            Buffer::zeroed(data_size as usize),
            0,
            data_size as usize,
            MdlOrigin::NbOwned,
            site,
        )?;
        self.new_nb(
            Some(pool),
            Some(mdl),
            0,
            data_size as u64,
            NbOwner::Standalone,
            site,
        )
    }

    /// NdisFreeNetBuffer: only for NBs from NdisAllocateNetBuffer(MdlAndData).
    pub fn free_nb(&mut self, id: NbId) -> Result<()> {
        let owner = match self.nbs.get(id.0) {
            Ok(nb) => nb.owner,
            // A stale handle: `remove` reports the double free.
            Err(_) => return self.nbs.remove(id.0).map(|_| ()),
        };
        if owner != NbOwner::Standalone {
            return Err(Error::state(
                Some(STATUS_INVALID_PARAMETER),
                "NdisFreeNetBuffer: this NET_BUFFER was allocated with its NET_BUFFER_LIST (or by a clone); free the NBL instead",
            ));
        }
        self.release_nb_owned(id, &[MdlOrigin::NbOwned])
    }

    // ---- invariants ----

    /// I1 and I4 for a window over a chain.
    fn check_window(
        &self,
        mdl_chain: Option<MdlId>,
        data_offset: u32,
        data_length: u64,
    ) -> Result<()> {
        if data_length > MAX_DATA_LENGTH {
            return Err(Error::invalid(
                STATUS_INVALID_PARAMETER,
                format!("DataLength {data_length} exceeds ULONG (I5)"),
            ));
        }
        match mdl_chain {
            None if data_offset != 0 || data_length != 0 => Err(Error::invalid(
                STATUS_INVALID_PARAMETER,
                "MdlChain is NULL, so DataOffset and DataLength must be 0 (I4)",
            )),
            None => Ok(()),
            Some(_) => {
                let cap = self.chain_capacity(mdl_chain)?;
                if data_offset as u64 + data_length > cap {
                    return Err(Error::invalid(
                        STATUS_INVALID_PARAMETER,
                        format!("DataOffset {data_offset} + DataLength {data_length} exceeds the MDL chain's {cap} bytes (I1)"),
                    ));
                }
                Ok(())
            }
        }
    }

    /// The canonical (CurrentMdl, CurrentMdlOffset) for a data offset (`nbl.md §3.2` [emu]):
    /// at an exact MDL boundary the next MDL with offset 0; zero-length MDLs are skipped.
    pub(crate) fn canonical_current(
        &self,
        mdl_chain: Option<MdlId>,
        data_offset: u32,
    ) -> Result<(Option<MdlId>, u32)> {
        let Some(mut cur) = mdl_chain else {
            return Ok((None, 0));
        };
        let mut rest = data_offset as u64;
        let mut steps = 0usize;
        loop {
            let m = self.mdl(cur)?;
            let len = m.byte_count as u64;
            match m.next {
                Some(next) if rest >= len => {
                    rest -= len;
                    cur = next;
                }
                _ => {
                    if rest > len {
                        return Err(Error::invalid(
                            STATUS_INVALID_PARAMETER,
                            format!("DataOffset {data_offset} lies beyond the end of the MDL chain (I1)"),
                        ));
                    }
                    return Ok((Some(cur), rest as u32));
                }
            }
            steps += 1;
            if steps > self.mdls.live() {
                return Err(Error::state(None, "MDL chain has a cycle (Mdl.Next loops)"));
            }
        }
    }

    /// Checks I1–I4 of an NB as handed to an API (Driver-Verifier style), in one pass over
    /// the chain without allocating.
    pub fn validate_nb(&self, id: NbId) -> Result<()> {
        let nb = self.nb(id)?;
        let bad = |msg: String| Err(Error::invalid(STATUS_INVALID_PARAMETER, msg));
        if nb.data_length > MAX_DATA_LENGTH {
            return bad(format!("DataLength {} exceeds ULONG (I5)", nb.data_length));
        }
        let Some(first) = nb.mdl_chain else {
            if nb.data_offset != 0 || nb.data_length != 0 {
                return bad("MdlChain is NULL, so DataOffset and DataLength must be 0 (I4)".into());
            }
            if nb.current_mdl.is_some() {
                return bad("CurrentMdl is set but MdlChain is NULL (I2)".into());
            }
            return Ok(());
        };
        let Some(cur) = nb.current_mdl else {
            return bad("CurrentMdl is NULL but MdlChain is not (I2)".into());
        };
        let (mut total, mut before, mut found) = (0u64, 0u64, false);
        let mut walk = Some(first);
        let mut steps = 0usize;
        while let Some(m) = walk {
            let mdl = self.mdl(m)?;
            if m == cur && !found {
                found = true;
                before = total;
                if nb.current_mdl_offset > mdl.byte_count {
                    return bad("CurrentMdlOffset exceeds CurrentMdl's ByteCount (I3)".into());
                }
            }
            total += mdl.byte_count as u64;
            walk = mdl.next;
            steps += 1;
            if steps > self.mdls.live() {
                return Err(Error::state(None, "MDL chain has a cycle (Mdl.Next loops)"));
            }
        }
        if nb.data_offset as u64 + nb.data_length > total {
            return bad(format!(
                "DataOffset {} + DataLength {} exceeds the MDL chain's {total} bytes (I1)",
                nb.data_offset, nb.data_length
            ));
        }
        if !found {
            return bad("CurrentMdl is not in the NB's MdlChain (I2)".into());
        }
        if before + nb.current_mdl_offset as u64 != nb.data_offset as u64 {
            return bad(format!(
                "CurrentMdl/CurrentMdlOffset ({} bytes in) disagree with DataOffset {} (I2): \
                 call NdisAdjustNetBufferCurrentMdl after changing DataOffset",
                before + nb.current_mdl_offset as u64,
                nb.data_offset
            ));
        }
        Ok(())
    }

    /// NdisAdjustNetBufferCurrentMdl: recompute CurrentMdl/CurrentMdlOffset from MdlChain and DataOffset.
    pub fn adjust_current_mdl(&mut self, id: NbId) -> Result<()> {
        let (chain, off) = {
            let nb = self.nb(id)?;
            (nb.mdl_chain, nb.data_offset)
        };
        let (cur, cur_off) = self.canonical_current(chain, off)?;
        let nb = self.nb_mut(id)?;
        nb.current_mdl = cur;
        nb.current_mdl_offset = cur_off;
        Ok(())
    }

    // ---- retreat / advance (`nbl.md §7`) ----

    /// Phase one of NdisRetreatNetBufferDataStart: validates and says whether memory is needed.
    pub fn retreat_check(&self, id: NbId, delta: u32, backfill: u32) -> Result<RetreatNeed> {
        self.validate_nb(id)?;
        let nb = self.nb(id)?;
        if nb.data_length + delta as u64 > MAX_DATA_LENGTH {
            return Err(failure(format!(
                "retreat by {delta} would overflow DataLength {} past ULONG",
                nb.data_length
            )));
        }
        if delta <= nb.data_offset {
            return Ok(RetreatNeed::InPlace);
        }
        let shortfall = delta - nb.data_offset;
        let request = shortfall.checked_add(backfill).ok_or_else(|| {
            failure(format!(
                "retreat shortfall {shortfall} + DataBackFill {backfill} overflows ULONG"
            ))
        })?;
        Ok(RetreatNeed::Allocate { shortfall, request })
    }

    /// Phase two: applies a checked retreat. `front` is the MDL obtained for an `Allocate` need
    /// (ignored for `InPlace`); it is prepended and its origin recorded.
    pub fn retreat_apply(
        &mut self,
        id: NbId,
        delta: u32,
        backfill: u32,
        front: Option<(MdlId, MdlOrigin)>,
    ) -> Result<()> {
        let need = self.retreat_check(id, delta, backfill)?;
        self.apply_retreat(id, delta, need, front)
    }

    /// Applies a retreat whose need `retreat_check` just computed.
    fn apply_retreat(
        &mut self,
        id: NbId,
        delta: u32,
        need: RetreatNeed,
        front: Option<(MdlId, MdlOrigin)>,
    ) -> Result<()> {
        match need {
            RetreatNeed::InPlace => {
                let nb = self.nb_mut(id)?;
                nb.data_offset -= delta;
                nb.data_length += delta as u64;
                self.adjust_current_mdl(id)
            }
            RetreatNeed::Allocate { shortfall, request } => {
                let Some((mdl, origin)) = front else {
                    return Err(super::resources("NdisRetreatNetBufferDataStart"));
                };
                let granted = {
                    let m = self.mdl(mdl)?;
                    if m.next.is_some() {
                        return Err(failure("the MDL returned by the AllocateMdlHandler is already chained (its Next is not NULL)".into()));
                    }
                    m.byte_count
                };
                if granted < request {
                    return Err(failure(format!(
                        "the AllocateMdlHandler returned a {granted}-byte MDL; {request} bytes were requested"
                    )));
                }
                let old_chain = self.nb(id)?.mdl_chain;
                {
                    let m = self.mdl_mut(mdl)?;
                    m.next = old_chain;
                    m.origin = origin;
                    m.owner_nb = Some(id);
                }
                let nb = self.nb_mut(id)?;
                nb.mdl_chain = Some(mdl);
                nb.data_offset = granted - shortfall;
                nb.data_length += delta as u64;
                nb.current_mdl = Some(mdl);
                nb.current_mdl_offset = granted - shortfall;
                Ok(())
            }
        }
    }

    /// NdisRetreatNetBufferDataStart with NDIS's default allocator (grants exactly the request).
    pub fn retreat(&mut self, id: NbId, delta: u32, backfill: u32) -> Result<()> {
        let need = self.retreat_check(id, delta, backfill)?;
        let front = match need {
            RetreatNeed::InPlace => None,
            RetreatNeed::Allocate { request, .. } => {
                let site = self.nb(id)?.site;
                let mdl = self.alloc_mdl_with(
                    Buffer::zeroed(request as usize),
                    0,
                    request as usize,
                    MdlOrigin::RetreatDefault,
                    site,
                )?;
                Some((mdl, MdlOrigin::RetreatDefault))
            }
        };
        let result = self.apply_retreat(id, delta, need, front);
        if result.is_err() {
            if let Some((mdl, _)) = front {
                let _ = self.mdls.remove(mdl.0);
            }
        }
        result
    }

    /// NdisAdvanceNetBufferDataStart. With `free_mdl`, retreat-allocated MDLs now wholly in the
    /// unused space are unlinked: default-allocated ones are freed here; handler-allocated ones
    /// are returned for the caller's FreeMdlHandler (an error if it has none: mismatched allocator).
    pub fn advance(
        &mut self,
        id: NbId,
        delta: u32,
        free_mdl: bool,
        have_free_handler: bool,
    ) -> Result<Vec<MdlId>> {
        self.validate_nb(id)?;
        let (data_length, chain, data_offset) = {
            let nb = self.nb(id)?;
            (nb.data_length, nb.mdl_chain, nb.data_offset)
        };
        if delta as u64 > data_length {
            return Err(Error::invalid(
                STATUS_INVALID_PARAMETER,
                format!("advance by {delta} past the data: DataLength is {data_length}"),
            ));
        }
        let new_offset = data_offset + delta;
        let (cur, cur_off) = self.canonical_current(chain, new_offset)?;
        // Plan which head MDLs to release before changing anything.
        let mut release = Vec::new();
        let mut offset = new_offset;
        if free_mdl {
            let mut head = chain;
            while let Some(h) = head {
                let m = self.mdl(h)?;
                let retreat_made = matches!(
                    m.origin,
                    MdlOrigin::RetreatDefault | MdlOrigin::RetreatHandler
                );
                if !retreat_made
                    || m.owner_nb != Some(id)
                    || Some(h) == cur
                    || m.byte_count > offset
                {
                    break;
                }
                if m.origin == MdlOrigin::RetreatHandler && !have_free_handler {
                    return Err(Error::state(
                        Some(STATUS_INVALID_PARAMETER),
                        "advance with FreeMdl must free an MDL that an AllocateMdlHandler made, but no FreeMdlHandler was given (mismatched allocator)",
                    ));
                }
                offset -= m.byte_count;
                release.push((h, m.origin));
                head = m.next;
            }
        }
        let new_head = match release.last() {
            Some((last, _)) => self.mdl(*last)?.next,
            None => chain,
        };
        let mut handed_back = Vec::new();
        for (m, origin) in release {
            if origin == MdlOrigin::RetreatDefault {
                self.mdls.remove(m.0)?;
            } else {
                self.mdl_mut(m)?.next = None;
                handed_back.push(m);
            }
        }
        let nb = self.nb_mut(id)?;
        nb.mdl_chain = new_head;
        nb.data_offset = offset;
        nb.data_length -= delta as u64;
        nb.current_mdl = cur;
        nb.current_mdl_offset = cur_off;
        Ok(handed_back)
    }

    // ---- data access (`nbl.md §8`) ----

    /// Walks the used data of an NB: calls `f(buffer, start, len)` for each piece in order.
    fn walk_data<'h>(
        &'h self,
        id: NbId,
        skip: u64,
        take: u64,
        f: &mut dyn FnMut(&'h Buffer, usize, usize),
    ) -> Result<()> {
        self.walk(id, skip, take, false, f)
    }

    /// Walks `take` bytes from `skip` past the NB's current data start, piece by piece. With
    /// `to_chain_end`, the walk may run past DataLength up to the end of the MDL chain (copy
    /// destinations) and stops quietly there; otherwise running out of MDLs breaks I1.
    fn walk<'h>(
        &'h self,
        id: NbId,
        skip: u64,
        mut take: u64,
        to_chain_end: bool,
        f: &mut dyn FnMut(&'h Buffer, usize, usize),
    ) -> Result<()> {
        let nb = self.nb(id)?;
        let mut cur = nb.current_mdl;
        let mut skip = nb.current_mdl_offset as u64 + skip;
        while take > 0 {
            let Some(m) = cur else {
                if to_chain_end {
                    return Ok(());
                }
                return Err(Error::state(
                    None,
                    "NET_BUFFER data runs past the end of its MDL chain (I1)",
                ));
            };
            let mdl = self.mdl(m)?;
            let len = mdl.byte_count as u64;
            if skip < len {
                let n = (len - skip).min(take);
                f(&mdl.buffer, mdl.start + skip as usize, n as usize);
                take -= n;
                skip = 0;
            } else {
                skip -= len;
            }
            cur = mdl.next;
        }
        Ok(())
    }

    /// The NB's used data as one slice when it lies in a single MDL (the common case: a fast
    /// path that skips building a piece list). `None` when it spans MDLs.
    pub fn nb_contiguous(&self, id: NbId) -> Result<Option<&[u8]>> {
        let nb = self.nb(id)?;
        let Some(cur) = nb.current_mdl else {
            return Ok((nb.data_length == 0).then_some(&[][..]));
        };
        let m = self.mdl(cur)?;
        let avail = m.byte_count.saturating_sub(nb.current_mdl_offset) as u64;
        if nb.data_length > avail {
            return Ok(None);
        }
        m.buffer
            .slice(
                m.start + nb.current_mdl_offset as usize,
                nb.data_length as usize,
            )
            .map(Some)
    }

    /// The NB's used data as writable pieces (an error for read-only memory).
    pub fn nb_pieces_mut(&self, id: NbId) -> Result<Pieces<'_>> {
        let len = self.nb(id)?.data_length;
        let mut out = Pieces::default();
        let mut err = None;
        self.walk_data(
            id,
            0,
            len,
            &mut |buf, start, n| match buf.slice_mut(start, n) {
                Ok(s) => out.push(s),
                Err(e) => err = Some(e),
            },
        )?;
        match err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// The NB's used data as read-only pieces.
    pub fn nb_pieces(&self, id: NbId) -> Result<PiecesRef<'_>> {
        let len = self.nb(id)?.data_length;
        let mut out = PiecesRef::default();
        let mut err = None;
        self.walk_data(id, 0, len, &mut |buf, start, n| match buf.slice(start, n) {
            Ok(s) => out.push(s),
            Err(e) => err = Some(e),
        })?;
        match err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Copies the NB's used data (from `offset`) into `out`; returns the bytes copied.
    pub fn copy_out(&self, id: NbId, offset: u64, out: &mut [u8]) -> Result<usize> {
        let len = self.nb(id)?.data_length;
        let take = len.saturating_sub(offset).min(out.len() as u64);
        let mut done = 0usize;
        self.walk_data(id, offset, take, &mut |buf, start, n| {
            if let Ok(s) = buf.slice(start, n) {
                out[done..done + n].copy_from_slice(s);
                done += n;
            }
        })?;
        Ok(done)
    }

    /// The NB's used data as one new vector.
    pub fn nb_bytes(&self, id: NbId) -> Result<Vec<u8>> {
        let len = self.nb(id)?.data_length as usize;
        let mut out = vec![0; len];
        self.copy_out(id, 0, &mut out)?;
        Ok(out)
    }

    /// NdisGetDataBuffer's decision (the caller performs the Storage copy for `NeedsCopy`).
    pub fn get_data_buffer(
        &self,
        id: NbId,
        bytes_needed: u32,
        align_multiple: u32,
        align_offset: u32,
    ) -> Result<DataBuffer> {
        if !align_multiple.is_power_of_two() || align_multiple > 8192 {
            return Err(Error::invalid(
                STATUS_INVALID_PARAMETER,
                format!("AlignMultiple {align_multiple} must be a power of two from 1 to 8192"),
            ));
        }
        if align_offset >= align_multiple {
            return Err(Error::invalid(
                STATUS_INVALID_PARAMETER,
                format!("AlignOffset {align_offset} must be below AlignMultiple {align_multiple}"),
            ));
        }
        self.validate_nb(id)?;
        let nb = self.nb(id)?;
        if bytes_needed == 0 || nb.data_length < bytes_needed as u64 {
            return Ok(DataBuffer::Null);
        }
        let Some(cur) = nb.current_mdl else {
            return Ok(DataBuffer::Null);
        };
        let m = self.mdl(cur)?;
        let avail = m.byte_count - nb.current_mdl_offset;
        let addr = m.buffer.addr() + m.start + nb.current_mdl_offset as usize;
        if avail >= bytes_needed && addr % align_multiple as usize == align_offset as usize {
            Ok(DataBuffer::Direct {
                mdl: cur,
                offset: nb.current_mdl_offset,
            })
        } else {
            Ok(DataBuffer::NeedsCopy)
        }
    }

    /// NdisCopyFromNetBufferToNetBuffer: offsets from each NB's current data start; the
    /// destination is bounded by its MDL chain, the source by its DataLength; memmove semantics.
    pub fn copy_nb_to_nb(
        &mut self,
        dst: NbId,
        dst_offset: u32,
        bytes: u32,
        src: NbId,
        src_offset: u32,
    ) -> Result<u32> {
        self.validate_nb(dst)?;
        self.validate_nb(src)?;
        let src_len = self.nb(src)?.data_length;
        let n_src = src_len.saturating_sub(src_offset as u64).min(bytes as u64);
        let d = self.nb(dst)?;
        let dst_cap = self
            .chain_capacity(d.mdl_chain)?
            .saturating_sub(d.data_offset as u64);
        let n = n_src.min(dst_cap.saturating_sub(dst_offset as u64)) as usize;
        let mut tmp = vec![0u8; n];
        self.copy_out(src, src_offset as u64, &mut tmp)?;
        let mut done = 0usize;
        let mut err = None;
        self.walk(
            dst,
            dst_offset as u64,
            n as u64,
            true,
            &mut |buf, start, len| match buf.slice_mut(start, len) {
                Ok(s) => {
                    s.copy_from_slice(&tmp[done..done + len]);
                    done += len;
                }
                Err(e) => err = Some(e),
            },
        )?;
        if let Some(e) = err {
            return Err(e);
        }
        Ok(done as u32)
    }
}
