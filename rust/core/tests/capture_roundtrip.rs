//! Read -> write (pcap-ns, pcapng) -> read keeps every record's bytes, lengths, link type and
//! exact timestamp, for every real capture; pieces written from MDL-like fragments produce the
//! same file as one slice.

mod capture_common;

use capture_common::{corpus_dir, manifest, read_all, read_file, Rec};
use wfpsim_core::bytes::Pieces;
use wfpsim_core::capture::{
    CaptureErrorKind, CaptureReader, LinkType, PcapPrecision, PcapWriter, PcapngWriter,
};

fn write_pcap(recs: &[Rec], precision: PcapPrecision) -> Vec<u8> {
    let lt = recs.first().map_or(LinkType::EN10MB, |r| r.link_type);
    let mut w = PcapWriter::new(Vec::new(), lt, 0, precision).expect("header");
    for r in recs {
        w.write_packet(r.link_type, r.ts_ns, r.orig_len, r.data.as_slice())
            .expect("record");
    }
    w.finish().expect("finish")
}

fn write_pcapng(recs: &[Rec]) -> Vec<u8> {
    let mut w = PcapngWriter::new(Vec::new()).expect("shb");
    for r in recs {
        w.write_packet(r.link_type, r.ts_ns, r.orig_len, r.data.as_slice())
            .expect("record");
    }
    w.finish().expect("finish")
}

/// Everything but the interface id, which a writer numbers its own way.
fn same(a: &[Rec], b: &[Rec]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            (x.ts_ns, x.orig_len, x.link_type, &x.data)
                == (y.ts_ns, y.orig_len, y.link_type, &y.data)
        })
}

#[test]
fn corpus_round_trips_through_pcap_ns_and_pcapng() {
    let Some(dir) = corpus_dir() else { return };
    let mut n = 0;
    for f in manifest(&dir) {
        let name = f["file"].as_str().expect("file");
        let (recs, err) = read_file(&dir.join(name));
        assert!(err.is_none(), "{name}: {err:?}");

        let ns = write_pcap(&recs, PcapPrecision::Nano);
        let (back, err) = read_all(ns.as_slice(), 1000, 1 << 16);
        assert!(
            err.is_none() && same(&recs, &back),
            "{name}: pcap-ns round trip"
        );

        let ng = write_pcapng(&recs);
        let (back, err) = read_all(ng.as_slice(), 1000, 1 << 16);
        assert!(
            err.is_none() && same(&recs, &back),
            "{name}: pcapng round trip"
        );
        // ... and back to pcap-ns from the pcapng copy.
        let again = write_pcap(&back, PcapPrecision::Nano);
        assert_eq!(again, ns, "{name}: pcap-ns written from the pcapng copy");

        // Microsecond captures survive a microsecond pcap exactly as well.
        if recs.iter().all(|r| r.ts_ns % 1000 == 0) {
            let us = write_pcap(&recs, PcapPrecision::Micro);
            let (back, err) = read_all(us.as_slice(), 1000, 1 << 16);
            assert!(
                err.is_none() && same(&recs, &back),
                "{name}: pcap-µs round trip"
            );
        }
        n += 1;
    }
    println!("{n} captures round-tripped");
}

#[test]
fn nanosecond_capture_refuses_a_microsecond_file_unless_told_to_truncate() {
    let Some(dir) = corpus_dir() else { return };
    let (recs, _) = read_file(&dir.join("tcpdump/tcp-handshake-nano.pcap"));
    assert!(
        recs.iter().any(|r| r.ts_ns % 1000 != 0),
        "the file has sub-µs digits"
    );
    let lt = recs[0].link_type;
    let mut w = PcapWriter::new(Vec::new(), lt, 0, PcapPrecision::Micro).expect("header");
    let bad = recs
        .iter()
        .find(|r| r.ts_ns % 1000 != 0)
        .expect("sub-µs record");
    let before = w.bytes_written();
    let err = w
        .write_packet(lt, bad.ts_ns, bad.orig_len, bad.data.as_slice())
        .unwrap_err();
    assert_eq!(err.kind, CaptureErrorKind::InvalidInput);
    assert!(err.message.contains("sub-microsecond"), "{err}");
    assert_eq!(w.bytes_written(), before, "a refused record writes nothing");

    let lossy = write_pcap(&recs, PcapPrecision::MicroTruncating);
    let (back, _) = read_all(lossy.as_slice(), 10, 1 << 16);
    for (a, b) in recs.iter().zip(&back) {
        assert_eq!(b.ts_ns, a.ts_ns.div_euclid(1000) * 1000);
    }
}

