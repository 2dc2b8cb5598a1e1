//! Capture I/O: pcap and pcapng in, pcap and pcapng out, in the shape the replay engine
//! consumes.
//!
//! # Reading
//! [`CaptureReader`] detects the format from the magic and reads in [`Batch`]es: one owned
//! buffer that the file is read into directly (in 256 KiB reads, no intermediate buffer),
//! plus a 32-byte [`RecordDesc`] per packet pointing into it.
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
//! # Example
//! ```
//! use wfpsim_core::capture::{network_layer, CaptureReader, LinkType, PcapngWriter};
//!
//! // Write two packets (an Ethernet frame given as one slice) ...
//! let frame = [0u8; 12].iter().chain(&[0x08, 0x00, 0x45, 0, 0, 20]).copied().collect::<Vec<u8>>();
//! let mut w = PcapngWriter::new(Vec::new())?;
//! w.write_packet(LinkType::EN10MB, 1_700_000_000_000_000_001, 60, frame.as_slice())?;
//! w.write_packet(LinkType::EN10MB, 1_700_000_000_000_000_002, 60, frame.as_slice())?;
//! let file = w.finish()?;
//!
//! // ... and read them back in batches.
//! let mut reader = CaptureReader::from_reader(file.as_slice())?;
//! while let Some(batch) = reader.next_batch(4096, 4 << 20)? {
//!     for (rec, bytes) in batch.iter() {
//!         let (_version, ip_offset) = network_layer(rec.link_type, bytes).ip().expect("IPv4");
//!         assert_eq!((ip_offset, rec.orig_len), (14, 60));
//!     }
//!     reader.recycle(batch); // reuse the buffer for the next batch
//! }
//! # Ok::<(), wfpsim_core::capture::CaptureError>(())
//! ```
//!
//! # Why not the `pcap-parser` crate
//! Its readers hand out blocks borrowed from an internal circular buffer that must be
//! consumed before the next refill, so an owned multi-packet batch would need a copy of
//! every packet, and its errors (nom errors, `Incomplete`) carry no file offset or record
//! index. pcap and pcapng framing is small enough that an own parser, built around the
//! batch buffer, is simpler than adapting it.

mod batch;
mod error;
mod format;
mod iter;
mod linktype;
mod netlayer;
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
pub use format::CaptureFormat;
pub use iter::{Batches, Packet, Packets};
pub use linktype::LinkType;
pub use netlayer::{ip_layer, network_layer, IpVersion, L3Protocol, NetworkLayer};
pub use pcap::PcapHeader;
pub use pcapng::InterfaceInfo;
pub use pcapng_writer::{InterfaceSpec, PcapngWriter};
pub use reader::CaptureReader;
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
