//! IPv6 fixed header view (RFC 8200 §3). Extension headers: [`super::ipv6_ext`] (views) and
//! [`super::ipv6_chain`] (the walk to the upper layer).

use super::field::{array_at, set_bytes, set_u16, set_u8, too_short, u16_at, u32_at, u8_at};
use super::ipv6_chain::{walk_ipv6, Ipv6Chain};
use crate::{Error, Result};

pub const HEADER_LEN: usize = 40;
pub const HOP_LIMIT_OFFSET: usize = 7;
pub const SRC_OFFSET: usize = 8;
pub const DST_OFFSET: usize = 24;

/// A checked view of the 40-byte IPv6 header (and whatever follows it in the buffer).
#[derive(Clone, Copy, Debug)]
pub struct Ipv6Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Checks that 40 bytes are present and the version is 6.
    pub fn new_checked(buffer: T) -> Result<Self> {
        Self::new_checked_at(buffer, 0)
    }

    /// As [`Self::new_checked`], reporting offsets relative to `at`.
    pub fn new_checked_at(buffer: T, at: usize) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(too_short("IPv6 header", HEADER_LEN, b.len(), at));
        }
        let version = u8_at(b, 0) >> 4;
        if version != 6 {
            return Err(Error::malformed(format!(
                "IPv6 version field {version} != 6 at offset {at}"
            )));
        }
        Ok(Ipv6Packet { buffer })
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

    pub fn traffic_class(&self) -> u8 {
        (u16_at(self.b(), 0) >> 4) as u8
    }

    pub fn flow_label(&self) -> u32 {
        u32_at(self.b(), 0) & 0x000F_FFFF
    }

    /// Payload Length: bytes after the fixed header (0 for a jumbogram).
    pub fn payload_len(&self) -> u16 {
        u16_at(self.b(), 4)
    }

    pub fn next_header(&self) -> u8 {
        u8_at(self.b(), 6)
    }

    pub fn hop_limit(&self) -> u8 {
        u8_at(self.b(), HOP_LIMIT_OFFSET)
    }

    pub fn src_addr(&self) -> [u8; 16] {
        array_at(self.b(), SRC_OFFSET)
    }

    pub fn dst_addr(&self) -> [u8; 16] {
        array_at(self.b(), DST_OFFSET)
    }

    /// Walks the extension headers in the buffer (`checksums.md §4`).
    pub fn chain(&self) -> Result<Ipv6Chain> {
        walk_ipv6(self.b(), 0)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    pub fn set_payload_len(&mut self, v: u16) {
        set_u16(self.bm(), 4, v)
    }

    pub fn set_next_header(&mut self, v: u8) {
        set_u8(self.bm(), 6, v)
    }

    pub fn set_hop_limit(&mut self, v: u8) {
        set_u8(self.bm(), HOP_LIMIT_OFFSET, v)
    }

    pub fn set_src_addr(&mut self, a: [u8; 16]) {
        set_bytes(self.bm(), SRC_OFFSET, &a)
    }

    pub fn set_dst_addr(&mut self, a: [u8; 16]) {
        set_bytes(self.bm(), DST_OFFSET, &a)
    }
}
