//! In-place rewrites with incremental checksum repair (RFC 1624, `checksums.md §3`, §7.4): the
//! per-packet work of a NAT or forwarder. Each call parses the headers once, reads and writes
//! a few bytes, and allocates nothing on success.
//!
//! Which form a checksum field takes follows the Transmit view of `info`: a TCP/UDP field
//! holding an offload seed is updated as a plain sum (and port changes leave it alone, since
//! the seed does not cover ports); an IPv4 header checksum left for the NIC is not touched;
//! a UDP-over-IPv4 checksum of 0 ("none") stays 0.

use super::layout::{layout, Layout};
use super::nat_fast::{address_v4, on_first_piece, port_v4, ttl_v4};
use super::patch::Patch;
use crate::bytes::Segmented;
use crate::checksum::incremental::{apply_delta, delta, update_udp};
use crate::checksum::{ones_add, ChecksumInfo};
use crate::status::{STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED};
use crate::wire::field::too_short;
use crate::wire::ip::protocol;
use crate::wire::ipv4::{CHECKSUM_OFFSET, DST_OFFSET, SRC_OFFSET, TTL_OFFSET};
use crate::wire::ipv6::HOP_LIMIT_OFFSET;
use crate::wire::reader::Reader;
use crate::{Error, ErrorKind, Result};

/// Which address or port of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Source,
    Destination,
}

/// How a 16-bit field covering the changed bytes is updated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// A stored checksum: RFC 1624 eqn 3.
    Checksum,
    /// A UDP checksum: eqn 3, but 0 stays 0 and a 0 result is stored as `0xFFFF`.
    UdpChecksum,
    /// An uncomplemented sum (offload seed): `P' = P +' ~m +' m'`.
    Seed,
}

/// Writes `new` at `field_offset` and repairs the 16-bit field at `checksum_offset`
/// incrementally; returns the old value.
///
/// Offsets are from the start of `data`; the checksummed region must start at an even offset
/// (true for IP and L4 headers in a network-layer view), so a field at an odd offset is
/// treated as straddling two words.
pub fn update_field16<S: Segmented + ?Sized>(
    data: &mut S,
    field_offset: usize,
    new: u16,
    checksum_offset: usize,
    kind: FieldKind,
) -> Result<u16> {
    let old = update_field(
        data,
        field_offset,
        &new.to_be_bytes(),
        checksum_offset,
        kind,
    )?;
    Ok(u16::from_be_bytes(old))
}

/// [`update_field16`] for a 32-bit field.
pub fn update_field32<S: Segmented + ?Sized>(
    data: &mut S,
    field_offset: usize,
    new: u32,
    checksum_offset: usize,
    kind: FieldKind,
) -> Result<u32> {
    let old = update_field(
        data,
        field_offset,
        &new.to_be_bytes(),
        checksum_offset,
        kind,
    )?;
    Ok(u32::from_be_bytes(old))
}

fn update_field<S: Segmented + ?Sized, const N: usize>(
    data: &mut S,
    field_offset: usize,
    new: &[u8; N],
    checksum_offset: usize,
    kind: FieldKind,
) -> Result<[u8; N]> {
    let r = Reader::new(&*data);
    let avail = r.len();
    let old: [u8; N] = r
        .array(field_offset)
        .ok_or_else(|| too_short("field", N, avail.saturating_sub(field_offset), field_offset))?;
    let stored = r.u16(checksum_offset).ok_or_else(|| {
        too_short(
            "checksum field",
            2,
            avail.saturating_sub(checksum_offset),
            checksum_offset,
        )
    })?;
    let d = delta(&old, new, field_offset % 2 == 1);
    let mut p = Patch::new();
    p.put(field_offset, new);
    p.put16(checksum_offset, apply(kind, stored, d));
    p.apply(data)?;
    Ok(old)
}

