//! The NBL engine against the rules of `shared/spec/nbl.md`.

use std::sync::Arc;

use wfpsim_core::heap::{DataBuffer, MdlOrigin, RetreatNeed};
use wfpsim_core::memory::Buffer;
use wfpsim_core::{ErrorKind, Heap, MdlId, NbId};

fn mdl(heap: &mut Heap, bytes: &[u8]) -> MdlId {
    heap.alloc_mdl(Buffer::owned(bytes.to_vec()), 0, bytes.len(), 0)
        .unwrap()
}

fn chain(heap: &mut Heap, sizes: &[usize]) -> MdlId {
    let ids: Vec<MdlId> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| mdl(heap, &vec![i as u8 + 1; n]))
        .collect();
    for w in ids.windows(2) {
        heap.mdl_mut(w[0]).unwrap().next = Some(w[1]);
    }
    ids[0]
}

fn state(heap: &Heap, nb: NbId) -> (u32, u64, Option<MdlId>, u32) {
    let n = heap.nb(nb).unwrap();
    (
        n.data_offset,
        n.data_length,
        n.current_mdl,
        n.current_mdl_offset,
    )
}

/// `nbl.md §3.3`, step by step.
#[test]
fn worked_example_of_section_3_3() {
    let mut h = Heap::new();
    let m1 = chain(&mut h, &[14, 20, 100]);
    let m2 = h.mdl(m1).unwrap().next.unwrap();
    let m3 = h.mdl(m2).unwrap().next.unwrap();
    let nbl = h
        .alloc_nbl_and_nb(None, 0, 0, Some(m1), 34, 100, 0)
        .unwrap();
    let nb = h.nbl(nbl).unwrap().first_nb.unwrap();
    assert_eq!(state(&h, nb), (34, 100, Some(m3), 0));

    h.retreat(nb, 20, 0).unwrap();
    assert_eq!(state(&h, nb), (14, 120, Some(m2), 0));
    h.retreat(nb, 14, 0).unwrap();
    assert_eq!(state(&h, nb), (0, 134, Some(m1), 0));

    assert_eq!(
        h.retreat_check(nb, 8, 16).unwrap(),
        RetreatNeed::Allocate {
            shortfall: 8,
            request: 24
        }
    );
    h.retreat(nb, 8, 16).unwrap();
    let r = h.nb(nb).unwrap().mdl_chain.unwrap();
    assert_eq!(h.mdl(r).unwrap().byte_count, 24);
    assert_eq!(h.mdl(r).unwrap().origin, MdlOrigin::RetreatDefault);
    assert_eq!(h.mdl(r).unwrap().next, Some(m1));
    assert_eq!(state(&h, nb), (16, 142, Some(r), 16));

    let handed = h.advance(nb, 8, true, false).unwrap();
    assert!(handed.is_empty());
    assert!(!h.mdl_alive(r), "the retreat-allocated MDL is freed");
    assert_eq!(h.nb(nb).unwrap().mdl_chain, Some(m1));
    assert_eq!(state(&h, nb), (0, 134, Some(m1), 0));

    h.advance(nb, 34, false, false).unwrap();
    assert_eq!(state(&h, nb), (34, 100, Some(m3), 0));
    h.free_nbl(nbl).unwrap();
}

#[test]
fn advance_past_the_data_is_rejected_and_leaves_the_nb_unchanged() {
    let mut h = Heap::new();
    let m = mdl(&mut h, &[0; 60]);
    let nbl = h.alloc_nbl_and_nb(None, 0, 0, Some(m), 10, 50, 0).unwrap();
    let nb = h.nbl(nbl).unwrap().first_nb.unwrap();
    let err = h.advance(nb, 51, false, false).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidParameter);
    assert!(err.message.contains("past the data"), "{}", err.message);
    assert_eq!(state(&h, nb), (10, 50, Some(m), 10));
}

