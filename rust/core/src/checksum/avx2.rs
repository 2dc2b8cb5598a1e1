//! The x86_64 AVX2 summing kernel. Only [`super::kernel`] calls it, after runtime detection.
//!
//! The same scheme as the AVX-512 kernel (see `avx512.rs`), at half the width: each 32-byte
//! load is four 64-bit lanes `lo + 2^32 * hi` of native-endian 32-bit words, accumulated as
//! `all += v` (wrapping) and `high += v >> 32` (exact), which recovers `Σlo + Σhigh` at the end
//! of a block. Three vector operations per 32 bytes, no carry handling in the loop.

use std::arch::x86_64::{
    __m256i, _mm256_add_epi64, _mm256_loadu_si256, _mm256_setzero_si256, _mm256_slli_epi64,
    _mm256_srli_epi64, _mm256_storeu_si256, _mm256_sub_epi64,
};

/// Bytes per unrolled iteration (four 32-byte loads).
const STEP: usize = 128;
/// Bytes per block. A block puts at most `BLOCK / 32 = 2^15` words of 32 bits into each 64-bit
/// lane, so every lane's `Σlo` and `Σhigh` stay below `2^47` and the four lanes of a block sum
/// to less than `2^50`.
const BLOCK: usize = 1 << 20;

/// Inputs at least this long are summed from a 32-byte-aligned address: an unaligned stream
/// splits every other load across two cache lines, which costs far more than the short scalar
/// head.
const ALIGN_MIN: usize = 256;

/// Native-endian wide sum of `data` (not folded; congruent to the word sum modulo `0xFFFF`).
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn sum(data: &[u8]) -> u64 {
    let head = (data.as_ptr() as usize).wrapping_neg() & 31;
    if head == 0 || data.len() < ALIGN_MIN {
        // SAFETY: same CPU-feature precondition as this function.
        return unsafe { blocks(data) };
    }
    let (head, rest) = data.split_at(head);
    // SAFETY: same CPU-feature precondition as this function.
    let rest_sum = unsafe { blocks(rest) };
    // After an odd head every word of `rest` straddles two stream words: its sum is
    // byte-swapped (`checksums.md §1.2`).
    let rest_sum = if head.len() % 2 == 1 {
        u64::from(super::fold(rest_sum).swap_bytes())
    } else {
        rest_sum
    };
    add_end_around(super::kernel::scalar(head), rest_sum)
}

/// Sum of `data` block by block.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn blocks(data: &[u8]) -> u64 {
    let mut total: u64 = 0;
    let mut rest = data;
    while rest.len() > BLOCK {
        let (block, tail) = rest.split_at(BLOCK);
        // SAFETY: same CPU-feature precondition as this function.
        total = add_end_around(total, unsafe { block_sum(block) });
        rest = tail;
    }
    // SAFETY: same CPU-feature precondition as this function.
    let last = unsafe { block_sum(rest) };
    add_end_around(total, last)
}

/// `a + b` with the carry out of bit 63 added back in (`2^64 ≡ 1 (mod 0xFFFF)`).
#[inline(always)]
fn add_end_around(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    s + u64::from(carry)
}

/// Loads 32 bytes at `p` and adds them to the `(all, high)` accumulator pair.
///
/// # Safety
/// The CPU must support AVX2; `p` must be valid for reading 32 bytes.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn add32(all: &mut __m256i, high: &mut __m256i, p: *const u8) {
    // SAFETY: the caller guarantees 32 readable bytes at `p`; loadu has no alignment
    // requirement.
    let v = unsafe { _mm256_loadu_si256(p.cast::<__m256i>()) };
    *all = _mm256_add_epi64(*all, v);
    *high = _mm256_add_epi64(*high, _mm256_srli_epi64::<32>(v));
}

/// Sum of at most [`BLOCK`] bytes, below `2^51`. Whole 32-byte vectors go through the vector
/// loop; the last 0..=31 bytes through the scalar kernel.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn block_sum(block: &[u8]) -> u64 {
    debug_assert!(block.len() <= BLOCK);
    let n = block.len();
    let p = block.as_ptr();
    let zero = _mm256_setzero_si256();
    let (mut a0, mut a1, mut h0, mut h1) = (zero, zero, zero, zero);
    let mut i = 0;
    while n - i >= STEP {
        // SAFETY: `i + STEP <= n`, so the four 32-byte loads at `i + {0, 32, 64, 96}` stay
        // inside `block`.
        unsafe {
            add32(&mut a0, &mut h0, p.add(i));
            add32(&mut a1, &mut h1, p.add(i + 32));
            add32(&mut a0, &mut h0, p.add(i + 64));
            add32(&mut a1, &mut h1, p.add(i + 96));
        }
        i += STEP;
    }
    while n - i >= 32 {
        // SAFETY: `i + 32 <= n`.
        unsafe { add32(&mut a0, &mut h0, p.add(i)) };
        i += 32;
    }
    let all = _mm256_add_epi64(a0, a1);
    let high = _mm256_add_epi64(h0, h1);
    // Per lane: Σlo + Σhigh = all - (high << 32) + high.
    let lanes = _mm256_add_epi64(_mm256_sub_epi64(all, _mm256_slli_epi64::<32>(high)), high);
    let mut out = [0u64; 4];
    // SAFETY: `out` is 32 writable bytes; storeu has no alignment requirement.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast::<__m256i>(), lanes) };
    // `i` is even, so the scalar tail starts on a word boundary.
    out.iter().sum::<u64>() + super::kernel::scalar(&block[i..])
}
