"""TLInspect (examples/inspect_driver.py) end to end on the real stack and filter engine:
samples.md §9.1, S-01 … S-09, both directions, IPv4 and IPv6."""

from __future__ import annotations

import pytest
from inspect_driver import InspectDriver
from scenariokit import (
    FAMILIES,
    assert_quiet,
    checksum_ok,
    host,
    ip_packets,
    names,
    tcp,
    transport_of,
    udp,
)

from wfpsim.constants import (
    FWPS_PACKET_INJECTED_BY_SELF,
    FWPS_PACKET_NOT_INJECTED,
    IPPROTO_TCP,
    IPPROTO_UDP,
)
from wfpsim.stack import ip as IP
from wfpsim.stack.ipsec import esp_packet, esp_tunnel_packet
from wfpsim.stack.seam import AleCompletionHandle

SELF, NOT = int(FWPS_PACKET_INJECTED_BY_SELF), int(FWPS_PACKET_NOT_INJECTED)
NO_NBL = -1  # the driver's log: classify without a packet (TCP connect, re-authorisation)
FAMILY = pytest.mark.parametrize("fam", ["v4", "v6"])


def sfx(fam: str) -> str:
    return "V4" if fam == "v4" else "V6"


def setup(fam: str, **driver_kwargs):
    af, local, peer, _ = FAMILIES[fam]
    stack = host()
    driver = InspectDriver(peer, **driver_kwargs).register(stack)
    return stack, driver, af, local, peer


def finish(stack, driver, *closables):
    for c in closables:
        c.close()
    driver.unload()
    assert_quiet(stack)
    assert stack.filter_engine.filters() == [] and len(stack.filter_engine.callouts) == 0


@FAMILY
def test_s01_outbound_tcp_data_is_cloned_and_reinjected_once(no_leaks, fam):
    """S-01: the connect is pended and re-authorised; then one segment: OUTBOUND_TRANSPORT
    classify #1 absorbs (BLOCK, ABSORB, WRITE cleared); the worker clones and
    FwpsInjectTransportSendAsync's it with the original's endpoint handle, compartment and
    remote address (network order); classify #2 sees INJECTED_BY_SELF and permits; the segment
    reaches the wire once; one completion with STATUS_SUCCESS; nothing held afterwards."""
    stack, driver, af, local, peer = setup(fam)
    flow = stack.open_tcp_flow(af, local=(local, 0), remote=(peer, 80))
    assert flow.state == "connect_pending"  # TLInspect pended ALE_AUTH_CONNECT (no packet)
    stack.run()  # worker: FwpsCompleteOperation0 -> re-authorisation -> PERMIT
    assert flow.state == "established"
    assert driver.log.classifies == [
        (f"ALE_AUTH_CONNECT_{sfx(fam)}", NO_NBL, "pend"),
        (f"ALE_AUTH_CONNECT_{sfx(fam)}", NO_NBL, "reauth-permit"),
    ]
    stack.send(flow.endpoint, b"GET / HTTP/1.0\r\n\r\n")
    assert stack.wire == []  # absorbed, waiting for the worker
    stack.run()
    assert driver.log.classifies[2:] == [
        (f"OUTBOUND_TRANSPORT_{sfx(fam)}", NOT, "absorb"),
        (f"OUTBOUND_TRANSPORT_{sfx(fam)}", SELF, "permit-self"),
    ]
    trace = [r for r in stack.filter_engine.trace if r.layer_id == stack.injections[-1].layers[0]]
    assert (trace[-2].actionType, trace[-2].flags & 1, trace[-2].rights & 1) == (0x1001, 1, 0)
    [packet] = ip_packets(stack)
    info, tp, payload = transport_of(packet)
    assert (info.dst, tp.dst_port, payload) == (IP.addr_bytes(peer), 80, b"GET / HTTP/1.0\r\n\r\n")
    assert checksum_ok(packet)
    rec = stack.injections[-1]
    assert rec.function == "FwpsInjectTransportSendAsync1"
    assert rec.params["endpoint_handle"] == flow.endpoint.handle
    assert rec.params["compartment_id"] == 1
    assert bytes(rec.params["send_args"].remoteAddress) == IP.addr_bytes(peer)
    assert names(rec.layers)[:1] == [f"OUTBOUND_TRANSPORT_{sfx(fam)}"]
    assert driver.log.completions == [0] and driver.log.injections == [
        ("FwpsInjectTransportSendAsync", 0)
    ]
    assert_quiet(stack)  # references 0, clones 0
    finish(stack, driver, flow)


