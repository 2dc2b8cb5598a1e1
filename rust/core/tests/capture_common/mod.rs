//! Helpers shared by the capture test files: the corpus location, a full read into owned
//! records, and small builders for synthetic captures.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;

use wfpsim_core::capture::{CaptureError, CaptureReader, LinkType};

/// `shared/data/pcaps` beside the clone, or `None` (with a note) when CI has no `shared/`.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/pcaps");
    if dir.join("manifest.json").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "note: capture corpus not found at {}; skipping",
            dir.display()
        );
        None
    }
}

/// The manifest's `files` array.
pub fn manifest(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("manifest.json")).expect("manifest.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("manifest parses");
    v["files"].as_array().expect("files array").clone()
}

/// One record, owned, with every field a round trip must keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    pub ts_ns: i64,
    pub orig_len: u32,
    pub link_type: LinkType,
    pub interface_id: u32,
    pub data: Vec<u8>,
}

/// Reads everything through the batch API; returns the records and the error, if any.
pub fn read_all<R: Read>(
    r: R,
    max_packets: usize,
    max_bytes: usize,
) -> (Vec<Rec>, Option<CaptureError>) {
    let mut out = Vec::new();
    let mut reader = match CaptureReader::from_reader(r) {
        Ok(r) => r,
        Err(e) => return (out, Some(e)),
    };
    loop {
        match reader.next_batch(max_packets, max_bytes) {
            Ok(Some(batch)) => {
                for (d, bytes) in batch.iter() {
                    assert_eq!(bytes.len(), d.caplen as usize);
                    out.push(Rec {
                        ts_ns: d.ts_ns,
                        orig_len: d.orig_len,
                        link_type: d.link_type,
                        interface_id: d.interface_id,
                        data: bytes.to_vec(),
                    });
                }
                reader.recycle(batch);
            }
            Ok(None) => return (out, None),
            Err(e) => {
                // The reader is finished after an error.
                assert!(matches!(
                    reader.next_batch(max_packets, max_bytes),
                    Ok(None)
                ));
                return (out, Some(e));
            }
        }
    }
}

pub fn read_file(path: &std::path::Path) -> (Vec<Rec>, Option<CaptureError>) {
    read_all(std::fs::File::open(path).expect("open"), 4096, 1 << 20)
}

/// Builds a pcap (little-endian unless `big`) from (ts_sec, ts_frac, orig_len, data).
pub fn pcap_bytes(big: bool, nanos: bool, link: u32, recs: &[(u32, u32, u32, &[u8])]) -> Vec<u8> {
    let w32 = |v: u32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let w16 = |v: u16| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut f = Vec::new();
    f.extend_from_slice(&w32(if nanos { 0xA1B2_3C4D } else { 0xA1B2_C3D4 }));
    f.extend_from_slice(&w16(2));
    f.extend_from_slice(&w16(4));
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&w32(65535));
    f.extend_from_slice(&w32(link));
    for (sec, frac, orig, data) in recs {
        f.extend_from_slice(&w32(*sec));
        f.extend_from_slice(&w32(*frac));
        f.extend_from_slice(&w32(data.len() as u32));
        f.extend_from_slice(&w32(*orig));
        f.extend_from_slice(data);
    }
    f
}

/// pcapng block builder in either byte order.
pub struct Ng {
    pub big: bool,
    pub bytes: Vec<u8>,
}

impl Ng {
    pub fn new(big: bool) -> Ng {
        let mut ng = Ng {
            big,
            bytes: Vec::new(),
        };
        ng.shb();
        ng
    }
    pub fn u16(&self, v: u16) -> [u8; 2] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    pub fn u32(&self, v: u32) -> [u8; 4] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }
    pub fn block(&mut self, kind: u32, body: &[u8]) -> &mut Self {
        let mut body = body.to_vec();
        while !body.len().is_multiple_of(4) {
            body.push(0);
        }
        let total = (body.len() + 12) as u32;
        let (k, t) = (self.u32(kind), self.u32(total));
        self.bytes.extend_from_slice(&k);
        self.bytes.extend_from_slice(&t);
        self.bytes.extend_from_slice(&body);
        self.bytes.extend_from_slice(&t);
        self
    }
    pub fn shb(&mut self) -> &mut Self {
        let mut body = self.u32(0x1A2B_3C4D).to_vec();
        body.extend_from_slice(&self.u16(1));
        body.extend_from_slice(&self.u16(0));
        body.extend_from_slice(&[0xFF; 8]);
        self.block(0x0A0D_0D0A, &body)
    }
    /// IDB with optional (code, value) options.
    pub fn idb(&mut self, link: u16, snaplen: u32, opts: &[(u16, Vec<u8>)]) -> &mut Self {
        let mut body = self.u16(link).to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&self.u32(snaplen));
        for (code, val) in opts {
            body.extend_from_slice(&self.u16(*code));
            body.extend_from_slice(&self.u16(val.len() as u16));
            body.extend_from_slice(val);
            while !body.len().is_multiple_of(4) {
                body.push(0);
            }
        }
        if !opts.is_empty() {
            body.extend_from_slice(&[0; 4]);
        }
        self.block(1, &body)
    }
    pub fn epb(&mut self, iface: u32, ts: u64, orig: u32, data: &[u8]) -> &mut Self {
        let mut body = self.u32(iface).to_vec();
        body.extend_from_slice(&self.u32((ts >> 32) as u32));
        body.extend_from_slice(&self.u32(ts as u32));
        body.extend_from_slice(&self.u32(data.len() as u32));
        body.extend_from_slice(&self.u32(orig));
        body.extend_from_slice(data);
        self.block(6, &body)
    }
    pub fn spb(&mut self, orig: u32, data: &[u8]) -> &mut Self {
        let mut body = self.u32(orig).to_vec();
        body.extend_from_slice(data);
        self.block(3, &body)
    }
    pub fn pb(&mut self, iface: u16, ts: u64, orig: u32, data: &[u8]) -> &mut Self {
        let mut body = self.u16(iface).to_vec();
        body.extend_from_slice(&self.u16(0));
        body.extend_from_slice(&self.u32((ts >> 32) as u32));
        body.extend_from_slice(&self.u32(ts as u32));
        body.extend_from_slice(&self.u32(data.len() as u32));
        body.extend_from_slice(&self.u32(orig));
        body.extend_from_slice(data);
        self.block(2, &body)
    }
}
