//! IPv6 extension header views (RFC 8200 §4, AH RFC 4302, `checksums.md §4`).

use super::field::{array_at, too_short, u16_at, u32_at, u8_at};
use super::ip::protocol;
use crate::{Error, Result};

/// Hop-by-Hop / Destination option types this crate interprets.
pub mod option {
    pub const PAD1: u8 = 0;
    pub const PADN: u8 = 1;
    /// RFC 2675 Jumbo Payload: 4-byte length of the jumbogram's payload.
    pub const JUMBO_PAYLOAD: u8 = 0xC2;
    /// RFC 6275 Home Address (in Destination Options): the mobile node's home address, which
    /// replaces the source address in the pseudo-header.
    pub const HOME_ADDRESS: u8 = 0xC9;
}

/// Length in bytes of an extension header of kind `next_header` whose second byte is
/// `len_byte`: `(n + 1) * 8`, except AH's `(n + 2) * 4` and the fixed 8-byte Fragment header.
pub const fn ext_header_len(next_header: u8, len_byte: u8) -> usize {
    match next_header {
        protocol::AH => (len_byte as usize + 2) * 4,
        protocol::IPV6_FRAG => 8,
        _ => (len_byte as usize + 1) * 8,
    }
}

/// Any length-prefixed extension header (HBH, Routing, Fragment, DestOpts, AH).
#[derive(Clone, Copy, Debug)]
pub struct ExtHeader<T> {
    buffer: T,
    kind: u8,
}

impl<T: AsRef<[u8]>> ExtHeader<T> {
    /// `kind` is the Next Header value that announced this header; the whole header (per the
    /// length rule for `kind`) must be present.
    pub fn new_checked_at(buffer: T, kind: u8, at: usize) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < 2 {
            return Err(too_short("IPv6 extension header", 8, b.len(), at));
        }
        let len = ext_header_len(kind, u8_at(b, 1));
        if b.len() < len {
            return Err(too_short("IPv6 extension header", len, b.len(), at));
        }
        Ok(ExtHeader { buffer, kind })
    }

    pub fn kind(&self) -> u8 {
        self.kind
    }

    pub fn next_header(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 0)
    }

    pub fn header_len(&self) -> usize {
        ext_header_len(self.kind, u8_at(self.buffer.as_ref(), 1))
    }

    /// The header bytes after the two-byte prefix.
    pub fn data(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(2..self.header_len())
            .unwrap_or_default()
    }

    /// The options of a Hop-by-Hop or Destination Options header.
    pub fn options(&self) -> OptionIter<'_> {
        OptionIter::new(self.data(), 2)
    }
}

/// One TLV option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlvOption<'a> {
    pub kind: u8,
    /// Offset of the option's data from the start of the extension header.
    pub data_offset: usize,
    pub data: &'a [u8],
}

/// Iterator over the TLV options of a Hop-by-Hop / Destination Options header. A TLV that runs
/// past the header yields one error and ends the iteration.
#[derive(Clone, Debug)]
pub struct OptionIter<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
    done: bool,
}

impl<'a> OptionIter<'a> {
    /// `data` are the option bytes, which start `base` bytes into the extension header.
    pub fn new(data: &'a [u8], base: usize) -> Self {
        OptionIter {
            data,
            pos: 0,
            base,
            done: false,
        }
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<TlvOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let kind = u8_at(self.data, self.pos);
        if kind == option::PAD1 {
            let o = TlvOption {
                kind,
                data_offset: self.base + self.pos + 1,
                data: &[],
            };
            self.pos += 1;
            return Some(Ok(o));
        }
        let start = self.pos + 2;
        let len = self.data.get(self.pos + 1).map(|&l| usize::from(l));
        match len.and_then(|l| self.data.get(start..start + l)) {
            Some(data) => {
                self.pos = start + data.len();
                Some(Ok(TlvOption {
                    kind,
                    data_offset: self.base + start,
                    data,
                }))
            }
            None => {
                self.done = true;
                Some(Err(Error::malformed(format!(
                    "IPv6 option type 0x{kind:02X} runs past its extension header at offset {}",
                    self.base + self.pos
                ))))
            }
        }
    }
}

/// Routing header view (type 0, type 2, SRH type 4).
#[derive(Clone, Copy, Debug)]
pub struct RoutingHeader<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> RoutingHeader<T> {
    pub fn new_checked_at(buffer: T, at: usize) -> Result<Self> {
        let h = ExtHeader::new_checked_at(buffer, protocol::IPV6_ROUTE, at)?;
        if h.buffer.as_ref().len() < 8 {
            return Err(too_short(
                "IPv6 routing header",
                8,
                h.buffer.as_ref().len(),
                at,
            ));
        }
        Ok(RoutingHeader { buffer: h.buffer })
    }

