# ruff: noqa: F403, F405  (WDK constants are imported by name, as driver code does)
"""FWPS_STREAM_DATA0 over NBL chains: dataOffset (NBL, NB, MDL, mdlOffset), and the helpers
FwpsCopyStreamDataToBuffer0 / FwpsCloneStreamData0 / FwpsDiscardClonedStreamData0, byte-exact over
multi-MDL, multi-NB and multi-NBL chains (`nbl.md §10.5`, `layers.md §9`)."""

from __future__ import annotations

import numpy as np
import pytest
from filterkit import Chains, meta, values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wfpsim
from wfpsim import wdk
from wfpsim.constants import *
from wfpsim.errors import InvalidParameterError
from wfpsim.filtering import FilterEngine
from wfpsim.filtering.stream import chain_length, locate
from wfpsim.fwps_types import FWPS_STREAM_DATA0
from wfpsim.status import NTSTATUS

S = FWPS_LAYER_STREAM_V4
R = FWPS_STREAM_FLAG_RECEIVE


@pytest.fixture
def chains(no_leaks):
    c = Chains()
    yield c
    c.free()


def sample_chain(c: Chains):
    """3 NBLs: [NB 'ABCDEFGHIJ' in MDLs ABC|DEFG|HIJ with 5 bytes headroom, NB 'klmno' in kl|mno],
    [NB 'pq'], [NB 'RSTUVWXYZ' in R|STUVWXY|Z]."""
    n1 = c.nbl(c.nb(b"ABCDEFGHIJ", (3, 7), 5), c.nb(b"klmno", (2,), 0))
    n2 = c.nbl(c.nb(b"pq"))
    n3 = c.nbl(c.nb(b"RSTUVWXYZ", (1, 8), 3))
    return c.chain(n1, n2, n3), b"ABCDEFGHIJklmnopqRSTUVWXYZ"


def sd_at(chain, start, length, flags=R):
    return FWPS_STREAM_DATA0(flags, locate(chain, start), length, chain)


def clone_bytes(clone) -> bytes:
    out, nbl = [], clone
    while nbl is not None:
        out.append(nbl.tobytes())
        nbl = nbl.Next
    return b"".join(out)


def test_locate_points_at_the_nbl_nb_mdl_and_offset(chains):
    chain, data = sample_chain(chains)
    n1, n2, n3 = chain, chain.Next, chain.Next.Next
    nb_a, nb_b = n1.net_buffers
    mdls_a = nb_a.mdls()
    cases = [
        (0, n1, nb_a, mdls_a[0], 5),  # headroom: DataOffset 5 inside the first MDL
        (3, n1, nb_a, mdls_a[1], 0),  # at an MDL boundary: the next MDL, offset 0
        (9, n1, nb_a, mdls_a[2], 2),
        (10, n1, nb_b, nb_b.mdls()[0], 0),
        (13, n1, nb_b, nb_b.mdls()[1], 1),
        (15, n2, n2.FirstNetBuffer, n2.FirstNetBuffer.mdls()[0], 0),
        (17, n3, n3.FirstNetBuffer, n3.FirstNetBuffer.mdls()[0], 3),
        (25, n3, n3.FirstNetBuffer, n3.FirstNetBuffer.mdls()[2], 0),
    ]
    for start, nbl, nb, mdl, off in cases:
        o = locate(chain, start)
        assert (o.netBufferList, o.netBuffer, o.mdl, o.mdlOffset) == (nbl, nb, mdl, off), start
        assert o.streamDataOffset == start
        mdl_bytes = bytes(o.mdl.data)
        assert mdl_bytes[o.mdlOffset] == data[start]
    assert chain_length(chain) == len(data)


@pytest.mark.parametrize(
    "start,length", [(0, 26), (0, 1), (4, 9), (9, 8), (15, 2), (16, 10), (25, 1), (3, 0)]
)
def test_copy_stream_data_to_buffer_is_byte_exact(chains, start, length):
    chain, data = sample_chain(chains)
    buf = bytearray(40)
    status, copied = wdk.FwpsCopyStreamDataToBuffer0(sd_at(chain, start, length), buf, 40)
    assert status is None and copied == length
    assert bytes(buf[:copied]) == data[start : start + length]
    # a short copy stops at bytesToCopy
    buf2 = np.zeros(40, dtype=np.uint8)
    _, copied = wdk.FwpsCopyStreamDataToBuffer0(sd_at(chain, start, length), buf2, min(3, length))
    assert copied == min(3, length) and bytes(buf2[:copied]) == data[start : start + copied]


