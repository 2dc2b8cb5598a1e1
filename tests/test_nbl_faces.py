"""Both faces of the NBL engine: the WDK names and conventions, and the Pythonic API."""

from __future__ import annotations

import numpy as np
import pytest

import wfpsim
from wfpsim import wdk
from wfpsim.wdk import (
    NDIS_STATUS_FAILURE,
    NDIS_STATUS_RESOURCES,
    NDIS_STATUS_SUCCESS,
    STATUS_INVALID_PARAMETER,
    STATUS_SUCCESS,
)


def chain_of(*sizes: int, fill: int = 0) -> tuple[wfpsim.Mdl, list[bytearray]]:
    mems = [bytearray([fill + i] * n) for i, n in enumerate(sizes)]
    mdls = [wdk.NdisAllocateMdl(None, m, len(m)) for m in mems]
    for a, b in zip(mdls, mdls[1:], strict=False):
        a.Next = b
    return mdls[0], mems


def free_mdls(first: wfpsim.Mdl | None) -> None:
    while first is not None:
        nxt = first.Next
        wdk.NdisFreeMdl(first)
        first = nxt


# ---- the worked example of nbl.md §3.3, on the WDK face ----


def test_worked_example_section_3_3(no_leaks):
    m1, _ = chain_of(14, 20, 100)
    m2, m3 = m1.Next, m1.Next.Next
    status, nbl = wdk.FwpsAllocateNetBufferAndNetBufferList0(None, 0, 0, m1, 34, 100)
    assert status == STATUS_SUCCESS
    nb = wdk.NET_BUFFER_LIST_FIRST_NB(nbl)

    def state():
        return (
            wdk.NET_BUFFER_DATA_OFFSET(nb),
            wdk.NET_BUFFER_DATA_LENGTH(nb),
            wdk.NET_BUFFER_CURRENT_MDL(nb),
            wdk.NET_BUFFER_CURRENT_MDL_OFFSET(nb),
        )

    assert state() == (34, 100, m3, 0)
    assert wdk.NdisRetreatNetBufferDataStart(nb, 20, 0, None) == NDIS_STATUS_SUCCESS
    assert state() == (14, 120, m2, 0)
    assert wdk.NdisRetreatNetBufferDataStart(nb, 14, 0, None) == NDIS_STATUS_SUCCESS
    assert state() == (0, 134, m1, 0)
    assert wdk.NdisRetreatNetBufferDataStart(nb, 8, 16, None) == NDIS_STATUS_SUCCESS
    r = wdk.NET_BUFFER_FIRST_MDL(nb)
    assert r.ByteCount == 24 and r.Next is m1
    assert state() == (16, 142, r, 16)
    wdk.NdisAdvanceNetBufferDataStart(nb, 8, True, None)
    assert not r.alive
    assert wdk.NET_BUFFER_FIRST_MDL(nb) is m1
    assert state() == (0, 134, m1, 0)
    wdk.NdisAdvanceNetBufferDataStart(nb, 34, False, None)
    assert state() == (34, 100, m3, 0)
    wdk.FwpsFreeNetBufferList0(nbl)
    free_mdls(m1)


# ---- identity, fields and setters ----


def test_accessors_return_the_same_object_like_a_pointer(no_leaks):
    m, _ = chain_of(10, 10)
    nbl = wdk.NdisAllocateNetBufferAndNetBufferList(None, 0, 0, m, 0, 20)
    assert nbl.FirstNetBuffer is nbl.FirstNetBuffer
    assert nbl.FirstNetBuffer.MdlChain is m
    assert m.Next is nbl.FirstNetBuffer.MdlChain.Next
    assert nbl.Next is None and nbl.ParentNetBufferList is None
    wdk.NdisFreeNetBufferList(nbl)
    free_mdls(m)