#[test]
fn clones_share_memory_but_not_offsets_and_guard_the_parent() {
    let mut h = Heap::new();
    let m = mdl(&mut h, &(0u8..64).collect::<Vec<_>>());
    let nbl = h.alloc_nbl_and_nb(None, 0, 0, Some(m), 20, 44, 0).unwrap();
    let clone = h.clone_nbl(nbl, 0, true, false, 0).unwrap();
    assert_eq!(h.nbl(clone).unwrap().parent, Some(nbl));
    assert_eq!(h.nbl(nbl).unwrap().child_ref_count, 1);
    let cnb = h.nbl(clone).unwrap().first_nb.unwrap();
    let onb = h.nbl(nbl).unwrap().first_nb.unwrap();
    assert_eq!(h.nb_bytes(cnb).unwrap(), h.nb_bytes(onb).unwrap());
    // A write through the clone is seen through the parent.
    h.nb_pieces_mut(cnb).unwrap().write_at_test(0, &[0xAA]);
    assert_eq!(h.nb_bytes(onb).unwrap()[0], 0xAA);
    // Offsets are the clone's own; its headroom is the parent's memory.
    h.advance(cnb, 4, false, false).unwrap();
    assert_eq!(h.nb(onb).unwrap().data_offset, 20);
    h.retreat(cnb, 24, 0).unwrap();
    assert_eq!(h.nb(cnb).unwrap().data_offset, 0);
    // Freeing the parent first is an error that says so; the parent stays usable.
    let err = h.free_nbl(nbl).unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidState);
    assert!(err.message.contains("clone"), "{}", err.message);
    assert!(h.nbl_alive(nbl));
    // Wrong free function for a clone.
    assert!(h.free_nbl(clone).is_err());
    assert!(h.free_clone(clone, 0, false).is_err());
    h.free_clone(clone, 0, true).unwrap();
    assert_eq!(h.nbl(nbl).unwrap().child_ref_count, 0);
    assert_eq!(
        h.free_clone(clone, 0, true).unwrap_err().kind,
        ErrorKind::DoubleFree
    );
    h.free_nbl(nbl).unwrap();
    assert_eq!(h.free_nbl(nbl).unwrap_err().kind, ErrorKind::DoubleFree);
    assert_eq!(h.nb(onb).unwrap_err().kind, ErrorKind::UseAfterFree);
    h.free_mdl(m).unwrap();
    assert_eq!(h.live_counts(), (0, 0, 0));
}

#[test]
fn ndis_clone_leaves_parent_fields_to_the_caller_and_checks_free_flags() {
    let mut h = Heap::new();
    let m = chain(&mut h, &[14, 50]);
    let nbl = h.alloc_nbl_and_nb(None, 0, 0, Some(m), 16, 48, 0).unwrap();
    let c = h.clone_nbl(nbl, 0x2, false, false, 0).unwrap();
    assert_eq!(h.nbl(c).unwrap().parent, None);
    assert_eq!(h.nbl(nbl).unwrap().child_ref_count, 0);
    let cnb = h.nbl(c).unwrap().first_nb.unwrap();
    assert_eq!(
        h.nb(cnb).unwrap().mdl_chain,
        Some(m),
        "USE_ORIGINAL_MDLS keeps the chain"
    );
    assert!(
        h.free_clone(c, 0, false).is_err(),
        "flags must match the allocation's"
    );
    h.free_clone(c, 0x2, false).unwrap();
    assert!(h.mdl_alive(m), "original MDLs are not freed with the clone");
    // Default geometry: new MDLs from CurrentMdl on, DataOffset = CurrentMdlOffset.
    let c2 = h.clone_nbl(nbl, 0, false, false, 0).unwrap();
    let cnb2 = h.nbl(c2).unwrap().first_nb.unwrap();
    assert_eq!(h.nb(cnb2).unwrap().data_offset, 2);
    assert_ne!(h.nb(cnb2).unwrap().mdl_chain, Some(m));
    h.free_clone(c2, 0, false).unwrap();
    assert_eq!(
        h.live_counts().0,
        2,
        "clone MDLs freed, original chain kept"
    );
}

