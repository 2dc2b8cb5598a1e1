"""Driver-Verifier-style contract checks (stack.contracts): raise / record / off."""

from __future__ import annotations

import pytest
from fakes import A4, Completions, HookEngine, absorb, host, tcp_packet, udp_packet

import wfpsim
from wfpsim import wdk
from wfpsim.constants import (
    AF_INET,
    FWPS_INJECTION_TYPE_NETWORK,
    FWPS_LAYER_INBOUND_TRANSPORT_V4,
    FWPS_LAYER_OUTBOUND_IPPACKET_V4,
    FWPS_LAYER_OUTBOUND_TRANSPORT_V4,
)
from wfpsim.stack import ip as IP
from wfpsim.status import NTSTATUS

S = NTSTATUS
FAR = IP.addr_bytes("203.0.113.9")


def send_one(stack, handle, done=None):
    nbl = wfpsim.NetBufferList.from_bytes(udp_packet(A4, FAR, 1, 2, b"contract"))
    stack.inject_network_send(handle, nbl, completion=done or Completions())
    return nbl


def test_freeing_an_nbl_in_flight_is_caught_at_the_free(no_leaks):
    stack = host()
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    done = Completions()
    nbl = send_one(stack, h, done)
    with pytest.raises(
        wfpsim.ContractViolation, match=r"\[free-in-flight\].*FwpsInjectNetworkSendAsync0"
    ):
        wdk.FwpsFreeNetBufferList0(nbl)
    # Driver Verifier stops the bad free: the NBL is still the stack's and completes normally
    assert nbl.alive
    assert stack.run() == 1 and len(done.calls) == 1 and h.in_flight == 0


def test_free_in_flight_recorded_mode(no_leaks):
    stack = host({"contracts": "record"})
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    done = Completions()
    nbl = send_one(stack, h, done)
    nbl.free()  # recorded, and the free happens: the injection is abandoned, never completed
    assert [v.rule for v in stack.contracts.violations] == ["free-in-flight"]
    assert not nbl.alive and h.in_flight == 0
    assert stack.run() == 1 and done.calls == [] and stack.wire == []
    h.destroy()


def test_a_clone_freed_in_flight(no_leaks):
    stack = host()
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    parent = wfpsim.NetBufferList.from_bytes(udp_packet(A4, FAR, 1, 2, b"p"))
    clone = parent.clone()
    done = Completions()
    stack.inject_network_send(h, clone, completion=done)
    with pytest.raises(wfpsim.ContractViolation, match="free_clone"):
        wdk.FwpsFreeCloneNetBufferList0(clone, 0)
    stack.run()
    assert len(done.calls) == 1  # freed the clone
    parent.free()


@pytest.mark.parametrize("change", ["bytes", "advance", "next"])
def test_modifying_an_nbl_between_inject_and_completion(no_leaks, change):
    stack = host()
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    done = Completions()
    nbl = send_one(stack, h, done)
    tail = None
    if change == "bytes":
        nbl.FirstNetBuffer.data[8] = 1  # TTL
    elif change == "advance":
        nbl.advance(4)
    else:
        tail = wfpsim.NetBufferList.from_bytes(b"t")
        nbl.Next = tail
    with pytest.raises(wfpsim.ContractViolation, match=r"\[modified-in-flight\]") as e:
        stack.run()
    if change == "bytes":
        assert "data changed at byte 8" in str(e.value)
    if change == "advance":
        assert "DataOffset/DataLength" in str(e.value)
    if tail is not None:
        assert "Next link" in str(e.value)
        tail.free()
    assert len(done.calls) == 1  # the completion still ran: the driver frees its NBL there


def test_modification_while_the_stack_owns_it_is_reported_at_completion(no_leaks):
    """A callout that scribbles on the injected packet it is classifying breaks ownership too."""
    engine = HookEngine()
    stack = host(engine=engine)
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)

    def scribble(seen, out):
        seen.layer_data.FirstNetBuffer.data[21] = 0xEE

    engine.on(FWPS_LAYER_OUTBOUND_IPPACKET_V4, scribble)
    done = Completions()
    send_one(stack, h, done)
    with pytest.raises(wfpsim.ContractViolation, match="while the stack owned it"):
        stack.run()
    assert len(done.calls) == 1


