//! The x86_64 AVX2 summing kernel. Only [`super::kernel`] calls it, after runtime detection.

use std::arch::x86_64::{
    __m256i, _mm256_add_epi32, _mm256_and_si256, _mm256_loadu_si256, _mm256_set1_epi32,
    _mm256_setzero_si256, _mm256_srli_epi32, _mm256_storeu_si256,
};

/// Bytes per loop iteration (four 32-byte loads).
const STEP: usize = 128;
/// Iterations per block: each 32-bit lane of an accumulator gains at most 2 * 0xFFFF per
/// iteration (two loads feed it), so 16384 iterations stay below 2^32.
const BLOCK_ITERS: usize = 16_384;

/// Native-endian wide sum of `data`.
///
/// Each 32-byte load is split into the low and high 16-bit halves of its 32-bit lanes, which
/// are added as 32-bit integers; after a bounded block the lanes are spilled into a `u64`.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn sum(data: &[u8]) -> u64 {
    let mask = _mm256_set1_epi32(0xFFFF);
    let mut total: u64 = 0;
    let mut rest = data;
    while rest.len() >= STEP {
        let iters = (rest.len() / STEP).min(BLOCK_ITERS);
        let (block, tail) = rest.split_at(iters * STEP);
        let ptr = block.as_ptr();
        let mut lo0 = _mm256_setzero_si256();
        let mut hi0 = _mm256_setzero_si256();
        let mut lo1 = _mm256_setzero_si256();
        let mut hi1 = _mm256_setzero_si256();
        for i in 0..iters {
            // SAFETY: `block` holds `iters * STEP` bytes, so the four 32-byte loads at
            // `i * STEP + {0, 32, 64, 96}` stay inside it; loadu has no alignment requirement.
            let (v0, v1, v2, v3) = unsafe {
                let p = ptr.add(i * STEP);
                (
                    _mm256_loadu_si256(p.cast::<__m256i>()),
                    _mm256_loadu_si256(p.add(32).cast::<__m256i>()),
                    _mm256_loadu_si256(p.add(64).cast::<__m256i>()),
                    _mm256_loadu_si256(p.add(96).cast::<__m256i>()),
                )
            };
            lo0 = _mm256_add_epi32(lo0, _mm256_and_si256(v0, mask));
            hi0 = _mm256_add_epi32(hi0, _mm256_srli_epi32::<16>(v0));
            lo1 = _mm256_add_epi32(lo1, _mm256_and_si256(v1, mask));
            hi1 = _mm256_add_epi32(hi1, _mm256_srli_epi32::<16>(v1));
            lo0 = _mm256_add_epi32(lo0, _mm256_and_si256(v2, mask));
            hi0 = _mm256_add_epi32(hi0, _mm256_srli_epi32::<16>(v2));
            lo1 = _mm256_add_epi32(lo1, _mm256_and_si256(v3, mask));
            hi1 = _mm256_add_epi32(hi1, _mm256_srli_epi32::<16>(v3));
        }
        // SAFETY: same CPU-feature precondition as this function.
        total += unsafe { lanes(lo0) + lanes(hi0) + lanes(lo1) + lanes(hi1) };
        rest = tail;
    }
    total + super::kernel::scalar(rest)
}

/// Sum of the eight unsigned 32-bit lanes.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn lanes(v: __m256i) -> u64 {
    let mut out = [0u32; 8];
    // SAFETY: `out` is 32 writable bytes; storeu has no alignment requirement.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast::<__m256i>(), v) };
    out.iter().map(|&x| u64::from(x)).sum()
}
