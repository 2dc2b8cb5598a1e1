//! Streaming capture reader: [`CaptureReader::next_batch`] reads the file straight into an
//! owned buffer (256 KiB per read, each piece parsed as it lands) and describes the whole
//! records it holds. Memory stays bounded by the batch size
//! (or by the one record larger than it) plus the unparsed tail carried to the next batch,
//! whatever the file size.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::batch::{Batch, RecordDesc};
use super::error::{CaptureError, CaptureResult};
use super::format::{detect, CaptureFormat, Detected, Parser};
use super::iter::{Batches, Packets};
use super::pcap;
use super::pcapng::InterfaceInfo;
use super::source::Source;
use super::wire::{Ctx, Step};
use super::{DEFAULT_BATCH_BYTES, DEFAULT_BATCH_PACKETS, MAX_BATCH_BYTES};

/// First read when opening: enough for any file header and usually the first packets.
const INITIAL_READ: usize = 64 << 10;
/// A batch is read in pieces of this size, each parsed right after it lands, so the record
/// headers are parsed while the kernel's copy has left them in cache instead of after a
/// multi-MiB read has pushed them out (one DRAM miss per record otherwise).
const READ_CHUNK: usize = 256 << 10;
/// Recycled buffers kept for reuse; more would only hold memory.
const SPARE_BUFFERS: usize = 2;

enum Stop {
    Full,
    Incomplete(usize),
    Error(CaptureError),
}

/// Reads pcap (µs/ns, either byte order) and pcapng (any number of sections and interfaces)
/// from any [`Read`], in batches.
///
/// After a damaged record the reader first returns the batch holding every record before it,
/// then the error (once), then `None`.
pub struct CaptureReader<R> {
    source: Source<R>,
    parser: Parser,
    format: CaptureFormat,
    /// pcap only: the file header as an interface, so `interfaces()` serves both formats.
    pcap_interface: Option<InterfaceInfo>,
    /// Bytes read but not yet parsed: `stage[..stage_len]`, starting at stream `stage_offset`.
    stage: Vec<u8>,
    stage_len: usize,
    stage_offset: u64,
    spare_buffers: Vec<Vec<u8>>,
    spare_records: Vec<Vec<RecordDesc>>,
    /// Buffers larger than this are not kept for reuse (the last `max_bytes`, doubled).
    spare_limit: usize,
    pending: Option<CaptureError>,
    done: bool,
    next_record: u64,
    parsed_bytes: u64,
}

