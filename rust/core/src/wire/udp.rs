//! UDP header view (RFC 768).

use super::field::{set_u16, too_short, u16_at};
use crate::checksum::{internet_checksum, ones_add, ones_sum};
use crate::Result;

pub const HEADER_LEN: usize = 8;
pub const CHECKSUM_OFFSET: usize = 6;

/// A checked UDP datagram view (header + whatever data the buffer holds).
#[derive(Clone, Copy, Debug)]
pub struct UdpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Checks that the 8-byte header is present. The Length field is not trusted here: the
    /// capture rules (MANIFEST) take the L4 length from the IP header instead.
    pub fn new_checked(buffer: T) -> Result<Self> {
        Self::new_checked_at(buffer, 0)
    }

    /// As [`Self::new_checked`], reporting offsets relative to `at`.
    pub fn new_checked_at(buffer: T, at: usize) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(too_short("UDP header", HEADER_LEN, b.len(), at));
        }
        Ok(UdpPacket { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn src_port(&self) -> u16 {
        u16_at(self.b(), 0)
    }

    pub fn dst_port(&self) -> u16 {
        u16_at(self.b(), 2)
    }

    /// The Length field (header + data).
    pub fn len(&self) -> u16 {
        u16_at(self.b(), 4)
    }

    /// Whether the Length field is 0 (a jumbogram's UDP, RFC 2675).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// 0 over IPv4 means "no checksum".
    pub fn checksum(&self) -> u16 {
        u16_at(self.b(), CHECKSUM_OFFSET)
    }

    pub fn payload(&self) -> &[u8] {
        self.b().get(HEADER_LEN..).unwrap_or_default()
    }

    /// Whether the datagram (the whole buffer) checks out against the pseudo-header sum. A
    /// zero field is not special here; see [`crate::packet::verify`] for the verdict rules.
    pub fn verify_checksum(&self, pseudo: u16) -> bool {
        ones_add(pseudo, ones_sum(self.b())) == 0xFFFF
    }

    /// The checksum to transmit: computed with the field taken as 0, and `0xFFFF` instead of a
    /// computed 0 (RFC 768).
    pub fn compute_checksum(&self, pseudo: u16) -> u16 {
        match internet_checksum(self.b(), ones_add(pseudo, !self.checksum())) {
            0 => 0xFFFF,
            c => c,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    pub fn set_src_port(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 0, v)
    }

    pub fn set_dst_port(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 2, v)
    }

    pub fn set_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 4, v)
    }

    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), CHECKSUM_OFFSET, v)
    }

    pub fn fill_checksum(&mut self, pseudo: u16) {
        let c = self.compute_checksum(pseudo);
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::pseudo_header_v4;

    #[test]
    fn vectors_5_and_13() {
        let mut d = *b"\x30\x39\x00\x35\x00\x0d\x00\x00hello";
        let ph = pseudo_header_v4(&[192, 168, 0, 1], &[192, 168, 0, 199], 17, 13);
        let mut u = UdpPacket::new_checked(&mut d[..]).unwrap();
        u.fill_checksum(ph);
        assert_eq!(u.checksum(), 0x097B);
        assert!(u.verify_checksum(ph));
        assert_eq!(u.payload(), b"hello");

        let mut z = [0x03, 0xE8, 0x07, 0xD0, 0x00, 0x0A, 0x00, 0x00, 0xE0, 0x1F];
        let ph = pseudo_header_v4(&[10, 0, 0, 1], &[10, 0, 0, 2], 17, 10);
        let u = UdpPacket::new_checked(&mut z[..]).unwrap();
        assert_eq!(internet_checksum(u.into_inner(), ph), 0);
        let mut u = UdpPacket::new_checked(&mut z[..]).unwrap();
        u.fill_checksum(ph);
        assert_eq!(u.checksum(), 0xFFFF);
        assert!(u.verify_checksum(ph));
        assert!(UdpPacket::new_checked(&z[..7]).is_err());
    }
}
