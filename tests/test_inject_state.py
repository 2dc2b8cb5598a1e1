"""Injection state: FwpsQueryPacketInjectionState0 and the history model (injection.md §6),
through clone → inject → re-query and through the stack's own processing."""

from __future__ import annotations

import pytest
from fakes import A4, Completions, HookEngine, absorb, host, udp_packet

import wfpsim
from wfpsim import wdk
from wfpsim.constants import (
    AF_INET,
    FWPS_INJECTION_TYPE_NETWORK,
    FWPS_LAYER_INBOUND_IPPACKET_V4,
    FWPS_LAYER_INBOUND_TRANSPORT_V4,
    FWPS_LAYER_OUTBOUND_IPPACKET_V4,
    FWPS_PACKET_INJECTED_BY_OTHER,
    FWPS_PACKET_INJECTED_BY_SELF,
    FWPS_PACKET_NOT_INJECTED,
    FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF,
)
from wfpsim.stack import history_of
from wfpsim.stack import ip as IP
from wfpsim.stack.fragments import fragment

FAR = IP.addr_bytes("203.0.113.9")


def packet() -> wfpsim.NetBufferList:
    return wfpsim.NetBufferList.from_bytes(udp_packet(A4, FAR, 1, 2, b"state"))


def test_not_injected_for_new_and_allocated_nbls(no_leaks):
    stack = host()
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    nbl = packet()
    assert wdk.FwpsQueryPacketInjectionState0(h, nbl) == (FWPS_PACKET_NOT_INJECTED, None)
    assert wdk.FwpsQueryPacketInjectionState0(h, nbl, None) == (0, None)  # C's out-pointer slot
    status, built = wdk.FwpsAllocateNetBufferAndNetBufferList0(None, 0, 0, None, 0, 0)
    assert status == 0 and stack.injection_state(h, built) == (FWPS_PACKET_NOT_INJECTED, None)
    built.free()
    nbl.free()


def test_self_other_and_the_context_object(no_leaks):
    stack = host()
    mine = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    theirs = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    context = {"priority": 10}
    nbl = packet()
    states = []

    def done(ctx, n, dl):
        states.append((stack.injection_state(mine, n), stack.injection_state(theirs, n)))
        n.free()

    stack.inject_network_send(mine, nbl, completion=done, injection_context=context)
    state, ctx = wdk.FwpsQueryPacketInjectionState0(mine, nbl)
    assert state == FWPS_PACKET_INJECTED_BY_SELF and ctx is context
    assert wdk.FwpsQueryPacketInjectionState0(theirs, nbl) == (FWPS_PACKET_INJECTED_BY_OTHER, None)
    stack.run()
    # still true at completion time (the history stays with the NBL)
    assert states == [
        ((FWPS_PACKET_INJECTED_BY_SELF, context), (FWPS_PACKET_INJECTED_BY_OTHER, None))
    ]


def test_clone_inject_requery_previously_injected_by_self(no_leaks):
    """Handle A injects X; X is cloned and the clone injected through B. Queried through A the
    clone is PREVIOUSLY_INJECTED_BY_SELF (with A's context), through B it is SELF, through C
    OTHER; X itself stays SELF for A."""
    stack = host()
    a, b, c = (stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK) for _ in range(3))
    x = packet()
    done = Completions()
    stack.inject_network_send(a, x, completion=done, injection_context="ctx-a")
    clone = x.clone()
    assert stack.injection_state(a, clone) == (FWPS_PACKET_INJECTED_BY_SELF, "ctx-a")
    stack.inject_network_send(b, clone, completion=done, injection_context="ctx-b")
    assert stack.injection_state(a, clone) == (FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF, "ctx-a")
    assert stack.injection_state(b, clone) == (FWPS_PACKET_INJECTED_BY_SELF, "ctx-b")
    assert stack.injection_state(c, clone) == (FWPS_PACKET_INJECTED_BY_OTHER, None)
    assert stack.injection_state(a, x) == (FWPS_PACKET_INJECTED_BY_SELF, "ctx-a")
    assert stack.injection_state(b, x) == (FWPS_PACKET_INJECTED_BY_OTHER, None)
    assert [e.handle_serial for e in history_of(clone)] == [a.serial, b.serial]
    # the clone completes first (it pins x), then x: completion order = delivery order
    stack.run()
    assert [call[1] for call in done.calls] == [x, clone] or [call[1] for call in done.calls] == [
        clone,
        x,
    ]
    assert len(done.calls) == 2


