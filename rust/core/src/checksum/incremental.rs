//! Incremental checksum updates for rewritten fields (RFC 1624, `checksums.md §3`).
//!
//! A change is expressed as a *delta*: the one's-complement sum `~m +' m'` over the changed
//! 16-bit words. The delta is computed once and then applied to every checksum that covers
//! the words (an address is covered by the IPv4 header checksum and by the L4 checksum through
//! the pseudo-header), in the form each field needs:
//! * a stored checksum: `HC' = ~(~HC +' delta)` (RFC 1624 eqn 3, never RFC 1141's form);
//! * an offload seed or other plain sum: `P' = P +' delta` (no complement, §3 last bullet);
//! * a UDP checksum: as a checksum, but stored 0 ("no checksum") stays 0 and a result of 0 is
//!   stored as `0xFFFF` (RFC 768).

use super::sum::{fold, ones_add};

/// RFC 1624 eqn 3 for one 16-bit word `old` → `new` covered by checksum `hc`.
#[inline]
pub const fn update16(hc: u16, old: u16, new: u16) -> u16 {
    !ones_add(ones_add(!hc, !old), new)
}

/// RFC 1624 eqn 3 for a 32-bit field (two words) at an even offset of the covered region.
#[inline]
pub const fn update32(hc: u16, old: u32, new: u32) -> u16 {
    let d = ones_add(
        ones_add(!(old >> 16) as u16, (new >> 16) as u16),
        ones_add(!old as u16, new as u16),
    );
    apply_delta(hc, d)
}

/// The delta for replacing the bytes `old` by `new` (equal length, enforced by the type).
///
/// `odd_offset`: the range starts at an odd offset from the start of the checksummed region,
/// so its bytes pair with the neighbours' and its contribution is byte-swapped (§1.2).
#[inline]
pub fn delta<const N: usize>(old: &[u8; N], new: &[u8; N], odd_offset: bool) -> u16 {
    let d = ones_add(!small_sum(old), small_sum(new));
    if odd_offset {
        d.swap_bytes()
    } else {
        d
    }
}

/// Sum of a short fixed-size field: unrolled at compile time, no kernel call.
#[inline(always)]
fn small_sum<const N: usize>(b: &[u8; N]) -> u16 {
    let mut acc = 0u64;
    let mut i = 0;
    while i + 1 < N {
        acc += u64::from(u16::from_be_bytes([b[i], b[i + 1]]));
        i += 2;
    }
    if N % 2 == 1 {
        acc += u64::from(b[N - 1]) << 8;
    }
    fold(acc)
}

/// Applies a delta to a stored checksum (RFC 1624 eqn 3 form).
#[inline]
pub const fn apply_delta(hc: u16, delta: u16) -> u16 {
    !ones_add(!hc, delta)
}

/// Applies a delta to a stored UDP checksum: 0 ("no checksum", IPv4) stays 0, a result of 0 is
/// stored as `0xFFFF`.
#[inline]
pub const fn update_udp(hc: u16, delta: u16) -> u16 {
    if hc == 0 {
        return 0;
    }
    match apply_delta(hc, delta) {
        0 => 0xFFFF,
        v => v,
    }
}

/// RFC 1624 eqn 3 for an arbitrary equal-length byte range (an IPv4 or IPv6 address).
#[inline]
pub fn update_bytes<const N: usize>(
    hc: u16,
    old: &[u8; N],
    new: &[u8; N],
    odd_offset: bool,
) -> u16 {
    apply_delta(hc, delta(old, new, odd_offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::internet_checksum;

    #[test]
    fn rfc1624_example() {
        // checksums.md §8 vector 4.
        let rest = 0xCD7A;
        let hc = !ones_add(rest, 0x5555);
        assert_eq!(hc, 0xDD2F);
        assert_eq!(!ones_add(rest, 0x3285), 0x0000);
        assert_eq!(update16(hc, 0x5555, 0x3285), 0x0000);
        // RFC 1141's form gives the wrong -0 here; make sure we are not computing that.
        assert_eq!(ones_add(ones_add(hc, 0x5555), !0x3285), 0xFFFF);
        // Erratum 4782's claim does not hold: HC = 0, m = m'.
        assert_eq!(update16(0, 0x5555, 0x5555), 0x0000);
    }

    #[test]
    fn update_forms_agree_with_recompute() {
        let mut hdr = [
            0x45u8, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0x00,
            0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let hc = internet_checksum(&hdr, 0);
        assert_eq!(hc, 0xB861);
        let new_src = [10u8, 1, 2, 3];
        let old_src = [0xc0, 0xa8, 0x00, 0x01];
        let by_bytes = update_bytes(hc, &old_src, &new_src, false);
        let by_32 = update32(hc, u32::from_be_bytes(old_src), u32::from_be_bytes(new_src));
        hdr[12..16].copy_from_slice(&new_src);
        let fresh = internet_checksum(&hdr, 0);
        assert_eq!((by_bytes, by_32, fresh), (0x6D07, 0x6D07, 0x6D07));
        // A byte field at an odd offset (protocol, offset 9).
        let d = delta(&[0x11], &[0x06], true);
        let upd = apply_delta(fresh, d);
        hdr[9] = 0x06;
        assert_eq!(upd, internet_checksum(&hdr, 0));
    }

    #[test]
    fn udp_rules() {
        assert_eq!(update_udp(0, 0x1234), 0);
        // A delta equal to hc makes ~hc +' d = 0xFFFF, so eqn 3 yields 0.
        let hc = 0x1234;
        let d = hc;
        assert_eq!(apply_delta(hc, d), 0);
        assert_eq!(update_udp(hc, d), 0xFFFF);
    }
}
