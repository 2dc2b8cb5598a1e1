//! The Internet checksum (RFC 1071) and NDIS checksum offload (`checksums.md`).
//!
//! Conventions used throughout: a *sum* is the folded, uncomplemented one's-complement sum of
//! 16-bit big-endian words (what RFC 1071 calls `C`, and what an offload *seed* holds); a
//! *checksum* is its complement (`HC = ~C`), the value stored in a header. All `u16` values are
//! the numeric value of the big-endian field (`[0x12, 0x34]` is `0x1234`).
//!
//! * [`sum`]: whole-buffer and streaming sums, over slices and over [`crate::bytes::Segmented`]
//!   data as it lies across pieces (odd splits handled by the byte-swap rule of §1.2).
//! * [`kernel`]: the summing loops (wide scalar, AVX2, AVX-512) and their runtime selection.
//! * [`incremental`]: RFC 1624 updates for rewritten fields (§3).
//! * [`pseudo`]: TCP/UDP/ICMPv6 pseudo-header sums (§2.2, §2.3).
//! * [`offload`]: the `NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO` value (§7.1).
//!
//! Packet-level operations (verify, fix, NAT rewrites) live in [`crate::packet`].

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod incremental;
pub mod kernel;
pub mod offload;
pub mod pseudo;
pub mod sum;

pub use incremental::{apply_delta, delta, update16, update32, update_bytes, update_udp};
pub use offload::ChecksumInfo;
pub use pseudo::{pseudo_header_v4, pseudo_header_v6};
pub use sum::{
    fold, internet_checksum, internet_checksum_segmented, ones_add, ones_sum, ones_sum_segmented,
    OnesSum,
};
