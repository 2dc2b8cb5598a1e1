//! Checksum kernel throughput, printed and never asserted. Ignored by default; run with
//! `cargo test -p wfpsim-core --release --test checksum_bench -- --ignored --nocapture`.
//!
//! Each figure is the best of several timed rounds (other processes may share the cores), over
//! a 64-byte-aligned slice and over the same length at the next (odd) address, marked `+1`.

use std::hint::black_box;
use std::time::Instant;

use wfpsim_core::checksum::kernel::{self, Kernel};
use wfpsim_core::checksum::ones_sum;

const SIZES: [usize; 5] = [40, 64, 1500, 9000, 64 * 1024];
const ROUNDS: usize = 15;
/// Bytes summed per timed round (roughly 3–30 ms per round, depending on size and kernel).
const BYTES_PER_ROUND: usize = 256 << 20;

fn pattern(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Best-of-`ROUNDS` throughput of `f` over `d`, in GB/s, and the matching ns per call.
fn best(d: &[u8], f: &dyn Fn(&[u8]) -> u16) -> (f64, f64) {
    let iters = (BYTES_PER_ROUND / d.len()).clamp(10_000, 20_000_000);
    let mut best_s = f64::INFINITY;
    for _ in 0..ROUNDS {
        let mut acc = 0u16;
        let t = Instant::now();
        for _ in 0..iters {
            acc ^= f(black_box(d));
        }
        best_s = best_s.min(t.elapsed().as_secs_f64());
        black_box(acc);
    }
    (
        (d.len() * iters) as f64 / best_s / 1e9,
        best_s * 1e9 / iters as f64,
    )
}

#[test]
#[ignore = "throughput measurement; run with --ignored --nocapture"]
fn checksum_throughput() {
    let data = pattern(64 * 1024 + 128);
    let base = data.as_ptr().align_offset(64);
    eprintln!(
        "selected kernel for > {} B: {:?}",
        kernel::SMALL_LEN,
        kernel::selected()
    );
    let kernels: Vec<Kernel> = kernel::ALL
        .iter()
        .copied()
        .filter(|&k| kernel::available(k))
        .collect();
    for size in SIZES {
        for start in [0, 1] {
            let d = &data[base + start..base + start + size];
            let mut line = format!("{size:>6} B{}:", if start == 0 { "   " } else { " +1" });
            for &k in &kernels {
                let (gbs, ns) = best(d, &|d| kernel::ones_sum_with(k, d).unwrap_or(0));
                line += &format!("  {:<7} {gbs:6.1} GB/s {ns:8.1} ns", format!("{k:?}"));
            }
            let (gbs, ns) = best(d, &ones_sum);
            line += &format!("  | ones_sum {gbs:6.1} GB/s {ns:8.1} ns");
            eprintln!("{line}");
        }
    }
}
