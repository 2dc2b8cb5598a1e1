"""The stack side of the stream layer: the seam's stream_classify contract, FwpsStreamInjectAsync0
(inline and out of band, lower-weight sublayers only, chains, FIN-only, deferred flows)."""

from __future__ import annotations

from fakes import A4, Completions, StreamCallout, StreamEngine, host, tcp_packet

import wfpsim
from wfpsim import wdk
from wfpsim.constants import (
    AF_INET,
    FWPS_LAYER_STREAM_V4,
    FWPS_STREAM_FLAG_RECEIVE,
    FWPS_STREAM_FLAG_RECEIVE_DISCONNECT,
    FWPS_STREAM_FLAG_SEND,
    FWPS_STREAM_FLAG_SEND_DISCONNECT,
)
from wfpsim.stack import StreamVerdict
from wfpsim.stack import ip as IP

FAR = IP.addr_bytes("198.51.100.7")


def flow_on(stack):
    return stack.open_tcp_flow(
        address_family=AF_INET, local=("192.0.2.1", 80), remote=("198.51.100.7", 5000), direction=1
    )


def test_inline_replace_in_the_middle_s15_shape(no_leaks):
    """An inline editor replaces "cloudy" with "sunny" in an inbound stream: it injects the
    replacement from inside its classify and blocks the original bytes; the injected bytes land
    exactly where the blocked ones were (the stack delivers inline injections at once)."""
    holder = {}

    def editor(data, flags):
        stack, flow, h, done = holder["ctx"]
        if b"cloudy" not in data:
            return None
        before, after = data.split(b"cloudy", 1)
        holder["out"].append(before)
        stack.paths.stream_sink(flow, 1, None)(before, flags)  # what the engine permitted so far
        nbl = wfpsim.NetBufferList.from_bytes(b"sunny")
        assert (
            wdk.FwpsStreamInjectAsync0(
                h,
                None,
                0,
                flow.flow_id,
                1,
                FWPS_LAYER_STREAM_V4,
                FWPS_STREAM_FLAG_RECEIVE,
                nbl,
                5,
                done,
                None,
            )
            == 0
        )
        return after

    engine = StreamEngine([StreamCallout(1, 0x20, editor)])
    stack = host(engine=engine)
    flow = flow_on(stack)
    h = stack.injection_handle(AF_INET, 0)
    done = Completions()
    holder.update(ctx=(stack, flow, h, done), out=[])
    stack.receive(
        1, tcp_packet(FAR, A4, 5000, 80, 1, IP.TCP_ACK | IP.TCP_PSH, b"abc cloudy defghi")
    )
    assert bytes(flow.received) == b"abc sunny defghi"
    assert done.calls == []  # the completion still comes from the dispatcher
    assert stack.run() == 1 and done.statuses == [0]
    injected = [d for d in stack.delivered if d.function == "FwpsStreamInjectAsync0"]
    assert [(d.data, d.flow_id, d.stream_flags) for d in injected] == [
        (b"sunny", flow.flow_id, FWPS_STREAM_FLAG_RECEIVE)
    ]


def test_injected_data_only_reaches_lower_weight_sublayers_s19(no_leaks):
    """S-19: an out-of-band callout (weight 0x40) blocks everything and later injects
    "cloudy"; only the callout at 0x20 sees the injected bytes, the injector never does."""
    held = []
    oob = StreamCallout(1, 0x40, lambda data, flags: held.append(data) or b"")
    inline = StreamCallout(2, 0x20, lambda data, flags: data.replace(b"cloudy", b"sunny"))
    engine = StreamEngine([oob, inline])
    stack = host(engine=engine)
    flow = flow_on(stack)
    h = stack.injection_handle(AF_INET, 0)
    done = Completions()
    stack.receive(1, tcp_packet(FAR, A4, 5000, 80, 1, IP.TCP_ACK, b"rainy"))
    assert held == [b"rainy"] and flow.received == b""

    def worker():
        nbl = wfpsim.NetBufferList.from_bytes(b"cloudy")
        stack.inject_stream(
            h,
            nbl,
            flow_id=flow.flow_id,
            callout_id=1,
            layer_id=FWPS_LAYER_STREAM_V4,
            stream_flags=FWPS_STREAM_FLAG_RECEIVE,
            completion=done,
        )

    stack.queue_dpc(worker)
    stack.run()
    assert oob.seen == [b"rainy"]  # never its own injected bytes
    assert inline.seen == [b"", b"cloudy"]  # (the blocked indication, then the injection)
    assert bytes(flow.received) == b"sunny"
    assert engine.stream_calls[-1][2:] == (True, 1)  # injected, exclude_callout_id = 1
    assert done.statuses == [0]


