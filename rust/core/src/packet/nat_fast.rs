//! The NAT fast path: an IPv4 packet without AH whose header and L4 checksum field lie in the
//! first piece is rewritten on that piece as a plain slice, inside a single `visit_mut`. Every
//! check happens before the first write; anything unusual (IPv6, AH, fields past the first
//! piece, errors to report) returns `None` untouched and the caller takes the general path,
//! which computes the same bytes.

use super::nat::{apply, Endpoint, FieldKind};
use crate::bytes::Segmented;
use crate::checksum::incremental::{apply_delta, delta};
use crate::checksum::ChecksumInfo;
use crate::wire::ip::protocol;
use crate::wire::ipv4::{CHECKSUM_OFFSET, DST_OFFSET, SRC_OFFSET, TTL_OFFSET};

/// Runs `f` on the first non-empty piece (which starts at offset 0).
#[inline]
pub(super) fn on_first_piece<S: Segmented + ?Sized, R>(
    data: &mut S,
    f: impl FnOnce(&mut [u8]) -> Option<R>,
) -> Option<R> {
    let mut f = Some(f);
    let mut out = None;
    data.visit_mut(&mut |piece| {
        if let Some(f) = f.take() {
            out = f(piece);
        }
        false
    });
    out
}

/// What the fast path needs from an IPv4 header lying entirely in `p`.
struct V4 {
    proto: u8,
    /// Offset of the L4 header, unless this is a non-first fragment or ESP.
    l4: Option<usize>,
    /// Upper-layer length from Total Length, when consistent.
    l4_len: Option<usize>,
}

#[inline]
fn v4(p: &[u8]) -> Option<V4> {
    let h: &[u8; 20] = p.first_chunk()?;
    let ihl = h[0] & 0x0F;
    if h[0] >> 4 != 4 || ihl < 5 || h[9] == protocol::AH {
        return None;
    }
    let hlen = usize::from(ihl) * 4;
    if hlen > p.len() {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    let first = u16::from_be_bytes([h[6], h[7]]) & 0x1FFF == 0;
    Some(V4 {
        proto: h[9],
        l4: (first && h[9] != protocol::ESP).then_some(hlen),
        l4_len: total.checked_sub(hlen),
    })
}

/// The L4 checksum field to repair: `Some(None)` when there is none (the general path agrees),
/// `None` when the first piece cannot tell.
#[inline]
fn l4_checksum(v: &V4, len: usize, for_address: bool) -> Option<Option<usize>> {
    let Some(l4) = v.l4 else { return Some(None) };
    let rel = match v.proto {
        protocol::TCP => 16,
        protocol::UDP => 6,
        _ if for_address => return Some(None),
        _ => return None,
    };
    if v.l4_len.is_some_and(|n| rel + 2 > n) {
        return Some(None);
    }
    (l4 + rel + 2 <= len).then_some(Some(l4 + rel))
}

#[inline]
fn kind(proto: u8, info: ChecksumInfo) -> FieldKind {
    if info.transport_offloaded(false, proto) {
        FieldKind::Seed
    } else if proto == protocol::UDP {
        FieldKind::UdpChecksum
    } else {
        FieldKind::Checksum
    }
}

#[inline]
fn get16(p: &[u8], at: usize) -> Option<u16> {
    p.get(at..at + 2)?
        .first_chunk()
        .map(|b| u16::from_be_bytes(*b))
}

#[inline]
fn set(p: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(d) = p.get_mut(at..at + bytes.len()) {
        d.copy_from_slice(bytes);
    }
}

#[inline]
fn set16(p: &mut [u8], at: usize, v: u16) {
    if let Some(Ok(d)) = p.get_mut(at..at + 2).map(<&mut [u8; 2]>::try_from) {
        *d = v.to_be_bytes();
    }
}

pub(super) fn address_v4(
    p: &mut [u8],
    which: Endpoint,
    new: &[u8; 4],
    info: ChecksumInfo,
) -> Option<()> {
    let v = v4(p)?;
    let field = l4_checksum(&v, p.len(), true)?;
    let at = match which {
        Endpoint::Source => SRC_OFFSET,
        Endpoint::Destination => DST_OFFSET,
    };
    let old: [u8; 4] = *p.get(at..at + 4)?.first_chunk()?;
    let hc = get16(p, CHECKSUM_OFFSET)?;
    let l4 = match field {
        Some(f) => Some((f, get16(p, f)?)),
        None => None,
    };
    let d = delta(&old, new, false);
    if let Some(Ok(dst)) = p.get_mut(at..at + 4).map(<&mut [u8; 4]>::try_from) {
        *dst = *new;
    }
    if !info.ip_header_offloaded() {
        set16(p, CHECKSUM_OFFSET, apply_delta(hc, d));
    }
    if let Some((f, stored)) = l4 {
        set16(p, f, apply(kind(v.proto, info), stored, d));
    }
    Some(())
}

pub(super) fn port_v4(p: &mut [u8], which: Endpoint, new: u16, info: ChecksumInfo) -> Option<u16> {
    let v = v4(p)?;
    if !matches!(v.proto, protocol::TCP | protocol::UDP) {
        return None;
    }
    let (l4, field) = (v.l4?, l4_checksum(&v, p.len(), false)??);
    let at = l4 + if which == Endpoint::Source { 0 } else { 2 };
    let (old, stored) = (get16(p, at)?, get16(p, field)?);
    set16(p, at, new);
    let k = kind(v.proto, info);
    if k != FieldKind::Seed {
        set16(
            p,
            field,
            apply(
                k,
                stored,
                delta(&old.to_be_bytes(), &new.to_be_bytes(), false),
            ),
        );
    }
    Some(old)
}

pub(super) fn ttl_v4(p: &mut [u8], info: ChecksumInfo) -> Option<u8> {
    v4(p)?;
    let [ttl, proto] = *p.get(TTL_OFFSET..TTL_OFFSET + 2)?.first_chunk()?;
    let hc = get16(p, CHECKSUM_OFFSET)?;
    let new = ttl.checked_sub(1)?;
    set(p, TTL_OFFSET, &[new]);
    if !info.ip_header_offloaded() {
        set16(
            p,
            CHECKSUM_OFFSET,
            apply_delta(hc, delta(&[ttl, proto], &[new, proto], false)),
        );
    }
    Some(new)
}
