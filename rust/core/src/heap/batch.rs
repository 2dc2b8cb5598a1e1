//! Batch forms: whole chains of NBLs in one call, so a Python caller pays the crossing once per
//! batch. Chains are linked by `NBL.Next`, as in NDIS.

use std::sync::Arc;

use super::{
    Heap, Mdl, MdlId, MdlOrigin, NbId, NbOwner, NblId, NblKind, NetBuffer, PacketMeta, SiteId,
    MDL_SOURCE_IS_NONPAGED_POOL,
};
use crate::error::{Error, Result};
use crate::memory::Buffer;
use crate::status::STATUS_INVALID_PARAMETER;

/// A chain packed back into one buffer (the used data of every NB, NBL by NBL).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChainExport {
    pub data: Vec<u8>,
    pub offsets: Vec<u64>,
    pub lengths: Vec<u32>,
    /// Index of the NBL each NB came from.
    pub nbl_index: Vec<u32>,
}

impl Heap {
    /// Builds one NBL (one NB, one MDL) per packet over `buffer[offsets[i] .. + lengths[i]]`,
    /// zero-copy, linked by `Next`. Returns the NBLs in order.
    pub fn build_chain(
        &mut self,
        buffer: &Arc<Buffer>,
        offsets: &[u64],
        lengths: &[u32],
        metas: Option<&[PacketMeta]>,
        site: SiteId,
    ) -> Result<Vec<NblId>> {
        if offsets.len() != lengths.len() || metas.is_some_and(|m| m.len() != offsets.len()) {
            return Err(Error::invalid(
                STATUS_INVALID_PARAMETER,
                "offsets, lengths (and metadata) must have the same length",
            ));
        }
        for (i, (&off, &len)) in offsets.iter().zip(lengths).enumerate() {
            if off
                .checked_add(len as u64)
                .is_none_or(|end| end > buffer.len() as u64)
            {
                return Err(Error::invalid(
                    STATUS_INVALID_PARAMETER,
                    format!(
                        "packet {i}: bytes {off}..{} lie outside the {}-byte buffer",
                        off as u128 + len as u128,
                        buffer.len()
                    ),
                ));
            }
        }
        let mut out = Vec::with_capacity(offsets.len());
        let mut prev: Option<NblId> = None;
        for (i, (&off, &len)) in offsets.iter().zip(lengths).enumerate() {
            let made = self.build_one(buffer, off as usize, len, site);
            let nbl = match made {
                Ok(n) => n,
                Err(e) => {
                    for n in out {
                        let _ = self.free_nbl(n);
                    }
                    return Err(e);
                }
            };
            if let Some(m) = metas {
                self.nbl_mut(nbl)?.meta = m[i];
            }
            if let Some(p) = prev {
                self.nbl_mut(p)?.next = Some(nbl);
            }
            prev = Some(nbl);
            out.push(nbl);
        }
        Ok(out)
    }

    /// One NBL + NB + MDL over `buffer[off..off + len]`, built directly: the window is the
    /// whole MDL, so the invariants hold by construction and nothing needs re-validating.
    fn build_one(
        &mut self,
        buffer: &Arc<Buffer>,
        off: usize,
        len: u32,
        site: SiteId,
    ) -> Result<NblId> {
        if self.fail_allocations > 0 {
            return self.nbl_over(buffer.clone(), off, len as usize, 0, site);
        }
        let nbl = self.new_nbl(None, NblKind::Plain, site)?;
        let mdl = MdlId(self.mdls.insert(Mdl {
            buffer: buffer.clone(),
            start: off,
            byte_count: len,
            next: None,
            flags: MDL_SOURCE_IS_NONPAGED_POOL,
            origin: MdlOrigin::NbOwned,
            owner_nb: None,
            site,
        }));
        let nb = NbId(self.nbs.insert(NetBuffer {
            next: None,
            mdl_chain: Some(mdl),
            current_mdl: Some(mdl),
            current_mdl_offset: 0,
            data_offset: 0,
            data_length: len as u64,
            checksum_bias: 0,
            pool: None,
            owner: NbOwner::Preallocated(nbl),
            site,
        }));
        self.mdl_mut(mdl)?.owner_nb = Some(nb);
        let n = self.nbl_mut(nbl)?;
        n.first_nb = Some(nb);
        n.prealloc_nb = Some(nb);
        Ok(nbl)
    }

