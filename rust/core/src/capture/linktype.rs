//! Link-layer types: the `LINKTYPE_*` registry values, kept as the full 32-bit pcap field so
//! that FCS information and unknown link types survive a read/write round trip.

use std::fmt;

/// The 32-bit link-type field of a pcap header, as stored.
///
/// Bits 0..=15 are the `LINKTYPE_*` value; bit 26 ("P") says the frames end in an FCS whose
/// length, in 16-bit units, is in bits 28..=31. The whole field is kept so that a capture is
/// written back exactly as read. pcapng carries the same FCS fact in the `if_fcslen` option;
/// the reader folds it into these bits so both formats describe records alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(transparent)]
pub struct LinkType(pub u32);

const FCS_PRESENT: u32 = 1 << 26;

impl LinkType {
    /// BSD loopback: 4-byte address family in the capturing host's byte order.
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet (any speed); the name is historical.
    pub const EN10MB: LinkType = LinkType(1);
    pub const PPP: LinkType = LinkType(9);
    /// Raw IP as written by some BSDs (DLT_RAW was 12 on most, 14 on OpenBSD).
    pub const RAW_BSD: LinkType = LinkType(12);
    pub const RAW_OPENBSD: LinkType = LinkType(14);
    pub const PPP_HDLC: LinkType = LinkType(50);
    pub const PPP_ETHER: LinkType = LinkType(51);
    /// Raw IPv4 or IPv6, version from the first nibble.
    pub const RAW: LinkType = LinkType(101);
    pub const C_HDLC: LinkType = LinkType(104);
    pub const IEEE802_11: LinkType = LinkType(105);
    /// OpenBSD loopback: like NULL but the address family is in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux "cooked" capture, 16-byte header.
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IEEE802_11_RADIOTAP: LinkType = LinkType(127);
    pub const USER0: LinkType = LinkType(147);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const NFLOG: LinkType = LinkType(239);
    /// Linux "cooked" capture v2, 20-byte header.
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// The `LINKTYPE_*` value without the FCS bits.
    pub const fn code(self) -> u16 {
        (self.0 & 0xFFFF) as u16
    }

    /// Length in bytes of the FCS at the end of every frame, when the field says there is one.
    pub const fn fcs_len(self) -> Option<u8> {
        if self.0 & FCS_PRESENT != 0 {
            Some(((self.0 >> 28) as u8) * 2)
        } else {
            None
        }
    }

    /// This link type with an FCS of `bytes` bytes (even, at most 30), or with none.
    pub const fn with_fcs_len(self, bytes: Option<u8>) -> LinkType {
        let base = self.0 & !(FCS_PRESENT | 0xF000_0000);
        match bytes {
            Some(b) => LinkType(base | FCS_PRESENT | (((b as u32 / 2) & 0xF) << 28)),
            None => LinkType(base),
        }
    }

    /// The registry name (`"EN10MB"`), for messages; `None` for values wfpsim does not know.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.code() {
            0 => "NULL",
            1 => "EN10MB",
            9 => "PPP",
            12 | 14 | 101 => "RAW",
            50 => "PPP_HDLC",
            51 => "PPP_ETHER",
            104 => "C_HDLC",
            105 => "IEEE802_11",
            108 => "LOOP",
            113 => "LINUX_SLL",
            127 => "IEEE802_11_RADIOTAP",
            147 => "USER0",
            228 => "IPV4",
            229 => "IPV6",
            239 => "NFLOG",
            276 => "LINUX_SLL2",
            _ => return None,
        })
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} ({})", self.code())?,
            None => write!(f, "{}", self.code())?,
        }
        if let Some(fcs) = self.fcs_len() {
            write!(f, " with {fcs}-byte FCS")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fcs_bits() {
        let lt = LinkType::EN10MB.with_fcs_len(Some(4));
        assert_eq!(lt.0, 0x2400_0001);
        assert_eq!(lt.code(), 1);
        assert_eq!(lt.fcs_len(), Some(4));
        assert_eq!(lt.with_fcs_len(None), LinkType::EN10MB);
        assert_eq!(lt.to_string(), "EN10MB (1) with 4-byte FCS");
    }
}
