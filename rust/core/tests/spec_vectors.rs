//! Every test vector of `checksums.md §8`, through the public API, contiguous and split.

mod common;

use common::*;
use wfpsim_core::checksum::{
    fold, incremental, internet_checksum, ones_add, ones_sum, ones_sum_segmented, pseudo_header_v4,
    pseudo_header_v6, ChecksumInfo, OnesSum,
};
use wfpsim_core::packet::{
    decrement_ttl, fix, parse, rewrite_address, verify, Endpoint, FixAction, Verdict,
};
use wfpsim_core::wire::ip::protocol;

const V1_HDR: [u8; 20] = [
    0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01,
    0xc0, 0xa8, 0x00, 0xc7,
];
const UDP5: [u8; 13] = *b"\x30\x39\x00\x35\x00\x0d\x00\x00hello";
const TCP_SYN: [u8; 20] = [
    0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
];
const A1: [u8; 4] = [192, 168, 0, 1];
const A199: [u8; 4] = [192, 168, 0, 199];

fn field(p: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([p[at], p[at + 1]])
}

/// Runs `fix` on every two-cut split of `pkt` and checks each result equals `want`.
fn fix_all_splits(pkt: &[u8], info: ChecksumInfo, want: &[u8]) {
    for a in 0..=pkt.len() {
        for b in (a..=pkt.len()).step_by(7) {
            let mut buf = pkt.to_vec();
            let mut pieces = split(&mut buf, &[a, b]);
            fix(&mut pieces, info).unwrap();
            assert_eq!(flatten(&pieces), want, "cuts {a} {b}");
        }
    }
}

#[test]
fn v01_ipv4_header() {
    assert_eq!(internet_checksum(&V1_HDR, 0), 0xB861);
    let mut h = V1_HDR;
    h[10..12].copy_from_slice(&[0xb8, 0x61]);
    assert_eq!(ones_sum(&h), 0xFFFF);
}

#[test]
fn v02_rfc1071_example() {
    let b = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
    assert_eq!(ones_sum(&b), 0xDDF2);
    assert_eq!(internet_checksum(&b, 0), 0x220D);
}

#[test]
fn v03_odd_split() {
    let (p1, p2) = ([1u8, 2, 3], [4u8, 5]);
    assert_eq!(ones_sum(&p1), 0x0402);
    assert_eq!(ones_sum(&p2), 0x0405);
    let mut s = OnesSum::new();
    s.add_bytes(&p1);
    assert!(s.is_odd());
    s.add_bytes(&p2);
    assert_eq!(s.sum(), 0x0906);
    assert_eq!(ones_add(0x0402, 0x0504), 0x0906);
    let mut buf = [1u8, 2, 3, 4, 5];
    let pieces = split(&mut buf, &[3]);
    assert_eq!(ones_sum_segmented(&pieces, 0, 5).unwrap(), 0x0906);
}

#[test]
fn v04_rfc1624() {
    let hc = !ones_add(0xCD7A, 0x5555);
    assert_eq!(hc, 0xDD2F);
    assert_eq!(!ones_add(0xCD7A, 0x3285), 0x0000);
    assert_eq!(incremental::update16(hc, 0x5555, 0x3285), 0x0000);
}

#[test]
fn v05_udp_ipv4_and_seed() {
    let pkt = ipv4(protocol::UDP, A1, A199, &UDP5);
    let mut want = pkt.clone();
    want[26..28].copy_from_slice(&[0x09, 0x7B]);
    fix_all_splits(&pkt, ChecksumInfo::NONE, &want);
    assert_eq!(
        verify(&want[..], ChecksumInfo::NONE).unwrap().transport,
        Verdict::Valid
    );

    let mut tx = ChecksumInfo::NONE;
    tx.set_is_ipv4(true);
    tx.set_udp_checksum(true);
    let mut seeded = pkt.clone();
    seeded[26..28].copy_from_slice(&[0x82, 0x37]);
    fix_all_splits(&pkt, tx, &seeded);
    assert_eq!(pseudo_header_v4(&A1, &A199, 17, 13), 0x8237);
    assert_eq!(
        wfpsim_core::packet::pseudo_header_sum(&seeded[..], true).unwrap(),
        0x8237
    );
    // Transmit view: the seed is what the NIC expects; a full checksum would be wrong.
    assert_eq!(
        verify(&seeded[..], tx).unwrap().transport,
        Verdict::OffloadPartial
    );
    assert_eq!(verify(&want[..], tx).unwrap().transport, Verdict::Invalid);
    // Capture view: a seed is recognised as offload-partial.
    assert_eq!(
        verify(&seeded[..], ChecksumInfo::NONE).unwrap().transport,
        Verdict::OffloadPartial
    );
    // The NIC finishes it into the full checksum.
    let mut nic = seeded.clone();
    let r = wfpsim_core::packet::complete_offload(&mut nic[..], tx).unwrap();
    assert_eq!(r.transport, FixAction::Full(0x097B));
    assert_eq!(nic, want);
}