def test_outbound_stream_injection_goes_to_the_wire(no_leaks):
    engine = StreamEngine([StreamCallout(3, 0x10, lambda data, flags: None)])
    stack = host(engine=engine)
    flow = flow_on(stack)
    h = stack.injection_handle(AF_INET, 0)
    done = Completions()
    chain = [wfpsim.NetBufferList.from_bytes(x) for x in (b"HTTP/1.0 ", b"200 OK")]
    chain[0].Next = chain[1]

    def unlink(ctx, nbl, dl):
        nbl.Next = None
        done(ctx, nbl, dl)

    stack.inject_stream(
        h,
        chain[0],
        flow_id=flow.flow_id,
        callout_id=3,
        layer_id=FWPS_LAYER_STREAM_V4,
        stream_flags=FWPS_STREAM_FLAG_SEND,
        completion=unlink,
    )
    assert stack.run() == 2
    payloads = [f.data[14 + 40 :] for f in stack.wire]
    assert payloads == [b"HTTP/1.0 ", b"200 OK"]
    assert bytes(flow.sent) == b"HTTP/1.0 200 OK"
    assert done.statuses == [0, 0]


def test_fin_only_injection_never_completes_but_sends_fin_b16(no_leaks):
    stack = host()
    flow = flow_on(stack)
    h = stack.injection_handle(AF_INET, 0)
    done = Completions()
    status = wdk.FwpsStreamInjectAsync0(
        h,
        None,
        0,
        flow.flow_id,
        3,
        FWPS_LAYER_STREAM_V4,
        FWPS_STREAM_FLAG_SEND | FWPS_STREAM_FLAG_SEND_DISCONNECT,
        None,
        0,
        done,
        None,
    )
    assert status == 0
    stack.run()
    assert done.calls == []
    tcp = IP.parse_transport(6, stack.wire[-1].data[34:])
    assert tcp.tcp_flags & IP.TCP_FIN and flow.fin_sent


def test_disconnect_on_the_last_nbl_of_a_chain_only(no_leaks):
    stack = host()
    flow = flow_on(stack)
    h = stack.injection_handle(AF_INET, 0)
    done = Completions(free=None)
    a, b = wfpsim.NetBufferList.from_bytes(b"one"), wfpsim.NetBufferList.from_bytes(b"two")
    a.Next = b
    stack.inject_stream(
        h,
        a,
        flow_id=flow.flow_id,
        callout_id=3,
        layer_id=FWPS_LAYER_STREAM_V4,
        stream_flags=FWPS_STREAM_FLAG_RECEIVE | FWPS_STREAM_FLAG_RECEIVE_DISCONNECT,
        completion=done,
    )
    stack.run()
    records = [d for d in stack.delivered if d.destination == "stream"]
    assert [
        (r.data, bool(r.stream_flags & FWPS_STREAM_FLAG_RECEIVE_DISCONNECT)) for r in records
    ] == [(b"one", False), (b"two", True)]
    assert flow.fin_received and bytes(flow.received) == b"onetwo"
    a.Next = None
    a.free()
    b.free()


def test_injection_into_a_closed_flow_fails_late(no_leaks):
    stack = host()
    flow = flow_on(stack)
    h = stack.injection_handle(AF_INET, 0)
    done = Completions()
    stack.inject_stream(
        h,
        wfpsim.NetBufferList.from_bytes(b"late"),
        flow_id=flow.flow_id,
        callout_id=3,
        layer_id=FWPS_LAYER_STREAM_V4,
        stream_flags=FWPS_STREAM_FLAG_SEND,
        completion=done,
    )
    flow.close()
    stack.run()
    assert done.statuses == [wfpsim.NTSTATUS.STATUS_CONNECTION_ABORTED]
    assert stack.wire == []


