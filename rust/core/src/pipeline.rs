//! Native pipelines: stages that run entirely in Rust over a chain of NBLs (replay's hot path).
//!
//! Every stage works on each NB's data as it lies. Link-layer stages move the data start with
//! retreat/advance and keep the NBL's replay metadata (link type, original length) truthful,
//! so what is written out is a valid capture record. Network-layer stages need data that
//! starts at the IP header (after `StripLink`, or from a raw-IP capture); other packets are
//! counted as skipped, never guessed at.

use crate::bytes::Segmented;
use crate::capture::{network_layer, LinkType};
use crate::checksum::ChecksumInfo;
use crate::heap::{Heap, NbId, NblId};
use crate::packet::{self, Endpoint};
use crate::{Error, Result};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const VLAN_TPIDS: [u16; 3] = [0x8100, 0x88A8, 0x9100];

/// One transformation applied to every packet of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Advance past the link header to the IP header; the record becomes LINKTYPE_RAW.
    StripLink,
    /// Retreat 14 bytes and write an Ethernet header (ethertype from the IP version).
    PushEthernet { src: [u8; 6], dst: [u8; 6] },
    /// Remove the outermost 802.1Q/802.1ad tag of an Ethernet frame.
    VlanPop,
    /// Insert an 802.1Q tag (TPID 0x8100) with this TCI after the MAC addresses.
    VlanPush { tci: u16 },
    /// Rewrite an address (4 or 16 bytes) with RFC 1624 checksum updates; with `from`, only
    /// packets whose current address equals it.
    NatAddress {
        which: Endpoint,
        from: Option<Vec<u8>>,
        to: Vec<u8>,
    },
    /// Rewrite a TCP/UDP port incrementally; with `from`, only packets using that port.
    NatPort {
        which: Endpoint,
        from: Option<u16>,
        to: u16,
    },
    /// Decrement the IPv4 TTL / IPv6 hop limit (packets at 0 are errors, not wrapped).
    DecrementTtl,
    /// Recompute the IPv4 header and transport checksums (offload-aware per NBL).
    FixChecksums,
    /// Count checksum verdicts without changing anything (finds the IP header behind any
    /// link header it can decode).
    VerifyChecksums,
}

/// What a stage did over a chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StageStats {
    pub applied: u64,
    /// Packets the stage does not apply to (not IP, no VLAN tag, address not matched, ...).
    pub skipped: u64,
    pub errors: u64,
    /// The first error, with the packet's index in the chain.
    pub first_error: Option<(u64, String)>,
    /// VerifyChecksums only: transport verdict counts indexed by `Verdict as usize`; the IP
    /// header verdicts follow in the next five slots.
    pub verdicts: [u64; 10],
}

/// Link types whose records start at the IP header.
fn is_raw_ip(link: u32) -> bool {
    matches!(
        LinkType(link & 0xFFFF),
        LinkType::RAW | LinkType::RAW_BSD | LinkType::RAW_OPENBSD | LinkType::IPV4 | LinkType::IPV6
    )
}

enum Outcome {
    Applied,
    Skipped,
}

impl Heap {
    /// Runs `stages` over every NB of the chain starting at `head`; `stats` gets one entry per
    /// stage. A packet that fails a stage is counted and passed on unchanged to the next one.
    pub fn run_pipeline(
        &mut self,
        head: NblId,
        stages: &[Stage],
        stats: &mut Vec<StageStats>,
    ) -> Result<u64> {
        stats.resize(stages.len(), StageStats::default());
        let mut index = 0u64;
        let mut cur = Some(head);
        let live = self.live_counts().2;
        while let Some(nbl) = cur {
            let nbs = self.nbs_of(nbl)?;
            for nb in nbs {
                for (stage, st) in stages.iter().zip(stats.iter_mut()) {
                    match self.apply_stage(nbl, nb, stage, st) {
                        Ok(Outcome::Applied) => st.applied += 1,
                        Ok(Outcome::Skipped) => st.skipped += 1,
                        Err(e) => {
                            st.errors += 1;
                            st.first_error.get_or_insert((index, e.message));
                        }
                    }
                }
                index += 1;
            }
            cur = self.nbl(nbl)?.next;
            if index as usize > live.saturating_mul(64) + 1_000_000 {
                return Err(Error::state(
                    None,
                    "NET_BUFFER_LIST chain has a cycle (NBL.Next loops)",
                ));
            }
        }
        Ok(index)
    }

