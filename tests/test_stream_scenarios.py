# ruff: noqa: F403, F405  (WDK constants are imported by name, as driver code does)
"""The stream-layer acceptance scenarios the filter engine can run on its own (`samples.md §9.3,
§9.4`): stmedit inline (S-15, S-16, S-17) and out-of-band (S-18, S-20, S-21, S-22) editing, both
sets chained (S-19), unload with active flows (S-24), WFPSampler's basic stream injection (S-33).

The callouts below are our own Python, written from the step lists of samples.md §3 and §4.5.
FwpsStreamInjectAsync0 belongs to the stack (issue #4); :class:`filterkit.FakeStreamInjector`
stands in for it here (flag checks, synchronous hand-over to the engine, one completion per NBL).
"""

from __future__ import annotations

import pytest
from filterkit import App, Chains, FakeStreamInjector, meta, values

import wfpsim
from wfpsim import Mdl, NetBufferList, wdk
from wfpsim.constants import *
from wfpsim.filtering import FilterEngine
from wfpsim.fwps_types import FWPS_CALLOUT0
from wfpsim.status import NTSTATUS

S = FWPS_LAYER_STREAM_V4
R = FWPS_STREAM_FLAG_RECEIVE
FIN_R = R | FWPS_STREAM_FLAG_RECEIVE_DISCONNECT
DISCONNECT = FWPS_STREAM_FLAG_RECEIVE_DISCONNECT | FWPS_STREAM_FLAG_SEND_DISCONNECT
FLOW = 0x3_0001


def indicated(stream_data) -> bytes:
    buf = bytearray(stream_data.dataLength)
    _, n = wdk.FwpsCopyStreamDataToBuffer0(stream_data, buf, len(buf))
    return bytes(buf[:n])


class Host:
    """One engine, one application, one stand-in FwpsStreamInjectAsync0."""

    def __init__(self):
        self.e = FilterEngine()
        self.app = App()
        self.inject = FakeStreamInjector(self.e, self.app)
        self.mdls: list[Mdl] = []
        self.indicated: list[NetBufferList] = []

    def reap(self):
        """What the stack does with indicated NBLs: free each once its clones are gone."""
        keep = []
        for nbl in self.indicated:
            if nbl.ChildRefCount:
                keep.append(nbl)
            else:
                nbl.free()
        self.indicated = keep

    def send(self, data: bytes, flags: int = R, flow: int = FLOW):
        nbl = NetBufferList.from_bytes(data)
        self.indicated.append(nbl)
        try:
            return self.e.stream_classify_nbl(
                S, values(S), meta(flow), flow, flags, nbl, len(data), deliver=self.app.deliver
            )
        finally:
            self.reap()

    def fin(self, flow: int = FLOW, *, nbl: bool = True):
        """The FIN indication: an empty NBL (what the seam path builds), or none at all."""
        chain = NetBufferList.from_bytes(b"") if nbl else None
        if chain is not None:
            self.indicated.append(chain)
        try:
            return self.e.stream_classify_nbl(
                S, values(S), meta(flow), flow, FIN_R, chain, 0, deliver=self.app.deliver
            )
        finally:
            self.reap()

    def close(self):
        for flow in (FLOW, FLOW + 1):
            self.e.flow_end(flow)
        self.e.close()
        self.reap()
        assert not self.indicated, "clones of indicated NBLs were never freed"
        for mdl in self.mdls:
            mdl.free()


@pytest.fixture
def host(no_leaks):
    h = Host()
    yield h
    h.close()


def _free_nbl(context, nbl, dispatch_level):
    wdk.FwpsFreeNetBufferList0(nbl)


def _free_clone(context, nbl, dispatch_level):
    wdk.FwpsFreeCloneNetBufferList0(nbl, 0)


