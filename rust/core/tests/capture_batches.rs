//! Batch limits, big records, bounded memory on a stream larger than the buffers, and
//! "nothing before the damage is lost" for I/O errors.

mod capture_common;

use std::io::Read;

use capture_common::{corpus_dir, pcap_bytes, read_all, read_file};
use wfpsim_core::capture::{CaptureErrorKind, CaptureReader, RecordDesc};

/// An endless-looking pcap generated on the fly: `count` records of varying size, each filled
/// with its index, so a stream far larger than any buffer costs no memory to produce.
struct GenPcap {
    count: u64,
    next: u64,
    pending: Vec<u8>,
    at: usize,
}

impl GenPcap {
    fn new(count: u64) -> Self {
        let mut header = Vec::new();
        for v in [0xA1B2_3C4Du32, 0x0004_0002, 0, 0, 65535, 1] {
            header.extend_from_slice(&v.to_le_bytes());
        }
        GenPcap {
            count,
            next: 0,
            pending: header,
            at: 0,
        }
    }
    fn size_of(i: u64) -> usize {
        60 + (i * 37 % 1455) as usize
    }
}

impl Read for GenPcap {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let mut done = 0;
        while done < out.len() {
            if self.at == self.pending.len() {
                if self.next == self.count {
                    break;
                }
                let i = self.next;
                let len = Self::size_of(i) as u32;
                self.pending.clear();
                for v in [(i / 1000) as u32, (i % 1000) as u32, len, len + 4] {
                    self.pending.extend_from_slice(&v.to_le_bytes());
                }
                self.pending.resize(16 + len as usize, i as u8);
                self.at = 0;
                self.next += 1;
            }
            let n = (self.pending.len() - self.at).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.pending[self.at..self.at + n]);
            self.at += n;
            done += n;
        }
        Ok(done)
    }
}

fn check_batch_limits(bytes: &[u8], max_packets: usize, max_bytes: usize) -> usize {
    let mut reader = CaptureReader::from_reader(bytes).unwrap();
    let mut total = 0;
    let mut batches = 0;
    while let Some(batch) = reader.next_batch(max_packets, max_bytes).unwrap() {
        assert!(!batch.is_empty() && batch.len() <= max_packets);
        assert!(
            batch.data().len() <= max_bytes || batch.len() == 1,
            "{} bytes in a batch of {} records, limit {max_bytes}",
            batch.data().len(),
            batch.len()
        );
        assert_eq!(batch.first_record(), total as u64);
        for d in batch.records() {
            let end = d.data_offset as usize + d.caplen as usize;
            assert!(end <= batch.data().len());
        }
        total += batch.len();
        batches += 1;
        reader.recycle(batch);
    }
    assert_eq!(reader.records_read(), total as u64);
    batches
}

#[test]
fn batches_respect_max_packets_and_max_bytes() {
    let Some(dir) = corpus_dir() else { return };
    for name in [
        "zeek/ftp/cwd-navigation.pcap",
        "tcpdump/of13_ericsson.pcapng",
        "tcpdump/pptp.pcap",
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let (clean, _) = read_file(&dir.join(name));
        for (mp, mb) in [
            (1, 1),
            (1, 1 << 20),
            (3, 100),
            (7, 2000),
            (1000, 4096),
            (64, 65536),
            (100_000, 8 << 20),
        ] {
            let batches = check_batch_limits(&bytes, mp, mb);
            let (again, err) = read_all(bytes.as_slice(), mp, mb);
            assert!(err.is_none());
            assert_eq!(again, clean, "{name} with limits ({mp}, {mb})");
            assert!(batches >= clean.len().div_ceil(mp));
        }
    }
}

#[test]
fn a_record_larger_than_the_batch_gets_a_batch_of_its_own() {
    let big = vec![0xEE; 10_000];
    let small = [0x11u8; 100];
    let recs: Vec<(u32, u32, u32, &[u8])> = vec![
        (1, 0, 100, &small),
        (2, 0, 100, &small),
        (3, 0, 10_000, &big),
        (4, 0, 100, &small),
    ];
    let f = pcap_bytes(false, false, 1, &recs);
    let mut reader = CaptureReader::from_reader(f.as_slice()).unwrap();
    let mut shapes = Vec::new();
    while let Some(b) = reader.next_batch(100, 4096).unwrap() {
        shapes.push((b.len(), b.data().len()));
        if b.len() == 1 && b.records()[0].caplen == 10_000 {
            assert_eq!(b.packet(&b.records()[0]), big.as_slice());
        }
    }
    assert_eq!(shapes, [(2, 232), (1, 10_016), (1, 116)]);
}

#[test]
fn a_stream_larger_than_the_buffer_is_read_in_bounded_memory() {
    let count = 100_000; // ~78 MB generated on the fly
    let max_bytes = 256 << 10;
    let mut reader = CaptureReader::from_reader(GenPcap::new(count)).unwrap();
    let (mut n, mut bytes, mut max_retained, mut max_cap) = (0u64, 0u64, 0usize, 0usize);
    while let Some(batch) = reader.next_batch(4096, max_bytes).unwrap() {
        for (d, data) in batch.iter() {
            assert_eq!(d.caplen as usize, GenPcap::size_of(n));
            assert_eq!(
                (d.orig_len, d.ts_ns),
                (d.caplen + 4, (n / 1000 * 1_000_000_000 + n % 1000) as i64)
            );
            assert!(data.iter().all(|&b| b == n as u8));
            n += 1;
            bytes += u64::from(d.caplen);
        }
        let (buf, records) = batch.into_parts();
        max_cap = max_cap.max(buf.capacity());
        max_retained = max_retained.max(reader.retained_capacity());
        // Give the buffers back so the reader reuses them.
        drop(records);
        drop(buf);
    }
    assert_eq!(n, count);
    assert!(bytes > 70_000_000);
    assert!(max_cap <= max_bytes, "batch buffer grew to {max_cap}");
    assert!(max_retained <= 3 * max_bytes + 4096 * std::mem::size_of::<RecordDesc>() * 2);
    println!("{n} records, {bytes} bytes, largest batch buffer {max_cap}, reader retained <= {max_retained}");
}

