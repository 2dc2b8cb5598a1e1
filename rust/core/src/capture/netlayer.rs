//! Where the network layer starts in a frame.
//!
//! The replay engine injects at the IP layer, so for every record it needs "IPv4 or IPv6, and
//! at which byte". Link types wfpsim does not decode are still read and written back unchanged:
//! [`network_layer`] reports [`NetworkLayer::Unsupported`] for them instead of failing, and only
//! [`ip_layer`], which a caller uses when it *needs* an IP header, turns that into an error
//! naming the link type.

use super::linktype::LinkType;
use crate::error::{Error, ErrorKind};
use crate::status::STATUS_NOT_SUPPORTED;

/// IP version of a network-layer header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpVersion {
    V4,
    V6,
}

/// What the link layer says comes after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L3Protocol {
    Ipv4,
    Ipv6,
    /// A non-IP ethertype (ARP 0x0806, MPLS 0x8847, PPPoE 0x8864, ...), after VLAN tags; also
    /// the SLL/SLL2 protocol field, which holds an ethertype or a small ARPHRD-specific value.
    Ethertype(u16),
    /// A NULL/LOOP address family that is not IPv4 or IPv6.
    AddressFamily(u32),
    /// An 802.3 frame whose LLC header carries no SNAP ethertype.
    Llc,
    /// A raw-IP link type whose first nibble is neither 4 nor 6.
    IpVersionNibble(u8),
}

/// Where the network layer of one frame starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkLayer {
    /// The link header was decoded: the protocol after it starts at `offset`.
    Found { offset: usize, protocol: L3Protocol },
    /// The frame ends inside the link header (or a VLAN tag): `needed` bytes would be required.
    Truncated { needed: usize, have: usize },
    /// wfpsim does not decode this link type; the record is carried through untouched.
    Unsupported,
}