class InlineEditor:
    """stmedit's inline editing (samples.md §3.3), replacing `find` by `replace`."""

    def __init__(self, host: Host, find: bytes, replace: bytes, sublayer: int, key: str = "inline"):
        self.host, self.find, self.replace = host, find, replace
        self.state, self.partial, self.partial_flags = "IDLE", b"", 0
        self.log: list[tuple[bytes, str, int]] = []
        # the replacement lives in one driver-global MDL, reused by every injection
        self.replace_mdl = Mdl.allocate(bytearray(replace))
        host.mdls.append(self.replace_mdl)
        host.e.add_sublayer(f"sub-{key}", sublayer)
        _, self.callout_id = wdk.FwpsCalloutRegister0(
            wdk.DEVICE_OBJECT(host.e),
            FWPS_CALLOUT0(
                key, FWP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW, self.classify, None, self.flow_delete
            ),
        )
        host.e.add_filter(S, FWP_ACTION_CALLOUT_TERMINATING, callout_key=key, sublayer=f"sub-{key}")
        self.deleted = []

    def flow_delete(self, layer_id, callout_id, flow_context):
        self.deleted.append(flow_context)

    def _inject(self, flow, nbl, length, flags, completion):
        status = self.host.inject(flow, self.callout_id, S, flags, nbl, length, completion)
        assert status == NTSTATUS.STATUS_SUCCESS

    def _inject_bytes(self, flow, data, flags):
        assert not flags & DISCONNECT
        mdl = Mdl.allocate(bytearray(data))
        self.host.mdls.append(mdl)
        _, nbl = wdk.FwpsAllocateNetBufferAndNetBufferList0(None, 0, 0, mdl, 0, len(data))
        self._inject(flow, nbl, len(data), flags, _free_nbl)

    def _flush(self, flow):
        if self.partial:
            self._inject_bytes(flow, self.partial, self.partial_flags)
            self.partial = b""

    def _replace(self, flow, flags):
        _, nbl = wdk.FwpsAllocateNetBufferAndNetBufferList0(
            None, 0, 0, self.replace_mdl, 0, len(self.replace)
        )
        self._inject(flow, nbl, len(self.replace), flags, _free_nbl)

    def classify(self, v, m, io, flt, flow_context, out):
        sd = io.streamData
        data = indicated(sd)
        flow = m.flowHandle

        def done(action, enforced=0, stream_action=FWPS_STREAM_ACTION_NONE, required=0, why=""):
            out.actionType, io.countBytesEnforced = action, enforced
            io.streamAction, io.countBytesRequired = stream_action, required
            self.log.append(
                (data, why, enforced if stream_action == FWPS_STREAM_ACTION_NONE else required)
            )

        if sd.flags & DISCONNECT:
            self._flush(flow)
            return done(FWP_ACTION_PERMIT, why="fin")
        if not data:
            return done(FWP_ACTION_PERMIT, why="empty")
        if (
            self.state != "SKIPPING"
            and len(data) < len(self.find)
            and not out.flags & FWPS_CLASSIFY_OUT_FLAG_NO_MORE_DATA
        ):
            return done(
                FWP_ACTION_NONE,
                stream_action=FWPS_STREAM_ACTION_NEED_MORE_DATA,
                required=len(self.find),
                why="need",
            )
        if self.state == "SKIPPING":
            self.state = "IDLE"
            return done(FWP_ACTION_BLOCK, why="skip")
        held = len(self.partial)
        buf = self.partial + data
        i = buf.find(self.find)
        if i == 0:  # the held bytes (a prefix of the pattern) start the match
            self._replace(flow, sd.flags)
            self.partial = b""
            return done(FWP_ACTION_BLOCK, len(self.find) - held, why="replace")
        assert not 0 < i < held, "a match overlapping held bytes is outside these scenarios"
        if held and i == held:  # the held bytes were not the start of the match
            self._flush(flow)
            self._replace(flow, sd.flags)
            return done(FWP_ACTION_BLOCK, len(self.find), why="replace")
        if i > held:
            self._flush(flow)
            return done(FWP_ACTION_PERMIT, i - held, why="before-match")
        if out.flags & FWPS_CLASSIFY_OUT_FLAG_NO_MORE_DATA:
            self._flush(flow)
            return done(FWP_ACTION_PERMIT, why="no-more-data")
        for k in range(min(len(self.find) - 1, len(data)), 0, -1):
            if buf.endswith(self.find[:k]):
                self._flush(flow)
                self.partial, self.partial_flags = buf[-k:], sd.flags
                if len(data) - k > 0:
                    self.state = "SKIPPING"
                    return done(FWP_ACTION_PERMIT, len(data) - k, why="before-partial")
                return done(FWP_ACTION_BLOCK, why="partial")
        self._flush(flow)
        return done(FWP_ACTION_PERMIT, why="no-match")