def test_drivers_repoint_an_nb_and_adjust_current_mdl(no_leaks):
    m, _ = chain_of(8, 8)
    nb = wdk.NdisAllocateNetBuffer(None, m, 0, 16)
    nb.DataOffset = 10
    nb.DataLength = 6
    with pytest.raises(wfpsim.InvalidParameterError, match="NdisAdjustNetBufferCurrentMdl"):
        nb.validate()
    wdk.NdisAdjustNetBufferCurrentMdl(nb)
    assert nb.CurrentMdl is m.Next and nb.CurrentMdlOffset == 2
    nb.validate()
    wdk.NdisFreeNetBuffer(nb)
    free_mdls(m)


def test_several_net_buffers_by_assigning_next(no_leaks):
    a = bytearray(b"first")
    b = bytearray(b"second!")
    ma, mb = wdk.NdisAllocateMdl(None, a, 5), wdk.NdisAllocateMdl(None, b, 7)
    nbl = wdk.NdisAllocateNetBufferAndNetBufferList(None, 0, 0, ma, 0, 5)
    nb2 = wdk.NdisAllocateNetBuffer(None, mb, 0, 7)
    wdk.NET_BUFFER_LIST_FIRST_NB(nbl).Next = nb2
    assert [bytes(nb) for nb in nbl.net_buffers] == [b"first", b"second!"]
    assert wdk.NET_BUFFER_NEXT_NB(nbl.FirstNetBuffer) is nb2
    wdk.NET_BUFFER_NEXT_NB(nbl.FirstNetBuffer, None)
    wdk.NdisFreeNetBuffer(nb2)
    wdk.NdisFreeNetBufferList(nbl)
    wdk.NdisFreeMdl(ma)
    wdk.NdisFreeMdl(mb)


def test_status_and_info_slots(no_leaks):
    nbl = wfpsim.NetBufferList.from_bytes(b"x" * 20)
    wdk.NET_BUFFER_LIST_STATUS(nbl, wdk.STATUS_FWP_INJECT_HANDLE_CLOSING)
    assert nbl.Status == 0xC0220101
    nbl.Status = -1073741811  # signed form of STATUS_INVALID_PARAMETER
    assert nbl.Status == 0xC000000D
    assert wdk.NET_BUFFER_LIST_INFO(nbl, 0) == 0
    wdk.NET_BUFFER_LIST_INFO(nbl, 4, 0x1234)
    assert nbl.get_info(4) == 0x1234
    with pytest.raises(wfpsim.InvalidParameterError, match="MaxNetBufferListInfo"):
        nbl.get_info(27)
    wdk.NdisSetNblFlag(nbl, 0x200)
    assert wdk.NdisTestNblFlag(nbl, 0x200) and not wdk.NdisTestNblFlags(nbl, 0x600)
    wdk.NdisClearNblFlag(nbl, 0x200)
    assert nbl.NblFlags == 0
    nbl.free()


# ---- memory: lending, views, zero copy ----


def test_mdl_over_caller_memory_is_zero_copy_both_ways(no_leaks):
    mem = np.zeros(32, dtype=np.uint8)
    m = wdk.NdisAllocateMdl(None, mem, 32)
    nbl = wdk.NdisAllocateNetBufferAndNetBufferList(None, 0, 0, m, 4, 28)
    view = nbl.FirstNetBuffer.data
    view[0] = 0xAB
    assert mem[4] == 0xAB
    mem[5] = 0xCD
    assert nbl.FirstNetBuffer.tobytes()[1] == 0xCD
    # the view keeps the memory alive after everything is freed
    wdk.NdisFreeNetBufferList(nbl)
    wdk.NdisFreeMdl(m)
    assert view[0] == 0xAB


def test_ndis_allocate_mdl_needs_writable_memory():
    with pytest.raises(wfpsim.InvalidParameterError, match="writable"):
        wdk.NdisAllocateMdl(None, b"immutable", 9)
    with pytest.raises(wfpsim.InvalidParameterError, match="does not fit"):
        wdk.NdisAllocateMdl(None, bytearray(4), 5)


def test_memoryview_slices_are_lent_too(no_leaks):
    mem = bytearray(range(16))
    m = wdk.NdisAllocateMdl(None, memoryview(mem)[8:], 8)
    assert m.tobytes() == bytes(range(8, 16))
    m.data[0] = 0
    assert mem[8] == 0
    m.free()


