//! Packet builders and piece splitting shared by the integration tests.
#![allow(dead_code)]

pub mod capture;
pub mod json;

use wfpsim_core::bytes::Pieces;
use wfpsim_core::checksum::internet_checksum;

pub const V6_1: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
];

pub fn v6(last: u8) -> [u8; 16] {
    let mut a = V6_1;
    a[15] = last;
    a
}

/// IPv4 header (IHL 5, DF, TTL 64) + payload, header checksum filled.
pub fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend(total.to_be_bytes());
    p.extend([0, 0, 0x40, 0, 64, proto, 0, 0]);
    p.extend(src);
    p.extend(dst);
    let c = internet_checksum(&p, 0);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// IPv6 header + `rest` (extension headers and upper layer); Payload Length = `rest.len()`.
pub fn ipv6(next: u8, src: [u8; 16], dst: [u8; 16], rest: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend((rest.len() as u16).to_be_bytes());
    p.extend([next, 64]);
    p.extend(src);
    p.extend(dst);
    p.extend_from_slice(rest);
    p
}

/// Splits `buf` at the given (sorted, in-range) cut points into borrowed pieces.
pub fn split<'a>(mut buf: &'a mut [u8], cuts: &[usize]) -> Pieces<'a> {
    let mut pieces = Vec::new();
    let mut at = 0;
    for &c in cuts {
        let c = c.clamp(at, at + buf.len());
        let (head, tail) = buf.split_at_mut(c - at);
        pieces.push(head);
        buf = tail;
        at = c;
    }
    pieces.push(buf);
    Pieces::new(pieces)
}

/// Byte-wise copy out of a segmented packet (test-only; the library never does this).
pub fn flatten<S: wfpsim_core::bytes::Segmented + ?Sized>(s: &S) -> Vec<u8> {
    let mut out = vec![0; s.total_len()];
    s.read_at(0, &mut out);
    out
}
