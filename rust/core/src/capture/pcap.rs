//! Classic libpcap format: a 24-byte file header, then 16-byte record headers each followed
//! by `caplen` bytes. Magic a1b2c3d4 = µs timestamps, a1b23c4d = ns; stored in the writer's
//! byte order, which the magic reveals.

use super::batch::RecordDesc;
use super::error::{CaptureError, CaptureResult};
use super::linktype::LinkType;
use super::wire::{Ctx, Endian, Step};
use super::MAX_RECORD_LEN;

pub(crate) const FILE_HEADER_LEN: usize = 24;
pub(crate) const RECORD_HEADER_LEN: usize = 16;
pub(crate) const MAGIC_MICROS: u32 = 0xA1B2_C3D4;
pub(crate) const MAGIC_NANOS: u32 = 0xA1B2_3C4D;

/// What the pcap file header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcapHeader {
    pub endian: Endian,
    /// Nanosecond timestamps (magic a1b23c4d) rather than microseconds.
    pub nanos: bool,
    pub version_major: u16,
    pub version_minor: u16,
    /// The largest caplen the writer promised. Not enforced on read: some writers exceed it.
    pub snaplen: u32,
    pub link_type: LinkType,
}

/// Recognises the four pcap magics in their first 4 bytes.
pub(crate) fn sniff(magic: [u8; 4]) -> Option<(Endian, bool)> {
    match (u32::from_le_bytes(magic), u32::from_be_bytes(magic)) {
        (MAGIC_MICROS, _) => Some((Endian::Little, false)),
        (MAGIC_NANOS, _) => Some((Endian::Little, true)),
        (_, MAGIC_MICROS) => Some((Endian::Big, false)),
        (_, MAGIC_NANOS) => Some((Endian::Big, true)),
        _ => None,
    }
}

impl PcapHeader {
    /// Parses the 24-byte file header (the caller has checked the magic with [`sniff`]).
    pub(crate) fn parse(b: &[u8]) -> CaptureResult<PcapHeader> {
        let short = || {
            CaptureError::malformed_at(
                "truncated pcap file header",
                0,
                0,
                &format!("needs {FILE_HEADER_LEN} bytes, {} remain", b.len()),
            )
        };
        let magic: [u8; 4] = b
            .get(..4)
            .and_then(|m| m.try_into().ok())
            .ok_or_else(short)?;
        let (endian, nanos) = sniff(magic).ok_or_else(short)?;
        let field = |at| endian.u32(b, at).ok_or_else(short);
        let version_major = endian.u16(b, 4).ok_or_else(short)?;
        let version_minor = endian.u16(b, 6).ok_or_else(short)?;
        let snaplen = field(16)?;
        let link_type = LinkType(field(20)?);
        if version_major != 2 {
            return Err(CaptureError::unsupported_at(
                "pcap file header",
                0,
                0,
                &format!("version {version_major}.{version_minor}; only 2.x exists"),
            ));
        }
        Ok(PcapHeader {
            endian,
            nanos,
            version_major,
            version_minor,
            snaplen,
            link_type,
        })
    }

    /// Parses the record at the start of `w`. The hot path of reading a pcap: one 16-byte
    /// load, four byte-order fixes, no allocation.
    #[inline]
    pub(crate) fn step(&self, w: &[u8], ctx: Ctx) -> CaptureResult<Step> {
        let Some(hdr) = w.first_chunk::<RECORD_HEADER_LEN>() else {
            return Ok(Step::Incomplete {
                need: RECORD_HEADER_LEN,
            });
        };
        let field = |i: usize| {
            let v = u32::from_le_bytes([hdr[i], hdr[i + 1], hdr[i + 2], hdr[i + 3]]);
            if self.endian == Endian::Big {
                v.swap_bytes()
            } else {
                v
            }
        };
        let (sec, frac, caplen, orig_len) = (field(0), field(4), field(8), field(12));
        if caplen as usize > MAX_RECORD_LEN {
            return Err(CaptureError::malformed_record(
                "bad",
                ctx.record,
                ctx.offset,
                &format!(
                    "header says {caplen} captured bytes, more than the {MAX_RECORD_LEN}-byte \
                     limit (damaged record header?)"
                ),
            ));
        }
        let consumed = RECORD_HEADER_LEN + caplen as usize;
        if w.len() < consumed {
            return Ok(Step::Incomplete { need: consumed });
        }
        // u32 seconds * 1e9 + a u32 fraction * 1000 stays below 2^63: no overflow possible.
        let frac_ns = if self.nanos {
            i64::from(frac)
        } else {
            i64::from(frac) * 1000
        };
        let desc = RecordDesc {
            ts_ns: i64::from(sec) * 1_000_000_000 + frac_ns,
            data_offset: RECORD_HEADER_LEN as u32,
            caplen,
            orig_len,
            link_type: self.link_type,
            interface_id: 0,
        };
        Ok(Step::Packet { consumed, desc })
    }

    /// The error for a window that ends inside a record at end of file.
    pub(crate) fn truncated(&self, w: &[u8], ctx: Ctx) -> CaptureError {
        match self.endian.u32(w, 8) {
            Some(caplen) => CaptureError::malformed_record(
                "truncated",
                ctx.record,
                ctx.offset,
                &format!(
                    "header says {caplen} bytes, {} remain",
                    w.len().saturating_sub(RECORD_HEADER_LEN)
                ),
            ),
            None => CaptureError::malformed_record(
                "truncated header of",
                ctx.record,
                ctx.offset,
                &format!(
                    "a record header is {RECORD_HEADER_LEN} bytes, {} remain",
                    w.len()
                ),
            ),
        }
    }
}
