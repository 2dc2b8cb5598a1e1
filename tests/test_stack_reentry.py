"""Where injected packets re-enter (seed 002, layers.md §10), loop detection (B1), and the
WFPSampler re-injection scenarios S-25 … S-28, S-30."""

from __future__ import annotations

import pytest
from fakes import A4, A6, MAC_A, MAC_B, Completions, HookEngine, absorb, frame, host, udp_packet

import wfpsim
from wfpsim import wdk
from wfpsim.constants import (
    AF_INET,
    AF_INET6,
    FWP_ACTION_CONTINUE,
    FWP_CONDITION_FLAG_IS_INBOUND_PASS_THRU,
    FWP_CONDITION_FLAG_IS_OUTBOUND_PASS_THRU,
    FWPS_INJECTION_TYPE_L2,
    FWPS_INJECTION_TYPE_NETWORK,
    FWPS_LAYER_DATAGRAM_DATA_V4,
    FWPS_LAYER_INBOUND_MAC_FRAME_ETHERNET,
    FWPS_LAYER_INBOUND_MAC_FRAME_NATIVE,
    FWPS_LAYER_IPFORWARD_V4,
    FWPS_LAYER_OUTBOUND_IPPACKET_V4,
    FWPS_LAYER_OUTBOUND_IPPACKET_V6,
    FWPS_LAYER_OUTBOUND_MAC_FRAME_ETHERNET,
    FWPS_LAYER_OUTBOUND_MAC_FRAME_NATIVE,
    FWPS_PACKET_INJECTED_BY_OTHER,
    FWPS_PACKET_INJECTED_BY_SELF,
    FWPS_PACKET_NOT_INJECTED,
    FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF,
    FWPS_RIGHT_ACTION_WRITE,
)
from wfpsim.constants.layers import FWPS_BUILTIN_LAYERS as L
from wfpsim.stack import ip as IP
from wfpsim.status import NTSTATUS

S = NTSTATUS
FAR = IP.addr_bytes("198.51.100.7")
FAR6 = IP.addr_bytes("2001:db8:77::7")


def names(layers):
    return [L(x).name[len("FWPS_LAYER_") :] for x in layers]


def last_record(stack):
    return stack.injections[-1]


# ---- re-entry paths per inject function ----


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_network_and_transport_receive_reenter_at_the_bottom(no_leaks, v6):
    stack = host()
    af, local, far, suffix = (AF_INET6, A6, FAR6, "V6") if v6 else (AF_INET, A4, FAR, "V4")
    ep = stack.open_endpoint(
        address_family=af, protocol=17, local_address=IP.addr_text(local), local_port=53
    )
    hn = stack.injection_handle(af, FWPS_INJECTION_TYPE_NETWORK)
    ht = stack.injection_handle(af, 0)
    done = Completions()
    stack.inject_network_receive(
        hn,
        wfpsim.NetBufferList.from_bytes(udp_packet(far, local, 9, 53, b"n")),
        interface_index=1,
        completion=done,
    )
    stack.run()
    assert names(last_record(stack).layers) == [
        f"INBOUND_IPPACKET_{suffix}",
        f"INBOUND_TRANSPORT_{suffix}",
        f"ALE_AUTH_RECV_ACCEPT_{suffix}",
        f"ALE_FLOW_ESTABLISHED_{suffix}",
        f"DATAGRAM_DATA_{suffix}",
    ]
    stack.inject_transport_receive(
        ht,
        wfpsim.NetBufferList.from_bytes(udp_packet(far, local, 9, 53, b"t")),
        address_family=af,
        interface_index=1,
        completion=done,
    )
    stack.run()  # same flow: ALE is not visited again (optional per the seed)
    assert names(last_record(stack).layers) == [
        f"INBOUND_IPPACKET_{suffix}",
        f"INBOUND_TRANSPORT_{suffix}",
        f"DATAGRAM_DATA_{suffix}",
    ]
    assert [(d.data, d.function) for d in ep.received] == [
        (b"n", "FwpsInjectNetworkReceiveAsync0"),
        (b"t", "FwpsInjectTransportReceiveAsync0"),
    ]
    assert done.statuses == [0, 0]
    local_records = [d for d in stack.delivered if d.destination == "local"]
    assert [d.layers[-1] for d in local_records] == [
        int(L[f"FWPS_LAYER_DATAGRAM_DATA_{suffix}"])
    ] * 2


