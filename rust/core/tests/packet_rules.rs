//! The verdict, fix and rewrite rules of `checksums.md` and the capture MANIFEST, one case at a
//! time, on hand-built packets (so they run without the shared capture corpus).

mod common;

use common::*;
use wfpsim_core::checksum::{internet_checksum, pseudo_header_v6, ChecksumInfo};
use wfpsim_core::packet::{
    complete_offload, fix, parse, rewrite_address, rewrite_port, verify, verify_at, Endpoint,
    FixAction, Verdict, VerifyOptions,
};
use wfpsim_core::wire::ip::protocol;
use wfpsim_core::ErrorKind;

const UDP5: [u8; 13] = *b"\x30\x39\x00\x35\x00\x0d\x00\x00hello";
const NONE: ChecksumInfo = ChecksumInfo::NONE;

fn field(p: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([p[at], p[at + 1]])
}

fn tcp_segment(payload: &[u8]) -> Vec<u8> {
    let mut t = vec![
        0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
    ];
    t.extend_from_slice(payload);
    t
}

fn set_frag(p: &mut [u8], mf: bool, offset_units: u16) {
    let v = (u16::from(mf) << 13) | offset_units;
    p[6..8].copy_from_slice(&v.to_be_bytes());
    p[10..12].fill(0);
    let c = internet_checksum(&p[..20], 0);
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn ipv4_fragments_are_never_transport_checked_or_written() {
    // First fragment: L4 header present, checksum covers bytes that are elsewhere.
    let mut first = ipv4(protocol::UDP, [1, 1, 1, 1], [2, 2, 2, 2], &UDP5);
    set_frag(&mut first, true, 0);
    let v = verify(&first[..], NONE).unwrap();
    assert_eq!((v.ip, v.transport), (Verdict::Valid, Verdict::NotCheckable));
    assert!(v.summary.is_fragment && v.summary.first_fragment && v.summary.more_fragments);
    assert_eq!(v.summary.transport_offset, 20);
    let before = first.clone();
    let r = fix(&mut first[..], NONE).unwrap();
    assert_eq!(r.transport, FixAction::Untouched);
    assert_eq!(first, before);

    // Non-first fragment: the bytes after the header are data, even if they look like UDP.
    let mut later = ipv4(protocol::UDP, [1, 1, 1, 1], [2, 2, 2, 2], &UDP5);
    set_frag(&mut later, false, 185);
    let v = verify(&later[..], NONE).unwrap();
    assert_eq!(v.transport, Verdict::NotCheckable);
    assert!(v.summary.non_first_fragment() && !v.summary.has_transport());
    assert_eq!(v.summary.fragment_offset, 185 * 8);
    let mut pieces_buf = later.clone();
    let mut pieces = split(&mut pieces_buf, &[21]);
    fix(&mut pieces, NONE).unwrap();
    assert_eq!(flatten(&pieces), later);
    assert!(rewrite_port(&mut later[..], Endpoint::Source, 1, NONE).is_err());
    // Address rewrite repairs the IP header only.
    rewrite_address(&mut later[..], Endpoint::Source, &[9, 9, 9, 9], NONE).unwrap();
    assert_eq!(verify(&later[..], NONE).unwrap().ip, Verdict::Valid);
    assert_eq!(&later[20..], &UDP5);
}

#[test]
fn ipv6_fragment_header_rules() {
    let mut udp = UDP5;
    udp[6..8].fill(0);
    let frag = |offset_units: u16, m: bool| {
        let mut rest = vec![protocol::UDP, 0];
        rest.extend(((offset_units << 3) | u16::from(m)).to_be_bytes());
        rest.extend([0, 0, 0, 42]);
        rest.extend(udp);
        ipv6(protocol::IPV6_FRAG, V6_1, v6(2), &rest)
    };
    let mut atomic = frag(0, false);
    assert_eq!(
        fix(&mut atomic[..], NONE).unwrap().transport,
        FixAction::Full(0x301F)
    );
    assert!(!parse(&atomic[..]).unwrap().is_fragment);

    let s = parse(&frag(0, true)[..]).unwrap();
    assert!(s.first_fragment && s.more_fragments && s.fragment_id == 42);
    assert_eq!(
        verify(&frag(0, true)[..], NONE).unwrap().transport,
        Verdict::NotCheckable
    );

    let later = frag(3, false);
    let s = parse(&later[..]).unwrap();
    assert!(s.non_first_fragment() && s.transport_offset == 0 && s.fragment_offset == 24);
    let mut copy = later.clone();
    assert_eq!(
        fix(&mut copy[..], NONE).unwrap().transport,
        FixAction::Untouched
    );
    assert_eq!(copy, later);
}

#[test]
fn esp_truncation_and_unusable_lengths() {
    let esp4 = ipv4(protocol::ESP, [1, 1, 1, 1], [2, 2, 2, 2], &[0; 24]);
    let v = verify(&esp4[..], NONE).unwrap();
    assert_eq!(
        (v.ip, v.transport, v.summary.transport_protocol),
        (Verdict::Valid, Verdict::NotCheckable, 50)
    );
    let esp6 = ipv6(protocol::ESP, V6_1, v6(2), &[0; 24]);
    assert_eq!(
        verify(&esp6[..], NONE).unwrap().transport,
        Verdict::NotCheckable
    );

    // Cut capture: header checkable, datagram not.
    let mut full = ipv4(protocol::UDP, [1, 1, 1, 1], [2, 2, 2, 2], &UDP5);
    fix(&mut full[..], NONE).unwrap();
    let v = verify(&full[..25], NONE).unwrap();
    assert_eq!((v.ip, v.transport), (Verdict::Valid, Verdict::NotCheckable));
    assert!(v.summary.truncated);

    // IHL says 60 bytes but only 24 are here: the header checksum cannot be checked.
    let mut long_hdr = full.clone();
    long_hdr[0] = 0x4F;
    assert_eq!(
        verify(&long_hdr[..24], NONE).unwrap().ip,
        Verdict::NotCheckable
    );

    // TSO capture: Total Length 0. Header verdict as usual; the transport is not checked.
    let mut tso = full.clone();
    tso[2..4].fill(0);
    let v = verify(&tso[..], NONE).unwrap();
    assert_eq!(
        (v.ip, v.transport, v.summary.payload_len),
        (Verdict::Invalid, Verdict::NotCheckable, 0)
    );

    // Ethernet padding after the datagram is ignored.
    let mut padded = full.clone();
    padded.extend([0xEE; 9]);
    assert_eq!(verify(&padded[..], NONE).unwrap().transport, Verdict::Valid);

    // IPv6 Payload Length 0 without a Jumbo Payload option: length unknown.
    let mut p6 = ipv6(protocol::UDP, V6_1, v6(2), &UDP5);
    p6[4..6].fill(0);
    assert_eq!(
        verify(&p6[..], NONE).unwrap().transport,
        Verdict::NotCheckable
    );
}

#[test]
fn udp_zero_checksum_rules() {
    let p4 = ipv4(protocol::UDP, [1, 1, 1, 1], [2, 2, 2, 2], &UDP5);
    assert_eq!(verify(&p4[..], NONE).unwrap().transport, Verdict::Absent);
    let p6 = ipv6(protocol::UDP, V6_1, v6(2), &UDP5);
    assert_eq!(verify(&p6[..], NONE).unwrap().transport, Verdict::Invalid);
    let opts = VerifyOptions {
        udp6_zero_checksum_ports: &[53],
    };
    assert_eq!(
        verify_at(&p6[..], 0, NONE, &opts).unwrap().transport,
        Verdict::Absent
    );
    // NAT keeps "no checksum".
    let mut q = p4.clone();
    rewrite_address(&mut q[..], Endpoint::Destination, &[3, 3, 3, 3], NONE).unwrap();
    rewrite_port(&mut q[..], Endpoint::Destination, 5353, NONE).unwrap();
    assert_eq!(field(&q, 26), 0);
    assert_eq!(verify(&q[..], NONE).unwrap().ip, Verdict::Valid);
}

#[test]
fn home_address_option_is_the_pseudo_source() {
    let home = [0xFD; 16];
    let mut rest = vec![protocol::UDP, 2, 1, 2, 0, 0, 0xC9, 16];
    rest.extend(home);
    rest.extend(UDP5);
    let mut p = ipv6(protocol::IPV6_OPTS, V6_1, v6(2), &rest);
    fix(&mut p[..], NONE).unwrap();
    let want = {
        let mut u = UDP5;
        let c = internet_checksum(&u, pseudo_header_v6(&home, &v6(2), 17, 13));
        u[6..8].copy_from_slice(&c.to_be_bytes());
        field(&u, 6)
    };
    assert_eq!(field(&p, 70), want);
    assert_eq!(verify(&p[..], NONE).unwrap().transport, Verdict::Valid);
    // Rewriting the IPv6 source (a care-of address here) does not touch the L4 checksum.
    let before = field(&p, 70);
    rewrite_address(&mut p[..], Endpoint::Source, &[7; 16], NONE).unwrap();
    assert_eq!(field(&p, 70), before);
    assert_eq!(verify(&p[..], NONE).unwrap().transport, Verdict::Valid);
}

#[test]
fn segment_routing_header_final_segment() {
    // SRH: type 4, Segments Left 1, Last Entry 1, two segments; list[0] is the final one.
    let mut rest = vec![protocol::UDP, 4, 4, 1, 1, 0, 0, 0];
    rest.extend(v6(0x77));
    rest.extend(v6(0x50));
    rest.extend(UDP5);
    let mut p = ipv6(protocol::IPV6_ROUTE, V6_1, v6(0x50), &rest);
    fix(&mut p[..], NONE).unwrap();
    let mut u = UDP5;
    let c = internet_checksum(&u, pseudo_header_v6(&V6_1, &v6(0x77), 17, 13));
    u[6..8].copy_from_slice(&c.to_be_bytes());
    assert_eq!(&p[80..], &u);
    // NAT on the first-hop DA leaves the L4 checksum alone; on the source it repairs it.
    rewrite_address(&mut p[..], Endpoint::Destination, &[1; 16], NONE).unwrap();
    rewrite_address(&mut p[..], Endpoint::Source, &[2; 16], NONE).unwrap();
    let mut fresh = p.clone();
    fix(&mut fresh[..], NONE).unwrap();
    assert_eq!(p, fresh);
}

#[test]
fn jumbogram_uses_the_jumbo_length() {
    // 70 000-byte TCP segment: beyond 16-bit lengths, and checksummed over pieces.
    let seg = tcp_segment(&vec![0xA5; 70_000 - 20]);
    let mut rest = vec![protocol::TCP, 0, 0xC2, 4];
    rest.extend(((8 + seg.len()) as u32).to_be_bytes());
    rest.extend(&seg);
    let mut p = ipv6(protocol::HOPOPT, V6_1, v6(2), &rest);
    p[4..6].fill(0);
    let mut pieces_buf = p.clone();
    let mut pieces = split(&mut pieces_buf, &[41, 1001, 40_001]);
    let r = fix(&mut pieces, NONE).unwrap();
    assert_eq!(r.summary.payload_len, 70_000);
    let want = internet_checksum(&seg, pseudo_header_v6(&V6_1, &v6(2), 6, 70_000));
    assert_eq!(r.transport, FixAction::Full(want));
    assert_eq!(verify(&pieces, NONE).unwrap().transport, Verdict::Valid);
}

#[test]
fn offload_flows() {
    let mut tx = ChecksumInfo::NONE;
    tx.set_is_ipv4(true);
    tx.set_tcp_checksum(true);
    tx.set_ip_header_checksum(true);
    tx.set_tcp_header_offset(34).unwrap();
    let mut p = ipv4(
        protocol::TCP,
        [192, 168, 0, 1],
        [192, 168, 0, 199],
        &tcp_segment(b"data"),
    );
    let r = fix(&mut p[..], tx).unwrap();
    assert_eq!(r.ip, FixAction::Cleared);
    assert!(matches!(r.transport, FixAction::Seed(_)));
    assert_eq!(field(&p, 10), 0);
    let v = verify(&p[..], tx).unwrap();
    assert_eq!(
        (v.ip, v.transport),
        (Verdict::OffloadPartial, Verdict::OffloadPartial)
    );
    // A capture of this packet (no NBL info): header zero is Invalid, seed is OffloadPartial.
    let v = verify(&p[..], NONE).unwrap();
    assert_eq!(
        (v.ip, v.transport),
        (Verdict::Invalid, Verdict::OffloadPartial)
    );
    // NAT while offloaded: the seed follows the address, the port change leaves it alone.
    rewrite_address(&mut p[..], Endpoint::Source, &[10, 1, 2, 3], tx).unwrap();
    rewrite_port(&mut p[..], Endpoint::Source, 1234, tx).unwrap();
    let mut reseeded = p.clone();
    fix(&mut reseeded[..], tx).unwrap();
    assert_eq!(p, reseeded);
    // The NIC completes both.
    complete_offload(&mut p[..], tx).unwrap();
    let v = verify(&p[..], NONE).unwrap();
    assert_eq!((v.ip, v.transport), (Verdict::Valid, Verdict::Valid));
    // A full checksum where the stack promised a seed would be corrupted by the NIC.
    assert_eq!(verify(&p[..], tx).unwrap().transport, Verdict::Invalid);
    // Neither IsIPv4 nor IsIPv6: the miniport does nothing.
    let mut q = p.clone();
    q[10..12].fill(0);
    let r = complete_offload(&mut q[..], ChecksumInfo::from_u32(0x14)).unwrap();
    assert_eq!(
        (r.ip, r.transport),
        (FixAction::Untouched, FixAction::Untouched)
    );
}

#[test]
fn icmpv4_address_rewrite_leaves_icmp_checksum() {
    let msg = *b"\x08\x00\x21\x04\x12\x34\x00\x01abcd";
    let mut p = ipv4(protocol::ICMP, [1, 2, 3, 4], [5, 6, 7, 8], &msg);
    rewrite_address(&mut p[..], Endpoint::Destination, &[8, 8, 8, 8], NONE).unwrap();
    let v = verify(&p[..], NONE).unwrap();
    assert_eq!((v.ip, v.transport), (Verdict::Valid, Verdict::Valid));
    assert_eq!(&p[20..], &msg);
    assert!(rewrite_port(&mut p[..], Endpoint::Source, 1, NONE).is_err());
}

#[test]
fn malformed_headers_are_errors_naming_offsets() {
    let p = ipv4(protocol::UDP, [1, 1, 1, 1], [2, 2, 2, 2], &UDP5);
    let mut frame = vec![0u8; 14];
    frame.extend_from_slice(&p[..14]);
    let e = verify_at(&frame[..], 14, NONE, &VerifyOptions::default()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Malformed);
    assert_eq!(
        e.message,
        "IPv4 header length 20 > 14 bytes available at offset 14"
    );

    let mut bad = p.clone();
    bad[0] = 0x43;
    assert_eq!(
        verify(&bad[..], NONE).unwrap_err().message,
        "IPv4 IHL 3 < 5 at offset 0"
    );
    bad[0] = 0x55;
    assert!(verify(&bad[..], NONE)
        .unwrap_err()
        .message
        .contains("neither 4 nor 6 at offset 0"));
    assert!(verify(&[][..], NONE).is_err());

    let v6p = ipv6(protocol::UDP, V6_1, v6(2), &UDP5);
    let e = verify(&v6p[..39], NONE).unwrap_err();
    assert_eq!(
        e.message,
        "IPv6 header length 40 > 39 bytes available at offset 0"
    );
    let mut hbh_late = ipv6(
        protocol::IPV6_OPTS,
        V6_1,
        v6(2),
        &[0, 0, 1, 4, 0, 0, 0, 0, 59, 0, 1, 4, 0, 0, 0, 0],
    );
    assert!(verify(&hbh_late[..], NONE)
        .unwrap_err()
        .message
        .contains("hop-by-hop header at offset 48"));
    assert!(fix(&mut hbh_late[..], NONE).is_err());
    assert!(rewrite_address(&mut hbh_late[..], Endpoint::Source, &[0; 4], NONE).is_err());
}