@FAMILY
def test_s02_outbound_udp_connect_is_pended_and_reauthorised(no_leaks, fam):
    """S-02: the first datagram is held at ALE_AUTH_CONNECT (pend, BLOCK + ABSORB); the worker
    completes with NULL; the engine re-classifies with IS_REAUTHORIZE; the callout permits and
    queues the held datagram, which is send-injected and passes OUTBOUND_TRANSPORT as
    self-injected; exactly one datagram on the wire."""
    stack, driver, af, local, peer = setup(fam)
    app = stack.open_endpoint(af, IPPROTO_UDP, local, 5000)
    assert stack.send(app, b"query", (peer, 53)).outcome == "absorbed"
    assert driver.log.pends == ["ALE_AUTH_CONNECT"]
    stack.run()
    s = sfx(fam)
    assert driver.log.classifies == [
        (f"ALE_AUTH_CONNECT_{s}", NOT, "pend"),
        (f"ALE_AUTH_CONNECT_{s}", NO_NBL, "reauth-permit"),
        (f"OUTBOUND_TRANSPORT_{s}", SELF, "permit-self"),
    ]
    assert driver.log.completed_operations == [("outbound", False)]
    [packet] = ip_packets(stack)
    assert transport_of(packet)[2] == b"query" and checksum_ok(packet)
    rec = stack.injections[-1]
    # the held datagram re-enters at the top; its flow is authorised now (no second connect)
    assert names(rec.layers)[:3] == [
        f"DATAGRAM_DATA_{s}",
        f"OUTBOUND_TRANSPORT_{s}",
        f"OUTBOUND_IPPACKET_{s}",
    ]
    assert driver.log.completions == [0]
    # later datagrams of the authorised flow are inspected at OUTBOUND_TRANSPORT only
    stack.send(app, b"again", (peer, 53))
    stack.run()
    assert [transport_of(p)[2] for p in ip_packets(stack)] == [b"query", b"again"]
    assert driver.log.classifies[3:] == [
        (f"OUTBOUND_TRANSPORT_{s}", NOT, "absorb"),
        (f"OUTBOUND_TRANSPORT_{s}", SELF, "permit-self"),
    ]
    finish(stack, driver, app)


def test_s03_block_traffic_refuses_the_pended_udp_connect(no_leaks):
    """S-03: BlockTraffic=1: the re-authorisation returns BLOCK with WRITE cleared; the held
    datagram is freed, never injected; no completion calls."""
    stack, driver, af, local, peer = setup("v4", block_traffic=True)
    app = stack.open_endpoint(af, IPPROTO_UDP, local, 5000)
    stack.send(app, b"query", (peer, 53))
    stack.run()
    assert driver.log.classifies == [
        ("ALE_AUTH_CONNECT_V4", NOT, "pend"),
        ("ALE_AUTH_CONNECT_V4", NO_NBL, "reauth-block"),
    ]
    reauth = [r for r in stack.filter_engine.trace if r.callout_id][-1]
    assert (reauth.actionType, reauth.rights) == (0x1001, 0)
    assert stack.wire == [] and driver.log.injections == [] and driver.log.completions == []
    assert stack.injections == type(stack.injections)()
    finish(stack, driver, app)


@FAMILY
def test_s04_inbound_tcp_accept(no_leaks, fam):
    """S-04: INBOUND_TRANSPORT sees ALE_CLASSIFY_REQUIRED => PERMIT; ALE_AUTH_RECV_ACCEPT pends;
    the worker retreats ipHeaderSize + transportHeaderSize, clones, advances back, completes the
    operation with the clone and receive-injects it; the clone's recv-accept classify sees
    INJECTED_BY_SELF => PERMIT; the connection is accepted (SYN-ACK, inspected on the way out
    too) and established by the peer's ACK (inspected inbound)."""
    stack, driver, af, local, peer = setup(fam)
    listener = stack.open_endpoint(af, IPPROTO_TCP, local, 443, listen=True)
    s = sfx(fam)
    result = stack.receive(1, tcp(peer, local, 6000, 443, 41, IP.TCP_SYN))
    assert result.outcome == "absorbed" and stack.wire == []
    assert driver.log.classifies == [
        (f"INBOUND_TRANSPORT_{s}", NOT, "permit-ale-required"),
        (f"ALE_AUTH_RECV_ACCEPT_{s}", NOT, "pend"),
    ]
    stack.run()
    assert driver.log.completed_operations == [("inbound", True)]
    assert driver.log.classifies[2:] == [
        (f"INBOUND_TRANSPORT_{s}", SELF, "permit-self"),
        (f"ALE_AUTH_RECV_ACCEPT_{s}", SELF, "permit-self"),
        (f"OUTBOUND_TRANSPORT_{s}", NOT, "absorb"),  # the SYN-ACK, inspected like any packet
        (f"OUTBOUND_TRANSPORT_{s}", SELF, "permit-self"),
    ]
    [synack] = ip_packets(stack)
    _, tp, _ = transport_of(synack)
    assert tp.tcp_flags == IP.TCP_SYN | IP.TCP_ACK and tp.ack == 42
    [flow] = [f for f in stack.flows.values() if f.local[1] == 443]
    assert flow.state == "syn_received"
    stack.receive(1, tcp(peer, local, 6000, 443, 42, IP.TCP_ACK, ack=tp.seq + 1))
    assert flow.state == "syn_received"  # absorbed at INBOUND_TRANSPORT
    stack.run()
    assert flow.state == "established"
    assert driver.log.completions == [0, 0, 0]
    assert [f for f, _ in driver.log.injections] == [
        "FwpsInjectTransportReceiveAsync0",
        "FwpsInjectTransportSendAsync",
        "FwpsInjectTransportReceiveAsync0",
    ]
    finish(stack, driver, flow, listener)