def test_previously_self_reports_this_handles_most_recent_context(no_leaks):
    stack = host()
    a, b = (stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK) for _ in range(2))
    x = packet()
    hops = []
    for handle, ctx in ((a, "a1"), (b, "b1"), (a, "a2"), (b, "b2")):
        hops.append(x)
        stack.inject_network_send(
            handle, x, completion=Completions(free=None), injection_context=ctx
        )
        stack.run()
        x = x.clone()
    assert stack.injection_state(a, x) == (FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF, "a2")
    assert stack.injection_state(b, x) == (FWPS_PACKET_INJECTED_BY_SELF, "b2")
    x.free_clone()
    for n in reversed(hops[1:]):
        n.free_clone()
    hops[0].free()


def test_the_reentered_packet_carries_its_state_at_every_layer(no_leaks):
    """S-25 shape: a callout at INBOUND_IPPACKET retreats ipHeaderSize, clones, advances back,
    receive-injects the clone and absorbs the original; the clone is seen at every inbound
    layer as INJECTED_BY_SELF, with the injectionContext it was given."""
    engine = HookEngine()
    stack = host(engine=engine)
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=53
    )
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    states = {}
    done = Completions()

    def ippacket(seen, out):
        nbl = seen.layer_data
        state, ctx = wdk.FwpsQueryPacketInjectionState0(h, nbl)
        states.setdefault("IPPACKET", []).append((state, ctx))
        if state in (FWPS_PACKET_INJECTED_BY_SELF, FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF):
            return
        nb = nbl.FirstNetBuffer
        wdk.NdisRetreatNetBufferDataStart(nb, seen.meta.ipHeaderSize, 0, None)
        status, clone = wdk.FwpsAllocateCloneNetBufferList0(nbl, None, None, 0)
        wdk.NdisAdvanceNetBufferDataStart(nb, seen.meta.ipHeaderSize, False, None)
        assert status == 0
        assert (
            wdk.FwpsInjectNetworkReceiveAsync0(
                h,
                "reinjected",
                0,
                seen.meta.compartmentId,
                seen.value("INTERFACE_INDEX").uint32,
                seen.value("SUB_INTERFACE_INDEX").uint32,
                clone,
                done,
                None,
            )
            == 0
        )
        absorb(out)

    def transport(seen, out):
        states.setdefault("TRANSPORT", []).append(
            wdk.FwpsQueryPacketInjectionState0(h, seen.layer_data)
        )

    engine.on(FWPS_LAYER_INBOUND_IPPACKET_V4, ippacket)
    engine.on(FWPS_LAYER_INBOUND_TRANSPORT_V4, transport)
    result = stack.receive(1, udp_packet(FAR, A4, 9, 53, b"query"))
    assert result.outcome == "absorbed" and ep.received == []
    stack.run()
    assert [d.data for d in ep.received] == [b"query"]
    assert states["IPPACKET"] == [
        (FWPS_PACKET_NOT_INJECTED, None),
        (FWPS_PACKET_INJECTED_BY_SELF, "reinjected"),
    ]
    assert states["TRANSPORT"] == [(FWPS_PACKET_INJECTED_BY_SELF, "reinjected")]
    assert done.statuses == [0]


