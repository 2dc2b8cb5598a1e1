"""Completions (injection.md §3, §5): asynchronous, once per NBL, in a deterministic order,
late failures in NBL.Status, dispatchLevel, and a completion that raises."""

from __future__ import annotations

import pytest
from fakes import A4, Completions, HookEngine, absorb, block, frame, host, udp_packet

import wfpsim
from wfpsim import wdk
from wfpsim.constants import (
    AF_INET,
    FWPS_INJECTION_TYPE_L2,
    FWPS_INJECTION_TYPE_NETWORK,
    FWPS_LAYER_OUTBOUND_IPPACKET_V4,
    FWPS_LAYER_OUTBOUND_MAC_FRAME_ETHERNET,
    FWPS_LAYER_STREAM_V4,
    FWPS_STREAM_FLAG_SEND,
)
from wfpsim.stack import ip as IP
from wfpsim.status import NTSTATUS

S = NTSTATUS
FAR = IP.addr_bytes("203.0.113.9")


def outbound(payload: bytes = b"x", size: int | None = None) -> wfpsim.NetBufferList:
    if size is not None:
        payload = bytes(size - 28)
    return wfpsim.NetBufferList.from_bytes(udp_packet(A4, FAR, 1000, 53, payload))


def test_completion_gets_the_same_objects_and_dispatch_level(no_leaks):
    stack = host()
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    nbl = outbound()
    ctx = object()
    got = []

    def done(context, netBufferList, dispatchLevel):  # noqa: N803
        got.append((context, netBufferList, dispatchLevel))
        netBufferList.free()

    assert wdk.FwpsInjectNetworkSendAsync0(h, None, 0, 0, nbl, done, ctx) == S.STATUS_SUCCESS
    assert got == []
    assert stack.run() == 1
    assert len(got) == 1
    context, same, dispatch_level = got[0]
    assert context is ctx and same is nbl
    assert dispatch_level is True  # DPC context (injection.md §5)
    assert stack.run() == 0


def test_completions_run_in_injection_order(no_leaks):
    stack = host()
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    done = Completions()
    for i in range(5):
        stack.inject_network_send(h, outbound(bytes([i])), completion=done, completion_context=i)
    assert stack.run() == 5
    assert [c[0] for c in done.calls] == [0, 1, 2, 3, 4]
    assert [d.data[-1] for d in stack.delivered] == [0, 1, 2, 3, 4]


def test_run_returns_the_number_of_work_items_and_0_when_idle(no_leaks):
    stack = host()
    assert stack.run() == 0
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    done = Completions()
    for _ in range(3):
        stack.inject_network_send(h, outbound(), completion=done)
    assert stack.step() == 1 and len(done.calls) == 1
    assert stack.run() == 2
    assert stack.run() == 0


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("mtu", S.STATUS_INVALID_BUFFER_SIZE),
        ("fits", S.STATUS_SUCCESS),
        ("blocked", S.STATUS_FWP_DROP_NOICMP),
        ("absorbed", S.STATUS_SUCCESS),
    ],
)
def test_late_failures_reach_nbl_status(no_leaks, case, expected):
    engine = HookEngine()
    stack = host(engine=engine, mtu=576)
    if case == "blocked":
        engine.on(FWPS_LAYER_OUTBOUND_IPPACKET_V4, lambda seen, out: block(out))
    if case == "absorbed":
        engine.on(FWPS_LAYER_OUTBOUND_IPPACKET_V4, lambda seen, out: absorb(out))
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    done = Completions()
    nbl = outbound(size=577 if case == "mtu" else 576)
    assert wdk.FwpsInjectNetworkSendAsync0(h, None, 0, 0, nbl, done, None) == S.STATUS_SUCCESS
    stack.run()
    assert done.statuses == [expected]
    wire = [d for d in stack.delivered if d.destination == "wire"]
    assert len(wire) == (1 if case == "fits" else 0)


def test_oversize_send_s36(no_leaks):
    """S-36: network-send a packet larger than the interface MTU: sync success, completion with
    STATUS_INVALID_BUFFER_SIZE (0xC0000206) in Status, nothing on the wire."""
    stack = host(mtu=1280)
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    done = Completions()
    stack.inject_network_send(h, outbound(size=1500), completion=done)
    stack.run()
    assert done.statuses == [0xC0000206]
    assert stack.wire == []


def test_endpoint_closed_before_the_send_ran_s39(no_leaks):
    """S-39: transport send whose endpoint closed meanwhile: sync success, the completion carries
    a failure status ([emu] STATUS_INVALID_HANDLE)."""
    stack = host()
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=7
    )
    h = stack.injection_handle(AF_INET, 0)
    done = Completions()
    seg = IP.udp_datagram(A4, FAR, 7, 53, b"late")
    nbl = wfpsim.NetBufferList.from_bytes(seg, 64)
    args = wdk.FWPS_TRANSPORT_SEND_PARAMS1(remoteAddress=FAR)
    assert (
        wdk.FwpsInjectTransportSendAsync1(h, None, ep.handle, 0, args, AF_INET, 0, nbl, done, None)
        == 0
    )
    ep.close()
    stack.run()
    assert done.statuses == [S.STATUS_INVALID_HANDLE]
    assert not wfpsim.NT_SUCCESS(done.statuses[0])
    assert stack.wire == []


