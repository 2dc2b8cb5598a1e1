//! The unit the replay engine consumes: one owned buffer filled straight from the file by a
//! few large reads, plus a
//! compact descriptor per packet pointing into it. Packet bytes are never copied out of the
//! buffer and never allocated per packet; the buffer travels with the batch (to a worker
//! thread, into NBL/MDL views) and can be handed back to the reader for reuse.

use super::linktype::LinkType;

/// One packet record: where its bytes lie in the batch buffer and what the file says about it.
///
/// 32 bytes, `Copy`: a batch of 4096 records costs 128 KiB of descriptors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecordDesc {
    /// Nanoseconds since 1970-01-01T00:00:00Z, exact for µs/ns pcap and for pcapng decimal
    /// resolutions down to ns (see [`super::TsResolution::to_ns`]); `if_tsoffset` included.
    /// pcapng Simple Packet Blocks carry no timestamp and get 0.
    pub ts_ns: i64,
    /// Offset of the first packet byte in [`Batch::data`].
    pub data_offset: u32,
    /// Bytes present in the capture (the slice length).
    pub caplen: u32,
    /// Length of the packet on the wire; larger than `caplen` when the capture was cut short.
    pub orig_len: u32,
    /// The link type, including any FCS bits (see [`LinkType`]).
    pub link_type: LinkType,
    /// pcapng: index of the record's Interface Description Block counted over the whole file
    /// (sections do not restart it), so two sections' interface 0 stay distinct. pcap: 0.
    pub interface_id: u32,
}

impl RecordDesc {
    /// True when the capture holds fewer bytes than were on the wire.
    pub fn is_truncated(&self) -> bool {
        self.caplen < self.orig_len
    }

    fn range(&self) -> std::ops::Range<usize> {
        let start = self.data_offset as usize;
        start..start + self.caplen as usize
    }
}

/// A run of consecutive records and the buffer that holds them.
///
/// The buffer is a contiguous slice of the file starting at [`Batch::file_offset`]; besides
/// packet bytes it holds the record headers (and, for pcapng, any non-packet blocks that lay
/// between the packets), which is what lets the file be read into it in large pieces.
#[derive(Debug)]
pub struct Batch {
    pub(crate) buf: Vec<u8>,
    pub(crate) len: usize,
    pub(crate) records: Vec<RecordDesc>,
    pub(crate) file_offset: u64,
    pub(crate) first_record: u64,
}

impl Batch {
    /// The batch buffer: what `data_offset` indexes.
    pub fn data(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// The batch buffer, writable: the engine may rewrite packets in place (checksums, NAT).
    pub fn data_mut(&mut self) -> &mut [u8] {
        let len = self.len.min(self.buf.len());
        &mut self.buf[..len]
    }

    /// The descriptors, in file order.
    pub fn records(&self) -> &[RecordDesc] {
        &self.records
    }

    /// Number of packet records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The bytes of `desc` (a descriptor of this batch). Empty if `desc` does not fit the buffer,
    /// which cannot happen for descriptors the reader produced.
    pub fn packet(&self, desc: &RecordDesc) -> &[u8] {
        self.data().get(desc.range()).unwrap_or(&[])
    }

    /// Writable bytes of `desc`.
    pub fn packet_mut(&mut self, desc: &RecordDesc) -> &mut [u8] {
        let range = desc.range();
        self.data_mut().get_mut(range).unwrap_or(&mut [])
    }

    /// Records with their bytes.
    pub fn iter(&self) -> impl Iterator<Item = (&RecordDesc, &[u8])> + '_ {
        self.records.iter().map(move |d| (d, self.packet(d)))
    }

    /// Byte offset in the capture stream of `data()[0]`.
    pub fn file_offset(&self) -> u64 {
        self.file_offset
    }

    /// Index (over the whole capture) of this batch's first record.
    pub fn first_record(&self) -> u64 {
        self.first_record
    }

    /// Takes the batch apart: the buffer (truncated to `data().len()`) and the descriptors.
    pub fn into_parts(mut self) -> (Vec<u8>, Vec<RecordDesc>) {
        self.buf.truncate(self.len);
        (self.buf, self.records)
    }
}
