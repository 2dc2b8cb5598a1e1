//! Pseudo-header sums for TCP, UDP and ICMPv6 (`checksums.md §2.2`, `§2.3`).
//!
//! The returned value is the folded, uncomplemented sum: exactly the *seed* a stack stores in
//! the L4 checksum field for NDIS TX checksum offload (§7.3), and the `initial` value for
//! [`super::internet_checksum`].

use super::sum::{fold, ones_sum};

/// IPv4 pseudo-header `src, dst, 0, protocol, length` (12 bytes).
///
/// `l4_len` is the L4 header + data length; pass 0 for an LSO/USO seed, which leaves the length
/// out (§7.3).
#[inline]
pub fn pseudo_header_v4(src: &[u8; 4], dst: &[u8; 4], protocol: u8, l4_len: u16) -> u16 {
    let acc = u64::from(ones_sum(src))
        + u64::from(ones_sum(dst))
        + u64::from(protocol)
        + u64::from(l4_len);
    fold(acc)
}

/// IPv6 pseudo-header `src, dst, 32-bit length, 3 zero bytes, next header` (40 bytes).
///
/// `dst` is the *final* destination (through routing headers), `src` the Home Address when a
/// destination-options header carries one, `next_header` the upper-layer value and `l4_len`
/// the upper-layer length (a jumbogram's 32-bit length included).
#[inline]
pub fn pseudo_header_v6(src: &[u8; 16], dst: &[u8; 16], next_header: u8, l4_len: u32) -> u16 {
    let acc = u64::from(ones_sum(src))
        + u64::from(ones_sum(dst))
        + u64::from(l4_len >> 16)
        + u64::from(l4_len & 0xFFFF)
        + u64::from(next_header);
    fold(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_of_the_spec_vectors() {
        // checksums.md §8 vectors 5, 6 and 12.
        assert_eq!(
            pseudo_header_v4(&[192, 168, 0, 1], &[192, 168, 0, 199], 17, 13),
            0x8237
        );
        let a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut b = a;
        b[15] = 2;
        assert_eq!(pseudo_header_v6(&a, &b, 17, 13), 0x5B93);
        assert_eq!(
            pseudo_header_v4(&[10, 1, 2, 3], &[192, 168, 0, 199], 17, 13),
            0xCD91
        );
    }
}
