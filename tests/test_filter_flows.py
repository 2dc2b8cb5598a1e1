# ruff: noqa: F403, F405  (WDK constants are imported by name, as driver code does)
"""Flow contexts (FwpsFlowAssociateContext0 / FwpsFlowRemoveContext0 / flowDeleteFn /
FwpsFlowAbort0, CONDITIONAL_ON_FLOW) and pended ALE classifies (FwpsPendOperation0 /
FwpsCompleteOperation0), with the ddproxy (S-10, S-12 to S-14) and TLInspect (S-02, S-03, S-05)
engine-side steps."""

from __future__ import annotations

import pytest
from filterkit import meta, values

from wfpsim import wdk
from wfpsim.constants import *
from wfpsim.errors import ContractViolation
from wfpsim.filtering import CompletionHandle, FilterEngine
from wfpsim.fwps_types import FWP_VALUE0, FWPS_CALLOUT0
from wfpsim.status import NTSTATUS

FE = FWPS_LAYER_ALE_FLOW_ESTABLISHED_V4
DD = FWPS_LAYER_DATAGRAM_DATA_V4
FLOW = 0x1_0001


class Driver:
    """ddproxy's shape: a flow-established callout that associates a context for the
    DATAGRAM_DATA callout (CONDITIONAL_ON_FLOW, with a flowDeleteFn)."""

    def __init__(self, engine: FilterEngine):
        self.engine = engine
        self.deleted: list[tuple[int, int, int]] = []
        self.dd_calls: list[int] = []
        self.assoc_status: list[int] = []
        device = wdk.DEVICE_OBJECT(engine)
        _, self.fe_id = wdk.FwpsCalloutRegister0(device, FWPS_CALLOUT0("fe", 0, self.fe_classify))
        _, self.dd_id = wdk.FwpsCalloutRegister0(
            device,
            FWPS_CALLOUT0(
                "dd",
                FWP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW,
                self.dd_classify,
                None,
                self.flow_delete,
            ),
        )
        engine.add_filter(FE, FWP_ACTION_CALLOUT_TERMINATING, callout_key="fe", context=1)
        engine.add_filter(DD, FWP_ACTION_CALLOUT_TERMINATING, callout_key="dd")

    def fe_classify(self, v, m, d, flt, flow_context, out):
        status = wdk.FwpsFlowAssociateContext0(
            m.flowHandle, DD, self.dd_id, 0xC0DE0000 + flt.context
        )
        self.assoc_status.append(status)
        out.actionType = FWP_ACTION_PERMIT

    def dd_classify(self, v, m, d, flt, flow_context, out):
        self.dd_calls.append(flow_context)
        out.actionType = FWP_ACTION_BLOCK
        out.rights &= ~FWPS_RIGHT_ACTION_WRITE
        out.flags |= FWPS_CLASSIFY_OUT_FLAG_ABSORB

    def flow_delete(self, layer_id, callout_id, flow_context):
        self.deleted.append((layer_id, callout_id, flow_context))


def dd(e, flow=FLOW):
    return e.classify(DD, values(DD), meta(flow), None, flow_handle=flow)


def test_s10_context_from_flow_established_reaches_the_datagram_callout():
    e = FilterEngine()
    drv = Driver(e)
    assert e.classify(FE, values(FE), meta(FLOW), None).actionType == FWP_ACTION_PERMIT
    assert drv.assoc_status == [NTSTATUS.STATUS_SUCCESS]
    out = dd(e)
    assert (out.actionType, out.flags) == (FWP_ACTION_BLOCK, FWPS_CLASSIFY_OUT_FLAG_ABSORB)
    assert drv.dd_calls == [0xC0DE0001]
    assert e.flow_context(FLOW, DD, drv.dd_id) == 0xC0DE0001
    e.flow_end(FLOW)


def test_s13_conditional_on_flow_skips_flows_without_context():
    e = FilterEngine()
    drv = Driver(e)
    out = dd(e, flow=0x999)
    assert out.actionType == FWP_ACTION_NONE and drv.dd_calls == []  # skipped as non-matching
    out = e.classify(DD, values(DD), meta(), None)  # no flow at all
    assert out.actionType == FWP_ACTION_NONE and drv.dd_calls == []


