//! Damaged input: the corpus's malformed captures, every truncation of small files, and
//! proptest-driven random truncation and byte corruption of real files. The reader must never
//! panic, and what it yields before an error must be exactly the clean read's records up to
//! the damage.

mod capture_common;

use std::path::Path;

use capture_common::{corpus_dir, manifest, read_all, read_file, Rec};
use proptest::prelude::*;

/// Independent framing walk (test oracle): the stream offsets where packet records end, and
/// where any record, block or file header ends (a cut there is a clean, shorter capture).
fn record_ends(bytes: &[u8]) -> (Vec<usize>, Vec<usize>) {
    let u32_at = |at: usize, big: bool| {
        let b: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let (mut ends, mut boundaries) = (Vec::new(), Vec::new());
    if bytes[..4] == [0x0A, 0x0D, 0x0D, 0x0A] {
        let (mut at, mut big) = (0, false);
        while at + 12 <= bytes.len() {
            if bytes[at..at + 4] == [0x0A, 0x0D, 0x0D, 0x0A] {
                big = bytes[at + 8..at + 12] == [0x1A, 0x2B, 0x3C, 0x4D];
            }
            let kind = u32_at(at, big);
            at += u32_at(at + 4, big) as usize;
            boundaries.push(at);
            if matches!(kind, 2 | 3 | 6) {
                ends.push(at);
            }
        }
    } else {
        let big = bytes[..4] == [0xA1, 0xB2, 0xC3, 0xD4] || bytes[..4] == [0xA1, 0xB2, 0x3C, 0x4D];
        let mut at = 24;
        boundaries.push(at);
        while at + 16 <= bytes.len() {
            at += 16 + u32_at(at + 8, big) as usize;
            ends.push(at);
            boundaries.push(at);
        }
    }
    (ends, boundaries)
}

/// The damage property: with the first damaged byte at `damage`, every clean record ending at
/// or before it is yielded unchanged, in order, before anything else.
fn check_prefix(clean: &[Rec], ends: &[usize], got: &[Rec], damage: usize, what: &str) {
    let intact = ends.iter().take_while(|&&e| e <= damage).count();
    assert!(
        got.len() >= intact,
        "{what}: {} records yielded, {intact} lie before the damage",
        got.len()
    );
    assert!(
        got[..intact] == clean[..intact],
        "{what}: records before the damage differ"
    );
}

#[test]
fn malformed_captures_read_fully_or_stop_with_an_offset() {
    let Some(dir) = corpus_dir() else { return };
    let mut summary = Vec::new();
    for f in manifest(&dir) {
        let tags = f["tags"].as_array().unwrap();
        if !tags.iter().any(|t| t == "malformed") {
            continue;
        }
        let name = f["file"].as_str().unwrap();
        let (recs, err) = read_file(&dir.join(name));
        match err {
            None => assert_eq!(recs.len() as u64, f["packets"].as_u64().unwrap(), "{name}"),
            Some(e) => assert!(e.message.contains("byte offset"), "{name}: {e}"),
        }
        summary.push(format!("{name}: {} records", recs.len()));
    }
    assert_eq!(summary.len(), 14);
    println!("malformed-tagged captures (damage is inside packets, framing is intact):");
    for s in summary {
        println!("  {s}");
    }
}

fn every_truncation(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let (clean, err) = read_file(path);
    assert!(err.is_none());
    let (ends, boundaries) = record_ends(&bytes);
    assert_eq!(ends.len(), clean.len());
    for cut in 0..bytes.len() {
        for (mp, mb) in [(3, 512), (4096, 1 << 20)] {
            let (got, err) = read_all(&bytes[..cut], mp, mb);
            let what = format!("{} cut at {cut}", path.display());
            check_prefix(&clean, &ends, &got, cut, &what);
            assert!(
                got.len() <= clean.len() && got[..] == clean[..got.len()],
                "{what}"
            );
            match err {
                None => assert!(boundaries.contains(&cut), "{what}: no error mid-record"),
                Some(e) => {
                    assert!(e.message.contains("byte offset"), "{what}: {e}");
                    assert!(e.offset <= cut as u64, "{what}: {e}");
                    assert_eq!(e.record, got.len() as u64, "{what}: {e}");
                }
            }
        }
    }
}

#[test]
fn every_truncation_of_small_captures() {
    let Some(dir) = corpus_dir() else { return };
    for name in [
        "zeek/pcapng-multi-interface.pcapng",
        "tcpdump/pptp.pcap",
        "tcpdump/tcp-handshake-nano.pcap",
        "zeek/linux_dlt_sll2.pcap",
    ] {
        every_truncation(&dir.join(name));
    }
}

type FuzzFile = (String, Vec<u8>, Vec<Rec>, Vec<usize>);

/// Corpus files small enough to read hundreds of times per test run, read once.
fn fuzz_files() -> &'static [FuzzFile] {
    static FILES: std::sync::OnceLock<Vec<FuzzFile>> = std::sync::OnceLock::new();
    FILES.get_or_init(load_fuzz_files)
}

