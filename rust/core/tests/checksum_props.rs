//! Property tests: sums are independent of how the bytes are split, the SIMD kernels (AVX2,
//! AVX-512) equal the scalar one at any length and alignment, incremental rewrites equal
//! recomputation, and nothing panics on any input.

mod common;

use common::*;
use proptest::prelude::*;
use wfpsim_core::checksum::kernel::{self, Kernel};
use wfpsim_core::checksum::{
    fold, internet_checksum, ones_sum, ones_sum_segmented, ChecksumInfo, OnesSum,
};
use wfpsim_core::packet::{
    decrement_ttl, fix, parse, rewrite_address, rewrite_port, update_field16, update_field32,
    verify, Endpoint, FieldKind,
};
use wfpsim_core::wire::ip::protocol;

fn cut_points(len: usize, raw: &[usize]) -> Vec<usize> {
    let mut c: Vec<usize> = raw.iter().map(|&x| x % (len + 1)).collect();
    c.sort_unstable();
    c
}

/// RFC 1071 by the letter: big-endian 16-bit words, an odd last byte padded on the right.
fn naive_sum(data: &[u8]) -> u16 {
    let acc: u64 = data
        .chunks(2)
        .map(|w| u64::from(w[0]) << 8 | u64::from(*w.get(1).unwrap_or(&0)))
        .sum();
    fold(acc)
}

/// `len` test bytes. Mode 0: random; 1: all 0xFF (largest words, the most carries); 2: 0xFF
/// with about one byte in sixteen random.
fn test_bytes(seed: u64, len: usize, mode: u8) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match mode {
                0 => (x >> 24) as u8,
                1 => 0xFF,
                _ if x.is_multiple_of(16) => (x >> 24) as u8,
                _ => 0xFF,
            }
        })
        .collect()
}

/// A buffer holding `len` test bytes that start exactly `align` (0..64) bytes past a
/// 64-byte boundary, and the index they start at.
fn aligned_bytes(seed: u64, len: usize, mode: u8, align: usize) -> (Vec<u8>, usize) {
    let bytes = test_bytes(seed, len, mode);
    let mut buf = vec![0xA5u8; len + 128];
    let start = buf.as_ptr().align_offset(64) + align;
    buf[start..start + len].copy_from_slice(&bytes);
    (buf, start)
}

/// The folded sum of a stream fed piece by piece to `kernel`, applying the odd-offset byte
/// swap of `checksums.md §1.2` by hand.
fn streamed_with(k: Kernel, pieces: &[&[u8]]) -> Option<u16> {
    let (mut acc, mut odd) = (0u64, false);
    for piece in pieces {
        let s = kernel::ones_sum_with(k, piece)?;
        acc += u64::from(if odd { s.swap_bytes() } else { s });
        odd ^= piece.len() % 2 == 1;
    }
    Some(fold(acc))
}

