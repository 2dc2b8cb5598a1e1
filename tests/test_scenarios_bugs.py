"""The bug guards of samples.md §7 (B1 … B26) on the real stack and filter engine: for each
mistake a driver can make, a callout that makes it and what the simulator does about it
(detects it, reports it, or shows its observable effect). B18, B20 and B24 have their end-to-end
tests among the driver scenarios (named in the docstrings below); B26 is not modelled."""

from __future__ import annotations

import pytest
from inspect_driver import InspectDriver
from scenariokit import FAMILIES, assert_quiet, host, ip_packets, names, transport_of, udp
from scenariokit import tcp as tcp_packet

import wfpsim
from wfpsim import wdk
from wfpsim.constants import (
    AF_INET,
    FWP_ACTION_BLOCK,
    FWP_ACTION_CALLOUT_TERMINATING,
    FWP_ACTION_PERMIT,
    FWP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW,
    FWP_DIRECTION_INBOUND,
    FWPS_CLASSIFY_OUT_FLAG_ABSORB,
    FWPS_INJECTION_TYPE_NETWORK,
    FWPS_INJECTION_TYPE_TRANSPORT,
    FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V4,
    FWPS_LAYER_INBOUND_TRANSPORT_V4,
    FWPS_LAYER_IPFORWARD_V4,
    FWPS_LAYER_OUTBOUND_IPPACKET_V4,
    FWPS_LAYER_OUTBOUND_TRANSPORT_V4,
    FWPS_LAYER_STREAM_V4,
    FWPS_METADATA_FIELD_ALE_CLASSIFY_REQUIRED,
    FWPS_RIGHT_ACTION_WRITE,
    FWPS_STREAM_ACTION_DEFER,
    FWPS_STREAM_FLAG_RECEIVE,
    FWPS_STREAM_FLAG_RECEIVE_DISCONNECT,
    IPPROTO_UDP,
)
from wfpsim.stack import ip as IP
from wfpsim.stack.ipsec import esp_packet, esp_tunnel_packet
from wfpsim.status import NTSTATUS

S = NTSTATUS
AF, LOCAL, PEER, OTHER = FAMILIES["v4"]


def callout(stack, layer, fn, *, key=None, flags=0, flow_delete=None, weight=None, sublayer=None):
    """Registers ``fn`` (FN0 argument list) on the stack's engine with one filter at
    ``layer``; returns the callout id."""
    engine = stack.filter_engine
    key = key or f"{fn.__name__}-{layer}"
    callout_id = engine.register_callout(fn, key=key, flags=flags, flow_delete_fn=flow_delete)
    engine.add_filter(
        layer, FWP_ACTION_CALLOUT_TERMINATING, callout_key=key, weight=weight, sublayer=sublayer
    )
    return callout_id


def absorb(out):
    out.actionType = FWP_ACTION_BLOCK
    out.rights &= ~FWPS_RIGHT_ACTION_WRITE
    out.flags |= FWPS_CLASSIFY_OUT_FLAG_ABSORB


def clone_at_ip(nbl, back):
    nb = nbl.FirstNetBuffer
    wdk.NdisRetreatNetBufferDataStart(nb, back, 0, None)
    status, clone = wdk.FwpsAllocateCloneNetBufferList0(nbl, None, None, 0)
    wdk.NdisAdvanceNetBufferDataStart(nb, back, False, None)
    return clone


def free_clone(context, nbl, dispatch_level):
    wdk.FwpsFreeCloneNetBufferList0(nbl, 0)


def udp_app(stack, port=53):
    return stack.open_endpoint(AF, IPPROTO_UDP, LOCAL, port)


def teardown(stack, *closables):
    for c in closables:
        c.close()
    stack.run()
    for h in list(stack.handles):
        if h.state.value == "open":
            h.destroy()
    assert_quiet(stack)


# ---- B1 ---------------------------------------------------------------------------------------


class Reinjector:
    """Clone-reinject at INBOUND_TRANSPORT, inline (UDP), with or without the R2 check."""

    def __init__(self, stack, check_state: bool):
        self.stack, self.check = stack, check_state
        self.handle = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_TRANSPORT)
        self.calls = 0
        callout(stack, FWPS_LAYER_INBOUND_TRANSPORT_V4, self.classify)

    def classify(self, values, meta, nbl, flt, ctx, out):
        self.calls += 1
        if self.check and wdk.FwpsQueryPacketInjectionState0(self.handle, nbl)[0]:
            out.actionType = FWP_ACTION_PERMIT
            return
        clone = clone_at_ip(nbl, meta.ipHeaderSize + meta.transportHeaderSize)
        status = wdk.FwpsInjectTransportReceiveAsync0(
            self.handle, None, None, 0, AF_INET, meta.compartmentId, 1, 0, clone, free_clone, None
        )
        assert status == S.STATUS_SUCCESS
        absorb(out)


