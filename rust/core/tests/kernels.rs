//! Kernel sanity on a large buffer, plus a printed (never asserted) throughput estimate.
//! Run with `--nocapture` to see the numbers.

mod common;

use std::time::Instant;

use wfpsim_core::checksum::ChecksumInfo;
use wfpsim_core::packet::{decrement_ttl, fix, rewrite_address, rewrite_port, verify, Endpoint};

use wfpsim_core::bytes::Segmented;
use wfpsim_core::checksum::kernel::{self, Kernel};
use wfpsim_core::checksum::ones_sum;

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

#[test]
fn simd_and_scalar_agree_on_64k() {
    let data = pattern(64 * 1024 + 64);
    for k in kernel::ALL {
        if !kernel::available(k) {
            eprintln!("note: no {k:?} on this CPU; that kernel did not run");
        }
    }
    for start in 0..8 {
        for len in [64 * 1024 - 1, 64 * 1024] {
            let d = &data[start..start + len];
            let scalar = kernel::ones_sum_with(Kernel::Scalar, d);
            assert!(scalar.is_some());
            for k in kernel::ALL {
                if kernel::available(k) {
                    assert_eq!(
                        kernel::ones_sum_with(k, d),
                        scalar,
                        "{k:?} start {start} len {len}"
                    );
                }
            }
            assert_eq!(Some(ones_sum(d)), scalar);
        }
    }
}

/// Prints rough throughput for 40 B, 1500 B and 64 KiB per kernel (and the dispatching
/// `ones_sum`). Timing depends on the machine and load; nothing is asserted.
#[test]
fn print_throughput() {
    let data = pattern(64 * 1024 + 1);
    eprintln!(
        "selected kernel for > {} B: {:?}",
        kernel::SMALL_LEN,
        kernel::selected()
    );
    for size in [40usize, 1500, 64 * 1024] {
        let d = &data[1..1 + size]; // odd address on purpose
        let iters = (64 * 1024 * 1024 / size).clamp(1000, 2_000_000);
        let mut line = format!("{size:>6} B:");
        let mut run = |name: &str, f: &dyn Fn(&[u8]) -> u16| {
            let mut acc = 0u16;
            let t = Instant::now();
            for _ in 0..iters {
                acc ^= f(std::hint::black_box(d));
            }
            let s = t.elapsed().as_secs_f64();
            std::hint::black_box(acc);
            line += &format!(
                "  {name} {:.1} GB/s ({:.1} ns/op)",
                (size * iters) as f64 / s / 1e9,
                s * 1e9 / iters as f64
            );
        };
        run("ones_sum", &|d| ones_sum(d));
        for k in kernel::ALL {
            if kernel::available(k) {
                run(&format!("{k:?}"), &|d| {
                    kernel::ones_sum_with(k, d).unwrap_or(0)
                });
            }
        }
        eprintln!("{line}");
    }
}

/// Prints rough per-packet costs of the NAT hot path and of verify/fix on a 1500-byte IPv4/TCP
/// packet lying in two pieces. Nothing is asserted.
#[test]
fn print_packet_op_costs() {
    let mut tcp = vec![
        0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0,
    ];
    tcp.extend(pattern(1460));
    let mut pkt = common::ipv4(6, [192, 168, 0, 1], [10, 0, 0, 1], &tcp);
    fix(&mut pkt[..], ChecksumInfo::NONE).unwrap();
    let mut buf = pkt.clone();
    let mut pieces = common::split(&mut buf, &[54]);
    let iters = 200_000;
    let time = |name: &str, f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        eprintln!(
            "{name:<44} {:>7.1} ns/packet",
            t.elapsed().as_secs_f64() * 1e9 / iters as f64
        );
    };
    let mut i = 0u32;
    time("NAT: rewrite src addr + src port + TTL", &mut || {
        i = i.wrapping_add(1);
        rewrite_address(
            &mut pieces,
            Endpoint::Source,
            &i.to_be_bytes(),
            ChecksumInfo::NONE,
        )
        .unwrap();
        rewrite_port(&mut pieces, Endpoint::Source, i as u16, ChecksumInfo::NONE).unwrap();
        if decrement_ttl(&mut pieces, ChecksumInfo::NONE) == Ok(1) {
            pieces.write_at(8, &[64]);
        }
    });
    time("rewrite_address alone", &mut || {
        i = i.wrapping_add(1);
        rewrite_address(
            &mut pieces,
            Endpoint::Destination,
            &i.to_be_bytes(),
            ChecksumInfo::NONE,
        )
        .unwrap();
    });
    time("verify (1500 B, IPv4 + TCP)", &mut || {
        std::hint::black_box(verify(&pieces, ChecksumInfo::NONE).unwrap());
    });
    time("fix (1500 B, IPv4 + TCP)", &mut || {
        std::hint::black_box(fix(&mut pieces, ChecksumInfo::NONE).unwrap());
    });
}