#[test]
fn v06_udp_ipv6() {
    let pkt = ipv6(protocol::UDP, V6_1, v6(2), &UDP5);
    let mut want = pkt.clone();
    want[46..48].copy_from_slice(&[0x30, 0x1F]);
    fix_all_splits(&pkt, ChecksumInfo::NONE, &want);
    assert_eq!(pseudo_header_v6(&V6_1, &v6(2), 17, 13), 0x5B93);
    let mut tx = ChecksumInfo::NONE;
    tx.set_is_ipv6(true);
    tx.set_udp_checksum(true);
    let mut buf = pkt.clone();
    assert_eq!(
        fix(&mut buf[..], tx).unwrap().transport,
        FixAction::Seed(0x5B93)
    );
}

#[test]
fn v07_icmpv4() {
    let msg = *b"\x08\x00\x00\x00\x12\x34\x00\x01abcd";
    assert_eq!(internet_checksum(&msg, 0), 0x2104);
    let pkt = ipv4(protocol::ICMP, [1, 2, 3, 4], [5, 6, 7, 8], &msg);
    let mut want = pkt.clone();
    want[22..24].copy_from_slice(&[0x21, 0x04]);
    fix_all_splits(&pkt, ChecksumInfo::NONE, &want);
}

#[test]
fn v08_icmpv6() {
    let msg = *b"\x80\x00\x00\x00\x12\x34\x00\x01abcd";
    let pkt = ipv6(protocol::ICMPV6, V6_1, v6(2), &msg);
    let mut want = pkt.clone();
    want[42..44].copy_from_slice(&[0x4D, 0x48]);
    fix_all_splits(&pkt, ChecksumInfo::NONE, &want);
    assert_eq!(
        verify(&want[..], ChecksumInfo::NONE).unwrap().transport,
        Verdict::Valid
    );
}

fn vector9() -> Vec<u8> {
    let mut rest = vec![
        0x3c, 0, 1, 4, 0, 0, 0, 0, 0x2b, 0, 1, 4, 0, 0, 0, 0, 0x2c, 2, 0, 1, 0, 0, 0, 0,
    ];
    rest.extend(v6(0x99));
    rest.extend([0x11, 0, 0, 0, 0, 0, 0x12, 0x34]);
    rest.extend([0x30, 0x39, 0, 0x35, 0, 0x0d, 0x2f, 0x88]);
    rest.extend(b"hello");
    let p = ipv6(protocol::HOPOPT, V6_1, v6(0x50), &rest);
    assert_eq!(&p[4..6], &[0, 0x3d]);
    p
}

#[test]
fn v09_ipv6_extension_chain() {
    let pkt = vector9();
    let s = parse(&pkt[..]).unwrap();
    assert_eq!(
        (s.transport_offset, s.transport_protocol, s.payload_len),
        (88, 17, 13)
    );
    assert!(!s.is_fragment, "an atomic fragment is a whole datagram");
    let v = verify(&pkt[..], ChecksumInfo::NONE).unwrap();
    assert_eq!((v.ip, v.transport), (Verdict::Absent, Verdict::Valid));
    let mut zeroed = pkt.clone();
    zeroed[94..96].fill(0);
    fix_all_splits(&zeroed, ChecksumInfo::NONE, &pkt);
    assert_eq!(field(&pkt, 94), 0x2F88);
}

#[test]
fn v10_tcp_ipv6_final_destination() {
    let mut rest = vec![protocol::TCP, 2, 0, 1, 0, 0, 0, 0];
    rest.extend(v6(0x99));
    rest.extend(TCP_SYN);
    let pkt = ipv6(protocol::IPV6_ROUTE, V6_1, v6(0x50), &rest);
    let mut buf = pkt.clone();
    assert_eq!(
        fix(&mut buf[..], ChecksumInfo::NONE).unwrap().transport,
        FixAction::Full(0xB745)
    );
    let wrong = internet_checksum(&TCP_SYN, pseudo_header_v6(&V6_1, &v6(0x50), 6, 20));
    assert_eq!(wrong, 0xB78E);
}