def test_b1_missing_state_check_loops_and_is_reported_naming_the_callout(no_leaks):
    """B1: without FwpsQueryPacketInjectionState0 the clone is classified by the same callout
    again and again; the stack stops the lineage at stack.max_reinjections and raises an
    InjectionLoopError naming the callout (its classifyFn, filter and layer)."""
    stack = host(max_reinjections=8)
    app = udp_app(stack)
    stack.receive(1, udp(PEER, LOCAL, 7, 53, b"warm"))  # authorise the flow first
    looping = Reinjector(stack, check_state=False)
    stack.receive(1, udp(PEER, LOCAL, 7, 53, b"loop"))
    with pytest.raises(wfpsim.InjectionLoopError) as e:
        stack.run()
    message = str(e.value)
    assert "Reinjector.classify" in message and "INBOUND_TRANSPORT_V4" in message
    assert "filter" in message and e.value.status == S.STATUS_HOPLIMIT_EXCEEDED
    assert looping.calls == 9 and [d.data for d in app.received] == [b"warm"]
    teardown(stack, app)


def test_b1_with_the_check_exactly_one_extra_classify(no_leaks):
    stack = host()
    app = udp_app(stack)
    stack.receive(1, udp(PEER, LOCAL, 7, 53, b"warm"))
    good = Reinjector(stack, check_state=True)
    stack.receive(1, udp(PEER, LOCAL, 7, 53, b"once"))
    stack.run()
    assert good.calls == 2 and [d.data for d in app.received] == [b"warm", b"once"]
    teardown(stack, app)


# ---- B2 / B3 / B4 / B5 ------------------------------------------------------------------------


class Holder:
    """References and absorbs the first inbound datagram (out of band), records its metadata."""

    def __init__(self, stack):
        self.held = []
        callout(stack, FWPS_LAYER_INBOUND_TRANSPORT_V4, self.classify)

    def classify(self, values, meta, nbl, flt, ctx, out):
        if self.held:
            out.actionType = FWP_ACTION_PERMIT
            return
        wdk.FwpsReferenceNetBufferList0(nbl, True)
        self.held.append(
            (nbl, meta.ipHeaderSize, meta.transportHeaderSize, nbl.FirstNetBuffer.DataOffset)
        )
        absorb(out)


def test_b2_dereference_before_cloning_is_a_use_after_free(no_leaks):
    """B2 (S-42 with the real engine): the stack frees its NBL at the last dereference, so a
    clone taken afterwards is a use after free; dereferencing *after* cloning is legal (S-41)."""
    stack = host()
    app = udp_app(stack)
    stack.receive(1, udp(PEER, LOCAL, 7, 53, b"warm"))
    holder = Holder(stack)
    stack.receive(1, udp(PEER, LOCAL, 7, 53, b"held"))
    nbl = holder.held[0][0]
    wdk.FwpsDereferenceNetBufferList0(nbl, False)
    with pytest.raises(wfpsim.UseAfterFreeError):
        wdk.FwpsAllocateCloneNetBufferList0(nbl, None, None, 0)
    teardown(stack, app)


def test_b2_dereference_after_cloning_keeps_the_data_alive(no_leaks):
    stack = host()
    app = udp_app(stack)
    stack.receive(1, udp(PEER, LOCAL, 7, 53, b"warm"))
    holder = Holder(stack)
    stack.receive(1, udp(PEER, LOCAL, 7, 53, b"held"))
    nbl, ihs, ths, _ = holder.held[0]
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_TRANSPORT)
    clone = clone_at_ip(nbl, ihs + ths)
    wdk.FwpsDereferenceNetBufferList0(nbl, False)
    assert nbl.alive and nbl.ChildRefCount == 1  # the clone pins the original
    wdk.FwpsInjectTransportReceiveAsync0(h, None, None, 0, AF_INET, 1, 1, 0, clone, free_clone, 0)
    stack.run()
    assert not nbl.alive and [d.data for d in app.received] == [b"warm", b"held"]
    teardown(stack, app)


def test_b3_forgotten_clone_after_a_synchronous_failure_is_in_the_leak_report():
    """B3: the inject call failed (destroyed handle): no completion will come; a driver that
    does not free its clone leaks it, and wfpsim.leak_report() names the line that cloned it."""
    before = {(x["kind"], x["handle"]) for x in wfpsim.leak_report()}
    stack = host()
    app = udp_app(stack)
    stack.receive(1, udp(PEER, LOCAL, 7, 53, b"warm"))
    holder = Holder(stack)
    stack.receive(1, udp(PEER, LOCAL, 7, 53, b"held"))
    nbl, ihs, ths, _ = holder.held[0]
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_TRANSPORT)
    h.destroy()
    clone = clone_at_ip(nbl, ihs + ths)
    called = []
    status = wdk.FwpsInjectTransportReceiveAsync0(
        h, None, None, 0, AF_INET, 1, 1, 0, clone, lambda *a: called.append(a), None
    )
    assert status == S.STATUS_INVALID_HANDLE
    wdk.FwpsDereferenceNetBufferList0(nbl, False)
    stack.run()
    assert called == []
    leaks = [x for x in wfpsim.leak_report() if (x["kind"], x["handle"]) not in before]
    assert any("clone_at_ip" in x["site"] for x in leaks), leaks
    assert stack.leaks()["parked_nbls"] == [nbl]  # the original waits for its clone
    wdk.FwpsFreeCloneNetBufferList0(clone, 0)  # the fix (R6)
    teardown(stack, app)