    /// Frees every NBL of a chain (plain NBLs with the plain free, clones with the clone free).
    /// Stops at the first error, which names the NBL's position.
    pub fn free_chain(&mut self, head: NblId) -> Result<usize> {
        let chain = self.chain_of(head)?;
        for (i, &n) in chain.iter().enumerate() {
            if self.free_simple(n) {
                continue;
            }
            let kind = self.nbl(n)?.kind;
            let r = match kind {
                NblKind::Plain => self.free_nbl(n),
                NblKind::WfpClone => self.free_clone(n, 0, true),
                NblKind::NdisClone { flags } => self.free_clone(n, flags, false),
            };
            r.map_err(|e| Error {
                message: format!("NBL {i} of the chain: {}", e.message),
                ..e
            })?;
        }
        Ok(chain.len())
    }

    /// Frees an NBL built by `build_one` that nothing else refers to (one owned NB over one
    /// owned MDL, no clones, references or context) in one step; false when it is not that
    /// simple, so the caller takes the general path.
    fn free_simple(&mut self, nbl: NblId) -> bool {
        let Ok(n) = self.nbl(nbl) else { return false };
        if n.kind != NblKind::Plain
            || n.child_ref_count != 0
            || n.wfp_refs != 0
            || !n.context.is_empty()
        {
            return false;
        }
        let Some(nb) = n.first_nb.filter(|&f| Some(f) == n.prealloc_nb) else {
            return false;
        };
        let Ok(b) = self.nb(nb) else { return false };
        if b.next.is_some() || b.owner != NbOwner::Preallocated(nbl) {
            return false;
        }
        let Some(m) = b.mdl_chain.filter(|&m| Some(m) == b.current_mdl) else {
            return false;
        };
        match self.mdl(m) {
            Ok(mdl)
                if mdl.next.is_none()
                    && mdl.owner_nb == Some(nb)
                    && mdl.origin == MdlOrigin::NbOwned => {}
            _ => return false,
        }
        let _ = self.mdls.remove(m.0);
        let _ = self.nbs.remove(nb.0);
        let _ = self.nbls.remove(nbl.0);
        true
    }

