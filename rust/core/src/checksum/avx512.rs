//! The x86_64 AVX-512 summing kernel. Only [`super::kernel`] calls it, after runtime detection.
//!
//! Each 64-byte load is viewed as eight 64-bit lanes, each holding two native-endian 32-bit
//! words `lo + 2^32 * hi`. Two accumulators per stream are kept: `all += v` (wrapping) and
//! `high += v >> 32` (exact). Since `all ≡ Σlo + 2^32 Σhigh (mod 2^64)` and both sums stay
//! far below 2^64 within a block, `Σlo + Σhigh = all - (2^32 - 1) * high` exactly, which is
//! congruent to the sum of the 16-bit words modulo `0xFFFF`. That is three vector operations
//! per 64 bytes (one shift, two adds) and no carry handling in the loop, unrolled four times.
//!
//! The loop reads 64-byte-aligned vectors only; the unaligned head and the tail (0..=63 bytes
//! each) are zero-masked loads, so there is no scalar code on this path at all.

use std::arch::x86_64::{
    __m512i, _mm512_add_epi64, _mm512_and_si512, _mm512_loadu_si512, _mm512_maskz_loadu_epi8,
    _mm512_reduce_add_epi64, _mm512_set1_epi64, _mm512_setzero_si512, _mm512_sll_epi64,
    _mm512_slli_epi64, _mm512_srli_epi64, _mm512_sub_epi64, _mm_cvtsi32_si128,
};

/// Bytes per unrolled iteration (four 64-byte loads).
const STEP: usize = 256;
/// Bytes per block. A block puts at most `BLOCK / 64 + 1` words of 32 bits into each 64-bit
/// lane, so every lane's `Σlo` and `Σhigh` stay below `2^47` and a block's total, even
/// shifted left by 8 (see [`block_sum`]), stays below `2^60`.
const BLOCK: usize = 1 << 20;

/// Native-endian wide sum of `data` (not folded; congruent to the word sum modulo `0xFFFF`).
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512BW.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn sum(data: &[u8]) -> u64 {
    let mut total: u64 = 0;
    let mut rest = data;
    while rest.len() > BLOCK {
        let (block, tail) = rest.split_at(BLOCK);
        // SAFETY: same CPU-feature precondition as this function.
        total = add_end_around(total, unsafe { block_sum(block) });
        rest = tail;
    }
    // SAFETY: same CPU-feature precondition as this function.
    add_end_around(total, unsafe { block_sum(rest) })
}

/// `a + b` with the carry out of bit 63 added back in (`2^64 ≡ 1 (mod 0xFFFF)`).
#[inline(always)]
fn add_end_around(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    s + u64::from(carry)
}

/// Loads 64 bytes at `p` and adds them to the `(all, high)` accumulator pair.
///
/// # Safety
/// The CPU must support AVX-512F; `p` must be valid for reading 64 bytes.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn add64(all: &mut __m512i, high: &mut __m512i, p: *const u8) {
    // SAFETY: the caller guarantees 64 readable bytes at `p`; loadu has no alignment
    // requirement.
    let v = unsafe { _mm512_loadu_si512(p.cast::<__m512i>()) };
    *all = _mm512_add_epi64(*all, v);
    *high = _mm512_add_epi64(*high, _mm512_srli_epi64::<32>(v));
}

/// Sum of at most [`BLOCK`] bytes, below `2^60`.
///
/// The loop loads 64-byte-aligned vectors (an unaligned stream would split every load across
/// two cache lines). Their words are therefore paired from an even address, which byte-swaps
/// every word of the stream when `block` starts at an odd address (`checksums.md §1.2`). A
/// byte-swapped word is `256 * w (mod 0xFFFF)` and `256 * 256 ≡ 1`, so in that case the head
/// (the bytes before the first aligned address, one masked load paired from `block`'s own
/// start) is shifted left by 8 into the aligned pairing, and the block total shifted left by 8
/// back out of it.
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512BW.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn block_sum(block: &[u8]) -> u64 {
    debug_assert!(block.len() <= BLOCK);
    let n = block.len();
    let p = block.as_ptr();
    let zero = _mm512_setzero_si512();
    let (mut a0, mut a1) = (zero, zero);
    let (mut h0, mut h1) = (zero, zero);
    let swap = (p as usize & 1) as u32 * 8;
    // Bytes before the first 64-byte-aligned address (or all of a short block).
    let mut i = ((p as usize).wrapping_neg() & 63).min(n);
    if i != 0 {
        // SAFETY: the masked load reads only the first `i <= n` bytes of `block` (masked-off
        // bytes are not accessed and read as zero).
        let v = unsafe { masked(p, i) };
        // Fold to Σlo + Σhigh (< 2^33) so that the swap shift cannot overflow; it joins the
        // `all` sum as part of Σlo.
        let head = _mm512_add_epi64(
            _mm512_and_si512(v, _mm512_set1_epi64(0xFFFF_FFFF)),
            _mm512_srli_epi64::<32>(v),
        );
        a0 = _mm512_sll_epi64(head, _mm_cvtsi32_si128(swap as i32));
    }
    while n - i >= STEP {
        // SAFETY: `i + STEP <= n`, so the four 64-byte loads at `i + {0, 64, 128, 192}` stay
        // inside `block`.
        unsafe {
            add64(&mut a0, &mut h0, p.add(i));
            add64(&mut a1, &mut h1, p.add(i + 64));
            add64(&mut a0, &mut h0, p.add(i + 128));
            add64(&mut a1, &mut h1, p.add(i + 192));
        }
        i += STEP;
    }
    while n - i >= 64 {
        // SAFETY: `i + 64 <= n`.
        unsafe { add64(&mut a1, &mut h1, p.add(i)) };
        i += 64;
    }
    if i < n {
        // SAFETY: the masked load reads only the last `n - i` bytes of `block`; a zero-filled
        // lane pads an odd tail on the right, as RFC 1071 asks.
        let v = unsafe { masked(p.add(i), n - i) };
        a0 = _mm512_add_epi64(a0, v);
        h0 = _mm512_add_epi64(h0, _mm512_srli_epi64::<32>(v));
    }
    let all = _mm512_add_epi64(a0, a1);
    let high = _mm512_add_epi64(h0, h1);
    // Per lane: Σlo + Σhigh = all - (high << 32) + high.
    let lanes = _mm512_add_epi64(_mm512_sub_epi64(all, _mm512_slli_epi64::<32>(high)), high);
    (_mm512_reduce_add_epi64(lanes) as u64) << swap
}

/// The first `len` (1..=64) bytes at `p`, zero-filled to 64.
///
/// # Safety
/// The CPU must support AVX-512F and AVX-512BW; `p` must be valid for reading `len` bytes.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn masked(p: *const u8, len: usize) -> __m512i {
    debug_assert!((1..=64).contains(&len));
    let mask = u64::MAX >> (64 - len);
    // SAFETY: only the `len` bytes selected by `mask` are read (masked-off bytes are not
    // accessed: AVX-512 masked loads suppress faults on them), and the caller guarantees those.
    unsafe { _mm512_maskz_loadu_epi8(mask, p.cast::<i8>()) }
}
