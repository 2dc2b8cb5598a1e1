"""stmedit (examples/stmedit_driver.py) end to end: TCP segments from the wire (or the
application) through the real stack's stream layer, the real filter engine and the stack's
FwpsStreamInjectAsync0 — samples.md §9.3, S-15 … S-24."""

from __future__ import annotations

import pytest
import stmedit_driver
from scenariokit import FAMILIES, assert_quiet, host, ip_packets, tcp, transport_of
from stmedit_driver import StmEditDriver

import wfpsim
from wfpsim import wdk
from wfpsim.constants import (
    FWP_DIRECTION_INBOUND,
    FWPS_LAYER_STREAM_V4,
    FWPS_LAYER_STREAM_V6,
    FWPS_STREAM_FLAG_RECEIVE,
    FWPS_STREAM_FLAG_RECEIVE_DISCONNECT,
    FWPS_STREAM_FLAG_SEND_DISCONNECT,
)
from wfpsim.stack import ip as IP
from wfpsim.status import NTSTATUS

S = NTSTATUS
R = FWPS_STREAM_FLAG_RECEIVE


class Conn:
    """An inbound-accepted TCP flow to port 8888 (the driver's InspectionLocalPort) and its
    peer, which sends segments in order."""

    def __init__(self, stack, fam="v4", peer_port=40000):
        af, self.local, self.peer, _ = FAMILIES[fam]
        self.stack = stack
        self.peer_port = peer_port
        self.flow = stack.open_tcp_flow(
            af, (self.local, 8888), (self.peer, peer_port), direction=FWP_DIRECTION_INBOUND
        )
        self.seq = 1

    def push(self, data: bytes, *, fin: bool = False, run: bool = False):
        flags = IP.TCP_ACK | (IP.TCP_FIN if fin else IP.TCP_PSH)
        packet = tcp(self.peer, self.local, self.peer_port, 8888, self.seq, flags, data)
        self.seq += len(data) + (1 if fin else 0)
        result = self.stack.receive(1, packet)
        if run:
            self.stack.run()
        return result

    @property
    def received(self) -> bytes:
        return bytes(self.flow.received)

    def stream_records(self):
        """What the stack delivered into this flow's inbound stream: (data, flags)."""
        return [
            (d.data, d.stream_flags)
            for d in self.stack.delivered
            if d.destination == "stream" and d.flow_id == self.flow.flow_id
        ]


def setup(fam="v4", **kwargs):
    stack = host()
    driver = StmEditDriver(**kwargs).register(stack)
    return stack, driver, Conn(stack, fam)


def finish(stack, driver, *conns):
    driver.unload()
    for c in conns:
        c.flow.close()
    assert_quiet(stack)
    assert len(stack.filter_engine.callouts) == 0


@pytest.mark.parametrize("fam", ["v4", "v6"])
def test_s15_inline_replace_in_the_middle(no_leaks, fam):
    """S-15: one indication "abc cloudy defghi": PERMIT 4, then FwpsStreamInjectAsync0 of "sunny"
    (an NBL over the shared MDL, context NULL) and BLOCK 6, then PERMIT 0 for " defghi"; the
    application receives "abc sunny defghi"; one completion, from the dispatcher."""
    stack, driver, conn = setup(fam, out_of_band=False)
    conn.push(b"abc cloudy defghi")
    assert driver.log.inline == [
        (b"abc cloudy defghi", "before-match", 4),
        (b"cloudy defghi", "replace", 6),
        (b" defghi", "no-match", 0),
    ]
    assert conn.received == b"abc sunny defghi"
    assert [d for d, _ in conn.stream_records()] == [b"abc ", b"sunny", b" defghi"]
    assert driver.log.completions == []  # never inside the inject call
    stack.run()
    assert driver.log.completions == [("allocated", 0)]
    finish(stack, driver, conn)


def test_s16_inline_pattern_split_across_indications(no_leaks):
    """S-16: "abc clo" then "udy is here": PERMIT 4 (SKIPPING), re-classify "clo" -> BLOCK 0
    (held in the scratch buffer); "udy is here": match at 0 of the scratch -> inject "sunny",
    BLOCK 3; re-classify " is here" -> PERMIT 0."""
    stack, driver, conn = setup(out_of_band=False)
    conn.push(b"abc clo")
    conn.push(b"udy is here", run=True)
    assert driver.log.inline == [
        (b"abc clo", "before-partial", 4),
        (b"clo", "skip", 0),
        (b"udy is here", "replace", 3),
        (b" is here", "no-match", 0),
    ]
    assert conn.received == b"abc sunny is here"
    finish(stack, driver, conn)


