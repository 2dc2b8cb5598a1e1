//! pcapng: a sequence of blocks `{type, total_length, body, total_length}`. A Section Header
//! Block sets the byte order (and restarts interface numbering); Interface Description Blocks
//! give each interface its link type, snaplen and timestamp unit; packets come in Enhanced,
//! Simple and (obsolete) Packet Blocks. Everything else (name resolution, statistics,
//! decryption secrets, custom and unknown blocks) is skipped whole, as the spec allows.

use super::batch::RecordDesc;
use super::error::{CaptureError, CaptureResult};
use super::linktype::LinkType;
use super::timestamp::TsResolution;
use super::wire::{Ctx, Endian, Step};
use super::MAX_RECORD_LEN;

pub(crate) const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// Type + length + (for an SHB) the byte-order magic: enough to size any block.
const BLOCK_PEEK: usize = 12;
const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_FCSLEN: u16 = 13;
const OPT_IF_TSOFFSET: u16 = 14;
/// More interfaces than this is a damaged file, not a capture (bounds the table's memory).
const MAX_INTERFACES: usize = 1 << 16;

/// One interface as its IDB describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// Link type, with the FCS bits set from `if_fcslen` when it is a whole number of 16-bit units.
    pub link_type: LinkType,
    /// 0 = no limit.
    pub snaplen: u32,
    pub ts_resolution: TsResolution,
    /// `if_tsoffset`: seconds added to every timestamp.
    pub ts_offset_secs: i64,
}

/// Parser state: the current section's byte order and the interfaces seen so far.
#[derive(Debug, Default)]
pub(crate) struct PcapngState {
    endian: Option<Endian>,
    /// Every interface of the file; the current section's are `interfaces[section_base..]`.
    pub(crate) interfaces: Vec<InterfaceInfo>,
    section_base: usize,
    pub(crate) sections: u32,
}

pub(crate) fn block_name(block_type: u32) -> &'static str {
    match block_type {
        SHB => "Section Header Block",
        IDB => "Interface Description Block",
        PB => "Packet Block",
        SPB => "Simple Packet Block",
        4 => "Name Resolution Block",
        5 => "Interface Statistics Block",
        EPB => "Enhanced Packet Block",
        0x0A => "Decryption Secrets Block",
        0x0BAD | 0x4000_0BAD => "Custom Block",
        _ => "block of unknown type",
    }
}

fn is_packet(block_type: u32) -> bool {
    matches!(block_type, EPB | SPB | PB)
}

impl PcapngState {
    /// Reads a block's type and total length; for an SHB this also decides the byte order.
    fn peek(&self, w: &[u8], ctx: Ctx) -> CaptureResult<Option<(u32, Endian, u32)>> {
        if w.len() < BLOCK_PEEK {
            return Ok(None);
        }
        let raw_type = Endian::Little.u32(w, 0).unwrap_or(0);
        let (block_type, endian) = if raw_type == SHB {
            let endian = match Endian::Little.u32(w, 8) {
                Some(BYTE_ORDER_MAGIC) => Endian::Little,
                Some(m) if m.swap_bytes() == BYTE_ORDER_MAGIC => Endian::Big,
                m => {
                    return Err(CaptureError::malformed_at(
                        "bad Section Header Block",
                        ctx.record,
                        ctx.offset,
                        &format!(
                            "byte-order magic is {:08x}, expected 1a2b3c4d in either order",
                            m.unwrap_or(0)
                        ),
                    ))
                }
            };
            (SHB, endian)
        } else {
            let Some(endian) = self.endian else {
                return Err(CaptureError::malformed_at(
                    "pcapng block",
                    ctx.record,
                    ctx.offset,
                    "the file does not start with a Section Header Block",
                ));
            };
            (endian.u32(w, 0).unwrap_or(0), endian)
        };
        let total = endian.u32(w, 4).unwrap_or(0);
        let min = match block_type {
            SHB => 28,
            IDB => 20,
            EPB | PB => 32,
            SPB => 16,
            _ => 12,
        };
        if total % 4 != 0 || total < min || total as usize > MAX_RECORD_LEN {
            let detail = format!(
                "length field says {total} bytes; a block's length is a multiple of 4, at \
                 least {min} and at most {MAX_RECORD_LEN}"
            );
            return Err(block_error(block_type, "bad", ctx, &detail));
        }
        Ok(Some((block_type, endian, total)))
    }

