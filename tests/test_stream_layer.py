# ruff: noqa: F403, F405  (WDK constants are imported by name, as driver code does)
"""The stream layer state machine (`layers.md §9`): every stream action, countBytesEnforced /
countBytesRequired / missedBytes, the FIN / NO_MORE_DATA / BUFFER_LIMIT_REACHED flags, the
waterfall across sublayers, stream injection re-indication, and the seam's stream_classify."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from filterkit import App, FakeStreamInjector, meta, values

from wfpsim import NetBufferList, wdk
from wfpsim.constants import *
from wfpsim.errors import ContractViolation, InvalidParameterError, InvalidStateError, WfpError
from wfpsim.filtering import FilterEngine
from wfpsim.fwps_types import FWP_VALUE0
from wfpsim.status import NTSTATUS

S = FWPS_LAYER_STREAM_V4
R = FWPS_STREAM_FLAG_RECEIVE
SND = FWPS_STREAM_FLAG_SEND
FIN_R = R | FWPS_STREAM_FLAG_RECEIVE_DISCONNECT
FIN_S = SND | FWPS_STREAM_FLAG_SEND_DISCONNECT
FLOW = 0x2_0001


@dataclass
class Ind:
    data: bytes
    flags: int
    out_flags: int
    missed: int
    rights: int
    action: int


class Scripted:
    """A stream classifyFn that records each indication and answers from a script of
    ``(actionType, streamAction, countBytesEnforced, countBytesRequired)`` (the last entry
    repeats)."""

    def __init__(self, *script, inject=None):
        self.script = list(script) or [(FWP_ACTION_PERMIT, FWPS_STREAM_ACTION_NONE, 0, 0)]
        self.seen: list[Ind] = []
        self.inject = inject

    def __call__(self, v, m, io, flt, ctx, out):
        sd = io.streamData
        buf = bytearray(sd.dataLength)
        wdk.FwpsCopyStreamDataToBuffer0(sd, buf, len(buf))
        self.seen.append(
            Ind(bytes(buf), sd.flags, out.flags, io.missedBytes, out.rights, out.actionType)
        )
        step = self.script[min(len(self.seen) - 1, len(self.script) - 1)]
        if callable(step):
            step(v, m, io, flt, ctx, out)
            return
        action, stream_action, enforced, required = step
        out.actionType = action
        io.streamAction = stream_action
        io.countBytesEnforced = enforced
        io.countBytesRequired = required

    @property
    def data(self):
        return [i.data for i in self.seen]


PERMIT_ALL = (FWP_ACTION_PERMIT, FWPS_STREAM_ACTION_NONE, 0, 0)
BLOCK_ALL = (FWP_ACTION_BLOCK, FWPS_STREAM_ACTION_NONE, 0, 0)


def permit_n(n):
    return (FWP_ACTION_PERMIT, FWPS_STREAM_ACTION_NONE, n, 0)


def block_n(n):
    return (FWP_ACTION_BLOCK, FWPS_STREAM_ACTION_NONE, n, 0)


def need(n):
    return (FWP_ACTION_NONE, FWPS_STREAM_ACTION_NEED_MORE_DATA, 0, n)


def stream_action(a):
    return (FWP_ACTION_NONE, a, 0, 0)


class Rig:
    def __init__(self, *callouts, sublayers=None, actions=None, limit=None, flags=None):
        self.e = FilterEngine(stream_buffer_limit=limit)
        self.app = App()
        self.ids = []
        for i, fn in enumerate(callouts):
            sub = None
            if sublayers:
                sub = f"sub{sublayers[i]:x}"
                if sub not in self.e.table.sublayers:
                    self.e.add_sublayer(sub, sublayers[i])
            cid = self.e.register_callout(
                fn,
                key=f"c{i}",
                flags=(flags or [0] * len(callouts))[i],
                flow_delete_fn=lambda *a: None,
            )
            self.ids.append(cid)
            action = (actions or [FWP_ACTION_CALLOUT_TERMINATING] * len(callouts))[i]
            self.e.add_filter(S, action, callout_key=f"c{i}", sublayer=sub, weight=100 - i)
        self.inject = FakeStreamInjector(self.e, self.app)

    def send(self, data: bytes, flags: int = R, flow: int = FLOW):
        nbl = NetBufferList.from_bytes(data)
        try:
            return self.e.stream_classify_nbl(
                S, values(S), meta(flow), flow, flags, nbl, len(data), deliver=self.app.deliver
            )
        finally:
            nbl.free()

    def fin(self, flags: int = FIN_R, flow: int = FLOW):
        return self.e.stream_classify_nbl(
            S, values(S), meta(flow), flow, flags, None, 0, deliver=self.app.deliver
        )

    def close(self):
        self.e.flow_end(FLOW)
        self.e.close()
        assert self.e.outstanding()["stream_nbls"] == 0


@pytest.fixture
def rigs(no_leaks):
    made = []

    def make(*a, **kw):
        r = Rig(*a, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


# ------------------------------------------------------------------------------------------------
# NONE with PERMIT / BLOCK and countBytesEnforced
# ------------------------------------------------------------------------------------------------


def test_permit_all_and_block_all(rigs):
    r = rigs(Scripted(PERMIT_ALL))
    v = r.send(b"hello")
    assert (r.app.data, v.blocked, v.held, v.dropped, v.deferred) == (b"hello", 0, 0, False, False)
    r2 = rigs(Scripted(BLOCK_ALL))
    v = r2.send(b"hello")
    assert (r2.app.data, v.blocked) == (b"", 5)


def test_classify_out_at_the_stream_layer(rigs):
    c = Scripted(PERMIT_ALL)
    r = rigs(c)
    r.send(b"x")
    assert (c.seen[0].rights, c.seen[0].action, c.seen[0].out_flags, c.seen[0].missed) == (
        FWPS_RIGHT_ACTION_WRITE,
        FWP_ACTION_CONTINUE,
        0,
        0,
    )
    assert c.seen[0].flags == R


def test_count_bytes_enforced_re_indicates_the_rest_inline_pattern(rigs):
    """The doc's n+p+m pattern: PERMIT n, BLOCK p (replacement injected), PERMIT m."""
    state = {}

    def block_and_replace(v, m, io, flt, ctx, out):
        nbl = NetBufferList.from_bytes(b"P'")
        state["nbl"] = nbl
        r.inject(
            FLOW, flt.action.calloutId, S, io.streamData.flags, nbl, 2, lambda c, n, d: n.free()
        )
        out.actionType = FWP_ACTION_BLOCK
        io.countBytesEnforced = 3

    c = Scripted(permit_n(2), block_and_replace, PERMIT_ALL)
    r = rigs(c)
    v = r.send(b"nnpppmmmm")
    assert c.data == [b"nnpppmmmm", b"pppmmmm", b"mmmm"]
    assert bytes(r.app.data) == b"nnP'mmmm"
    assert [e[0] for e in r.app.events] == [b"nn", b"P'", b"mmmm"]
    assert v.blocked == 3
    assert not state["nbl"].alive


