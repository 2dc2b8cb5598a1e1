//! The real-capture corpus (`shared/data/pcaps`): every packet's verdicts must agree with
//! `checksums_per_packet.json`, `fix` must reproduce valid packets byte for byte (and offload
//! seeds where the capture shows them), and no packet may panic anything.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::capture::{self, Record};
use common::json::{self, Json};
use common::{flatten, split};
use wfpsim_core::checksum::ChecksumInfo;
use wfpsim_core::packet::{
    complete_offload_at, fix_at, verify_at, Verdict, Verdicts, VerifyOptions,
};
use wfpsim_core::wire::ip::checksum_field_offset;

fn corpus_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/pcaps");
    d.is_dir().then_some(d)
}

fn want(status: &str) -> Option<Verdict> {
    Some(match status {
        "valid" => Verdict::Valid,
        "invalid_offload_partial" => Verdict::OffloadPartial,
        "invalid_zero" | "invalid_other" => Verdict::Invalid,
        "udp_zero" => Verdict::Absent,
        "unverifiable" => Verdict::NotCheckable,
        _ => return None,
    })
}

fn proto_of(kind: &str) -> u8 {
    match kind {
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        "icmpv6" => 58,
        _ => 255,
    }
}

/// `(kind, status)` of the expected records at one layer.
struct Expect<'a> {
    ip: Option<&'a str>,
    transport: Option<(&'a str, &'a str)>,
    any: bool,
}

fn expect_layer(records: &[Json], layer: f64) -> Expect<'_> {
    let mut e = Expect {
        ip: None,
        transport: None,
        any: false,
    };
    for r in records {
        let r = r.arr();
        if r.len() != 3 || r[2].num() != layer {
            continue;
        }
        e.any = true;
        match r[0].str() {
            "ipv4_header" => e.ip = Some(r[1].str()),
            kind => e.transport = Some((kind, r[1].str())),
        }
    }
    e
}

#[derive(Default)]
struct Tally {
    /// "layer kind expected-status" → (agree, total)
    verdicts: BTreeMap<String, (usize, usize)>,
    disagreements: Vec<String>,
    fix_exact: (usize, usize),
    seed_exact: (usize, usize),
    nic_valid: (usize, usize),
    packets: usize,
    ip_packets: usize,
    errors: usize,
    files: usize,
}

impl Tally {
    fn count(&mut self, key: String, ok: bool, what: impl FnOnce() -> String) {
        let e = self.verdicts.entry(key).or_default();
        e.1 += 1;
        if ok {
            e.0 += 1;
        } else {
            self.disagreements.push(what());
        }
    }
}

/// Deterministic odd/even cut points after the IP header start, different per packet.
fn cuts(len: usize, ip: usize, seed: usize) -> Vec<usize> {
    let mut x = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = vec![ip + 3, ip + 21];
    for _ in 0..3 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(ip + (x as usize) % len.saturating_sub(ip).max(1));
    }
    out.retain(|&c| c < len);
    out.sort_unstable();
    out
}

fn verify_split(d: &[u8], ip: usize, seed: usize) -> wfpsim_core::Result<Verdicts> {
    let opts = VerifyOptions::default();
    let whole = verify_at(d, ip, ChecksumInfo::NONE, &opts);
    let mut copy = d.to_vec();
    let pieces = split(&mut copy, &cuts(d.len(), ip, seed));
    let segmented = verify_at(&pieces, ip, ChecksumInfo::NONE, &opts);
    assert_eq!(whole, segmented, "segmented verify differs (seed {seed})");
    whole
}

fn compare_layer(
    t: &mut Tally,
    where_: &str,
    layer: &str,
    exp: &Expect<'_>,
    got: &wfpsim_core::Result<Verdicts>,
) {
    let v = match got {
        Err(e) => {
            t.errors += 1;
            let ok = exp.ip.is_none() && exp.transport.is_none();
            t.count(format!("{layer} error (no expected record)"), ok, || {
                format!("{where_}: error '{}' but MANIFEST has records", e.message)
            });
            return;
        }
        Ok(v) => v,
    };
    let s = &v.summary;
    let want_ip = match exp.ip {
        Some(st) => want(st),
        None if s.ip_version == 6 => Some(Verdict::Absent),
        None => None,
    };
    t.count(
        format!(
            "{layer} ipv{} header {}",
            s.ip_version,
            exp.ip.unwrap_or("-")
        ),
        want_ip == Some(v.ip),
        || format!("{where_}: ip {:?}, MANIFEST {:?}", v.ip, exp.ip),
    );
    match exp.transport {
        Some((kind, st)) => t.count(
            format!("{layer} {kind} {st}"),
            want(st) == Some(v.transport) && proto_of(kind) == s.transport_protocol,
            || {
                format!(
                    "{where_}: {kind} {:?} (proto {}), MANIFEST {st}",
                    v.transport, s.transport_protocol
                )
            },
        ),
        None => t.count(
            format!("{layer} no transport record"),
            v.transport == Verdict::NotCheckable,
            || {
                format!(
                    "{where_}: transport {:?} (proto {}) but no MANIFEST record",
                    v.transport, s.transport_protocol
                )
            },
        ),
    }
}

