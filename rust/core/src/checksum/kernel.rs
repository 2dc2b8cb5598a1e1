//! The summing loops behind [`super::ones_sum`] and their runtime selection.
//!
//! Every kernel returns a *native-endian* wide sum (unfolded): words are loaded in host byte
//! order and the caller swaps once after folding (RFC 1071 §2(B)). Inputs of at most
//! [`SMALL_LEN`] bytes (headers, pseudo-headers, small segments) go straight to the scalar loop
//! without consulting the feature cache at all; larger inputs cost one relaxed atomic load to
//! pick the kernel: AVX-512 (F and BW) if the CPU has it, else AVX2, else the scalar loop.

use std::sync::atomic::{AtomicU8, Ordering};

/// Inputs up to this length never look at the CPU-feature cache.
pub const SMALL_LEN: usize = 64;

/// A summing kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Portable: 32-bit loads into 64-bit accumulators, 32 bytes per iteration.
    Scalar,
    /// x86_64 AVX2: 128 bytes per iteration in 64-bit lanes, from a 32-byte-aligned address
    /// for inputs of 256 bytes or more; scalar tail.
    Avx2,
    /// x86_64 AVX-512F + AVX-512BW: 256 bytes per iteration in 64-bit lanes from 64-byte-aligned
    /// addresses; masked loads for the unaligned head and the tail. Preferred when available.
    Avx512,
}

/// Every kernel, slowest first (for tests and measurements; check [`available`]).
pub const ALL: [Kernel; 3] = [Kernel::Scalar, Kernel::Avx2, Kernel::Avx512];

const UNKNOWN: u8 = 0;
const SCALAR: u8 = 1;
const AVX2: u8 = 2;
const AVX512: u8 = 3;

/// The detected kernel, cached after the first large input.
static SELECTED: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Whether `kernel` can run on this CPU.
pub fn available(kernel: Kernel) -> bool {
    match kernel {
        Kernel::Scalar => true,
        Kernel::Avx2 => avx2_detected(),
        Kernel::Avx512 => avx512_detected(),
    }
}

/// The kernel used for inputs longer than [`SMALL_LEN`].
pub fn selected() -> Kernel {
    match selected_code() {
        AVX2 => Kernel::Avx2,
        AVX512 => Kernel::Avx512,
        _ => Kernel::Scalar,
    }
}

/// The folded big-endian sum of `data` computed by a specific kernel (for tests and
/// measurements); `None` if the kernel cannot run here.
pub fn ones_sum_with(kernel: Kernel, data: &[u8]) -> Option<u16> {
    let native = match kernel {
        Kernel::Scalar => scalar(data),
        Kernel::Avx2 => avx2_sum(data)?,
        Kernel::Avx512 => avx512_sum(data)?,
    };
    Some(u16::from_be(super::fold(native)))
}

/// Native-endian wide sum of `data` with the best kernel for its size.
#[inline]
pub(crate) fn native_sum(data: &[u8]) -> u64 {
    if data.len() <= SMALL_LEN {
        return scalar(data);
    }
    match selected_code() {
        #[cfg(target_arch = "x86_64")]
        AVX2 => {
            // SAFETY: AVX2 is only ever cached after runtime detection succeeded.
            unsafe { super::avx2::sum(data) }
        }
        #[cfg(target_arch = "x86_64")]
        AVX512 => {
            // SAFETY: AVX512 is only ever cached after runtime detection of AVX-512F and
            // AVX-512BW succeeded.
            unsafe { super::avx512::sum(data) }
        }
        _ => scalar(data),
    }
}

#[inline]
fn selected_code() -> u8 {
    match SELECTED.load(Ordering::Relaxed) {
        UNKNOWN => detect(),
        code => code,
    }
}

#[cold]
fn detect() -> u8 {
    let code = if avx512_detected() {
        AVX512
    } else if avx2_detected() {
        AVX2
    } else {
        SCALAR
    };
    SELECTED.store(code, Ordering::Relaxed);
    code
}

