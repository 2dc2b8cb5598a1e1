"""WFPSampler (examples/wfpsampler_driver.py) end to end on the real stack and filter engine:
samples.md §9.4, S-25 … S-33, plus basic packet modification (§4.4)."""

from __future__ import annotations

import ipaddress

import pytest
from scenariokit import (
    FAMILIES,
    MAC_PEER,
    assert_quiet,
    checksum_ok,
    host,
    ip_packets,
    names,
    tcp,
    transport_of,
    udp,
)
from wfpsampler_driver import (
    PCPMDF_MODIFY_IP_HEADER,
    PCPMDF_MODIFY_TRANSPORT_HEADER,
    WfpSamplerDriver,
)

from wfpsim.constants import (
    FWP_DIRECTION_INBOUND,
    FWPS_BUILTIN_LAYERS,
    FWPS_PACKET_INJECTED_BY_OTHER,
    FWPS_PACKET_INJECTED_BY_SELF,
    FWPS_PACKET_NOT_INJECTED,
    FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF,
    FWPS_STREAM_FLAG_RECEIVE,
    FWPS_STREAM_FLAG_SEND,
    IPPROTO_TCP,
    IPPROTO_UDP,
)
from wfpsim.stack import fragment
from wfpsim.stack import ip as IP

NOT, SELF = int(FWPS_PACKET_NOT_INJECTED), int(FWPS_PACKET_INJECTED_BY_SELF)
OTHER, PREV = int(FWPS_PACKET_INJECTED_BY_OTHER), int(FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF)
FAMILY = pytest.mark.parametrize("fam", ["v4", "v6"])


def L(name: str) -> int:
    return int(FWPS_BUILTIN_LAYERS[f"FWPS_LAYER_{name}"])


def sfx(fam: str) -> str:
    return "V4" if fam == "v4" else "V6"


def finish(stack, *drivers_and_closables):
    for x in drivers_and_closables:
        if isinstance(x, WfpSamplerDriver):
            x.unload()
        else:
            x.close()
    assert_quiet(stack)


def peer_is(fam: str) -> dict:
    return {"IP_REMOTE_ADDRESS": ipaddress.ip_address(FAMILIES[fam][2])}


@FAMILY
@pytest.mark.parametrize("inline", [True, False], ids=["inline", "oob"])
def test_s25_inbound_ippacket_clone_reinject(no_leaks, fam, inline):
    """S-25: data starts after the IP header; the callout retreats ipHeaderSize, clones,
    advances back and FwpsInjectNetworkReceiveAsync0's the clone, which re-enters at the bottom:
    INBOUND_IPPACKET (INJECTED_BY_SELF => PERMIT) and every higher inbound layer."""
    af, local, peer, _ = FAMILIES[fam]
    stack = host()
    layer = L(f"INBOUND_IPPACKET_{sfx(fam)}")
    drv = WfpSamplerDriver(
        "basic_packet_injection", [layer], conditions=peer_is(fam), perform_inline=inline
    ).register(stack)
    app = stack.open_endpoint(af, IPPROTO_UDP, local, 53)
    stack.receive(1, udp(peer, local, 7000, 53, b"s-25"))
    stack.run()
    how = "absorb-inline" if inline else "absorb-oob"
    assert drv.log.classifies == [
        (f"INBOUND_IPPACKET_{sfx(fam)}", NOT, how),
        (f"INBOUND_IPPACKET_{sfx(fam)}", SELF, "permit-self"),
    ]
    assert drv.log.retreats == [(f"INBOUND_IPPACKET_{sfx(fam)}", 20 if fam == "v4" else 40)]
    [rec] = stack.injections
    assert rec.function == "FwpsInjectNetworkReceiveAsync0"
    s = sfx(fam)
    assert names(rec.layers) == [
        f"INBOUND_IPPACKET_{s}",
        f"INBOUND_TRANSPORT_{s}",
        f"ALE_AUTH_RECV_ACCEPT_{s}",
        f"ALE_FLOW_ESTABLISHED_{s}",
        f"DATAGRAM_DATA_{s}",
    ]
    assert [d.data for d in app.received] == [b"s-25"] and drv.log.completions == [0]
    finish(stack, drv, app)