def test_s16_inline_false_partial_match_is_reinjected(no_leaks):
    """A held tail that turns out not to be the pattern is re-injected (an allocated copy, its
    MDL freed by the completion) ahead of the new bytes."""
    stack, driver, conn = setup(out_of_band=False)
    conn.push(b"abc clo")
    conn.push(b"ck is ticking", run=True)
    assert conn.received == b"abc clock is ticking"
    assert driver.log.completions == [("allocated", 0)]
    finish(stack, driver, conn)


def test_s17_need_more_data_then_fin(no_leaks):
    """S-17: 3 bytes < the 6-byte pattern: NEED_MORE_DATA (countBytesRequired 6, actionType
    NONE); 3 more bytes are not the 6 *additional* bytes asked for (layers.md §9), so no
    classify; the FIN re-indicates the 6 held bytes with NO_MORE_DATA, then the FIN passes."""
    stack, driver, conn = setup(out_of_band=False)
    conn.push(b"abc")
    assert driver.log.inline == [(b"abc", "need", 6)] and conn.received == b""
    rec = [r for r in stack.filter_engine.trace if r.stream][-1]
    assert rec.actionType == wdk.FWP_ACTION_NONE
    assert rec.stream["streamAction"] == wdk.FWPS_STREAM_ACTION_NEED_MORE_DATA
    assert rec.stream["countBytesRequired"] == 6
    conn.push(b"def")
    assert len(driver.log.inline) == 1
    conn.push(b"", fin=True)
    assert [(d, why) for d, why, _ in driver.log.inline[1:]] == [
        (b"abcdef", "no-more-data"),
        (b"", "fin"),
    ]
    assert conn.received == b"abcdef" and conn.flow.fin_received
    assert conn.stream_records()[-1] == (b"", R | FWPS_STREAM_FLAG_RECEIVE_DISCONNECT)
    finish(stack, driver, conn)


def test_s17_enough_additional_bytes_reindicate(no_leaks):
    stack, driver, conn = setup(out_of_band=False)
    conn.push(b"abc")
    conn.push(b"cloudy!")  # 7 additional >= 6: re-indicated with all 10 bytes
    assert [(d, why) for d, why, _ in driver.log.inline[1:]] == [
        (b"abccloudy!", "before-match"),
        (b"cloudy!", "replace"),
        (b"!", "need"),
    ]
    assert conn.received == b"abcsunny"
    conn.push(b"", fin=True, run=True)
    assert conn.received == b"abcsunny!" and conn.flow.fin_received
    finish(stack, driver, conn)


def test_s18_oob_replace(no_leaks):
    """S-18: "it is rainy": classify BLOCK (countBytesEnforced 0) after FwpsCloneStreamData0;
    the worker injects "it is " (allocated copy) and "cloudy" (the shared MDL), in that order,
    and returns the cloned chain with FwpsDiscardClonedStreamData0: the application receives
    "it is cloudy"; two completions."""
    stack, driver, conn = setup(inline=False)
    result = conn.push(b"it is rainy")
    assert result.outcome == "delivered" and conn.received == b""
    rec = [r for r in stack.filter_engine.trace if r.stream][-1]
    assert (rec.actionType, rec.stream["countBytesEnforced"]) == (wdk.FWP_ACTION_BLOCK, 0)
    stack.run()
    assert conn.received == b"it is cloudy"
    assert [d for d, _ in conn.stream_records()] == [b"it is ", b"cloudy"]
    assert driver.log.completions == [("allocated", 0), ("allocated", 0)]
    finish(stack, driver, conn)


def test_s18_oob_no_match_injects_the_cloned_chain_itself(no_leaks):
    """S-18, no match: the cloned chain itself is injected and completes once per NBL (the
    stack indicates one NBL per segment; chains of several NBLs: test_stream_scenarios)."""
    stack, driver, conn = setup(inline=False)
    conn.push(b"it is sunny", run=True)
    assert conn.received == b"it is sunny"
    assert driver.log.completions == [("clone", 0)]
    finish(stack, driver, conn)


def test_oob_pattern_split_across_segments(no_leaks):
    """Out of band, a pattern split across segments: the trailing partial match waits in the
    worker's scratch buffer and is replaced when the next clone completes it."""
    stack, driver, conn = setup(inline=False)
    conn.push(b"it is rai", run=True)
    assert conn.received == b"it is "
    conn.push(b"ny and rainier", run=True)
    assert conn.received == b"it is cloudy and rainie"  # "r" may start "rainy": held
    conn.push(b"", fin=True, run=True)
    assert conn.received == b"it is cloudy and rainier" and conn.flow.fin_received
    finish(stack, driver, conn)