impl CaptureReader<File> {
    /// Opens a capture file and reads its header.
    pub fn open(path: impl AsRef<Path>) -> CaptureResult<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| {
            let mut err = CaptureError::io(0, 0, "opening", &e);
            err.message = format!("cannot open capture {}: {e}", path.display());
            err
        })?;
        Self::from_reader(file)
    }
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header from `inner` and detects the format from its magic. Wrap slow
    /// or unbuffered sources as they are: the reader does its own large reads.
    pub fn from_reader(inner: R) -> CaptureResult<Self> {
        let mut source = Source::new(inner);
        let mut stage = Vec::new();
        let mut len = 0;
        source.fill(&mut stage, &mut len, INITIAL_READ);
        if let (Some(e), true) = (&source.error, len < pcap::FILE_HEADER_LEN) {
            return Err(CaptureError::io(
                0,
                len as u64,
                "reading the file header before",
                e,
            ));
        }
        let Detected {
            parser,
            format,
            pcap_interface,
            header_len,
        } = detect(stage.get(..len).unwrap_or(&[]))?;
        let header_len = header_len.min(len);
        stage.copy_within(header_len..len, 0);
        Ok(CaptureReader {
            source,
            parser,
            format,
            pcap_interface,
            stage,
            stage_len: len - header_len,
            stage_offset: header_len as u64,
            spare_buffers: Vec::new(),
            spare_records: Vec::new(),
            spare_limit: 2 * DEFAULT_BATCH_BYTES,
            pending: None,
            done: false,
            next_record: 0,
            parsed_bytes: 0,
        })
    }

    /// The container format and, for pcap, its file header.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// Interfaces seen so far, indexed by [`RecordDesc::interface_id`]. For pcap, the one
    /// interface its file header describes; for pcapng, every IDB read so far.
    pub fn interfaces(&self) -> &[InterfaceInfo] {
        match (&self.parser, &self.pcap_interface) {
            (Parser::Pcapng(s), _) => &s.interfaces,
            (Parser::Pcap(_), Some(i)) => std::slice::from_ref(i),
            (Parser::Pcap(_), None) => &[],
        }
    }

    /// Number of packet records delivered so far.
    pub fn records_read(&self) -> u64 {
        self.next_record
    }

    /// Stream offset of the first byte not yet delivered in a batch.
    pub fn position(&self) -> u64 {
        self.stage_offset
    }

    /// Bytes of buffer the reader itself holds (the unparsed tail and recycled buffers): what
    /// stays allocated between batches, for checking that memory is bounded.
    pub fn retained_capacity(&self) -> usize {
        self.stage.capacity()
            + self.spare_buffers.iter().map(Vec::capacity).sum::<usize>()
            + self
                .spare_records
                .iter()
                .map(|v| v.capacity() * size_of::<RecordDesc>())
                .sum::<usize>()
    }

    /// Hands a consumed batch's buffers back so the next batches reuse them: no allocation and
    /// no zeroing per batch, which is what sustained multi-GB/s reading needs.
    /// Hands back a batch buffer on its own (its records already gone), for reuse.
    pub fn give_buffer(&mut self, buf: Vec<u8>) {
        if self.spare_buffers.len() < SPARE_BUFFERS
            && buf.capacity() <= self.spare_limit.max(2 * DEFAULT_BATCH_BYTES)
        {
            self.spare_buffers.push(buf);
        }
    }

    pub fn recycle(&mut self, batch: Batch) {
        let Batch {
            buf, mut records, ..
        } = batch;
        if self.spare_buffers.len() < SPARE_BUFFERS && buf.len() <= self.spare_limit {
            self.spare_buffers.push(buf);
        }
        if self.spare_records.len() < SPARE_BUFFERS {
            records.clear();
            self.spare_records.push(records);
        }
    }

    /// The next batch: at most `max_packets` records in a buffer of at most `max_bytes`
    /// (clamped to 1..=[`MAX_BATCH_BYTES`]), except that a record larger than `max_bytes`
    /// comes alone in a batch of its own size. `Ok(None)` at the end of the capture.
    ///
    /// On damage, the records before it come first (in this batch, or alone in the next one)
    /// and the error follows on the next call; after an error the reader is finished.
    pub fn next_batch(
        &mut self,
        max_packets: usize,
        max_bytes: usize,
    ) -> CaptureResult<Option<Batch>> {
        if let Some(e) = self.pending.take() {
            self.done = true;
            return Err(e);
        }
        if self.done {
            return Ok(None);
        }
        let max_packets = max_packets.max(1);
        let max_bytes = max_bytes.clamp(1, MAX_BATCH_BYTES);
        self.spare_limit = max_bytes.saturating_mul(2);

        let mut buf = std::mem::take(&mut self.stage);
        let mut len = std::mem::take(&mut self.stage_len);
        let mut file_offset = self.stage_offset;
        let first_record = self.next_record;
        let mut records = self.spare_records.pop().unwrap_or_default();
        records.clear();
        let mut pos = 0usize;
        let mut target = self.read_target(max_packets, max_bytes);

        loop {
            if len < target {
                let chunk_end = target.min(len.saturating_add(READ_CHUNK));
                self.source.fill(&mut buf, &mut len, chunk_end);
            }
            let stop = loop {
                if records.len() >= max_packets {
                    break Stop::Full;
                }
                // Once a record is in, nothing may take the batch past max_bytes.
                let limit = if records.is_empty() {
                    len
                } else {
                    len.min(max_bytes)
                };
                let window = buf.get(pos..limit).unwrap_or(&[]);
                let ctx = Ctx {
                    offset: file_offset + pos as u64,
                    record: self.next_record,
                };
                match self.parser.step(window, ctx) {
                    Ok(Step::Packet { consumed, mut desc }) => {
                        // Unreachable with buffers capped near 1 GiB, but never a wrong offset.
                        let Ok(at) = u32::try_from(pos + desc.data_offset as usize) else {
                            if records.is_empty() {
                                let what = "batch offset beyond 4 GiB";
                                break Stop::Error(CaptureError::malformed_record(
                                    "unreadable",
                                    ctx.record,
                                    ctx.offset,
                                    what,
                                ));
                            }
                            break Stop::Full;
                        };
                        desc.data_offset = at;
                        records.push(desc);
                        pos += consumed;
                        self.next_record += 1;
                    }
                    Ok(Step::Skip { consumed }) => pos += consumed,
                    Ok(Step::Incomplete { need }) => break Stop::Incomplete(need),
                    Err(e) => break Stop::Error(e),
                }
            };
            match stop {
                Stop::Full => break,
                Stop::Error(e) => {
                    if records.is_empty() {
                        self.done = true;
                        self.give_back(buf, records);
                        return Err(e);
                    }
                    // Deliver what came before the damage now, the error next time.
                    self.pending = Some(e);
                    len = pos;
                    break;
                }
                // More of this batch to read: parse it while it is still in cache.
                Stop::Incomplete(_) if len < target && !self.source.eof => {}
                Stop::Incomplete(_) if !records.is_empty() => break,
                Stop::Incomplete(need) => {
                    if self.source.eof {
                        return self.finish(buf, records, pos, len, file_offset);
                    }
                    // Drop consumed non-packet blocks, then grow toward the record: doubling
                    // means a damaged length field costs at most twice the bytes really there.
                    if pos > 0 {
                        buf.copy_within(pos..len, 0);
                        len -= pos;
                        file_offset += pos as u64;
                        pos = 0;
                    }
                    let grow = need.min(len.saturating_mul(2).max(len + INITIAL_READ));
                    target = grow.max(self.read_target(max_packets, max_bytes));
                }
            }
        }

        // Carry the unparsed tail (a partial record) into the next batch's buffer.
        let tail = buf.get(pos..len).unwrap_or(&[]);
        let mut stage = self.spare_buffers.pop().unwrap_or_default();
        if stage.len() < tail.len() {
            stage.resize(tail.len(), 0);
        }
        if let Some(dst) = stage.get_mut(..tail.len()) {
            dst.copy_from_slice(tail);
        }
        self.stage = stage;
        self.stage_len = tail.len();
        self.stage_offset = file_offset + pos as u64;
        self.parsed_bytes += pos as u64;
        Ok(Some(Batch {
            buf,
            len: pos,
            records,
            file_offset,
            first_record,
        }))
    }

    /// End of input with no record in hand: a clean end, an I/O error, or a truncated record.
    fn finish(
        &mut self,
        buf: Vec<u8>,
        records: Vec<RecordDesc>,
        pos: usize,
        len: usize,
        file_offset: u64,
    ) -> CaptureResult<Option<Batch>> {
        self.done = true;
        self.stage_offset = file_offset + pos as u64;
        let result = if let Some(e) = self.source.error.take() {
            let at = file_offset + len as u64;
            Err(CaptureError::io(self.next_record, at, "reading", &e))
        } else {
            match buf.get(pos..len) {
                Some(rest) if !rest.is_empty() => {
                    let ctx = Ctx {
                        offset: self.stage_offset,
                        record: self.next_record,
                    };
                    Err(self.parser.truncated(rest, ctx))
                }
                _ => Ok(None),
            }
        };
        self.give_back(buf, records);
        result
    }

    fn give_back(&mut self, buf: Vec<u8>, records: Vec<RecordDesc>) {
        let batch = Batch {
            buf,
            len: 0,
            records,
            file_offset: 0,
            first_record: 0,
        };
        self.recycle(batch);
    }

    /// How many bytes to read for a batch. A record takes at least 16 bytes, so a packet
    /// limit above `max_bytes / 16` cannot bind; below that, reading `max_bytes` would mostly
    /// read bytes only to copy them into the next batch, so read about what the packets need.
    fn read_target(&self, max_packets: usize, max_bytes: usize) -> usize {
        if max_packets >= max_bytes / 16 || self.next_record < 16 {
            return max_bytes;
        }
        let avg = (self.parsed_bytes / self.next_record).max(16) as usize;
        let estimate = max_packets
            .saturating_mul(avg + avg / 4)
            .saturating_add(4096);
        estimate.min(max_bytes)
    }

    /// Iterates over batches of the default size.
    pub fn batches(&mut self) -> Batches<'_, R> {
        self.batches_of(DEFAULT_BATCH_PACKETS, DEFAULT_BATCH_BYTES)
    }

    /// Iterates over batches of the given limits (see [`Self::next_batch`]).
    pub fn batches_of(&mut self, max_packets: usize, max_bytes: usize) -> Batches<'_, R> {
        Batches::new(self, max_packets, max_bytes)
    }

    /// Iterates over single packets, each copied into its own `Vec`: convenient for tests and
    /// tools, not for the replay path.
    pub fn packets(self) -> Packets<R> {
        Packets::new(self)
    }
}