#[test]
fn get_data_buffer_direct_copy_and_null() {
    let mut h = Heap::new();
    let m = chain(&mut h, &[10, 10]);
    let nbl = h.alloc_nbl_and_nb(None, 0, 0, Some(m), 4, 16, 0).unwrap();
    let nb = h.nbl(nbl).unwrap().first_nb.unwrap();
    assert!(
        matches!(h.get_data_buffer(nb, 6, 1, 0).unwrap(), DataBuffer::Direct { mdl, offset: 4 } if mdl == m)
    );
    assert_eq!(
        h.get_data_buffer(nb, 7, 1, 0).unwrap(),
        DataBuffer::NeedsCopy
    );
    assert_eq!(h.get_data_buffer(nb, 17, 1, 0).unwrap(), DataBuffer::Null);
    assert_eq!(h.get_data_buffer(nb, 0, 1, 0).unwrap(), DataBuffer::Null);
    assert!(
        h.get_data_buffer(nb, 4, 3, 0).is_err(),
        "AlignMultiple must be a power of two"
    );
    assert!(
        h.get_data_buffer(nb, 4, 4, 4).is_err(),
        "AlignOffset below AlignMultiple"
    );
}

#[test]
fn retreat_through_a_caller_allocator_and_mismatched_free() {
    let mut h = Heap::new();
    let m = mdl(&mut h, &[7; 20]);
    let nbl = h.alloc_nbl_and_nb(None, 0, 0, Some(m), 0, 20, 0).unwrap();
    let nb = h.nbl(nbl).unwrap().first_nb.unwrap();
    let RetreatNeed::Allocate { request, .. } = h.retreat_check(nb, 14, 2).unwrap() else {
        panic!()
    };
    assert_eq!(request, 16);
    // Too small an MDL is a driver bug.
    let small = h.alloc_mdl(Buffer::zeroed(8), 0, 8, 0).unwrap();
    assert!(h
        .retreat_apply(nb, 14, 2, Some((small, MdlOrigin::RetreatHandler)))
        .is_err());
    assert_eq!(
        state(&h, nb),
        (0, 20, Some(m), 0),
        "failure leaves the NB unchanged"
    );
    let big = h.alloc_mdl(Buffer::zeroed(32), 0, 32, 0).unwrap();
    h.retreat_apply(nb, 14, 2, Some((big, MdlOrigin::RetreatHandler)))
        .unwrap();
    assert_eq!(state(&h, nb), (18, 34, Some(big), 18));
    let err = h.advance(nb, 14, true, false).unwrap_err();
    assert!(err.message.contains("FreeMdlHandler"), "{}", err.message);
    let handed = h.advance(nb, 14, true, true).unwrap();
    assert_eq!(handed, vec![big]);
    assert_eq!(state(&h, nb), (0, 20, Some(m), 0));
    h.free_mdl(big).unwrap();
    h.free_mdl(small).unwrap();
}

#[test]
fn copy_between_net_buffers_is_bounded_as_documented() {
    let mut h = Heap::new();
    let src_m = mdl(&mut h, b"0123456789");
    let dst_m = mdl(&mut h, &[0; 8]);
    let src = h
        .alloc_nbl_and_nb(None, 0, 0, Some(src_m), 2, 8, 0)
        .unwrap();
    let dst = h
        .alloc_nbl_and_nb(None, 0, 0, Some(dst_m), 0, 0, 0)
        .unwrap();
    let s = h.nbl(src).unwrap().first_nb.unwrap();
    let d = h.nbl(dst).unwrap().first_nb.unwrap();
    // Destination bounded by its chain (8), not its DataLength (0); source by DataLength - offset.
    assert_eq!(h.copy_nb_to_nb(d, 3, 100, s, 1).unwrap(), 5);
    assert_eq!(h.mdl_bytes(dst_m).unwrap(), b"\0\0\x0034567");
    assert_eq!(
        h.nb(d).unwrap().data_length,
        0,
        "destination fields unchanged"
    );
}

