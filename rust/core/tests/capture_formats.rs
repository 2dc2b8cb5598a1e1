//! Format details the corpus does not cover: pcap in both byte orders and precisions with FCS
//! bits and unknown link types, pcapng sections of both byte orders, time resolutions and
//! offsets, SPB/PB, skipped blocks, and precise errors.

mod capture_common;

use capture_common::{pcap_bytes, read_all, Ng};
use wfpsim_core::capture::{
    CaptureErrorKind, CaptureFormat, CaptureReader, Endian, LinkType, PcapPrecision, PcapWriter,
    TsResolution,
};
use wfpsim_core::{Error, ErrorKind};

#[test]
fn pcap_both_byte_orders_and_precisions() {
    let recs: [(u32, u32, u32, &[u8]); 2] = [(1, 999_999, 4, b"abcd"), (u32::MAX, 7, 9, b"xyz")];
    for big in [false, true] {
        for nanos in [false, true] {
            let f = pcap_bytes(big, nanos, 1, &recs);
            let r = CaptureReader::from_reader(f.as_slice()).unwrap();
            let CaptureFormat::Pcap(h) = r.format() else {
                panic!("pcap")
            };
            assert_eq!(
                (h.endian == Endian::Big, h.nanos, h.snaplen),
                (big, nanos, 65535)
            );
            let (got, err) = read_all(f.as_slice(), 10, 1 << 16);
            assert!(err.is_none());
            let unit = if nanos { 1 } else { 1000 };
            assert_eq!(got[0].ts_ns, 1_000_000_000 + 999_999 * unit);
            assert_eq!(got[1].ts_ns, i64::from(u32::MAX) * 1_000_000_000 + 7 * unit);
            assert_eq!((got[1].orig_len, got[1].data.as_slice()), (9, &b"xyz"[..]));
        }
    }
}

#[test]
fn fcs_bits_and_unknown_link_types_are_carried_through() {
    let with_fcs = 0x2400_0001; // EN10MB, FCS present, 2 x 16 bits
    for link in [with_fcs, 147, 65000] {
        let f = pcap_bytes(false, false, link, &[(5, 6, 100, b"frame")]);
        let (got, _) = read_all(f.as_slice(), 10, 1 << 16);
        assert_eq!(got[0].link_type, LinkType(link));
        let mut w =
            PcapWriter::new(Vec::new(), LinkType(link), 65535, PcapPrecision::Micro).unwrap();
        w.write_packet(got[0].link_type, got[0].ts_ns, 100, got[0].data.as_slice())
            .unwrap();
        assert_eq!(w.finish().unwrap(), f, "written back byte for byte");
    }
    assert_eq!(LinkType(with_fcs).fcs_len(), Some(4));
}