    pub fn next_header(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 0)
    }

    pub fn hdr_ext_len(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 1)
    }

    pub fn routing_type(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 2)
    }

    pub fn segments_left(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 3)
    }

    /// Number of 16-byte addresses the header carries (type 0/2: `HdrExtLen / 2`; SRH: the
    /// same bound, TLVs aside, capped by Last Entry + 1).
    pub fn address_count(&self) -> usize {
        let by_len = usize::from(self.hdr_ext_len()) / 2;
        match self.routing_type() {
            4 => by_len.min(usize::from(u8_at(self.buffer.as_ref(), 4)) + 1),
            _ => by_len,
        }
    }

    /// Address `i` (SRH: `Segment List[i]`).
    pub fn address(&self, i: usize) -> Option<[u8; 16]> {
        (i < self.address_count()).then(|| array_at(self.buffer.as_ref(), 8 + 16 * i))
    }

    /// The final destination when this header says the IPv6 DA is not final, else `None`.
    pub fn final_destination(&self) -> Option<[u8; 16]> {
        final_destination_offset(
            self.routing_type(),
            self.hdr_ext_len(),
            self.segments_left(),
        )
        .map(|off| array_at(self.buffer.as_ref(), off))
    }
}

/// Offset, within a routing header, of the final destination address, or `None` when the IPv6
/// DA is already final (Segments Left 0) or the type is not understood (`checksums.md §2.3`):
/// type 0 and type 2 carry it last, SRH (type 4) in `Segment List[0]`.
pub const fn final_destination_offset(
    routing_type: u8,
    hdr_ext_len: u8,
    segments_left: u8,
) -> Option<usize> {
    let count = hdr_ext_len as usize / 2;
    if segments_left == 0 || count == 0 {
        return None;
    }
    match routing_type {
        0 | 2 => Some(8 + 16 * (count - 1)),
        4 => Some(8),
        _ => None,
    }
}

/// Fragment header view.
#[derive(Clone, Copy, Debug)]
pub struct FragmentHeader<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FragmentHeader<T> {
    pub fn new_checked_at(buffer: T, at: usize) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < 8 {
            return Err(too_short("IPv6 fragment header", 8, b.len(), at));
        }
        Ok(FragmentHeader { buffer })
    }

    pub fn next_header(&self) -> u8 {
        u8_at(self.buffer.as_ref(), 0)
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        u16_at(self.buffer.as_ref(), 2) & 0xFFF8
    }

    pub fn more_frags(&self) -> bool {
        u16_at(self.buffer.as_ref(), 2) & 1 != 0
    }

    pub fn ident(&self) -> u32 {
        u32_at(self.buffer.as_ref(), 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_lengths() {
        assert_eq!(ext_header_len(protocol::AH, 4), 24);
        assert_eq!(ext_header_len(protocol::IPV6_OPTS, 1), 16);
        // DestOpts with PadN(0), Home Address, PadN(0): 24 bytes.
        let mut h = vec![17u8, 2, 1, 0, option::HOME_ADDRESS, 16];
        h.extend((1..=16u8).collect::<Vec<_>>());
        h.extend([1, 0]);
        let v = ExtHeader::new_checked_at(&h[..], protocol::IPV6_OPTS, 0).unwrap();
        let opts: Vec<_> = v.options().collect::<Result<_>>().unwrap();
        assert_eq!(opts.len(), 3);
        assert_eq!(opts[1].kind, option::HOME_ADDRESS);
        assert_eq!(opts[1].data_offset, 6);
        assert_eq!(opts[1].data.len(), 16);
        h[5] = 30; // option overruns the header
        let v = ExtHeader::new_checked_at(&h[..], protocol::IPV6_OPTS, 0).unwrap();
        let last = v.options().last().unwrap();
        assert!(last.unwrap_err().message.contains("0xC9 runs past"));
        assert!(ExtHeader::new_checked_at(&h[..10], protocol::IPV6_OPTS, 40).is_err());
    }

    #[test]
    fn routing_final_destination() {
        let mut h = vec![17u8, 4, 0, 1, 0, 0, 0, 0];
        h.extend([0xAA; 16]);
        h.extend([0xBB; 16]);
        let r = RoutingHeader::new_checked_at(&h[..], 0).unwrap();
        assert_eq!(r.address_count(), 2);
        assert_eq!(r.final_destination(), Some([0xBB; 16]));
        h[3] = 0;
        assert_eq!(
            RoutingHeader::new_checked_at(&h[..], 0)
                .unwrap()
                .final_destination(),
            None
        );
        h[2] = 4;
        h[3] = 1;
        assert_eq!(
            RoutingHeader::new_checked_at(&h[..], 0)
                .unwrap()
                .final_destination(),
            Some([0xAA; 16])
        );
    }
}
