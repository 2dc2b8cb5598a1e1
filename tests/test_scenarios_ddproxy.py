"""ddproxy (examples/ddproxy_driver.py) end to end on the real stack and filter engine:
samples.md §9.2, S-10 … S-14, IPv4 and IPv6."""

from __future__ import annotations

import pytest
from ddproxy_driver import DD_PROXY_FLOW_ORIGINAL, DD_PROXY_FLOW_PROXY, DDProxyDriver
from scenariokit import (
    FAMILIES,
    assert_quiet,
    checksum_ok,
    host,
    ip_packets,
    names,
    transport_of,
    udp,
)

from wfpsim import wdk
from wfpsim.constants import (
    FWP_DIRECTION_INBOUND,
    FWP_DIRECTION_OUTBOUND,
    FWPS_PACKET_INJECTED_BY_SELF,
    IPPROTO_UDP,
)
from wfpsim.stack import ip as IP
from wfpsim.status import NTSTATUS

FAMILY = pytest.mark.parametrize("fam", ["v4", "v6"])
OUT, IN = FWP_DIRECTION_OUTBOUND, FWP_DIRECTION_INBOUND


def setup(fam: str):
    af, local, original, new = FAMILIES[fam]
    stack = host()
    driver = DDProxyDriver((original, 53), (new, 5353)).register(stack)
    app = stack.open_endpoint(af, IPPROTO_UDP, local, 40000)
    return stack, driver, app, local, original, new


def finish(stack, driver, *closables):
    for c in closables:
        c.close()
    driver.unload()
    assert_quiet(stack)
    assert len(stack.filter_engine.callouts) == 0


@FAMILY
def test_s10_s11_redirect_and_reply(no_leaks, fam):
    """S-10: the flow to O:p gets its ORIGINAL context at ALE_FLOW_ESTABLISHED; DATAGRAM_DATA
    (runs only because of CONDITIONAL_ON_FLOW + context) absorbs; the worker's clone has UDP
    destination port q and checksum 0, is sent with remoteAddress N; the wire shows N:q. The
    clone's own flow gets the PROXY context. S-11: the reply from N:q on the proxy flow is
    absorbed, re-injected with source port p and IP source O: the socket receives from O:p."""
    stack, driver, app, local, original, new = setup(fam)
    stack.send(app, b"question", (original, 53))
    assert stack.wire == []
    stack.run()
    [out] = ip_packets(stack)
    info, tp, payload = transport_of(out)
    assert (IP.addr_text(info.dst), tp.dst_port, payload) == (new, 5353, b"question")
    assert out[info.header_length + 6 : info.header_length + 8] == b"\0\0"  # the sample's zero
    assert [t for _, t in driver.log.flow_contexts] == [DD_PROXY_FLOW_ORIGINAL, DD_PROXY_FLOW_PROXY]
    send = stack.injections[-1]
    s = "V4" if fam == "v4" else "V6"
    # the clone re-enters at the top: a new flow (ALE) for N:q, then datagram data
    assert names(send.layers)[:4] == [
        f"ALE_AUTH_CONNECT_{s}",
        f"ALE_FLOW_ESTABLISHED_{s}",
        f"DATAGRAM_DATA_{s}",
        f"OUTBOUND_TRANSPORT_{s}",
    ]
    # S-11: the reply
    stack.receive(1, udp(new, local, 5353, 40000, b"answer"))
    stack.run()
    [got] = app.received
    assert (got.data, got.remote_address, got.remote_port) == (b"answer", original, 53)
    delivered = [d for d in stack.delivered if d.destination == "local"][-1]
    assert delivered.function == "FwpsInjectTransportReceiveAsync0" and checksum_ok(delivered.data)
    assert driver.log.datagram_classifies == [(OUT, 0, "absorb"), (IN, 0, "absorb")]
    assert driver.log.completions == [0, 0]
    finish(stack, driver, app)