def test_count_bytes_enforced_beyond_data_length_means_all(rigs):
    c = Scripted(permit_n(99))
    r = rigs(c)
    r.send(b"abc")
    assert r.app.data == b"abc" and len(c.seen) == 1
    assert "countBytesEnforced 99 > dataLength 3" in r.e.trace[-1].notes[0]


def test_terminating_non_terminal_blocks_unknown_continue_passes(rigs):
    r = rigs(Scripted((FWP_ACTION_CONTINUE, FWPS_STREAM_ACTION_NONE, 0, 0)))
    r.send(b"abc")
    assert r.app.data == b""
    r2 = rigs(
        Scripted((FWP_ACTION_CONTINUE, FWPS_STREAM_ACTION_NONE, 0, 0)),
        actions=[FWP_ACTION_CALLOUT_UNKNOWN],
    )
    r2.send(b"abc")
    assert r2.app.data == b"abc"
    r3 = rigs(Scripted(BLOCK_ALL), actions=[FWP_ACTION_CALLOUT_INSPECTION])
    r3.send(b"abc")
    assert r3.app.data == b"abc"


# ------------------------------------------------------------------------------------------------
# NEED_MORE_DATA, FIN, NO_MORE_DATA, BUFFER_LIMIT_REACHED
# ------------------------------------------------------------------------------------------------