#[test]
fn v11_tcp_ipv4() {
    let pkt = ipv4(protocol::TCP, A1, A199, &TCP_SYN);
    let mut want = pkt.clone();
    want[36..38].copy_from_slice(&[0x91, 0x38]);
    fix_all_splits(&pkt, ChecksumInfo::NONE, &want);
}

#[test]
fn v12_nat_source() {
    let new = [10u8, 1, 2, 3];
    let mut h = V1_HDR;
    h[10..12].copy_from_slice(&[0xb8, 0x61]);
    assert_eq!(incremental::update_bytes(0xB861, &A1, &new, false), 0x6D07);

    let mut pkt = ipv4(protocol::UDP, A1, A199, &UDP5);
    fix(&mut pkt[..], ChecksumInfo::NONE).unwrap();
    let mut cuts = pkt.clone();
    let mut pieces = split(&mut cuts, &[13, 27]);
    rewrite_address(&mut pieces, Endpoint::Source, &new, ChecksumInfo::NONE).unwrap();
    let out = flatten(&pieces);
    assert_eq!(field(&out, 26), 0xBE20);
    let mut fresh = out.clone();
    fix(&mut fresh[..], ChecksumInfo::NONE).unwrap();
    assert_eq!(out, fresh, "incremental == recompute");

    let mut tx = ChecksumInfo::NONE;
    tx.set_is_ipv4(true);
    tx.set_udp_checksum(true);
    let mut seeded = ipv4(protocol::UDP, A1, A199, &UDP5);
    fix(&mut seeded[..], tx).unwrap();
    rewrite_address(&mut seeded[..], Endpoint::Source, &new, tx).unwrap();
    assert_eq!(field(&seeded, 26), 0xCD91);
}

#[test]
fn v13_udp_zero_result() {
    let pkt = ipv4(
        protocol::UDP,
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        &[0x03, 0xE8, 0x07, 0xD0, 0, 10, 0, 0, 0xE0, 0x1F],
    );
    let mut buf = pkt.clone();
    assert_eq!(
        fix(&mut buf[..], ChecksumInfo::NONE).unwrap().transport,
        FixAction::Full(0xFFFF)
    );
    assert_eq!(
        verify(&buf[..], ChecksumInfo::NONE).unwrap().transport,
        Verdict::Valid
    );
    // A stored 0 over IPv4 is "no checksum".
    assert_eq!(
        verify(&pkt[..], ChecksumInfo::NONE).unwrap().transport,
        Verdict::Absent
    );
}

#[test]
fn v14_ttl_decrement() {
    let mut h = V1_HDR;
    h[10..12].copy_from_slice(&[0xb8, 0x61]);
    assert_eq!(decrement_ttl(&mut h[..], ChecksumInfo::NONE).unwrap(), 0x3F);
    assert_eq!(field(&h, 10), 0xB961);
    assert_eq!(incremental::update16(0xB861, 0x4011, 0x3F11), 0xB961);
}

#[test]
fn v15_ah_walk() {
    let mut rest = vec![0x11, 0x04, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
    rest.extend([0xAA; 12]);
    rest.extend(UDP5);
    let mut pkt = ipv6(protocol::AH, V6_1, v6(2), &rest);
    let s = parse(&pkt[..]).unwrap();
    assert_eq!(
        (
            s.transport_offset,
            s.transport_protocol,
            s.network_header_len
        ),
        (64, 17, 64)
    );
    fix(&mut pkt[..], ChecksumInfo::NONE).unwrap();
    assert_eq!(
        verify(&pkt[..], ChecksumInfo::NONE).unwrap().transport,
        Verdict::Valid
    );
}

#[test]
fn v16_checksum_info() {
    assert_eq!(
        ChecksumInfo::from_value(0x0022_0015).tcp_header_offset(),
        34
    );
    let tx = ChecksumInfo::from_value(0x0022_0015);
    assert!(tx.is_ipv4() && tx.tcp_checksum() && tx.ip_header_checksum() && !tx.udp_checksum());
    let v6 = ChecksumInfo::from_value(0x0A);
    assert!(v6.is_ipv6() && v6.udp_checksum());
    let rx = ChecksumInfo::from_value(0x28);
    assert!(
        rx.tcp_checksum_succeeded() && rx.ip_checksum_succeeded() && !rx.udp_checksum_succeeded()
    );
    assert_eq!(fold(0x1_0000), 1);
}
