//! The IPv6 extension-header walk (`checksums.md §4`): from the fixed header to the upper-layer
//! header, collecting what the pseudo-header and fragment handling need on the way.

use super::field::too_short;
use super::ip::protocol;
use super::ipv6::{DST_OFFSET, HEADER_LEN, SRC_OFFSET};
use super::ipv6_ext::{ext_header_len, final_destination_offset, option};
use super::reader::Reader;
use crate::bytes::Segmented;
use crate::{Error, Result};

/// Why the walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainEnd {
    /// At the upper-layer header (TCP, UDP, ICMPv6, ... and the headers §4 treats as final:
    /// Mobility, HIP, Shim6, experimental).
    Upper,
    /// At an ESP header: the upper layer is encrypted.
    Esp,
    /// Next Header 59: nothing follows.
    NoNextHeader,
    /// After a Fragment header with a non-zero offset: the rest is fragment data.
    NonFirstFragment,
    /// An extension header runs past the available bytes (a cut capture).
    Truncated,
    /// An extension header runs past the end that Payload Length (or Jumbo Payload) declares.
    BeyondPayload,
}

/// A Fragment header's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentInfo {
    /// Offset of the Fragment header from the IPv6 header.
    pub header_offset: usize,
    /// Fragment offset in bytes.
    pub offset: u16,
    pub more: bool,
    pub ident: u32,
}

impl FragmentInfo {
    /// Offset 0 and M = 0 (RFC 8200 atomic fragment): a whole datagram.
    pub const fn is_atomic(&self) -> bool {
        self.offset == 0 && !self.more
    }
}

/// What the walk found. Offsets are relative to the start of the IPv6 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Chain {
    pub end: ChainEnd,
    /// The Next Header value announcing the header at `offset`: the upper-layer protocol when
    /// `end` is `Upper`.
    pub protocol: u8,
    /// Where the walk stopped (the upper-layer header when `end` is `Upper`).
    pub offset: usize,
    /// The fixed header's Payload Length.
    pub payload_len: u16,
    /// The Jumbo Payload option's length, when Payload Length is 0 and the hop-by-hop header
    /// carries one (RFC 2675).
    pub jumbo_len: Option<u32>,
    /// End of the datagram (40 + Payload Length or Jumbo Payload length); `None` for Payload
    /// Length 0 without a Jumbo Payload option (LSO/BIG TCP captures: length unknown).
    pub datagram_end: Option<usize>,
    /// The pseudo-header source: 8 (the IPv6 SA) or a Home Address option's address.
    pub src_offset: usize,
    /// The pseudo-header destination: 24 (the IPv6 DA) or the final address of a routing header
    /// with Segments Left > 0.
    pub dst_offset: usize,
    /// The last Fragment header walked (at most one is normal).
    pub fragment: Option<FragmentInfo>,
}

impl Ipv6Chain {
    /// Bytes of extension headers walked.
    pub fn ext_len(&self) -> usize {
        self.offset.saturating_sub(HEADER_LEN)
    }

    /// Upper-layer length per the IPv6 lengths (`datagram_end - offset`), if consistent.
    pub fn upper_len(&self) -> Option<usize> {
        self.datagram_end.and_then(|e| e.checked_sub(self.offset))
    }
}