    /// NdisRetreatNetBufferListDataStart with the default allocator: every NB, rolled back on failure.
    pub fn retreat_nbl(&mut self, nbl: NblId, delta: u32, backfill: u32) -> Result<()> {
        let nbs = self.nbs_of(nbl)?;
        for (i, &nb) in nbs.iter().enumerate() {
            if let Err(e) = self.retreat(nb, delta, backfill) {
                for &done in &nbs[..i] {
                    let _ = self.advance(done, delta, true, false);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// NdisAdvanceNetBufferListDataStart without a FreeMdlHandler. Checked for every NB first,
    /// so a failure leaves the NBL unchanged.
    pub fn advance_nbl(&mut self, nbl: NblId, delta: u32, free_mdl: bool) -> Result<()> {
        let nbs = self.nbs_of(nbl)?;
        for &nb in &nbs {
            self.validate_nb(nb)?;
            let len = self.nb(nb)?.data_length;
            if delta as u64 > len {
                return Err(Error::invalid(
                    STATUS_INVALID_PARAMETER,
                    format!("advance by {delta} past the data: DataLength is {len}"),
                ));
            }
        }
        for nb in nbs {
            self.advance(nb, delta, free_mdl, false)?;
        }
        Ok(())
    }

    /// Retreats every NB of every NBL of a chain; on failure the NBLs already done are advanced
    /// back, so the chain is unchanged.
    pub fn retreat_chain(&mut self, head: NblId, delta: u32, backfill: u32) -> Result<usize> {
        let chain = self.chain_of(head)?;
        for (i, &n) in chain.iter().enumerate() {
            if let Err(e) = self.retreat_nbl(n, delta, backfill) {
                for &done in &chain[..i] {
                    let _ = self.advance_nbl(done, delta, true);
                }
                return Err(Error {
                    message: format!("NBL {i} of the chain: {}", e.message),
                    ..e
                });
            }
        }
        Ok(chain.len())
    }

    /// Advances every NB of every NBL of a chain (checked first; unchanged on failure).
    pub fn advance_chain(&mut self, head: NblId, delta: u32, free_mdl: bool) -> Result<usize> {
        let chain = self.chain_of(head)?;
        for (i, &n) in chain.iter().enumerate() {
            for nb in self.nbs_of(n)? {
                let len = self.nb(nb)?.data_length;
                if delta as u64 > len {
                    return Err(Error::invalid(
                        STATUS_INVALID_PARAMETER,
                        format!("NBL {i} of the chain: advance by {delta} past the data: DataLength is {len}"),
                    ));
                }
            }
        }
        for n in &chain {
            self.advance_nbl(*n, delta, free_mdl)?;
        }
        Ok(chain.len())
    }

    /// Packs the used data of every NB of a chain into one buffer with offsets and lengths.
    pub fn export_chain(&self, head: NblId) -> Result<ChainExport> {
        let chain = self.chain_of(head)?;
        let mut out = ChainExport::default();
        for (i, &n) in chain.iter().enumerate() {
            for nb in self.nbs_of(n)? {
                let len = self.nb(nb)?.data_length;
                let len32 = u32::try_from(len).map_err(|_| {
                    Error::invalid(STATUS_INVALID_PARAMETER, "NB too long to export")
                })?;
                let start = out.data.len();
                out.data.resize(start + len as usize, 0);
                self.copy_out(nb, 0, &mut out.data[start..])?;
                out.offsets.push(start as u64);
                out.lengths.push(len32);
                out.nbl_index.push(i as u32);
            }
        }
        Ok(out)
    }

    /// Splits an NBL of N NET_BUFFERs into N WFP clones of one NB each, sharing memory, linked by
    /// `Next` (the raw-send rule: one NB per NBL). Each is a child of `nbl`; free them with the
    /// clone free.
    pub fn split_nbl(&mut self, nbl: NblId, site: SiteId) -> Result<Vec<NblId>> {
        let nbs = self.nbs_of(nbl)?;
        let mut out: Vec<NblId> = Vec::with_capacity(nbs.len());
        for (i, &nb) in nbs.iter().enumerate() {
            match self.clone_single_nb(nbl, nb, site) {
                Ok(c) => {
                    if let Some(&p) = out.last() {
                        self.nbl_mut(p)?.next = Some(c);
                    }
                    out.push(c);
                }
                Err(e) => {
                    for c in out {
                        let _ = self.free_clone(c, 0, true);
                    }
                    return Err(Error {
                        message: format!("NB {i}: {}", e.message),
                        ..e
                    });
                }
            }
        }
        Ok(out)
    }

    fn clone_single_nb(&mut self, parent: NblId, nb: NbId, site: SiteId) -> Result<NblId> {
        // Temporarily present the NB as a one-NB NBL to reuse the clone geometry rules.
        let saved_next = self.nb(nb)?.next;
        let saved_first = self.nbl(parent)?.first_nb;
        self.nb_mut(nb)?.next = None;
        self.nbl_mut(parent)?.first_nb = Some(nb);
        let made = self.clone_nbl(parent, 0, true, false, site);
        self.nb_mut(nb)?.next = saved_next;
        self.nbl_mut(parent)?.first_nb = saved_first;
        made
    }

    /// Number of NBs of an NBL.
    pub fn nb_count(&self, nbl: NblId) -> Result<usize> {
        Ok(self.nbs_of(nbl)?.len())
    }

    /// True when an NB was allocated as part of `nbl` (preallocated or cloned).
    pub fn nb_belongs_to(&self, nb: super::NbId, nbl: NblId) -> Result<bool> {
        Ok(matches!(self.nb(nb)?.owner, NbOwner::Preallocated(o) | NbOwner::Clone(o) if o == nbl))
    }
}