def test_s05_inbound_accept_refused(no_leaks):
    """S-05: BlockTraffic=1: FwpsCompleteOperation0(ctx, NULL) without injection; the connection
    is not established; the original NBL is dereferenced (and freed by the stack)."""
    stack, driver, af, local, peer = setup("v4", block_traffic=True)
    listener = stack.open_endpoint(af, IPPROTO_TCP, local, 443, listen=True)
    stack.receive(1, tcp(peer, local, 6000, 443, 41, IP.TCP_SYN))
    stack.run()
    assert driver.log.completed_operations == [("inbound", False)]
    assert driver.log.injections == [] and stack.wire == []
    assert [f.state for f in stack.flows.values()] == ["refused"]
    assert_quiet(stack)
    finish(stack, driver, listener)


@FAMILY
def test_s06_inbound_ipsec_udp_is_rebuilt_before_receive_injection(no_leaks, fam):
    """S-06: the packets arrive ESP-protected; the transport / recv-accept classify sees
    isSecure; the worker rebuilds each clone with FwpsConstructIpHeaderForTransportPacket0
    (ipHeaderSize = IP + ESP header) before receive-injecting: the injected packets carry no ESP
    header and valid checksums, bypass IPsec and reach the socket."""
    stack, driver, af, local, peer = setup(fam)
    stack.add_ipsec_sa(peer)
    app = stack.open_endpoint(af, IPPROTO_UDP, local, 53)
    for seq, payload in enumerate([b"first", b"second"], 1):
        segment = IP.udp_datagram(IP.addr_bytes(peer), IP.addr_bytes(local), 7000, 53, payload)
        stack.receive(
            1, esp_packet(IP.addr_bytes(peer), IP.addr_bytes(local), 17, segment, seq=seq)
        )
        stack.run()
    assert [d.data for d in app.received] == [b"first", b"second"]
    injected = [d for d in stack.delivered if d.function == "FwpsInjectTransportReceiveAsync0"]
    assert len(injected) == 2
    for d in injected:
        info = IP.parse_ip(d.data)
        assert info.protocol == IPPROTO_UDP and 50 not in info.extension_headers
        assert checksum_ok(d.data)
    s = sfx(fam)
    assert [c for c in driver.log.classifies if c[2] != "permit-self"] == [
        (f"INBOUND_TRANSPORT_{s}", NOT, "permit-ale-required"),
        (f"ALE_AUTH_RECV_ACCEPT_{s}", NOT, "pend"),
        (f"INBOUND_TRANSPORT_{s}", NOT, "absorb"),
    ]
    # a cleartext datagram from the protected peer is dropped by IPsec before any callout
    stack.receive(1, udp(peer, local, 7000, 53, b"clear"))
    assert [d.data for d in app.received] == [b"first", b"second"]
    finish(stack, driver, app)


def test_s07_tunnel_mode_not_detunnelled_is_permitted(no_leaks):
    """S-07: the outer tunnel-mode packet (isTunnelMode, not isDeTunneled) is permitted without
    injection; the de-tunnelled inner packet is then inspected like any other (pend, re-inject
    with the header rebuilt since isSecure)."""
    stack, driver, af, local, peer = setup("v4")
    stack.add_ipsec_sa(peer, tunnel=True)
    app = stack.open_endpoint(af, IPPROTO_UDP, local, 53)
    inner = udp(peer, local, 7000, 53, b"tunnelled")
    stack.receive(1, esp_tunnel_packet(IP.addr_bytes(peer), IP.addr_bytes(local), inner))
    stack.run()
    assert driver.log.classifies[0] == ("INBOUND_TRANSPORT_V4", NOT, "permit-tunnel")
    assert driver.log.classifies[1:3] == [
        ("INBOUND_TRANSPORT_V4", NOT, "permit-ale-required"),
        ("ALE_AUTH_RECV_ACCEPT_V4", NOT, "pend"),
    ]
    assert [f for f, _ in driver.log.injections] == ["FwpsInjectTransportReceiveAsync0"]
    assert [d.data for d in app.received] == [b"tunnelled"]
    finish(stack, driver, app)


