//! Parsing a packet that starts with an IP header into the facts every operation needs.

use super::summary::ParseSummary;
use crate::bytes::Segmented;
use crate::checksum::pseudo::{pseudo_header_v4, pseudo_header_v6};
use crate::wire::field::too_short;
use crate::wire::ip::{checksum_field_offset, protocol};
use crate::wire::ipv6_chain::{walk_ipv6, ChainEnd};
use crate::wire::reader::Reader;
use crate::{Error, Result};

/// Everything the operations need, beyond the public summary. Offsets are absolute.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub summary: ParseSummary,
    pub base: usize,
    pub v6: bool,
    /// IPv4: the whole `IHL * 4`-byte header is present (its checksum can be computed).
    pub ip_header_present: bool,
    /// IPv4 header length (IHL * 4); 40 for IPv6.
    pub ip_hlen: usize,
    /// The upper-layer header, when it is reachable.
    pub l4: Option<usize>,
    pub l4_proto: u8,
    /// Upper-layer length from the IP lengths, when they are consistent.
    pub l4_len: Option<usize>,
    /// A complete, unfragmented (or atomic) datagram whose upper layer lies entirely in the data:
    /// its transport checksum can be verified or computed.
    pub whole: bool,
    pub pseudo_src: usize,
    pub pseudo_dst: usize,
}

impl Layout {
    /// Absolute offset of the L4 checksum field, when the L4 header is reachable, the protocol
    /// has a checksum this crate handles for this IP version, and the field's bytes are present.
    pub fn checksum_field(&self, avail: usize) -> Option<usize> {
        let l4 = self.l4?;
        let rel = match (self.l4_proto, self.v6) {
            (protocol::ICMP, true) | (protocol::ICMPV6, false) => return None,
            (p, _) => checksum_field_offset(p)?,
        };
        let field = l4 + rel;
        if field + 2 > avail || self.l4_len.is_some_and(|n| rel + 2 > n) {
            return None;
        }
        Some(field)
    }

    /// The pseudo-header sum for the upper layer with length `l4_len` (0 for an LSO-style seed
    /// without length). `None` for ICMPv4 (no pseudo-header) or if an address is missing.
    pub fn pseudo_sum<S: Segmented + ?Sized>(
        &self,
        r: &Reader<'_, S>,
        l4_len: usize,
    ) -> Option<u16> {
        if self.v6 {
            let (src, dst) = (
                r.array::<16>(self.pseudo_src)?,
                r.array::<16>(self.pseudo_dst)?,
            );
            Some(pseudo_header_v6(
                &src,
                &dst,
                self.l4_proto,
                u32::try_from(l4_len).ok()?,
            ))
        } else if self.l4_proto == protocol::ICMP {
            None
        } else {
            let (src, dst) = (
                r.array::<4>(self.pseudo_src)?,
                r.array::<4>(self.pseudo_dst)?,
            );
            Some(pseudo_header_v4(
                &src,
                &dst,
                self.l4_proto,
                u16::try_from(l4_len).ok()?,
            ))
        }
    }
}

/// Parses the IP header at `base` (version from its first nibble).
#[inline]
pub(crate) fn layout<S: Segmented + ?Sized>(data: &S, base: usize) -> Result<Layout> {
    let r = Reader::new(data);
    let Some(first) = r.u8(base) else {
        return Err(too_short(
            "IP header",
            1,
            r.len().saturating_sub(base),
            base,
        ));
    };
    match first >> 4 {
        4 => layout_v4(&r, base),
        6 => layout_v6(data, &r, base),
        v => Err(Error::malformed(format!(
            "IP version field {v} is neither 4 nor 6 at offset {base}"
        ))),
    }
}

/// Parses and returns the public summary of the IP packet at `ip_offset`.
pub fn parse_at<S: Segmented + ?Sized>(data: &S, ip_offset: usize) -> Result<ParseSummary> {
    layout(data, ip_offset).map(|l| l.summary)
}

/// [`parse_at`] for data that starts with the IP header.
pub fn parse<S: Segmented + ?Sized>(data: &S) -> Result<ParseSummary> {
    parse_at(data, 0)
}