proptest! {
    // No regression files: integration tests have no lib.rs for proptest to anchor them to.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn split_sum_equals_contiguous(
        data in proptest::collection::vec(any::<u8>(), 0..3000),
        raw_cuts in proptest::collection::vec(any::<usize>(), 0..12),
        a in any::<usize>(),
        b in any::<usize>(),
    ) {
        let n = data.len();
        let (off, end) = { let (x, y) = (a % (n + 1), b % (n + 1)); (x.min(y), x.max(y)) };
        let mut buf = data.clone();
        let pieces = split(&mut buf, &cut_points(n, &raw_cuts));
        prop_assert_eq!(ones_sum_segmented(&pieces, off, end - off).unwrap(), ones_sum(&data[off..end]));
        // Streaming form, pieces of the caller's choosing.
        let mut s = OnesSum::new();
        let cuts = cut_points(n, &raw_cuts);
        let mut prev = 0;
        for &c in cuts.iter().chain(std::iter::once(&n)) {
            s.add_bytes(&data[prev..c]);
            prev = c;
        }
        prop_assert_eq!(s.sum(), ones_sum(&data));
    }

    #[test]
    fn simd_kernels_equal_scalar(
        data in proptest::collection::vec(any::<u8>(), 0..9000),
        start in 0usize..64,
    ) {
        let d = &data[start.min(data.len())..];
        let scalar = kernel::ones_sum_with(Kernel::Scalar, d);
        for k in kernel::ALL {
            if kernel::available(k) {
                prop_assert_eq!(kernel::ones_sum_with(k, d), scalar, "{:?}", k);
            }
        }
        prop_assert_eq!(Some(ones_sum(d)), scalar);
    }

    /// AVX-512 == AVX2 == scalar == RFC 1071 for lengths up to 70000 (several SIMD blocks'
    /// worth of loop, every tail length) at every start offset modulo 64.
    #[test]
    fn kernels_agree_at_any_length_and_alignment(
        len in prop_oneof![0usize..320, 0usize..70_000],
        align in 0usize..64,
        seed in any::<u64>(),
        mode in 0u8..3,
    ) {
        let (buf, start) = aligned_bytes(seed, len, mode, align);
        let d = &buf[start..start + len];
        let want = naive_sum(d);
        for k in kernel::ALL {
            if kernel::available(k) {
                prop_assert_eq!(kernel::ones_sum_with(k, d), Some(want), "{:?}", k);
            }
        }
        prop_assert_eq!(ones_sum(d), want);
        prop_assert_eq!(internet_checksum(d, 0), !want);
    }

    /// Pieces that start at odd stream offsets (and odd addresses): every kernel, the
    /// streaming `OnesSum` and the segmented sum agree with the contiguous RFC 1071 sum.
    #[test]
    fn kernels_agree_on_pieces_at_odd_offsets(
        len in 0usize..70_000,
        raw_cuts in proptest::collection::vec(any::<usize>(), 0..6),
        align in 0usize..64,
        seed in any::<u64>(),
        mode in 0u8..3,
        range in any::<(usize, usize)>(),
    ) {
        let (mut buf, start) = aligned_bytes(seed, len, mode, align);
        let data = buf[start..start + len].to_vec();
        // Most cuts forced odd, so most pieces after the first start at an odd offset.
        let raw: Vec<usize> =
            raw_cuts.iter().map(|&c| if c.is_multiple_of(4) { c } else { c | 1 }).collect();
        let cuts: Vec<usize> = cut_points(len, &raw).into_iter().map(|c| c.min(len)).collect();
        let mut pieces: Vec<&[u8]> = Vec::new();
        let mut prev = 0;
        for &c in cuts.iter().chain(std::iter::once(&len)) {
            pieces.push(&data[prev..c]);
            prev = c;
        }
        let want = naive_sum(&data);
        for k in kernel::ALL {
            if kernel::available(k) {
                prop_assert_eq!(streamed_with(k, &pieces), Some(want), "{:?}", k);
            }
        }
        let mut s = OnesSum::new();
        for piece in &pieces {
            s.add_bytes(piece);
        }
        prop_assert_eq!(s.sum(), want);
        prop_assert_eq!(s.checksum(), !want);
        // The same data as segmented pieces in place (odd addresses too), any sub-range.
        let (x, y) = (range.0 % (len + 1), range.1 % (len + 1));
        let (off, end) = (x.min(y), x.max(y));
        let in_place = split(&mut buf[start..start + len], &cuts);
        prop_assert_eq!(ones_sum_segmented(&in_place, 0, len).unwrap(), want);
        prop_assert_eq!(
            ones_sum_segmented(&in_place, off, end - off).unwrap(),
            naive_sum(&data[off..end])
        );
    }

    #[test]
    fn nat_rewrites_equal_recompute(
        v6 in any::<bool>(),
        udp in any::<bool>(),
        offload in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        addrs in any::<[u8; 32]>(),
        new_addr in any::<[u8; 16]>(),
        ports in any::<[u16; 3]>(),
        which in any::<bool>(),
        raw_cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let proto = if udp { protocol::UDP } else { protocol::TCP };
        let mut l4 = vec![0u8; if udp { 8 } else { 20 }];
        l4[0..2].copy_from_slice(&ports[0].to_be_bytes());
        l4[2..4].copy_from_slice(&ports[1].to_be_bytes());
        if udp {
            l4[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        } else {
            l4[12] = 0x50;
        }
        l4.extend_from_slice(&payload);
        let mut pkt = if v6 {
            ipv6(proto, addrs[..16].try_into().unwrap(), addrs[16..].try_into().unwrap(), &l4)
        } else {
            ipv4(proto, addrs[..4].try_into().unwrap(), addrs[4..8].try_into().unwrap(), &l4)
        };
        let mut info = ChecksumInfo::NONE;
        if offload {
            info.set_is_ipv4(!v6);
            info.set_is_ipv6(v6);
            info.set_tcp_checksum(!udp);
            info.set_udp_checksum(udp);
        }
        fix(&mut pkt[..], info).unwrap();
        let end = if which { Endpoint::Source } else { Endpoint::Destination };
        let new: &[u8] = if v6 { &new_addr } else { &new_addr[..4] };

        let mut buf = pkt.clone();
        let cuts = cut_points(buf.len(), &raw_cuts);
        let mut pieces = split(&mut buf, &cuts);
        rewrite_address(&mut pieces, end, new, info).unwrap();
        let old_port = rewrite_port(&mut pieces, end, ports[2], info).unwrap();
        prop_assert_eq!(old_port, if which { ports[0] } else { ports[1] });
        let ttl = decrement_ttl(&mut pieces, info).unwrap();
        prop_assert_eq!(ttl, 63);
        let incremental = flatten(&pieces);

        let mut fresh = incremental.clone();
        fix(&mut fresh[..], info).unwrap();
        prop_assert_eq!(&incremental, &fresh);
        let v = verify(&incremental[..], info).unwrap();
        prop_assert!(v.ip == wfpsim_core::packet::Verdict::Valid || v6);
    }

    #[test]
    fn generic_field_updates_equal_recompute(
        hdr in any::<[u8; 20]>(),
        off in any::<usize>(),
        v16 in any::<u16>(),
        v32 in any::<u32>(),
        wide in any::<bool>(),
    ) {
        // An IPv4-like header: update a field anywhere (odd offsets straddle words), keeping
        // clear of the checksum field itself.
        let mut h = hdr;
        h[0] = 0x45;
        h[10..12].fill(0);
        let c = internet_checksum(&h, 0);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        let width = if wide { 4 } else { 2 };
        let allowed: Vec<usize> = (0..=20 - width).filter(|o| o + width <= 10 || *o >= 12).collect();
        let off = allowed[off % allowed.len()];
        let mut inc = h;
        if wide {
            update_field32(&mut inc[..], off, v32, 10, FieldKind::Checksum).unwrap();
        } else {
            update_field16(&mut inc[..], off, v16, 10, FieldKind::Checksum).unwrap();
        }
        let mut fresh = inc;
        fresh[10..12].fill(0);
        let c = internet_checksum(&fresh, 0);
        fresh[10..12].copy_from_slice(&c.to_be_bytes());
        prop_assert_eq!(ones_sum(&inc), 0xFFFF);
        prop_assert_eq!(inc, fresh);
    }

    #[test]
    fn never_panics_on_mangled_packets(
        base in 0usize..4,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in any::<usize>(),
        raw_cuts in proptest::collection::vec(any::<usize>(), 0..5),
        info in any::<u32>(),
    ) {
        let seeds = [
            ipv4(protocol::TCP, [1, 2, 3, 4], [5, 6, 7, 8], &[0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 2, 0xff, 0xff, 0, 0, 0, 0]),
            ipv4(protocol::UDP, [1, 2, 3, 4], [5, 6, 7, 8], b"\x30\x39\x00\x35\x00\x0d\x00\x00hello"),
            {
                let mut rest = vec![0x3c, 0, 1, 4, 0, 0, 0, 0, 0x2b, 2, 0, 1, 0, 0, 0, 0];
                rest.extend(v6(0x99));
                rest.extend([0x2c, 0, 0, 0, 0, 0, 0x12, 0x34, 0x11, 0, 0, 0, 0, 0, 0, 0]);
                rest.extend(b"\x30\x39\x00\x35\x00\x0d\x00\x00hello");
                ipv6(protocol::HOPOPT, V6_1, v6(2), &rest)
            },
            ipv6(protocol::AH, V6_1, v6(2), &[17, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0x30, 0x39, 0, 0x35, 0, 8, 0, 0]),
        ];
        let mut pkt = seeds[base].clone();
        for (at, v) in flips {
            let n = pkt.len();
            pkt[at % n] ^= v;
        }
        pkt.truncate(cut % (pkt.len() + 1));
        let info = ChecksumInfo::from_u32(info);
        let cuts = cut_points(pkt.len(), &raw_cuts);
        let mut pieces = split(&mut pkt, &cuts);
        let _ = parse(&pieces);
        let _ = verify(&pieces, info);
        let _ = fix(&mut pieces, info);
        let _ = rewrite_address(&mut pieces, Endpoint::Source, &[9; 4], info);
        let _ = rewrite_address(&mut pieces, Endpoint::Destination, &[9; 16], info);
        let _ = rewrite_port(&mut pieces, Endpoint::Destination, 1, info);
        let _ = decrement_ttl(&mut pieces, info);
        let _ = wfpsim_core::packet::complete_offload(&mut pieces, info);
        let _ = wfpsim_core::packet::pseudo_header_sum(&pieces, true);
    }

    #[test]
    fn nat_fast_path_equals_general_path(
        proto_pick in 0usize..4,
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        flips in proptest::collection::vec((0usize..48, any::<u8>()), 0..3),
        new in any::<[u8; 4]>(),
        port in any::<u16>(),
        which in any::<bool>(),
        info in any::<u32>(),
    ) {
        let proto = [protocol::TCP, protocol::UDP, protocol::ICMP, protocol::IGMP][proto_pick];
        let mut l4 = vec![0u8; 20];
        l4[12] = 0x50;
        l4.extend_from_slice(&payload);
        let mut pkt = ipv4(proto, [10, 0, 0, 1], [10, 0, 0, 2], &l4);
        fix(&mut pkt[..], ChecksumInfo::NONE).unwrap();
        for (at, v) in flips {
            let n = pkt.len();
            pkt[at % n] ^= v; // fragments, odd IHL, short Total Length, zero TTL, ...
        }
        let info = ChecksumInfo::from_u32(info);
        let end = if which { Endpoint::Source } else { Endpoint::Destination };
        // Contiguous: the fast path applies whenever it can. Split after one byte: never.
        let mut fast = pkt.clone();
        let mut slow_buf = pkt.clone();
        let mut slow = split(&mut slow_buf, &[1]);
        let a = rewrite_address(&mut fast[..], end, &new, info);
        let b = rewrite_address(&mut slow, end, &new, info);
        prop_assert_eq!(a.is_ok(), b.is_ok());
        let a = rewrite_port(&mut fast[..], end, port, info);
        let b = rewrite_port(&mut slow, end, port, info);
        prop_assert_eq!(a.as_ref().ok(), b.as_ref().ok());
        let a = decrement_ttl(&mut fast[..], info);
        let b = decrement_ttl(&mut slow, info);
        prop_assert_eq!(a.as_ref().ok(), b.as_ref().ok());
        prop_assert_eq!(fast, flatten(&slow));
    }
}
