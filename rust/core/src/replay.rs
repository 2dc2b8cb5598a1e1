//! The bridge between capture files and NBL chains: a capture batch becomes a chain of NBLs
//! over the batch's own buffer (one NBL per record, zero copy), and a chain is written back
//! record by record from its NBs' data as it lies, with each NBL's replay metadata.

use crate::bytes::Segmented;
use crate::capture::{Batch, LinkType, PcapWriter, PcapngWriter};
use crate::heap::{Heap, NblId, PacketMeta, SiteId};
use crate::memory::{Buffer, BufferPool};
use crate::{Error, ErrorKind, Result};

impl Heap {
    /// One NBL per record of `batch`, over the batch buffer (which the chain now owns; with a
    /// `pool`, the buffer goes back to it once the chain is freed).
    pub fn chain_from_batch(
        &mut self,
        batch: Batch,
        pool: Option<&BufferPool>,
        site: SiteId,
    ) -> Result<Vec<NblId>> {
        let (data, records) = batch.into_parts();
        let buffer = match pool {
            Some(p) => Buffer::pooled(data, p),
            None => Buffer::owned(data),
        };
        let mut offsets = Vec::with_capacity(records.len());
        let mut lengths = Vec::with_capacity(records.len());
        let mut metas = Vec::with_capacity(records.len());
        for r in &records {
            offsets.push(r.data_offset as u64);
            lengths.push(r.caplen);
            metas.push(PacketMeta {
                ts_ns: r.ts_ns,
                orig_len: r.orig_len,
                link_type: r.link_type.0,
                interface_id: r.interface_id,
            });
        }
        self.build_chain(&buffer, &offsets, &lengths, Some(&metas), site)
    }

    /// Calls `write(meta, data)` for every NB of the chain, in order; returns how many. With
    /// `delivered_only`, NBLs whose `Status` is a failure (refused or failed injections) are
    /// skipped: what reaches the output is what left.
    pub fn for_each_record(
        &self,
        head: NblId,
        delivered_only: bool,
        write: &mut dyn FnMut(PacketMeta, &dyn Segmented) -> Result<()>,
    ) -> Result<u64> {
        let mut n = 0u64;
        for nbl in self.chain_of(head)? {
            let meta = self.nbl(nbl)?.meta;
            if delivered_only && !crate::status::nt_success(self.nbl(nbl)?.status) {
                continue;
            }
            for nb in self.nbs_of(nbl)? {
                let pieces = self.nb_pieces(nb)?;
                let caplen = pieces.total_len() as u32;
                // A record's original length is never below what it carries.
                let meta = PacketMeta {
                    orig_len: meta.orig_len.max(caplen),
                    ..meta
                };
                write(meta, &pieces)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// A capture output of either format.
pub enum RecordWriter<W: std::io::Write> {
    Pcap(PcapWriter<W>),
    Pcapng(PcapngWriter<W>),
}

impl<W: std::io::Write> RecordWriter<W> {
    pub fn write(&mut self, meta: PacketMeta, data: &dyn Segmented) -> Result<()> {
        let r = match self {
            RecordWriter::Pcap(w) => {
                w.write_packet(LinkType(meta.link_type), meta.ts_ns, meta.orig_len, data)
            }
            RecordWriter::Pcapng(w) => {
                w.write_packet(LinkType(meta.link_type), meta.ts_ns, meta.orig_len, data)
            }
        };
        r.map_err(|e| Error::new(ErrorKind::Io, None, e.to_string()))
    }
}