def test_transport_receive_bypasses_ipsec_network_receive_does_not(no_leaks):
    stack = host()
    stack.add_ipsec_policy("198.51.100.7")
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=53
    )
    hn = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    ht = stack.injection_handle(AF_INET, 0)
    done = Completions()
    assert stack.receive(1, udp_packet(FAR, A4, 9, 53, b"wire")).outcome == "dropped"
    stack.inject_network_receive(
        hn,
        wfpsim.NetBufferList.from_bytes(udp_packet(FAR, A4, 9, 53, b"net")),
        interface_index=1,
        completion=done,
    )
    stack.inject_transport_receive(
        ht,
        wfpsim.NetBufferList.from_bytes(udp_packet(FAR, A4, 9, 53, b"tr")),
        address_family=AF_INET,
        interface_index=1,
        completion=done,
    )
    stack.run()
    assert [d.data for d in ep.received] == [b"tr"]
    assert "IPsec" in stack.injections[0].params["reason"]
    assert done.statuses == [0, 0]


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_network_send_reenters_at_outbound_ippacket_only_s26(no_leaks, v6):
    stack = host()
    af, local, far, suffix = (AF_INET6, A6, FAR6, "V6") if v6 else (AF_INET, A4, FAR, "V4")
    h = stack.injection_handle(af, FWPS_INJECTION_TYPE_NETWORK)
    stack.inject_network_send(
        h,
        wfpsim.NetBufferList.from_bytes(udp_packet(local, far, 1, 2, b"s")),
        completion=Completions(),
    )
    stack.run()
    assert names(last_record(stack).layers) == [
        f"OUTBOUND_IPPACKET_{suffix}",
        "OUTBOUND_MAC_FRAME_ETHERNET",
        "OUTBOUND_MAC_FRAME_NATIVE",
    ]


def test_transport_send_reenters_at_the_top(no_leaks):
    stack = host()
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=5
    )
    h = stack.injection_handle(AF_INET, 0)
    args = wdk.FWPS_TRANSPORT_SEND_PARAMS1(remoteAddress=FAR)
    for _ in range(2):
        nbl = wfpsim.NetBufferList.from_bytes(IP.udp_datagram(A4, FAR, 5, 6, b"top"), 64)
        stack.inject_transport_send(
            h,
            nbl,
            endpoint_handle=ep.handle,
            address_family=AF_INET,
            send_args=args,
            completion=Completions(),
        )
        stack.run()
    first, second = list(stack.injections)
    assert names(first.layers) == [
        "ALE_AUTH_CONNECT_V4",
        "ALE_FLOW_ESTABLISHED_V4",
        "DATAGRAM_DATA_V4",
        "OUTBOUND_TRANSPORT_V4",
        "OUTBOUND_IPPACKET_V4",
        "OUTBOUND_MAC_FRAME_ETHERNET",
        "OUTBOUND_MAC_FRAME_NATIVE",
    ]
    assert names(second.layers) == names(first.layers)[2:]


def test_forward_injection_is_not_reclassified_s27(no_leaks):
    engine = HookEngine()
    stack = host({"forwarding": True}, engine=engine)
    h = stack.injection_handle(AF_INET, 0)
    done = Completions()
    pkt = udp_packet(IP.addr_bytes("192.0.2.200"), FAR, 1, 2, b"fwd")
    stack.inject_forward(
        h,
        wfpsim.NetBufferList.from_bytes(pkt),
        address_family=AF_INET,
        interface_index=1,
        completion=done,
    )
    stack.run()
    assert engine.seen == [] and last_record(stack).layers == []
    assert done.statuses == [0]
    assert stack.wire[0].data[14:] == pkt  # exactly as injected: no TTL change, no MAC classify


@pytest.mark.parametrize("which", ["dst_local", "src_local"])
def test_forward_injection_of_weak_host_traffic_fails_late_b13(no_leaks, which):
    stack = host({"forwarding": True})
    h = stack.injection_handle(AF_INET, 0)
    done = Completions()
    pkt = (
        udp_packet(FAR, A4, 1, 2, b"x") if which == "dst_local" else udp_packet(A4, FAR, 1, 2, b"x")
    )
    assert (
        wdk.FwpsInjectForwardAsync0(
            h, None, 0, AF_INET, 0, 1, wfpsim.NetBufferList.from_bytes(pkt), done, None
        )
        == S.STATUS_SUCCESS
    )
    stack.run()
    assert done.statuses == [S.STATUS_INVALID_PARAMETER] and stack.wire == []