def test_need_more_data_waits_for_count_bytes_required_additional_bytes(rigs):
    c = Scripted(need(6), PERMIT_ALL)
    r = rigs(c)
    v = r.send(b"abc")
    assert (v.held, r.app.data) == (3, b"")
    r.send(b"de")  # 2 more: not enough
    r.send(b"fg")  # 4 more: still fewer than 6 additional
    assert len(c.seen) == 1
    v = r.send(b"hi")  # 6 additional bytes: re-indicated with everything accumulated
    assert c.data == [b"abc", b"abcdefghi"]
    assert (v.held, bytes(r.app.data)) == (0, b"abcdefghi")


def test_need_more_data_zero_re_indicates_at_the_next_data(rigs):
    c = Scripted(need(0), PERMIT_ALL)
    r = rigs(c)
    r.send(b"ab")
    r.send(b"c")
    assert c.data == [b"ab", b"abc"] and r.app.data == b"abc"


def test_fin_flushes_held_bytes_with_no_more_data_then_indicates_the_fin(rigs):
    c = Scripted(need(10), PERMIT_ALL)
    r = rigs(c)
    r.send(b"abc")
    v = r.fin()
    assert c.data == [b"abc", b"abc", b""]
    assert c.seen[1].flags == R and c.seen[1].out_flags == FWPS_CLASSIFY_OUT_FLAG_NO_MORE_DATA
    assert c.seen[2].flags == FIN_R and c.seen[2].out_flags == FWPS_CLASSIFY_OUT_FLAG_NO_MORE_DATA
    assert v.fin and r.app.data == b"abc" and r.app.events[-1] == (b"", FIN_R)
    with pytest.raises(InvalidStateError):
        r.send(b"late")


def test_need_more_data_with_no_more_data_is_a_contract_violation(rigs):
    r = rigs(Scripted(need(5)))
    r.send(b"ab")
    with pytest.raises(ContractViolation, match="NO_MORE_DATA"):
        r.fin()


def test_buffer_limit_reached(rigs):
    c = Scripted(need(100), PERMIT_ALL)
    r = rigs(c, limit=8)
    r.send(b"abcd")
    assert len(c.seen) == 1
    r.send(b"efgh")  # 8 bytes held = the limit: indicated with BUFFER_LIMIT_REACHED
    assert c.seen[1].out_flags == FWPS_CLASSIFY_OUT_FLAG_BUFFER_LIMIT_REACHED
    assert c.data[1] == b"abcdefgh"
    r2 = rigs(Scripted(need(100)), limit=4)
    with pytest.raises(ContractViolation, match="BUFFER_LIMIT_REACHED"):
        r2.send(b"abcd")


def test_fin_with_data_and_abort(rigs):
    c = Scripted(PERMIT_ALL)
    r = rigs(c)
    v = r.e.stream_classify_nbl(
        S,
        values(S),
        meta(FLOW),
        FLOW,
        FIN_S,
        nbl := NetBufferList.from_bytes(b"bye"),
        3,
        deliver=r.app.deliver,
    )
    nbl.free()
    assert c.seen[0].flags == FIN_S and c.seen[0].data == b"bye" and v.fin
    assert r.app.events == [(b"bye", FIN_S)]
    v = r.e.stream_classify_nbl(
        S,
        values(S),
        meta(FLOW),
        FLOW,
        R | FWPS_STREAM_FLAG_RECEIVE_ABORT,
        None,
        0,
        deliver=r.app.deliver,
    )
    assert v.abort and c.seen[1].flags == R | FWPS_STREAM_FLAG_RECEIVE_ABORT


