//! Checksums and header operations on NET_BUFFER data as it lies across MDLs: the packet
//! functions of `crate::packet` applied to NBs, NBLs and chains. Data is read from each NB's
//! current data start (the network-layer view: the IP header first).

use super::{Heap, NbId, NblId};
use crate::checksum::ChecksumInfo;
use crate::packet::{self, FixReport, ParseSummary, Verdicts};
use crate::Result;

/// `TcpIpChecksumNetBufferListInfo`: OOB slot 0.
pub const CHECKSUM_INFO_SLOT: usize = 0;

/// One result per NB of a chain, in order, with the NBL each came from.
pub struct PerPacket<T> {
    pub nbl_index: Vec<u32>,
    pub results: Vec<Result<T>>,
}

impl Heap {
    /// The NBL's `TcpIpChecksumNetBufferListInfo`.
    pub fn checksum_info(&self, nbl: NblId) -> Result<ChecksumInfo> {
        Ok(ChecksumInfo::from_value(
            self.nbl(nbl)?.info.get(CHECKSUM_INFO_SLOT),
        ))
    }

    pub fn parse_nb(&self, nb: NbId) -> Result<ParseSummary> {
        packet::parse(&self.nb_pieces(nb)?)
    }

    pub fn verify_nb(&self, nb: NbId, info: ChecksumInfo) -> Result<Verdicts> {
        packet::verify(&self.nb_pieces(nb)?, info)
    }

    pub fn fix_nb(&self, nb: NbId, info: ChecksumInfo) -> Result<FixReport> {
        packet::fix(&mut self.nb_pieces_mut(nb)?, info)
    }

    /// Applies `f` to every NB of every NBL of the chain, with that NBL's checksum info.
    fn per_nb<T>(
        &self,
        head: NblId,
        mut f: impl FnMut(&Self, NbId, ChecksumInfo) -> Result<T>,
    ) -> Result<PerPacket<T>> {
        let mut out = PerPacket {
            nbl_index: Vec::new(),
            results: Vec::new(),
        };
        for (i, nbl) in self.chain_of(head)?.into_iter().enumerate() {
            let info = self.checksum_info(nbl)?;
            for nb in self.nbs_of(nbl)? {
                out.nbl_index.push(i as u32);
                out.results.push(f(self, nb, info));
            }
        }
        Ok(out)
    }

    pub fn verify_chain(&self, head: NblId) -> Result<PerPacket<Verdicts>> {
        self.per_nb(head, |h, nb, info| h.verify_nb(nb, info))
    }

    pub fn fix_chain(&self, head: NblId) -> Result<PerPacket<FixReport>> {
        self.per_nb(head, |h, nb, info| h.fix_nb(nb, info))
    }

    /// The Internet checksum of every NB's data (as it lies across its MDLs), in order. Walks
    /// the links directly: one lookup per NBL, NB and MDL on the common one-MDL path.
    pub fn checksum_chain(&self, head: NblId, initial: u16) -> Result<Vec<u16>> {
        let mut out = Vec::new();
        let limit = self.nbs.live();
        let mut cur = Some(head);
        while let Some(nbl_id) = cur {
            let nbl = self.nbl(nbl_id)?;
            let mut nb_cur = nbl.first_nb;
            while let Some(nb_id) = nb_cur {
                let nb = self.nb(nb_id)?;
                let single = match nb.current_mdl {
                    Some(m) => {
                        let mdl = self.mdl(m)?;
                        let off = nb.current_mdl_offset as usize;
                        let len = nb.data_length as usize;
                        (mdl.byte_count as usize >= off + len)
                            .then(|| mdl.buffer.slice(mdl.start + off, len))
                    }
                    None => Some(Ok(&[][..])),
                };
                out.push(match single {
                    Some(data) => crate::checksum::internet_checksum(data?, initial),
                    None => {
                        let p = self.nb_pieces(nb_id)?;
                        let len = crate::bytes::Segmented::total_len(&p);
                        crate::checksum::internet_checksum_segmented(&p, 0, len, initial)?
                    }
                });
                if out.len() > limit {
                    return Err(crate::Error::state(
                        None,
                        "NET_BUFFER_LIST chain has a cycle (Next loops)",
                    ));
                }
                nb_cur = nb.next;
            }
            cur = nbl.next;
        }
        Ok(out)
    }

    pub fn parse_chain(&self, head: NblId) -> Result<PerPacket<ParseSummary>> {
        self.per_nb(head, |h, nb, _| h.parse_nb(nb))
    }
}