#[inline]
pub(super) fn apply(kind: FieldKind, stored: u16, d: u16) -> u16 {
    match kind {
        FieldKind::Checksum => apply_delta(stored, d),
        FieldKind::UdpChecksum => update_udp(stored, d),
        FieldKind::Seed => ones_add(stored, d),
    }
}

/// Rewrites the IPv4 (4-byte `new`) or IPv6 (16-byte `new`) source or destination address of
/// the packet at the start of `data`, repairing the IPv4 header checksum and the TCP/UDP/ICMPv6
/// checksum (address words are in the pseudo-header). An IPv6 address that is not the
/// pseudo-header's (routing header with segments left, Home Address option) leaves the L4
/// checksum alone. Non-first fragments get the IP-header repair only.
pub fn rewrite_address<S: Segmented + ?Sized>(
    data: &mut S,
    which: Endpoint,
    new: &[u8],
    info: ChecksumInfo,
) -> Result<()> {
    if let Ok(a) = <&[u8; 4]>::try_from(new) {
        if on_first_piece(data, |p| address_v4(p, which, a, info)).is_some() {
            return Ok(());
        }
    }
    let lay = layout(&*data, 0)?;
    match (lay.v6, <[u8; 4]>::try_from(new), <[u8; 16]>::try_from(new)) {
        (false, Ok(a), _) => rewrite_v4(data, &lay, which, &a, info),
        (true, _, Ok(a)) => rewrite_v6(data, &lay, which, &a, info),
        _ => Err(Error::invalid(
            STATUS_INVALID_PARAMETER,
            format!(
                "a {}-byte address does not fit an IPv{} packet",
                new.len(),
                lay.summary.ip_version
            ),
        )),
    }
}

fn rewrite_v4<S: Segmented + ?Sized>(
    data: &mut S,
    lay: &Layout,
    which: Endpoint,
    new: &[u8; 4],
    info: ChecksumInfo,
) -> Result<()> {
    let at = match which {
        Endpoint::Source => SRC_OFFSET,
        Endpoint::Destination => DST_OFFSET,
    };
    let r = Reader::new(&*data);
    let old: [u8; 4] = r
        .array(at)
        .ok_or_else(|| too_short("IPv4 header", 20, r.len(), 0))?;
    let hc = r.u16(CHECKSUM_OFFSET).unwrap_or(0);
    let l4 = l4_field(&r, lay, info)?;
    let d = delta(&old, new, false);
    let mut p = Patch::new();
    p.put(at, new);
    if !info.ip_header_offloaded() {
        p.put16(CHECKSUM_OFFSET, apply_delta(hc, d));
    }
    if let Some((field, stored, kind)) = l4 {
        p.put16(field, apply(kind, stored, d));
    }
    p.apply(data)
}

fn rewrite_v6<S: Segmented + ?Sized>(
    data: &mut S,
    lay: &Layout,
    which: Endpoint,
    new: &[u8; 16],
    info: ChecksumInfo,
) -> Result<()> {
    let (at, in_pseudo) = match which {
        Endpoint::Source => (8, lay.pseudo_src == 8),
        Endpoint::Destination => (24, lay.pseudo_dst == 24),
    };
    let r = Reader::new(&*data);
    let old: [u8; 16] = r
        .array(at)
        .ok_or_else(|| too_short("IPv6 header", 40, r.len(), 0))?;
    let l4 = if in_pseudo {
        l4_field(&r, lay, info)?
    } else {
        None
    };
    let mut p = Patch::new();
    p.put(at, new);
    if let Some((field, stored, kind)) = l4 {
        p.put16(field, apply(kind, stored, delta(&old, new, false)));
    }
    p.apply(data)
}

/// The L4 checksum field an address change must repair, if any: TCP/UDP (and ICMPv6) whose
/// header is here. ICMPv4 has no pseudo-header.
fn l4_field<S: Segmented + ?Sized>(
    r: &Reader<'_, S>,
    lay: &Layout,
    info: ChecksumInfo,
) -> Result<Option<(usize, u16, FieldKind)>> {
    if lay.l4_proto == protocol::ICMP && !lay.v6 {
        return Ok(None);
    }
    let Some(field) = lay.checksum_field(r.len()) else {
        return Ok(None);
    };
    let stored = r.u16(field).unwrap_or(0);
    Ok(Some((field, stored, field_kind(lay, info))))
}

