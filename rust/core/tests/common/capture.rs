//! Test helpers for the capture corpus: records through the real capture reader, and the link
//! layers and tunnels the corpus uses, decoded down to the (inner) IP header.
#![allow(dead_code)]

use wfpsim_core::capture::CaptureReader;
use wfpsim_core::wire::ethernet::ethertype;
use wfpsim_core::wire::EthernetFrame;

pub struct Record {
    pub linktype: u32,
    pub data: Vec<u8>,
    pub orig_len: u32,
}

fn u16_of(b: &[u8], at: usize, le: bool) -> Option<u16> {
    let x: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(if le {
        u16::from_le_bytes(x)
    } else {
        u16::from_be_bytes(x)
    })
}

fn u32_of(b: &[u8], at: usize, le: bool) -> Option<u32> {
    let x: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if le {
        u32::from_le_bytes(x)
    } else {
        u32::from_be_bytes(x)
    })
}

/// All records of a pcap or pcapng file, through the real capture reader (a damaged tail ends
/// the list, as the corpus expects).
pub fn read_capture(file: &[u8]) -> Result<Vec<Record>, String> {
    let mut reader = CaptureReader::from_reader(file).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Ok(Some(batch)) = reader.next_batch(4096, 4 << 20) {
        for (desc, data) in batch.iter() {
            out.push(Record {
                linktype: desc.link_type.0 & 0xFFFF,
                data: data.to_vec(),
                orig_len: desc.orig_len,
            });
        }
    }
    Ok(out)
}

/// Where the IP header starts and which version the link layer announces (0: read the nibble).
pub type IpStart = (usize, u8);

/// Decodes the link layer of a record down to the IP header; `None` for non-IP frames and link
/// types this test does not handle.
pub fn ip_start(linktype: u32, d: &[u8]) -> Option<IpStart> {
    match linktype {
        1 => ethernet(d, 0),
        12 | 14 | 101 => Some((0, 0)),
        228 => Some((0, 4)),
        229 => Some((0, 6)),
        0 => {
            let le = u32_of(d, 0, true)?;
            let be = u32_of(d, 0, false)?;
            af(le).or(af(be)).map(|v| (4, v))
        }
        108 => af(u32_of(d, 0, false)?).map(|v| (4, v)),
        113 => by_ethertype(d, 16, u16_of(d, 14, false)?),
        276 => by_ethertype(d, 20, u16_of(d, 0, false)?),
        104 => by_ethertype(d, 4, u16_of(d, 2, false)?),
        9 | 50 => ppp(d, 0),
        204 => ppp(d, 1),
        239 => nflog(d),
        _ => None,
    }
}

fn af(v: u32) -> Option<u8> {
    match v {
        2 => Some(4),
        10 | 24 | 28 | 30 => Some(6),
        _ => None,
    }
}

/// An Ethernet frame at `at` of `d`: VLAN tags via the crate's view, then PPPoE, MPLS and
/// LLC/SNAP by hand.
pub fn ethernet(d: &[u8], at: usize) -> Option<IpStart> {
    let e = EthernetFrame::new_checked_at(d.get(at..)?, at).ok()?;
    let hl = at + e.header_len();
    let et = e.ethertype();
    if et < 0x0600 {
        // 802.3 length: LLC/SNAP with an EtherType.
        return match d.get(hl..hl + 3)? {
            [0xAA, 0xAA, 0x03] => by_ethertype(d, hl + 8, u16_of(d, hl + 6, false)?),
            _ => None,
        };
    }
    by_ethertype(d, hl, et)
}

fn by_ethertype(d: &[u8], at: usize, et: u16) -> Option<IpStart> {
    match et {
        ethertype::IPV4 => Some((at, 4)),
        ethertype::IPV6 => Some((at, 6)),
        ethertype::PPPOE_SESSION => ppp_proto(at + 8, u16_of(d, at + 6, false)?),
        ethertype::MPLS_UNICAST | ethertype::MPLS_MULTICAST => {
            let mut p = at;
            loop {
                let bos = d.get(p + 2)? & 1 != 0;
                p += 4;
                if bos {
                    return Some((p, 0));
                }
            }
        }
        _ => None,
    }
}

fn ppp(d: &[u8], at: usize) -> Option<IpStart> {
    if d.get(at..at + 2)? == [0xFF, 0x03] {
        ppp_proto(at + 4, u16_of(d, at + 2, false)?)
    } else {
        ppp_proto(at + 2, u16_of(d, at, false)?)
    }
}

fn ppp_proto(at: usize, proto: u16) -> Option<IpStart> {
    match proto {
        0x0021 => Some((at, 4)),
        0x0057 => Some((at, 6)),
        _ => None,
    }
}

/// NFLOG: 4-byte header, then TLVs (host-order length and type); type 9 is the payload.
fn nflog(d: &[u8]) -> Option<IpStart> {
    let family = *d.first()?;
    let mut at = 4;
    while at + 4 <= d.len() {
        let len = usize::from(u16_of(d, at, true)?);
        let kind = u16_of(d, at + 2, true)?;
        if len < 4 {
            return None;
        }
        if kind == 9 {
            return af(u32::from(family)).map(|v| (at + 4, v));
        }
        at += (len + 3) & !3;
    }
    None
}

/// Whether the UDP datagram at `l4` is Teredo with an authentication header (RFC 4380
/// §5.1.1), which the MANIFEST's decoder does not skip: it records no inner verdicts there.
pub fn teredo_with_auth(d: &[u8], proto: u8, l4: usize) -> bool {
    let teredo =
        proto == 17 && [u16_of(d, l4, false), u16_of(d, l4 + 2, false)].contains(&Some(3544));
    teredo && d.get(l4 + 8..l4 + 10) == Some(&[0, 1][..])
}

/// The inner IP header of a tunnel whose outer transport is `proto` at `l4`.
pub fn tunnel_inner(d: &[u8], proto: u8, l4: usize) -> Option<IpStart> {
    match proto {
        4 => Some((l4, 4)),
        41 => Some((l4, 6)),
        47 => {
            let flags = u16_of(d, l4, false)?;
            if flags & 7 != 0 {
                return None; // enhanced GRE (PPTP) carries PPP
            }
            let len = 4 + 4 * [0x8000u16, 0x2000, 0x1000]
                .iter()
                .filter(|&&b| flags & b != 0)
                .count();
            by_ethertype(d, l4 + len, u16_of(d, l4 + 2, false)?)
        }
        17 => {
            let ports = [u16_of(d, l4, false)?, u16_of(d, l4 + 2, false)?];
            let u = l4 + 8;
            if ports.contains(&4789) {
                ethernet(d, u + 8)
            } else if ports.contains(&6081) {
                let opt = usize::from(d.get(u)? & 0x3F) * 4;
                match u16_of(d, u + 2, false)? {
                    0x6558 => ethernet(d, u + 8 + opt),
                    et => by_ethertype(d, u + 8 + opt, et),
                }
            } else if ports.contains(&3544) {
                let mut p = u;
                loop {
                    match d.get(p..p + 2)? {
                        [0, 1] => {
                            p += 13 + usize::from(*d.get(p + 2)?) + usize::from(*d.get(p + 3)?)
                        }
                        [0, 0] => p += 8,
                        _ => break,
                    }
                }
                (d.get(p)? >> 4 == 6).then_some((p, 6))
            } else {
                None
            }
        }
        _ => None,
    }
}