def test_copy_rejects_a_short_or_readonly_buffer(chains):
    chain, _ = sample_chain(chains)
    with pytest.raises(InvalidParameterError):
        wdk.FwpsCopyStreamDataToBuffer0(sd_at(chain, 0, 26), bytearray(4), 26)
    with pytest.raises(InvalidParameterError):
        wdk.FwpsCopyStreamDataToBuffer0(sd_at(chain, 0, 26), b"x" * 30, 26)
    with pytest.raises(InvalidParameterError):
        wdk.FwpsCopyStreamDataToBuffer0(sd_at(chain, 0, 30), bytearray(30), 30)  # past the chain


@pytest.mark.parametrize(
    "start,length", [(0, 26), (2, 5), (5, 6), (9, 8), (10, 5), (15, 2), (14, 5), (16, 10), (25, 1)]
)
def test_clone_stream_data_holds_exactly_the_indicated_bytes(chains, start, length):
    chain, data = sample_chain(chains)
    status, clone = wdk.FwpsCloneStreamData0(sd_at(chain, start, length), None, None, 0)
    assert status == NTSTATUS.STATUS_SUCCESS
    assert clone_bytes(clone) == data[start : start + length]
    parents = []
    nbl = clone
    while nbl is not None:
        assert nbl.kind == "wfp_clone"
        parents.append(nbl.ParentNetBufferList)
        nbl = nbl.Next
    originals = [chain, chain.Next, chain.Next.Next]
    assert all(p in originals for p in parents) and len(set(map(id, parents))) == len(parents)
    assert sum(o.ChildRefCount for o in originals) == len(parents)
    # each clone NBL is freed on its own, as a completion function does
    nbl = clone
    while nbl is not None:
        nxt = nbl.Next
        wdk.FwpsFreeCloneNetBufferList0(nbl, 0)
        nbl = nxt
    assert sum(o.ChildRefCount for o in originals) == 0


def test_clone_then_discard(chains):
    chain, data = sample_chain(chains)
    _, clone = wdk.FwpsCloneStreamData0(sd_at(chain, 4, 20), None, None, 0)
    assert clone_bytes(clone) == data[4:24]
    assert wdk.FwpsDiscardClonedStreamData0(clone, 0, False) is None
    assert chain.ChildRefCount == chain.Next.ChildRefCount == chain.Next.Next.ChildRefCount == 0


def test_clone_of_an_empty_fin_indication(chains):
    fin = chains.nbl(chains.nb(b""))
    status, clone = wdk.FwpsCloneStreamData0(
        sd_at(fin, 0, 0, R | FWPS_STREAM_FLAG_RECEIVE_DISCONNECT), None, None, 0
    )
    assert status == 0 and clone is not None and clone.tobytes() == b"" and clone.Next is None
    wdk.FwpsDiscardClonedStreamData0(clone, 0, False)
    assert wdk.FwpsCloneStreamData0(
        FWPS_STREAM_DATA0(R, locate(None, 0), 0, None), None, None, 0
    ) == (0, None)


def test_clone_errors(chains):
    chain, _ = sample_chain(chains)
    assert wdk.FwpsCloneStreamData0(sd_at(chain, 0, 4), None, None, 1) == (
        NTSTATUS.STATUS_INVALID_PARAMETER,
        None,
    )
    assert wdk.FwpsCloneStreamData0(None, None, None, 0) == (
        NTSTATUS.STATUS_INVALID_PARAMETER,
        None,
    )
    assert (
        wdk.FwpsCloneStreamData0(sd_at(chain, 20, 10), None, None, 0)[0]
        == NTSTATUS.STATUS_INVALID_PARAMETER
    )
    # an allocation failure in the middle of the chain frees the clones made so far
    wfpsim.fail_allocations(2)
    try:
        status, clone = wdk.FwpsCloneStreamData0(sd_at(chain, 0, 26), None, None, 0)
    finally:
        wfpsim.fail_allocations(0)
    assert (status, clone) == (NTSTATUS.STATUS_INSUFFICIENT_RESOURCES, None)
    assert chain.ChildRefCount == chain.Next.ChildRefCount == chain.Next.Next.ChildRefCount == 0


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    layout=st.lists(
        st.lists(
            st.tuples(
                st.binary(min_size=0, max_size=12),
                st.integers(0, 4),
                st.lists(st.integers(1, 11), max_size=3),
            ),
            min_size=1,
            max_size=3,
        ),
        min_size=1,
        max_size=4,
    ),
    window=st.tuples(st.integers(0, 200), st.integers(0, 200)),
)
def test_property_copy_and_clone_match_the_reference_bytes(layout, window):
    before = {(x["kind"], x["handle"]) for x in wfpsim.leak_report()}
    c = Chains()
    try:
        nbls = [
            c.nbl(*[c.nb(data, tuple(sorted(cuts)), head) for data, head, cuts in nbs])
            for nbs in layout
        ]
        chain = c.chain(*nbls)
        ref = b"".join(data for nbs in layout for data, _, _ in nbs)
        start = window[0] % (len(ref) + 1)
        length = window[1] % (len(ref) - start + 1)
        sd = sd_at(chain, start, length)
        buf = bytearray(length + 1)
        _, copied = wdk.FwpsCopyStreamDataToBuffer0(sd, buf, length)
        assert bytes(buf[:copied]) == ref[start : start + length]
        status, clone = wdk.FwpsCloneStreamData0(sd, None, None, 0)
        assert status == 0
        assert clone_bytes(clone) == ref[start : start + length]
        wdk.FwpsDiscardClonedStreamData0(clone, 0, False)
    finally:
        c.free()
    assert not [x for x in wfpsim.leak_report() if (x["kind"], x["handle"]) not in before]