fn load_fuzz_files() -> Vec<FuzzFile> {
    let Some(dir) = corpus_dir() else {
        return Vec::new();
    };
    manifest(&dir)
        .iter()
        .filter(|f| f["size"].as_u64().unwrap() <= 130_000)
        .map(|f| {
            let name = f["file"].as_str().unwrap().to_string();
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            let (clean, _) = read_file(&dir.join(&name));
            let (ends, _) = record_ends(&bytes);
            (name, bytes, clean, ends)
        })
        .collect()
}

proptest! {
    // WFPSIM_FUZZ_CASES=100000 for a long run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("WFPSIM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_truncation_yields_a_prefix(pick in any::<prop::sample::Index>(),
                                         at in any::<prop::sample::Index>(),
                                         max_packets in 1usize..50, max_bytes in 1usize..100_000) {
        let files = fuzz_files();
        if files.is_empty() { return Ok(()); }
        let (name, bytes, clean, ends) = &files[pick.index(files.len())];
        let cut = at.index(bytes.len() + 1);
        let (got, err) = read_all(&bytes[..cut], max_packets, max_bytes);
        check_prefix(clean, ends, &got, cut, name);
        prop_assert!(got[..] == clean[..got.len()]);
        if let Some(e) = err {
            prop_assert!(e.message.contains("byte offset"));
        }
    }

    #[test]
    fn random_corruption_never_panics_and_keeps_the_prefix(
        pick in any::<prop::sample::Index>(),
        hits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        max_packets in 1usize..5000, max_bytes in 1usize..(1 << 20)) {
        let files = fuzz_files();
        if files.is_empty() { return Ok(()); }
        let (name, bytes, clean, ends) = &files[pick.index(files.len())];
        let mut damaged = bytes.clone();
        let mut first = usize::MAX;
        for (at, value) in &hits {
            let i = at.index(damaged.len());
            if damaged[i] != *value {
                damaged[i] = *value;
                first = first.min(i);
            }
        }
        // Sometimes also cut the damaged file short.
        let len = if cut.index(4) == 0 { cut.index(damaged.len() + 1) } else { damaged.len() };
        damaged.truncate(len);
        let (got, err) = read_all(damaged.as_slice(), max_packets, max_bytes);
        check_prefix(clean, ends, &got, first.min(len), name);
        if let Some(e) = err {
            prop_assert!(e.message.contains("byte offset"), "{}", e);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("WFPSIM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Arbitrary bytes behind each magic: no panic, and any error names a byte offset.
    #[test]
    fn arbitrary_bytes_never_panic(kind in 0usize..3, body in prop::collection::vec(any::<u8>(), 0..600),
                                   max_packets in 1usize..8, max_bytes in 1usize..300) {
        let mut bytes = match kind {
            0 => vec![0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0],
            1 => vec![0xA1, 0xB2, 0x3C, 0x4D, 0, 2, 0, 4],
            _ => vec![0x0A, 0x0D, 0x0D, 0x0A, 28, 0, 0, 0, 0x4D, 0x3C, 0x2B, 0x1A, 1, 0, 0, 0],
        };
        bytes.extend_from_slice(&body);
        let (_, err) = read_all(bytes.as_slice(), max_packets, max_bytes);
        if let Some(e) = err {
            prop_assert!(e.message.contains("byte offset"), "{}", e);
        }
    }
}
