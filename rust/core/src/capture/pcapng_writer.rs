//! pcapng writer: one little-endian section; an Interface Description Block is emitted the
//! first time a (link type, snaplen, time resolution) combination is used, so a merged replay
//! of several link types stays one file; packets go in Enhanced Packet Blocks.

use std::io::Write;

use super::error::CaptureResult;
use super::linktype::LinkType;
use super::timestamp::TsResolution;
use super::writer::Out;
use crate::bytes::Segmented;

/// Link-type bits pcapng cannot carry: everything but the code (0..=15) and the FCS fields.
const UNREPRESENTABLE_BITS: u32 = 0x0BFF_0000;

/// The interface a packet is written on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InterfaceSpec {
    pub link_type: LinkType,
    /// 0 = no limit.
    pub snaplen: u32,
    pub ts_resolution: TsResolution,
}

/// Writes pcapng.
pub struct PcapngWriter<W: Write> {
    out: Out<W>,
    interfaces: Vec<InterfaceSpec>,
    default_snaplen: u32,
    default_resolution: TsResolution,
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the Section Header Block. Packets written with [`Self::write_packet`] go on
    /// interfaces with no snaplen and nanosecond timestamps (`if_tsresol` = 9).
    pub fn new(inner: W) -> CaptureResult<Self> {
        Self::with_defaults(inner, 0, TsResolution::NANOS)
    }

    /// Like [`Self::new`] with another default snaplen and time resolution.
    pub fn with_defaults(
        inner: W,
        snaplen: u32,
        ts_resolution: TsResolution,
    ) -> CaptureResult<Self> {
        let mut out = Out::new(inner);
        let mut shb = Vec::with_capacity(28);
        shb.extend_from_slice(&0x0A0D_0D0Au32.to_le_bytes());
        shb.extend_from_slice(&28u32.to_le_bytes());
        shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown: we stream
        shb.extend_from_slice(&28u32.to_le_bytes());
        out.put(&shb)?;
        Ok(PcapngWriter {
            out,
            interfaces: Vec::new(),
            default_snaplen: snaplen,
            default_resolution: ts_resolution,
        })
    }

    /// Appends a packet on the default interface for `link_type`.
    pub fn write_packet<S: Segmented + ?Sized>(
        &mut self,
        link_type: LinkType,
        ts_ns: i64,
        orig_len: u32,
        data: &S,
    ) -> CaptureResult<()> {
        let iface = InterfaceSpec {
            link_type,
            snaplen: self.default_snaplen,
            ts_resolution: self.default_resolution,
        };
        self.write_packet_on(iface, ts_ns, orig_len, data)
    }

    /// Appends a packet on the interface `iface`, describing it first if it is new.
    pub fn write_packet_on<S: Segmented + ?Sized>(
        &mut self,
        iface: InterfaceSpec,
        ts_ns: i64,
        orig_len: u32,
        data: &S,
    ) -> CaptureResult<()> {
        let caplen = self.out.caplen(data)?;
        if iface.snaplen != 0 && caplen > iface.snaplen {
            return Err(self.out.refuse(&format!(
                "caplen {caplen} exceeds the interface's snaplen {}",
                iface.snaplen
            )));
        }
        let units = iface.ts_resolution.from_ns(ts_ns).ok_or_else(|| {
            self.out.refuse(&format!(
                "timestamp {ts_ns} ns is negative or not a whole number of {:?} units",
                iface.ts_resolution
            ))
        })?;
        let padded = (caplen as usize).div_ceil(4) * 4;
        let total = u32::try_from(32 + padded).map_err(|_| {
            self.out
                .refuse(&format!("packet of {caplen} bytes is too large"))
        })?;
        let id = match self.interfaces.iter().position(|i| *i == iface) {
            Some(id) => id,
            None => self.describe(iface)?,
        };
        let mut head = [0u8; 28];
        head[0..4].copy_from_slice(&6u32.to_le_bytes());
        head[4..8].copy_from_slice(&total.to_le_bytes());
        head[8..12].copy_from_slice(&(id as u32).to_le_bytes());
        head[12..16].copy_from_slice(&((units >> 32) as u32).to_le_bytes());
        head[16..20].copy_from_slice(&(units as u32).to_le_bytes());
        head[20..24].copy_from_slice(&caplen.to_le_bytes());
        head[24..28].copy_from_slice(&orig_len.to_le_bytes());
        self.out.put(&head)?;
        self.out.put_segmented(data)?;
        let mut tail = [0u8; 7];
        let pad = padded - caplen as usize;
        tail[pad..pad + 4].copy_from_slice(&total.to_le_bytes());
        self.out.put(&tail[..pad + 4])?;
        self.out.records += 1;
        Ok(())
    }

    /// Emits an IDB for `iface`; returns its interface id.
    fn describe(&mut self, iface: InterfaceSpec) -> CaptureResult<usize> {
        let lt = iface.link_type;
        if lt.0 & UNREPRESENTABLE_BITS != 0 {
            return Err(self.out.refuse(&format!(
                "link-type field {:#010x} has reserved bits set that pcapng cannot carry",
                lt.0
            )));
        }
        if iface.ts_resolution.units_per_sec().is_none() {
            return Err(self.out.refuse(&format!(
                "time resolution {:?} cannot be written",
                iface.ts_resolution
            )));
        }
        let mut idb = Vec::with_capacity(40);
        idb.extend_from_slice(&1u32.to_le_bytes());
        idb.extend_from_slice(&0u32.to_le_bytes()); // length, patched below
        idb.extend_from_slice(&lt.code().to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&iface.snaplen.to_le_bytes());
        // if_tsresol, then if_fcslen (in bits) when frames end in an FCS, then opt_endofopt.
        idb.extend_from_slice(&[9, 0, 1, 0, iface.ts_resolution.to_option(), 0, 0, 0]);
        if let Some(fcs) = lt.fcs_len() {
            idb.extend_from_slice(&[13, 0, 1, 0, fcs.saturating_mul(8), 0, 0, 0]);
        }
        idb.extend_from_slice(&[0, 0, 0, 0]);
        let total = (idb.len() + 4) as u32;
        idb[4..8].copy_from_slice(&total.to_le_bytes());
        idb.extend_from_slice(&total.to_le_bytes());
        self.out.put(&idb)?;
        self.interfaces.push(iface);
        Ok(self.interfaces.len() - 1)
    }

    /// Interfaces described so far; a record's interface id indexes this.
    pub fn interfaces(&self) -> &[InterfaceSpec] {
        &self.interfaces
    }

    pub fn records_written(&self) -> u64 {
        self.out.records
    }

    pub fn bytes_written(&self) -> u64 {
        self.out.offset
    }

    /// Flushes and returns the sink.
    pub fn finish(mut self) -> CaptureResult<W> {
        self.out.flush()?;
        Ok(self.out.inner)
    }
}
