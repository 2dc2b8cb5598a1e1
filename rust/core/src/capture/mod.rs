//! Capture I/O: pcap and pcapng in, pcap and pcapng out, in the shape the replay engine
//! consumes.
//!
//! # Reading
//! [`CaptureReader`] detects the format from the magic and reads in [`Batch`]es: one owned
//! buffer filled by one bulk read, plus a 32-byte [`RecordDesc`] per packet pointing into it.
//! Packet bytes stay where the read put them (no per-packet copy or allocation); the buffer
//! can be handed back with [`CaptureReader::recycle`] so steady-state reading allocates
//! nothing. Memory is bounded by the batch size whatever the file size. Damage is reported
//! after every record before it has been delivered, with the record index and byte offset.
//!
//! # Link types
//! [`network_layer`] finds the IP header behind the link layers the simulator decodes;
//! other link types pass through reading and writing unchanged.
//!
//! # Writing
//! [`PcapWriter`] and [`PcapngWriter`] take packets as any [`crate::bytes::Segmented`] and
//! refuse, rather than silently round, what the chosen format cannot hold.
//!
//! # Why not the `pcap-parser` crate
//! Its readers hand out blocks borrowed from an internal circular buffer that must be
//! consumed before the next refill, so an owned multi-packet batch would need a copy of
//! every packet, and its errors (nom errors, `Incomplete`) carry no file offset or record
//! index. pcap and pcapng framing is small enough that an own parser, built around the
//! batch buffer, is simpler than adapting it.

mod batch;
mod error;
mod linktype;
mod pcap;
mod pcapng;
mod pcapng_writer;
mod reader;
mod source;
mod timestamp;
mod wire;
mod writer;

pub use batch::{Batch, RecordDesc};
pub use error::{CaptureError, CaptureErrorKind, CaptureResult};
pub use linktype::{ip_layer, network_layer, IpVersion, L3Protocol, LinkType, NetworkLayer};
pub use pcap::PcapHeader;
pub use pcapng::InterfaceInfo;
pub use pcapng_writer::{InterfaceSpec, PcapngWriter};
pub use reader::{Batches, CaptureFormat, CaptureReader, Packet, Packets};
pub use timestamp::TsResolution;
pub use wire::Endian;
pub use writer::{PcapPrecision, PcapWriter};

/// Largest pcap caplen or pcapng block accepted. Real packets stay far below (the largest
/// snaplen in use is 256 KiB); a larger length is a damaged header, and the limit keeps one
/// such header from making the reader buffer an unbounded amount.
pub const MAX_RECORD_LEN: usize = 64 << 20;

/// Upper bound on `max_bytes` (batch offsets are 32-bit).
pub const MAX_BATCH_BYTES: usize = 1 << 30;

/// Batch limits used by the iterators: a few MiB keeps reads large and caches warm.
pub const DEFAULT_BATCH_BYTES: usize = 4 << 20;
pub const DEFAULT_BATCH_PACKETS: usize = 8192;