def test_offset_not_restored_by_a_classify_b5(no_leaks):
    engine = HookEngine()
    stack = host({"contracts": "record"}, engine=engine)
    engine.on(FWPS_LAYER_INBOUND_TRANSPORT_V4, lambda seen, out: seen.layer_data.retreat(8))
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=2
    )
    stack.receive(1, udp_packet(FAR, A4, 1, 2, b"payload"))
    assert [v.rule for v in stack.contracts.violations] == ["offset-not-restored"]
    assert [d.data for d in ep.received] == [b"payload"]  # the stack put the offset back
    with pytest.raises(wfpsim.ContractViolation, match="B5"):
        stack.contracts.mode = "raise"
        stack.receive(1, udp_packet(FAR, A4, 1, 2, b"again"))


@pytest.mark.parametrize("inline", [True, False])
def test_tcp_transport_injection_must_be_out_of_band_r10(no_leaks, inline):
    """A TCP packet injected with FwpsInjectTransportReceiveAsync0 from inside the
    INBOUND_TRANSPORT classifyFn is a violation; the same call from a DPC is fine."""
    engine = HookEngine()
    stack = host(engine=engine)
    stack.open_tcp_flow(
        address_family=AF_INET, local=("192.0.2.1", 80), remote=("203.0.113.9", 5000)
    )
    h = stack.injection_handle(AF_INET, 0)
    done = Completions()
    raised = []

    def inject(clone):
        try:
            stack.inject_transport_receive(
                h, clone, address_family=AF_INET, interface_index=1, completion=done
            )
        except wfpsim.ContractViolation as e:
            raised.append(e)
            clone.free_clone()

    def classify(seen, out):
        if stack.injection_state(h, seen.layer_data)[0]:
            return
        nbl = seen.layer_data
        back = seen.meta.ipHeaderSize + seen.meta.transportHeaderSize
        nbl.retreat(back)
        clone = nbl.clone()
        nbl.advance(back)
        if inline:
            inject(clone)
        else:
            stack.queue_dpc(lambda: inject(clone))
        absorb(out)

    engine.on(FWPS_LAYER_INBOUND_TRANSPORT_V4, classify)
    stack.receive(1, tcp_packet(FAR, A4, 5000, 80, 1, IP.TCP_ACK | IP.TCP_PSH, b"hello"))
    stack.run()
    if inline:
        assert len(raised) == 1 and "[tcp-inline]" in str(raised[0])
        assert "INBOUND_TRANSPORT_V4" in str(raised[0])
    else:
        assert raised == [] and done.statuses == [0]


def test_tcp_inline_check_does_not_apply_to_udp(no_leaks):
    engine = HookEngine()
    stack = host(engine=engine)
    h = stack.injection_handle(AF_INET, 0)
    done = Completions()

    def classify(seen, out):
        if stack.injection_state(h, seen.layer_data)[0]:
            return
        clone = seen.layer_data.clone()
        stack.inject_transport_send(
            h,
            clone,
            endpoint_handle=seen.meta.transportEndpointHandle,
            address_family=AF_INET,
            completion=done,
            send_args=wdk.FWPS_TRANSPORT_SEND_PARAMS1(remoteAddress=FAR),
        )
        absorb(out)

    engine.on(FWPS_LAYER_OUTBOUND_TRANSPORT_V4, classify)
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=3
    )
    stack.send(ep, b"udp inline is fine", ("203.0.113.9", 3))
    stack.run()
    assert done.statuses == [0] and stack.contracts.violations == []
    assert stack.wire[-1].data.endswith(b"udp inline is fine")


def test_contracts_off_checks_nothing(no_leaks):
    stack = host({"contracts": "off"})
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    nbl = send_one(stack, h)
    nbl.FirstNetBuffer.data[8] = 3
    stack.run()
    assert stack.contracts.violations == []


def test_bad_mode_is_refused():
    with pytest.raises(ValueError):
        wfpsim.Stack(contracts="loud")