def test_s19_two_sublayers_chained(no_leaks):
    """S-19: both sets: the OOB callout (0x40) injects "cloudy", which is indicated to the
    inline callout (0x20) only, which replaces it by "sunny"; the OOB callout never sees its
    own injected bytes."""
    stack, driver, conn = setup()
    conn.push(b"it is rainy", run=True)
    assert conn.received == b"it is sunny"
    assert driver.log.oob_seen == [b"it is rainy"]
    assert [d for d, _, _ in driver.log.inline] == [b"it is ", b"cloudy"]
    injected = [r for r in stack.injections if r.function == "FwpsStreamInjectAsync0"]
    oob_id = next(f.calloutId for f in driver.flows if not f.inline)
    inline_id = next(f.calloutId for f in driver.flows if f.inline)
    assert [r.params["callout_id"] for r in injected] == [oob_id, oob_id, inline_id]
    finish(stack, driver, conn)


def test_s20_fin_ordering_out_of_band(no_leaks):
    """S-20: data then FIN: the FIN is cloned and blocked too; the FIN task flushes the held
    bytes first, then injects the cloned FIN NBL (dataLength 0, DISCONNECT); data after the FIN
    (here the application's reply) is blocked."""
    stack, driver, conn = setup(inline=False)
    conn.push(b"it is rai")
    conn.push(b"", fin=True)
    assert not conn.flow.fin_received  # the FIN waits in the worker's queue
    stack.run()
    assert conn.received == b"it is rai" and conn.flow.fin_received
    fin_bit = FWPS_STREAM_FLAG_RECEIVE_DISCONNECT
    assert [(d, bool(f & fin_bit)) for d, f in conn.stream_records()] == [
        (b"it is ", False),
        (b"rai", False),
        (b"", True),
    ]
    fin = [r for r in stack.injections if r.params.get("data_length") == 0][-1]
    assert fin.params["stream_flags"] & FWPS_STREAM_FLAG_RECEIVE_DISCONNECT
    assert driver.log.completions[-1] == ("clone", 0)  # the cloned FIN NBL completes
    conn.flow.send(b"reply after the FIN")
    stack.run()
    assert [p for p in ip_packets(stack) if transport_of(p)[2]] == []
    finish(stack, driver, conn)


def test_s21_defer_then_continue(no_leaks):
    """S-21: above BusyThreshold pending bytes the inbound classify returns DEFER + NONE; no
    indication until the worker calls FwpsStreamContinue0(flowHandle, calloutId, layerId,
    savedFlags); then the accumulated data is indicated and everything arrives in order."""
    stack, driver, conn = setup(inline=False, busy_threshold=8)
    conn.push(b"a" * 10)
    conn.push(b"b" * 10)
    assert driver.log.defers == 1 and conn.flow.deferred[FWP_DIRECTION_INBOUND]
    conn.push(b"c" * 6)
    assert driver.log.oob_seen == [b"a" * 10, b"b" * 10]  # nothing indicated while deferred
    stack.run()
    assert driver.log.continues == [0]
    assert driver.log.oob_seen[-1] == b"b" * 10 + b"c" * 6
    assert not conn.flow.deferred[FWP_DIRECTION_INBOUND]
    assert conn.received == b"a" * 10 + b"b" * 10 + b"c" * 6
    finish(stack, driver, conn)


def test_s22_clone_failure_drops_the_connection(no_leaks, monkeypatch):
    """S-22: FwpsCloneStreamData0 fails (a simulated allocation failure) => DROP_CONNECTION: the
    stack tears the flow down and flowDeleteFn runs."""
    stack, driver, conn = setup(inline=False)
    real = stmedit_driver.FwpsCloneStreamData0

    def failing(*args):
        wfpsim.fail_allocations(1)
        try:
            return real(*args)
        finally:
            wfpsim.fail_allocations(0)

    monkeypatch.setattr(stmedit_driver, "FwpsCloneStreamData0", failing)
    conn.push(b"it is rainy")
    assert driver.log.drops == ["FwpsCloneStreamData0 failed"]
    assert conn.flow.closed and conn.flow.dropped and conn.received == b""
    assert driver.log.flow_deletes == 1
    finish(stack, driver, conn)


