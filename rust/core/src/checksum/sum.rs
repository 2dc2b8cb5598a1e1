//! One's-complement sums over contiguous and segmented bytes (RFC 1071, `checksums.md §1`).

use super::kernel;
use crate::bytes::Segmented;
use crate::{Error, Result};

/// Folds a wide accumulator of 16-bit words to 16 bits with end-around carries.
///
/// `2^32 ≡ 2^16 ≡ 1 (mod 0xFFFF)`, so halves can be added at any width. A non-zero input never
/// folds to `0x0000` (one's-complement +0 is unreachable by adding non-zero words).
#[inline]
pub const fn fold(acc: u64) -> u16 {
    let a = (acc & 0xFFFF_FFFF) + (acc >> 32); // < 2^33
    let a = (a & 0xFFFF) + (a >> 16); // < 2^17 + 2^16
    let a = (a & 0xFFFF) + (a >> 16); // <= 0xFFFF + 2
    ((a & 0xFFFF) + (a >> 16)) as u16
}

/// One's-complement addition of two 16-bit values (`a +' b`).
#[inline]
pub const fn ones_add(a: u16, b: u16) -> u16 {
    let s = a as u32 + b as u32;
    ((s & 0xFFFF) + (s >> 16)) as u16
}

/// The folded, uncomplemented sum of `data` as big-endian 16-bit words; an odd trailing byte is
/// padded with a zero byte on the right (RFC 1071).
#[inline]
pub fn ones_sum(data: &[u8]) -> u16 {
    // The kernels sum native-endian loads; byte order independence (RFC 1071 §2(B)) lets us
    // swap once here instead of per word.
    u16::from_be(fold(kernel::native_sum(data)))
}

/// The Internet checksum of `data`: `~(initial +' sum(data))`.
///
/// `initial` is an uncomplemented partial sum added first, typically a pseudo-header sum
/// ([`super::pseudo`]); pass 0 for none. To verify, sum a region *including* its checksum field:
/// the result is 0 exactly when the stored checksum is right.
#[inline]
pub fn internet_checksum(data: &[u8], initial: u16) -> u16 {
    !ones_add(initial, ones_sum(data))
}

/// A running one's-complement sum over a byte stream fed in pieces of any length.
///
/// Each piece is summed as if it started on a word boundary; a piece that starts at an odd
/// stream offset has its partial sum byte-swapped before it is added (`checksums.md §1.2`), so
/// the result equals the sum of the concatenation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OnesSum {
    acc: u64,
    odd: bool,
}

impl OnesSum {
    pub const fn new() -> Self {
        OnesSum { acc: 0, odd: false }
    }

    /// Starts from an uncomplemented partial sum (e.g. a pseudo-header sum).
    pub const fn with_initial(initial: u16) -> Self {
        OnesSum {
            acc: initial as u64,
            odd: false,
        }
    }

    /// Appends the next bytes of the stream.
    #[inline]
    pub fn add_bytes(&mut self, piece: &[u8]) {
        let s = ones_sum(piece);
        self.acc += u64::from(if self.odd { s.swap_bytes() } else { s });
        self.odd ^= piece.len() % 2 == 1;
    }

    /// Adds a 16-bit word that is not part of the byte stream (a pseudo-header word); the stream
    /// position is unchanged.
    #[inline]
    pub fn add_word(&mut self, word: u16) {
        self.acc += u64::from(word);
    }

    /// True when an odd number of stream bytes has been added.
    pub const fn is_odd(&self) -> bool {
        self.odd
    }

    /// The folded, uncomplemented sum so far.
    pub const fn sum(&self) -> u16 {
        fold(self.acc)
    }

    /// The checksum of what was added: the complement of [`Self::sum`].
    pub const fn checksum(&self) -> u16 {
        !fold(self.acc)
    }
}

/// The folded sum of `len` bytes at `offset` of segmented data, word boundaries counted from
/// `offset`. Fails (Malformed) when the range runs past the data.
pub fn ones_sum_segmented<S: Segmented + ?Sized>(
    data: &S,
    offset: usize,
    len: usize,
) -> Result<u16> {
    let end = offset
        .checked_add(len)
        .ok_or_else(|| range_error(offset, len, data))?;
    if let Some(range) = data.first_piece().get(offset..end) {
        return Ok(ones_sum(range));
    }
    let mut acc = OnesSum::new();
    let mut skip = offset;
    let mut left = len;
    data.visit(&mut |piece| {
        if skip >= piece.len() {
            skip -= piece.len();
            return true;
        }
        let avail = piece.get(skip..).unwrap_or_default();
        skip = 0;
        let n = avail.len().min(left);
        acc.add_bytes(avail.get(..n).unwrap_or_default());
        left -= n;
        left > 0
    });
    if left > 0 {
        return Err(range_error(offset, len, data));
    }
    Ok(acc.sum())
}

/// The Internet checksum of `len` bytes at `offset` of segmented data, `initial` added first.
pub fn internet_checksum_segmented<S: Segmented + ?Sized>(
    data: &S,
    offset: usize,
    len: usize,
    initial: u16,
) -> Result<u16> {
    Ok(!ones_add(initial, ones_sum_segmented(data, offset, len)?))
}

fn range_error<S: Segmented + ?Sized>(offset: usize, len: usize, data: &S) -> Error {
    Error::malformed(format!(
        "checksum range of {len} bytes at offset {offset} runs past the {} bytes available",
        data.total_len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::Pieces;

    #[test]
    fn fold_edges() {
        assert_eq!(fold(0), 0);
        assert_eq!(fold(0xFFFF), 0xFFFF);
        assert_eq!(fold(0x1_0000), 1);
        assert_eq!(fold(0x1_FFFE), 0xFFFF);
        assert_eq!(fold(u64::MAX), 0xFFFF);
        assert_eq!(ones_add(0xFFFF, 0xFFFF), 0xFFFF);
        assert_eq!(ones_add(0x8000, 0x8000), 1);
    }

    #[test]
    fn sums_odd_lengths() {
        assert_eq!(ones_sum(&[]), 0);
        assert_eq!(ones_sum(&[0xAB]), 0xAB00);
        assert_eq!(ones_sum(&[0x01, 0x02, 0x03]), 0x0402);
    }

    #[test]
    fn segmented_matches_contiguous_and_checks_range() {
        let data: Vec<u8> = (0..=200u8).collect();
        let (mut a, mut b, mut c) = (data[..7].to_vec(), data[7..8].to_vec(), data[8..].to_vec());
        let p = Pieces::new(vec![&mut a, &mut [][..], &mut b, &mut c]);
        for off in 0..20 {
            for len in [0usize, 1, 2, 3, 50, 180] {
                let want = ones_sum(&data[off..off + len]);
                assert_eq!(
                    ones_sum_segmented(&p, off, len),
                    Ok(want),
                    "off {off} len {len}"
                );
            }
        }
        let err = ones_sum_segmented(&p, 150, 60).unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::Malformed);
        assert!(err.message.contains("offset 150"), "{}", err.message);
        assert!(ones_sum_segmented(&p, usize::MAX, 2).is_err());
    }
}