def test_weak_host_variant_uses_network_injection_s27(no_leaks):
    """S-27 weak-host variant: a forwarded packet that is locally destined (IS_INBOUND_PASS_THRU)
    is re-injected with FwpsInjectNetworkReceiveAsync0; one that is locally sourced on another
    interface (IS_OUTBOUND_PASS_THRU) with FwpsInjectNetworkSendAsync0 — non-local source goes to
    the forwarding layer with the pass-thru flag."""
    engine = HookEngine()
    stack = host({"forwarding": True}, engine=engine)
    stack.add_interface(index=2, addresses=["198.51.100.1/24"])
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    pkt = udp_packet(IP.addr_bytes("192.0.2.99"), FAR, 1, 2, b"pass-thru")
    stack.inject_network_send(h, wfpsim.NetBufferList.from_bytes(pkt), completion=Completions())
    stack.run()
    forward = [s for s in engine.seen if s.layer_id == FWPS_LAYER_IPFORWARD_V4]
    assert len(forward) == 1
    assert forward[0].value("FLAGS").uint32 & FWP_CONDITION_FLAG_IS_OUTBOUND_PASS_THRU
    assert not forward[0].value("FLAGS").uint32 & FWP_CONDITION_FLAG_IS_INBOUND_PASS_THRU
    assert stack.wire[-1].interface_index == 2


def test_network_receive_of_a_transit_packet_goes_to_the_forward_layer(no_leaks):
    engine = HookEngine()
    stack = host({"forwarding": True}, engine=engine)
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    stack.inject_network_receive(
        h,
        wfpsim.NetBufferList.from_bytes(udp_packet(IP.addr_bytes("192.0.2.9"), FAR, 1, 2, b"t")),
        interface_index=1,
        completion=Completions(),
    )
    stack.run()
    assert "IPFORWARD_V4" in names(last_record(stack).layers)


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        (
            FWPS_LAYER_INBOUND_MAC_FRAME_ETHERNET,
            ["INBOUND_MAC_FRAME_ETHERNET", "INBOUND_IPPACKET_V4"],
        ),
        (
            FWPS_LAYER_INBOUND_MAC_FRAME_NATIVE,
            ["INBOUND_MAC_FRAME_NATIVE", "INBOUND_MAC_FRAME_ETHERNET", "INBOUND_IPPACKET_V4"],
        ),
        (
            FWPS_LAYER_OUTBOUND_MAC_FRAME_ETHERNET,
            ["OUTBOUND_MAC_FRAME_ETHERNET", "OUTBOUND_MAC_FRAME_NATIVE"],
        ),
        (FWPS_LAYER_OUTBOUND_MAC_FRAME_NATIVE, ["OUTBOUND_MAC_FRAME_NATIVE"]),
    ],
)
def test_mac_injection_reenters_at_its_layer(no_leaks, layer, expected):
    stack = host()
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_L2)
    nbl = wfpsim.NetBufferList.from_bytes(frame(udp_packet(FAR, A4, 1, 2, b"l2")))
    done = Completions()
    if layer in (FWPS_LAYER_INBOUND_MAC_FRAME_ETHERNET, FWPS_LAYER_INBOUND_MAC_FRAME_NATIVE):
        stack.inject_mac_receive(h, nbl, layer_id=layer, interface_index=1, completion=done)
    else:
        stack.inject_mac_send(h, nbl, layer_id=layer, interface_index=1, completion=done)
    stack.run()
    assert names(last_record(stack).layers)[: len(expected)] == expected
    assert done.statuses == [0]


