"""Every parameter rule and status code of every inject function (injection.md §3, §4, §9),
on the WDK face and on the Pythonic face."""

from __future__ import annotations

import pytest
from cases import FUNCTIONS, Call
from fakes import A4, A6, Completions, HookEngine, frame, host, udp_packet

import wfpsim
from wfpsim import wdk
from wfpsim.constants import (
    AF_INET,
    AF_INET6,
    FWPS_INJECTION_TYPE_L2,
    FWPS_INJECTION_TYPE_NETWORK,
    FWPS_LAYER_INBOUND_MAC_FRAME_ETHERNET,
    FWPS_LAYER_INBOUND_MAC_FRAME_NATIVE,
    FWPS_LAYER_OUTBOUND_MAC_FRAME_ETHERNET,
    FWPS_LAYER_OUTBOUND_MAC_FRAME_NATIVE,
    FWPS_LAYER_STREAM_V6,
    FWPS_SEND_INJECT_PRESERVE_IPID,
    FWPS_STREAM_FLAG_RECEIVE,
    FWPS_STREAM_FLAG_RECEIVE_ABORT,
    FWPS_STREAM_FLAG_RECEIVE_DISCONNECT,
    FWPS_STREAM_FLAG_RECEIVE_PUSH,
    FWPS_STREAM_FLAG_SEND,
    FWPS_STREAM_FLAG_SEND_ABORT,
    FWPS_STREAM_FLAG_SEND_DISCONNECT,
    FWPS_STREAM_FLAG_SEND_NODELAY,
)
from wfpsim.stack import ip as IP
from wfpsim.status import NTSTATUS

S = NTSTATUS
IP_FUNCTIONS = [f for f in FUNCTIONS if "Mac" not in f and "vSwitch" not in f]


def handle_for(stack, name, af=AF_INET):
    return stack.injection_handle(af, FUNCTIONS[name])


def attempt(stack, name, handle=None, **override):
    """Makes one call with some arguments broken; returns its status (cleaning up after it)."""
    call = Call(stack, name, handle if handle is not None else handle_for(stack, name), **override)
    status = call()
    stack.run()
    call.cleanup(status)
    if status != 0:
        assert call.done.calls == [], "a failed inject call must never complete (§3.2)"
    return status, call


# ---- validation order (§9) ----


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_order_closing_before_not_ready_before_stale(no_leaks, name):
    stack = host()
    l2 = FUNCTIONS[name] == FWPS_INJECTION_TYPE_L2
    right = handle_for(stack, name)
    wrong = stack.injection_handle(
        AF_INET, FWPS_INJECTION_TYPE_NETWORK if l2 else FWPS_INJECTION_TYPE_L2
    )
    if l2:
        stack.l2_ready = False
    else:
        stack.tcpip_ready = False
    # 3 before 4: not ready wins over a wrong handle type
    assert attempt(stack, name, wrong)[0] == S.STATUS_FWP_TCPIP_NOT_READY == 0xC0220100
    assert attempt(stack, name, right)[0] == S.STATUS_FWP_TCPIP_NOT_READY
    # 2 before 3: a closing handle is reported before readiness
    right.state = wfpsim.stack.HandleState.CLOSING
    assert attempt(stack, name, right)[0] == S.STATUS_FWP_INJECT_HANDLE_CLOSING
    # 1 before 2: a destroyed handle is invalid
    right.state = wfpsim.stack.HandleState.DESTROYED
    assert attempt(stack, name, right)[0] == S.STATUS_INVALID_HANDLE
    stack.tcpip_ready = stack.l2_ready = True
    # 4 before 5: the type is checked before NULL pointers
    nbl_key = "netBufferLists" if l2 else "netBufferList"
    assert attempt(stack, name, wrong, **{nbl_key: None})[0] == S.STATUS_FWP_INJECT_HANDLE_STALE