def test_flow_handle_comes_from_metadata_when_not_passed():
    e = FilterEngine()
    drv = Driver(e)
    e.classify(FE, values(FE), meta(FLOW), None)
    e.classify(DD, values(DD), meta(FLOW), None)  # no flow_handle keyword
    assert drv.dd_calls == [0xC0DE0001]
    e.flow_end(FLOW)


def test_associate_codes():
    e = FilterEngine()
    drv = Driver(e)
    with e:
        assert (
            wdk.FwpsFlowAssociateContext0(FLOW, DD, drv.dd_id, 0)
            == NTSTATUS.STATUS_INVALID_PARAMETER
        )
        assert (
            wdk.FwpsFlowAssociateContext0(0, DD, drv.dd_id, 5) == NTSTATUS.STATUS_INVALID_PARAMETER
        )
        assert wdk.FwpsFlowAssociateContext0(FLOW, DD, 999, 5) == NTSTATUS.STATUS_INVALID_PARAMETER
        # a callout without a flowDeleteFn cannot own contexts
        assert (
            wdk.FwpsFlowAssociateContext0(FLOW, FE, drv.fe_id, 5)
            == NTSTATUS.STATUS_INVALID_PARAMETER
        )
        assert wdk.FwpsFlowAssociateContext0(FLOW, DD, drv.dd_id, 5) == NTSTATUS.STATUS_SUCCESS
        assert (
            wdk.FwpsFlowAssociateContext0(FLOW, DD, drv.dd_id, 6)
            == NTSTATUS.STATUS_OBJECT_NAME_EXISTS
        )
        # another layer for the same callout is another association
        assert wdk.FwpsFlowAssociateContext0(FLOW, FWPS_LAYER_DATAGRAM_DATA_V6, drv.dd_id, 7) == 0
        assert e.flow_context(FLOW, DD, drv.dd_id) == 5
        assert wdk.FwpsFlowRemoveContext0(FLOW, DD, drv.dd_id) == NTSTATUS.STATUS_SUCCESS
        assert drv.deleted == [(DD, drv.dd_id, 5)]
        assert wdk.FwpsFlowRemoveContext0(FLOW, DD, drv.dd_id) == NTSTATUS.STATUS_UNSUCCESSFUL
        assert wdk.FwpsFlowRemoveContext0(0x4242, DD, drv.dd_id) == NTSTATUS.STATUS_UNSUCCESSFUL
        assert wdk.FwpsFlowRemoveContext0(FLOW, FWPS_LAYER_DATAGRAM_DATA_V6, drv.dd_id) == 0


def test_several_callouts_keep_their_own_contexts_on_one_flow():
    e = FilterEngine()
    deleted = []
    ids = [
        e.register_callout(lambda *a: None, key=k, flow_delete_fn=lambda *a: deleted.append(a))
        for k in ("a", "b")
    ]
    assert e.flow_associate_context(FLOW, DD, ids[0], 1) == 0
    assert e.flow_associate_context(FLOW, DD, ids[1], 2) == 0
    assert (e.flow_context(FLOW, DD, ids[0]), e.flow_context(FLOW, DD, ids[1])) == (1, 2)
    e.flow_end(FLOW)
    assert sorted(deleted) == [(DD, ids[0], 1), (DD, ids[1], 2)]
    assert e.flow_context(FLOW, DD, ids[0]) == 0


