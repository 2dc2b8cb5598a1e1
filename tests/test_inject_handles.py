"""Injection handles: FwpsInjectionHandleCreate0 / Destroy0 (injection.md §2), on both faces."""

from __future__ import annotations

import pytest
from cases import FUNCTIONS, Call
from fakes import Completions, host, udp_packet

import wfpsim
from wfpsim import wdk
from wfpsim.constants import (
    AF_INET,
    AF_INET6,
    AF_UNSPEC,
    FWPS_INJECTION_TYPE_FORWARD,
    FWPS_INJECTION_TYPE_L2,
    FWPS_INJECTION_TYPE_NETWORK,
    FWPS_INJECTION_TYPE_STREAM,
    FWPS_INJECTION_TYPE_TRANSPORT,
    FWPS_INJECTION_TYPE_VSWITCH_TRANSPORT,
)
from wfpsim.stack import HandleState, InjectionHandle
from wfpsim.stack import ip as IP
from wfpsim.status import NTSTATUS

S = NTSTATUS
ALL_TYPES = [
    0,
    FWPS_INJECTION_TYPE_STREAM,
    FWPS_INJECTION_TYPE_TRANSPORT,
    FWPS_INJECTION_TYPE_NETWORK,
    FWPS_INJECTION_TYPE_FORWARD,
    FWPS_INJECTION_TYPE_L2,
    FWPS_INJECTION_TYPE_NETWORK | FWPS_INJECTION_TYPE_FORWARD,
]


# ---- create ----


@pytest.mark.parametrize("af", [AF_UNSPEC, AF_INET, AF_INET6])
@pytest.mark.parametrize(
    "flags",
    [
        0,
        FWPS_INJECTION_TYPE_STREAM,
        FWPS_INJECTION_TYPE_TRANSPORT,
        FWPS_INJECTION_TYPE_FORWARD,
        FWPS_INJECTION_TYPE_L2,
        FWPS_INJECTION_TYPE_VSWITCH_TRANSPORT,
        FWPS_INJECTION_TYPE_TRANSPORT | FWPS_INJECTION_TYPE_STREAM,
    ],
)
def test_create_accepts_every_documented_family_and_type(af, flags):
    with wfpsim.Stack():
        status, handle = wdk.FwpsInjectionHandleCreate0(af, flags)
        assert status == wdk.STATUS_SUCCESS
        assert isinstance(handle, InjectionHandle)
        assert (handle.address_family, handle.flags) == (af, flags)
        assert wdk.FwpsInjectionHandleDestroy0(handle) == wdk.STATUS_SUCCESS


@pytest.mark.parametrize("af", [AF_INET, AF_INET6])
def test_network_handles_need_a_family(af):
    with wfpsim.Stack():
        status, handle = wdk.FwpsInjectionHandleCreate0(AF_UNSPEC, FWPS_INJECTION_TYPE_NETWORK)
        assert status == S.STATUS_FWP_INVALID_PARAMETER == 0xC0220035 and handle is None
        status, handle = wdk.FwpsInjectionHandleCreate0(
            AF_UNSPEC, FWPS_INJECTION_TYPE_NETWORK | FWPS_INJECTION_TYPE_FORWARD
        )
        assert status == S.STATUS_FWP_INVALID_PARAMETER and handle is None
        status, handle = wdk.FwpsInjectionHandleCreate0(af, FWPS_INJECTION_TYPE_NETWORK)
        assert status == 0 and handle.address_family == af
        handle.destroy()


@pytest.mark.parametrize("af", [1, 3, 17, 24, 0xFFFF])
def test_create_rejects_unknown_families(af):
    with wfpsim.Stack():
        assert wdk.FwpsInjectionHandleCreate0(af, 0) == (S.STATUS_FWP_INVALID_PARAMETER, None)