impl NetworkLayer {
    /// The IP version and header offset, when the network layer is IP.
    pub fn ip(&self) -> Option<(IpVersion, usize)> {
        match *self {
            NetworkLayer::Found {
                offset,
                protocol: L3Protocol::Ipv4,
            } => Some((IpVersion::V4, offset)),
            NetworkLayer::Found {
                offset,
                protocol: L3Protocol::Ipv6,
            } => Some((IpVersion::V6, offset)),
            _ => None,
        }
    }
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86DD;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88A8;
const ETH_QINQ_OLD: u16 = 0x9100;

fn be16(frame: &[u8], at: usize) -> Option<u16> {
    let b = frame.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

fn four(frame: &[u8], at: usize) -> Option<[u8; 4]> {
    frame.get(at..at.checked_add(4)?)?.try_into().ok()
}

/// Finds the network layer of `frame` captured with `link_type`. Never fails: unknown link
/// types give [`NetworkLayer::Unsupported`], short frames [`NetworkLayer::Truncated`].
pub fn network_layer(link_type: LinkType, frame: &[u8]) -> NetworkLayer {
    match link_type.code() {
        1 => ethernet(frame),
        12 | 14 | 101 => raw_ip(frame),
        228 => NetworkLayer::Found {
            offset: 0,
            protocol: L3Protocol::Ipv4,
        },
        229 => NetworkLayer::Found {
            offset: 0,
            protocol: L3Protocol::Ipv6,
        },
        0 => match four(frame, 0) {
            // Host byte order of the *capturing* machine, which the file does not record:
            // AF values are small, so a value with high bits set must be the other order.
            Some(b) => {
                let le = u32::from_le_bytes(b);
                let af = if le & 0xFFFF_0000 != 0 {
                    le.swap_bytes()
                } else {
                    le
                };
                address_family(af)
            }
            None => truncated(4, frame),
        },
        108 => match four(frame, 0) {
            Some(b) => address_family(u32::from_be_bytes(b)),
            None => truncated(4, frame),
        },
        113 => match be16(frame, 14) {
            Some(proto) => after_ethertype(frame, proto, 16),
            None => truncated(16, frame),
        },
        276 => match (be16(frame, 0), frame.len() >= 20) {
            (Some(proto), true) => after_ethertype(frame, proto, 20),
            _ => truncated(20, frame),
        },
        _ => NetworkLayer::Unsupported,
    }
}

/// Like [`network_layer`], for a caller that needs an IP header: anything else is an error that
/// names the link type (and the ethertype or address family when the frame is not IP).
pub fn ip_layer(link_type: LinkType, frame: &[u8]) -> crate::Result<(IpVersion, usize)> {
    match network_layer(link_type, frame) {
        found @ NetworkLayer::Found { protocol, .. } => match found.ip() {
            Some(ip) => Ok(ip),
            None => Err(Error::new(
                ErrorKind::Malformed,
                None,
                format!("link type {link_type}: frame carries {protocol:?}, not IPv4 or IPv6"),
            )),
        },
        NetworkLayer::Truncated { needed, have } => Err(Error::malformed(format!(
            "link type {link_type}: frame of {have} bytes ends inside the link header \
             ({needed} bytes needed)"
        ))),
        NetworkLayer::Unsupported => Err(Error::new(
            ErrorKind::Malformed,
            Some(STATUS_NOT_SUPPORTED),
            format!(
                "link type {link_type}: wfpsim does not decode this link layer, so it has no \
                 network layer to offer (the record itself reads and writes back unchanged)"
            ),
        )),
    }
}

fn truncated(needed: usize, frame: &[u8]) -> NetworkLayer {
    NetworkLayer::Truncated {
        needed,
        have: frame.len(),
    }
}

fn address_family(af: u32) -> NetworkLayer {
    let protocol = match af {
        2 => L3Protocol::Ipv4,
        // AF_INET6 differs per OS: Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30.
        10 | 24 | 28 | 30 => L3Protocol::Ipv6,
        other => L3Protocol::AddressFamily(other),
    };
    NetworkLayer::Found {
        offset: 4,
        protocol,
    }
}

fn raw_ip(frame: &[u8]) -> NetworkLayer {
    let protocol = match frame.first().map(|b| b >> 4) {
        Some(4) => L3Protocol::Ipv4,
        Some(6) => L3Protocol::Ipv6,
        Some(n) => L3Protocol::IpVersionNibble(n),
        None => return truncated(1, frame),
    };
    NetworkLayer::Found {
        offset: 0,
        protocol,
    }
}

fn ethernet(frame: &[u8]) -> NetworkLayer {
    match be16(frame, 12) {
        Some(et) if et >= 0x0600 => after_ethertype(frame, et, 14),
        Some(_) => llc(frame, 14),
        None => truncated(14, frame),
    }
}

/// 802.3 length field: an LLC header follows; with SNAP (AA AA 03, OUI 0) it names an ethertype.
fn llc(frame: &[u8], at: usize) -> NetworkLayer {
    let Some(hdr) = frame.get(at..at + 3) else {
        return truncated(at + 3, frame);
    };
    if hdr != [0xAA, 0xAA, 0x03] {
        return NetworkLayer::Found {
            offset: at,
            protocol: L3Protocol::Llc,
        };
    }
    match (frame.get(at + 3..at + 6), be16(frame, at + 6)) {
        (Some([0, 0, 0]), Some(et)) => after_ethertype(frame, et, at + 8),
        (Some(_), Some(_)) => NetworkLayer::Found {
            offset: at,
            protocol: L3Protocol::Llc,
        },
        _ => truncated(at + 8, frame),
    }
}

/// Walks 802.1Q / 802.1ad / old-QinQ tags (any depth) and classifies the final ethertype.
fn after_ethertype(frame: &[u8], mut ethertype: u16, mut offset: usize) -> NetworkLayer {
    while matches!(ethertype, ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD) {
        // A tag is 2 bytes of TCI followed by the next ethertype.
        match be16(frame, offset + 2) {
            Some(next) => ethertype = next,
            None => return truncated(offset + 4, frame),
        }
        offset += 4;
    }
    let protocol = match ethertype {
        ETH_IPV4 => L3Protocol::Ipv4,
        ETH_IPV6 => L3Protocol::Ipv6,
        other => L3Protocol::Ethertype(other),
    };
    NetworkLayer::Found { offset, protocol }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(ethertypes: &[u16]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for (i, et) in ethertypes.iter().enumerate() {
            f.extend_from_slice(&et.to_be_bytes());
            if i + 1 < ethertypes.len() {
                f.extend_from_slice(&[0x00, 0x05]); // TCI
            }
        }
        f.extend_from_slice(&[0x45, 0, 0, 20]);
        f
    }

    #[test]
    fn ethernet_with_tags() {
        let plain = eth(&[0x0800]);
        assert_eq!(
            network_layer(LinkType::EN10MB, &plain).ip(),
            Some((IpVersion::V4, 14))
        );
        let qinq = eth(&[0x88A8, 0x8100, 0x86DD]);
        assert_eq!(
            network_layer(LinkType::EN10MB, &qinq).ip(),
            Some((IpVersion::V6, 22))
        );
        let triple = eth(&[0x9100, 0x8100, 0x8100, 0x0800]);
        assert_eq!(
            network_layer(LinkType::EN10MB, &triple).ip(),
            Some((IpVersion::V4, 26))
        );
        let arp = eth(&[0x8100, 0x0806]);
        assert_eq!(
            network_layer(LinkType::EN10MB, &arp),
            NetworkLayer::Found {
                offset: 18,
                protocol: L3Protocol::Ethertype(0x0806)
            }
        );
        assert_eq!(
            network_layer(LinkType::EN10MB, &plain[..16]),
            NetworkLayer::Found {
                offset: 14,
                protocol: L3Protocol::Ipv4
            }
        );
        let cut = eth(&[0x8100, 0x0800]);
        assert_eq!(
            network_layer(LinkType::EN10MB, &cut[..15]),
            NetworkLayer::Truncated {
                needed: 18,
                have: 15
            }
        );
        assert!(ip_layer(LinkType::EN10MB, &arp).is_err());
    }

    #[test]
    fn llc_snap() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x00, 0x40, 0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00, 0x45]);
        assert_eq!(
            network_layer(LinkType::EN10MB, &f).ip(),
            Some((IpVersion::V4, 22))
        );
        f[14] = 0x42;
        assert_eq!(
            network_layer(LinkType::EN10MB, &f),
            NetworkLayer::Found {
                offset: 14,
                protocol: L3Protocol::Llc
            }
        );
    }

    #[test]
    fn loopbacks_and_raw() {
        for (af, v) in [
            (2u32, IpVersion::V4),
            (10, IpVersion::V6),
            (24, IpVersion::V6),
        ] {
            let le = af.to_le_bytes();
            let be = af.to_be_bytes();
            assert_eq!(network_layer(LinkType::NULL, &le).ip(), Some((v, 4)));
            assert_eq!(network_layer(LinkType::NULL, &be).ip(), Some((v, 4)));
            assert_eq!(network_layer(LinkType::LOOP, &be).ip(), Some((v, 4)));
        }
        assert_eq!(
            network_layer(LinkType::NULL, &7u32.to_le_bytes()),
            NetworkLayer::Found {
                offset: 4,
                protocol: L3Protocol::AddressFamily(7)
            }
        );
        for lt in [12, 14, 101] {
            assert_eq!(
                network_layer(LinkType(lt), &[0x60]).ip(),
                Some((IpVersion::V6, 0))
            );
        }
        assert_eq!(
            network_layer(LinkType::IPV4, &[]).ip(),
            Some((IpVersion::V4, 0))
        );
        assert_eq!(
            network_layer(LinkType::RAW, &[]),
            NetworkLayer::Truncated { needed: 1, have: 0 }
        );
    }

    #[test]
    fn cooked() {
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x86, 0xDD]);
        assert_eq!(
            network_layer(LinkType::LINUX_SLL, &sll).ip(),
            Some((IpVersion::V6, 16))
        );
        let mut sll2 = vec![0x08, 0x00];
        sll2.resize(20, 0);
        assert_eq!(
            network_layer(LinkType::LINUX_SLL2, &sll2).ip(),
            Some((IpVersion::V4, 20))
        );
        assert!(matches!(
            network_layer(LinkType::LINUX_SLL2, &sll2[..19]),
            NetworkLayer::Truncated { needed: 20, .. }
        ));
    }

    #[test]
    fn unknown_link_type_is_not_an_error_until_asked() {
        assert_eq!(
            network_layer(LinkType::USER0, &[1, 2, 3]),
            NetworkLayer::Unsupported
        );
        let err = ip_layer(LinkType(4242), &[1, 2, 3]).unwrap_err();
        assert!(err.message.contains("link type 4242"), "{err}");
        let err = ip_layer(LinkType::NFLOG, &[]).unwrap_err();
        assert!(err.message.contains("NFLOG (239)"), "{err}");
    }
}