def test_deferred_stream_and_engine_release(no_leaks):
    """An engine that defers an inbound stream keeps its bytes; the stack records the deferral
    (out-of-classify injections into it are legal) and delivers what the engine releases later
    through stack.stream_deliver (after FwpsStreamContinue0)."""

    class Deferring(StreamEngine):
        def __init__(self):
            super().__init__([])
            self.buffer = b""

        def stream_classify(
            self,
            layer_id,
            inFixedValues,
            inMetaValues,
            segment,
            *,
            flow_handle,  # noqa: N803
            deliver,
            exclude_callout_id=None,
            below_sublayer_weight=None,
        ):
            self.buffer += segment.data
            return StreamVerdict(deferred=True)

    engine = Deferring()
    stack = host(engine=engine)
    flow = flow_on(stack)
    stack.receive(1, tcp_packet(FAR, A4, 5000, 80, 1, IP.TCP_ACK, b"held "))
    stack.receive(1, tcp_packet(FAR, A4, 5000, 80, 6, IP.TCP_ACK, b"back"))
    assert flow.deferred[1] and flow.received == b""
    stack.stream_deliver(flow.flow_id, FWPS_STREAM_FLAG_RECEIVE, engine.buffer)
    assert bytes(flow.received) == b"held back"


def test_drop_connection_closes_the_flow(no_leaks):
    class Dropper(StreamEngine):
        def stream_classify(self, *a, **kw):
            return StreamVerdict(drop_connection=True)

    engine = Dropper([])
    stack = host(engine=engine)
    flow = flow_on(stack)
    stack.receive(1, tcp_packet(FAR, A4, 5000, 80, 1, IP.TCP_ACK, b"bad"))
    assert flow.closed and flow.dropped
    assert engine.deleted_flows == [flow.flow_id]  # flowDeleteFn is the engine's to call
    assert (
        stack.receive(1, tcp_packet(FAR, A4, 5000, 80, 4, IP.TCP_ACK, b"more")).outcome == "dropped"
    )


def test_inbound_fin_is_a_separate_disconnect_indication(no_leaks):
    engine = StreamEngine([])
    stack = host(engine=engine)
    flow = flow_on(stack)
    stack.receive(1, tcp_packet(FAR, A4, 5000, 80, 1, IP.TCP_ACK | IP.TCP_FIN | IP.TCP_PSH, b"bye"))
    assert [(c[0], c[1]) for c in engine.stream_calls] == [
        (b"bye", FWPS_STREAM_FLAG_RECEIVE | 0x10),
        (b"", FWPS_STREAM_FLAG_RECEIVE | FWPS_STREAM_FLAG_RECEIVE_DISCONNECT),
    ]
    assert flow.fin_received and flow.fin_indicated[1] and not flow.fin_pended(1)


def test_stream_inline_clone_reinject_s33(no_leaks):
    """S-33: a stream callout blocks everything and re-injects identical bytes (flags lacking a
    direction bit get SEND added); the peer receives identical bytes; one completion per NBL."""
    holder = {}

    def cloner(data, flags):
        stack, flow, h, done = holder["ctx"]
        if not data:
            return b""
        nbl = wfpsim.NetBufferList.from_bytes(data)
        stream_flags = (
            flags
            if flags & (FWPS_STREAM_FLAG_RECEIVE | FWPS_STREAM_FLAG_SEND)
            else flags | FWPS_STREAM_FLAG_SEND
        )
        assert (
            wdk.FwpsStreamInjectAsync0(
                h,
                None,
                0,
                flow.flow_id,
                9,
                FWPS_LAYER_STREAM_V4,
                stream_flags,
                nbl,
                len(data),
                done,
                None,
            )
            == 0
        )
        return b""

    engine = StreamEngine([StreamCallout(9, 0x10, cloner)])
    stack = host(engine=engine)
    flow = flow_on(stack)
    h = stack.injection_handle(AF_INET, 0)
    done = Completions()
    holder["ctx"] = (stack, flow, h, done)
    flow.send(b"identical bytes")
    stack.run()
    assert bytes(flow.sent) == b"identical bytes"
    assert stack.wire[-1].data.endswith(b"identical bytes") and len(stack.wire) == 1
    assert done.statuses == [0]