class OobEditor:
    """stmedit's out-of-band editing (samples.md §3.4): classify clones and blocks everything,
    a worker (run by the test) edits and re-injects in order; DEFER above `busy` pended bytes."""

    def __init__(
        self,
        host: Host,
        find: bytes,
        replace: bytes,
        sublayer: int,
        busy: int = 1 << 20,
        key: str = "oob",
    ):
        self.host, self.find, self.replace, self.busy = host, find, replace, busy
        self.tasks: list[tuple[object, int, int]] = []
        self.state, self.pended, self.terminating, self.deferred_flags = "IDLE", 0, False, 0
        self.seen: list[bytes] = []
        self.completions = 0
        self.replace_mdl = Mdl.allocate(bytearray(replace))
        host.mdls.append(self.replace_mdl)
        host.e.add_sublayer(f"sub-{key}", sublayer)
        _, self.callout_id = wdk.FwpsCalloutRegister0(
            wdk.DEVICE_OBJECT(host.e), FWPS_CALLOUT0(key, 0, self.classify, None, lambda *a: None)
        )
        host.e.add_filter(S, FWP_ACTION_CALLOUT_TERMINATING, callout_key=key, sublayer=f"sub-{key}")

    def classify(self, v, m, io, flt, ctx, out):
        sd = io.streamData
        self.seen.append(indicated(sd))
        out.actionType, io.streamAction, io.countBytesEnforced = (
            FWP_ACTION_BLOCK,
            FWPS_STREAM_ACTION_NONE,
            0,
        )
        no_more = out.flags & FWPS_CLASSIFY_OUT_FLAG_NO_MORE_DATA
        if sd.dataLength < len(self.find) and not no_more and not sd.flags & DISCONNECT:
            out.actionType, io.streamAction, io.countBytesRequired = (
                FWP_ACTION_NONE,
                FWPS_STREAM_ACTION_NEED_MORE_DATA,
                len(self.find),
            )
            return
        if self.terminating:
            return
        if (
            self.state == "PROCESSING"
            and sd.flags & R
            and sd.dataLength
            and self.pended + sd.dataLength > self.busy
        ):
            out.actionType, io.streamAction = FWP_ACTION_NONE, FWPS_STREAM_ACTION_DEFER
            self.state, self.deferred_flags = "BUSY", sd.flags
            return
        status, chain = wdk.FwpsCloneStreamData0(sd, None, None, 0)
        if status != NTSTATUS.STATUS_SUCCESS:
            out.actionType, io.streamAction = FWP_ACTION_NONE, FWPS_STREAM_ACTION_DROP_CONNECTION
            return
        self.tasks.append((chain, sd.flags, sd.dataLength))
        if sd.flags & DISCONNECT and sd.dataLength == 0:
            self.terminating = True
        self.pended += sd.dataLength
        self.state = "PROCESSING"

    def _count(self, fn):
        def completion(context, nbl, dispatch_level):
            self.completions += 1
            fn(context, nbl, dispatch_level)

        return completion

    def work(self, flow: int = FLOW, *, fail: bool = False):
        """Runs the queued tasks in order."""
        inject = self.host.inject
        while self.tasks:
            chain, flags, length = self.tasks.pop(0)
            if fail:
                wdk.FwpsDiscardClonedStreamData0(chain, 0, False)
                continue
            if length == 0:
                assert (
                    inject(flow, self.callout_id, S, flags, chain, 0, self._count(_free_clone)) == 0
                )
                continue
            data = b""
            nbl = chain
            while nbl is not None:
                data += nbl.tobytes()
                nbl = nbl.Next
            i = data.find(self.find)
            if i < 0:
                assert (
                    inject(flow, self.callout_id, S, flags, chain, length, self._count(_free_clone))
                    == 0
                )
            else:
                before, after = data[:i], data[i + len(self.find) :]
                for piece in (before, None, after):
                    if piece == b"":
                        continue
                    if piece is None:
                        _, n = wdk.FwpsAllocateNetBufferAndNetBufferList0(
                            None, 0, 0, self.replace_mdl, 0, len(self.replace)
                        )
                        assert (
                            inject(
                                flow,
                                self.callout_id,
                                S,
                                flags,
                                n,
                                len(self.replace),
                                self._count(_free_nbl),
                            )
                            == 0
                        )
                        continue
                    mdl = Mdl.allocate(bytearray(piece))
                    self.host.mdls.append(mdl)
                    _, n = wdk.FwpsAllocateNetBufferAndNetBufferList0(
                        None, 0, 0, mdl, 0, len(piece)
                    )
                    assert (
                        inject(
                            flow,
                            self.callout_id,
                            S,
                            flags & ~DISCONNECT,
                            n,
                            len(piece),
                            self._count(_free_nbl),
                        )
                        == 0
                    )
                wdk.FwpsDiscardClonedStreamData0(chain, 0, False)
            self.pended -= length
        if self.state == "BUSY" and self.pended <= self.busy // 4:
            self.state = "IDLE"
            with self.host.e:
                assert wdk.FwpsStreamContinue0(flow, self.callout_id, S, self.deferred_flags) == 0


