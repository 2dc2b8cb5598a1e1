"""samples.md §9.6 (API contracts) with callouts on the real filter engine: S-38 and S-39 from
a driver's classify / worker / completion. S-40 (destroy waits), S-41 and S-42 (clone outlives
the dereference; use after release) are in test_scenarios_inspect (S-09),
test_scenarios_stmedit (S-24) and test_scenarios_bugs (B2)."""

from __future__ import annotations

from inspect_driver import InspectDriver
from scenariokit import FAMILIES, assert_quiet, host, ip_packets, transport_of

from wfpsim import wdk
from wfpsim.constants import (
    AF_INET,
    FWP_ACTION_BLOCK,
    FWP_ACTION_CALLOUT_TERMINATING,
    FWP_ACTION_PERMIT,
    FWPS_CLASSIFY_OUT_FLAG_ABSORB,
    FWPS_INJECTION_TYPE_TRANSPORT,
    FWPS_LAYER_OUTBOUND_TRANSPORT_V4,
    FWPS_RIGHT_ACTION_WRITE,
    IPPROTO_UDP,
)
from wfpsim.stack import ip as IP
from wfpsim.status import NTSTATUS

S = NTSTATUS
AF, LOCAL, PEER, _ = FAMILIES["v4"]


class PacedSender:
    """Absorbs outbound datagrams and re-injects them one at a time: the next injection is made
    from the completion of the previous one (a serialised injector)."""

    def __init__(self, stack):
        self.stack = stack
        with stack:
            _, self.h = wdk.FwpsInjectionHandleCreate0(AF_INET, FWPS_INJECTION_TYPE_TRANSPORT)
        self.queue = []
        self.statuses = []  # synchronous statuses of the inject calls
        self.completions = []
        self.in_flight = False
        engine = stack.filter_engine
        engine.register_callout(self.classify, key="paced")
        engine.add_filter(
            FWPS_LAYER_OUTBOUND_TRANSPORT_V4, FWP_ACTION_CALLOUT_TERMINATING, callout_key="paced"
        )

    def classify(self, values, meta, nbl, flt, ctx, out):
        if wdk.FwpsQueryPacketInjectionState0(self.h, nbl)[0]:
            out.actionType = FWP_ACTION_PERMIT
            return
        wdk.FwpsReferenceNetBufferList0(nbl, True)
        self.queue.append((nbl, meta.transportEndpointHandle))
        out.actionType = FWP_ACTION_BLOCK
        out.rights &= ~FWPS_RIGHT_ACTION_WRITE
        out.flags |= FWPS_CLASSIFY_OUT_FLAG_ABSORB
        if not self.in_flight:
            self.stack.queue_dpc(self.send_next)

    def send_next(self):
        if not self.queue:
            return
        nbl, endpoint = self.queue.pop(0)
        _, clone = wdk.FwpsAllocateCloneNetBufferList0(nbl, None, None, 0)
        args = wdk.FWPS_TRANSPORT_SEND_PARAMS(remoteAddress=IP.addr_bytes(PEER))
        status = wdk.FwpsInjectTransportSendAsync(
            self.h, None, endpoint, 0, args, AF_INET, 1, clone, self.done, nbl
        )
        self.statuses.append(status)
        if status != S.STATUS_SUCCESS:  # R6: no completion will come; free now
            wdk.FwpsFreeCloneNetBufferList0(clone, 0)
            wdk.FwpsDereferenceNetBufferList0(nbl, False)
            self.send_next()
            return
        self.in_flight = True

    def done(self, original, clone, dispatch_level):
        self.completions.append(clone.Status)
        wdk.FwpsFreeCloneNetBufferList0(clone, 0)
        wdk.FwpsDereferenceNetBufferList0(original, False)
        self.in_flight = False
        self.send_next()


def test_s38_inject_on_a_closing_handle_from_a_completion(no_leaks):
    """S-38: the driver destroys its handle with one injection in flight; that injection's
    completion (run by FwpsInjectionHandleDestroy0) makes the next injection, which fails with
    STATUS_FWP_INJECT_HANDLE_CLOSING (0xC0220101): its completion is never invoked and the
    driver frees the clone itself."""
    stack = host()
    app = stack.open_endpoint(AF, IPPROTO_UDP, LOCAL, 5000)
    paced = PacedSender(stack)
    stack.send(app, b"first", (PEER, 53))
    stack.send(app, b"second", (PEER, 53))
    stack.step()  # the worker: "first" injected, "second" queued behind it
    assert paced.statuses == [S.STATUS_SUCCESS] and paced.in_flight
    assert wdk.FwpsInjectionHandleDestroy0(paced.h) == S.STATUS_SUCCESS
    assert paced.statuses == [S.STATUS_SUCCESS, S.STATUS_FWP_INJECT_HANDLE_CLOSING]
    assert paced.statuses[1] == 0xC0220101
    assert paced.completions == [S.STATUS_SUCCESS]  # only the first ever completes
    stack.run()
    assert [transport_of(p)[2] for p in ip_packets(stack)] == [b"first"]
    app.close()
    stack.run()
    assert_quiet(stack)


def test_s39_endpoint_closed_before_the_worker_sends(no_leaks):
    """S-39 with TLInspect: the socket closes while its datagram waits for the worker; the
    worker's FwpsInjectTransportSendAsync succeeds synchronously and the completion carries a
    failure in NBL->Status ([emu] STATUS_INVALID_HANDLE); TLInspect frees everything there."""
    stack = host()
    driver = InspectDriver(PEER).register(stack)
    app = stack.open_endpoint(AF, IPPROTO_UDP, LOCAL, 5000)
    stack.send(app, b"warm-up", (PEER, 53))
    stack.run()
    stack.send(app, b"orphan", (PEER, 53))
    app.close()
    stack.run()
    assert driver.log.injections[-1] == ("FwpsInjectTransportSendAsync", S.STATUS_SUCCESS)
    assert driver.log.completions == [S.STATUS_SUCCESS, S.STATUS_INVALID_HANDLE]
    assert [transport_of(p)[2] for p in ip_packets(stack)] == [b"warm-up"]
    driver.unload()
    assert_quiet(stack)