def test_inbound_datagram_data_reinjection_example_from_the_seed(no_leaks):
    """Seed 002: 'a UDP packet injected from the incoming datagram data layer will reenter the
    stack and traverse the network layer, the transport layer, the ALE receive or accept layer
    (optional), and back into the datagram data layer'."""
    engine = HookEngine()
    stack = host(engine=engine)
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=53
    )
    h = stack.injection_handle(AF_INET, 0)
    done = Completions()

    def datagram(seen, out):
        if wdk.FwpsQueryPacketInjectionState0(h, seen.layer_data)[0]:
            return
        back = seen.meta.ipHeaderSize + seen.meta.transportHeaderSize
        nbl = seen.layer_data
        nbl.retreat(back)
        clone = nbl.clone()
        nbl.advance(back)
        stack.inject_transport_receive(
            h, clone, address_family=AF_INET, interface_index=1, completion=done
        )
        absorb(out)

    engine.on(FWPS_LAYER_DATAGRAM_DATA_V4, datagram)
    stack.receive(1, udp_packet(FAR, A4, 9, 53, b"via datagram data"))
    assert ep.received == []
    stack.run()
    assert names(last_record(stack).layers) == [
        "INBOUND_IPPACKET_V4",
        "INBOUND_TRANSPORT_V4",
        "DATAGRAM_DATA_V4",
    ]
    assert [d.data for d in ep.received] == [b"via datagram data"] and done.statuses == [0]


# ---- loops (B1) ----


def looping_engine(stack_holder, layer, *, copy=False, via_dpc=False, check_state=False):
    engine = HookEngine()
    calls = {"classify": 0}

    def looper(seen, out):
        stack, h, done = stack_holder
        calls["classify"] += 1
        if check_state and stack.injection_state(h, seen.layer_data)[0] in (
            FWPS_PACKET_INJECTED_BY_SELF,
            FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF,
        ):
            return
        if copy:
            twin = wfpsim.NetBufferList.from_bytes(seen.layer_data.FirstNetBuffer.tobytes())
        else:
            twin = seen.layer_data.clone()

        def inject():
            stack.inject_network_send(h, twin, completion=done)

        if via_dpc:
            stack.queue_dpc(inject)
        else:
            inject()
        absorb(out)

    engine.on(layer, looper, name="looper")
    return engine, calls


@pytest.mark.parametrize("copy", [False, True], ids=["clone", "new-nbl"])
@pytest.mark.parametrize("via_dpc", [False, True], ids=["inline", "dpc"])
def test_a_callout_that_does_not_check_injection_state_loops_and_is_named(no_leaks, copy, via_dpc):
    holder = []
    engine, calls = looping_engine(
        holder, FWPS_LAYER_OUTBOUND_IPPACKET_V4, copy=copy, via_dpc=via_dpc
    )
    stack = host(engine=engine)
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    done = Completions()
    holder.extend([stack, h, done])
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=1
    )
    stack.send(ep, b"loop", ("198.51.100.7", 2))
    with pytest.raises(wfpsim.InjectionLoopError) as e:
        stack.run()
    assert "callout 'looper' at OUTBOUND_IPPACKET_V4" in str(e.value)
    assert "FwpsQueryPacketInjectionState0" in str(e.value)
    assert e.value.count == stack.max_reinjections + 1 == 33
    assert calls["classify"] == 33  # bounded: the original + 32 re-indications
    assert stack.wire == []
    assert len(done.calls) == 33
    assert done.statuses.count(S.STATUS_HOPLIMIT_EXCEEDED) == 1  # the re-injection refused
    assert done.statuses.count(S.STATUS_SUCCESS) == 32
    assert stack.run() == 0 and h.in_flight == 0


def test_loop_record_policy_reports_without_raising(no_leaks):
    holder = []
    engine, _ = looping_engine(holder, FWPS_LAYER_OUTBOUND_IPPACKET_V6)
    stack = host({"loop_policy": "record", "max_reinjections": 5}, engine=engine)
    h = stack.injection_handle(AF_INET6, FWPS_INJECTION_TYPE_NETWORK)
    done = Completions()
    holder.extend([stack, h, done])
    stack.inject_network_send(
        h, wfpsim.NetBufferList.from_bytes(udp_packet(A6, FAR6, 1, 2, b"x")), completion=done
    )
    stack.run()
    assert len(stack.loop_errors) == 1 and stack.loop_errors[0].count == 6
    assert "looper" in stack.loop_errors[0].callout


def test_checking_state_gives_exactly_one_extra_classify_b1(no_leaks):
    holder = []
    engine, calls = looping_engine(holder, FWPS_LAYER_OUTBOUND_IPPACKET_V4, check_state=True)
    stack = host(engine=engine)
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    done = Completions()
    holder.extend([stack, h, done])
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=1
    )
    for i in range(3):
        stack.send(ep, bytes([i]), ("198.51.100.7", 2))
    stack.run()
    assert calls["classify"] == 6 and len(stack.wire) == 3 and stack.loop_errors == []


