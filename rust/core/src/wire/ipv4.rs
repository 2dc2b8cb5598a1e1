//! IPv4 header view (RFC 791, `checksums.md §2.1`).

use super::field::{array_at, set_bytes, set_u16, set_u8, too_short, u16_at, u8_at};
use crate::checksum::{internet_checksum, ones_sum};
use crate::{Error, Result};

pub const MIN_HEADER_LEN: usize = 20;
pub const MAX_HEADER_LEN: usize = 60;
/// Offset of the header checksum field.
pub const CHECKSUM_OFFSET: usize = 10;
pub const SRC_OFFSET: usize = 12;
pub const DST_OFFSET: usize = 16;
pub const TTL_OFFSET: usize = 8;

/// A checked IPv4 header view; the data may be cut short after the header (a capture), so the
/// payload accessor checks Total Length separately.
#[derive(Clone, Copy, Debug)]
pub struct Ipv4Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Checks version 4, IHL >= 5 and that the whole `IHL * 4`-byte header is present.
    pub fn new_checked(buffer: T) -> Result<Self> {
        Self::new_checked_at(buffer, 0)
    }

    /// As [`Self::new_checked`], reporting offsets relative to `at`.
    pub fn new_checked_at(buffer: T, at: usize) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(too_short("IPv4 header", MIN_HEADER_LEN, b.len(), at));
        }
        let version = u8_at(b, 0) >> 4;
        if version != 4 {
            return Err(Error::malformed(format!(
                "IPv4 version field {version} != 4 at offset {at}"
            )));
        }
        let ihl = u8_at(b, 0) & 0x0F;
        if ihl < 5 {
            return Err(Error::malformed(format!(
                "IPv4 IHL {ihl} < 5 at offset {at}"
            )));
        }
        let hlen = usize::from(ihl) * 4;
        if b.len() < hlen {
            return Err(too_short("IPv4 header", hlen, b.len(), at));
        }
        Ok(Ipv4Packet { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn version(&self) -> u8 {
        u8_at(self.b(), 0) >> 4
    }

    /// Header length in 32-bit words (5..=15).
    pub fn ihl(&self) -> u8 {
        u8_at(self.b(), 0) & 0x0F
    }

    /// Header length in bytes, options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }

    pub fn dscp(&self) -> u8 {
        u8_at(self.b(), 1) >> 2
    }

    pub fn ecn(&self) -> u8 {
        u8_at(self.b(), 1) & 0x03
    }

    /// Total Length: header + data of this datagram (fragment).
    pub fn total_len(&self) -> u16 {
        u16_at(self.b(), 2)
    }

    pub fn ident(&self) -> u16 {
        u16_at(self.b(), 4)
    }

    pub fn dont_frag(&self) -> bool {
        u16_at(self.b(), 6) & 0x4000 != 0
    }

    pub fn more_frags(&self) -> bool {
        u16_at(self.b(), 6) & 0x2000 != 0
    }

    /// Fragment offset in bytes (the field counts 8-octet units).
    pub fn frag_offset(&self) -> u16 {
        (u16_at(self.b(), 6) & 0x1FFF) << 3
    }

    /// MF set or offset non-zero: only part of a datagram.
    pub fn is_fragment(&self) -> bool {
        u16_at(self.b(), 6) & 0x3FFF != 0
    }

    pub fn ttl(&self) -> u8 {
        u8_at(self.b(), TTL_OFFSET)
    }

    pub fn protocol(&self) -> u8 {
        u8_at(self.b(), 9)
    }

    pub fn checksum(&self) -> u16 {
        u16_at(self.b(), CHECKSUM_OFFSET)
    }

    pub fn src_addr(&self) -> [u8; 4] {
        array_at(self.b(), SRC_OFFSET)
    }

    pub fn dst_addr(&self) -> [u8; 4] {
        array_at(self.b(), DST_OFFSET)
    }

    /// The header bytes (`IHL * 4`).
    pub fn header(&self) -> &[u8] {
        let b = self.b();
        b.get(..self.header_len()).unwrap_or(b)
    }

    pub fn options(&self) -> &[u8] {
        self.header().get(MIN_HEADER_LEN..).unwrap_or_default()
    }

    /// RFC 1071 verification: the sum over the header, checksum included, is `0xFFFF`.
    pub fn verify_checksum(&self) -> bool {
        ones_sum(self.header()) == 0xFFFF
    }

    /// The checksum the header should carry (computed with the field taken as 0).
    pub fn compute_checksum(&self) -> u16 {
        // Subtracting the stored field (adding its complement) is the same as zeroing it.
        internet_checksum(self.header(), !self.checksum())
    }

    /// The data after the header up to Total Length; fails if Total Length is smaller than the
    /// header or larger than the buffer.
    pub fn payload(&self) -> Result<&[u8]> {
        let (hlen, total) = (self.header_len(), usize::from(self.total_len()));
        if total < hlen {
            return Err(Error::malformed(format!(
                "IPv4 total length {total} < header length {hlen} at offset 2"
            )));
        }
        self.b()
            .get(hlen..total)
            .ok_or_else(|| too_short("IPv4 datagram", total, self.b().len(), 0))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    pub fn set_ttl(&mut self, v: u8) {
        set_u8(self.bm(), TTL_OFFSET, v)
    }

    pub fn set_protocol(&mut self, v: u8) {
        set_u8(self.bm(), 9, v)
    }

    pub fn set_total_len(&mut self, v: u16) {
        set_u16(self.bm(), 2, v)
    }

    pub fn set_ident(&mut self, v: u16) {
        set_u16(self.bm(), 4, v)
    }

    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.bm(), CHECKSUM_OFFSET, v)
    }

    pub fn set_src_addr(&mut self, a: [u8; 4]) {
        set_bytes(self.bm(), SRC_OFFSET, &a)
    }

    pub fn set_dst_addr(&mut self, a: [u8; 4]) {
        set_bytes(self.bm(), DST_OFFSET, &a)
    }

    /// Recomputes and stores the header checksum.
    pub fn fill_checksum(&mut self) {
        let c = self.compute_checksum();
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn vector_1_and_accessors() {
        let mut h = V1;
        let mut p = Ipv4Packet::new_checked(&mut h[..]).unwrap();
        assert_eq!(p.compute_checksum(), 0xB861);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.checksum(), 0xB861);
        assert_eq!((p.ttl(), p.protocol(), p.total_len()), (64, 17, 0x73));
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!(p.src_addr(), [192, 168, 0, 1]);
        assert!(p.payload().is_err());
    }

    #[test]
    fn errors_name_the_defect_and_offset() {
        let e = Ipv4Packet::new_checked_at(&V1[..14], 14).unwrap_err();
        assert_eq!(
            e.message,
            "IPv4 header length 20 > 14 bytes available at offset 14"
        );
        let mut h = V1;
        h[0] = 0x44;
        let e = Ipv4Packet::new_checked(&h[..]).unwrap_err();
        assert_eq!(e.message, "IPv4 IHL 4 < 5 at offset 0");
        h[0] = 0x46;
        let e = Ipv4Packet::new_checked(&h[..]).unwrap_err();
        assert_eq!(
            e.message,
            "IPv4 header length 24 > 20 bytes available at offset 0"
        );
        h[0] = 0x65;
        assert!(Ipv4Packet::new_checked(&h[..])
            .unwrap_err()
            .message
            .contains("version field 6"));
    }
}