@FAMILY
def test_s26_outbound_ippacket(no_leaks, fam):
    """S-26: no offset change; FwpsInjectNetworkSendAsync0; the clone is re-classified at
    OUTBOUND_IPPACKET only (it enters below the transport layers); one packet on the wire."""
    af, local, peer, _ = FAMILIES[fam]
    stack = host()
    drv = WfpSamplerDriver(
        "basic_packet_injection", [L(f"OUTBOUND_IPPACKET_{sfx(fam)}")], conditions=peer_is(fam)
    ).register(stack)
    app = stack.open_endpoint(af, IPPROTO_UDP, local, 5000)
    stack.send(app, b"s-26", (peer, 53))
    stack.run()
    [rec] = stack.injections
    assert rec.function == "FwpsInjectNetworkSendAsync0"
    assert names(rec.layers) == [
        f"OUTBOUND_IPPACKET_{sfx(fam)}",
        "OUTBOUND_MAC_FRAME_ETHERNET",
        "OUTBOUND_MAC_FRAME_NATIVE",
    ]
    [packet] = ip_packets(stack)
    assert transport_of(packet)[2] == b"s-26" and checksum_ok(packet)
    assert drv.log.retreats == [(f"OUTBOUND_IPPACKET_{sfx(fam)}", 0)]
    finish(stack, drv, app)


def router():
    stack = host(forwarding=True)
    stack.add_interface(index=2, addresses=["198.51.100.1/24"], mac=bytes.fromhex("02000000000c"))
    stack.add_neighbor("198.51.100.9", MAC_PEER)
    return stack


def test_s27_forward_injection_is_not_reclassified(no_leaks):
    """S-27: a clone taken at IPFORWARD is FwpsInjectForwardAsync0'd to
    DESTINATION_INTERFACE_INDEX; injected forward packets are not re-classified anywhere."""
    stack = router()
    drv = WfpSamplerDriver("basic_packet_injection", [L("IPFORWARD_V4")]).register(stack)
    packet = udp("192.0.2.50", "198.51.100.9", 7000, 53, b"s-27")
    stack.receive(1, packet)
    stack.run()
    assert drv.log.classifies == [("IPFORWARD_V4", NOT, "absorb-oob")]
    [rec] = stack.injections
    assert rec.function == "FwpsInjectForwardAsync0" and rec.layers == []
    assert rec.params["interface_index"] == 2
    [frame] = stack.wire
    assert frame.interface_index == 2 and frame.data[14:] == packet  # as injected
    finish(stack, drv)


def test_s27_weak_host_receive_uses_network_receive(no_leaks):
    """S-27 weak-host variant: a packet for the address of interface 2 arriving on interface 1
    passes IPFORWARD with IS_INBOUND_PASS_THRU ([emu] weak-host receive); WFPSampler re-injects
    it with FwpsInjectNetworkReceiveAsync0 on DESTINATION_INTERFACE_INDEX; the socket gets it."""
    stack = router()
    drv = WfpSamplerDriver("basic_packet_injection", [L("IPFORWARD_V4")]).register(stack)
    app = stack.open_endpoint(FAMILIES["v4"][0], IPPROTO_UDP, "198.51.100.1", 53)
    stack.receive(1, udp("192.0.2.50", "198.51.100.1", 7000, 53, b"weak host"))
    stack.run()
    [rec] = stack.injections
    assert rec.function == "FwpsInjectNetworkReceiveAsync0"
    assert rec.params["interface_index"] == 2
    assert [d.data for d in app.received] == [b"weak host"]
    finish(stack, drv, app)