def test_remove_during_a_classify_of_the_flow_is_pending_and_deletes_after_it():
    e = FilterEngine()
    log = []
    cid_box = []

    def classify(v, m, d, flt, ctx, out):
        log.append(("classify", ctx))
        log.append(("remove", wdk.FwpsFlowRemoveContext0(m.flowHandle, DD, cid_box[0])))
        log.append(("remove-again", wdk.FwpsFlowRemoveContext0(m.flowHandle, DD, cid_box[0])))
        out.actionType = FWP_ACTION_PERMIT

    cid_box.append(
        e.register_callout(classify, key="c", flow_delete_fn=lambda *a: log.append(("deleted", a)))
    )
    e.add_filter(DD, FWP_ACTION_CALLOUT_TERMINATING, callout_key="c")
    e.flow_associate_context(FLOW, DD, cid_box[0], 9)
    dd(e)
    assert log == [
        ("classify", 9),
        ("remove", NTSTATUS.STATUS_PENDING),
        ("remove-again", NTSTATUS.STATUS_UNSUCCESSFUL),
        ("deleted", (DD, cid_box[0], 9)),
    ]


def test_flow_end_inside_a_classify_defers_flow_delete_fn():
    e = FilterEngine()
    log = []

    def classify(v, m, d, flt, ctx, out):
        e.flow_deleted(m.flowHandle)  # the seam hook, e.g. the stack closes the flow meanwhile
        log.append("after-end")
        out.actionType = FWP_ACTION_PERMIT

    cid = e.register_callout(classify, key="c", flow_delete_fn=lambda *a: log.append(a))
    e.add_filter(DD, FWP_ACTION_CALLOUT_TERMINATING, callout_key="c")
    e.flow_associate_context(FLOW, DD, cid, 3)
    dd(e)
    assert log == ["after-end", (DD, cid, 3)]
    assert e.flows.associations() == []


def test_s12_flow_deleted_calls_flow_delete_fn_once():
    e = FilterEngine()
    drv = Driver(e)
    e.classify(FE, values(FE), meta(FLOW), None)
    e.flow_deleted(FLOW)
    e.flow_deleted(FLOW)
    assert drv.deleted == [(DD, drv.dd_id, 0xC0DE0001)]
    assert dd(e).actionType == FWP_ACTION_NONE  # no context any more


def test_s14_unload_remove_contexts_then_unregister_succeeds():
    e = FilterEngine()
    drv = Driver(e)
    for flow in (FLOW, FLOW + 1, FLOW + 2):
        e.classify(FE, values(FE), meta(flow), None)
    with e:
        assert wdk.FwpsCalloutUnregisterById0(drv.dd_id) == NTSTATUS.STATUS_DEVICE_BUSY
        for flow in (FLOW, FLOW + 1, FLOW + 2):
            assert wdk.FwpsFlowRemoveContext0(flow, DD, drv.dd_id) == NTSTATUS.STATUS_SUCCESS
        assert len(drv.deleted) == 3
        assert wdk.FwpsCalloutUnregisterById0(drv.dd_id) == NTSTATUS.STATUS_SUCCESS
        assert wdk.FwpsCalloutUnregisterById0(drv.fe_id) == NTSTATUS.STATUS_SUCCESS
    assert e.outstanding()["flow_contexts"] == []


def test_flow_abort():
    e = FilterEngine()
    drv = Driver(e)
    e.classify(FE, values(FE), meta(FLOW), None)
    with e:
        assert wdk.FwpsFlowAbort0(FLOW) == NTSTATUS.STATUS_SUCCESS
        assert wdk.FwpsFlowAbort0(0x5555) == NTSTATUS.STATUS_NOT_FOUND
    assert drv.deleted == [(DD, drv.dd_id, 0xC0DE0001)]


# ------------------------------------------------------------------------------------------------
# Pending (ALE)
# ------------------------------------------------------------------------------------------------

AC = FWPS_LAYER_ALE_AUTH_CONNECT_V4
RA = FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V4


class StackHandle:
    """The shape of the stack's AleCompletionHandle: complete(netBufferList) once."""

    def __init__(self, layer_id, on_complete):
        self.layer_id = layer_id
        self.on_complete = on_complete
        self.completed = 0

    def complete(self, netBufferList=None):  # noqa: N803
        self.completed += 1
        self.on_complete(netBufferList)


