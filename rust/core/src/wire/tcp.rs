//! TCP header view (RFC 9293). The checksum helpers take the pseudo-header sum from
//! [`crate::checksum::pseudo`], so the same view serves IPv4 and IPv6.

use super::field::{set_u16, too_short, u16_at, u32_at, u8_at};
use crate::checksum::{internet_checksum, ones_add, ones_sum};
use crate::{Error, Result};

pub const MIN_HEADER_LEN: usize = 20;
pub const CHECKSUM_OFFSET: usize = 16;

/// A checked TCP segment view (header + whatever data the buffer holds).
#[derive(Clone, Copy, Debug)]
pub struct TcpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Checks the 20-byte header, Data Offset >= 5, and that the options fit.
    pub fn new_checked(buffer: T) -> Result<Self> {
        Self::new_checked_at(buffer, 0)
    }

    /// As [`Self::new_checked`], reporting offsets relative to `at`.
    pub fn new_checked_at(buffer: T, at: usize) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(too_short("TCP header", MIN_HEADER_LEN, b.len(), at));
        }
        let doff = u8_at(b, 12) >> 4;
        if doff < 5 {
            return Err(Error::malformed(format!(
                "TCP data offset {doff} < 5 at offset {}",
                at + 12
            )));
        }
        let hlen = usize::from(doff) * 4;
        if b.len() < hlen {
            return Err(too_short("TCP header", hlen, b.len(), at));
        }
        Ok(TcpPacket { buffer })
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

    pub fn seq_number(&self) -> u32 {
        u32_at(self.b(), 4)
    }

    pub fn ack_number(&self) -> u32 {
        u32_at(self.b(), 8)
    }

    /// Header length in bytes (Data Offset * 4).
    pub fn header_len(&self) -> usize {
        usize::from(u8_at(self.b(), 12) >> 4) * 4
    }

    /// The nine flag bits (NS..FIN).
    pub fn flags(&self) -> u16 {
        u16_at(self.b(), 12) & 0x01FF
    }

    pub fn window_len(&self) -> u16 {
        u16_at(self.b(), 14)
    }

    pub fn checksum(&self) -> u16 {
        u16_at(self.b(), CHECKSUM_OFFSET)
    }

    pub fn urgent_pointer(&self) -> u16 {
        u16_at(self.b(), 18)
    }

    pub fn options(&self) -> &[u8] {
        self.b()
            .get(MIN_HEADER_LEN..self.header_len())
            .unwrap_or_default()
    }

    pub fn payload(&self) -> &[u8] {
        self.b().get(self.header_len()..).unwrap_or_default()
    }

    /// Whether the segment (the whole buffer) checks out against `pseudo`, the pseudo-header
    /// sum built with the buffer's length.
    pub fn verify_checksum(&self, pseudo: u16) -> bool {
        ones_add(pseudo, ones_sum(self.b())) == 0xFFFF
    }

    /// The checksum the segment should carry, with the field taken as 0.
    pub fn compute_checksum(&self, pseudo: u16) -> u16 {
        internet_checksum(self.b(), ones_add(pseudo, !self.checksum()))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    pub fn set_src_port(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 0, v)
    }

    pub fn set_dst_port(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 2, v)
    }

    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), CHECKSUM_OFFSET, v)
    }

    /// Recomputes and stores the checksum over the whole buffer.
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
    fn vector_11() {
        let mut seg = [
            0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
        ];
        let ph = pseudo_header_v4(&[192, 168, 0, 1], &[192, 168, 0, 199], 6, 20);
        let mut t = TcpPacket::new_checked(&mut seg[..]).unwrap();
        t.fill_checksum(ph);
        assert_eq!(t.checksum(), 0x9138);
        assert!(t.verify_checksum(ph));
        assert_eq!(
            (t.src_port(), t.dst_port(), t.flags(), t.header_len()),
            (40000, 80, 2, 20)
        );
        seg[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked_at(&seg[..], 34).unwrap_err().message,
            "TCP data offset 4 < 5 at offset 46"
        );
    }
}
