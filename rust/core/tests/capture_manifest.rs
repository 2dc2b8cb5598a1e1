//! The real-capture corpus: every file's packet count and link types match manifest.json.

mod capture_common;

use std::collections::BTreeMap;

use capture_common::{corpus_dir, manifest, read_file};
use wfpsim_core::capture::{network_layer, CaptureFormat, CaptureReader, NetworkLayer};

#[test]
fn every_capture_matches_the_manifest() {
    let Some(dir) = corpus_dir() else { return };
    let files = manifest(&dir);
    assert_eq!(files.len(), 80, "manifest lists 80 captures");
    let (mut clean, mut errors) = (0, Vec::new());
    for f in &files {
        let name = f["file"].as_str().expect("file");
        let path = dir.join(name);
        let (recs, err) = read_file(&path);
        if let Some(e) = &err {
            errors.push(format!("{name}: {e}"));
            continue;
        }
        clean += 1;
        let want = f["packets"].as_u64().expect("packets");
        assert_eq!(recs.len() as u64, want, "{name}: packet count");
        let mut links: BTreeMap<String, u64> = BTreeMap::new();
        for r in &recs {
            let lt = r
                .link_type
                .name()
                .map_or_else(|| r.link_type.code().to_string(), str::to_string);
            *links.entry(lt).or_default() += 1;
        }
        let want_links: BTreeMap<String, u64> = f["linktypes"]
            .as_object()
            .expect("linktypes")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().expect("count")))
            .collect();
        assert_eq!(links, want_links, "{name}: link types");
        let truncated = recs
            .iter()
            .filter(|r| (r.data.len() as u32) < r.orig_len)
            .count() as u64;
        assert_eq!(
            truncated,
            f["snap_truncated_packets"].as_u64().expect("snap"),
            "{name}"
        );

        let reader = CaptureReader::open(&path).expect("open");
        match (reader.format(), f["format"].as_str().expect("format")) {
            (CaptureFormat::Pcap(h), "pcap") => assert!(!h.nanos, "{name}"),
            (CaptureFormat::Pcap(h), "pcap-nsec") => assert!(h.nanos, "{name}"),
            (CaptureFormat::Pcapng, "pcapng") => {}
            (got, want) => panic!("{name}: format {got:?}, manifest says {want}"),
        }
        if let Some(ifaces) = f["meta"]["interfaces"].as_array() {
            let ids: std::collections::BTreeSet<u32> =
                recs.iter().map(|r| r.interface_id).collect();
            assert_eq!(ids.len(), ifaces.len(), "{name}: interfaces used");
        }
    }
    println!("corpus: {clean} of {} captures read clean", files.len());
    for e in &errors {
        println!("  error: {e}");
    }
    // The manifest records no file-level damage for any capture.
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn decoded_link_types_give_an_ip_layer() {
    let Some(dir) = corpus_dir() else { return };
    let mut summary: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    let mut mismatches = Vec::new();
    for f in manifest(&dir) {
        let name = f["file"].as_str().expect("file");
        let (recs, _) = read_file(&dir.join(name));
        let v4 = f["protocols"]["ipv4"].as_u64().unwrap_or(0);
        let v6 = f["protocols"]["ipv6"].as_u64().unwrap_or(0);
        let mut got = [0u64; 4]; // ipv4, ipv6, other, unsupported
        for r in &recs {
            match network_layer(r.link_type, &r.data) {
                NetworkLayer::Found { .. }
                    if network_layer(r.link_type, &r.data).ip().is_some() =>
                {
                    let (v, _) = network_layer(r.link_type, &r.data).ip().expect("ip");
                    got[if v == wfpsim_core::capture::IpVersion::V4 {
                        0
                    } else {
                        1
                    }] += 1;
                }
                NetworkLayer::Unsupported => got[3] += 1,
                _ => got[2] += 1,
            }
        }
        summary.insert(name.to_string(), got);
        let simple = f["tags"].as_array().expect("tags").iter().all(|t| {
            let t = t.as_str().unwrap_or("");
            !matches!(
                t,
                "pppoe" | "mpls" | "tunnel" | "link:NFLOG" | "link:PPP" | "link:C_HDLC"
            )
        });
        // Where nothing sits between link and IP layer and no tunnel doubles the counts, the
        // outer IP versions agree with the manifest's protocol mix.
        // The link layer names IP also for the packets whose IP header is broken (wrong
        // version nibble, nothing after the Ethernet header): the manifest counts those as
        // `malformed_ip`, not as IPv4/IPv6.
        let malformed = f["protocols"]["malformed_ip"].as_u64().unwrap_or(0);
        let excess = (got[0] + got[1]).checked_sub(v4 + v6);
        if simple && (got[0] < v4 || got[1] < v6 || excess.is_none_or(|x| x > malformed)) {
            mismatches.push(format!("{name}: got {got:?}, manifest v4 {v4} v6 {v6}"));
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    let unsupported: u64 = summary.values().map(|g| g[3]).sum();
    println!("records on link types wfpsim does not decode: {unsupported}");
}