# ------------------------------------------------------------------------------------------------
# stmedit inline (sublayer 0x20 in the sample)
# ------------------------------------------------------------------------------------------------


def associate(host: Host, *editors, flow: int = FLOW):
    for i, ed in enumerate(editors):
        assert host.e.flow_associate_context(flow, S, ed.callout_id, 0x100 + i) == 0


def test_s15_inline_replace_in_the_middle(host):
    ed = InlineEditor(host, b"cloudy", b"sunny", 0x20)
    associate(host, ed)
    v = host.send(b"abc cloudy defghi")
    assert [(d, why, n) for d, why, n in ed.log] == [
        (b"abc cloudy defghi", "before-match", 4),
        (b"cloudy defghi", "replace", 6),
        (b" defghi", "no-match", 0),
    ]
    assert bytes(host.app.data) == b"abc sunny defghi"
    assert [e[0] for e in host.app.events] == [b"abc ", b"sunny", b" defghi"]
    assert (v.blocked, v.held) == (6, 0)
    assert len(host.inject.completions) == 1


def test_s16_inline_pattern_split_across_indications(host):
    ed = InlineEditor(host, b"cloudy", b"sunny", 0x20)
    associate(host, ed)
    host.send(b"abc clo")
    host.send(b"udy is here")
    assert [(d, why, n) for d, why, n in ed.log] == [
        (b"abc clo", "before-partial", 4),
        (b"clo", "skip", 0),
        (b"udy is here", "replace", 3),
        (b" is here", "no-match", 0),
    ]
    assert bytes(host.app.data) == b"abc sunny is here"


def test_s17_need_more_data_until_enough_or_fin(host):
    ed = InlineEditor(host, b"cloudy", b"sunny", 0x20)
    associate(host, ed)
    v = host.send(b"abc")
    assert ed.log == [(b"abc", "need", 6)] and v.held == 3
    host.send(b"def")  # 3 additional bytes < countBytesRequired
    assert len(ed.log) == 1
    v = host.fin()  # NO_MORE_DATA re-indication, then the FIN itself
    assert [(d, why) for d, why, _ in ed.log[1:]] == [(b"abcdef", "no-more-data"), (b"", "fin")]
    assert bytes(host.app.data) == b"abcdef" and host.app.fin and v.fin
    assert host.app.events[-1] == (b"", FIN_R)


def test_s17_need_more_data_satisfied_by_additional_bytes(host):
    ed = InlineEditor(host, b"cloudy", b"sunny", 0x20)
    associate(host, ed)
    host.send(b"abc")
    host.send(b"cloudy!")  # 7 additional >= 6: re-indicated with all 10 bytes
    assert [(d, why) for d, why, _ in ed.log[1:]] == [
        (b"abccloudy!", "before-match"),
        (b"cloudy!", "replace"),
        (b"!", "need"),  # the 1-byte tail waits for more data or the FIN
    ]
    assert bytes(host.app.data) == b"abcsunny"
    host.fin()
    assert bytes(host.app.data) == b"abcsunny!" and host.app.fin


def test_flows_without_context_are_not_edited(host):
    ed = InlineEditor(host, b"cloudy", b"sunny", 0x20)
    host.send(b"abc cloudy")  # CONDITIONAL_ON_FLOW, no context on this flow
    assert ed.log == [] and bytes(host.app.data) == b"abc cloudy"