#[test]
fn recycled_buffers_keep_memory_flat() {
    let max_bytes = 128 << 10;
    let mut reader = CaptureReader::from_reader(GenPcap::new(30_000)).unwrap();
    let mut worst = 0;
    while let Some(batch) = reader.next_batch(512, max_bytes).unwrap() {
        assert!(batch.data().len() <= max_bytes);
        reader.recycle(batch);
        worst = worst.max(reader.retained_capacity());
    }
    assert!(
        worst <= 3 * max_bytes + 2 * 512 * std::mem::size_of::<RecordDesc>(),
        "{worst}"
    );
}

/// A reader that fails after `ok` bytes.
struct Failing<'a> {
    data: &'a [u8],
    ok: usize,
}

impl Read for Failing<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.ok == 0 {
            return Err(std::io::Error::other("disk on fire"));
        }
        let n = out.len().min(self.ok).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.ok -= n;
        Ok(n)
    }
}

#[test]
fn an_io_error_comes_after_the_packets_read_before_it() {
    let recs: Vec<(u32, u32, u32, &[u8])> = (0..10).map(|i| (i, 0, 50, &[7u8; 50][..])).collect();
    let f = pcap_bytes(false, false, 1, &recs);
    // 24 + 3 records of 66 bytes + part of the fourth.
    let (got, err) = read_all(
        Failing {
            data: &f,
            ok: 24 + 3 * 66 + 10,
        },
        100,
        1 << 20,
    );
    assert_eq!(got.len(), 3);
    let err = err.expect("io error");
    assert_eq!(err.kind, CaptureErrorKind::Io);
    assert_eq!((err.record, err.offset), (3, 24 + 3 * 66 + 10));
    assert!(
        err.message.contains("disk on fire") && err.message.contains("record 3"),
        "{err}"
    );
}

#[test]
fn damage_is_reported_after_the_batch_holding_the_records_before_it() {
    let recs: Vec<(u32, u32, u32, &[u8])> = (0..6).map(|i| (i, 0, 10, &[1u8; 10][..])).collect();
    let mut f = pcap_bytes(false, false, 1, &recs);
    let rec4 = 24 + 4 * 26;
    f[rec4 + 8..rec4 + 12].copy_from_slice(&5000u32.to_le_bytes());
    let mut reader = CaptureReader::from_reader(f.as_slice()).unwrap();
    let first = reader.next_batch(100, 1 << 20).unwrap().expect("batch");
    assert_eq!(first.len(), 4);
    let err = reader.next_batch(100, 1 << 20).unwrap_err();
    assert_eq!(
        err.message,
        format!("truncated record 4 at byte offset {rec4}: header says 5000 bytes, 36 remain")
    );
    assert_eq!((err.record, err.offset), (4, rec4 as u64));
    assert!(reader.next_batch(100, 1 << 20).unwrap().is_none());
}

#[test]
fn the_packet_iterator_yields_the_error_once() {
    let recs: Vec<(u32, u32, u32, &[u8])> = (0..3).map(|i| (i, 0, 2, &b"hi"[..])).collect();
    let f = pcap_bytes(false, true, 1, &recs);
    let reader = CaptureReader::from_reader(&f[..f.len() - 1]).unwrap();
    let items: Vec<_> = reader.into_iter().collect();
    assert_eq!(items.len(), 3);
    assert!(items[..2]
        .iter()
        .all(|p| p.as_ref().is_ok_and(|p| p.data == b"hi")));
    assert!(items[2].as_ref().is_err_and(|e| e.record == 2));
}

#[test]
fn pcapng_blocks_larger_than_the_batch_are_crossed() {
    let mut ng = capture_common::Ng::new(false);
    ng.idb(1, 0, &[(9, vec![9])]);
    for i in 0..5u64 {
        ng.epb(0, i, 100, &[i as u8; 100]);
    }
    ng.block(4, &vec![0u8; 10_000]); // a name-resolution block bigger than the batch
    ng.epb(0, 5, 9000, &[5; 9000]); // a packet bigger than the batch
    ng.idb(101, 0, &[]); // an interface described mid-file
    for i in 6..9u64 {
        ng.epb(1, i, 50, &[i as u8; 50]);
    }
    let (clean, err) = read_all(ng.bytes.as_slice(), 1000, 1 << 20);
    assert!(err.is_none());
    assert_eq!(clean.len(), 9);
    assert_eq!((clean[8].link_type.code(), clean[8].interface_id), (101, 1));
    for (mp, mb) in [(1, 1), (2, 300), (1000, 4096)] {
        check_batch_limits(&ng.bytes, mp, mb);
        let (got, err) = read_all(ng.bytes.as_slice(), mp, mb);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(got, clean, "limits ({mp}, {mb})");
    }
}