    /// Parses the block at the start of `w`.
    pub(crate) fn step(&mut self, w: &[u8], ctx: Ctx) -> CaptureResult<Step> {
        let Some((block_type, endian, total)) = self.peek(w, ctx)? else {
            return Ok(Step::Incomplete { need: BLOCK_PEEK });
        };
        let total = total as usize;
        let Some(block) = w.get(..total) else {
            return Ok(Step::Incomplete { need: total });
        };
        let trailer = endian.u32(block, total - 4).unwrap_or(0);
        if trailer as usize != total {
            let detail = format!("length is {total} bytes at its start but {trailer} at its end");
            return Err(block_error(block_type, "bad", ctx, &detail));
        }
        let body = block.get(8..total - 4).unwrap_or(&[]);
        match block_type {
            SHB => self.section(endian, body, ctx)?,
            IDB => self.interface(endian, body, ctx)?,
            EPB | PB | SPB => {
                let desc = self.packet(block_type, endian, body, ctx)?;
                return Ok(Step::Packet {
                    consumed: total,
                    desc,
                });
            }
            _ => {}
        }
        Ok(Step::Skip { consumed: total })
    }

    fn section(&mut self, endian: Endian, body: &[u8], ctx: Ctx) -> CaptureResult<()> {
        let major = endian.u16(body, 4).unwrap_or(0);
        if major != 1 {
            let minor = endian.u16(body, 6).unwrap_or(0);
            return Err(CaptureError::unsupported_at(
                "Section Header Block",
                ctx.record,
                ctx.offset,
                &format!("pcapng version {major}.{minor}; only 1.x is defined"),
            ));
        }
        self.endian = Some(endian);
        self.section_base = self.interfaces.len();
        self.sections += 1;
        Ok(())
    }