def test_s12_flow_deleted_with_packets_queued(no_leaks):
    """S-12: the application closes its socket while two datagrams wait for the worker: the
    stack ends the flows, flowDeleteFn runs, the queued packets are freed without injection and
    no completion is called for them."""
    stack, driver, app, local, original, new = setup("v4")
    stack.send(app, b"one", (original, 53))
    stack.send(app, b"two", (original, 53))
    assert len(driver.packet_queue) == 2
    app.close()  # the endpoint's datagram flows end
    assert driver.log.flow_deletes == [DD_PROXY_FLOW_ORIGINAL]
    stack.run()
    assert driver.log.freed_without_injection == 2
    assert driver.log.injections == [] and driver.log.completions == [] and stack.wire == []
    assert stack.filter_engine.flows.delete_log[-1][3].deleted
    finish(stack, driver)


def test_s13_conditional_on_flow_skips_flows_without_context(no_leaks):
    """S-13: an unsolicited datagram from N:q matches the inbound DATAGRAM_DATA filter, but its
    flow (created inbound: no ALE_FLOW_ESTABLISHED filter matched) carries no context: the
    CONDITIONAL_ON_FLOW callout is not invoked and the filter is skipped as non-matching
    ([inferred]); the datagram arrives unchanged from N:q."""
    stack, driver, app, local, original, new = setup("v4")
    stack.receive(1, udp(new, local, 5353, 40000, b"unsolicited"))
    stack.run()
    [got] = app.received
    assert (got.data, got.remote_address, got.remote_port) == (b"unsolicited", new, 5353)
    assert driver.log.datagram_classifies == [] and driver.log.flow_contexts == []
    assert not [r for r in stack.filter_engine.trace if r.callout_id == driver.datagram_data_id]
    finish(stack, driver, app)


def test_s14_unload_removes_contexts_then_unregisters(no_leaks):
    """S-14: with live flow contexts FwpsCalloutUnregisterById0 fails with STATUS_DEVICE_BUSY
    (B20); unload removes each context with FwpsFlowRemoveContext0 (flowDeleteFn runs
    synchronously inside it, STATUS_SUCCESS), then unregistering succeeds."""
    stack, driver, app, local, original, new = setup("v4")
    stack.send(app, b"question", (original, 53))
    stack.run()
    assert len(driver.flow_list) == 2
    with stack:
        busy = wdk.FwpsCalloutUnregisterById0(driver.datagram_data_id)
    assert busy == NTSTATUS.STATUS_DEVICE_BUSY
    deletes_before = len(driver.log.flow_deletes)
    driver.remove_flow_contexts()
    assert driver.log.remove_context_statuses == [NTSTATUS.STATUS_SUCCESS] * 2
    assert len(driver.log.flow_deletes) == deletes_before + 2
    assert stack.filter_engine.outstanding()["flow_contexts"] == []
    app.close()
    finish(stack, driver)  # unregisters: asserts STATUS_SUCCESS


def test_ddproxy_clone_is_classified_as_self_when_a_filter_matches(no_leaks):
    """§2.6: even if a filter matched the proxied clone, the state check reports
    INJECTED_BY_SELF: with a broad outbound DATAGRAM_DATA filter on the same callout the clone
    is permitted, not re-absorbed."""
    stack, driver, app, local, original, new = setup("v4")
    engine = stack.filter_engine
    callout = engine.callouts.by_id(driver.datagram_data_id)
    engine.add_filter(
        driver.dd_layer, wdk.FWP_ACTION_CALLOUT_TERMINATING, callout_key=callout.key
    )  # matches everything of flows carrying the context
    stack.send(app, b"question", (original, 53))
    stack.run()
    self_ = int(FWPS_PACKET_INJECTED_BY_SELF)
    assert driver.log.datagram_classifies == [(OUT, 0, "absorb"), (OUT, self_, "permit-self")]
    stack.receive(1, udp(new, local, 5353, 40000, b"answer"))
    stack.run()
    assert driver.log.datagram_classifies[2:] == [(IN, 0, "absorb"), (IN, self_, "permit-self")]
    assert [d.data for d in app.received] == [b"answer"]
    finish(stack, driver, app)