fn field_kind(lay: &Layout, info: ChecksumInfo) -> FieldKind {
    if info.transport_offloaded(lay.v6, lay.l4_proto) {
        FieldKind::Seed
    } else if lay.l4_proto == protocol::UDP {
        FieldKind::UdpChecksum
    } else {
        FieldKind::Checksum
    }
}

/// Rewrites the TCP or UDP source or destination port and repairs the L4 checksum; returns the
/// old port. Fails for other protocols and when the L4 header (through its checksum field) is
/// not here (non-first fragment, ESP, cut short).
pub fn rewrite_port<S: Segmented + ?Sized>(
    data: &mut S,
    which: Endpoint,
    new: u16,
    info: ChecksumInfo,
) -> Result<u16> {
    if let Some(old) = on_first_piece(data, |p| port_v4(p, which, new, info)) {
        return Ok(old);
    }
    let lay = layout(&*data, 0)?;
    let r = Reader::new(&*data);
    if !matches!(lay.l4_proto, protocol::TCP | protocol::UDP) {
        return Err(Error::new(
            ErrorKind::InvalidParameter,
            Some(STATUS_NOT_SUPPORTED),
            format!("protocol {} has no ports to rewrite", lay.l4_proto),
        ));
    }
    let (Some(l4), Some(field)) = (lay.l4, lay.checksum_field(r.len())) else {
        return Err(Error::malformed(format!(
            "no complete {} header to rewrite a port in (fragment or cut short)",
            if lay.l4_proto == protocol::TCP {
                "TCP"
            } else {
                "UDP"
            }
        )));
    };
    let at = l4
        + match which {
            Endpoint::Source => 0,
            Endpoint::Destination => 2,
        };
    let old = r.u16(at).unwrap_or(0);
    let stored = r.u16(field).unwrap_or(0);
    let mut p = Patch::new();
    p.put16(at, new);
    let kind = field_kind(&lay, info);
    if kind != FieldKind::Seed {
        let d = delta(&old.to_be_bytes(), &new.to_be_bytes(), false);
        p.put16(field, apply(kind, stored, d));
    }
    p.apply(data)?;
    Ok(old)
}

/// Decrements the IPv4 TTL (repairing the header checksum unless the NIC computes it) or the
/// IPv6 Hop Limit; returns the new value. Fails if it is already 0.
pub fn decrement_ttl<S: Segmented + ?Sized>(data: &mut S, info: ChecksumInfo) -> Result<u8> {
    if let Some(ttl) = on_first_piece(data, |p| ttl_v4(p, info)) {
        return Ok(ttl);
    }
    let lay = layout(&*data, 0)?;
    let r = Reader::new(&*data);
    let at = if lay.v6 { HOP_LIMIT_OFFSET } else { TTL_OFFSET };
    let [ttl, proto] = r
        .array::<2>(at)
        .ok_or_else(|| too_short("IP header", at + 2, r.len(), 0))?;
    if ttl == 0 {
        return Err(Error::state(
            None,
            format!("{} is already 0", if lay.v6 { "hop limit" } else { "TTL" }),
        ));
    }
    let hc = r.u16(CHECKSUM_OFFSET).unwrap_or(0);
    let mut p = Patch::new();
    p.put(at, &[ttl - 1]);
    if !lay.v6 && !info.ip_header_offloaded() {
        // TTL is the high byte of the word [TTL, Protocol] at offset 8.
        let d = delta(&[ttl, proto], &[ttl - 1, proto], false);
        p.put16(CHECKSUM_OFFSET, apply_delta(hc, d));
    }
    p.apply(data)?;
    Ok(ttl - 1)
}