fn to_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[inline]
fn layout_v4<S: Segmented + ?Sized>(r: &Reader<'_, S>, base: usize) -> Result<Layout> {
    let avail = r.len().saturating_sub(base);
    let Some(h) = r.array::<20>(base) else {
        return Err(too_short("IPv4 header", 20, avail, base));
    };
    let ihl = h[0] & 0x0F;
    if ihl < 5 {
        return Err(Error::malformed(format!(
            "IPv4 IHL {ihl} < 5 at offset {base}"
        )));
    }
    let hlen = usize::from(ihl) * 4;
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    let frag = u16::from_be_bytes([h[6], h[7]]);
    let (mf, frag_off) = (frag & 0x2000 != 0, (frag & 0x1FFF) << 3);
    let is_fragment = mf || frag_off != 0;
    let ip_header_present = hlen <= avail;
    // Total Length 0 (TSO / BIG TCP captures) or below the header: the datagram's end is unknown.
    let end = (total >= hlen).then_some(total);

    let mut proto = h[9];
    let mut pos = hlen;
    let mut l4 = None;
    if ip_header_present && frag_off == 0 {
        // Skip IPv4 AH headers ((len + 2) * 4 bytes each) to the protocol they protect.
        let limit = end.map_or(avail, |e| e.min(avail));
        loop {
            if proto != protocol::AH {
                if proto != protocol::ESP {
                    l4 = Some(base + pos);
                }
                break;
            }
            let Some([next, len]) = (pos + 8 <= limit)
                .then(|| r.array::<2>(base + pos))
                .flatten()
            else {
                break;
            };
            proto = next;
            pos += (usize::from(len) + 2) * 4;
        }
    }
    let l4_len = end.and_then(|e| e.checked_sub(pos));
    let truncated = !ip_header_present
        || end.is_some_and(|e| e > avail)
        || (l4.is_none() && proto == protocol::AH);
    let whole = !is_fragment && l4.is_some() && l4_len.is_some() && end.is_some_and(|e| e <= avail);
    let summary = ParseSummary {
        network_offset: to_u32(base),
        network_header_len: to_u32(pos),
        transport_offset: l4.map_or(0, to_u32),
        payload_len: to_u32(l4_len.unwrap_or(0)),
        fragment_offset: u32::from(frag_off),
        fragment_id: u32::from(u16::from_be_bytes([h[4], h[5]])),
        ip_version: 4,
        transport_protocol: proto,
        is_fragment,
        first_fragment: is_fragment && frag_off == 0,
        more_fragments: mf,
        truncated,
    };
    Ok(Layout {
        summary,
        base,
        v6: false,
        ip_header_present,
        ip_hlen: hlen,
        l4,
        l4_proto: proto,
        l4_len,
        whole,
        pseudo_src: base + 12,
        pseudo_dst: base + 16,
    })
}

fn layout_v6<S: Segmented + ?Sized>(data: &S, r: &Reader<'_, S>, base: usize) -> Result<Layout> {
    let avail = r.len().saturating_sub(base);
    let c = walk_ipv6(data, base)?;
    let frag = c.fragment.filter(|f| !f.is_atomic());
    let is_fragment = frag.is_some();
    let upper = c.end == ChainEnd::Upper;
    let l4 = upper.then_some(base + c.offset);
    let l4_len = if upper { c.upper_len() } else { None };
    let complete = c.datagram_end.is_some_and(|e| e <= avail);
    let truncated = c.end == ChainEnd::Truncated || c.datagram_end.is_some_and(|e| e > avail);
    let summary = ParseSummary {
        network_offset: to_u32(base),
        network_header_len: to_u32(c.offset),
        transport_offset: l4.map_or(0, to_u32),
        payload_len: to_u32(l4_len.unwrap_or(0)),
        fragment_offset: frag.map_or(0, |f| u32::from(f.offset)),
        fragment_id: frag.map_or(0, |f| f.ident),
        ip_version: 6,
        transport_protocol: c.protocol,
        is_fragment,
        first_fragment: frag.is_some_and(|f| f.offset == 0),
        more_fragments: frag.is_some_and(|f| f.more),
        truncated,
    };
    Ok(Layout {
        summary,
        base,
        v6: true,
        ip_header_present: true,
        ip_hlen: 40,
        l4,
        l4_proto: c.protocol,
        l4_len,
        whole: upper && !is_fragment && l4_len.is_some() && complete,
        pseudo_src: base + c.src_offset,
        pseudo_dst: base + c.dst_offset,
    })
}