#[test]
fn pieces_write_the_same_bytes_as_one_slice() {
    let Some(dir) = corpus_dir() else { return };
    let (recs, _) = read_file(&dir.join("dpkt/http.pcap"));
    let flat_pcap = write_pcap(&recs, PcapPrecision::Nano);
    let flat_ng = write_pcapng(&recs);
    let mut pcap = PcapWriter::new(Vec::new(), recs[0].link_type, 0, PcapPrecision::Nano).unwrap();
    let mut ng = PcapngWriter::new(Vec::new()).unwrap();
    for r in &recs {
        let mut data = r.data.clone();
        // Uneven pieces, one empty, as an NB's MDL chain can have.
        let (a, rest) = data.split_at_mut(r.data.len() / 3);
        let (b, c) = rest.split_at_mut(rest.len() / 2);
        let mut empty: [u8; 0] = [];
        let pieces = Pieces::new(vec![a, &mut empty, b, c]);
        let dynamic: &dyn wfpsim_core::bytes::Segmented = &pieces;
        pcap.write_packet(r.link_type, r.ts_ns, r.orig_len, dynamic)
            .unwrap();
        ng.write_packet(r.link_type, r.ts_ns, r.orig_len, &pieces)
            .unwrap();
    }
    assert_eq!(pcap.finish().unwrap(), flat_pcap);
    assert_eq!(ng.finish().unwrap(), flat_ng);
}

#[test]
fn pcapng_writer_describes_each_link_type_once() {
    let recs = [
        (LinkType::EN10MB, vec![0u8; 60]),
        (LinkType::RAW, vec![0x45; 20]),
        (LinkType::EN10MB.with_fcs_len(Some(4)), vec![1u8; 64]),
        (LinkType(147), vec![7u8; 3]),
        (LinkType::RAW, vec![0x60; 40]),
    ];
    let mut w = PcapngWriter::new(Vec::new()).unwrap();
    for (i, (lt, data)) in recs.iter().enumerate() {
        w.write_packet(
            *lt,
            1_700_000_000_123_456_789 + i as i64,
            data.len() as u32,
            data.as_slice(),
        )
        .unwrap();
    }
    assert_eq!(w.interfaces().len(), 4);
    let file = w.finish().unwrap();
    let reader = CaptureReader::from_reader(file.as_slice()).unwrap();
    let got: Vec<_> = reader.packets().map(|p| p.unwrap()).collect();
    let ids: Vec<u32> = got.iter().map(|p| p.interface_id).collect();
    assert_eq!(ids, [0, 1, 2, 3, 1]);
    for (i, (p, (lt, data))) in got.iter().zip(&recs).enumerate() {
        assert_eq!((p.link_type, &p.data), (*lt, data));
        assert_eq!(p.ts_ns, 1_700_000_000_123_456_789 + i as i64);
    }
}

#[test]
fn writers_refuse_what_the_format_cannot_hold() {
    let mut w = PcapWriter::new(Vec::new(), LinkType::EN10MB, 100, PcapPrecision::Nano).unwrap();
    let e = w
        .write_packet(LinkType::RAW, 0, 1, [0x45u8].as_slice())
        .unwrap_err();
    assert!(e.message.contains("one link type"), "{e}");
    let e = w
        .write_packet(LinkType::EN10MB, 0, 200, [0u8; 101].as_slice())
        .unwrap_err();
    assert!(e.message.contains("snaplen 100"), "{e}");
    let e = w
        .write_packet(LinkType::EN10MB, -1, 1, [0u8].as_slice())
        .unwrap_err();
    assert!(e.message.contains("1970..2106"), "{e}");
    w.write_packet(LinkType::EN10MB, 5, 1, [0u8].as_slice())
        .unwrap();
    assert_eq!(w.records_written(), 1);
    let e = w
        .write_packet(LinkType::EN10MB, 1 << 62, 1, [0u8].as_slice())
        .unwrap_err();
    assert!(e.message.contains("record 1 at byte offset 41"), "{e}");

    let mut ng = PcapngWriter::new(Vec::new()).unwrap();
    assert!(ng
        .write_packet(LinkType::EN10MB, -5, 1, [0u8].as_slice())
        .is_err());
    let reserved = LinkType(0x0001_0001);
    let e = ng
        .write_packet(reserved, 0, 1, [0u8].as_slice())
        .unwrap_err();
    assert!(e.message.contains("reserved bits"), "{e}");
    let mut us =
        PcapngWriter::with_defaults(Vec::new(), 0, wfpsim_core::capture::TsResolution::MICROS)
            .unwrap();
    assert!(us
        .write_packet(LinkType::EN10MB, 1_001, 1, [0u8].as_slice())
        .is_err());
    us.write_packet(LinkType::EN10MB, 1_000, 1, [0u8].as_slice())
        .unwrap();
}
