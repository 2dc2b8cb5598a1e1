//! Checked header views over byte slices, in the style of smoltcp's `wire` module.
//!
//! A view wraps any `T: AsRef<[u8]>` (`AsMut` for setters). Its constructor checks that the
//! header fits and is well formed, and fails with an [`ErrorKind::Malformed`] error that names
//! the defect and its byte offset; `new_checked_at(buffer, at)` lets the caller say where the
//! buffer starts in the packet so the message points at the right byte. Accessors never panic
//! and never allocate: fields are read with bounds-checked helpers (a buffer whose `AsRef`
//! shrinks after the check reads zeros rather than panicking).
//!
//! The IPv6 extension-header walk ([`ipv6_chain`]) and the packet-level code in
//! [`crate::packet`] read through [`crate::bytes::Segmented`], copying at most one header into
//! a stack buffer when it straddles pieces.
//!
//! [`ErrorKind::Malformed`]: crate::ErrorKind::Malformed

pub mod ethernet;
pub(crate) mod field;
pub mod icmp;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod ipv6_chain;
pub mod ipv6_ext;
pub(crate) mod reader;
pub mod tcp;
pub mod udp;

pub use ethernet::{EthernetFrame, VlanTag};
pub use icmp::{Icmpv4Packet, Icmpv6Packet};
pub use ipv4::Ipv4Packet;
pub use ipv6::Ipv6Packet;
pub use ipv6_chain::{walk_ipv6, ChainEnd, FragmentInfo, Ipv6Chain};
pub use ipv6_ext::{ExtHeader, FragmentHeader, OptionIter, RoutingHeader, TlvOption};
pub use tcp::TcpPacket;
pub use udp::UdpPacket;