def test_from_bytes_copies_and_gives_headroom(no_leaks):
    src = bytearray(b"payload")
    with wfpsim.NetBufferList.from_bytes(src, backfill=14) as nbl:
        nb = nbl.FirstNetBuffer
        src[0] = 0
        assert nb.tobytes() == b"payload"
        assert nb.DataOffset == 14
        nb.retreat(14)
        assert nb.MdlChain.Next is None, "the backfill made the retreat allocation-free"
        nb.data[:2] = b"\xff\xff"
        assert nb.tobytes()[:2] == b"\xff\xff" and nb.tobytes()[14:] == b"payload"
    assert not nbl.alive


def test_data_spanning_mdls_has_no_single_view(no_leaks):
    with wfpsim.NetBufferList.from_buffers([b"ab"]) as nbl:
        nb = nbl.FirstNetBuffer
        nb.retreat(3)  # allocates a front MDL: now two pieces
        with pytest.raises(wfpsim.InvalidStateError, match="spans several MDLs"):
            nb.data
        assert [bytes(v) for v in nb.views()] == [b"\0\0\0", b"ab"]


# ---- retreat/advance with caller handlers ----


def test_allocate_and_free_mdl_handlers(no_leaks):
    asked, freed = [], []
    mem_pool = []

    def allocate(size):
        asked.append(size)
        mem = bytearray(size + 4)  # a larger MDL than requested is fine
        mem_pool.append(mem)
        return wdk.NdisAllocateMdl(None, mem, size + 4)

    def free(mdl):
        freed.append(mdl.ByteCount)
        wdk.NdisFreeMdl(mdl)

    nbl = wfpsim.NetBufferList.from_bytes(b"data")
    nb = nbl.FirstNetBuffer
    assert wdk.NdisRetreatNetBufferDataStart(nb, 6, 2, allocate) == NDIS_STATUS_SUCCESS
    assert asked == [8]
    assert nb.DataOffset == 6 and nb.DataLength == 10  # granted 12, shortfall 6
    with pytest.raises(wfpsim.InvalidStateError, match="FreeMdlHandler"):
        wdk.NdisAdvanceNetBufferDataStart(nb, 6, True, None)
    wdk.NdisAdvanceNetBufferDataStart(nb, 6, True, free)
    assert freed == [12] and nb.tobytes() == b"data"
    nbl.free()


def test_allocator_returning_null_gives_resources(no_leaks):
    nbl = wfpsim.NetBufferList.from_bytes(b"data")
    nb = nbl.FirstNetBuffer
    assert wdk.NdisRetreatNetBufferDataStart(nb, 4, 0, lambda size: None) == NDIS_STATUS_RESOURCES
    assert nb.DataLength == 4 and nb.DataOffset == 0, "unchanged on failure"
    nbl.free()


def test_list_retreat_rolls_back_on_failure(no_leaks):
    nbl = wfpsim.NetBufferList.from_buffers([b"aaaa", b"bbbb"])
    calls = []

    def alloc(size):
        calls.append(size)
        return wdk.NdisAllocateMdl(None, bytearray(size), size) if len(calls) == 1 else None

    def free(mdl):
        wdk.NdisFreeMdl(mdl)

    status = wdk.NdisRetreatNetBufferListDataStart(nbl, 2, 0, alloc, free)
    assert status == NDIS_STATUS_RESOURCES
    assert [(nb.DataOffset, nb.DataLength, len(nb.mdls())) for nb in nbl.net_buffers] == [
        (0, 4, 1),
        (0, 4, 1),
    ]
    nbl.free()


def test_retreat_overflow_is_failure(no_leaks):
    nbl = wfpsim.NetBufferList.from_bytes(b"x")
    assert (
        wdk.NdisRetreatNetBufferDataStart(nbl.FirstNetBuffer, 0xFFFFFFFF, 0, None)
        == NDIS_STATUS_FAILURE
    )
    nbl.free()