def test_b4_double_retreat_after_offset_drift_is_refused(no_leaks):
    """B4: with the stack's offset drift, a worker that does not compare the DataOffset with the
    one it recorded retreats the transport header twice: its clone does not start at the IP
    header and FwpsInjectTransportReceiveAsync0 refuses it (STATUS_FWP_INVALID_PARAMETER)."""
    stack = host()
    stack.absorbed_offset_drift = True
    app = udp_app(stack)
    stack.receive(1, udp(PEER, LOCAL, 7, 53, b"warm"))
    holder = Holder(stack)
    stack.receive(1, udp(PEER, LOCAL, 7, 53, b"held"))
    nbl, ihs, ths, offset = holder.held[0]
    assert offset - nbl.FirstNetBuffer.DataOffset == ths  # the drift the guard would notice
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_TRANSPORT)
    clone = clone_at_ip(nbl, ihs + ths)
    status = wdk.FwpsInjectTransportReceiveAsync0(
        h, None, None, 0, AF_INET, 1, 1, 0, clone, free_clone, None
    )
    assert status == S.STATUS_FWP_INVALID_PARAMETER
    wdk.FwpsFreeCloneNetBufferList0(clone, 0)
    wdk.FwpsDereferenceNetBufferList0(nbl, False)
    teardown(stack, app)


def test_b5_offset_left_changed_is_a_contract_violation(no_leaks):
    """B5: a classifyFn that retreats to the IP header and forgets to advance back: the stack
    puts the offset back and reports the violation (raised in the default "raise" mode)."""
    stack = host()
    app = udp_app(stack)

    def careless(values, meta, nbl, flt, ctx, out):
        wdk.NdisRetreatNetBufferDataStart(nbl.FirstNetBuffer, meta.ipHeaderSize, 0, None)
        out.actionType = FWP_ACTION_PERMIT

    callout(stack, FWPS_LAYER_INBOUND_TRANSPORT_V4, careless)
    with pytest.raises(wfpsim.ContractViolation, match="B5"):
        stack.receive(1, udp(PEER, LOCAL, 7, 53, b"x"))
    assert stack.contracts.violations[-1].rule == "offset-not-restored"
    teardown(stack, app)


# ---- B6 / B7 ---------------------------------------------------------------------------------


class Sender:
    """Absorbs outbound datagrams at OUTBOUND_TRANSPORT and send-injects clones from a worker;
    ``mistake`` is "free-early" (B6) or "host-order" (B7)."""

    def __init__(self, stack, mistake):
        self.stack, self.mistake = stack, mistake
        self.h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_TRANSPORT)
        self.statuses = []
        callout(stack, FWPS_LAYER_OUTBOUND_TRANSPORT_V4, self.classify)

    def classify(self, values, meta, nbl, flt, ctx, out):
        if wdk.FwpsQueryPacketInjectionState0(self.h, nbl)[0]:
            out.actionType = FWP_ACTION_PERMIT
            return
        remote = values.incomingValue[wdk.FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_ADDRESS]
        address = remote.value.uint32
        wdk.FwpsReferenceNetBufferList0(nbl, True)
        endpoint = meta.transportEndpointHandle
        self.stack.queue_dpc(lambda: self.worker(nbl, address, endpoint))
        absorb(out)

    def worker(self, nbl, address, endpoint):
        _, clone = wdk.FwpsAllocateCloneNetBufferList0(nbl, None, None, 0)
        order = "little" if self.mistake == "host-order" else "big"
        buffer = bytearray(address.to_bytes(4, order))
        args = wdk.FWPS_TRANSPORT_SEND_PARAMS(remoteAddress=buffer)
        status = wdk.FwpsInjectTransportSendAsync(
            self.h, None, endpoint, 0, args, AF_INET, 1, clone, self.done, nbl
        )
        assert status == S.STATUS_SUCCESS
        if self.mistake == "free-early":
            buffer.clear()  # the driver "frees" the remote address before the completion

    def done(self, original, clone, dispatch_level):
        self.statuses.append(clone.Status)
        wdk.FwpsFreeCloneNetBufferList0(clone, 0)
        wdk.FwpsDereferenceNetBufferList0(original, False)


