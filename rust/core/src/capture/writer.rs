//! Capture writers. Packets are given as any [`Segmented`] (a slice, a `Vec`, or the MDL
//! pieces of an NB), so a packet spread over several buffers is written piece by piece
//! without being flattened first.
//!
//! Every record is checked before its first byte is written: a value the format cannot hold
//! exactly (a sub-µs timestamp in a µs pcap, a second link type in a pcap, a caplen beyond
//! the snaplen) is refused with [`CaptureErrorKind::InvalidInput`], never rounded or cut
//! silently. Only an I/O failure can leave a partial record behind.
//!
//! [`CaptureErrorKind::InvalidInput`]: super::CaptureErrorKind::InvalidInput

use std::io::Write;

use super::error::{CaptureError, CaptureResult};
use super::linktype::LinkType;
use super::pcap::{MAGIC_MICROS, MAGIC_NANOS};
use crate::bytes::Segmented;

/// Byte sink that knows where it stands, for error messages.
pub(crate) struct Out<W> {
    pub(crate) inner: W,
    pub(crate) offset: u64,
    pub(crate) records: u64,
}

impl<W: Write> Out<W> {
    pub(crate) fn new(inner: W) -> Self {
        Out {
            inner,
            offset: 0,
            records: 0,
        }
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) -> CaptureResult<()> {
        self.inner
            .write_all(bytes)
            .map_err(|e| CaptureError::io(self.records, self.offset, "writing", &e))?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    pub(crate) fn put_segmented<S: Segmented + ?Sized>(&mut self, data: &S) -> CaptureResult<()> {
        let mut result = Ok(());
        data.visit(&mut |piece| {
            result = self.put(piece);
            result.is_ok()
        });
        result
    }

    pub(crate) fn flush(&mut self) -> CaptureResult<()> {
        self.inner
            .flush()
            .map_err(|e| CaptureError::io(self.records, self.offset, "flushing after", &e))
    }

    pub(crate) fn refuse(&self, detail: &str) -> CaptureError {
        CaptureError::invalid_write(self.records, self.offset, detail)
    }

    /// The caplen of `data`, refused if it cannot be stored in 32 bits.
    pub(crate) fn caplen<S: Segmented + ?Sized>(&self, data: &S) -> CaptureResult<u32> {
        let len = data.total_len();
        u32::try_from(len).map_err(|_| self.refuse(&format!("packet of {len} bytes exceeds 4 GiB")))
    }
}

/// Timestamp precision of a pcap file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PcapPrecision {
    /// Magic a1b2c3d4; a timestamp with sub-µs digits is refused.
    Micro,
    /// Magic a1b2c3d4; sub-µs digits are dropped (rounded toward earlier), as asked for.
    MicroTruncating,
    /// Magic a1b23c4d; every `i64` ns timestamp from 1970 to 2106 is exact.
    Nano,
}

/// Writes a classic pcap file (little-endian) holding one link type.
pub struct PcapWriter<W: Write> {
    out: Out<W>,
    link_type: LinkType,
    snaplen: u32,
    precision: PcapPrecision,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header. `snaplen` is the largest caplen the file will hold (0 = no
    /// limit announced); records beyond it are refused because libpcap would cut them on read.
    pub fn new(
        inner: W,
        link_type: LinkType,
        snaplen: u32,
        precision: PcapPrecision,
    ) -> CaptureResult<Self> {
        let mut out = Out::new(inner);
        let magic = if precision == PcapPrecision::Nano {
            MAGIC_NANOS
        } else {
            MAGIC_MICROS
        };
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&magic.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        header[16..20].copy_from_slice(&snaplen.to_le_bytes());
        header[20..24].copy_from_slice(&link_type.0.to_le_bytes());
        out.put(&header)?;
        Ok(PcapWriter {
            out,
            link_type,
            snaplen,
            precision,
        })
    }

    /// Appends one record: `data` is what was captured, `orig_len` the length on the wire.
    pub fn write_packet<S: Segmented + ?Sized>(
        &mut self,
        link_type: LinkType,
        ts_ns: i64,
        orig_len: u32,
        data: &S,
    ) -> CaptureResult<()> {
        if link_type != self.link_type {
            return Err(self.out.refuse(&format!(
                "a pcap file holds one link type ({}), this record is {link_type}; use pcapng",
                self.link_type
            )));
        }
        let caplen = self.out.caplen(data)?;
        if self.snaplen != 0 && caplen > self.snaplen {
            return Err(self.out.refuse(&format!(
                "caplen {caplen} exceeds the file's snaplen {}",
                self.snaplen
            )));
        }
        let (sec, frac) = self.split_ts(ts_ns)?;
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&sec.to_le_bytes());
        header[4..8].copy_from_slice(&frac.to_le_bytes());
        header[8..12].copy_from_slice(&caplen.to_le_bytes());
        header[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.out.put(&header)?;
        self.out.put_segmented(data)?;
        self.out.records += 1;
        Ok(())
    }

    fn split_ts(&self, ts_ns: i64) -> CaptureResult<(u32, u32)> {
        let sec = u32::try_from(ts_ns.div_euclid(1_000_000_000)).map_err(|_| {
            self.out.refuse(&format!(
                "timestamp {ts_ns} ns is outside pcap's unsigned 32-bit seconds (1970..2106)"
            ))
        })?;
        let ns = ts_ns.rem_euclid(1_000_000_000) as u32;
        Ok(match self.precision {
            PcapPrecision::Nano => (sec, ns),
            PcapPrecision::MicroTruncating => (sec, ns / 1000),
            PcapPrecision::Micro if ns.is_multiple_of(1000) => (sec, ns / 1000),
            PcapPrecision::Micro => {
                return Err(self.out.refuse(&format!(
                    "timestamp {sec}.{ns:09} s has sub-microsecond digits that a microsecond \
                     pcap would lose (use PcapPrecision::Nano, or MicroTruncating to drop them)"
                )))
            }
        })
    }

    /// Records written so far.
    pub fn records_written(&self) -> u64 {
        self.out.records
    }

    /// Bytes written so far, header included.
    pub fn bytes_written(&self) -> u64 {
        self.out.offset
    }

    /// Flushes and returns the sink.
    pub fn finish(mut self) -> CaptureResult<W> {
        self.out.flush()?;
        Ok(self.out.inner)
    }
}