def test_a_completion_that_raises_does_not_stop_the_queue(no_leaks):
    stack = host()
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    seen = []

    def done(ctx, nbl, dl):
        seen.append(ctx)
        nbl.free()
        if ctx in (1, 3):
            raise ValueError(f"bug {ctx}")

    for i in range(5):
        stack.inject_network_send(h, outbound(), completion=done, completion_context=i)
    with pytest.raises(ValueError, match="bug 1") as e:
        stack.run()
    assert seen == [0, 1, 2, 3, 4]
    assert [str(x) for x in e.value.errors] == ["bug 1", "bug 3"]
    assert h.in_flight == 0
    # the stack still works
    stack.inject_network_send(h, outbound(), completion=Completions())
    assert stack.run() == 1
    h.destroy()


def test_completion_waits_for_clones_of_the_injected_nbl(no_leaks):
    """An injected packet absorbed by a callout that keeps a clone: the injector's completion runs
    only after the clone is freed (the clone pins its parent, injection.md §7)."""
    engine = HookEngine()
    stack = host(engine=engine)
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    other = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    kept = []

    def grab(seen, out):
        if wdk.FwpsQueryPacketInjectionState0(other, seen.layer_data)[0] == 0 or kept:
            return
        kept.append(seen.layer_data.clone())
        absorb(out)

    engine.on(FWPS_LAYER_OUTBOUND_IPPACKET_V4, grab)
    done = Completions()
    nbl = outbound()
    stack.inject_network_send(h, nbl, completion=done)
    assert stack.run() == 1
    assert done.calls == [] and nbl.ChildRefCount == 1 and h.in_flight == 1
    kept[0].free_clone()
    assert stack.run() == 1  # the completion, now that the clone is gone
    assert done.statuses == [S.STATUS_SUCCESS]
    assert stack.wire == []
    h.destroy()
    other.destroy()


@pytest.mark.parametrize("function", ["mac", "stream"])
def test_chains_complete_once_per_nbl_b15(no_leaks, function):
    stack = host()
    inner = Completions()

    def done(ctx, nbl, dispatch_level):
        nbl.Next = None  # the NBL is the driver's again: unlink it, then free it
        inner(ctx, nbl, dispatch_level)

    if function == "mac":
        h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_L2)
        nbls = [
            wfpsim.NetBufferList.from_bytes(frame(udp_packet(A4, FAR, 1, 2, bytes([i]))))
            for i in range(3)
        ]
    else:
        h = stack.injection_handle(AF_INET, 0)
        flow = stack.open_tcp_flow(
            address_family=AF_INET, local=("192.0.2.1", 5000), remote=("192.0.2.2", 80)
        )
        nbls = [wfpsim.NetBufferList.from_bytes(c) for c in (b"ab", b"cde", b"f")]
    for a, b in zip(nbls, nbls[1:], strict=False):
        a.Next = b
    if function == "mac":
        stack.inject_mac_send(
            h,
            nbls[0],
            layer_id=FWPS_LAYER_OUTBOUND_MAC_FRAME_ETHERNET,
            interface_index=1,
            completion=done,
            completion_context="one",
        )
    else:
        stack.inject_stream(
            h,
            nbls[0],
            flow_id=flow.flow_id,
            callout_id=1,
            layer_id=FWPS_LAYER_STREAM_V4,
            stream_flags=FWPS_STREAM_FLAG_SEND,
            data_length=6,
            completion=done,
            completion_context="one",
        )
    assert stack.run() == 3
    assert [c[0] for c in inner.calls] == ["one"] * 3
    assert [c[1] for c in inner.calls] == nbls
    if function == "stream":
        assert bytes(flow.sent) == b"abcdef"
    else:
        assert [f.data[-1] for f in stack.wire] == [0, 1, 2]


def test_completion_may_inject_again(no_leaks):
    stack = host()
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    count = []

    def done(ctx, nbl, dl):
        count.append(ctx)
        nbl.free()
        if ctx < 40:  # a chain of 40 injections, each from the previous completion: no "loop"
            stack.inject_network_send(h, outbound(), completion=done, completion_context=ctx + 1)

    stack.inject_network_send(h, outbound(), completion=done, completion_context=0)
    assert stack.run() == 41
    assert count == list(range(41))
    assert stack.loop_errors == []


def test_same_input_same_output():
    def scenario():
        engine = HookEngine()
        stack = host(engine=engine)
        h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
        order = []
        for i in range(4):
            stack.inject_network_send(
                h,
                outbound(bytes([i])),
                completion=lambda c, n, d: (order.append(c), n.free()),
                completion_context=i,
            )
        stack.receive(1, frame(udp_packet(FAR, A4, 9, 9, b"in")))
        stack.run()
        return (
            order,
            [(d.function, d.data, d.destination) for d in stack.delivered],
            engine.layers(),
        )

    assert scenario() == scenario()