@pytest.mark.parametrize("drift", [False, True], ids=["no-drift", "drift"])
def test_s08_offset_drift_is_detected_by_the_worker(no_leaks, drift):
    """S-08: the stack moves the absorbed inbound NBL back by transportHeaderSize before the
    worker runs ([emu] stack.absorbed_offset_drift); the worker notices the DataOffset differs
    from nblOffset and retreats only ipHeaderSize: the clone starts exactly at the IP header (a
    receive injection would otherwise be refused) and the datagram is delivered."""
    stack, driver, af, local, peer = setup("v4")
    stack.absorbed_offset_drift = drift
    app = stack.open_endpoint(af, IPPROTO_UDP, local, 53)
    stack.receive(1, udp(peer, local, 7000, 53, b"one"))  # ALE: pended, re-injected
    stack.run()
    stack.receive(1, udp(peer, local, 7000, 53, b"two"))  # INBOUND_TRANSPORT: absorbed
    stack.run()
    assert [d.data for d in app.received] == [b"one", b"two"]
    assert driver.log.injections == [("FwpsInjectTransportReceiveAsync0", 0)] * 2
    assert driver.log.completions == [0, 0]
    finish(stack, driver, app)


def test_s09_unload_with_queued_packets(no_leaks):
    """S-09: one injection in flight, three packets queued and one pended connect when the
    driver unloads: the connect completes with BLOCK (re-authorisation refuses the flow), the
    queued packets are freed without injection, the in-flight injection completes before the
    handle is destroyed, the callouts are unregistered; nothing leaks."""
    stack, driver, af, local, peer = setup("v4")
    app = stack.open_endpoint(af, IPPROTO_UDP, local, 5000)
    stack.send(app, b"warm-up", (peer, 53))
    stack.run()  # flow to peer:53 authorised
    stack.send(app, b"in flight", (peer, 53))
    assert stack.step() == 1  # the worker ran: one injection queued, not processed yet
    assert driver.log.injections == [("FwpsInjectTransportSendAsync", 0)] * 2
    for i in range(3):
        stack.send(app, b"queued %d" % i, (peer, 53))
    other = stack.open_endpoint(af, IPPROTO_UDP, local, 5001)
    assert stack.send(other, b"pended connect", (peer, 54)).outcome == "absorbed"
    assert len(driver.packet_queue) == 3 and len(driver.connection_list) == 1
    engine = stack.filter_engine
    driver.unload()
    assert driver.log.freed_without_injection == 3
    assert driver.log.completed_operations[-1] == ("outbound", False)
    assert driver.log.classifies[-1] == ("ALE_AUTH_CONNECT_V4", NO_NBL, "reauth-block")
    assert [transport_of(p)[2] for p in ip_packets(stack)] == [b"warm-up", b"in flight"]
    assert driver.log.completions == [0, 0]
    assert driver.injection_handle.state.value == "destroyed"
    assert len(engine.callouts) == 0 and engine.filters() == []
    app.close()
    other.close()
    assert_quiet(stack)


def test_tlinspect_pend_marks_the_stacks_completion_handle(no_leaks):
    """Wiring: the engine's FwpsPendOperation0 marks the stack's AleCompletionHandle as pended
    (so the stack holds the flow), and FwpsCompleteOperation0 drives the stack's
    re-authorisation."""
    stack, driver, af, local, peer = setup("v4")
    handles = []
    real = driver.connect_classify

    def spy(values, meta, data, ctx, flt, flow_ctx, out):
        handles.append(meta.completionHandle)
        return real(values, meta, data, ctx, flt, flow_ctx, out)

    driver.connect_classify = spy
    stack.filter_engine.callouts.by_id(driver.callout_ids[0]).classify_fn = spy
    app = stack.open_endpoint(af, IPPROTO_UDP, local, 5000)
    stack.send(app, b"x", (peer, 53))
    assert isinstance(handles[0], AleCompletionHandle) and handles[0].pended
    assert not handles[0].completed
    stack.run()
    assert handles[0].completed
    finish(stack, driver, app)