# ---- WFPSampler scenarios ----


class TwoInstances(HookEngine):
    """Two callouts at OUTBOUND_IPPACKET in different sublayers (weights 2 > 1), evaluated in
    order; a callout entered without FWPS_RIGHT_ACTION_WRITE leaves the packet alone (R1)."""

    def __init__(self, stack_holder):
        super().__init__()
        self.holder = stack_holder
        self.acted = []
        self.states = []

    def classify(self, layer_id, inFixedValues, inMetaValues, layerData, **kw):  # noqa: N803
        out = super().classify(layer_id, inFixedValues, inMetaValues, layerData, **kw)
        if layer_id != FWPS_LAYER_OUTBOUND_IPPACKET_V4:
            return out
        stack, handles, done = self.holder
        for name in ("universal", "sampler"):
            if not out.rights & FWPS_RIGHT_ACTION_WRITE:
                continue
            state, ctx = wdk.FwpsQueryPacketInjectionState0(handles[name], layerData)
            self.states.append((name, state))
            if state in (FWPS_PACKET_INJECTED_BY_SELF, FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF):
                out.actionType = FWP_ACTION_CONTINUE
                continue
            status, clone = wdk.FwpsAllocateCloneNetBufferList0(layerData, None, None, 0)
            assert wdk.FwpsInjectNetworkSendAsync0(handles[name], ctx, 0, 0, clone, done, name) == 0
            self.acted.append(name)
            absorb(out)
        return out


def test_two_instances_in_different_sublayers_s28(no_leaks):
    holder = []
    engine = TwoInstances(holder)
    stack = host(engine=engine)
    handles = {
        n: stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
        for n in ("universal", "sampler")
    }
    done = Completions()
    holder.extend([stack, handles, done])
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=1
    )
    stack.send(ep, b"s-28", ("198.51.100.7", 2))
    stack.run()
    assert engine.acted == ["universal", "sampler"]  # each instance acts once
    assert engine.states == [
        ("universal", FWPS_PACKET_NOT_INJECTED),
        ("universal", FWPS_PACKET_INJECTED_BY_SELF),
        ("sampler", FWPS_PACKET_INJECTED_BY_OTHER),
        ("universal", FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF),
        ("sampler", FWPS_PACKET_INJECTED_BY_SELF),
    ]
    assert len(stack.wire) == 1
    assert sorted(c[0] for c in done.calls) == ["sampler", "universal"]


def test_mac_inbound_ethernet_clone_reinject_s30(no_leaks):
    """S-30: at INBOUND_MAC_FRAME_ETHERNET (indicated at the IP header) retreat
    ethernetMacHeaderSize, clone, advance back, FwpsInjectMacReceiveAsync0; the frame climbs
    the stack once; completion once per NBL."""
    engine = HookEngine()
    stack = host(engine=engine)
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=53
    )
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_L2)
    done = Completions()

    def ethernet(seen, out):
        nbl = seen.layer_data
        if wdk.FwpsQueryPacketInjectionState0(h, nbl)[0] == FWPS_PACKET_INJECTED_BY_SELF:
            return
        size = seen.meta.ethernetMacHeaderSize
        wdk.NdisRetreatNetBufferDataStart(nbl.FirstNetBuffer, size, 0, None)
        status, clone = wdk.FwpsAllocateCloneNetBufferList0(nbl, None, None, 0)
        wdk.NdisAdvanceNetBufferDataStart(nbl.FirstNetBuffer, size, False, None)
        assert (
            wdk.FwpsInjectMacReceiveAsync0(
                h,
                None,
                0,
                seen.layer_id,
                seen.value("INTERFACE_INDEX").uint32,
                seen.value("NDIS_PORT").uint32,
                clone,
                done,
                None,
            )
            == S.STATUS_SUCCESS
        )
        absorb(out)

    engine.on(FWPS_LAYER_INBOUND_MAC_FRAME_ETHERNET, ethernet)
    stack.receive(1, frame(udp_packet(FAR, A4, 7, 53, b"l2 frame"), MAC_A, MAC_B))
    stack.run()
    assert [d.data for d in ep.received] == [b"l2 frame"] and done.statuses == [0]