class Inspect:
    """TLInspect's connect classify (samples.md §1.4): pend on the initial authorisation, return
    the worker's decision on the re-authorisation."""

    def __init__(self, engine):
        self.pended = []
        self.decision = None
        self.statuses = []
        engine.register_callout(self.classify, key="inspect")
        engine.add_filter(AC, FWP_ACTION_CALLOUT_TERMINATING, callout_key="inspect")
        engine.add_filter(RA, FWP_ACTION_CALLOUT_TERMINATING, callout_key="inspect")

    def classify(self, v, m, d, flt, ctx, out):
        if not out.rights & FWPS_RIGHT_ACTION_WRITE:
            return
        flags = v.incomingValue[FWPS_FIELD_ALE_AUTH_CONNECT_V4_FLAGS].value.value or 0
        if flags & FWP_CONDITION_FLAG_IS_REAUTHORIZE:
            out.actionType = self.decision
            if self.decision == FWP_ACTION_BLOCK:
                out.rights &= ~FWPS_RIGHT_ACTION_WRITE
            return
        status, context = wdk.FwpsPendOperation0(m.completionHandle)
        self.statuses.append(status)
        if status != NTSTATUS.STATUS_SUCCESS:
            out.actionType = FWP_ACTION_BLOCK
            out.rights &= ~FWPS_RIGHT_ACTION_WRITE
            return
        self.pended.append(context)
        out.actionType = FWP_ACTION_BLOCK
        out.rights &= ~FWPS_RIGHT_ACTION_WRITE
        out.flags |= FWPS_CLASSIFY_OUT_FLAG_ABSORB


def connect_meta(handle):
    return meta(
        FLOW,
        completionHandle=handle,
        currentMetadataValues=FWPS_METADATA_FIELD_COMPLETION_HANDLE,
    )


@pytest.mark.parametrize("decision", [FWP_ACTION_PERMIT, FWP_ACTION_BLOCK])
def test_s02_s03_pend_then_complete_then_reauthorisation(decision):
    e = FilterEngine()
    drv = Inspect(e)
    reauth = []

    def on_complete(nbl):
        # what the stack does: a re-authorisation classify at the same layer
        v = values(AC, FLAGS=FWP_VALUE0.u32(FWP_CONDITION_FLAG_IS_REAUTHORIZE))
        handle2 = StackHandle(AC, lambda n: None)
        reauth.append(e.classify(AC, v, connect_meta(handle2), None))

    handle = StackHandle(AC, on_complete)
    out = e.classify(AC, values(AC, FLAGS=0), connect_meta(handle), None)
    assert (out.actionType, out.rights, out.flags) == (
        FWP_ACTION_BLOCK,
        0,
        FWPS_CLASSIFY_OUT_FLAG_ABSORB,
    )
    assert drv.statuses == [NTSTATUS.STATUS_SUCCESS]
    assert e.pends.is_pended(handle) and e.outstanding()["pended_operations"] == drv.pended
    # the worker decides, then completes
    drv.decision = decision
    with e:
        wdk.FwpsCompleteOperation0(drv.pended[0], None)
    assert handle.completed == 1 and reauth[0].actionType == decision
    assert e.outstanding()["pended_operations"] == []
    with e, pytest.raises(ContractViolation):
        wdk.FwpsCompleteOperation0(drv.pended[0], None)  # completed twice


def test_s05_recv_accept_completed_with_no_packet():
    e = FilterEngine()
    drv = Inspect(e)
    got = []
    handle = StackHandle(RA, got.append)
    e.classify(RA, values(RA), connect_meta(handle), None)
    with e:
        wdk.FwpsCompleteOperation0(drv.pended[0], None)
    assert got == [None] and handle.completed == 1