@pytest.mark.parametrize("name", IP_FUNCTIONS)
def test_null_pointers_come_before_parameter_rules(no_leaks, name):
    stack = host()
    assert attempt(stack, name, netBufferList=None, flags=7)[0] == S.STATUS_FWP_NULL_POINTER
    assert (
        attempt(stack, name, completionFn=None, flags=7)[0]
        == S.STATUS_FWP_NULL_POINTER
        == 0xC022001C
    )


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_reserved_flags_are_refused_and_recorded(no_leaks, name):
    stack = host()
    status, _ = attempt(stack, name, flags=0x10)
    assert status == S.STATUS_FWP_INVALID_PARAMETER
    assert [v.rule for v in stack.contracts.violations] == ["reserved-flags"]
    assert "flags is reserved" in stack.contracts.violations[0].message


def test_network_send_accepts_preserve_ipid_only(no_leaks):
    stack = host()
    assert (
        attempt(stack, "FwpsInjectNetworkSendAsync0", flags=FWPS_SEND_INJECT_PRESERVE_IPID)[0] == 0
    )
    assert (
        attempt(stack, "FwpsInjectNetworkSendAsync0", flags=2)[0] == S.STATUS_FWP_INVALID_PARAMETER
    )


@pytest.mark.parametrize(
    "name", ["FwpsInjectTransportReceiveAsync0", "FwpsInjectvSwitchEthernetIngressAsync0"]
)
def test_reserved_pointer_must_be_null(no_leaks, name):
    stack = host()
    assert attempt(stack, name, reserved=object())[0] == S.STATUS_FWP_INVALID_PARAMETER
    assert stack.contracts.violations[0].rule == "reserved-flags"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_completion_must_be_callable(no_leaks, name):
    stack = host()
    assert attempt(stack, name, completionFn=42)[0] == S.STATUS_FWP_INVALID_PARAMETER


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_an_nbl_without_net_buffer_is_refused(no_leaks, name):
    stack = host()
    empty = wfpsim.NetBufferList.allocate()
    key = "netBufferLists" if FUNCTIONS[name] == FWPS_INJECTION_TYPE_L2 else "netBufferList"
    status, _ = attempt(stack, name, **{key: empty})
    assert status == S.STATUS_FWP_INVALID_PARAMETER
    empty.free()


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_an_nbl_in_flight_cannot_be_injected_again(no_leaks, name):
    stack = host()
    h = handle_for(stack, name)
    call = Call(stack, name, h)
    assert call() == 0
    assert call() == S.STATUS_FWP_INVALID_PARAMETER
    assert stack.contracts.violations[-1].rule == "injected-twice"
    stack.run()
    assert len(call.done.calls) == 1


# ---- address families and NBL shapes ----


@pytest.mark.parametrize(
    "name",
    [
        "FwpsInjectForwardAsync0",
        "FwpsInjectTransportReceiveAsync0",
        "FwpsInjectTransportSendAsync0",
        "FwpsInjectTransportSendAsync1",
    ],
)
@pytest.mark.parametrize("af", [0, 1, 6, 24])
def test_address_family_must_be_inet_or_inet6(no_leaks, name, af):
    assert attempt(host(), name, addressFamily=af)[0] == S.STATUS_FWP_INVALID_PARAMETER


@pytest.mark.parametrize("name", ["FwpsInjectForwardAsync0", "FwpsInjectTransportReceiveAsync0"])
def test_family_of_a_per_family_handle_must_match(no_leaks, name):
    stack = host()
    h6 = stack.injection_handle(AF_INET6, FUNCTIONS[name])
    assert attempt(stack, name, h6)[0] == S.STATUS_FWP_INVALID_PARAMETER


@pytest.mark.parametrize(
    "name",
    [
        "FwpsInjectForwardAsync0",
        "FwpsInjectNetworkReceiveAsync0",
        "FwpsInjectNetworkSendAsync0",
        "FwpsInjectTransportReceiveAsync0",
    ],
)
def test_nbl_must_begin_with_an_ip_header_of_the_family(no_leaks, name):
    stack = host()
    v6 = wfpsim.NetBufferList.from_bytes(udp_packet(A6, IP.addr_bytes("2001:db8::9"), 1, 2, b"x"))
    status, _ = attempt(stack, name, netBufferList=v6)
    assert status == S.STATUS_FWP_INVALID_PARAMETER
    v6.free()
    junk = wfpsim.NetBufferList.from_bytes(b"\x00" * 40)
    assert attempt(stack, name, netBufferList=junk)[0] == S.STATUS_FWP_INVALID_PARAMETER
    junk.free()