/// Zeroes the checksums, runs `fix_at` on a split copy and returns the flattened result.
fn refix(
    d: &[u8],
    ip: usize,
    v: &Verdicts,
    zero_ip: bool,
    zero_l4: bool,
    info: ChecksumInfo,
    seed: usize,
) -> Vec<u8> {
    let mut copy = d.to_vec();
    if zero_ip {
        copy[ip + 10..ip + 12].fill(0);
    }
    if zero_l4 {
        let f = v.summary.transport_offset as usize
            + checksum_field_offset(v.summary.transport_protocol).unwrap_or(0);
        copy[f..f + 2].fill(0);
    }
    let mut pieces = split(&mut copy, &cuts(d.len(), ip, seed + 1));
    fix_at(&mut pieces, ip, info).expect("fix after a successful verify");
    flatten(&pieces)
}

fn check_fix(
    t: &mut Tally,
    where_: &str,
    d: &[u8],
    ip: usize,
    v: &Verdicts,
    exp: &Expect<'_>,
    seed: usize,
) {
    let l4_status = exp.transport.map(|(_, st)| st);
    let ok_states = |s: Option<&str>| matches!(s, None | Some("valid") | Some("unverifiable"));
    let valid = |s: Option<&str>| s == Some("valid");
    // 1. Everything valid: zero, fix, and get the original back.
    if ok_states(exp.ip) && ok_states(l4_status) && (valid(exp.ip) || valid(l4_status)) {
        let out = refix(
            d,
            ip,
            v,
            valid(exp.ip),
            valid(l4_status),
            ChecksumInfo::NONE,
            seed,
        );
        t.fix_exact.1 += 1;
        if out == d {
            t.fix_exact.0 += 1;
        } else {
            t.disagreements
                .push(format!("{where_}: fix did not reproduce the valid packet"));
        }
    }
    // 2. Offload artefacts: fix with the TX bits the sender had reproduces the seed (and the
    //    zero IPv4 checksum); the NIC step then makes everything valid.
    if l4_status == Some("invalid_offload_partial")
        && matches!(exp.ip, None | Some("valid") | Some("invalid_zero"))
    {
        let mut info = ChecksumInfo::NONE;
        info.set_is_ipv4(v.summary.ip_version == 4);
        info.set_is_ipv6(v.summary.ip_version == 6);
        info.set_tcp_checksum(v.summary.transport_protocol == 6);
        info.set_udp_checksum(v.summary.transport_protocol == 17);
        info.set_ip_header_checksum(exp.ip == Some("invalid_zero"));
        let out = refix(d, ip, v, exp.ip.is_some(), true, info, seed);
        t.seed_exact.1 += 1;
        if out == d {
            t.seed_exact.0 += 1;
        } else {
            t.disagreements.push(format!(
                "{where_}: fix with TX offload did not reproduce the seed"
            ));
        }
        let mut nic = d.to_vec();
        complete_offload_at(&mut nic[..], ip, info).expect("NIC completion");
        let after =
            verify_at(&nic[..], ip, ChecksumInfo::NONE, &VerifyOptions::default()).expect("verify");
        let ip_ok = matches!(after.ip, Verdict::Valid | Verdict::Absent);
        t.nic_valid.1 += 1;
        if ip_ok && after.transport == Verdict::Valid {
            t.nic_valid.0 += 1;
        } else {
            t.disagreements.push(format!(
                "{where_}: NIC completion left {:?}/{:?}",
                after.ip, after.transport
            ));
        }
    }
}