# ------------------------------------------------------------------------------------------------
# DROP_CONNECTION, DEFER, ALLOW_CONNECTION
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", [FWP_ACTION_CALLOUT_TERMINATING, FWP_ACTION_CALLOUT_UNKNOWN])
def test_drop_connection(rigs, action):
    held = Scripted(need(100))
    c = Scripted(PERMIT_ALL, stream_action(FWPS_STREAM_ACTION_DROP_CONNECTION))
    r = rigs(c, held, sublayers=[0x20, 0x10], actions=[action, FWP_ACTION_CALLOUT_TERMINATING])
    r.send(b"first")  # passes c, held below
    v = r.send(b"second")
    assert v.dropped and v.drop_connection and v.held == 0
    assert v.blocked == len(b"second") + len(b"first")  # the indication and the held bytes
    v = r.send(b"more")
    assert v.dropped and v.blocked == 4 and len(c.seen) == 2
    assert r.e.outstanding()["stream_held_bytes"] == 0


def test_drop_connection_from_inspection_is_ignored(rigs):
    r = rigs(
        Scripted(stream_action(FWPS_STREAM_ACTION_DROP_CONNECTION)),
        actions=[FWP_ACTION_CALLOUT_INSPECTION],
    )
    v = r.send(b"abc")
    assert not v.dropped and r.app.data == b"abc"
    assert "ignored" in r.e.trace[-1].notes[0]


def test_defer_holds_the_inbound_stream_until_continue(rigs):
    c = Scripted(stream_action(FWPS_STREAM_ACTION_DEFER), PERMIT_ALL)
    r = rigs(c)
    v = r.send(b"abc")
    assert v.deferred and v.held == 3
    v = r.send(b"def")
    assert v.deferred and v.held == 6 and len(c.seen) == 1
    with r.e:
        assert wdk.FwpsStreamContinue0(FLOW, 999, S, R) == NTSTATUS.STATUS_INVALID_PARAMETER
        assert (
            wdk.FwpsStreamContinue0(FLOW, r.ids[0], S, SND) == NTSTATUS.STATUS_FWP_INVALID_PARAMETER
        )
    released = []
    r.e.stream_sink = None
    v = r.e.stream_continue(FLOW, r.ids[0], S, R, deliver=lambda d, f: released.append(d))
    assert c.data == [b"abc", b"abcdef"] and released == [b"abcdef"]
    assert not v.deferred and v.held == 0 and v.data == b"abcdef"
    with pytest.raises(WfpError):
        r.e.stream_continue(FLOW, r.ids[0], S, R)  # not deferred any more


def test_stream_continue0_delivers_through_the_attached_stack(rigs):
    class Stack:
        def __init__(self):
            self.got = []

        def owns_flow(self, fid):
            return fid == FLOW

        def stream_deliver(self, flow_id, flags, data):
            self.got.append((flow_id, flags, data))

    class Other(Stack):
        def owns_flow(self, fid):
            return False

    stack, other = Stack(), Other()
    r = rigs(Scripted(stream_action(FWPS_STREAM_ACTION_DEFER), PERMIT_ALL))
    r.e.attach(stack)
    r.e.attach(other)
    assert r.e.stack is other and r.e.stacks_for_flow(FLOW) == [stack, other]
    r.send(b"xyz")
    with r.e:
        assert wdk.FwpsStreamContinue0(FLOW, r.ids[0], S, R) == NTSTATUS.STATUS_SUCCESS
    assert stack.got == [(FLOW, R, b"xyz")] and other.got == []
    r.e.detach(other)
    assert r.e.stack is stack


def test_stream_continue_from_inside_classify_is_refused(rigs):
    statuses = []

    def classify(v, m, io, flt, ctx, out):
        if io.streamData.flags & R:
            io.streamAction = FWPS_STREAM_ACTION_DEFER
            out.actionType = FWP_ACTION_NONE
            return
        # the outbound direction of the same flow keeps flowing; its classifyFn cannot continue
        statuses.append(wdk.FwpsStreamContinue0(FLOW, flt.action.calloutId, S, R))
        out.actionType = FWP_ACTION_PERMIT

    r = rigs(classify)
    assert r.send(b"in").deferred
    v = r.send(b"out", SND)
    assert statuses == [NTSTATUS.STATUS_INVALID_DEVICE_STATE] and v.data == b"out"
    assert r.e.stream_continue(FLOW, r.ids[0], S, R).data == b""  # the callout defers again