def test_fault_injection_gives_resources(no_leaks):
    nbl = wfpsim.NetBufferList.from_bytes(b"x")
    wfpsim.fail_allocations(1)
    assert (
        wdk.NdisRetreatNetBufferDataStart(nbl.FirstNetBuffer, 4, 0, None) == NDIS_STATUS_RESOURCES
    )
    wfpsim.fail_allocations(1)
    status, clone = wdk.FwpsAllocateCloneNetBufferList0(nbl, None, None, 0)
    assert status == wdk.STATUS_INSUFFICIENT_RESOURCES and clone is None
    nbl.free()


# ---- NdisGetDataBuffer / NdisCopyFromNetBufferToNetBuffer ----


def test_get_data_buffer_outcomes(no_leaks):
    m, _ = chain_of(6, 6, fill=1)
    nb = wdk.NdisAllocateNetBuffer(None, m, 2, 10)
    direct = wdk.NdisGetDataBuffer(nb, 4, None, 1, 0)
    assert isinstance(direct, memoryview) and bytes(direct) == b"\x01" * 4
    direct[0] = 9
    assert nb.tobytes()[0] == 9
    storage = bytearray(8)
    assert wdk.NdisGetDataBuffer(nb, 8, storage, 1, 0) is storage
    assert storage == b"\x09" + b"\x01" * 3 + b"\x02" * 4
    assert wdk.NdisGetDataBuffer(nb, 8, None, 1, 0) is None
    assert wdk.NdisGetDataBuffer(nb, 11, storage, 1, 0) is None
    assert wdk.NdisGetDataBuffer(nb, 0, storage, 1, 0) is None
    # misaligned contiguous data: copied when Storage is given, else NULL
    addr = m.MappedSystemVa + 2
    align = 8 if addr % 8 else 16
    off = (addr + 1) % align
    assert wdk.NdisGetDataBuffer(nb, 2, storage, align, off) is storage
    with pytest.raises(wfpsim.InvalidParameterError, match="power of two"):
        wdk.NdisGetDataBuffer(nb, 2, None, 3, 0)
    wdk.NdisFreeNetBuffer(nb)
    free_mdls(m)


def test_copy_between_net_buffers(no_leaks):
    src = wfpsim.NetBufferList.from_bytes(b"0123456789")
    dst_mem = bytearray(8)
    dm = wdk.NdisAllocateMdl(None, dst_mem, 8)
    dst = wdk.NdisAllocateNetBuffer(None, dm, 0, 0)
    status, copied = wdk.NdisCopyFromNetBufferToNetBuffer(dst, 3, 100, src.FirstNetBuffer, 4)
    assert (status, copied) == (NDIS_STATUS_SUCCESS, 5)
    assert dst_mem == b"\0\0\x0045678"
    assert dst.DataLength == 0
    wdk.NdisFreeNetBuffer(dst)
    dm.free()
    src.free()


# ---- clones, parents, references ----


def test_wfp_clone_shares_memory_and_counts_children(no_leaks):
    nbl = wfpsim.NetBufferList.from_bytes(bytes(range(40)), backfill=20)
    status, clone = wdk.FwpsAllocateCloneNetBufferList0(nbl, None, None, 0)
    assert status == STATUS_SUCCESS
    assert clone.ParentNetBufferList is nbl and nbl.ChildRefCount == 1
    clone.FirstNetBuffer.data[0] = 0xEE
    assert nbl.FirstNetBuffer.tobytes()[0] == 0xEE
    # the clone inherits the original's offset; its headroom is the parent's memory
    assert clone.FirstNetBuffer.DataOffset == 20
    clone.FirstNetBuffer.retreat(20)
    assert nbl.FirstNetBuffer.DataOffset == 20
    with pytest.raises(wfpsim.InvalidStateError, match="clone") as err:
        wdk.FwpsFreeNetBufferList0(nbl)
    assert err.value.status is not None
    with pytest.raises(wfpsim.InvalidStateError, match="FwpsFreeCloneNetBufferList0"):
        wdk.FwpsFreeNetBufferList0(clone)
    assert wdk.FwpsAllocateCloneNetBufferList0(nbl, None, None, 1) == (
        STATUS_INVALID_PARAMETER,
        None,
    )
    wdk.FwpsFreeCloneNetBufferList0(clone, 0)
    assert nbl.ChildRefCount == 0
    with pytest.raises(wfpsim.DoubleFreeError):
        wdk.FwpsFreeCloneNetBufferList0(clone, 0)
    wdk.FwpsFreeNetBufferList0(nbl)
    with pytest.raises(wfpsim.UseAfterFreeError, match="freed"):
        nbl.FirstNetBuffer