fn avx2_detected() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn avx512_detected() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn avx512_sum(data: &[u8]) -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        if avx512_detected() {
            // SAFETY: AVX-512F and AVX-512BW support was just checked.
            return Some(unsafe { super::avx512::sum(data) });
        }
    }
    let _ = data;
    None
}

fn avx2_sum(data: &[u8]) -> Option<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        if avx2_detected() {
            // SAFETY: AVX2 support was just checked.
            return Some(unsafe { super::avx2::sum(data) });
        }
    }
    let _ = data;
    None
}

#[inline(always)]
fn load32(c: &[u8], i: usize) -> u64 {
    u64::from(u32::from_ne_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]))
}

/// The portable kernel: a 32-bit word never overflows a 64-bit accumulator before 2^32 adds,
/// so carries are simply deferred to the final fold. Four accumulators keep the adds
/// independent; LLVM widens the loop further where the target allows.
pub(crate) fn scalar(data: &[u8]) -> u64 {
    let (mut a0, mut a1, mut a2, mut a3) = (0u64, 0u64, 0u64, 0u64);
    let mut blocks = data.chunks_exact(32);
    for c in &mut blocks {
        a0 += load32(c, 0) + load32(c, 16);
        a1 += load32(c, 4) + load32(c, 20);
        a2 += load32(c, 8) + load32(c, 24);
        a3 += load32(c, 12) + load32(c, 28);
    }
    let mut acc = a0 + a1 + a2 + a3;
    let mut words = blocks.remainder().chunks_exact(4);
    for c in &mut words {
        acc += load32(c, 0);
    }
    match *words.remainder() {
        [a, b, c] => {
            acc + u64::from(u16::from_ne_bytes([a, b])) + u64::from(u16::from_ne_bytes([c, 0]))
        }
        [a, b] => acc + u64::from(u16::from_ne_bytes([a, b])),
        [a] => acc + u64::from(u16::from_ne_bytes([a, 0])),
        _ => acc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(data: &[u8]) -> u16 {
        let mut acc: u64 = 0;
        for pair in data.chunks(2) {
            acc += u64::from(pair[0]) << 8 | u64::from(*pair.get(1).unwrap_or(&0));
        }
        super::super::fold(acc)
    }

    #[test]
    fn kernels_match_reference_for_all_small_lengths_and_offsets() {
        let buf: Vec<u8> = (0..700u32).map(|i| (i * 37 + 11) as u8).collect();
        for start in 0..64 {
            for len in 0..600 {
                let d = &buf[start..start + len];
                let want = reference(d);
                assert_eq!(
                    ones_sum_with(Kernel::Scalar, d),
                    Some(want),
                    "scalar {start}+{len}"
                );
                for k in [Kernel::Avx2, Kernel::Avx512] {
                    if available(k) {
                        assert_eq!(ones_sum_with(k, d), Some(want), "{k:?} {start}+{len}");
                    }
                }
                assert_eq!(crate::checksum::ones_sum(d), want);
            }
        }
    }

    #[test]
    fn all_ones_does_not_overflow() {
        // 4 MiB of 0xFF: several blocks of either SIMD kernel; the odd tail pads to 0xFF00.
        for (len, want) in [((1 << 22) + 2, 0xFFFF), ((1 << 22) + 3, 0xFF00)] {
            let big = vec![0xFFu8; len];
            assert_eq!(ones_sum_with(Kernel::Scalar, &big), Some(want));
            for k in [Kernel::Avx2, Kernel::Avx512] {
                if available(k) {
                    assert_eq!(ones_sum_with(k, &big), Some(want), "{k:?} {len}");
                }
            }
        }
        let zero = vec![0u8; 4096];
        assert_eq!(crate::checksum::ones_sum(&zero), 0);
    }
}