# ------------------------------------------------------------------------------------------------
# What the stream layer hands the callout
# ------------------------------------------------------------------------------------------------


def test_stream_layer_indications_point_into_the_callers_chain(chains):
    """PERMIT with countBytesEnforced re-indicates the rest of the same chain, dataOffset moved."""
    chain, data = sample_chain(chains)
    e = FilterEngine()
    seen = []
    steps = iter([4, 8, 5, 0])

    def classify(v, m, io, flt, ctx, out):
        sd = io.streamData
        o = sd.dataOffset
        buf = bytearray(sd.dataLength)
        wdk.FwpsCopyStreamDataToBuffer0(sd, buf, len(buf))
        seen.append(
            (
                o.netBufferList,
                o.netBuffer,
                o.mdl,
                o.mdlOffset,
                sd.dataLength,
                bytes(buf),
                sd.netBufferListChain,
                sd.flags,
            )
        )
        out.actionType = FWP_ACTION_PERMIT
        io.countBytesEnforced = next(steps)

    e.register_callout(classify, key="s")
    e.add_filter(S, FWP_ACTION_CALLOUT_TERMINATING, callout_key="s")
    verdict = e.stream_classify_nbl(
        S, values(S), meta(7), 7, R | FWPS_STREAM_FLAG_RECEIVE_PUSH, chain, 26
    )
    assert [s[5] for s in seen] == [data, data[4:], data[12:], data[17:]]
    assert [s[4] for s in seen] == [26, 22, 14, 9]
    assert all(s[6] is chain for s in seen)
    for s, start in zip(seen, (0, 4, 12, 17), strict=True):
        o = locate(chain, start)
        assert (s[0], s[1], s[2], s[3]) == (o.netBufferList, o.netBuffer, o.mdl, o.mdlOffset)
        assert s[7] == R | FWPS_STREAM_FLAG_RECEIVE_PUSH
    assert verdict.data == data and [len(x.data) for x in verdict.outputs] == [4, 8, 5, 9]
    e.flow_end(7)
    assert e.outstanding()["stream_nbls"] == 0


def test_clone_of_an_indication_survives_the_call_and_is_freed_by_the_callout(chains):
    """OOB pattern: clone every indication, block it; the caller's NBLs keep ChildRefCount up
    until the callout frees its clones."""
    chain, data = sample_chain(chains)
    e = FilterEngine()
    clones = []

    def classify(v, m, io, flt, ctx, out):
        status, clone = wdk.FwpsCloneStreamData0(io.streamData, None, None, 0)
        assert status == 0
        clones.append(clone)
        out.actionType = FWP_ACTION_BLOCK

    e.register_callout(classify, key="s")
    e.add_filter(S, FWP_ACTION_CALLOUT_TERMINATING, callout_key="s")
    v = e.stream_classify_nbl(S, values(S), meta(7), 7, R, chain, 26)
    assert (v.data, v.blocked) == (b"", 26)
    assert clone_bytes(clones[0]) == data and chain.ChildRefCount == 1
    wdk.FwpsDiscardClonedStreamData0(clones[0], 0, False)
    assert chain.ChildRefCount == 0
    e.flow_end(7)