#[test]
fn context_grows_toward_the_front_and_must_be_released() {
    let mut h = Heap::new();
    let nbl = h.alloc_nbl(None, 16, 16, 0).unwrap();
    assert_eq!(h.context_region(nbl).unwrap().unwrap().2, 16);
    h.alloc_context(nbl, 16, 0).unwrap(); // fits in the backfill
    assert_eq!(h.context_region(nbl).unwrap().unwrap().2, 32);
    h.alloc_context(nbl, 32, 16).unwrap(); // pushes a block
    assert_eq!(h.nbl(nbl).unwrap().context.len(), 2);
    assert!(
        h.free_nbl(nbl).is_err(),
        "pushed context must be released first"
    );
    h.free_context(nbl, 32).unwrap();
    assert_eq!(h.nbl(nbl).unwrap().context.len(), 1);
    assert!(
        h.alloc_context(nbl, 8, 0).is_err(),
        "sizes are multiples of 16"
    );
    h.free_nbl(nbl).unwrap();
}

#[test]
fn batch_build_retreat_export_and_free() {
    let mut h = Heap::new();
    let data: Vec<u8> = (0..100u8).collect();
    let buf = Buffer::owned(data.clone());
    let nbls = h
        .build_chain(&buf, &[0, 10, 50], &[10, 40, 50], None, 0)
        .unwrap();
    assert_eq!(h.chain_of(nbls[0]).unwrap(), nbls);
    let export = h.export_chain(nbls[0]).unwrap();
    assert_eq!(export.data, data);
    assert_eq!(export.lengths, vec![10, 40, 50]);
    h.advance_chain(nbls[0], 4, false).unwrap();
    assert!(
        h.advance_chain(nbls[0], 7, false).is_err(),
        "6 bytes left in the first packet"
    );
    assert_eq!(
        h.nb(h.nbl(nbls[1]).unwrap().first_nb.unwrap())
            .unwrap()
            .data_length,
        36,
        "unchanged on failure"
    );
    h.retreat_chain(nbls[0], 4, 0).unwrap();
    assert_eq!(h.export_chain(nbls[0]).unwrap().data, data);
    assert!(h.build_chain(&buf, &[95], &[10], None, 0).is_err());
    assert_eq!(h.free_chain(nbls[0]).unwrap(), 3);
    assert_eq!(h.live_counts(), (0, 0, 0));
    drop(Arc::clone(&buf));
}

#[test]
fn split_makes_single_nb_clones_sharing_memory() {
    let mut h = Heap::new();
    let m1 = mdl(&mut h, b"aaaa");
    let m2 = mdl(&mut h, b"bbbbbb");
    let nbl = h.alloc_nbl_and_nb(None, 0, 0, Some(m1), 0, 4, 0).unwrap();
    let nb2 = h.alloc_nb(None, Some(m2), 0, 6, 0).unwrap();
    let nb1 = h.nbl(nbl).unwrap().first_nb.unwrap();
    h.nb_mut(nb1).unwrap().next = Some(nb2);
    let parts = h.split_nbl(nbl, 0).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(h.nbl(nbl).unwrap().child_ref_count, 2);
    assert_eq!(h.nbl(parts[0]).unwrap().next, Some(parts[1]));
    for (p, want) in parts.iter().zip([&b"aaaa"[..], &b"bbbbbb"[..]]) {
        let nbs = h.nbs_of(*p).unwrap();
        assert_eq!(nbs.len(), 1);
        assert_eq!(h.nb_bytes(nbs[0]).unwrap(), want);
    }
    assert_eq!(
        h.nbs_of(nbl).unwrap().to_vec(),
        vec![nb1, nb2],
        "the original is intact"
    );
    h.free_chain(parts[0]).unwrap();
    h.nb_mut(nb1).unwrap().next = None;
    h.free_nb(nb2).unwrap();
    h.free_nbl(nbl).unwrap();
    h.free_mdl(m1).unwrap();
    h.free_mdl(m2).unwrap();
    assert!(h.leak_report().is_empty());
}

