//! Ethernet II frames with any stack of 802.1Q / 802.1ad / QinQ tags.

use super::field::{array_at, too_short, u16_at};
use crate::Result;

/// Destination MAC, source MAC, EtherType.
pub const HEADER_LEN: usize = 14;
/// Bytes one VLAN tag adds (TPID + TCI).
pub const TAG_LEN: usize = 4;

/// EtherType values the simulator needs.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    /// 802.1Q customer tag.
    pub const VLAN: u16 = 0x8100;
    pub const IPV6: u16 = 0x86DD;
    pub const MPLS_UNICAST: u16 = 0x8847;
    pub const MPLS_MULTICAST: u16 = 0x8848;
    pub const PPPOE_DISCOVERY: u16 = 0x8863;
    pub const PPPOE_SESSION: u16 = 0x8864;
    /// 802.1ad service tag.
    pub const QINQ: u16 = 0x88A8;
    /// Pre-standard QinQ service tag.
    pub const QINQ_LEGACY: u16 = 0x9100;

    /// Whether `tpid` introduces a VLAN tag.
    pub const fn is_vlan_tpid(tpid: u16) -> bool {
        matches!(tpid, VLAN | QINQ | QINQ_LEGACY)
    }
}

/// One decoded VLAN tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VlanTag {
    /// 0x8100, 0x88A8 or 0x9100.
    pub tpid: u16,
    /// Priority code point (3 bits).
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier (12 bits).
    pub vid: u16,
}

/// A checked Ethernet frame view; the tag stack is walked once by the constructor.
#[derive(Clone, Copy, Debug)]
pub struct EthernetFrame<T> {
    buffer: T,
    tags: usize,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Checks the 14-byte header and every VLAN tag; fails if any is cut short.
    pub fn new_checked(buffer: T) -> Result<Self> {
        Self::new_checked_at(buffer, 0)
    }

    /// As [`Self::new_checked`], reporting offsets relative to `at`.
    pub fn new_checked_at(buffer: T, at: usize) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(too_short("Ethernet header", HEADER_LEN, b.len(), at));
        }
        let mut tags = 0;
        while ethertype::is_vlan_tpid(u16_at(b, 12 + TAG_LEN * tags)) {
            let need = HEADER_LEN + TAG_LEN * (tags + 1);
            if b.len() < need {
                let off = 12 + TAG_LEN * tags;
                return Err(too_short(
                    "VLAN tag + EtherType",
                    need - off,
                    b.len() - off,
                    at + off,
                ));
            }
            tags += 1;
        }
        Ok(EthernetFrame { buffer, tags })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn dst_addr(&self) -> [u8; 6] {
        array_at(self.buffer.as_ref(), 0)
    }

    pub fn src_addr(&self) -> [u8; 6] {
        array_at(self.buffer.as_ref(), 6)
    }

    /// The EtherType after all VLAN tags (values below 0x0600 are 802.3 lengths).
    pub fn ethertype(&self) -> u16 {
        u16_at(self.buffer.as_ref(), 12 + TAG_LEN * self.tags)
    }

    /// The first TPID/EtherType field, before any tag is stripped.
    pub fn outer_ethertype(&self) -> u16 {
        u16_at(self.buffer.as_ref(), 12)
    }

    /// Number of stacked VLAN tags (0 for an untagged frame).
    pub fn vlan_count(&self) -> usize {
        self.tags
    }

    /// Tag `i`, outermost first.
    pub fn vlan(&self, i: usize) -> Option<VlanTag> {
        if i >= self.tags {
            return None;
        }
        let b = self.buffer.as_ref();
        let tci = u16_at(b, 14 + TAG_LEN * i);
        Some(VlanTag {
            tpid: u16_at(b, 12 + TAG_LEN * i),
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0FFF,
        })
    }

    /// Bytes before the payload: 14 plus 4 per tag.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + TAG_LEN * self.tags
    }

    /// What follows the last EtherType (padding and FCS included, if present).
    pub fn payload(&self) -> &[u8] {
        self.buffer
            .as_ref()
            .get(self.header_len()..)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qinq_stack_and_errors() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[
            0x88, 0xA8, 0x20, 0x05, 0x81, 0x00, 0x10, 0x64, 0x08, 0x00, 0x45,
        ]);
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(e.vlan_count(), 2);
        assert_eq!(e.ethertype(), ethertype::IPV4);
        assert_eq!(e.header_len(), 22);
        assert_eq!(e.payload(), &[0x45]);
        assert_eq!(
            e.vlan(0),
            Some(VlanTag {
                tpid: 0x88A8,
                pcp: 1,
                dei: false,
                vid: 5
            })
        );
        assert_eq!(e.vlan(1).map(|t| (t.dei, t.vid)), Some((true, 100)));
        assert_eq!(e.vlan(2), None);

        let err = EthernetFrame::new_checked_at(&f[..18], 0).unwrap_err();
        assert_eq!(
            err.message,
            "VLAN tag + EtherType length 6 > 2 bytes available at offset 16"
        );
        let err = EthernetFrame::new_checked(&f[..9]).unwrap_err();
        assert_eq!(
            err.message,
            "Ethernet header length 14 > 9 bytes available at offset 0"
        );
    }
}