#[test]
fn pcapng_sections_resolutions_and_offsets() {
    let mut ng = Ng::new(true); // big-endian section
    ng.idb(1, 0, &[]) // default µs
        .idb(101, 0, &[(9, vec![9])]) // ns
        .idb(
            1,
            0,
            &[(9, vec![0x8A]), (14, 1_000u64.to_be_bytes().to_vec())],
        ) // 2^-10 s, +1000 s
        .epb(0, 1_500_000, 60, &[1; 60])
        .epb(1, 1_234_567_890_123, 20, &[0x45; 20])
        .epb(2, 1024 * 3 + 1, 4, &[2; 4])
        .block(4, &[0; 4]) // NRB
        .block(0x99, &[1, 2, 3]) // unknown
        .block(0x0A, &[0; 8]) // DSB
        .block(0x0BAD, &[0; 8]) // custom
        .block(5, &[0; 12]); // ISB
    let mut second = Ng::new(false); // little-endian section, interface numbering restarts
    second
        .idb(
            228,
            64,
            &[(9, vec![3]), (14, (-2i64).to_le_bytes().to_vec())],
        )
        .spb(100, &[0x45; 100]) // cut to the snaplen 64
        .pb(0, 5, 30, &[0x45; 30])
        .epb(0, 7, 2, &[0x45, 0]);
    ng.bytes.extend_from_slice(&second.bytes);

    let (got, err) = read_all(ng.bytes.as_slice(), 100, 1 << 16);
    assert!(err.is_none(), "{err:?}");
    let summary: Vec<(i64, u32, u32, usize, u32)> = got
        .iter()
        .map(|r| {
            (
                r.ts_ns,
                r.interface_id,
                r.link_type.0,
                r.data.len(),
                r.orig_len,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1_500_000_000, 0, 1, 60, 60),
            (1_234_567_890_123, 1, 101, 20, 20),
            (1_000_000_000_000 + 3_000_000_000 + 976_562, 2, 1, 4, 4),
            (0, 3, 228, 64, 100), // SPB: no timestamp
            (-2_000_000_000 + 5_000_000, 3, 228, 30, 30),
            (-2_000_000_000 + 7_000_000, 3, 228, 2, 2),
        ]
    );
    let reader = {
        let mut r = CaptureReader::from_reader(ng.bytes.as_slice()).unwrap();
        while r.next_batch(100, 1 << 16).unwrap().is_some() {}
        r
    };
    assert_eq!(reader.interfaces().len(), 4);
    assert_eq!(
        reader.interfaces()[2].ts_resolution,
        TsResolution::Binary(10)
    );
    assert_eq!(reader.interfaces()[3].ts_offset_secs, -2);
}

#[test]
fn pcapng_epb_options_and_fcs_length() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[(13, vec![32]), (2, b"eth0".to_vec())]);
    // EPB with an epb_flags option after the padded data.
    let mut body = Vec::new();
    for v in [0u32, 0, 10, 5, 5] {
        body.extend_from_slice(&v.to_le_bytes());
    }
    body.extend_from_slice(&[9; 5]);
    body.extend_from_slice(&[0; 3]);
    body.extend_from_slice(&[2, 0, 4, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    ng.block(6, &body);
    let (got, err) = read_all(ng.bytes.as_slice(), 10, 1 << 16);
    assert!(err.is_none());
    assert_eq!(got[0].data, [9; 5]);
    assert_eq!(got[0].ts_ns, 10_000);
    assert_eq!(got[0].link_type, LinkType::EN10MB.with_fcs_len(Some(4)));
}

fn first_error(bytes: &[u8]) -> (usize, String) {
    let (got, err) = read_all(bytes, 100, 1 << 16);
    (got.len(), err.expect("an error").to_string())
}

#[test]
fn damaged_pcapng_blocks_are_named_with_record_and_offset() {
    let base = {
        let mut ng = Ng::new(false);
        ng.idb(1, 0, &[]).epb(0, 1, 4, &[1; 4]);
        ng
    };
    // 1. EPB on an interface that was never described.
    let mut ng = Ng {
        big: false,
        bytes: base.bytes.clone(),
    };
    ng.epb(3, 1, 4, &[1; 4]);
    let (n, msg) = first_error(&ng.bytes);
    assert_eq!(n, 1);
    assert_eq!(
        msg,
        "bad record 1 at byte offset 84: Enhanced Packet Block refers to interface 3, but its \
         section has described 1"
    );
    // 2. Trailer length disagrees with the header.
    let mut bytes = base.bytes.clone();
    let end = bytes.len();
    bytes[end - 4] = 0x99;
    let (n, msg) = first_error(&bytes);
    assert_eq!(n, 0);
    assert!(msg == "bad record 0 at byte offset 48: Enhanced Packet Block length is 36 bytes at its start but 153 at its end", "{msg}");
    // 3. Captured length overruns the block.
    let mut bytes = base.bytes.clone();
    bytes[48 + 20] = 200;
    let (_, msg) = first_error(&bytes);
    assert!(
        msg.contains("captured length 200 overruns the block, which has room for 4 bytes"),
        "{msg}"
    );
    // 4. IDB option runs past the block.
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[(9, vec![6])]);
    let opt_len_at = 28 + 8 + 8 + 2;
    ng.bytes[opt_len_at] = 40;
    let (_, msg) = first_error(&ng.bytes);
    assert!(
        msg.starts_with("bad Interface Description Block at byte offset 28 (before record 0): option 9 of 40 bytes"),
        "{msg}"
    );
    // 5. Truncated mid-block at end of file.
    let cut = &base.bytes[..base.bytes.len() - 10];
    let (n, msg) = first_error(cut);
    assert_eq!(n, 0);
    assert_eq!(
        msg,
        "truncated record 0 at byte offset 48: Enhanced Packet Block header says 36 bytes, 26 remain"
    );
    // 6. Byte-order magic damaged.
    let mut bytes = base.bytes.clone();
    bytes[8] = 0;
    let (_, msg) = first_error(&bytes);
    assert!(msg.contains("byte-order magic"), "{msg}");
    // 7. An unsupported time resolution is named.
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[(9, vec![0xC0])]);
    let err = read_all(ng.bytes.as_slice(), 10, 1 << 16).1.expect("error");
    assert_eq!(err.kind, CaptureErrorKind::Unsupported);
    assert!(err.message.contains("Binary(64)"), "{err}");
}