def test_defer_outbound_is_a_contract_violation(rigs):
    r = rigs(Scripted(stream_action(FWPS_STREAM_ACTION_DEFER)))
    with pytest.raises(ContractViolation, match="inbound"):
        r.send(b"abc", SND)


def test_allow_connection_stops_classifying_the_flow_both_directions(rigs):
    c = Scripted(stream_action(FWPS_STREAM_ACTION_ALLOW_CONNECTION))
    r = rigs(c)
    v = r.send(b"abc")
    assert v.allow_connection and r.app.data == b"abc"
    r.send(b"def")
    r.send(b"out", SND)
    assert len(c.seen) == 1 and bytes(r.app.data) == b"abcdefout"


def test_unknown_stream_action_is_a_contract_violation(rigs):
    r = rigs(Scripted(stream_action(9)))
    with pytest.raises(ContractViolation):
        r.send(b"abc")


# ------------------------------------------------------------------------------------------------
# Waterfall across sublayers, missedBytes
# ------------------------------------------------------------------------------------------------


def test_lower_sublayer_sees_only_what_the_higher_permitted_and_counts_missed_bytes(rigs):
    hi = Scripted(permit_n(2), block_n(3), PERMIT_ALL)
    lo = Scripted(PERMIT_ALL)
    r = rigs(hi, lo, sublayers=[0x40, 0x20])
    r.send(b"aabbbcc")
    assert hi.data == [b"aabbbcc", b"bbbcc", b"cc"]
    assert lo.data == [b"aa", b"cc"]
    assert [i.missed for i in lo.seen] == [0, 3]
    assert r.app.data == b"aacc"


def test_permit_skips_the_rest_of_its_sublayer_continue_does_not(rigs):
    first = Scripted(PERMIT_ALL)
    same_sub = Scripted(BLOCK_ALL)
    r = rigs(first, same_sub, sublayers=[0x40, 0x40])
    r.send(b"abc")
    assert r.app.data == b"abc" and same_sub.seen == []
    insp = Scripted(BLOCK_ALL)
    after = Scripted(PERMIT_ALL)
    r2 = rigs(
        insp,
        after,
        sublayers=[0x40, 0x40],
        actions=[FWP_ACTION_CALLOUT_INSPECTION, FWP_ACTION_CALLOUT_TERMINATING],
    )
    r2.send(b"abc")
    assert after.data == [b"abc"] and r2.app.data == b"abc"


def test_unregistered_and_static_stream_filters(rigs):
    r = rigs(Scripted(PERMIT_ALL))
    r.e.unregister_callout(r.ids[0])
    v = r.send(b"abc")
    assert (r.app.data, v.blocked) == (b"", 3)
    r2 = rigs()
    r2.e.add_filter(S, FWP_ACTION_PERMIT)
    r2.send(b"abc")
    assert r2.app.data == b"abc"
    r3 = rigs()
    r3.e.add_filter(S, FWP_ACTION_BLOCK)
    assert r3.send(b"abc").blocked == 3
    r4 = rigs()
    r4.e.add_filter(S, FWP_ACTION_CALLOUT_INSPECTION, callout_key="nobody")
    r4.send(b"abc")
    assert r4.app.data == b"abc"


def test_stream_conditions_select_flows(rigs):
    c = Scripted(BLOCK_ALL)
    r = rigs()
    r.e.register_callout(c, key="k")
    r.e.add_filter(
        S,
        FWP_ACTION_CALLOUT_TERMINATING,
        callout_key="k",
        conditions=[(FWPS_FIELD_STREAM_V4_IP_LOCAL_PORT, FWP_MATCH_EQUAL, 8888)],
    )
    nbl = NetBufferList.from_bytes(b"abc")
    r.e.stream_classify_nbl(
        S,
        values(S, IP_LOCAL_PORT=FWP_VALUE0.u16(80)),
        meta(FLOW),
        FLOW,
        R,
        nbl,
        3,
        deliver=r.app.deliver,
    )
    r.e.stream_classify_nbl(
        S,
        values(S, IP_LOCAL_PORT=FWP_VALUE0.u16(8888)),
        meta(FLOW + 1),
        FLOW + 1,
        R,
        nbl,
        3,
        deliver=r.app.deliver,
    )
    nbl.free()
    assert r.app.data == b"abc" and c.data == [b"abc"]
    r.e.flow_end(FLOW + 1)