@pytest.mark.parametrize("flags", [0x40, 0x80, 0x100, 0x80000000])
def test_create_rejects_undefined_type_bits(flags):
    with wfpsim.Stack():
        assert wdk.FwpsInjectionHandleCreate0(AF_INET, flags) == (
            S.STATUS_FWP_INVALID_PARAMETER,
            None,
        )


def test_create_fails_while_tcpip_is_not_ready():
    stack = wfpsim.Stack()
    stack.tcpip_ready = False
    with stack:
        assert wdk.FwpsInjectionHandleCreate0(AF_INET, 0) == (S.STATUS_FWP_TCPIP_NOT_READY, None)
    with pytest.raises(wfpsim.WfpError) as e:
        stack.injection_handle(AF_INET, 0)
    assert e.value.status == 0xC0220100
    stack.tcpip_ready = True
    assert stack.injection_handle(AF_INET, 0).state is HandleState.OPEN


def test_flags_zero_means_transport_stream_and_forward():
    h = wfpsim.Stack().injection_handle(AF_UNSPEC, 0)
    assert h.allows(FWPS_INJECTION_TYPE_TRANSPORT)
    assert h.allows(FWPS_INJECTION_TYPE_STREAM)
    assert h.allows(FWPS_INJECTION_TYPE_FORWARD)
    assert not h.allows(FWPS_INJECTION_TYPE_NETWORK)
    assert not h.allows(FWPS_INJECTION_TYPE_L2)


def test_handles_belong_to_the_current_stack():
    a, b = wfpsim.Stack(), wfpsim.Stack()
    with a:
        _, ha = wdk.FwpsInjectionHandleCreate0(AF_INET, 0)
        with b:
            _, hb = wdk.FwpsInjectionHandleCreate0(AF_INET, 0)
        _, ha2 = wdk.FwpsInjectionHandleCreate0(AF_INET, 0)
    assert ha.stack is a and hb.stack is b and ha2.stack is a
    _, hd = wdk.FwpsInjectionHandleCreate0(AF_INET, 0)
    assert hd.stack is wfpsim.default_stack()
    hd.destroy()


# ---- the handle-type matrix (injection.md §2.3) ----


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
@pytest.mark.parametrize("types", ALL_TYPES)
def test_handle_type_matrix(no_leaks, function, types):
    stack = host()
    handle = stack.injection_handle(AF_INET, types)
    call = Call(stack, function, handle)
    status = call()
    allowed = bool((types or 0x0B) & FUNCTIONS[function])
    if allowed:
        assert status == S.STATUS_SUCCESS
        assert call.done.calls == []  # never inside the call
        assert stack.run() >= 1
        assert len(call.done.calls) == 1
    else:
        assert status == S.STATUS_FWP_INJECT_HANDLE_STALE == 0xC0220102
        assert stack.run() == 0 and call.done.calls == []
    call.cleanup(status)
    handle.destroy()


# ---- destroy ----


def test_destroy_state_machine_and_invalid_after(no_leaks):
    stack = host()
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    assert h.state is HandleState.OPEN
    assert wdk.FwpsInjectionHandleDestroy0(h) == S.STATUS_SUCCESS
    assert h.state is HandleState.DESTROYED
    # a destroyed handle is invalid: destroy again, inject with it ([emu] injection.md §2.2)
    assert wdk.FwpsInjectionHandleDestroy0(h) == S.STATUS_INVALID_HANDLE == 0xC0000008
    call = Call(stack, "FwpsInjectNetworkSendAsync0", h)
    status = call()
    assert status == S.STATUS_INVALID_HANDLE
    call.cleanup(status)
    with pytest.raises(wfpsim.InvalidStateError):
        h.destroy()


@pytest.mark.parametrize("bogus", [None, 0, 12345, "handle", object()])
def test_destroy_and_inject_with_something_that_is_no_handle(no_leaks, bogus):
    stack = host()
    assert wdk.FwpsInjectionHandleDestroy0(bogus) == S.STATUS_INVALID_HANDLE
    call = Call(stack, "FwpsInjectNetworkSendAsync0", bogus)
    status = call()
    assert status == S.STATUS_INVALID_HANDLE
    call.cleanup(status)