def test_ndis_clone_is_maintained_by_the_caller(no_leaks):
    nbl = wfpsim.NetBufferList.from_bytes(b"abcdef")
    clone = wdk.NdisAllocateCloneNetBufferList(
        nbl, None, None, wdk.NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS
    )
    assert clone.ParentNetBufferList is None and nbl.ChildRefCount == 0
    assert clone.FirstNetBuffer.MdlChain is nbl.FirstNetBuffer.MdlChain
    clone.ParentNetBufferList = nbl
    nbl.ChildRefCount += 1
    with pytest.raises(wfpsim.InvalidParameterError, match="differ"):
        wdk.NdisFreeCloneNetBufferList(clone, 0)
    wdk.NdisFreeCloneNetBufferList(clone, wdk.NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS)
    nbl.ChildRefCount -= 1
    nbl.free()


def test_references_pair_and_block_free(no_leaks):
    nbl = wfpsim.NetBufferList.from_bytes(b"x")
    wdk.FwpsReferenceNetBufferList0(nbl, True)
    assert nbl.references == 1 and nbl.intend_to_modify
    with pytest.raises(wfpsim.InvalidStateError, match="referenced"):
        nbl.free()
    wdk.FwpsDereferenceNetBufferList0(nbl, False)
    with pytest.raises(wfpsim.ContractViolation, match="matching"):
        wdk.FwpsDereferenceNetBufferList0(nbl, False)
    nbl.free()


# ---- context, pools ----


def test_context_area_with_backfill(no_leaks):
    nbl = wdk.NdisAllocateNetBufferList(None, 16, 16)
    assert wdk.NET_BUFFER_LIST_CONTEXT_DATA_SIZE(nbl) == 32
    ctx = wdk.NET_BUFFER_LIST_CONTEXT_DATA_START(nbl)
    assert len(ctx) == 16
    ctx[0] = 7
    assert wdk.NdisAllocateNetBufferListContext(nbl, 16, 0, 0) == NDIS_STATUS_SUCCESS
    assert len(wdk.NET_BUFFER_LIST_CONTEXT_DATA_START(nbl)) == 32
    assert wdk.NET_BUFFER_LIST_CONTEXT_DATA_START(nbl)[16] == 7
    assert wdk.NdisAllocateNetBufferListContext(nbl, 8, 0, 0) == STATUS_INVALID_PARAMETER
    wdk.NdisFreeNetBufferListContext(nbl, 16)
    wdk.NdisFreeNetBufferList(nbl)


def test_pools(no_leaks):
    params = wdk.NET_BUFFER_LIST_POOL_PARAMETERS(
        fAllocateNetBuffer=True, DataSize=64, PoolTag=0x6D697366
    )
    pool = wdk.NdisAllocateNetBufferListPool(None, params)
    nbl = wdk.NdisAllocateNetBufferList(pool, 0, 0)
    nb = nbl.FirstNetBuffer
    assert nb.DataLength == 64 and nb.MdlChain.ByteCount == 64
    with pytest.raises(wfpsim.InvalidParameterError, match="DataSize = 0"):
        wdk.NdisAllocateNetBufferAndNetBufferList(pool, 0, 0, None, 0, 0)
    with pytest.raises(wfpsim.InvalidStateError, match="still has"):
        wdk.NdisFreeNetBufferListPool(pool)
    wdk.NdisFreeNetBufferList(nbl)
    wdk.NdisFreeNetBufferListPool(pool)
    nb_pool = wdk.NdisAllocateNetBufferPool(None, wdk.NET_BUFFER_POOL_PARAMETERS(DataSize=10))
    nb = wdk.NdisAllocateNetBufferMdlAndData(nb_pool)
    assert nb.tobytes() == bytes(10)
    wdk.NdisFreeNetBuffer(nb)
    wdk.NdisFreeNetBufferPool(nb_pool)
    with pytest.raises(wfpsim.InvalidParameterError, match="fAllocateNetBuffer"):
        wdk.NdisAllocateNetBufferListPool(None, wdk.NET_BUFFER_LIST_POOL_PARAMETERS(DataSize=8))