def test_conditional_on_flow_and_mid_stream_inspection(rigs):
    cond = Scripted(BLOCK_ALL)
    r = rigs(cond, flags=[FWP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW])
    r.send(b"a")
    assert cond.seen == [] and r.app.data == b"a"
    r.e.flow_associate_context(FLOW, S, r.ids[0], 1)
    r.send(b"b")
    assert cond.data == [b"b"]
    # filters added after the flow started see it only with ALLOW_MID_STREAM_INSPECTION
    late, late_ok = Scripted(BLOCK_ALL), Scripted(PERMIT_ALL)
    r2 = rigs(Scripted(PERMIT_ALL))
    r2.send(b"x")
    r2.e.register_callout(late, key="late")
    r2.e.add_filter(S, FWP_ACTION_CALLOUT_TERMINATING, callout_key="late", weight=1)
    r2.e.register_callout(
        late_ok, key="late-ok", flags=FWP_CALLOUT_FLAG_ALLOW_MID_STREAM_INSPECTION
    )
    r2.e.add_filter(S, FWP_ACTION_CALLOUT_TERMINATING, callout_key="late-ok", weight=200)
    r2.send(b"y")
    assert late.seen == [] and late_ok.data == [b"y"] and r2.app.data == b"xy"


def test_filter_holding_stream_data_cannot_be_deleted(rigs):
    r = rigs(Scripted(need(50)))
    fid = r.e.filters()[0].filter_id
    r.send(b"abc")
    with pytest.raises(WfpError) as err:
        r.e.delete_filter(fid)
    assert err.value.status == NTSTATUS.STATUS_FWP_IN_USE


# ------------------------------------------------------------------------------------------------
# Stream injection re-indication (`layers.md §10`)
# ------------------------------------------------------------------------------------------------


def test_injected_data_skips_the_injector_and_equal_or_higher_sublayers(rigs):
    top, inj, peer, low = (
        Scripted(PERMIT_ALL),
        Scripted(PERMIT_ALL),
        Scripted(PERMIT_ALL),
        Scripted(PERMIT_ALL),
    )
    r = rigs(top, inj, peer, low, sublayers=[0x60, 0x40, 0x40, 0x20])
    r.send(b"orig")
    assert [len(x.seen) for x in (top, inj, peer, low)] == [1, 1, 0, 1]
    nbl = NetBufferList.from_bytes(b"new")
    status = r.inject(FLOW, r.ids[1], S, R, nbl, 3, lambda c, n, d: n.free())
    assert status == NTSTATUS.STATUS_SUCCESS
    assert (
        top.data == [b"orig"]
        and inj.data == [b"orig"]
        and peer.data == []
        and low.data == [b"orig", b"new"]
    )
    assert bytes(r.app.data) == b"orignew"


def test_explicit_below_sublayer_weight_and_reentry_guard(rigs):
    hi, lo = Scripted(PERMIT_ALL), Scripted(PERMIT_ALL)
    r = rigs(hi, lo, sublayers=[0x40, 0x20])
    r.send(b"a")
    nbl = NetBufferList.from_bytes(b"b")
    r.e.stream_classify_nbl(
        S, None, None, FLOW, R, nbl, 1, deliver=r.app.deliver, below_sublayer_weight=0x21
    )
    assert lo.data == [b"a", b"b"] and hi.data == [b"a"]

    def bad(v, m, io, flt, ctx, out):
        r3.e.stream_classify_nbl(S, None, None, FLOW, R, nbl, 1, below_sublayer_weight=0xFFFF)

    r3 = rigs(bad)
    with pytest.raises(ContractViolation, match="never indicated to the injecting callout"):
        r3.send(b"x")
    nbl.free()