def test_handle_of_another_stack_is_invalid_on_the_pythonic_face(no_leaks):
    a, b = host(), host()
    h = a.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    nbl = wfpsim.NetBufferList.from_bytes(
        udp_packet(IP.addr_bytes("192.0.2.1"), IP.addr_bytes("192.0.2.9"), 1, 2, b"x")
    )
    with pytest.raises(wfpsim.InvalidStateError) as e:
        b.inject_network_send(h, nbl, completion=Completions())
    assert e.value.status == S.STATUS_INVALID_HANDLE
    nbl.free()


def test_destroy_waits_for_every_in_flight_injection_s40(no_leaks):
    """S-40: destroy while two injections are pending returns only after both completions ran;
    a third injection attempted during destroy gets STATUS_FWP_INJECT_HANDLE_CLOSING and no
    completion."""
    stack = host()
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    order = []
    third = {}

    def done(ctx, nbl, dispatch_level):
        order.append(ctx)
        assert h.state is HandleState.CLOSING  # completions run inside destroy
        if ctx == "first":
            pkt = udp_packet(IP.addr_bytes("192.0.2.1"), IP.addr_bytes("192.0.2.9"), 1, 2, b"3")
            n3 = wfpsim.NetBufferList.from_bytes(pkt)
            third["status"] = wdk.FwpsInjectNetworkSendAsync0(h, None, 0, 0, n3, done, "third")
            n3.free()  # the caller still owns it after a failed call
        nbl.free()

    for ctx in ("first", "second"):
        pkt = udp_packet(IP.addr_bytes("192.0.2.1"), IP.addr_bytes("192.0.2.9"), 1, 2, ctx.encode())
        nbl = wfpsim.NetBufferList.from_bytes(pkt)
        assert wdk.FwpsInjectNetworkSendAsync0(h, None, 0, 0, nbl, done, ctx) == 0
    assert h.in_flight == 2 and order == []
    assert wdk.FwpsInjectionHandleDestroy0(h) == S.STATUS_SUCCESS
    assert order == ["first", "second"]
    assert third["status"] == S.STATUS_FWP_INJECT_HANDLE_CLOSING == 0xC0220101
    assert h.state is HandleState.DESTROYED and h.in_flight == 0
    assert stack.run() == 0


def test_destroy_runs_only_its_own_handles_work(no_leaks):
    stack = host()
    h1 = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    h2 = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    done1, done2 = Completions(), Completions()
    for h, done in ((h1, done1), (h2, done2)):
        pkt = udp_packet(IP.addr_bytes("192.0.2.1"), IP.addr_bytes("192.0.2.9"), 1, 2, b"x")
        stack.inject_network_send(h, wfpsim.NetBufferList.from_bytes(pkt), completion=done)
    h1.destroy()
    assert len(done1.calls) == 1 and done2.calls == []
    assert stack.run() == 1 and len(done2.calls) == 1
    h2.destroy()


def test_destroy_reports_a_completion_that_raises_after_draining(no_leaks):
    stack = host()
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    seen = []

    def done(ctx, nbl, dl):
        seen.append(ctx)
        nbl.free()
        if ctx == 1:
            raise RuntimeError("completion bug")

    for i in range(3):
        pkt = udp_packet(IP.addr_bytes("192.0.2.1"), IP.addr_bytes("192.0.2.9"), 1, 2, b"x")
        stack.inject_network_send(
            h, wfpsim.NetBufferList.from_bytes(pkt), completion=done, completion_context=i
        )
    with pytest.raises(RuntimeError, match="completion bug"):
        h.destroy()
    assert seen == [0, 1, 2]
    assert h.state is HandleState.DESTROYED
