//! The per-packet parse result that verdicts and fixes report, kept a plain `Copy` struct of
//! integers and flags so a batch of them can be exported as numpy columns.

/// Where a packet's headers lie and how it is fragmented.
///
/// Offsets are from the start of the data handed to the parser. Lengths come from the IP
/// header(s), not from the number of bytes present (see `truncated`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct ParseSummary {
    /// Offset of the IP header (0 for a network-layer view).
    pub network_offset: u32,
    /// Bytes from the IP header to the upper-layer header: IPv4 `IHL * 4` plus any AH, IPv6
    /// 40 plus the extension headers walked.
    pub network_header_len: u32,
    /// Offset of the upper-layer header; 0 when none is reachable (non-first fragment, ESP, No
    /// Next Header, headers cut short).
    pub transport_offset: u32,
    /// Upper-layer length (L4 header + data) as the IP lengths declare it: the value the
    /// pseudo-header carries. 0 when the lengths are unusable (IPv4 Total Length 0 or smaller
    /// than the header, IPv6 Payload Length 0 without a Jumbo Payload option).
    pub payload_len: u32,
    /// Fragment offset in bytes.
    pub fragment_offset: u32,
    /// IPv4 Identification or IPv6 Fragment header Identification.
    pub fragment_id: u32,
    /// 4 or 6.
    pub ip_version: u8,
    /// Upper-layer protocol after IPv6 extension headers / IPv4 AH (50 for ESP, 59 for No Next
    /// Header; for a non-first IPv6 fragment, the Fragment header's Next Header).
    pub transport_protocol: u8,
    /// Part of a larger datagram (IPv4 MF or offset != 0; IPv6 Fragment header that is not
    /// atomic).
    pub is_fragment: bool,
    /// A fragment with offset 0: carries the upper-layer header but not all of the datagram.
    pub first_fragment: bool,
    /// More Fragments flag.
    pub more_fragments: bool,
    /// The datagram (or a header in it) is longer than the bytes present.
    pub truncated: bool,
}

impl ParseSummary {
    /// A fragment that does not carry the upper-layer header.
    pub const fn non_first_fragment(&self) -> bool {
        self.is_fragment && !self.first_fragment
    }

    /// Whether an upper-layer header was reached.
    pub const fn has_transport(&self) -> bool {
        self.transport_offset != 0
    }
}