def test_b6_send_params_freed_too_early_fail_at_send_time(no_leaks):
    """B6 (R8): the stack reads remoteAddress when it sends, asynchronously; a buffer freed
    (here: emptied) before then makes the send fail late (STATUS_INVALID_PARAMETER)."""
    stack = host()
    app = stack.open_endpoint(AF, IPPROTO_UDP, LOCAL, 5000)
    sender = Sender(stack, "free-early")
    stack.send(app, b"x", (PEER, 53))
    stack.run()
    assert sender.statuses == [S.STATUS_INVALID_PARAMETER] and stack.wire == []
    teardown(stack, app)


def test_b7_host_order_remote_address_goes_to_the_byte_swapped_host(no_leaks):
    """B7 (R9): FWP_UINT32 addresses are host order; passing one unswapped as remoteAddress
    sends the packet to the byte-swapped address."""
    stack = host()
    app = stack.open_endpoint(AF, IPPROTO_UDP, LOCAL, 5000)
    sender = Sender(stack, "host-order")
    stack.send(app, b"x", (PEER, 53))
    stack.run()
    [packet] = ip_packets(stack)
    assert IP.addr_text(IP.parse_ip(packet).dst) == "99.2.0.192"
    assert sender.statuses == [0]
    teardown(stack, app)


# ---- B8 / B9 / B10 ---------------------------------------------------------------------------


def test_b8_acting_without_the_write_right_is_ignored(no_leaks):
    """B8 (R1): after a hard decision in a higher sublayer, a lower callout that ignores the
    missing write right cannot change it: a PERMIT after a hard BLOCK is ignored; a BLOCK after
    a hard PERMIT is a veto (it blocks, layers.md §7.5) but its ABSORB is ignored — the packet
    is dropped as a block, not silently taken. The engine's trace notes both."""
    stack = host()
    engine = stack.filter_engine
    engine.add_sublayer("high", 0x200)
    engine.add_sublayer("low", 0x100)
    app = udp_app(stack)
    high_action = []

    def hard(values, meta, nbl, flt, ctx, out):
        out.actionType = high_action[-1]
        out.rights &= ~FWPS_RIGHT_ACTION_WRITE

    def rude(values, meta, nbl, flt, ctx, out):
        if high_action[-1] == FWP_ACTION_BLOCK:
            out.actionType = FWP_ACTION_PERMIT
        else:
            absorb(out)

    callout(stack, FWPS_LAYER_INBOUND_TRANSPORT_V4, hard, sublayer="high")
    callout(stack, FWPS_LAYER_INBOUND_TRANSPORT_V4, rude, sublayer="low")
    outcomes = []
    for action in (FWP_ACTION_BLOCK, FWP_ACTION_PERMIT):
        high_action.append(action)
        outcomes.append(stack.receive(1, udp(PEER, LOCAL, 7, 53, b"x")).outcome)
        record = [r for r in engine.trace if r.layer_id == FWPS_LAYER_INBOUND_TRANSPORT_V4][-1]
        assert record.entry_rights == 0 and record.notes, record
    assert outcomes == ["blocked", "blocked"] and app.received == []
    teardown(stack, app)


def test_b9_inline_tcp_transport_injection_is_flagged(no_leaks):
    """B9 (R10): a TCP segment cloned and transport-send-injected from inside the
    OUTBOUND_TRANSPORT classifyFn: the stack reports the "tcp-inline" contract violation."""
    stack = host(contracts="record")
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_TRANSPORT)
    flow = stack.open_tcp_flow(AF, (LOCAL, 0), (PEER, 80))

    def inline_tcp(values, meta, nbl, flt, ctx, out):
        if wdk.FwpsQueryPacketInjectionState0(h, nbl)[0]:
            out.actionType = FWP_ACTION_PERMIT
            return
        _, clone = wdk.FwpsAllocateCloneNetBufferList0(nbl, None, None, 0)
        args = wdk.FWPS_TRANSPORT_SEND_PARAMS(remoteAddress=IP.addr_bytes(PEER))
        wdk.FwpsInjectTransportSendAsync(
            h, None, meta.transportEndpointHandle, 0, args, AF_INET, 1, clone, free_clone, None
        )
        absorb(out)

    callout(stack, FWPS_LAYER_OUTBOUND_TRANSPORT_V4, inline_tcp)
    flow.send(b"GET /")
    stack.run()
    assert [v.rule for v in stack.contracts.violations] == ["tcp-inline"]
    assert transport_of(ip_packets(stack)[-1])[2] == b"GET /"  # record mode: it still runs
    teardown(stack, flow)