def test_s28_two_instances_in_different_sublayers(no_leaks):
    """S-28: one instance in FWPM_SUBLAYER_UNIVERSAL, one in WFPSampler's sublayer, each with
    its own handles: the universal one acts first; the other sees its clone as
    INJECTED_BY_OTHER and injects it again with the injectionContext its query returned; each
    then sees its own clone as SELF (the first as PREVIOUSLY_SELF); one packet on the wire."""
    af, local, peer, _ = FAMILIES["v4"]
    stack = host()
    layer = L("OUTBOUND_IPPACKET_V4")
    universal = WfpSamplerDriver(
        "basic_packet_injection", [layer], sublayer="universal", name="U", perform_inline=True
    ).register(stack)
    own = WfpSamplerDriver(
        "basic_packet_injection", [layer], sublayer="sampler", name="S", perform_inline=True
    ).register(stack)
    app = stack.open_endpoint(af, IPPROTO_UDP, local, 5000)
    stack.send(app, b"s-28", (peer, 53))
    stack.run()
    assert universal.log.classifies == [
        ("OUTBOUND_IPPACKET_V4", NOT, "absorb-inline"),
        ("OUTBOUND_IPPACKET_V4", SELF, "permit-self"),
        ("OUTBOUND_IPPACKET_V4", PREV, "permit-self"),
    ]
    # the original reached the lower sublayer without the write right: untouched (R1)
    assert own.log.classifies == [
        ("OUTBOUND_IPPACKET_V4", OTHER, "absorb-inline"),
        ("OUTBOUND_IPPACKET_V4", SELF, "permit-self"),
    ]
    assert [i[0] for i in universal.log.injections + own.log.injections] == [
        "FwpsInjectNetworkSendAsync0"
    ] * 2
    assert len(stack.wire) == 1
    finish(stack, universal, own, app)


def test_s29_fragment_group_at_ipforward(no_leaks):
    """S-29: with fragment grouping on, each fragment is indicated alone (absorbed and
    forward-injected one by one) and then the group chain with IS_FRAGMENT_GROUP, which
    WFPSampler leaves alone (CONTINUE, no injection)."""
    stack = router()
    stack.forward_fragment_grouping = True
    drv = WfpSamplerDriver("basic_packet_injection", [L("IPFORWARD_V4")]).register(stack)
    whole = IP.ip_header(
        IP.addr_bytes("192.0.2.50"), IP.addr_bytes("198.51.100.9"), 17, 1408, ident=77
    ) + IP.udp_datagram(
        IP.addr_bytes("192.0.2.50"), IP.addr_bytes("198.51.100.9"), 1, 2, bytes(1400)
    )
    pieces = fragment(whole, 420, None)
    for p in pieces:
        stack.receive(1, p)
    stack.run()
    assert [c[2] for c in drv.log.classifies] == ["absorb-oob"] * len(pieces) + [
        "continue-fragment-group"
    ]
    assert [i[0] for i in drv.log.injections] == ["FwpsInjectForwardAsync0"] * len(pieces)
    assert [f.data[14:] for f in stack.wire] == pieces
    assert drv.log.completions == [0] * len(pieces)
    finish(stack, drv)


def test_s30_mac_inbound_ethernet(no_leaks):
    """S-30: INBOUND_MAC_FRAME_ETHERNET is indicated at the IP header: retreat
    ethernetMacHeaderSize, clone, advance, FwpsInjectMacReceiveAsync0(h, ctx, 0, layerId,
    INTERFACE_INDEX, NDIS_PORT, clone); one completion per NBL; the frame re-enters at its
    layer and climbs to the socket."""
    af, local, peer, _ = FAMILIES["v4"]
    stack = host()
    drv = WfpSamplerDriver(
        "basic_packet_injection", [L("INBOUND_MAC_FRAME_ETHERNET")], perform_inline=True
    ).register(stack)
    app = stack.open_endpoint(af, IPPROTO_UDP, local, 53)
    stack.receive(1, IP.ethernet_header(bytes.fromhex("02000000000a"), MAC_PEER, 0x0800)
                  + udp(peer, local, 7000, 53, b"s-30"))  # fmt: skip
    stack.run()
    assert drv.log.retreats == [("INBOUND_MAC_FRAME_ETHERNET", 14)]
    [rec] = stack.injections
    assert rec.function == "FwpsInjectMacReceiveAsync0"
    assert names(rec.layers)[:2] == ["INBOUND_MAC_FRAME_ETHERNET", "INBOUND_IPPACKET_V4"]
    assert [d.data for d in app.received] == [b"s-30"] and drv.log.completions == [0]
    finish(stack, drv, app)


