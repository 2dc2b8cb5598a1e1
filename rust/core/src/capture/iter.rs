//! Convenience iterators over a [`CaptureReader`]: batches, or single owned packets.

use std::io::Read;

use super::batch::Batch;
use super::error::CaptureResult;
use super::linktype::LinkType;
use super::reader::CaptureReader;
use super::{DEFAULT_BATCH_BYTES, DEFAULT_BATCH_PACKETS};

/// Iterator over batches; see [`CaptureReader::next_batch`].
pub struct Batches<'a, R> {
    reader: &'a mut CaptureReader<R>,
    max_packets: usize,
    max_bytes: usize,
}

impl<'a, R> Batches<'a, R> {
    pub(crate) fn new(
        reader: &'a mut CaptureReader<R>,
        max_packets: usize,
        max_bytes: usize,
    ) -> Self {
        Batches {
            reader,
            max_packets,
            max_bytes,
        }
    }
}

impl<R: Read> Iterator for Batches<'_, R> {
    type Item = CaptureResult<Batch>;
    fn next(&mut self) -> Option<Self::Item> {
        self.reader
            .next_batch(self.max_packets, self.max_bytes)
            .transpose()
    }
}

/// One packet with its own copy of the bytes (from [`CaptureReader::packets`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub ts_ns: i64,
    pub orig_len: u32,
    pub link_type: LinkType,
    pub interface_id: u32,
    /// The captured bytes; `data.len()` is the caplen.
    pub data: Vec<u8>,
}

/// Iterator over single packets; yields the error once, after the packets before it.
pub struct Packets<R> {
    reader: CaptureReader<R>,
    batch: Option<Batch>,
    next: usize,
}

impl<R> Packets<R> {
    pub(crate) fn new(reader: CaptureReader<R>) -> Self {
        Packets {
            reader,
            batch: None,
            next: 0,
        }
    }

    /// The reader, e.g. to look at `interfaces()` after iterating.
    pub fn reader(&self) -> &CaptureReader<R> {
        &self.reader
    }
}

impl<R: Read> Iterator for Packets<R> {
    type Item = CaptureResult<Packet>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(batch) = &self.batch {
                if let Some(desc) = batch.records().get(self.next) {
                    self.next += 1;
                    return Some(Ok(Packet {
                        ts_ns: desc.ts_ns,
                        orig_len: desc.orig_len,
                        link_type: desc.link_type,
                        interface_id: desc.interface_id,
                        data: batch.packet(desc).to_vec(),
                    }));
                }
            }
            if let Some(done) = self.batch.take() {
                self.reader.recycle(done);
            }
            self.next = 0;
            match self
                .reader
                .next_batch(DEFAULT_BATCH_PACKETS, DEFAULT_BATCH_BYTES)
            {
                Ok(Some(b)) => self.batch = Some(b),
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl<R: Read> IntoIterator for CaptureReader<R> {
    type Item = CaptureResult<Packet>;
    type IntoIter = Packets<R>;
    fn into_iter(self) -> Packets<R> {
        self.packets()
    }
}