@pytest.mark.parametrize(
    "name",
    [
        "FwpsInjectForwardAsync0",
        "FwpsInjectNetworkReceiveAsync0",
        "FwpsInjectNetworkSendAsync0",
        "FwpsInjectTransportReceiveAsync0",
        "FwpsInjectTransportSendAsync0",
    ],
)
def test_chains_are_refused_by_single_nbl_functions(no_leaks, name):
    stack = host()
    call = Call(stack, name, handle_for(stack, name))
    tail = wfpsim.NetBufferList.from_bytes(b"tail")
    call.nbl.Next = tail
    status = call()
    assert status == S.STATUS_FWP_INVALID_PARAMETER
    call.nbl.Next = None
    tail.free()
    call.cleanup(status)


def test_forward_refuses_an_unreassembled_fragment_group_with_a_message(no_leaks):
    stack = host()
    h = stack.injection_handle(AF_INET, 0)
    a = wfpsim.NetBufferList.from_bytes(
        udp_packet(IP.addr_bytes("198.51.100.1"), IP.addr_bytes("203.0.113.1"), 1, 2, b"a")
    )
    b = wfpsim.NetBufferList.from_bytes(b"\x45" + bytes(30))
    a.Next = b
    with pytest.raises(wfpsim.InvalidParameterError, match="reassembled into one NBL") as e:
        stack.inject_forward(
            h, a, address_family=AF_INET, interface_index=1, completion=Completions()
        )
    assert e.value.status == S.STATUS_FWP_INVALID_PARAMETER
    a.Next = None
    a.free()
    b.free()


@pytest.mark.parametrize(
    "name",
    [
        "FwpsInjectForwardAsync0",
        "FwpsInjectNetworkReceiveAsync0",
        "FwpsInjectTransportReceiveAsync0",
    ],
)
def test_receive_and_forward_carry_one_net_buffer(no_leaks, name):
    stack = host()
    p = udp_packet(IP.addr_bytes("198.51.100.1"), A4, 1, 2, b"x")
    two = wfpsim.NetBufferList.from_buffers([p, p])
    assert attempt(stack, name, netBufferList=two)[0] == S.STATUS_FWP_INVALID_PARAMETER
    two.free()


# ---- transport send ----


def test_transport_send_params(no_leaks):
    stack = host()
    name = "FwpsInjectTransportSendAsync1"
    assert attempt(stack, name, sendArgs=object())[0] == S.STATUS_FWP_INVALID_PARAMETER
    assert (
        attempt(stack, name, sendArgs=wdk.FWPS_TRANSPORT_SEND_PARAMS1())[0]
        == S.STATUS_FWP_NULL_POINTER
    )
    short = wdk.FWPS_TRANSPORT_SEND_PARAMS1(remoteAddress=b"\x01\x02")
    assert attempt(stack, name, sendArgs=short)[0] == S.STATUS_FWP_INVALID_PARAMETER
    v6addr = wdk.FWPS_TRANSPORT_SEND_PARAMS0(remoteAddress=A6)
    assert attempt(stack, name, sendArgs=v6addr)[0] == S.STATUS_FWP_INVALID_PARAMETER
    hdr = wdk.FWPS_TRANSPORT_SEND_PARAMS1(
        remoteAddress=A4, headerIncludeHeader=b"\x45" + bytes(19), headerIncludeHeaderLength=24
    )
    assert attempt(stack, name, sendArgs=hdr)[0] == S.STATUS_FWP_INVALID_PARAMETER


def test_raw_send_must_start_with_an_ip_header(no_leaks):
    stack = host()
    status, _ = attempt(stack, "FwpsInjectTransportSendAsync0", sendArgs=None)
    assert status == S.STATUS_FWP_INVALID_PARAMETER  # the UDP datagram has no IP header


