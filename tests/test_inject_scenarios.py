"""samples.md §9.6, the API-contract scenarios S-38 … S-42, end to end on the WDK face
(S-39 and S-40 also in test_inject_completion / test_inject_handles)."""

from __future__ import annotations

import pytest
from fakes import A4, Completions, HookEngine, absorb, host, udp_packet

import wfpsim
from wfpsim import wdk
from wfpsim.constants import AF_INET, FWPS_INJECTION_TYPE_NETWORK, FWPS_LAYER_INBOUND_TRANSPORT_V4
from wfpsim.stack import ip as IP
from wfpsim.status import NTSTATUS

S = NTSTATUS
FAR = IP.addr_bytes("198.51.100.7")


def test_s38_synchronous_failure_means_no_completion(no_leaks):
    """S-38: an injection on a closing handle returns STATUS_FWP_INJECT_HANDLE_CLOSING
    (0xC0220101); its completion is never invoked and the caller frees the clone."""
    stack = host()
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    original = wfpsim.NetBufferList.from_bytes(udp_packet(A4, FAR, 1, 2, b"s-38"))
    never = Completions()
    seen = {}

    def first_done(ctx, nbl, dl):
        # the handle is closing now: a new injection is refused synchronously
        status, clone = wdk.FwpsAllocateCloneNetBufferList0(original, None, None, 0)
        seen["status"] = wdk.FwpsInjectNetworkSendAsync0(h, None, 0, 0, clone, never, None)
        wdk.FwpsFreeCloneNetBufferList0(clone, 0)  # ownership stayed with the caller
        wdk.FwpsFreeNetBufferList0(nbl)

    pending = wfpsim.NetBufferList.from_bytes(udp_packet(A4, FAR, 1, 2, b"pending"))
    assert wdk.FwpsInjectNetworkSendAsync0(h, None, 0, 0, pending, first_done, None) == 0
    assert wdk.FwpsInjectionHandleDestroy0(h) == S.STATUS_SUCCESS
    assert seen["status"] == S.STATUS_FWP_INJECT_HANDLE_CLOSING == 0xC0220101
    assert never.calls == [] and stack.run() == 0 and never.calls == []
    # after destroy the handle is invalid
    clone = original.clone()
    assert (
        wdk.FwpsInjectNetworkSendAsync0(h, None, 0, 0, clone, never, None)
        == S.STATUS_INVALID_HANDLE
    )
    clone.free_clone()
    assert never.calls == []
    original.free()


def reference_and_absorb_engine():
    engine = HookEngine()
    held = []

    def transport(seen, out):
        if held:
            return
        wdk.FwpsReferenceNetBufferList0(seen.layer_data, True)  # out-of-band modification (R4)
        held.append((seen.layer_data, seen.meta.ipHeaderSize + seen.meta.transportHeaderSize))
        absorb(out)

    engine.on(FWPS_LAYER_INBOUND_TRANSPORT_V4, transport)
    return engine, held


def test_s41_clone_outlives_the_dereference(no_leaks):
    """S-41: reference, clone, dereference the original, inject the clone: legal; the original
    returns to its owner (the stack frees it) only after the clone is freed in the completion."""
    engine, held = reference_and_absorb_engine()
    stack = host(engine=engine)
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=53
    )
    h = stack.injection_handle(AF_INET, 0)
    log = []

    def done(ctx, clone, dl):
        log.append(("completion", original.alive))
        wdk.FwpsFreeCloneNetBufferList0(clone, 0)

    def worker():
        nbl, back = held[0]
        wdk.NdisRetreatNetBufferDataStart(nbl.FirstNetBuffer, back, 0, None)
        status, clone = wdk.FwpsAllocateCloneNetBufferList0(nbl, None, None, 0)
        wdk.NdisAdvanceNetBufferDataStart(nbl.FirstNetBuffer, back, False, None)
        wdk.FwpsDereferenceNetBufferList0(nbl, False)  # legal: the clone keeps the data alive
        log.append(("dereferenced", nbl.alive, nbl.ChildRefCount))
        assert (
            wdk.FwpsInjectTransportReceiveAsync0(
                h, None, None, 0, AF_INET, 0, 1, 0, clone, done, None
            )
            == 0
        )

    stack.receive(1, udp_packet(FAR, A4, 9, 53, b"s-41"))
    original = held[0][0]
    assert original.alive and original.references == 1  # the reference keeps it after classify
    stack.queue_dpc(worker)
    stack.run()
    assert log == [("dereferenced", True, 1), ("completion", True)]
    assert not original.alive  # freed right after its last clone
    assert [d.data for d in ep.received] == [b"s-41"]