def test_seam_stream_classify_with_segments_and_deliver():
    @dataclass
    class Segment:
        flow_id: int
        flags: int
        data: bytes
        injected: bool = False
        callout_id: int | None = None

    hi = Scripted(permit_n(3), BLOCK_ALL)
    lo = Scripted(PERMIT_ALL)
    r = Rig(hi, lo, sublayers=[0x40, 0x20])
    got = []
    v = r.e.stream_classify(
        S,
        values(S),
        meta(FLOW),
        Segment(FLOW, R, b"abcdef"),
        flow_handle=FLOW,
        deliver=lambda d, f: got.append((d, f)),
    )
    assert (
        got == [(b"abc", R)] and not v.drop_connection and not v.deferred and not v.allow_connection
    )
    v = r.e.stream_classify(
        S,
        values(S),
        meta(FLOW),
        Segment(FLOW, R, b"XY", True, r.ids[0]),
        flow_handle=FLOW,
        deliver=lambda d, f: got.append((d, f)),
    )
    assert got[-1] == (b"XY", R) and hi.data == [b"abcdef", b"def"] and lo.data == [b"abc", b"XY"]
    v = r.e.stream_classify(
        S,
        values(S),
        meta(FLOW),
        Segment(FLOW, FIN_R, b""),
        flow_handle=FLOW,
        deliver=lambda d, f: got.append((d, f)),
    )
    assert hi.seen[-1].flags == FIN_R
    r.close()


def test_stream_argument_errors(rigs):
    r = rigs(Scripted(PERMIT_ALL))
    nbl = NetBufferList.from_bytes(b"abc")
    try:
        for kwargs, status in [
            (dict(flags=R | SND), NTSTATUS.STATUS_FWP_INVALID_PARAMETER),
            (dict(flags=0), NTSTATUS.STATUS_FWP_INVALID_PARAMETER),
            (dict(layer=FWPS_LAYER_DATAGRAM_DATA_V4), NTSTATUS.STATUS_FWP_INVALID_PARAMETER),
            (dict(flow=0), NTSTATUS.STATUS_INVALID_PARAMETER),
            (dict(length=4), NTSTATUS.STATUS_INVALID_PARAMETER),
            (dict(chain=None), NTSTATUS.STATUS_INVALID_PARAMETER),
        ]:
            a = dict(layer=S, flow=FLOW, flags=R, chain=nbl, length=3) | kwargs
            with pytest.raises(InvalidParameterError) as err:
                r.e.stream_classify_nbl(
                    a["layer"], values(S), meta(), a["flow"], a["flags"], a["chain"], a["length"]
                )
            assert err.value.status == status, kwargs
    finally:
        nbl.free()


def test_drops_outside_classify_reach_the_owning_stack(rigs):
    class FakeStack:
        def __init__(self, flows):
            self.flows = dict.fromkeys(flows)
            self.aborted = []
            self.delivered = []

        def abort_flow(self, flow_id):
            self.aborted.append(flow_id)

        def stream_deliver(self, flow_id, flags, data):
            self.delivered.append((flow_id, data))

    other, owner = FakeStack([]), FakeStack([FLOW, FLOW + 1])
    r = rigs(
        Scripted(
            stream_action(FWPS_STREAM_ACTION_DEFER),
            stream_action(FWPS_STREAM_ACTION_DROP_CONNECTION),
        )
    )
    r.e.attach(other)
    r.e.attach(owner)
    assert r.e.stacks_for_flow(FLOW) == [owner, other]
    r.send(b"abc")
    v = r.e.stream_continue(FLOW, r.ids[0], S, R)  # the re-indication is dropped
    assert v.drop_connection and owner.aborted == [FLOW] and other.aborted == []
    r.send(b"x", flow=FLOW + 1)
    with r.e:
        assert wdk.FwpsFlowAbort0(FLOW + 1) == NTSTATUS.STATUS_SUCCESS
    assert owner.aborted == [FLOW, FLOW + 1]
    assert r.e.stream.pending_verdicts[-1].drop_connection
    r.e.flow_end(FLOW + 1)


