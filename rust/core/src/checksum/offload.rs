//! `NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO` (`checksums.md §7.1`).
//!
//! The value lives by value in `NetBufferListInfo[TcpIpChecksumNetBufferListInfo]` (slot 0) as a
//! PVOID. It is a union: the same bits mean one thing on send (Transmit, set by TCP/IP for the
//! miniport) and another on receive (Receive, set by the miniport), so the getters for both
//! views exist side by side and the caller picks the view by direction. MSVC allocates ULONG
//! bitfields from bit 0, so the masks apply to the low 32 bits of the PVOID.

use crate::status::STATUS_INVALID_PARAMETER;
use crate::{Error, Result};

/// The checksum-offload NBL info value.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct ChecksumInfo(u32);

macro_rules! flag {
    ($(#[$doc:meta])* $get:ident, $set:ident, $mask:ident = $bit:expr) => {
        $(#[$doc])*
        pub const $mask: u32 = 1 << $bit;

        $(#[$doc])*
        #[inline]
        pub const fn $get(self) -> bool {
            self.0 & Self::$mask != 0
        }

        #[doc = concat!("Sets or clears [`Self::", stringify!($get), "`].")]
        #[inline]
        pub fn $set(&mut self, on: bool) {
            if on {
                self.0 |= Self::$mask;
            } else {
                self.0 &= !Self::$mask;
            }
        }
    };
}

impl ChecksumInfo {
    /// No offload requested (send) / nothing validated (receive).
    pub const NONE: ChecksumInfo = ChecksumInfo(0);

    /// Transmit `TcpHeaderOffset`: bits 16–25.
    pub const TCP_HEADER_OFFSET_MASK: u32 = 0x03FF_0000;
    const TCP_HEADER_OFFSET_SHIFT: u32 = 16;

    /// From the NBL info slot. The upper 32 bits of a 64-bit PVOID are always 0 for this value
    /// and are ignored.
    #[inline]
    pub const fn from_value(value: usize) -> Self {
        ChecksumInfo(value as u32)
    }

    /// From the ULONG view (`ChecksumInfo.Value` in the NDIS 5 struct).
    #[inline]
    pub const fn from_u32(value: u32) -> Self {
        ChecksumInfo(value)
    }

    /// The value to store in the NBL info slot.
    #[inline]
    pub const fn value(self) -> usize {
        self.0 as usize
    }

    /// The ULONG view.
    #[inline]
    pub const fn bits(self) -> u32 {
        self.0
    }

    // ---- Transmit view ----

    flag!(
        /// Transmit `IsIPv4` (bit 0): the send packet is IPv4.
        is_ipv4, set_is_ipv4, IS_IPV4 = 0
    );
    flag!(
        /// Transmit `IsIPv6` (bit 1): the send packet is IPv6.
        is_ipv6, set_is_ipv6, IS_IPV6 = 1
    );
    flag!(
        /// Transmit `TcpChecksum` (bit 2): the NIC computes the TCP checksum; the field holds
        /// the pseudo-header seed.
        tcp_checksum, set_tcp_checksum, TCP_CHECKSUM = 2
    );
    flag!(
        /// Transmit `UdpChecksum` (bit 3): the NIC computes the UDP checksum; the field holds
        /// the pseudo-header seed.
        udp_checksum, set_udp_checksum, UDP_CHECKSUM = 3
    );
    flag!(
        /// Transmit `IpHeaderChecksum` (bit 4): the NIC computes the IPv4 header checksum; the
        /// field is left 0.
        ip_header_checksum, set_ip_header_checksum, IP_HEADER_CHECKSUM = 4
    );

    /// Transmit `TcpHeaderOffset` (bits 16–25): offset of the TCP header from the start of the
    /// frame.
    #[inline]
    pub const fn tcp_header_offset(self) -> u16 {
        ((self.0 & Self::TCP_HEADER_OFFSET_MASK) >> Self::TCP_HEADER_OFFSET_SHIFT) as u16
    }

    /// Sets `TcpHeaderOffset`; it is a 10-bit field, so offsets above 1023 are rejected.
    pub fn set_tcp_header_offset(&mut self, offset: u16) -> Result<()> {
        if u32::from(offset) > Self::TCP_HEADER_OFFSET_MASK >> Self::TCP_HEADER_OFFSET_SHIFT {
            return Err(Error::invalid(
                STATUS_INVALID_PARAMETER,
                format!("TcpHeaderOffset {offset} does not fit its 10 bits (max 1023)"),
            ));
        }
        self.0 = (self.0 & !Self::TCP_HEADER_OFFSET_MASK)
            | (u32::from(offset) << Self::TCP_HEADER_OFFSET_SHIFT);
        Ok(())
    }

    /// True when a send requests any checksum work: §7.2 says the miniport does nothing unless
    /// IsIPv4 or IsIPv6 is set.
    #[inline]
    pub const fn transmit_active(self) -> bool {
        self.0 & (Self::IS_IPV4 | Self::IS_IPV6) != 0
    }

    /// Whether the field of `protocol` (over IPv6 if `ipv6`) holds a pseudo-header seed for the
    /// NIC: the matching IsIPvX bit and the TCP/UDP bit are both set.
    #[inline]
    pub const fn transport_offloaded(self, ipv6: bool, protocol: u8) -> bool {
        let family = if ipv6 { self.is_ipv6() } else { self.is_ipv4() };
        family
            && match protocol {
                crate::wire::ip::protocol::TCP => self.tcp_checksum(),
                crate::wire::ip::protocol::UDP => self.udp_checksum(),
                _ => false,
            }
    }

    /// Whether the NIC computes the IPv4 header checksum (IsIPv4 and IpHeaderChecksum).
    #[inline]
    pub const fn ip_header_offloaded(self) -> bool {
        self.is_ipv4() && self.ip_header_checksum()
    }

    // ---- Receive view ----

    flag!(
        /// Receive `TcpChecksumFailed` (bit 0).
        tcp_checksum_failed, set_tcp_checksum_failed, TCP_CHECKSUM_FAILED = 0
    );
    flag!(
        /// Receive `UdpChecksumFailed` (bit 1).
        udp_checksum_failed, set_udp_checksum_failed, UDP_CHECKSUM_FAILED = 1
    );
    flag!(
        /// Receive `IpChecksumFailed` (bit 2).
        ip_checksum_failed, set_ip_checksum_failed, IP_CHECKSUM_FAILED = 2
    );
    flag!(
        /// Receive `TcpChecksumSucceeded` (bit 3).
        tcp_checksum_succeeded, set_tcp_checksum_succeeded, TCP_CHECKSUM_SUCCEEDED = 3
    );
    flag!(
        /// Receive `UdpChecksumSucceeded` (bit 4).
        udp_checksum_succeeded, set_udp_checksum_succeeded, UDP_CHECKSUM_SUCCEEDED = 4
    );
    flag!(
        /// Receive `IpChecksumSucceeded` (bit 5).
        ip_checksum_succeeded, set_ip_checksum_succeeded, IP_CHECKSUM_SUCCEEDED = 5
    );
    flag!(
        /// Receive `Loopback` (bit 6): NDIS-internal; miniports must neither read nor set it.
        loopback, set_loopback, LOOPBACK = 6
    );
    flag!(
        /// Receive `TcpChecksumValueInvalid` (bit 7, NDIS 6.30 RSC): validated, but the field of
        /// the coalesced packet is not a valid checksum.
        tcp_checksum_value_invalid, set_tcp_checksum_value_invalid, TCP_CHECKSUM_VALUE_INVALID = 7
    );
    flag!(
        /// Receive `IpChecksumValueInvalid` (bit 8, NDIS 6.30 RSC): the same for the IPv4 header.
        ip_checksum_value_invalid, set_ip_checksum_value_invalid, IP_CHECKSUM_VALUE_INVALID = 8
    );
}

impl std::fmt::Debug for ChecksumInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChecksumInfo(0x{:08X})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        // checksums.md §8 vector 16.
        let mut tx = ChecksumInfo::NONE;
        tx.set_is_ipv4(true);
        tx.set_tcp_checksum(true);
        tx.set_ip_header_checksum(true);
        tx.set_tcp_header_offset(34).unwrap();
        assert_eq!(tx.value(), 0x0022_0015);
        assert_eq!(tx.tcp_header_offset(), 34);
        assert!(tx.transmit_active());

        let mut v6 = ChecksumInfo::NONE;
        v6.set_is_ipv6(true);
        v6.set_udp_checksum(true);
        assert_eq!(v6.value(), 0x0000_000A);

        let mut rx = ChecksumInfo::NONE;
        rx.set_tcp_checksum_succeeded(true);
        rx.set_ip_checksum_succeeded(true);
        assert_eq!(rx.value(), 0x28);
        assert!(rx.tcp_checksum_succeeded() && rx.ip_checksum_succeeded());
        rx.set_tcp_checksum_succeeded(false);
        assert_eq!(rx.bits(), 0x20);
    }

    #[test]
    fn every_bit_round_trips() {
        type Get = fn(ChecksumInfo) -> bool;
        type Set = fn(&mut ChecksumInfo, bool);
        let flags: [(Get, Set, u32); 14] = [
            (ChecksumInfo::is_ipv4, ChecksumInfo::set_is_ipv4, 0x1),
            (ChecksumInfo::is_ipv6, ChecksumInfo::set_is_ipv6, 0x2),
            (
                ChecksumInfo::tcp_checksum,
                ChecksumInfo::set_tcp_checksum,
                0x4,
            ),
            (
                ChecksumInfo::udp_checksum,
                ChecksumInfo::set_udp_checksum,
                0x8,
            ),
            (
                ChecksumInfo::ip_header_checksum,
                ChecksumInfo::set_ip_header_checksum,
                0x10,
            ),
            (
                ChecksumInfo::tcp_checksum_failed,
                ChecksumInfo::set_tcp_checksum_failed,
                0x1,
            ),
            (
                ChecksumInfo::udp_checksum_failed,
                ChecksumInfo::set_udp_checksum_failed,
                0x2,
            ),
            (
                ChecksumInfo::ip_checksum_failed,
                ChecksumInfo::set_ip_checksum_failed,
                0x4,
            ),
            (
                ChecksumInfo::tcp_checksum_succeeded,
                ChecksumInfo::set_tcp_checksum_succeeded,
                0x8,
            ),
            (
                ChecksumInfo::udp_checksum_succeeded,
                ChecksumInfo::set_udp_checksum_succeeded,
                0x10,
            ),
            (
                ChecksumInfo::ip_checksum_succeeded,
                ChecksumInfo::set_ip_checksum_succeeded,
                0x20,
            ),
            (ChecksumInfo::loopback, ChecksumInfo::set_loopback, 0x40),
            (
                ChecksumInfo::tcp_checksum_value_invalid,
                ChecksumInfo::set_tcp_checksum_value_invalid,
                0x80,
            ),
            (
                ChecksumInfo::ip_checksum_value_invalid,
                ChecksumInfo::set_ip_checksum_value_invalid,
                0x100,
            ),
        ];
        for (get, set, mask) in flags {
            let mut v = ChecksumInfo::from_u32(!mask);
            assert!(!get(v));
            set(&mut v, true);
            assert_eq!(v.bits(), u32::MAX);
            assert!(get(v));
            set(&mut v, false);
            assert_eq!(v.bits(), !mask);
        }
        let mut v = ChecksumInfo::from_u32(0xFFFF_FFFF);
        v.set_tcp_header_offset(0).unwrap();
        assert_eq!(v.bits(), 0xFC00_FFFF);
        v.set_tcp_header_offset(1023).unwrap();
        assert_eq!(v.bits(), u32::MAX);
        assert!(v.set_tcp_header_offset(1024).is_err());
        #[cfg(target_pointer_width = "64")]
        assert_eq!(ChecksumInfo::from_value(0x1_0000_0028).value(), 0x28);
    }
}