def test_s22_worker_error_aborts_the_flow(no_leaks, monkeypatch):
    """S-22: an injection error in the worker: the rest of the outgoing queue is returned
    (clones discarded, allocated NBLs freed; no completion for them, R6), the queued clones are
    discarded and the flow aborted with FwpsFlowAbort0."""
    stack, driver, conn = setup(inline=False)
    conn.push(b"one rainy day")
    conn.push(b"two rainy days")
    calls = []

    def failing(*args):
        calls.append(args)
        return S.STATUS_INSUFFICIENT_RESOURCES

    monkeypatch.setattr(stmedit_driver, "FwpsStreamInjectAsync0", failing)
    stack.run()
    assert len(calls) == 1 and driver.log.aborts == [S.STATUS_SUCCESS]
    assert conn.flow.closed and conn.received == b"" and driver.log.completions == []
    assert driver.log.flow_deletes == 1
    finish(stack, driver, conn)


def test_s23_stream_injection_validation(no_leaks):
    """S-23 on the real stack and engine: SEND_DISCONNECT without SEND => STATUS_FWP_INVALID_
    PARAMETER; an NBL with a NULL completionFn => STATUS_FWP_NULL_POINTER; a calloutId that is no
    stream callout at the layer, or the wrong layer for the flow => STATUS_FWP_INVALID_PARAMETER
    (unconfirmed code)."""
    stack, driver, conn = setup()
    ctx = driver.flows[0]
    h = driver.injection_handle
    nbl = wfpsim.NetBufferList.from_bytes(b"x")

    def inject(callout_id=ctx.calloutId, layer=FWPS_LAYER_STREAM_V4, flags=R, completion=True):
        done = (lambda c, n, d: None) if completion else None
        return wdk.FwpsStreamInjectAsync0(
            h, None, 0, ctx.flowHandle, callout_id, layer, flags, nbl, 1, done, None
        )

    assert inject(flags=FWPS_STREAM_FLAG_SEND_DISCONNECT) == S.STATUS_FWP_INVALID_PARAMETER
    assert inject(flags=FWPS_STREAM_FLAG_RECEIVE_DISCONNECT) == S.STATUS_FWP_INVALID_PARAMETER
    assert inject(completion=False) == S.STATUS_FWP_NULL_POINTER
    fe_id = next(k for k, v in driver.fe_to_stream.items() if v == ctx.calloutId)
    assert inject(callout_id=fe_id) == S.STATUS_FWP_INVALID_PARAMETER  # not at STREAM
    assert inject(callout_id=999) == S.STATUS_FWP_INVALID_PARAMETER  # not registered
    assert inject(layer=FWPS_LAYER_STREAM_V6) == S.STATUS_FWP_INVALID_PARAMETER
    assert stack.run() == 0 and conn.received == b""
    nbl.free()
    finish(stack, driver, conn)


def test_s24_unload_with_active_flows(no_leaks):
    """S-24: two flows with both callout sets, clones queued, an inline partial match held:
    unload removes every context (flowDeleteFn for each; the held bytes flushed first), the
    zero-flows event is set, and FwpsInjectionHandleDestroy0 returns only after every stream
    injection completed."""
    stack, driver, a = setup()
    b = Conn(stack, peer_port=40001)
    a.push(b"it is rai")
    b.push(b"rainy days")
    assert not driver.zero_flows and len(driver.flows) == 4
    with stack:
        assert wdk.FwpsCalloutUnregisterById0(driver.flows[0].calloutId) == S.STATUS_DEVICE_BUSY
    driver.unload()
    assert driver.zero_flows and driver.log.flow_deletes == 4
    handle = driver.injection_handle
    assert handle.state.value == "destroyed" and handle.in_flight == 0
    injected = [r for r in stack.injections if r.function == "FwpsStreamInjectAsync0"]
    assert injected and all(r.completed and r.completion_called for r in injected)
    assert a.received == b"it is rai" and b.received == b"cloudy days"
    for c in (a, b):
        c.flow.close()
    assert_quiet(stack)


def test_outbound_stream_edit_reaches_the_wire(no_leaks):
    """The application's own bytes (SEND direction) are edited too and leave as TCP segments."""
    stack, driver, conn = setup()
    conn.flow.send(b"forecast: rainy")
    stack.run()
    payloads = [transport_of(p)[2] for p in ip_packets(stack)]
    assert b"".join(payloads) == b"forecast: sunny"
    assert bytes(conn.flow.sent) == b"forecast: sunny"
    stack.shutdown(conn.flow)  # SEND_DISCONNECT: cloned, re-injected last, FIN on the wire
    stack.run()
    last = transport_of(ip_packets(stack)[-1])[1]
    assert last.tcp_flags & IP.TCP_FIN
    assert [r.params["stream_flags"] for r in stack.injections][-1] & (
        FWPS_STREAM_FLAG_SEND_DISCONNECT
    )
    finish(stack, driver, conn)