@pytest.mark.parametrize("raw", ["null_send_args", "header_include"])
def test_raw_sends_need_exactly_one_net_buffer(no_leaks, raw):
    stack = host()
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=9
    )
    dst = IP.addr_bytes("192.0.2.50")
    if raw == "null_send_args":
        p = udp_packet(A4, dst, 9, 10, b"raw")
        nbl, args = wfpsim.NetBufferList.from_buffers([p, p, p]), None
    else:
        seg = IP.udp_datagram(A4, dst, 9, 10, b"raw")
        nbl = wfpsim.NetBufferList.from_buffers([seg, seg])
        header = IP.ipv4_header(A4, dst, 17, 0)
        args = wdk.FWPS_TRANSPORT_SEND_PARAMS1(
            remoteAddress=dst, headerIncludeHeader=header, headerIncludeHeaderLength=20
        )
    h = stack.injection_handle(AF_INET, 0)
    with pytest.raises(wfpsim.InvalidParameterError, match="exactly one NET_BUFFER") as e:
        stack.inject_transport_send(
            h,
            nbl,
            endpoint_handle=ep.handle,
            address_family=AF_INET,
            send_args=args,
            completion=Completions(),
        )
    assert e.value.status == S.STATUS_FWP_INVALID_PARAMETER
    assert "nbl.split()" in str(e.value)
    nbl.free()


# ---- stream (injection.md §1.4, §4.6; S-23) ----

GOOD = FWPS_STREAM_FLAG_SEND


@pytest.mark.parametrize(
    ("stream_flags", "expected"),
    [
        (FWPS_STREAM_FLAG_SEND, S.STATUS_SUCCESS),
        (FWPS_STREAM_FLAG_SEND | FWPS_STREAM_FLAG_SEND_NODELAY, S.STATUS_SUCCESS),
        (FWPS_STREAM_FLAG_SEND | FWPS_STREAM_FLAG_SEND_DISCONNECT, S.STATUS_SUCCESS),
        (FWPS_STREAM_FLAG_RECEIVE | FWPS_STREAM_FLAG_RECEIVE_PUSH, S.STATUS_SUCCESS),
        (FWPS_STREAM_FLAG_SEND_DISCONNECT, S.STATUS_FWP_INVALID_PARAMETER),
        (FWPS_STREAM_FLAG_RECEIVE_DISCONNECT, S.STATUS_FWP_INVALID_PARAMETER),
        (FWPS_STREAM_FLAG_SEND | FWPS_STREAM_FLAG_RECEIVE, S.STATUS_FWP_INVALID_PARAMETER),
        (FWPS_STREAM_FLAG_SEND | FWPS_STREAM_FLAG_RECEIVE_PUSH, S.STATUS_FWP_INVALID_PARAMETER),
        (FWPS_STREAM_FLAG_SEND_NODELAY, S.STATUS_FWP_INVALID_PARAMETER),
        (0, S.STATUS_FWP_INVALID_PARAMETER),
        (FWPS_STREAM_FLAG_SEND | FWPS_STREAM_FLAG_SEND_ABORT, S.STATUS_FWP_INVALID_PARAMETER),
        (FWPS_STREAM_FLAG_RECEIVE | FWPS_STREAM_FLAG_RECEIVE_ABORT, S.STATUS_FWP_INVALID_PARAMETER),
        (FWPS_STREAM_FLAG_SEND | 0x00200000, S.STATUS_FWP_INVALID_PARAMETER),
    ],
)
def test_stream_flag_rules(no_leaks, stream_flags, expected):
    assert attempt(host(), "FwpsStreamInjectAsync0", streamFlags=stream_flags)[0] == expected


