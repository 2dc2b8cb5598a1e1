//! What the format parsers share: byte-order-aware field reads that cannot panic, and the
//! result of parsing one record or block out of a byte window.

use super::batch::RecordDesc;

/// Byte order of a pcap file or pcapng section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endian {
    Little,
    Big,
}

impl Endian {
    pub(crate) fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let a: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u16::from_le_bytes(a),
            Endian::Big => u16::from_be_bytes(a),
        })
    }

    pub(crate) fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let a: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        })
    }

    pub(crate) fn u64(self, b: &[u8], at: usize) -> Option<u64> {
        let a: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(match self {
            Endian::Little => u64::from_le_bytes(a),
            Endian::Big => u64::from_be_bytes(a),
        })
    }
}

/// Where the parser stands, for error messages.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx {
    /// Stream offset of the window's first byte.
    pub offset: u64,
    /// Index of the next packet record.
    pub record: u64,
}

/// Outcome of parsing at the start of a window.
#[derive(Debug)]
pub(crate) enum Step {
    /// A packet record of `consumed` bytes; `desc.data_offset` is relative to the window start.
    Packet { consumed: usize, desc: RecordDesc },
    /// A non-packet block of `consumed` bytes (its effect, if any, is already applied).
    Skip { consumed: usize },
    /// The window ends before the record or block does; at least `need` bytes (from the window
    /// start) are required. Parsers change no state before returning this.
    Incomplete { need: usize },
}
