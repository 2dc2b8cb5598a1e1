//! Telling the formats apart by their magic, and dispatching to the right record parser.

use super::error::{CaptureError, CaptureResult};
use super::pcap::{self, PcapHeader};
use super::pcapng::{self, InterfaceInfo, PcapngState};
use super::timestamp::TsResolution;
use super::wire::{Ctx, Step};

/// The container format, from the magic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    Pcap(PcapHeader),
    Pcapng,
}

pub(crate) enum Parser {
    Pcap(PcapHeader),
    Pcapng(PcapngState),
}

impl Parser {
    #[inline]
    pub(crate) fn step(&mut self, w: &[u8], ctx: Ctx) -> CaptureResult<Step> {
        match self {
            Parser::Pcap(h) => h.step(w, ctx),
            Parser::Pcapng(s) => s.step(w, ctx),
        }
    }

    pub(crate) fn truncated(&self, w: &[u8], ctx: Ctx) -> CaptureError {
        match self {
            Parser::Pcap(h) => h.truncated(w, ctx),
            Parser::Pcapng(s) => s.truncated(w, ctx),
        }
    }
}

/// What the file header says: the parser to use and how many header bytes it consumed.
pub(crate) struct Detected {
    pub parser: Parser,
    pub format: CaptureFormat,
    /// pcap only: the file header as an interface.
    pub pcap_interface: Option<InterfaceInfo>,
    pub header_len: usize,
}

/// Detects the format from the first bytes of the stream (at least the 24-byte pcap header
/// when there are that many).
pub(crate) fn detect(head: &[u8]) -> CaptureResult<Detected> {
    let Some(magic) = head.first_chunk::<4>().copied() else {
        return Err(CaptureError::malformed_at(
            "truncated capture file header",
            0,
            0,
            &format!("{} bytes; a capture starts with a 4-byte magic", head.len()),
        ));
    };
    if pcap::sniff(magic).is_some() {
        let header = PcapHeader::parse(head)?;
        let ts_resolution = if header.nanos {
            TsResolution::NANOS
        } else {
            TsResolution::MICROS
        };
        let iface = InterfaceInfo {
            link_type: header.link_type,
            snaplen: header.snaplen,
            ts_resolution,
            ts_offset_secs: 0,
        };
        Ok(Detected {
            parser: Parser::Pcap(header),
            format: CaptureFormat::Pcap(header),
            pcap_interface: Some(iface),
            header_len: pcap::FILE_HEADER_LEN,
        })
    } else if u32::from_le_bytes(magic) == pcapng::SHB {
        Ok(Detected {
            parser: Parser::Pcapng(PcapngState::default()),
            format: CaptureFormat::Pcapng,
            pcap_interface: None,
            header_len: 0,
        })
    } else {
        Err(unknown_magic(magic))
    }
}

fn unknown_magic(magic: [u8; 4]) -> CaptureError {
    let hex: String = magic.iter().map(|b| format!("{b:02x}")).collect();
    let hint = match u32::from_le_bytes(magic) {
        0xA1B2_CD34 | 0x34CD_B2A1 => " (Kuznetzov's modified pcap, which is not supported)",
        _ => "",
    };
    CaptureError::malformed_at(
        "unrecognised capture format",
        0,
        0,
        &format!(
            "magic {hex}{hint}; expected pcap (a1b2c3d4 or a1b23c4d, either byte order) or \
             pcapng (0a0d0d0a)"
        ),
    )
}
