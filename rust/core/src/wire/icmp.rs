//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) message views: type, code, checksum, rest.
//! ICMPv4 has no pseudo-header; ICMPv6 uses the IPv6 one with Next Header 58 (§2.4).

use super::field::{set_u16, too_short, u16_at, u32_at, u8_at};
use crate::checksum::{internet_checksum, ones_add, ones_sum};
use crate::Result;

/// Type, code, checksum, and the 4-byte rest-of-header.
pub const HEADER_LEN: usize = 8;
pub const CHECKSUM_OFFSET: usize = 2;

macro_rules! icmp_view {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name<T> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Checks that the 8-byte header is present.
            pub fn new_checked(buffer: T) -> Result<Self> {
                Self::new_checked_at(buffer, 0)
            }

            /// As [`Self::new_checked`], reporting offsets relative to `at`.
            pub fn new_checked_at(buffer: T, at: usize) -> Result<Self> {
                let n = buffer.as_ref().len();
                if n < HEADER_LEN {
                    return Err(too_short($what, HEADER_LEN, n, at));
                }
                Ok($name { buffer })
            }

            pub fn into_inner(self) -> T {
                self.buffer
            }

            pub fn msg_type(&self) -> u8 {
                u8_at(self.buffer.as_ref(), 0)
            }

            pub fn msg_code(&self) -> u8 {
                u8_at(self.buffer.as_ref(), 1)
            }

            pub fn checksum(&self) -> u16 {
                u16_at(self.buffer.as_ref(), CHECKSUM_OFFSET)
            }

            /// Bytes 4..8 (identifier + sequence for echo, MTU for too-big, ...).
            pub fn rest_of_header(&self) -> u32 {
                u32_at(self.buffer.as_ref(), 4)
            }

            /// Echo identifier (first half of the rest of the header).
            pub fn echo_ident(&self) -> u16 {
                u16_at(self.buffer.as_ref(), 4)
            }

            pub fn echo_seq_no(&self) -> u16 {
                u16_at(self.buffer.as_ref(), 6)
            }

            pub fn payload(&self) -> &[u8] {
                self.buffer.as_ref().get(HEADER_LEN..).unwrap_or_default()
            }

            /// Whether the message checks out; `pseudo` is 0 for ICMPv4 and the IPv6
            /// pseudo-header sum for ICMPv6.
            pub fn verify_checksum(&self, pseudo: u16) -> bool {
                ones_add(pseudo, ones_sum(self.buffer.as_ref())) == 0xFFFF
            }

            /// The checksum the message should carry, with the field taken as 0.
            pub fn compute_checksum(&self, pseudo: u16) -> u16 {
                internet_checksum(self.buffer.as_ref(), ones_add(pseudo, !self.checksum()))
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            pub fn set_checksum(&mut self, v: u16) {
                set_u16(self.buffer.as_mut(), CHECKSUM_OFFSET, v)
            }

            pub fn fill_checksum(&mut self, pseudo: u16) {
                let c = self.compute_checksum(pseudo);
                self.set_checksum(c);
            }
        }
    };
}

icmp_view!(
    /// A checked ICMPv4 message view; its checksum covers the message only.
    Icmpv4Packet,
    "ICMPv4 header"
);
icmp_view!(
    /// A checked ICMPv6 message view; its checksum includes the IPv6 pseudo-header.
    Icmpv6Packet,
    "ICMPv6 header"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::pseudo_header_v6;

    #[test]
    fn vectors_7_and_8() {
        let mut m = *b"\x08\x00\x00\x00\x12\x34\x00\x01abcd";
        let mut v4 = Icmpv4Packet::new_checked(&mut m[..]).unwrap();
        v4.fill_checksum(0);
        assert_eq!(v4.checksum(), 0x2104);
        assert_eq!(
            (v4.msg_type(), v4.echo_ident(), v4.echo_seq_no()),
            (8, 0x1234, 1)
        );

        let mut m6 = *b"\x80\x00\x00\x00\x12\x34\x00\x01abcd";
        let a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut b = a;
        b[15] = 2;
        let ph = pseudo_header_v6(&a, &b, 58, 12);
        let mut v6 = Icmpv6Packet::new_checked(&mut m6[..]).unwrap();
        v6.fill_checksum(ph);
        assert_eq!(v6.checksum(), 0x4D48);
        assert!(v6.verify_checksum(ph));
        assert!(Icmpv6Packet::new_checked(&m6[..5]).is_err());
    }
}