#[test]
fn damaged_pcap_records_and_headers() {
    let recs: [(u32, u32, u32, &[u8]); 3] =
        [(1, 0, 4, b"aaaa"), (2, 0, 4, b"bbbb"), (3, 0, 4, b"cccc")];
    let f = pcap_bytes(false, false, 1, &recs);
    // Record 2 starts at 24 + 2 * 20 = 64; cut 1 byte into its data.
    let (n, msg) = first_error(&f[..64 + 17]);
    assert_eq!(n, 2);
    assert_eq!(
        msg,
        "truncated record 2 at byte offset 64: header says 4 bytes, 1 remain"
    );
    let (n, msg) = first_error(&f[..64 + 5]);
    assert_eq!(n, 2);
    assert_eq!(
        msg,
        "truncated header of record 2 at byte offset 64: a record header is 16 bytes, 5 remain"
    );
    let mut bad = f.clone();
    bad[44 + 8..44 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let (n, msg) = first_error(&bad);
    assert_eq!(n, 1);
    assert!(
        msg.starts_with("bad record 1 at byte offset 44: header says 4294967295 captured bytes"),
        "{msg}"
    );

    let e = CaptureReader::from_reader(&b"\x00\x01\x02\x03rest-of-file-rest-of-file"[..])
        .err()
        .unwrap();
    assert_eq!(
        e.message,
        "unrecognised capture format at byte offset 0 (before record 0): magic 00010203; \
         expected pcap (a1b2c3d4 or a1b23c4d, either byte order) or pcapng (0a0d0d0a)"
    );
    let e = CaptureReader::from_reader(&b""[..]).err().unwrap();
    assert!(e.message.contains("0 bytes"), "{e}");
    let e = CaptureReader::from_reader(&f[..20]).err().unwrap();
    assert!(e.message.contains("truncated pcap file header"), "{e}");
    let mut v3 = f.clone();
    v3[4] = 3;
    let e = CaptureReader::from_reader(v3.as_slice()).err().unwrap();
    assert_eq!(e.kind, CaptureErrorKind::Unsupported);
    // Converts into the engine-wide error with the same message.
    let engine: Error = CaptureReader::from_reader(&f[..3]).err().unwrap().into();
    assert_eq!(engine.kind, ErrorKind::Malformed);
    assert!(engine.message.contains("byte offset 0"));
}

#[test]
fn open_names_the_missing_path() {
    let e = CaptureReader::open("/nonexistent/wfpsim/x.pcap")
        .err()
        .unwrap();
    assert_eq!(e.kind, CaptureErrorKind::Io);
    assert!(e.message.contains("/nonexistent/wfpsim/x.pcap"), "{e}");
}