def test_state_survives_reassembly_of_injected_fragments(no_leaks):
    """The stack's own processing keeps the history: fragments receive-injected through a handle
    are reassembled into a new NBL, which the transport layer still sees as INJECTED_BY_SELF."""
    engine = HookEngine()
    stack = host(engine=engine)
    stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=53
    )
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    seen_states = []
    engine.on(
        FWPS_LAYER_INBOUND_TRANSPORT_V4,
        lambda seen, out: seen_states.append(stack.injection_state(h, seen.layer_data)),
    )
    whole = udp_packet(FAR, A4, 9, 53, bytes(range(256)) * 8)
    done = Completions()
    for piece in fragment(whole, 576, 77):
        stack.inject_network_receive(
            h,
            wfpsim.NetBufferList.from_bytes(piece),
            interface_index=1,
            completion=done,
            injection_context="frag",
        )
    stack.run()
    assert len(done.calls) == 4 and done.statuses == [0] * 4
    assert seen_states == [(FWPS_PACKET_INJECTED_BY_SELF, "frag")]


def test_split_clones_keep_the_history(no_leaks):
    stack = host()
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    multi = wfpsim.NetBufferList.from_buffers([b"a" * 20, b"b" * 20])
    multi.set_info(10, 0)
    x = packet()
    stack.inject_network_send(h, x, completion=Completions(free=None), injection_context=5)
    stack.run()
    multi.set_info(10, x.get_info(10))  # as if multi were a clone of x
    chain = multi.split()
    assert [stack.injection_state(h, n) for n in chain] == [(FWPS_PACKET_INJECTED_BY_SELF, 5)] * 2
    chain.free()
    multi.free()
    x.free()


def test_query_rules(no_leaks):
    stack = host()
    h = stack.injection_handle(AF_INET, 0)
    with pytest.raises(wfpsim.InvalidParameterError):
        wdk.FwpsQueryPacketInjectionState0(h, None)
    nbl = packet()
    with pytest.raises(wfpsim.InvalidStateError):
        wdk.FwpsQueryPacketInjectionState0("not a handle", nbl)
    nbl.free()
    with pytest.raises(wfpsim.UseAfterFreeError):
        wdk.FwpsQueryPacketInjectionState0(h, nbl)


def test_windivert_priorities_s34(no_leaks):
    """S-34: two diversion instances with priorities 20 and 10 share the driver's network handle
    on OUTBOUND_IPPACKET and re-inject with their priority as injectionContext. An instance skips
    a packet whose state is SELF/PREVIOUSLY_SELF with stored priority <= its own. Each diverts
    the packet exactly once; one packet reaches the wire."""
    engine = HookEngine()
    stack = host(engine=engine)
    handle = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    diverted, contexts = [], []
    done = Completions()

    def classify(seen, out):
        state, stored = wdk.FwpsQueryPacketInjectionState0(handle, seen.layer_data)
        contexts.append((state, stored))
        for prio in (20, 10):  # higher priority first
            if (
                state in (FWPS_PACKET_INJECTED_BY_SELF, FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF)
                and stored <= prio
            ):
                continue
            diverted.append(prio)
            copy = wfpsim.NetBufferList.from_bytes(seen.layer_data.FirstNetBuffer.tobytes())
            stack.inject_network_send(handle, copy, completion=done, injection_context=prio)
            absorb(out)
            return

    engine.on(FWPS_LAYER_OUTBOUND_IPPACKET_V4, classify)
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=4
    )
    stack.send(ep, b"divert me", ("203.0.113.9", 4))
    stack.run()
    assert diverted == [20, 10]
    assert contexts == [
        (FWPS_PACKET_NOT_INJECTED, None),
        (FWPS_PACKET_INJECTED_BY_SELF, 20),
        (FWPS_PACKET_INJECTED_BY_SELF, 10),
    ]
    assert len(stack.wire) == 1 and stack.wire[0].data.endswith(b"divert me")
    assert done.statuses == [0, 0]


def test_inbound_ippacket_hook_unused_guard():
    # keeps the INBOUND_IPPACKET constant referenced for readers grepping layer names
    assert FWPS_LAYER_INBOUND_IPPACKET_V4 == 0 and FWPS_LAYER_OUTBOUND_IPPACKET_V4 == 4