    fn interface(&mut self, e: Endian, body: &[u8], ctx: Ctx) -> CaptureResult<()> {
        let bad = |detail: String| block_error(IDB, "bad", ctx, &detail);
        let link = e.u16(body, 0).unwrap_or(0);
        let snaplen = e.u32(body, 4).unwrap_or(0);
        let mut info = InterfaceInfo {
            link_type: LinkType(u32::from(link)),
            snaplen,
            ts_resolution: TsResolution::MICROS,
            ts_offset_secs: 0,
        };
        let mut at = 8;
        while let (Some(code), Some(len)) = (e.u16(body, at), e.u16(body, at + 2)) {
            if code == OPT_END {
                break;
            }
            let len = usize::from(len);
            let value = body.get(at + 4..at + 4 + len).ok_or_else(|| {
                bad(format!(
                    "option {code} of {len} bytes at block offset {} runs past the block",
                    at + 8
                ))
            })?;
            let want = match code {
                OPT_IF_TSRESOL | OPT_IF_FCSLEN => 1,
                OPT_IF_TSOFFSET => 8,
                _ => len,
            };
            if len != want {
                return Err(bad(format!(
                    "option {code} has length {len}, expected {want}"
                )));
            }
            match code {
                OPT_IF_TSRESOL => {
                    let byte = value.first().copied().unwrap_or(6);
                    info.ts_resolution = TsResolution::from_option(byte);
                }
                OPT_IF_TSOFFSET => info.ts_offset_secs = e.u64(value, 0).unwrap_or(0) as i64,
                OPT_IF_FCSLEN => {
                    let bits = value.first().copied().unwrap_or(0);
                    if bits % 16 == 0 && bits <= 240 {
                        info.link_type = info.link_type.with_fcs_len(Some(bits / 8));
                    }
                }
                _ => {}
            }
            at += 4 + len.div_ceil(4) * 4;
        }
        if info.ts_resolution.units_per_sec().is_none() {
            return Err(CaptureError::unsupported_at(
                "Interface Description Block",
                ctx.record,
                ctx.offset,
                &format!(
                    "if_tsresol {:?} is finer than this reader handles",
                    info.ts_resolution
                ),
            ));
        }
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(bad(format!(
                "more than {MAX_INTERFACES} interfaces in one file"
            )));
        }
        self.interfaces.push(info);
        Ok(())
    }

    fn packet(&self, kind: u32, e: Endian, body: &[u8], ctx: Ctx) -> CaptureResult<RecordDesc> {
        let bad = |detail: String| block_error(kind, "bad", ctx, &detail);
        // (interface, timestamp units, caplen, orig_len, offset of the data in the body)
        let (local_if, ts, caplen, orig_len, data_at) = match kind {
            SPB => {
                let orig_len = e.u32(body, 0).unwrap_or(0);
                (0, None, None, orig_len, 4)
            }
            _ => {
                // EPB: 32-bit interface id. PB: 16-bit id, then a 16-bit drop count.
                let local_if = if kind == PB {
                    u32::from(e.u16(body, 0).unwrap_or(0))
                } else {
                    e.u32(body, 0).unwrap_or(0)
                };
                let hi = u64::from(e.u32(body, 4).unwrap_or(0));
                let lo = u64::from(e.u32(body, 8).unwrap_or(0));
                let caplen = e.u32(body, 12).unwrap_or(0);
                let orig_len = e.u32(body, 16).unwrap_or(0);
                (local_if, Some((hi << 32) | lo), Some(caplen), orig_len, 20)
            }
        };
        let section_ifaces = self.interfaces.len() - self.section_base;
        let global = self.section_base.saturating_add(local_if as usize);
        let Some(iface) = self
            .interfaces
            .get(global)
            .filter(|_| (local_if as usize) < section_ifaces)
        else {
            return Err(bad(format!(
                "refers to interface {local_if}, but its section has described {section_ifaces}"
            )));
        };
        let room = body.len().saturating_sub(data_at);
        let caplen = match caplen {
            Some(c) if c as usize > room => {
                return Err(bad(format!(
                    "captured length {c} overruns the block, which has room for {room} bytes"
                )))
            }
            Some(c) => c,
            // A Simple Packet Block's data is the original length cut to the snaplen; the
            // block's padding is not data.
            None => {
                let mut c = orig_len.min(u32::try_from(room).unwrap_or(u32::MAX));
                if iface.snaplen != 0 {
                    c = c.min(iface.snaplen);
                }
                c
            }
        };
        let ts_ns = match ts {
            None => 0,
            Some(units) => iface
                .ts_resolution
                .to_ns(units, iface.ts_offset_secs)
                .ok_or_else(|| {
                    bad(format!(
                    "timestamp {units} in units of {:?} (+{} s) is outside the years 1677..2262",
                    iface.ts_resolution, iface.ts_offset_secs
                ))
                })?,
        };
        Ok(RecordDesc {
            ts_ns,
            data_offset: (8 + data_at) as u32,
            caplen,
            orig_len,
            link_type: iface.link_type,
            interface_id: global as u32,
        })
    }

    /// The error for a window that ends inside a block at end of file.
    pub(crate) fn truncated(&self, w: &[u8], ctx: Ctx) -> CaptureError {
        let peek = self.peek(w, ctx);
        match peek {
            Ok(Some((block_type, _, total))) => {
                let detail = format!("header says {total} bytes, {} remain", w.len());
                block_error(block_type, "truncated", ctx, &detail)
            }
            Ok(None) => {
                let detail = format!("a block header is {BLOCK_PEEK} bytes, {} remain", w.len());
                CaptureError::malformed_at(
                    "truncated pcapng block header",
                    ctx.record,
                    ctx.offset,
                    &detail,
                )
            }
            Err(e) => e,
        }
    }
}

/// Packet blocks are named as the record they hold ("bad record 3 at byte offset 96: Enhanced
/// Packet Block ..."); other blocks by their kind, placed "before record N".
fn block_error(block_type: u32, adjective: &str, ctx: Ctx, detail: &str) -> CaptureError {
    if is_packet(block_type) {
        let detail = format!("{} {detail}", block_name(block_type));
        CaptureError::malformed_record(adjective, ctx.record, ctx.offset, &detail)
    } else {
        let what = format!("{adjective} {}", block_name(block_type));
        CaptureError::malformed_at(&what, ctx.record, ctx.offset, detail)
    }
}