def test_b10_ale_still_decides_for_packets_that_required_it(no_leaks):
    """B10: the first datagram of a flow carries ALE_CLASSIFY_REQUIRED at INBOUND_TRANSPORT; a
    callout that absorbs and re-injects it anyway does not bypass ALE: the clone is classified at
    ALE_AUTH_RECV_ACCEPT, where a block filter refuses it."""
    stack = host()
    app = udp_app(stack)
    reinjector = Reinjector(stack, check_state=True)
    seen = []
    real = reinjector.classify

    def spy(values, meta, nbl, flt, ctx, out):
        seen.append(bool(meta.currentMetadataValues & FWPS_METADATA_FIELD_ALE_CLASSIFY_REQUIRED))
        real(values, meta, nbl, flt, ctx, out)

    stack.filter_engine.callouts.by_key(
        f"classify-{FWPS_LAYER_INBOUND_TRANSPORT_V4}"
    ).classify_fn = spy
    stack.filter_engine.add_filter(FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V4, FWP_ACTION_BLOCK)
    stack.receive(1, udp(PEER, LOCAL, 7, 53, b"needs ALE"))
    stack.run()
    assert seen == [True, True]  # the clone still needs ALE
    rec = stack.injections[-1]
    assert "ALE_AUTH_RECV_ACCEPT_V4" in names(rec.layers) and app.received == []
    assert rec.status == S.STATUS_FWP_DROP_NOICMP
    teardown(stack, app)


# ---- B11 / B12 ------------------------------------------------------------------------------


def test_b11_receive_injecting_with_esp_still_present_fails(no_leaks):
    """B11: a clone of an IPsec packet receive-injected without rebuilding its IP header (ESP
    still in it) is dropped; the completion carries STATUS_DATA_NOT_ACCEPTED [emu]."""
    stack = host()
    stack.add_ipsec_sa(PEER)
    app = udp_app(stack)
    stack.receive(1, udp(PEER, LOCAL, 7, 53, b"x"))  # cleartext: dropped by IPsec
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_TRANSPORT)
    statuses = []

    def lazy(values, meta, nbl, flt, ctx, out):
        if wdk.FwpsQueryPacketInjectionState0(h, nbl)[0]:
            out.actionType = FWP_ACTION_PERMIT
            return
        clone = clone_at_ip(nbl, meta.ipHeaderSize + meta.transportHeaderSize)

        def done(c, n, d):
            statuses.append(n.Status)
            wdk.FwpsFreeCloneNetBufferList0(n, 0)

        wdk.FwpsInjectTransportReceiveAsync0(h, None, None, 0, AF_INET, 1, 1, 0, clone, done, None)
        absorb(out)

    callout(stack, FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V4, lazy)
    segment = IP.udp_datagram(IP.addr_bytes(PEER), IP.addr_bytes(LOCAL), 7, 53, b"secret")
    packet = esp_packet(IP.addr_bytes(PEER), IP.addr_bytes(LOCAL), 17, segment)
    stack.receive(1, packet)
    stack.run()
    # the clone (trailer already stripped) no longer matches its IP header: refused
    assert statuses == [S.STATUS_INVALID_PARAMETER] and app.received == []
    # a well-formed packet that still carries ESP: dropped with the B11 status
    nbl = wfpsim.NetBufferList.from_bytes(packet)
    wdk.FwpsInjectTransportReceiveAsync0(
        h,
        None,
        None,
        0,
        AF_INET,
        1,
        1,
        0,
        nbl,
        lambda c, n, d: (statuses.append(n.Status), n.free()),
        None,
    )
    stack.run()
    assert statuses[-1] == S.STATUS_DATA_NOT_ACCEPTED and app.received == []
    assert "B11" in stack.injections[-1].params["reason"]
    teardown(stack, app)


def test_b12_security_information_exposes_tunnel_mode(no_leaks):
    """B12: FwpsGetPacketListSecurityInformation0 exposes isSecure / isTunnelMode /
    isDeTunneled: the outer tunnel-mode packet (not de-tunnelled yet), then the inner one."""
    stack = host()
    stack.add_ipsec_sa(PEER, tunnel=True)
    app = udp_app(stack)
    bits = []

    def look(values, meta, nbl, flt, ctx, out):
        _, info = wdk.FwpsGetPacketListSecurityInformation0(
            nbl,
            wdk.FWPS_PACKET_LIST_INFORMATION_QUERY_IPSEC
            | wdk.FWPS_PACKET_LIST_INFORMATION_QUERY_INBOUND,
        )
        i = info.ipsecInformation.inbound
        bits.append((i.isSecure, i.isTunnelMode, i.isDeTunneled))
        out.actionType = FWP_ACTION_PERMIT

    callout(stack, FWPS_LAYER_INBOUND_TRANSPORT_V4, look)
    inner = udp(PEER, LOCAL, 7, 53, b"inner")
    stack.receive(1, esp_tunnel_packet(IP.addr_bytes(PEER), IP.addr_bytes(LOCAL), inner))
    stack.receive(1, udp(PEER, LOCAL, 7, 53, b"clear"))  # no SA verification: dropped
    assert bits == [(1, 1, 0), (1, 1, 1)] and [d.data for d in app.received] == [b"inner"]
    teardown(stack, app)