def test_s31_vswitch_multi_destination(no_leaks):
    """S-31 / B25: a multi-destination vSwitch frame is classified once per destination; the
    copies after the first carry RECLASSIFY_MULTI_DESTINATION in l2Flags: every copy is
    blocked + absorbed, only the first is injected (FwpsInjectvSwitchEthernetIngressAsync0)."""
    stack = host()
    drv = WfpSamplerDriver(
        "basic_packet_injection", [L("INGRESS_VSWITCH_ETHERNET")], perform_inline=True
    ).register(stack)
    frame = IP.ethernet_header(b"\xff" * 6, MAC_PEER, 0x0800) + udp(
        "192.0.2.50", "192.0.2.255", 1, 2, b"s-31"
    )
    results = stack.vswitch_receive(frame, destinations=3)
    stack.run()
    assert [r.outcome for r in results] == ["absorbed"] * 3
    assert [c[2] for c in drv.log.classifies] == ["absorb-inline"] + [
        "absorb-multi-destination-copy"
    ] * 2
    delivered = [d for d in stack.delivered if d.destination == "vswitch"]
    assert [d.function for d in delivered] == ["FwpsInjectvSwitchEthernetIngressAsync0"]
    assert delivered[0].data == frame and drv.log.completions == [0]
    finish(stack, drv)


def test_s32_recv_accept_out_of_band_retreat(no_leaks):
    """S-32: out of band at ALE_AUTH_RECV_ACCEPT the stack has moved a (non-TCP, non-raw)
    absorbed NBL back to the transport header ([emu] drift mode "recv-accept"): WFPSampler
    retreats ipHeaderSize only; for TCP at the same layer it retreats ip + transport. Both
    clones start at the IP header and are accepted."""
    af, local, peer, _ = FAMILIES["v4"]
    stack = host()
    stack.absorbed_offset_drift = "recv-accept"
    drv = WfpSamplerDriver(
        "basic_packet_injection", [L("ALE_AUTH_RECV_ACCEPT_V4")], conditions=peer_is("v4")
    ).register(stack)
    app = stack.open_endpoint(af, IPPROTO_UDP, local, 53)
    listener = stack.open_endpoint(af, IPPROTO_TCP, local, 443, listen=True)
    stack.receive(1, udp(peer, local, 7000, 53, b"s-32"))
    stack.receive(1, tcp(peer, local, 6000, 443, 41, IP.TCP_SYN))
    stack.run()
    assert drv.log.retreats == [("ALE_AUTH_RECV_ACCEPT_V4", 20), ("ALE_AUTH_RECV_ACCEPT_V4", 40)]
    assert [d.data for d in app.received] == [b"s-32"]
    [synack] = ip_packets(stack)
    assert transport_of(synack)[1].tcp_flags == IP.TCP_SYN | IP.TCP_ACK
    assert drv.log.completions == [0, 0]
    flows = list(stack.flows.values())
    finish(stack, drv, app, listener, *flows)


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "oob"])
def test_s33_stream_clone_reinject(no_leaks, inline):
    """S-33: basic stream injection at STREAM_V4: BLOCK with countBytesEnforced = dataLength
    (inline) or 0 (out of band), the cloned stream data injected with a direction flag; the
    application and the wire get identical bytes; one completion per NBL of each clone chain."""
    af, local, peer, _ = FAMILIES["v4"]
    stack = host()
    drv = WfpSamplerDriver(
        "basic_stream_injection", [L("STREAM_V4")], perform_inline=inline
    ).register(stack)
    flow = stack.open_tcp_flow(af, (local, 80), (peer, 5000), direction=FWP_DIRECTION_INBOUND)
    stack.receive(1, tcp(peer, local, 5000, 80, 1, IP.TCP_ACK | IP.TCP_PSH, b"GET / HTTP/1.0"))
    stack.run()
    flow.send(b"HTTP/1.0 200 OK")
    stack.run()
    assert bytes(flow.received) == b"GET / HTTP/1.0"
    assert b"".join(transport_of(p)[2] for p in ip_packets(stack)) == b"HTTP/1.0 200 OK"
    records = [r for r in stack.filter_engine.trace if r.stream]
    enforced = [r.stream["countBytesEnforced"] for r in records]
    assert enforced == ([14, 15] if inline else [0, 0])
    assert drv.log.completions == [0, 0]
    injected = [r for r in stack.injections if r.function == "FwpsStreamInjectAsync0"]
    direction = FWPS_STREAM_FLAG_RECEIVE | FWPS_STREAM_FLAG_SEND
    assert [r.params["stream_flags"] & direction for r in injected] == [
        FWPS_STREAM_FLAG_RECEIVE,
        FWPS_STREAM_FLAG_SEND,
    ]
    finish(stack, drv, flow)