fn check_packet(t: &mut Tally, name: &str, idx: usize, rec: &Record, exp: &[Json]) {
    t.packets += 1;
    let d = &rec.data[..];
    let where_ = format!("{name}#{idx}");
    let seed = idx.wrapping_mul(31).wrapping_add(name.len());
    // Garbage in at every link layer: a verdict or an error, never a panic.
    let _ = verify_at(d, 0, ChecksumInfo::NONE, &VerifyOptions::default());
    let outer = expect_layer(exp, 0.0);
    let inner = expect_layer(exp, 1.0);
    let Some((ip, link_version)) = capture::ip_start(rec.linktype, d) else {
        t.count("non-IP or unhandled link".into(), !outer.any, || {
            format!("{where_}: link not decoded but MANIFEST has records")
        });
        return;
    };
    t.ip_packets += 1;
    let got = verify_split(d, ip, seed);
    if link_version != 0 && d.get(ip).map(|b| b >> 4) != Some(link_version) {
        // EtherType and version nibble disagree: the MANIFEST's decoder records nothing.
        t.count("L0 version nibble != link type".into(), !outer.any, || {
            format!("{where_}: bad version but records")
        });
        return;
    }
    compare_layer(t, &where_, "L0", &outer, &got);
    let Ok(v) = got else { return };
    check_fix(t, &where_, d, ip, &v, &outer, seed);
    // One level of tunnelling (IP-in-IP, GRE, VXLAN, Geneve, Teredo), as the MANIFEST lists.
    let inner_start = v
        .summary
        .has_transport()
        .then(|| {
            capture::tunnel_inner(
                d,
                v.summary.transport_protocol,
                v.summary.transport_offset as usize,
            )
        })
        .flatten();
    match inner_start {
        Some((iip, _)) => {
            let got = verify_split(d, iip, seed + 7);
            let l4 = v.summary.transport_offset as usize;
            if !inner.any && capture::teredo_with_auth(d, v.summary.transport_protocol, l4) {
                // Known MANIFEST gap, not a verdict rule: count what we found separately.
                let found = got.as_ref().map(|g| g.transport).ok();
                t.count(
                    format!("L1 beyond MANIFEST: Teredo auth header, ours {found:?}"),
                    true,
                    String::new,
                );
            } else if got.is_ok() || inner.any {
                compare_layer(t, &format!("{where_} inner"), "L1", &inner, &got);
            }
        }
        None => t.count("L1 not a tunnel".into(), !inner.any, || {
            format!("{where_}: inner records not decoded")
        }),
    }
}

fn pcap_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            pcap_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
            out.push(p);
        }
    }
}

#[test]
fn capture_corpus_agrees_with_manifest() {
    let Some(dir) = corpus_dir() else {
        eprintln!(
            "note: shared/data/pcaps not found beside the repository; capture corpus test skipped"
        );
        return;
    };
    let text = std::fs::read_to_string(dir.join("checksums_per_packet.json"))
        .expect("read checksums_per_packet.json");
    let Json::Obj(files) = json::parse(&text).expect("parse checksums_per_packet.json") else {
        panic!("checksums_per_packet.json is not an object");
    };
    let mut on_disk = Vec::new();
    pcap_files(&dir, &mut on_disk);
    assert_eq!(on_disk.len(), files.len(), "every capture has verdicts");

    let mut t = Tally::default();
    for (name, packets) in &files {
        let bytes = std::fs::read(dir.join(name)).expect("read capture");
        let records = capture::read_capture(&bytes).expect("pcap/pcapng");
        assert_eq!(records.len(), packets.arr().len(), "{name}: record count");
        t.files += 1;
        for (i, (rec, exp)) in records.iter().zip(packets.arr()).enumerate() {
            check_packet(&mut t, name, i, rec, exp.arr());
        }
    }

    eprintln!(
        "capture corpus: {} files, {} packets, {} with an IP header reached, {} parse errors",
        t.files, t.packets, t.ip_packets, t.errors
    );
    eprintln!(
        "{:<48} {:>7} {:>7}",
        "verdict (layer kind MANIFEST-status)", "agree", "total"
    );
    for (k, (a, n)) in &t.verdicts {
        eprintln!("{k:<48} {a:>7} {n:>7}");
    }
    eprintln!(
        "fix reproduces valid packets byte for byte: {}/{}",
        t.fix_exact.0, t.fix_exact.1
    );
    eprintln!(
        "fix with TX offload reproduces seeds:       {}/{}",
        t.seed_exact.0, t.seed_exact.1
    );
    eprintln!(
        "NIC completion then verifies valid:         {}/{}",
        t.nic_valid.0, t.nic_valid.1
    );
    for d in t.disagreements.iter().take(60) {
        eprintln!("DISAGREE {d}");
    }
    assert!(
        t.disagreements.is_empty(),
        "{} disagreements with the MANIFEST",
        t.disagreements.len()
    );
}
