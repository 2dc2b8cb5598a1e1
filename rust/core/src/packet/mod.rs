//! Packet-level checksum work over [`Segmented`](crate::bytes::Segmented) data that starts at
//! an IP header (the network-layer view; `_at` variants take the IP header's offset).
//!
//! * [`parse`]: where the headers are, fragment facts ([`ParseSummary`]).
//! * [`verify`]: IPv4 header and transport verdicts ([`Verdict`]).
//! * [`fix`]: recompute checksums as the stack sends them (full, or seeds for TX offload);
//!   [`complete_offload`]: what the NIC then does.
//! * [`nat`]: incremental rewrites (addresses, ports, TTL, any 16/32-bit field).
//! * [`pseudo_header_sum`]: the seed of a packet's upper layer.
//!
//! No function here copies the packet: headers are read from the first piece when they lie
//! there, else copied into small stack buffers; sums run over the pieces as they lie.

mod fix;
mod layout;
pub mod nat;
mod nat_fast;
mod patch;
mod seed;
mod summary;
mod verify;

pub use fix::{complete_offload, complete_offload_at, fix, fix_at, FixAction, FixReport};
pub use layout::{parse, parse_at};
pub use nat::{
    decrement_ttl, rewrite_address, rewrite_port, update_field16, update_field32, Endpoint,
    FieldKind,
};
pub use seed::pseudo_header_sum;
pub use summary::ParseSummary;
pub use verify::{verify, verify_at, Verdict, Verdicts, VerifyOptions};