# ---- safety ----


def test_use_after_free_and_double_free_name_the_rule():
    m = wdk.NdisAllocateMdl(None, bytearray(4), 4)
    m.free()
    with pytest.raises(wfpsim.UseAfterFreeError, match="use after free"):
        m.ByteCount
    with pytest.raises(wfpsim.DoubleFreeError, match="double free"):
        m.free()
    nb = wdk.NdisAllocateNetBuffer(None, None, 0, 0)
    nb.free()
    with pytest.raises(wfpsim.UseAfterFreeError):
        nb.retreat(1)


def test_leak_report_names_the_python_line():
    nbl = wfpsim.NetBufferList.from_bytes(b"leak me")  # the line the report must name
    leaks = [x for x in wfpsim.leak_report() if x["handle"] == nbl.handle]
    assert leaks and leaks[0]["kind"] == "NET_BUFFER_LIST"
    assert (
        "test_nbl_faces.py" in leaks[0]["site"]
        and "test_leak_report_names_the_python_line" in leaks[0]["site"]
    )
    nbl.free()
    assert not [x for x in wfpsim.leak_report() if x["handle"] == nbl.handle]


def test_mdl_chain_cycle_is_an_error_not_a_hang(no_leaks):
    m, _ = chain_of(4, 4)
    m.Next.Next = m
    with pytest.raises(wfpsim.WfpError, match="cycle"):
        wdk.NdisAllocateNetBuffer(None, m, 0, 4)
    m.Next.Next = None
    free_mdls(m)


# ---- batch forms ----


def test_chain_from_packed_buffer_is_zero_copy(no_leaks):
    packets = [bytes([i]) * (10 + i) for i in range(50)]
    packed = bytearray(b"".join(packets))
    offsets = np.cumsum([0] + [len(p) for p in packets[:-1]]).astype(np.uint64)
    lengths = np.array([len(p) for p in packets], dtype=np.uint32)
    with wfpsim.chain_from_buffer(packed, offsets, lengths) as chain:
        assert len(chain) == 50
        assert [n.FirstNetBuffer.tobytes() for n in chain] == packets
        packed[0] = 0xFF
        assert chain[0].FirstNetBuffer.tobytes()[0] == 0xFF
        chain.retreat(0)
        assert chain.advance(5) == 50
        data, offs, lens = chain.export()
        assert data.dtype == np.uint8 and lens.tolist() == [len(p) - 5 for p in packets]
        assert bytes(data[offs[3] : offs[3] + lens[3]]) == packets[3][5:]
        with pytest.raises(wfpsim.InvalidParameterError, match="past the data"):
            chain.advance(10)
        assert chain.retreat(5) == 50
        assert chain.head.Next is chain[1]


def test_chain_lengths_default_to_the_next_offset(no_leaks):
    with wfpsim.chain_from_buffer(b"aaabbbbcc", [0, 3, 7]) as chain:
        assert [bytes(n) for n in chain] == [b"aaa", b"bbbb", b"cc"]
    with pytest.raises(wfpsim.InvalidParameterError, match="outside"):
        wfpsim.chain_from_buffer(b"abc", [0], [4])


def test_split_makes_single_nb_nbls(no_leaks):
    nbl = wfpsim.NetBufferList.from_buffers([b"one", b"two", b"three"])
    parts = nbl.split()
    assert [len(p.net_buffers) for p in parts] == [1, 1, 1]
    assert [bytes(p) for p in parts] == [b"one", b"two", b"three"]
    assert nbl.ChildRefCount == 3 and all(p.ParentNetBufferList is nbl for p in parts)
    parts.free()
    nbl.free()