@FAMILY
def test_basic_packet_modification_network_layers(no_leaks, fam):
    """§4.4 at OUTBOUND_IPPACKET: the clone's IP destination is rewritten (IPv4 header checksum
    recomputed; the transport checksum left stale, as the sample leaves it: a "to do" there);
    at INBOUND_IPPACKET the destination port is rewritten before the clone climbs the stack."""
    af, local, peer, other = FAMILIES[fam]
    stack = host()
    out = WfpSamplerDriver(
        "basic_packet_modification",
        [L(f"OUTBOUND_IPPACKET_{sfx(fam)}")],
        conditions=peer_is(fam),
        perform_inline=True,
        modification={
            "flags": PCPMDF_MODIFY_IP_HEADER | 0x02,
            "ip_destination": IP.addr_bytes(other),
        },
        name="out",
    ).register(stack)
    inbound = WfpSamplerDriver(
        "basic_packet_modification",
        [L(f"INBOUND_IPPACKET_{sfx(fam)}")],
        conditions=peer_is(fam),
        modification={"flags": PCPMDF_MODIFY_TRANSPORT_HEADER | 0x02, "destination_port": 5353},
        name="in",
    ).register(stack)
    app = stack.open_endpoint(af, IPPROTO_UDP, local, 5000)
    mdns = stack.open_endpoint(af, IPPROTO_UDP, local, 5353)
    stack.send(app, b"to peer", (peer, 53))
    stack.run()
    [packet] = ip_packets(stack)
    info, tp, payload = transport_of(packet)
    assert IP.addr_text(info.dst) == other and payload == b"to peer"
    if fam == "v4":
        assert IP.internet_checksum(packet[:20]) == 0
    assert not checksum_ok(packet)  # the transport checksum still covers the old address
    stack.receive(1, udp(peer, local, 7000, 53, b"redirected"))
    stack.run()
    assert [d.data for d in mdns.received] == [b"redirected"] and app.received == []
    finish(stack, out, inbound, app, mdns)


def test_basic_packet_modification_outbound_transport(no_leaks):
    """§4.4 at OUTBOUND_TRANSPORT: a new destination goes through
    FWPS_TRANSPORT_SEND_PARAMS.remoteAddress (the IP header does not exist yet)."""
    af, local, peer, other = FAMILIES["v4"]
    stack = host()
    drv = WfpSamplerDriver(
        "basic_packet_modification",
        [L("OUTBOUND_TRANSPORT_V4")],
        conditions=peer_is("v4"),
        modification={
            "flags": PCPMDF_MODIFY_IP_HEADER | 0x02,
            "ip_destination": IP.addr_bytes(other),
        },
    ).register(stack)
    app = stack.open_endpoint(af, IPPROTO_UDP, local, 5000)
    stack.send(app, b"moved", (peer, 53))
    stack.run()
    [packet] = ip_packets(stack)
    assert IP.addr_text(transport_of(packet)[0].dst) == other
    assert bytes(stack.injections[-1].params["send_args"].remoteAddress) == IP.addr_bytes(other)
    finish(stack, drv, app)