def test_pend_codes():
    e = FilterEngine()
    results = []
    box = {}

    def classify(v, m, d, flt, ctx, out):
        results.append(wdk.FwpsPendOperation0(None)[0])
        status, context = wdk.FwpsPendOperation0(m.completionHandle)
        results.append(status)
        if context is not None:
            box["ctx"] = context
            results.append(wdk.FwpsPendOperation0(m.completionHandle)[0])  # twice
        out.actionType = FWP_ACTION_BLOCK
        out.rights = 0
        out.flags = FWPS_CLASSIFY_OUT_FLAG_ABSORB

    e.register_callout(classify, key="c")
    for layer in (AC, DD):
        e.add_filter(layer, FWP_ACTION_CALLOUT_TERMINATING, callout_key="c")
    h = StackHandle(AC, lambda n: None)
    e.classify(AC, values(AC), connect_meta(h), None)
    assert results == [
        NTSTATUS.STATUS_FWP_NULL_POINTER,
        NTSTATUS.STATUS_SUCCESS,
        NTSTATUS.STATUS_FWP_CANNOT_PEND,
    ]
    results.clear()
    # re-authorisation cannot pend
    e.classify(
        AC,
        values(AC, FLAGS=FWP_CONDITION_FLAG_IS_REAUTHORIZE),
        connect_meta(StackHandle(AC, None)),
        None,
    )
    assert results == [NTSTATUS.STATUS_FWP_NULL_POINTER, NTSTATUS.STATUS_FWP_CANNOT_PEND]
    results.clear()
    # a layer that cannot pend (the handle is not a live ALE classify's)
    e.classify(DD, values(DD), connect_meta(StackHandle(DD, None)), None)
    assert results == [NTSTATUS.STATUS_FWP_NULL_POINTER, NTSTATUS.STATUS_FWP_CANNOT_PEND]
    # outside classify the handle is dead
    with e:
        assert wdk.FwpsPendOperation0(h)[0] == NTSTATUS.STATUS_FWP_CANNOT_PEND
        wdk.FwpsCompleteOperation0(box["ctx"])
    with e, pytest.raises(ContractViolation):
        wdk.FwpsCompleteOperation0("junk")


def test_engine_supplies_a_completion_handle_when_the_stack_sets_only_the_bit():
    e = FilterEngine()
    ctxs = []

    def classify(v, m, d, flt, ctx, out):
        ctxs.append(wdk.FwpsPendOperation0(m.completionHandle))
        out.actionType = FWP_ACTION_BLOCK  # forgets ABSORB

    e.register_callout(classify, key="c")
    e.add_filter(AC, FWP_ACTION_CALLOUT_TERMINATING, callout_key="c")
    m = connect_meta(None)
    e.classify(AC, values(AC), m, None)
    assert isinstance(m.completionHandle, CompletionHandle)
    ((status, ctx),) = ctxs
    assert status == NTSTATUS.STATUS_SUCCESS
    assert "BLOCK + ABSORB" in e.trace[-1].notes[-1]
    with e:
        wdk.FwpsCompleteOperation0(ctx, "clone")
    assert m.completionHandle.completed and m.completionHandle.net_buffer_list == "clone"


def test_make_completion_handle_for_callers_without_a_stack():
    e = FilterEngine()
    got = []
    h = e.make_completion_handle(RA, on_complete=got.append)
    e.register_callout(
        lambda v, m, d, f, c, o: got.append(wdk.FwpsPendOperation0(m.completionHandle)), key="c"
    )
    e.add_filter(RA, FWP_ACTION_CALLOUT_TERMINATING, callout_key="c")
    e.classify(RA, values(RA), connect_meta(h), None)
    status, ctx = got.pop()
    assert status == 0
    e.complete_operation(ctx, "nbl")
    assert got == ["nbl"]
    # a handle object without complete(): the operation is queued for the caller
    e2 = FilterEngine()
    e2.register_callout(
        lambda v, m, d, f, c, o: got.append(e2.pend_operation(m.completionHandle)), key="c"
    )
    e2.add_filter(RA, FWP_ACTION_CALLOUT_TERMINATING, callout_key="c")
    token = object()
    e2.classify(RA, values(RA), connect_meta(token), None)
    status, ctx = got.pop()
    e2.complete_operation(ctx, None)
    assert e2.pends.completed == [ctx] and ctx.handle is token


def test_flows_without_contexts_leave_no_state_behind():
    e = FilterEngine()
    Driver(e)
    for flow in range(1, 200):
        dd(e, flow=flow)
    assert e.flows.associations() == [] and not any(f in e.flows for f in range(1, 200))