def test_injection_stays_below_the_injector_after_it_allowed_the_connection(rigs):
    top = Scripted(PERMIT_ALL)
    allow = Scripted(stream_action(FWPS_STREAM_ACTION_ALLOW_CONNECTION))
    low = Scripted(PERMIT_ALL)
    r = rigs(top, allow, low, sublayers=[0x60, 0x40, 0x20])
    r.send(b"a")
    nbl = NetBufferList.from_bytes(b"b")
    r.inject(FLOW, r.ids[1], S, R, nbl, 1, lambda c, n, d: n.free())
    assert top.data == [b"a"] and allow.data == [b"a"] and low.data == [b"a", b"b"]


def test_injection_into_a_direction_not_yet_indicated_uses_the_flows_values(rigs):
    c = Scripted(PERMIT_ALL)
    r = rigs()
    r.e.register_callout(c, key="k")
    r.e.add_filter(
        S,
        FWP_ACTION_CALLOUT_TERMINATING,
        callout_key="k",
        conditions=[(FWPS_FIELD_STREAM_V4_IP_LOCAL_PORT, FWP_MATCH_EQUAL, 8888)],
    )
    nbl = NetBufferList.from_bytes(b"req")
    r.e.stream_classify_nbl(
        S, values(S, IP_LOCAL_PORT=FWP_VALUE0.u16(8888)), meta(FLOW), FLOW, SND, nbl, 3
    )
    r.e.stream_classify_nbl(S, None, None, FLOW, R, nbl, 3, below_sublayer_weight=0xFFFF)
    nbl.free()
    assert [i.flags for i in c.seen] == [SND, R]


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=80, deadline=None)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=9), min_size=1, max_size=6),
    choices=st.lists(
        st.tuples(st.sampled_from("PBNC"), st.integers(0, 10)), min_size=1, max_size=40
    ),
    two=st.booleans(),
)
def test_property_delivered_bytes_are_what_the_callouts_permitted_in_order(chunks, choices, two):
    """Each callout keeps its own expectation (what it permitted, in order); the application
    must receive exactly the lowest callout's expectation, and nothing may be left held."""

    class Model:
        def __init__(self, choices):
            self.choices = list(choices)
            self.i = 0
            self.expected = bytearray()

        def __call__(self, v, m, io, flt, ctx, out):
            sd = io.streamData
            data = bytearray(sd.dataLength)
            wdk.FwpsCopyStreamDataToBuffer0(sd, data, len(data))
            kind, n = self.choices[self.i % len(self.choices)]
            self.i += 1
            if sd.flags & FWPS_STREAM_FLAG_RECEIVE_DISCONNECT:
                kind, n = "P", 0  # let the FIN through
            final = out.flags & (
                FWPS_CLASSIFY_OUT_FLAG_NO_MORE_DATA | FWPS_CLASSIFY_OUT_FLAG_BUFFER_LIMIT_REACHED
            )
            if kind == "N" and not final:
                io.streamAction, io.countBytesRequired, out.actionType = (
                    FWPS_STREAM_ACTION_NEED_MORE_DATA,
                    n,
                    FWP_ACTION_NONE,
                )
                return
            k = len(data) if n == 0 or n >= len(data) else n
            if kind in "PN" or (kind == "C" and not data):
                out.actionType, io.countBytesEnforced = FWP_ACTION_PERMIT, n
                self.expected += data[:k]
            elif kind == "B":
                out.actionType, io.countBytesEnforced = FWP_ACTION_BLOCK, n
            else:  # CONTINUE from a CALLOUT_UNKNOWN filter: everything goes on
                out.actionType = FWP_ACTION_CONTINUE
                self.expected += data

    a = Model(choices)
    b = Model(list(reversed(choices)))
    if two:
        r = Rig(a, b, sublayers=[0x40, 0x20], actions=[FWP_ACTION_CALLOUT_UNKNOWN] * 2, limit=16)
    else:
        r = Rig(a, actions=[FWP_ACTION_CALLOUT_UNKNOWN], limit=16)
    try:
        total_blocked = 0
        for chunk in chunks:
            total_blocked += r.send(chunk).blocked
        v = r.fin()
        total_blocked += v.blocked
        last = b if two else a
        assert bytes(r.app.data) == bytes(last.expected)
        assert v.held == 0 and r.app.fin
        if not two:
            assert len(r.app.data) + total_blocked == sum(map(len, chunks))
    finally:
        r.close()
