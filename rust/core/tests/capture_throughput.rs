//! Throughput figure (printed, not asserted): reading a 200 MB synthetic pcap from the page
//! cache into batches. Run with
//! `cargo test -p wfpsim-core --release --test capture_throughput -- --ignored --nocapture`.

use std::io::{BufWriter, Write};
use std::time::Instant;

use wfpsim_core::capture::{CaptureReader, LinkType, PcapPrecision, PcapWriter, PcapngWriter};

const TARGET_BYTES: u64 = 200_000_000;
const RUNS: usize = 10;

/// A writer for either format behind one call.
enum AnyWriter {
    Pcap(PcapWriter<BufWriter<std::fs::File>>),
    Pcapng(PcapngWriter<BufWriter<std::fs::File>>),
}

/// Writes a pcap (or pcapng) of `sizes` repeated until ~200 MB; returns its path and count.
fn synth(name: &str, sizes: &[usize], pcapng: bool) -> (std::path::PathBuf, u64) {
    let path = std::env::temp_dir().join(format!(
        "wfpsim-throughput-{}-{name}.pcap",
        std::process::id()
    ));
    let file = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).expect("create"));
    let mut w = if pcapng {
        AnyWriter::Pcapng(PcapngWriter::new(file).expect("shb"))
    } else {
        let w = PcapWriter::new(file, LinkType::EN10MB, 65535, PcapPrecision::Nano);
        AnyWriter::Pcap(w.expect("header"))
    };
    let frame = vec![0x5Au8; 1514];
    let t0 = Instant::now();
    let mut n = 0u64;
    loop {
        let len = sizes[n as usize % sizes.len()];
        let (ts, data) = (n as i64 * 1000, &frame[..len]);
        let written = match &mut w {
            AnyWriter::Pcap(w) => {
                w.write_packet(LinkType::EN10MB, ts, len as u32, data)
                    .expect("write");
                w.bytes_written()
            }
            AnyWriter::Pcapng(w) => {
                w.write_packet(LinkType::EN10MB, ts, len as u32, data)
                    .expect("write");
                w.bytes_written()
            }
        };
        n += 1;
        if written >= TARGET_BYTES {
            break;
        }
    }
    let mut inner = match w {
        AnyWriter::Pcap(w) => w.finish().expect("finish"),
        AnyWriter::Pcapng(w) => w.finish().expect("finish"),
    };
    inner.flush().expect("flush");
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "  wrote {name}: {n} packets, {:.1} MB in {secs:.2} s ({:.2} GB/s)",
        TARGET_BYTES as f64 / 1e6,
        TARGET_BYTES as f64 / secs / 1e9
    );
    (path, n)
}

fn read_once(path: &std::path::Path, recycle: bool) -> (u64, u64, f64) {
    let t0 = Instant::now();
    let mut reader = CaptureReader::open(path).expect("open");
    let (mut packets, mut bytes, mut check) = (0u64, 0u64, 0u64);
    while let Some(batch) = reader.next_batch(8192, 4 << 20).expect("batch") {
        packets += batch.len() as u64;
        bytes += batch.data().len() as u64;
        // Touch each packet's first byte so the descriptors are really used.
        for (d, data) in batch.iter() {
            check += u64::from(data.first().copied().unwrap_or(0)) + u64::from(d.caplen);
        }
        if recycle {
            reader.recycle(batch);
        }
    }
    assert!(check > 0);
    (packets, bytes, t0.elapsed().as_secs_f64())
}

#[test]
#[ignore = "throughput figure; run explicitly in release mode"]
fn read_throughput_200mb() {
    const IMIX: &[usize] = &[64, 64, 64, 64, 64, 64, 64, 576, 576, 576, 576, 1514];
    for (name, sizes, pcapng) in [
        ("pcap-imix", IMIX, false),
        ("pcap-1514", &[1514][..], false),
        ("pcapng-imix", IMIX, true),
    ] {
        let (path, n) = synth(name, sizes, pcapng);
        read_once(&path, true); // warm the page cache
        for recycle in [true, false] {
            let mut best = f64::MAX;
            let mut got = (0, 0);
            for _ in 0..RUNS {
                let (p, b, s) = read_once(&path, recycle);
                got = (p, b);
                best = best.min(s);
            }
            assert_eq!(got.0, n);
            println!(
                "  read {name} ({} recycled buffers): {:.2} GB/s, {:.1} Mpps ({} packets, {} bytes, best of {RUNS}: {:.3} s)",
                if recycle { "with" } else { "without" },
                got.1 as f64 / best / 1e9,
                got.0 as f64 / best / 1e6,
                got.0,
                got.1,
                best
            );
        }
        std::fs::remove_file(&path).ok();
    }
}