/// Walks the IPv6 header at `at` in `data` and its extension headers.
///
/// Fails (Malformed) when fewer than 40 bytes are present, the version is not 6, or a
/// Hop-by-Hop header appears anywhere but first. Headers cut short by the capture or by the
/// declared length end the walk with [`ChainEnd::Truncated`] / [`ChainEnd::BeyondPayload`].
pub fn walk_ipv6<S: Segmented + ?Sized>(data: &S, at: usize) -> Result<Ipv6Chain> {
    let r = Reader::new(data);
    let avail = r.len().saturating_sub(at);
    if avail < HEADER_LEN {
        return Err(too_short("IPv6 header", HEADER_LEN, avail, at));
    }
    let fixed: [u8; 8] = r
        .array(at)
        .ok_or_else(|| too_short("IPv6 header", HEADER_LEN, avail, at))?;
    let version = fixed[0] >> 4;
    if version != 6 {
        return Err(Error::malformed(format!(
            "IPv6 version field {version} != 6 at offset {at}"
        )));
    }
    let payload_len = u16::from_be_bytes([fixed[4], fixed[5]]);
    let mut c = Ipv6Chain {
        end: ChainEnd::Upper,
        protocol: fixed[6],
        offset: HEADER_LEN,
        payload_len,
        jumbo_len: None,
        datagram_end: (payload_len > 0).then_some(HEADER_LEN + usize::from(payload_len)),
        src_offset: SRC_OFFSET,
        dst_offset: DST_OFFSET,
        fragment: None,
    };
    // Each pass consumes at least 8 bytes and stops past `avail`, so the loop ends.
    loop {
        let (nh, pos) = (c.protocol, c.offset);
        match nh {
            protocol::HOPOPT
            | protocol::IPV6_ROUTE
            | protocol::IPV6_OPTS
            | protocol::AH
            | protocol::IPV6_FRAG => {}
            protocol::ESP => return Ok(finish(c, ChainEnd::Esp)),
            protocol::IPV6_NONXT => return Ok(finish(c, ChainEnd::NoNextHeader)),
            _ => return Ok(finish(c, ChainEnd::Upper)),
        }
        if nh == protocol::HOPOPT && pos != HEADER_LEN {
            return Err(Error::malformed(format!(
                "IPv6 hop-by-hop header at offset {} is not directly after the IPv6 header",
                at + pos
            )));
        }
        if let Some(end) = short(&c, pos, 8, avail) {
            return Ok(finish(c, end));
        }
        let Some(h) = r.array::<8>(at + pos) else {
            return Ok(finish(c, ChainEnd::Truncated));
        };
        let len = ext_header_len(nh, h[1]);
        if let Some(end) = short(&c, pos, len, avail) {
            return Ok(finish(c, end));
        }
        match nh {
            protocol::HOPOPT if payload_len == 0 => {
                scan_options(&r, at + pos, len, |kind, off, n| {
                    if kind == option::JUMBO_PAYLOAD && n == 4 {
                        if let Some(j) = r.u32(off) {
                            c.jumbo_len = Some(j);
                            c.datagram_end = usize::try_from(j)
                                .ok()
                                .and_then(|j| j.checked_add(HEADER_LEN));
                        }
                    }
                });
            }
            protocol::IPV6_OPTS => {
                scan_options(&r, at + pos, len, |kind, off, n| {
                    if kind == option::HOME_ADDRESS && n == 16 {
                        c.src_offset = off - at;
                    }
                });
            }
            protocol::IPV6_ROUTE => {
                if let Some(o) = final_destination_offset(h[2], h[1], h[3]) {
                    c.dst_offset = pos + o;
                }
            }
            protocol::IPV6_FRAG => {
                let f = FragmentInfo {
                    header_offset: pos,
                    offset: u16::from_be_bytes([h[2], h[3]]) & 0xFFF8,
                    more: h[3] & 1 != 0,
                    ident: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                };
                c.fragment = Some(f);
                if f.offset != 0 {
                    c.protocol = h[0];
                    c.offset = pos + len;
                    return Ok(finish(c, ChainEnd::NonFirstFragment));
                }
            }
            _ => {}
        }
        c.protocol = h[0];
        c.offset = pos + len;
    }
}

fn finish(mut c: Ipv6Chain, end: ChainEnd) -> Ipv6Chain {
    c.end = end;
    c
}

/// Whether `need` bytes at `pos` fail to fit: past the declared end first (inconsistent
/// lengths), else past the captured bytes.
fn short(c: &Ipv6Chain, pos: usize, need: usize, avail: usize) -> Option<ChainEnd> {
    let end = pos + need;
    if c.datagram_end.is_some_and(|e| end > e) {
        Some(ChainEnd::BeyondPayload)
    } else if end > avail {
        Some(ChainEnd::Truncated)
    } else {
        None
    }
}