def test_stream_null_rules(no_leaks):
    name = "FwpsStreamInjectAsync0"
    stack = host()
    # NULL NBL only with a DISCONNECT flag
    assert attempt(stack, name, netBufferList=None, dataLength=0)[0] == S.STATUS_FWP_NULL_POINTER
    status, call = attempt(
        stack,
        name,
        netBufferList=None,
        dataLength=0,
        streamFlags=FWPS_STREAM_FLAG_SEND | FWPS_STREAM_FLAG_SEND_DISCONNECT,
    )
    assert status == S.STATUS_SUCCESS and call.done.calls == []  # never completed (B16)
    # completionFn is required, also for a FIN-only injection (doc)
    assert attempt(stack, name, completionFn=None)[0] == S.STATUS_FWP_NULL_POINTER
    assert (
        attempt(
            stack,
            name,
            netBufferList=None,
            dataLength=0,
            completionFn=None,
            streamFlags=FWPS_STREAM_FLAG_SEND | FWPS_STREAM_FLAG_SEND_DISCONNECT,
        )[0]
        == S.STATUS_FWP_NULL_POINTER
    )
    # a FIN-only injection carries no data
    assert (
        attempt(
            stack,
            name,
            netBufferList=None,
            dataLength=5,
            streamFlags=FWPS_STREAM_FLAG_SEND | FWPS_STREAM_FLAG_SEND_DISCONNECT,
        )[0]
        == S.STATUS_FWP_INVALID_PARAMETER
    )


@pytest.mark.parametrize("layer", [0, 21, 23, 24, 70, FWPS_LAYER_STREAM_V6])
def test_stream_layer_id_must_be_the_flows_stream_layer(no_leaks, layer):
    assert (
        attempt(host(), "FwpsStreamInjectAsync0", layerId=layer)[0]
        == S.STATUS_FWP_INVALID_PARAMETER
    )


def test_stream_flow_and_length_rules(no_leaks):
    name = "FwpsStreamInjectAsync0"
    stack = host()
    assert attempt(stack, name, flowId=0xDEAD)[0] == S.STATUS_FWP_INVALID_PARAMETER
    assert attempt(stack, name, dataLength=17)[0] == S.STATUS_FWP_INVALID_PARAMETER
    assert attempt(stack, name, dataLength=19)[0] == S.STATUS_FWP_INVALID_PARAMETER
    assert attempt(stack, name)[0] == S.STATUS_SUCCESS
    # a flow of another stack is unknown here
    other = host()
    flow = other.open_tcp_flow(
        address_family=AF_INET, local=("192.0.2.1", 1), remote=("192.0.2.2", 2)
    )
    assert attempt(stack, name, flowId=flow.flow_id)[0] == S.STATUS_FWP_INVALID_PARAMETER


def test_stream_callout_id_checked_when_the_engine_knows_callouts(no_leaks):
    engine = HookEngine()
    engine.knows_callout = lambda callout_id, layer_id: callout_id == 7
    stack = host(engine=engine)
    assert attempt(stack, "FwpsStreamInjectAsync0", calloutId=7)[0] == S.STATUS_SUCCESS
    assert (
        attempt(stack, "FwpsStreamInjectAsync0", calloutId=8)[0] == S.STATUS_FWP_INVALID_PARAMETER
    )


# ---- MAC and vSwitch ----


@pytest.mark.parametrize(
    ("name", "layer", "ok"),
    [
        ("FwpsInjectMacReceiveAsync0", FWPS_LAYER_INBOUND_MAC_FRAME_ETHERNET, True),
        ("FwpsInjectMacReceiveAsync0", FWPS_LAYER_INBOUND_MAC_FRAME_NATIVE, True),
        ("FwpsInjectMacReceiveAsync0", FWPS_LAYER_OUTBOUND_MAC_FRAME_ETHERNET, False),
        ("FwpsInjectMacReceiveAsync0", 12, False),
        ("FwpsInjectMacSendAsync0", FWPS_LAYER_OUTBOUND_MAC_FRAME_ETHERNET, True),
        ("FwpsInjectMacSendAsync0", FWPS_LAYER_OUTBOUND_MAC_FRAME_NATIVE, True),
        ("FwpsInjectMacSendAsync0", FWPS_LAYER_INBOUND_MAC_FRAME_ETHERNET, False),
    ],
)
def test_mac_layer_ids(no_leaks, name, layer, ok):
    status, call = attempt(host(), name, layerId=layer)
    assert status == (S.STATUS_SUCCESS if ok else S.STATUS_FWP_INVALID_PARAMETER)
    if ok:
        assert call.done.statuses == [S.STATUS_SUCCESS]