# ---- B13 / B14 -------------------------------------------------------------------------------


def router():
    stack = host(forwarding=True)
    stack.add_interface(index=2, addresses=["198.51.100.1/24"], mac=bytes.fromhex("02000000000c"))
    return stack


def test_b13_forward_injecting_a_locally_destined_packet_fails_late(no_leaks):
    """B13: at IPFORWARD a weak-host packet (IS_INBOUND_PASS_THRU) re-injected with
    FwpsInjectForwardAsync0 instead of network receive completes with STATUS_INVALID_PARAMETER."""
    stack = router()
    app = stack.open_endpoint(AF, IPPROTO_UDP, "198.51.100.1", 53)
    h = stack.injection_handle(AF_INET, 0)
    statuses = []

    def forward(values, meta, nbl, flt, ctx, out):
        _, clone = wdk.FwpsAllocateCloneNetBufferList0(nbl, None, None, 0)

        def done(c, n, d):
            statuses.append(n.Status)
            wdk.FwpsFreeCloneNetBufferList0(n, 0)

        wdk.FwpsInjectForwardAsync0(h, None, 0, AF_INET, 0, 2, clone, done, None)
        absorb(out)

    callout(stack, FWPS_LAYER_IPFORWARD_V4, forward)
    stack.receive(1, udp("192.0.2.50", "198.51.100.1", 7, 53, b"weak"))
    stack.run()
    assert statuses == [S.STATUS_INVALID_PARAMETER] and app.received == []
    teardown(stack, app)


def test_b14_injecting_a_fragment_group_chain_is_refused(no_leaks):
    """B14: the IS_FRAGMENT_GROUP chain cannot be forward-injected as is
    (STATUS_FWP_INVALID_PARAMETER [emu]); FwpsReassembleForwardFragmentGroup0 first."""
    stack = router()
    stack.forward_fragment_grouping = True
    h = stack.injection_handle(AF_INET, 0)
    results = []

    def forward(values, meta, nbl, flt, ctx, out):
        out.actionType = FWP_ACTION_PERMIT
        if not values.incomingValue[wdk.FWPS_FIELD_IPFORWARD_V4_FLAGS].value.uint32 & 0x40:
            return
        results.append(wdk.FwpsInjectForwardAsync0(h, None, 0, AF_INET, 0, 2, nbl, free_clone, 0))

    callout(stack, FWPS_LAYER_IPFORWARD_V4, forward)
    src, dst = IP.addr_bytes("192.0.2.50"), IP.addr_bytes("198.51.100.9")
    segment = IP.udp_datagram(src, dst, 1, 2, bytes(1000))
    whole = IP.ip_header(src, dst, 17, len(segment), ident=5) + segment
    for p in wfpsim.stack.fragment(whole, 400, None):
        stack.receive(1, p)
    stack.run()
    assert results == [S.STATUS_FWP_INVALID_PARAMETER]
    assert len(stack.wire) == 3  # permitted: the stack forwards the fragments itself
    teardown(stack)


# ---- B15 / B16 / B17 / B19 / B21 (stream) ---------------------------------------------------


class StreamHolder:
    """Blocks every inbound indication at STREAM_V4 (whole), keeping nothing; a worker injects
    what the test says."""

    def __init__(self, stack, classify=None):
        self.stack = stack
        self.h = stack.injection_handle(AF_INET, 0)
        self.deleted = []
        self.id = callout(
            stack,
            FWPS_LAYER_STREAM_V4,
            classify or self.classify,
            key="stream-holder",
            flow_delete=lambda layer, cid, ctx: self.deleted.append(ctx),
        )
        self.completions = []

    def classify(self, values, meta, io, flt, ctx, out):
        out.actionType = FWP_ACTION_BLOCK
        io.countBytesEnforced = 0

    def done(self, context, nbl, dispatch_level):
        self.completions.append(context)
        nbl.Next = None
        wdk.FwpsFreeNetBufferList0(nbl)

    def inject(self, flow, chain, flags, length):
        return wdk.FwpsStreamInjectAsync0(
            self.h, None, 0, flow.flow_id, self.id, FWPS_LAYER_STREAM_V4, flags, chain, length,
            self.done, "ctx",
        )  # fmt: skip


def stream_flow(stack):
    return stack.open_tcp_flow(AF, (LOCAL, 80), (PEER, 5000), direction=FWP_DIRECTION_INBOUND)


def push(stack, seq, data=b"", fin=False):
    flags = IP.TCP_ACK | (IP.TCP_FIN if fin else IP.TCP_PSH)
    stack.receive(1, tcp_packet(PEER, LOCAL, 5000, 80, seq, flags, data))


