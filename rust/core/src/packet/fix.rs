//! Writing checksums: what the TCP/IP stack leaves in a packet after a callout modified it
//! (`fix`), and what a NIC does with an offloaded send (`complete_offload`), `checksums.md §7`.

use super::layout::{layout, Layout};
use super::patch::Patch;
use super::summary::ParseSummary;
use crate::bytes::Segmented;
use crate::checksum::{ones_add, ones_sum, ones_sum_segmented, ChecksumInfo};
use crate::wire::field::{too_short, u16_at};
use crate::wire::ip::protocol;
use crate::wire::ipv4::{CHECKSUM_OFFSET, MAX_HEADER_LEN};
use crate::wire::reader::Reader;
use crate::Result;

/// What was written into one checksum field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FixAction {
    /// A full checksum (UDP: never 0, a computed 0 is written as `0xFFFF`).
    Full(u16),
    /// The pseudo-header seed, for a NIC that will finish the checksum (TX offload).
    Seed(u16),
    /// 0, for an IPv4 header whose checksum the NIC computes.
    Cleared,
    /// Nothing: IPv6 (no header checksum), a fragment, ESP, a protocol without a checksum
    /// here, or a datagram that is cut short or whose lengths are inconsistent.
    Untouched,
}

/// The outcome of [`fix`] / [`complete_offload`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixReport {
    pub ip: FixAction,
    pub transport: FixAction,
    pub summary: ParseSummary,
}

/// [`fix_at`] for data that starts with the IP header.
pub fn fix<S: Segmented + ?Sized>(data: &mut S, info: ChecksumInfo) -> Result<FixReport> {
    fix_at(data, 0, info)
}

/// Recomputes the checksums of the IP packet at `ip_offset` the way the stack would send it.
///
/// `info` is the Transmit view: for IPv4 with `IpHeaderChecksum` the header checksum is left
/// 0; for TCP/UDP with the matching offload bit the field receives the pseudo-header seed
/// (§7.3); otherwise full checksums are computed, including a UDP checksum where the field
/// was 0 (keep "no checksum" with the incremental helpers instead). The transport checksum
/// of a fragment is never written: a non-first fragment has no L4 header, and the first
/// fragment's checksum covers bytes that are not here.
pub fn fix_at<S: Segmented + ?Sized>(
    data: &mut S,
    ip_offset: usize,
    info: ChecksumInfo,
) -> Result<FixReport> {
    let lay = layout(&*data, ip_offset)?;
    let ip = if lay.v6 || !lay.ip_header_present {
        FixAction::Untouched
    } else if info.ip_header_offloaded() {
        put16(data, lay.base + CHECKSUM_OFFSET, 0)?;
        FixAction::Cleared
    } else {
        let c = ipv4_header_checksum(&*data, &lay)?;
        put16(data, lay.base + CHECKSUM_OFFSET, c)?;
        FixAction::Full(c)
    };
    let transport = match transport_target(&*data, &lay) {
        None => FixAction::Untouched,
        Some(t) if info.transport_offloaded(lay.v6, lay.l4_proto) => {
            put16(data, t.field, t.pseudo)?;
            FixAction::Seed(t.pseudo)
        }
        Some(t) => {
            // Zero the field first so the sum is exactly RFC 1071's (matters only for ±0).
            put16(data, t.field, 0)?;
            let sum = ones_sum_segmented(&*data, t.l4, t.len)?;
            let c = finish(lay.l4_proto, !ones_add(t.pseudo, sum));
            put16(data, t.field, c)?;
            FixAction::Full(c)
        }
    };
    Ok(FixReport {
        ip,
        transport,
        summary: lay.summary,
    })
}

/// What a NIC does with a send whose Transmit info requests offload (§7.2, §7.3): the IPv4
/// header checksum from scratch, and TCP/UDP as `~(sum of the segment with the seed left in
/// the field)`. A wrong seed therefore yields a wrong checksum, as on real hardware. With
/// neither IsIPv4 nor IsIPv6 set nothing is done.
pub fn complete_offload<S: Segmented + ?Sized>(
    data: &mut S,
    info: ChecksumInfo,
) -> Result<FixReport> {
    complete_offload_at(data, 0, info)
}

/// [`complete_offload`] for the IP packet at `ip_offset`.
pub fn complete_offload_at<S: Segmented + ?Sized>(
    data: &mut S,
    ip_offset: usize,
    info: ChecksumInfo,
) -> Result<FixReport> {
    let lay = layout(&*data, ip_offset)?;
    let mut report = FixReport {
        ip: FixAction::Untouched,
        transport: FixAction::Untouched,
        summary: lay.summary,
    };
    if !info.transmit_active() {
        return Ok(report);
    }
    if !lay.v6 && lay.ip_header_present && info.ip_header_offloaded() {
        let c = ipv4_header_checksum(&*data, &lay)?;
        put16(data, lay.base + CHECKSUM_OFFSET, c)?;
        report.ip = FixAction::Full(c);
    }
    if info.transport_offloaded(lay.v6, lay.l4_proto) {
        if let Some(t) = transport_target(&*data, &lay) {
            let c = finish(lay.l4_proto, !ones_sum_segmented(&*data, t.l4, t.len)?);
            put16(data, t.field, c)?;
            report.transport = FixAction::Full(c);
        }
    }
    Ok(report)
}

/// Where and over what a transport checksum is computed.
struct Target {
    l4: usize,
    len: usize,
    field: usize,
    /// Pseudo-header sum with the L4 length (0 for ICMPv4).
    pseudo: u16,
}

fn transport_target<S: Segmented + ?Sized>(data: &S, lay: &Layout) -> Option<Target> {
    let r = Reader::new(data);
    let (l4, len, field) = (lay.l4?, lay.l4_len?, lay.checksum_field(r.len())?);
    if !lay.whole {
        return None;
    }
    let pseudo = match lay.pseudo_sum(&r, len) {
        Some(p) => p,
        None if lay.l4_proto == protocol::ICMP => 0,
        None => return None,
    };
    Some(Target {
        l4,
        len,
        field,
        pseudo,
    })
}

/// UDP never transmits a computed 0 (that would mean "no checksum").
fn finish(proto: u8, c: u16) -> u16 {
    if proto == protocol::UDP && c == 0 {
        0xFFFF
    } else {
        c
    }
}

fn ipv4_header_checksum<S: Segmented + ?Sized>(data: &S, lay: &Layout) -> Result<u16> {
    let r = Reader::new(data);
    let mut buf = [0u8; MAX_HEADER_LEN];
    let hdr = r.bytes(lay.base, lay.ip_hlen, &mut buf).ok_or_else(|| {
        too_short(
            "IPv4 header",
            lay.ip_hlen,
            r.len().saturating_sub(lay.base),
            lay.base,
        )
    })?;
    let stored = u16_at(hdr, CHECKSUM_OFFSET);
    // Removing the stored field from the sum equals zeroing it: the header's first byte is
    // never 0, so the sum cannot hit the ±0 ambiguity.
    Ok(!ones_add(ones_sum(hdr), !stored))
}

/// Writes a big-endian u16; fails if the bytes are not all there.
fn put16<S: Segmented + ?Sized>(data: &mut S, at: usize, v: u16) -> Result<()> {
    let mut p = Patch::new();
    p.put16(at, v);
    p.apply(data)
}