@pytest.mark.parametrize("name", ["FwpsInjectMacReceiveAsync0", "FwpsInjectMacSendAsync0"])
def test_mac_nbl_must_begin_with_an_ethernet_header(no_leaks, name):
    stack = host()
    ip_only = wfpsim.NetBufferList.from_bytes(
        udp_packet(A4, IP.addr_bytes("192.0.2.5"), 1, 2, b"x")
    )
    status, _ = attempt(stack, name, netBufferLists=ip_only)
    assert status == S.STATUS_FWP_INVALID_PARAMETER
    ip_only.free()
    runt = wfpsim.NetBufferList.from_bytes(bytes(10))
    assert attempt(stack, name, netBufferLists=runt)[0] == S.STATUS_FWP_INVALID_PARAMETER
    runt.free()


@pytest.mark.parametrize(
    "name",
    [
        "FwpsInjectMacReceiveAsync0",
        "FwpsInjectMacSendAsync0",
        "FwpsInjectvSwitchEthernetIngressAsync0",
    ],
)
def test_l2_null_completion_only_for_the_stacks_original_nbls(no_leaks, name):
    stack = host()
    assert attempt(stack, name, completionFn=None)[0] == S.STATUS_FWP_NULL_POINTER


def test_mac_receive_of_the_original_nbl_without_completion(no_leaks):
    """A callout absorbs the original frame at INBOUND_MAC_FRAME_NATIVE and re-injects the
    original itself with a NULL completionFn: legal, and the stack frees it afterwards."""
    from fakes import absorb

    engine = HookEngine()
    stack = host(engine=engine)
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=9
    )
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_L2)
    results = []

    def native(seen, out):
        state, _ = wdk.FwpsQueryPacketInjectionState0(h, seen.layer_data)
        if state == wdk.FWPS_PACKET_INJECTED_BY_SELF:
            return
        results.append(
            wdk.FwpsInjectMacReceiveAsync0(
                h, None, 0, FWPS_LAYER_INBOUND_MAC_FRAME_NATIVE, 1, 0, seen.layer_data, None, None
            )
        )
        absorb(out)

    engine.on(FWPS_LAYER_INBOUND_MAC_FRAME_NATIVE, native)
    stack.receive(1, frame(udp_packet(IP.addr_bytes("192.0.2.7"), A4, 5, 9, b"orig")))
    assert results == [S.STATUS_SUCCESS] and ep.received == []
    assert stack.run() == 1
    assert [d.data for d in ep.received] == [b"orig"]


def test_vswitch_rules(no_leaks):
    name = "FwpsInjectvSwitchEthernetIngressAsync0"
    stack = host()
    assert attempt(stack, name, vSwitchId=None)[0] == S.STATUS_FWP_NULL_POINTER
    status, call = attempt(stack, name)
    assert status == 0 and call.done.statuses == [0]
    assert stack.delivered[-1].destination == "vswitch"
    assert stack.delivered[-1].function == name


# ---- Pythonic face: same rules, exceptions carrying the status ----


def test_pythonic_face_raises_with_the_documented_status(no_leaks):
    stack = host()
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    nbl = wfpsim.NetBufferList.from_bytes(udp_packet(A4, IP.addr_bytes("192.0.2.9"), 1, 2, b"x"))
    with pytest.raises(wfpsim.InvalidParameterError) as e:
        stack.inject_network_send(h, nbl)  # no completion
    assert e.value.status == S.STATUS_FWP_NULL_POINTER and "completionFn is NULL" in str(e.value)
    with pytest.raises(wfpsim.InvalidParameterError) as e:
        stack.inject_network_send(h, nbl, completion=Completions(), flags=4)
    assert e.value.status == S.STATUS_FWP_INVALID_PARAMETER and "reserved" in str(e.value)
    th = stack.injection_handle(AF_INET, 0)
    with pytest.raises(wfpsim.InvalidStateError) as e:
        stack.inject_network_send(th, nbl, completion=Completions())
    assert e.value.status == S.STATUS_FWP_INJECT_HANDLE_STALE
    stack.tcpip_ready = False
    with pytest.raises(wfpsim.InvalidStateError) as e:
        stack.inject_network_send(h, nbl, completion=Completions())
    assert e.value.status == S.STATUS_FWP_TCPIP_NOT_READY
    stack.tcpip_ready = True
    done = Completions()
    stack.inject_network_send(h, nbl, completion=done, completion_context="c")
    assert stack.run() == 1 and done.calls[0][0] == "c"