def test_b15_stream_chain_completes_once_per_nbl(no_leaks):
    """B15: a stream injection of an NBL chain completes once per NBL."""
    stack = host()
    holder = StreamHolder(stack)
    flow = stream_flow(stack)
    push(stack, 1, b"ignored")
    a, b = wfpsim.NetBufferList.from_bytes(b"one "), wfpsim.NetBufferList.from_bytes(b"two")
    a.Next = b
    assert holder.inject(flow, a, FWPS_STREAM_FLAG_RECEIVE, 7) == S.STATUS_SUCCESS
    stack.run()
    assert holder.completions == ["ctx", "ctx"] and bytes(flow.received) == b"one two"
    teardown(stack, flow)


def test_b16_fin_only_injection_with_null_nbl_never_completes(no_leaks):
    """B16: FwpsStreamInjectAsync0 with a NULL NBL and a DISCONNECT flag (FIN only, dataLength
    0) delivers the FIN and never calls the completion."""
    stack = host()
    holder = StreamHolder(stack)
    flow = stream_flow(stack)
    push(stack, 1, fin=True)
    assert not flow.fin_received
    flags = FWPS_STREAM_FLAG_RECEIVE | FWPS_STREAM_FLAG_RECEIVE_DISCONNECT
    assert holder.inject(flow, None, flags, 0) == S.STATUS_SUCCESS
    stack.run()
    assert flow.fin_received and holder.completions == []
    teardown(stack, flow)


def test_b17_stream_injection_needs_a_direction_flag(no_leaks):
    """B17: stream flags without RECEIVE/SEND (or DISCONNECT without its direction bit) are
    refused with STATUS_FWP_INVALID_PARAMETER."""
    stack = host()
    holder = StreamHolder(stack)
    flow = stream_flow(stack)
    nbl = wfpsim.NetBufferList.from_bytes(b"x")
    assert holder.inject(flow, nbl, 0, 1) == S.STATUS_FWP_INVALID_PARAMETER
    assert (
        holder.inject(flow, nbl, FWPS_STREAM_FLAG_RECEIVE_DISCONNECT, 1)
        == S.STATUS_FWP_INVALID_PARAMETER
    )
    nbl.free()
    teardown(stack, flow)


def test_b19_defer_is_for_inbound_streams_only(no_leaks):
    """B19: DEFER on outbound data is a contract violation (only inbound streams can be
    deferred; inbound deferral and FwpsStreamContinue0: S-21)."""
    stack = host()

    def defer_all(values, meta, io, flt, ctx, out):
        io.streamAction = FWPS_STREAM_ACTION_DEFER

    StreamHolder(stack, classify=defer_all)
    flow = stream_flow(stack)
    with pytest.raises(wfpsim.ContractViolation, match="inbound"):
        flow.send(b"outbound data")
    teardown(stack, flow)


def test_b21_flow_context_removed_inside_a_classify_is_deleted_after_it(no_leaks):
    """B21: FwpsFlowRemoveContext0 from inside a classifyFn of the flow returns STATUS_PENDING;
    flowDeleteFn runs once that classify returned (never inside the driver's own call)."""
    stack = host()
    events = []
    holder = None

    def classify(values, meta, io, flt, ctx, out):
        status = wdk.FwpsFlowRemoveContext0(meta.flowHandle, FWPS_LAYER_STREAM_V4, holder.id)
        events.append(("removed", status, list(holder.deleted)))
        out.actionType = FWP_ACTION_PERMIT

    engine = stack.filter_engine
    holder = StreamHolder.__new__(StreamHolder)
    holder.deleted = []
    holder.id = engine.register_callout(
        classify,
        key="remover",
        flags=FWP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW,
        flow_delete_fn=lambda layer, cid, ctx: holder.deleted.append(ctx),
    )
    engine.add_filter(FWPS_LAYER_STREAM_V4, FWP_ACTION_CALLOUT_TERMINATING, callout_key="remover")
    flow = stream_flow(stack)
    assert engine.flow_associate_context(flow.flow_id, FWPS_LAYER_STREAM_V4, holder.id, 0xC0) == 0
    push(stack, 1, b"data")
    assert events == [("removed", S.STATUS_PENDING, [])]
    assert holder.deleted == [0xC0] and bytes(flow.received) == b"data"
    teardown(stack, flow)


# ---- B22 / B23 / B24 / B25 ------------------------------------------------------------------