#[test]
fn leak_report_names_the_site() {
    let mut h = Heap::new();
    let site = h.intern_site("driver.py:12 in classify");
    let _nbl = h.alloc_nbl(None, 0, 0, site).unwrap();
    let report = h.leak_report();
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].kind, "NET_BUFFER_LIST");
    assert_eq!(report[0].site, "driver.py:12 in classify");
}

#[test]
fn fault_injection_makes_allocation_fail_with_resources() {
    let mut h = Heap::new();
    h.fail_allocations = 1;
    let err = h.alloc_nbl(None, 0, 0, 0).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Resources);
    assert!(h.alloc_nbl(None, 0, 0, 0).is_ok());
}

trait WriteAt {
    fn write_at_test(&mut self, off: usize, data: &[u8]);
}
impl WriteAt for wfpsim_core::bytes::Pieces<'_> {
    fn write_at_test(&mut self, off: usize, data: &[u8]) {
        use wfpsim_core::bytes::Segmented;
        assert_eq!(self.write_at(off, data), data.len());
    }
}

/// Prints (never asserts) the per-packet cost of the batch path: `cargo test --release -- --ignored --nocapture`.
#[test]
#[ignore]
fn batch_cost_probe() {
    let mut h = Heap::new();
    let n = 100_000usize;
    let buf = Buffer::owned(vec![0u8; n * 100]);
    let offsets: Vec<u64> = (0..n as u64).map(|i| i * 100).collect();
    let lengths = vec![100u32; n];
    // A first round grows the slabs; the second shows the steady state of a replay.
    let warm = h.build_chain(&buf, &offsets, &lengths, None, 0).unwrap();
    h.free_chain(warm[0]).unwrap();
    let t = std::time::Instant::now();
    let nbls = h.build_chain(&buf, &offsets, &lengths, None, 0).unwrap();
    let t1 = t.elapsed();
    h.retreat_chain(nbls[0], 14, 0).unwrap();
    let t2 = t.elapsed();
    h.advance_chain(nbls[0], 14, true).unwrap();
    let t3 = t.elapsed();
    h.free_chain(nbls[0]).unwrap();
    let t4 = t.elapsed();
    let per = |d: std::time::Duration| d.as_nanos() as f64 / n as f64;
    println!(
        "per packet: build {:.0} ns, retreat {:.0} ns, advance {:.0} ns, free {:.0} ns",
        per(t1),
        per(t2 - t1),
        per(t3 - t2),
        per(t4 - t3)
    );
}

/// Prints (never asserts) the per-NB cost of the chain checksum: `-- --ignored --nocapture`.
#[test]
#[ignore]
fn chain_checksum_cost_probe() {
    let mut h = Heap::new();
    let n = 2000usize;
    let buf = Buffer::owned((0..n * 1500).map(|i| i as u8).collect());
    let offsets: Vec<u64> = (0..n as u64).map(|i| i * 1500).collect();
    let nbls = h
        .build_chain(&buf, &offsets, &vec![1500u32; n], None, 0)
        .unwrap();
    let data = buf.slice(0, 1500).unwrap();
    let mut best = (f64::MAX, f64::MAX);
    for _ in 0..50 {
        let t = std::time::Instant::now();
        std::hint::black_box(h.checksum_chain(nbls[0], 0).unwrap());
        let chain = t.elapsed().as_nanos() as f64 / n as f64;
        let t = std::time::Instant::now();
        for i in 0..n {
            std::hint::black_box(wfpsim_core::checksum::internet_checksum(
                buf.slice(i * 1500, 1500).unwrap(),
                0,
            ));
        }
        let raw = t.elapsed().as_nanos() as f64 / n as f64;
        best = (best.0.min(chain), best.1.min(raw));
    }
    println!(
        "per 1500 B NB: chain {:.0} ns, raw kernel {:.0} ns ({:?})",
        best.0,
        best.1,
        data.len()
    );
}
