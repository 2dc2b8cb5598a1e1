"""The stack side of pended ALE classifies (AleCompletionHandle): re-authorisation after
ALE_AUTH_CONNECT completes (S-02 / S-03 shape), and ALE_AUTH_RECV_ACCEPT completed with the
clone about to be receive-injected (S-04) or with NULL (S-05)."""

from __future__ import annotations

import pytest
from fakes import A4, Completions, HookEngine, absorb, block, host, tcp_packet, udp_packet

import wfpsim
from wfpsim import wdk
from wfpsim.constants import (
    AF_INET,
    FWP_CONDITION_FLAG_IS_REAUTHORIZE,
    FWP_DIRECTION_OUTBOUND,
    FWPS_LAYER_ALE_AUTH_CONNECT_V4,
    FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V4,
    FWPS_METADATA_FIELD_PACKET_DIRECTION,
    FWPS_PACKET_INJECTED_BY_SELF,
)
from wfpsim.stack import ip as IP

FAR = IP.addr_bytes("198.51.100.7")


@pytest.mark.parametrize("permit", [True, False], ids=["S-02", "S-03"])
def test_pended_connect_reauthorisation(no_leaks, permit):
    engine = HookEngine()
    stack = host(engine=engine)
    h = stack.injection_handle(AF_INET, 0)
    held = {}
    done = Completions()

    def connect(seen, out):
        flags = seen.value("FLAGS").uint32
        if flags & FWP_CONDITION_FLAG_IS_REAUTHORIZE:
            held["reauth_meta"] = seen.meta
            held["reauth_data"] = seen.layer_data
            if not permit:
                block(out)
            return
        handle = seen.meta.completionHandle
        handle.pend()  # what the engine's FwpsPendOperation0 does
        held.update(
            handle=handle, clone=seen.layer_data.clone(), endpoint=seen.meta.transportEndpointHandle
        )
        absorb(out)

    engine.on(FWPS_LAYER_ALE_AUTH_CONNECT_V4, connect)
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=7
    )
    assert stack.send(ep, b"first datagram", ("198.51.100.7", 53)).outcome == "absorbed"
    # while pended, further datagrams of the flow are held back (dropped here, [emu])
    assert stack.send(ep, b"second", ("198.51.100.7", 53)).outcome == "dropped"
    held["handle"].complete(None)  # the worker's FwpsCompleteOperation0(ctx, NULL)
    meta = held["reauth_meta"]
    assert held["reauth_data"] is None
    assert meta.currentMetadataValues & FWPS_METADATA_FIELD_PACKET_DIRECTION
    assert meta.packetDirection == FWP_DIRECTION_OUTBOUND
    with pytest.raises(wfpsim.ContractViolation, match="already completed"):
        held["handle"].complete(None)
    if permit:
        args = wdk.FWPS_TRANSPORT_SEND_PARAMS1(remoteAddress=FAR)
        stack.inject_transport_send(
            h,
            held["clone"],
            endpoint_handle=held["endpoint"],
            address_family=AF_INET,
            send_args=args,
            completion=done,
        )
        stack.run()
        assert [f.data[14:][-14:] for f in stack.wire] == [b"first datagram"]
        assert FWPS_LAYER_ALE_AUTH_CONNECT_V4 not in stack.injections[-1].layers  # authorised
        assert done.statuses == [0]
    else:
        held["clone"].free_clone()  # S-03: the held datagram is freed, never injected
        assert stack.run() == 0  # (the stack frees the absorbed original on its next poll)
        assert stack.wire == [] and done.calls == []


@pytest.mark.parametrize("accept", [True, False], ids=["S-04", "S-05"])
def test_pended_recv_accept(no_leaks, accept):
    engine = HookEngine()
    stack = host(engine=engine)
    stack.open_endpoint(
        address_family=AF_INET, protocol=6, local_address="192.0.2.1", local_port=443, listen=True
    )
    h = stack.injection_handle(AF_INET, 0)
    held = {}
    states = []
    done = Completions()

    def recv_accept(seen, out):
        state = wdk.FwpsQueryPacketInjectionState0(h, seen.layer_data)[0]
        states.append(state)
        if state == FWPS_PACKET_INJECTED_BY_SELF:
            return
        nbl = seen.layer_data
        back = seen.meta.ipHeaderSize + seen.meta.transportHeaderSize
        nbl.retreat(back)
        held["clone"] = nbl.clone()
        nbl.advance(back)
        seen.meta.completionHandle.pend()
        held["handle"] = seen.meta.completionHandle
        absorb(out)

    engine.on(FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V4, recv_accept)
    stack.receive(1, tcp_packet(FAR, A4, 6000, 443, 41, IP.TCP_SYN))
    assert stack.wire == []  # no SYN-ACK while pended

    def worker():
        if accept:
            held["handle"].complete(held["clone"])
            stack.inject_transport_receive(
                h, held["clone"], address_family=AF_INET, interface_index=1, completion=done
            )
        else:
            held["handle"].complete(None)
            held["clone"].free_clone()

    stack.queue_dpc(worker)
    stack.run()
    if accept:
        assert states == [0, FWPS_PACKET_INJECTED_BY_SELF]
        synack = IP.parse_transport(6, stack.wire[-1].data[34:])
        assert synack.tcp_flags & IP.TCP_SYN and synack.ack == 42
        assert done.statuses == [0]
    else:
        assert states == [0] and stack.wire == []
        assert not [f for f in stack.flows.values() if f.local[1] == 443 and not f.closed]


def test_udp_first_packet_recv_accept_absorbed_without_pend(no_leaks):
    """Absorbed at ALE_AUTH_RECV_ACCEPT without pending: the flow stays unauthorised, so the
    callout's re-injected clone is classified at ALE_AUTH_RECV_ACCEPT again."""
    engine = HookEngine()
    stack = host(engine=engine)
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=53
    )
    h = stack.injection_handle(AF_INET, 0)
    seen_states = []

    def recv_accept(seen, out):
        state = stack.injection_state(h, seen.layer_data)[0]
        seen_states.append(state)
        if state:
            return
        nbl = seen.layer_data
        back = seen.meta.ipHeaderSize + seen.meta.transportHeaderSize
        nbl.retreat(back)
        clone = nbl.clone()
        nbl.advance(back)
        stack.inject_transport_receive(
            h, clone, address_family=AF_INET, interface_index=1, completion=Completions()
        )
        absorb(out)

    engine.on(FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V4, recv_accept)
    stack.receive(1, udp_packet(FAR, A4, 9, 53, b"first"))
    stack.run()
    assert seen_states == [0, FWPS_PACKET_INJECTED_BY_SELF]
    assert [d.data for d in ep.received] == [b"first"]