    fn apply_stage(
        &mut self,
        nbl: NblId,
        nb: NbId,
        stage: &Stage,
        st: &mut StageStats,
    ) -> Result<Outcome> {
        let meta = self.nbl(nbl)?.meta;
        let info = self.checksum_info(nbl)?;
        match stage {
            Stage::StripLink => {
                let mut head = [0u8; 128];
                let n = self.nb_pieces(nb)?.read_at(0, &mut head);
                match network_layer(LinkType(meta.link_type), &head[..n]).ip() {
                    Some((_, offset)) => {
                        self.advance(nb, offset as u32, false, false)?;
                        let m = &mut self.nbl_mut(nbl)?.meta;
                        m.link_type = LinkType::RAW.0;
                        m.orig_len = m.orig_len.saturating_sub(offset as u32);
                        Ok(Outcome::Applied)
                    }
                    None => Ok(Outcome::Skipped),
                }
            }
            Stage::PushEthernet { src, dst } => {
                if !is_raw_ip(meta.link_type) {
                    return Ok(Outcome::Skipped);
                }
                let mut first = [0u8; 1];
                if self.nb_pieces(nb)?.read_at(0, &mut first) != 1 {
                    return Ok(Outcome::Skipped);
                }
                let ethertype = match first[0] >> 4 {
                    4 => ETHERTYPE_IPV4,
                    6 => ETHERTYPE_IPV6,
                    _ => return Ok(Outcome::Skipped),
                };
                self.retreat(nb, 14, 0)?;
                let mut hdr = [0u8; 14];
                hdr[..6].copy_from_slice(dst);
                hdr[6..12].copy_from_slice(src);
                hdr[12..].copy_from_slice(&ethertype.to_be_bytes());
                self.nb_pieces_mut(nb)?.write_at(0, &hdr);
                let m = &mut self.nbl_mut(nbl)?.meta;
                m.link_type = LinkType::EN10MB.0;
                m.orig_len = m.orig_len.saturating_add(14);
                Ok(Outcome::Applied)
            }
            Stage::VlanPop => {
                if LinkType(meta.link_type & 0xFFFF) != LinkType::EN10MB {
                    return Ok(Outcome::Skipped);
                }
                let mut macs = [0u8; 16];
                if self.nb_pieces(nb)?.read_at(0, &mut macs) < 16 {
                    return Ok(Outcome::Skipped);
                }
                if !VLAN_TPIDS.contains(&u16::from_be_bytes([macs[12], macs[13]])) {
                    return Ok(Outcome::Skipped);
                }
                self.advance(nb, 4, false, false)?;
                self.nb_pieces_mut(nb)?.write_at(0, &macs[..12]);
                let m = &mut self.nbl_mut(nbl)?.meta;
                m.orig_len = m.orig_len.saturating_sub(4);
                Ok(Outcome::Applied)
            }
            Stage::VlanPush { tci } => {
                if LinkType(meta.link_type & 0xFFFF) != LinkType::EN10MB {
                    return Ok(Outcome::Skipped);
                }
                let mut macs = [0u8; 12];
                if self.nb_pieces(nb)?.read_at(0, &mut macs) < 12 {
                    return Ok(Outcome::Skipped);
                }
                self.retreat(nb, 4, 0)?;
                let mut hdr = [0u8; 16];
                hdr[..12].copy_from_slice(&macs);
                hdr[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
                hdr[14..].copy_from_slice(&tci.to_be_bytes());
                self.nb_pieces_mut(nb)?.write_at(0, &hdr);
                let m = &mut self.nbl_mut(nbl)?.meta;
                m.orig_len = m.orig_len.saturating_add(4);
                Ok(Outcome::Applied)
            }
            Stage::NatAddress { which, from, to } => {
                if !is_raw_ip(meta.link_type) {
                    return Ok(Outcome::Skipped);
                }
                let mut p = self.nb_pieces_mut(nb)?;
                if let Some(from) = from {
                    if !address_matches(&p, *which, from) {
                        return Ok(Outcome::Skipped);
                    }
                }
                packet::rewrite_address(&mut p, *which, to, info)?;
                Ok(Outcome::Applied)
            }
            Stage::NatPort { which, from, to } => {
                if !is_raw_ip(meta.link_type) {
                    return Ok(Outcome::Skipped);
                }
                let mut p = self.nb_pieces_mut(nb)?;
                if let Some(from) = from {
                    // rewrite_port returns the old port: undo when it did not match.
                    let old = packet::rewrite_port(&mut p, *which, *to, info)?;
                    if old != *from {
                        packet::rewrite_port(&mut p, *which, old, info)?;
                        return Ok(Outcome::Skipped);
                    }
                    return Ok(Outcome::Applied);
                }
                packet::rewrite_port(&mut p, *which, *to, info)?;
                Ok(Outcome::Applied)
            }
            Stage::DecrementTtl => {
                if !is_raw_ip(meta.link_type) {
                    return Ok(Outcome::Skipped);
                }
                packet::decrement_ttl(&mut self.nb_pieces_mut(nb)?, info)?;
                Ok(Outcome::Applied)
            }
            Stage::FixChecksums => {
                if !is_raw_ip(meta.link_type) {
                    return Ok(Outcome::Skipped);
                }
                self.fix_nb(nb, info)?;
                Ok(Outcome::Applied)
            }
            Stage::VerifyChecksums => {
                let pieces = self.nb_pieces(nb)?;
                let at = if is_raw_ip(meta.link_type) {
                    0
                } else {
                    let mut head = [0u8; 128];
                    let n = pieces.read_at(0, &mut head);
                    match network_layer(LinkType(meta.link_type), &head[..n]).ip() {
                        Some((_, offset)) => offset,
                        None => return Ok(Outcome::Skipped),
                    }
                };
                let v = packet::verify_at(&pieces, at, ChecksumInfo::NONE, &Default::default())?;
                st.verdicts[v.transport as usize] += 1;
                st.verdicts[5 + v.ip as usize] += 1;
                Ok(Outcome::Applied)
            }
        }
    }
}

/// Whether the IP source/destination address equals `want` (4 bytes IPv4, 16 bytes IPv6).
fn address_matches<S: Segmented + ?Sized>(data: &S, which: Endpoint, want: &[u8]) -> bool {
    let mut first = [0u8; 1];
    if data.read_at(0, &mut first) != 1 {
        return false;
    }
    let at = match (first[0] >> 4, want.len(), which) {
        (4, 4, Endpoint::Source) => 12,
        (4, 4, Endpoint::Destination) => 16,
        (6, 16, Endpoint::Source) => 8,
        (6, 16, Endpoint::Destination) => 24,
        _ => return false,
    };
    let mut got = [0u8; 16];
    data.read_at(at, &mut got[..want.len()]) == want.len() && &got[..want.len()] == want
}

/// Verdict slots of `StageStats::verdicts` (the order of `packet::Verdict`), for reporting.
pub const VERDICT_NAMES: [&str; 5] = [
    "valid",
    "invalid",
    "offload_partial",
    "absent",
    "not_checkable",
];

/// Where a natively injected chain goes (the inject function's path through the stack).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectPath {
    NetworkSend,
    NetworkReceive,
    Forward,
    MacSend,
    MacReceive,
}