def test_b22_wrong_handle_type_is_stale(no_leaks):
    """B22: a TRANSPORT-only handle passed to FwpsInjectNetworkSendAsync0 from a callout:
    STATUS_FWP_INJECT_HANDLE_STALE; the callout frees its clone (no completion)."""
    stack = host()
    app = stack.open_endpoint(AF, IPPROTO_UDP, LOCAL, 5000)
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_TRANSPORT)
    statuses = []

    def wrong(values, meta, nbl, flt, ctx, out):
        _, clone = wdk.FwpsAllocateCloneNetBufferList0(nbl, None, None, 0)
        statuses.append(wdk.FwpsInjectNetworkSendAsync0(h, None, 0, 0, clone, free_clone, None))
        wdk.FwpsFreeCloneNetBufferList0(clone, 0)
        out.actionType = FWP_ACTION_PERMIT

    callout(stack, FWPS_LAYER_OUTBOUND_IPPACKET_V4, wrong)
    stack.send(app, b"x", (PEER, 53))
    assert statuses == [S.STATUS_FWP_INJECT_HANDLE_STALE] and len(stack.wire) == 1
    teardown(stack, app)


def test_b23_raw_send_with_several_nbs_is_refused(no_leaks):
    """B23: a raw (header-include) transport send must carry exactly one NET_BUFFER."""
    stack = host()
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_TRANSPORT)
    packets = [udp(LOCAL, PEER, 1, 2, x) for x in (b"a", b"b")]
    nbl = wfpsim.NetBufferList.from_buffers(packets)
    status = wdk.FwpsInjectTransportSendAsync(h, None, 0, 0, None, AF_INET, 1, nbl, free_clone, 0)
    assert status == S.STATUS_FWP_INVALID_PARAMETER
    first, second = nbl.split() if hasattr(nbl, "split") else (None, None)
    for part in (first, second):
        if part is not None:
            part.free()
    if nbl.alive:
        nbl.free()
    teardown(stack)


def test_b24_oversize_network_send_completes_with_invalid_buffer_size(no_leaks):
    """B24 (S-36 with a diverting callout: test_scenarios_windivert): a network send larger than
    the MTU completes with STATUS_INVALID_BUFFER_SIZE."""
    stack = host(mtu=600)
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    statuses = []
    nbl = wfpsim.NetBufferList.from_bytes(udp(LOCAL, PEER, 1, 2, bytes(1000)))
    stack.inject_network_send(
        h, nbl, completion=lambda c, n, d: (statuses.append(n.Status), n.free())
    )
    stack.run()
    assert statuses == [S.STATUS_INVALID_BUFFER_SIZE] and stack.wire == []
    teardown(stack)


def test_b25_ignoring_multi_destination_injects_every_copy(no_leaks):
    """B25: a vSwitch callout that ignores RECLASSIFY_MULTI_DESTINATION injects every copy of a
    multi-destination frame (three deliveries instead of one; S-31 shows the guard)."""
    from wfpsampler_driver import WfpSamplerDriver

    stack = host()
    drv = WfpSamplerDriver(
        "basic_packet_injection", [wdk.FWPS_LAYER_INGRESS_VSWITCH_ETHERNET], perform_inline=True
    ).register(stack)
    original = drv.classify

    def no_check(values, meta, nbl, ctx, flt, flow_ctx, out):
        meta.l2Flags = 0  # the mistake: the flag is not looked at
        original(values, meta, nbl, ctx, flt, flow_ctx, out)

    stack.filter_engine.callouts.by_id(drv.callout_ids[0]).classify_fn = no_check
    frame = IP.ethernet_header(b"\xff" * 6, bytes(6), 0x0800) + udp(PEER, LOCAL, 1, 2, b"m")
    stack.vswitch_receive(frame, destinations=3)
    stack.run()
    assert len([d for d in stack.delivered if d.destination == "vswitch"]) == 3
    drv.unload()
    teardown(stack)


def test_b26_clone_tag_transfer_is_not_modelled():
    """B26 (nmap #1529: a clone takes over WFP's private per-NBL tag) is unconfirmed by
    Microsoft and not modelled: cloning and freeing a clone "just to look" leaves the original's
    injection history (slot 10, the only WFP tag the simulator has) where it was."""
    nbl = wfpsim.NetBufferList.from_bytes(udp(PEER, LOCAL, 1, 2, b"x"))
    nbl.set_info(10, 7)
    clone = nbl.clone()
    assert clone.get_info(10) == 7
    clone.free_clone()
    assert nbl.get_info(10) == 7
    nbl.free()


def test_tlinspect_on_the_default_stack_and_engine(no_leaks):
    """Wiring: the default stack runs the default filter engine; a driver registered on it
    classifies traffic sent through it."""
    stack = wfpsim.default_stack()
    engine = stack.filter_engine
    from wfpsim.filtering import default_engine

    assert engine is default_engine()
    driver = InspectDriver("192.0.2.99").register(stack)
    app = stack.open_endpoint(AF, IPPROTO_UDP, "192.0.2.1", 6000)
    stack.send(app, b"default", ("192.0.2.99", 53))
    stack.run()
    assert [c[2] for c in driver.log.classifies] == ["pend", "reauth-permit", "permit-self"]
    app.close()
    driver.unload()
    assert engine.filters() == [] and len(engine.callouts) == 0