def test_s42_use_after_release_is_reported(no_leaks):
    """S-42: dereference the original without having cloned it, then clone it: the stack freed
    the NBL at the dereference, so the clone is a use after free."""
    engine, held = reference_and_absorb_engine()
    stack = host(engine=engine)
    stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=53
    )
    errors = []

    def worker():
        nbl, _ = held[0]
        wdk.FwpsDereferenceNetBufferList0(nbl, False)
        try:
            wdk.FwpsAllocateCloneNetBufferList0(nbl, None, None, 0)
        except wfpsim.UseAfterFreeError as e:
            errors.append(e)

    stack.receive(1, udp_packet(FAR, A4, 9, 53, b"s-42"))
    stack.queue_dpc(worker)
    stack.run()
    assert len(errors) == 1 and "freed" in str(errors[0])


def test_s38_the_pythonic_face_raises_and_never_completes(no_leaks):
    stack = host()
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    h.destroy()
    nbl = wfpsim.NetBufferList.from_bytes(udp_packet(A4, FAR, 1, 2, b"x"))
    done = Completions()
    with pytest.raises(wfpsim.InvalidStateError) as e:
        stack.inject_network_send(h, nbl, completion=done)
    assert e.value.status == S.STATUS_INVALID_HANDLE
    stack.run()
    assert done.calls == []
    nbl.free()


@pytest.mark.parametrize("drift", [False, True])
def test_s08_offset_drift(no_leaks, drift):
    """S-08 (B4): the worker compares the NBL's DataOffset with the one recorded at classify
    time; if the stack moved it back by transportHeaderSize meanwhile, it retreats only
    ipHeaderSize. Either way the clone starts exactly at the IP header."""
    engine = HookEngine()
    stack = host(engine=engine)
    stack.absorbed_offset_drift = drift
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=53
    )
    h = stack.injection_handle(AF_INET, 0)
    record = {}
    done = Completions()

    def transport(seen, out):
        if stack.injection_state(h, seen.layer_data)[0]:
            return
        wdk.FwpsReferenceNetBufferList0(seen.layer_data, True)
        record.update(
            nbl=seen.layer_data,
            offset=seen.layer_data.FirstNetBuffer.DataOffset,
            ihs=seen.meta.ipHeaderSize,
            ths=seen.meta.transportHeaderSize,
        )
        absorb(out)

    def worker():
        nbl, ths = record["nbl"], record["ths"]
        moved = record["offset"] - nbl.FirstNetBuffer.DataOffset
        record["moved"] = moved
        if moved:
            assert moved == ths
            ths = 0
        back = record["ihs"] + ths
        nbl.FirstNetBuffer.retreat(back)
        clone = nbl.clone()
        nbl.FirstNetBuffer.advance(back)
        record["clone_head"] = clone.FirstNetBuffer.tobytes()[:20]
        wdk.FwpsDereferenceNetBufferList0(nbl, False)
        stack.inject_transport_receive(
            h, clone, address_family=AF_INET, interface_index=1, completion=done
        )

    engine.on(FWPS_LAYER_INBOUND_TRANSPORT_V4, transport)
    packet = udp_packet(FAR, A4, 9, 53, b"s-08")
    stack.receive(1, packet)
    stack.queue_dpc(worker)
    stack.run()
    assert record["moved"] == (8 if drift else 0)
    assert record["clone_head"] == packet[:20]
    assert [d.data for d in ep.received] == [b"s-08"] and done.statuses == [0]