/// Calls `f(kind, data_offset, data_len)` for each TLV of the options header of `len` bytes at
/// absolute offset `start`; stops at the first TLV that overruns the header (it is ignored).
fn scan_options<S: Segmented + ?Sized>(
    r: &Reader<'_, S>,
    start: usize,
    len: usize,
    mut f: impl FnMut(u8, usize, usize),
) {
    let end = start + len;
    let mut p = start + 2;
    while p < end {
        let Some(kind) = r.u8(p) else { return };
        if kind == option::PAD1 {
            p += 1;
            continue;
        }
        let Some(n) = r.u8(p + 1).map(usize::from) else {
            return;
        };
        if p + 2 + n > end {
            return;
        }
        f(kind, p + 2, n);
        p += 2 + n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip6(next: u8, plen: u16) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend(plen.to_be_bytes());
        v.extend([next, 64]);
        v.extend([0x11; 16]);
        v.extend([0x22; 16]);
        v
    }

    #[test]
    fn spec_vector_9_chain() {
        let mut p = ip6(0, 0x3d);
        p.extend([0x3c, 0, 1, 4, 0, 0, 0, 0]);
        p.extend([0x2b, 0, 1, 4, 0, 0, 0, 0]);
        p.extend([0x2c, 2, 0, 1, 0, 0, 0, 0]);
        p.extend([0x99; 16]);
        p.extend([0x11, 0, 0, 0, 0, 0, 0x12, 0x34]);
        p.extend([
            0x30, 0x39, 0, 0x35, 0, 0x0d, 0x2f, 0x88, b'h', b'e', b'l', b'l', b'o',
        ]);
        let c = walk_ipv6(&p[..], 0).unwrap();
        assert_eq!((c.end, c.protocol, c.offset), (ChainEnd::Upper, 17, 88));
        assert_eq!(c.dst_offset, 64);
        assert_eq!(c.upper_len(), Some(13));
        assert!(c.fragment.unwrap().is_atomic());
    }

    #[test]
    fn stops_and_errors() {
        let mut p = ip6(51, 24 + 8);
        p.extend([17, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
        p.extend([0; 12]);
        p.extend([0; 8]);
        let c = walk_ipv6(&p[..], 0).unwrap();
        assert_eq!((c.end, c.protocol, c.offset), (ChainEnd::Upper, 17, 64));

        let c = walk_ipv6(&p[..50], 0).unwrap();
        assert_eq!(c.end, ChainEnd::Truncated);
        let mut q = p.clone();
        q[5] = 16; // declared payload ends inside the AH
        assert_eq!(walk_ipv6(&q[..], 0).unwrap().end, ChainEnd::BeyondPayload);

        let mut hbh_late = ip6(60, 16);
        hbh_late.extend([0, 0, 1, 4, 0, 0, 0, 0, 59, 0, 1, 4, 0, 0, 0, 0]);
        let e = walk_ipv6(&hbh_late[..], 0).unwrap_err();
        assert_eq!(
            e.message,
            "IPv6 hop-by-hop header at offset 48 is not directly after the IPv6 header"
        );
        assert!(walk_ipv6(&p[..39], 0)
            .unwrap_err()
            .message
            .contains("40 > 39"));

        let mut frag = ip6(44, 16);
        frag.extend([6, 0, 0x05, 0x39, 0, 0, 0, 7, 1, 2, 3, 4, 5, 6, 7, 8]);
        let c = walk_ipv6(&frag[..], 0).unwrap();
        assert_eq!(c.end, ChainEnd::NonFirstFragment);
        let f = c.fragment.unwrap();
        assert_eq!((f.offset, f.more, f.ident), (0x538, true, 7));

        let mut esp = ip6(50, 8);
        esp.extend([0; 8]);
        assert_eq!(walk_ipv6(&esp[..], 0).unwrap().end, ChainEnd::Esp);
    }

    #[test]
    fn jumbo_and_home_address() {
        let mut p = ip6(0, 0);
        p.extend([60, 0, option::JUMBO_PAYLOAD, 4, 0, 1, 0, 0]);
        p.extend([6, 2, 1, 0, option::HOME_ADDRESS, 16]);
        p.extend([0xAB; 16]);
        p.extend([1, 0]);
        let c = walk_ipv6(&p[..], 0).unwrap();
        assert_eq!(c.jumbo_len, Some(0x10000));
        assert_eq!(c.datagram_end, Some(40 + 0x10000));
        assert_eq!(c.src_offset, 54);
        assert_eq!((c.end, c.protocol, c.offset), (ChainEnd::Upper, 6, 72));
    }
}