def test_transport_receive_without_endpoint_still_completes_successfully(no_leaks):
    status, call = attempt(host(), "FwpsInjectTransportReceiveAsync0")
    assert status == 0 and call.done.statuses == [S.STATUS_SUCCESS]


def test_status_values_are_ntstatus_members():
    stack = host()
    status, _ = attempt(stack, "FwpsInjectForwardAsync0", flags=1)
    assert isinstance(status, NTSTATUS) and status.name == "STATUS_FWP_INVALID_PARAMETER"
    assert wdk.FwpsInjectionHandleCreate0(5, 0)[0] is NTSTATUS.STATUS_FWP_INVALID_PARAMETER


def test_ipv6_every_ip_function(no_leaks):
    """The same calls work for IPv6 handles and packets."""
    stack = host()
    done = Completions()
    h6n = stack.injection_handle(AF_INET6, FWPS_INJECTION_TYPE_NETWORK)
    h6 = stack.injection_handle(AF_INET6, 0)
    far = IP.addr_bytes("2001:db8:ffff::9")
    stack.inject_network_send(
        h6n, wfpsim.NetBufferList.from_bytes(udp_packet(A6, far, 1, 2, b"s")), completion=done
    )
    stack.inject_network_receive(
        h6n,
        wfpsim.NetBufferList.from_bytes(udp_packet(far, A6, 1, 2, b"r")),
        interface_index=1,
        completion=done,
    )
    stack.inject_transport_receive(
        h6,
        wfpsim.NetBufferList.from_bytes(udp_packet(far, A6, 1, 2, b"t")),
        address_family=AF_INET6,
        interface_index=1,
        completion=done,
    )
    stack.forwarding = True
    stack.inject_forward(
        h6,
        wfpsim.NetBufferList.from_bytes(
            udp_packet(IP.addr_bytes("2001:db8:1::1"), far, 1, 2, b"f")
        ),
        address_family=AF_INET6,
        interface_index=1,
        completion=done,
    )
    assert stack.run() == 4
    assert done.statuses == [0, 0, 0, 0]
    assert [d.function for d in stack.delivered if d.destination == "wire" and d.function] == [
        "FwpsInjectNetworkSendAsync0",
        "FwpsInjectForwardAsync0",
    ]
    assert all(d.address_family == AF_INET6 for d in stack.delivered)
    # the two receive injections reached no socket: the stack answered port unreachable
    assert stack.icmp_errors_sent == [(1, 4, "2001:db8:ffff::9")] * 2


def test_compartments(no_leaks):
    """Interfaces live in compartments; compartmentId routes a send and must match the
    interface of a receive (late failure otherwise); records carry the compartment."""
    stack = host()
    stack.add_interface(index=2, addresses=["198.51.100.1/24"], compartment_id=2)
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    done = Completions()
    src2 = IP.addr_bytes("198.51.100.1")
    stack.inject_network_send(
        h,
        wfpsim.NetBufferList.from_bytes(
            udp_packet(src2, IP.addr_bytes("198.51.100.9"), 1, 2, b"c2")
        ),
        compartment_id=2,
        completion=done,
    )
    stack.inject_network_receive(
        h,
        wfpsim.NetBufferList.from_bytes(udp_packet(src2, A4, 1, 2, b"x")),
        interface_index=1,
        compartment_id=2,
        completion=done,
    )
    stack.inject_network_send(
        h,
        wfpsim.NetBufferList.from_bytes(udp_packet(A4, src2, 1, 2, b"c3")),
        compartment_id=3,
        completion=done,
    )
    stack.run()
    assert done.statuses == [
        S.STATUS_SUCCESS,
        S.STATUS_INVALID_PARAMETER,
        S.STATUS_NETWORK_UNREACHABLE,
    ]
    sent = [d for d in stack.delivered if d.function]
    assert [(d.compartment_id, d.interface_index) for d in sent] == [(2, 2)]