# ------------------------------------------------------------------------------------------------
# stmedit out of band (sublayer 0x40 in the sample)
# ------------------------------------------------------------------------------------------------


def test_s18_oob_replace(host):
    oob = OobEditor(host, b"rainy", b"cloudy", 0x40)
    v = host.send(b"it is rainy")
    assert (v.blocked, host.app.data) == (11, b"")
    assert len(oob.tasks) == 1
    oob.work()
    assert bytes(host.app.data) == b"it is cloudy"
    assert oob.completions == 2  # "it is " and "cloudy"; the cloned chain was discarded


def test_s18_oob_no_match_injects_the_cloned_chain_itself(no_leaks):
    host = Host()
    c = Chains()
    try:
        oob = OobEditor(host, b"rainy", b"cloudy", 0x40)
        chain = c.chain(c.nbl(c.nb(b"it is ", (2,), 3)), c.nbl(c.nb(b"sunny", (), 1)))
        host.e.stream_classify_nbl(
            S, values(S), meta(FLOW), FLOW, R, chain, 11, deliver=host.app.deliver
        )
        assert chain.ChildRefCount == 1 and chain.Next.ChildRefCount == 1
        oob.work()
        assert bytes(host.app.data) == b"it is sunny"
        assert oob.completions == 2  # once per NBL of the cloned chain
        assert chain.ChildRefCount == chain.Next.ChildRefCount == 0
    finally:
        host.close()
        c.free()


def test_s19_two_sublayers_chained(host):
    oob = OobEditor(host, b"rainy", b"cloudy", 0x40)
    ed = InlineEditor(host, b"cloudy", b"sunny", 0x20)
    associate(host, ed)
    host.send(b"it is rainy")
    assert ed.log == []  # the original never reaches the lower sublayer
    oob.work()
    assert bytes(host.app.data) == b"it is sunny"
    assert oob.seen == [b"it is rainy"]  # the OOB callout never sees its own "cloudy"
    assert [d for d, _, _ in ed.log] == [b"it is ", b"cloudy"]


def test_s20_fin_ordering_out_of_band(host):
    oob = OobEditor(host, b"rainy", b"cloudy", 0x40)
    host.send(b"hello world")
    v = host.fin()
    assert not v.fin and not host.app.fin  # the FIN was cloned and blocked too
    assert [t[2] for t in oob.tasks] == [11, 0] and oob.terminating
    oob.work()
    assert bytes(host.app.data) == b"hello world"
    assert host.app.events[-1] == (b"", FIN_R)  # the FIN goes out last
    assert oob.completions == 2


def test_b16_fin_without_an_nbl_is_injected_as_null_and_never_completes(host):
    oob = OobEditor(host, b"rainy", b"cloudy", 0x40)
    host.send(b"hello world")
    host.fin(nbl=False)
    assert oob.tasks[-1][0] is None
    oob.work()
    assert host.app.events[-1] == (b"", FIN_R) and oob.completions == 1


def test_s20_short_tail_then_fin(host):
    oob = OobEditor(host, b"rainy", b"cloudy", 0x40)
    host.send(b"abc")  # shorter than the pattern: NEED_MORE_DATA
    host.fin()  # held bytes with NO_MORE_DATA, then the FIN
    assert oob.seen == [b"abc", b"abc", b""]
    oob.work()
    assert bytes(host.app.data) == b"abc" and host.app.events[-1] == (b"", FIN_R)


def test_s21_defer_then_continue(host):
    oob = OobEditor(host, b"rainy", b"cloudy", 0x40, busy=8)
    host.send(b"aaaaaaaaaa")
    v = host.send(b"bbbbbbbbbb")
    assert v.deferred and oob.state == "BUSY"
    v = host.send(b"cccccc")
    assert v.deferred and v.held == 16 and oob.seen == [b"aaaaaaaaaa", b"bbbbbbbbbb"]
    oob.work()  # flushes the first task, then FwpsStreamContinue0
    assert oob.seen[-1] == b"bbbbbbbbbbcccccc" and oob.state == "PROCESSING"
    assert host.e.stream.pending_verdicts[-1].deferred is False
    oob.work()
    assert bytes(host.app.data) == b"aaaaaaaaaabbbbbbbbbbcccccc"