impl InjectPath {
    fn is_send(self) -> bool {
        matches!(
            self,
            InjectPath::NetworkSend | InjectPath::Forward | InjectPath::MacSend
        )
    }
    fn is_l2(self) -> bool {
        matches!(self, InjectPath::MacSend | InjectPath::MacReceive)
    }
}

/// What a native inject + complete pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InjectStats {
    /// Accepted by the inject call and delivered.
    pub injected: u64,
    /// Refused by the inject call (no completion runs for these): the first reason is kept.
    pub rejected: u64,
    pub first_rejection: Option<(u64, String)>,
    /// Completions run (one per accepted NBL).
    pub completed: u64,
    /// Completed with a failure Status (larger than the MTU).
    pub failed: u64,
    pub bytes: u64,
}

impl Heap {
    /// The replay fast path of an inject function when no callout needs to see the packets:
    /// per NBL, the call's packet checks (one NET_BUFFER for raw IP paths, an IP header for
    /// network paths, an Ethernet header for MAC paths), then completion with `Status`
    /// (`STATUS_INVALID_BUFFER_SIZE` past the MTU, else success) and the injection-history
    /// tag in `WfpNetBufferListInfo` (`tags[0]` IPv4 / MAC, `tags[1]` IPv6), as the Python stack
    /// does it. Refused NBLs get the call's status in `Status` and no completion.
    pub fn inject_chain(
        &mut self,
        head: NblId,
        path: InjectPath,
        mtu: u32,
        tags: [usize; 2],
    ) -> Result<InjectStats> {
        use crate::status::{STATUS_FWP_INVALID_PARAMETER, STATUS_INVALID_BUFFER_SIZE};
        let mut st = InjectStats::default();
        for (i, nbl) in self.chain_of(head)?.into_iter().enumerate() {
            let nbs = self.nbs_of(nbl)?;
            let mut reject = |heap: &mut Heap, why: &str| -> Result<()> {
                st.rejected += 1;
                st.first_rejection
                    .get_or_insert((i as u64, why.to_string()));
                heap.nbl_mut(nbl)?.status = STATUS_FWP_INVALID_PARAMETER;
                Ok(())
            };
            if !path.is_l2() && nbs.len() != 1 {
                reject(
                    self,
                    "a raw IP injection needs exactly one NET_BUFFER in the NBL",
                )?;
                continue;
            }
            let Some(&first) = nbs.first() else {
                reject(self, "the NBL has no NET_BUFFER")?;
                continue;
            };
            let len = self.nb(first)?.data_length;
            let mut lead = [0u8; 1];
            let got = self.nb_pieces(first)?.read_at(0, &mut lead);
            let version = lead[0] >> 4;
            let tag = if path.is_l2() {
                if len < 14 {
                    reject(
                        self,
                        "a MAC injection needs at least an Ethernet header (14 bytes)",
                    )?;
                    continue;
                }
                tags[0]
            } else {
                match (got, version) {
                    (1, 4) => tags[0],
                    (1, 6) => tags[1],
                    _ => {
                        reject(self, "the data does not start with an IPv4/IPv6 header")?;
                        continue;
                    }
                }
            };
            st.injected += 1;
            st.completed += 1;
            let limit = mtu as u64 + if path.is_l2() { 14 } else { 0 };
            let n = self.nbl_mut(nbl)?;
            n.info.set(crate::heap::WFP_INFO_SLOT, tag);
            if path.is_send() && len > limit {
                n.status = STATUS_INVALID_BUFFER_SIZE;
                st.failed += 1;
            } else {
                n.status = 0;
                st.bytes += len;
            }
        }
        Ok(st)
    }
}