def test_s22_clone_failure_drops_the_connection_and_worker_error_aborts(host):
    OobEditor(host, b"rainy", b"cloudy", 0x40)
    nbl = NetBufferList.from_bytes(b"it is rainy")
    wfpsim.fail_allocations(1)
    try:
        v = host.e.stream_classify_nbl(
            S, values(S), meta(FLOW), FLOW, R, nbl, 11, deliver=host.app.deliver
        )
    finally:
        wfpsim.fail_allocations(0)
        nbl.free()
    assert v.drop_connection and host.app.data == b""
    # second flow: the worker fails; queued clones are discarded and the flow aborted
    oob = host.e.callouts.by_key("oob").classify_fn.__self__
    host.send(b"one rainy day", flow=FLOW + 1)
    host.send(b"two rainy days", flow=FLOW + 1)
    oob.work(FLOW + 1, fail=True)
    with host.e:
        assert wdk.FwpsFlowAbort0(FLOW + 1) == NTSTATUS.STATUS_SUCCESS
    assert host.e.stream.pending_verdicts[-1].drop_connection
    assert host.send(b"late", flow=FLOW + 1).blocked == 4
    assert host.app.data == b""


def test_s24_unload_with_active_flows(host):
    ed = InlineEditor(host, b"cloudy", b"sunny", 0x20)
    for flow in (FLOW, FLOW + 1):
        associate(host, ed, flow=flow)
        host.send(b"abc cloudy", flow=flow)
    with host.e:
        assert wdk.FwpsCalloutUnregisterById0(ed.callout_id) == NTSTATUS.STATUS_DEVICE_BUSY
        for flow in (FLOW, FLOW + 1):
            assert wdk.FwpsFlowRemoveContext0(flow, S, ed.callout_id) == NTSTATUS.STATUS_SUCCESS
        assert wdk.FwpsCalloutUnregisterById0(ed.callout_id) == NTSTATUS.STATUS_SUCCESS
    assert ed.deleted == [0x100, 0x100]
    assert host.e.outstanding()["flow_contexts"] == []


# ------------------------------------------------------------------------------------------------
# WFPSampler basic stream injection (samples.md §4.5)
# ------------------------------------------------------------------------------------------------


def test_s33_stream_inline_clone_reinject(no_leaks):
    host = Host()
    c = Chains()
    completions = []
    try:

        def classify(v, m, io, flt, ctx, out):
            sd = io.streamData
            out.actionType = FWP_ACTION_BLOCK
            flags = sd.flags
            if not flags & (FWPS_STREAM_FLAG_RECEIVE | FWPS_STREAM_FLAG_SEND):
                flags |= FWPS_STREAM_FLAG_RECEIVE
            io.countBytesRequired, io.countBytesEnforced, io.streamAction = 0, sd.dataLength, 0
            status, chain = wdk.FwpsCloneStreamData0(sd, None, None, 0)
            assert status == 0

            def complete(context, nbl, dispatch_level):
                completions.append(context)
                wdk.FwpsFreeCloneNetBufferList0(nbl, 0)

            status = host.inject(
                m.flowHandle,
                flt.action.calloutId,
                v.layerId,
                flags,
                chain,
                sd.dataLength,
                complete,
                "shared",
            )
            if status != 0:
                wdk.FwpsDiscardClonedStreamData0(chain, 0, False)

        host.e.register_callout(classify, key="sampler")
        host.e.add_filter(S, FWP_ACTION_CALLOUT_TERMINATING, callout_key="sampler")
        chain = c.chain(
            c.nbl(c.nb(b"GET / HTTP/1.1\r\n", (4, 9), 6), c.nb(b"Host: x\r\n", (3,))),
            c.nbl(c.nb(b"\r\n")),
            c.nbl(c.nb(b"body", (1, 2, 3))),
        )
        v = host.e.stream_classify_nbl(
            S, values(S), meta(FLOW), FLOW, R, chain, 31, deliver=host.app.deliver
        )
        assert bytes(host.app.data) == b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"
        assert v.blocked == 31
        assert completions == ["shared"] * 3  # one per NBL of the clone chain
        assert chain.ChildRefCount == chain.Next.ChildRefCount == chain.Next.Next.ChildRefCount == 0
    finally:
        host.close()
        c.free()
