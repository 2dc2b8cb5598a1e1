# ruff: noqa: F403, F405  (WDK constants are imported by name, as driver code does)
"""Callout registration and unregistration (documented codes), the FN0 / FN1 / FN2 argument
lists, notifyFn (ADD_FILTER veto, DELETE_FILTER, registration-time notifications), the WDK face
and the Fwpm* management face, engine isolation."""

from __future__ import annotations

import uuid

import pytest
from filterkit import meta, values

from wfpsim import wdk
from wfpsim.constants import *
from wfpsim.errors import WfpError
from wfpsim.filtering import ClassifyContext, FilterEngine, current_engine, default_engine
from wfpsim.fwps_types import (
    FWP_VALUE0,
    FWPM_ACTION0,
    FWPM_CALLOUT0,
    FWPM_DISPLAY_DATA0,
    FWPM_FILTER0,
    FWPM_FILTER_CONDITION0,
    FWPM_SESSION0,
    FWPM_SUBLAYER0,
    FWPS_CALLOUT0,
    FWPS_CALLOUT1,
    FWPS_CALLOUT2,
)
from wfpsim.status import NTSTATUS

L = FWPS_LAYER_OUTBOUND_TRANSPORT_V4
KEY = uuid.UUID("a0a0a0a0-0000-0000-0000-000000000001")
KEY2 = uuid.UUID("a0a0a0a0-0000-0000-0000-000000000002")


def classify_permit(*args):
    args[-1].actionType = FWP_ACTION_PERMIT


def dev(engine=None):
    return wdk.DEVICE_OBJECT(engine or FilterEngine())


# ------------------------------------------------------------------------------------------------
# FwpsCalloutRegister0/1/2
# ------------------------------------------------------------------------------------------------


def test_register_returns_status_and_id_and_duplicate_key_is_already_exists():
    d = dev()
    status, cid = wdk.FwpsCalloutRegister0(d, FWPS_CALLOUT0(KEY, 0, classify_permit))
    assert (status, cid) == (NTSTATUS.STATUS_SUCCESS, 1)
    status, cid2 = wdk.FwpsCalloutRegister0(d, FWPS_CALLOUT0(KEY, 0, classify_permit))
    assert (status, cid2) == (NTSTATUS.STATUS_FWP_ALREADY_EXISTS, 0)
    status, cid3 = wdk.FwpsCalloutRegister1(d, FWPS_CALLOUT1(KEY2, 0, classify_permit))
    assert (status, cid3) == (NTSTATUS.STATUS_SUCCESS, 2)


@pytest.mark.parametrize(
    "device,callout,status",
    [
        (None, FWPS_CALLOUT0(KEY, 0, classify_permit), NTSTATUS.STATUS_INVALID_PARAMETER),
        ("dev", None, NTSTATUS.STATUS_FWP_NULL_POINTER),
        ("dev", FWPS_CALLOUT0(None, 0, classify_permit), NTSTATUS.STATUS_INVALID_PARAMETER),
        ("dev", FWPS_CALLOUT0(KEY, 0, None), NTSTATUS.STATUS_INVALID_PARAMETER),
        (
            "dev",
            FWPS_CALLOUT0(KEY, 0, classify_permit, notifyFn=5),
            NTSTATUS.STATUS_INVALID_PARAMETER,
        ),
        ("dev", FWPS_CALLOUT0(KEY, 0x8000, classify_permit), NTSTATUS.STATUS_FWP_INVALID_FLAGS),
        ("dev", FWPS_CALLOUT0([1], 0, classify_permit), NTSTATUS.STATUS_INVALID_PARAMETER),
    ],
)
def test_register_bad_arguments(device, callout, status):
    d = dev() if device == "dev" else device
    assert wdk.FwpsCalloutRegister0(d, callout) == (status, 0)


def test_register_versions_select_the_classify_argument_list():
    e = FilterEngine()
    got = {}

    def fn0(inFixedValues, inMetaValues, layerData, filter, flowContext, classifyOut):  # noqa: N803
        got[0] = (layerData, filter.filterId, flowContext)
        classifyOut.actionType = FWP_ACTION_CONTINUE

    def fn1(
        inFixedValues, inMetaValues, layerData, classifyContext, filter, flowContext, classifyOut
    ):  # noqa: N803
        got[1] = (layerData, classifyContext, filter.filterId, flowContext)
        classifyOut.actionType = FWP_ACTION_CONTINUE

    def fn2(
        inFixedValues, inMetaValues, layerData, classifyContext, filter, flowContext, classifyOut
    ):  # noqa: N803
        got[2] = (layerData, classifyContext, filter.filterId, flowContext)
        classifyOut.actionType = FWP_ACTION_CONTINUE

    d = wdk.DEVICE_OBJECT(e)
    for i, (reg, cls, fn) in enumerate(
        [
            (wdk.FwpsCalloutRegister0, FWPS_CALLOUT0, fn0),
            (wdk.FwpsCalloutRegister1, FWPS_CALLOUT1, fn1),
            (wdk.FwpsCalloutRegister2, FWPS_CALLOUT2, fn2),
        ]
    ):
        status, _ = reg(d, cls(f"k{i}", 0, fn))
        assert status == NTSTATUS.STATUS_SUCCESS
        e.add_filter(L, FWP_ACTION_CALLOUT_UNKNOWN, callout_key=f"k{i}", weight=10 - i)
    layer_data = object()
    e.classify(L, values(L), meta(), layer_data)
    assert got[0] == (layer_data, 1, 0)
    for v in (1, 2):
        assert got[v][0] is layer_data and isinstance(got[v][1], ClassifyContext)
        assert got[v][1].layer_id == L and got[v][2] == v + 1


def test_register_rejects_unknown_version_in_the_pythonic_face():
    with pytest.raises(WfpError) as err:
        FilterEngine().register_callout(classify_permit, version=3)
    assert err.value.status == NTSTATUS.STATUS_INVALID_PARAMETER


# ------------------------------------------------------------------------------------------------
# FwpsCalloutUnregisterById0 / ByKey0
# ------------------------------------------------------------------------------------------------


def test_unregister_codes():
    e = FilterEngine()
    with e:
        status, cid = wdk.FwpsCalloutRegister0(
            wdk.DEVICE_OBJECT(e), FWPS_CALLOUT0(KEY, 0, classify_permit, None, lambda *a: None)
        )
        assert wdk.FwpsCalloutUnregisterById0(999) == NTSTATUS.STATUS_FWP_CALLOUT_NOT_FOUND
        assert wdk.FwpsCalloutUnregisterByKey0(KEY2) == NTSTATUS.STATUS_FWP_CALLOUT_NOT_FOUND
        assert wdk.FwpsCalloutUnregisterByKey0(None) == NTSTATUS.STATUS_FWP_NULL_POINTER
        # a flow context makes it busy (R11 / B20)
        assert wdk.FwpsFlowAssociateContext0(0x77, L, cid, 0x1234) == NTSTATUS.STATUS_SUCCESS
        assert wdk.FwpsCalloutUnregisterById0(cid) == NTSTATUS.STATUS_DEVICE_BUSY
        assert wdk.FwpsCalloutUnregisterByKey0(KEY) == NTSTATUS.STATUS_DEVICE_BUSY
        assert wdk.FwpsFlowRemoveContext0(0x77, L, cid) == NTSTATUS.STATUS_SUCCESS
        # succeeds while filters still reference it
        e.add_filter(L, FWP_ACTION_CALLOUT_TERMINATING, callout_key=KEY)
        assert wdk.FwpsCalloutUnregisterByKey0(KEY) == NTSTATUS.STATUS_SUCCESS
        assert wdk.FwpsCalloutUnregisterById0(cid) == NTSTATUS.STATUS_FWP_CALLOUT_NOT_FOUND
        # re-registering the key gets the same run-time id back
        assert wdk.FwpsCalloutRegister0(
            wdk.DEVICE_OBJECT(e), FWPS_CALLOUT0(KEY, 0, classify_permit)
        ) == (
            NTSTATUS.STATUS_SUCCESS,
            cid,
        )


def test_unregister_from_its_own_classify_or_registration_is_in_use():
    e = FilterEngine()
    results = []

    def classify(v, m, d, f, c, out):
        results.append(wdk.FwpsCalloutUnregisterByKey0("self"))
        out.actionType = FWP_ACTION_PERMIT

    def notify(kind, key, flt):
        results.append(("notify", kind, wdk.FwpsCalloutUnregisterByKey0("self")))
        status, _ = wdk.FwpsCalloutRegister0(
            wdk.DEVICE_OBJECT(e), FWPS_CALLOUT0("self", 0, classify)
        )
        results.append(("re-register", status))
        return NTSTATUS.STATUS_SUCCESS

    e.add_filter(L, FWP_ACTION_CALLOUT_TERMINATING, callout_key="self")
    e.register_callout(classify, key="self", notify_fn=notify)
    assert results == [
        ("notify", FWPS_CALLOUT_NOTIFY_ADD_FILTER, NTSTATUS.STATUS_FWP_IN_USE),
        ("re-register", NTSTATUS.STATUS_FWP_IN_USE),
    ]
    results.clear()
    e.classify(L, values(L), meta(), None)
    assert results == [NTSTATUS.STATUS_FWP_IN_USE]
    e.unregister_callout(key="self")


# ------------------------------------------------------------------------------------------------
# notifyFn
# ------------------------------------------------------------------------------------------------


def test_notify_add_and_delete_and_the_filter_context_it_writes_persists():
    e = FilterEngine()
    log = []
    seen_context = []

    def notify(kind, key, flt):
        log.append((kind, key, flt.filterId))
        if kind == FWPS_CALLOUT_NOTIFY_ADD_FILTER:
            flt.context = 0xC0FFEE
        return NTSTATUS.STATUS_SUCCESS

    def classify(v, m, d, flt, ctx, out):
        seen_context.append(flt.context)
        out.actionType = FWP_ACTION_PERMIT

    e.register_callout(classify, key="c", notify_fn=notify)
    fid = e.add_filter(L, FWP_ACTION_CALLOUT_TERMINATING, callout_key="c", key="f1")
    e.classify(L, values(L), meta(), None)
    e.delete_filter(fid)
    assert log == [
        (FWPS_CALLOUT_NOTIFY_ADD_FILTER, "f1", fid),
        (FWPS_CALLOUT_NOTIFY_DELETE_FILTER, "f1", fid),
    ]
    assert seen_context == [0xC0FFEE]


def test_notify_error_on_add_vetoes_the_filter():
    e = FilterEngine()
    e.register_callout(
        classify_permit, key="c", notify_fn=lambda k, key, f: NTSTATUS.STATUS_INSUFFICIENT_RESOURCES
    )
    with pytest.raises(WfpError) as err:
        e.add_filter(L, FWP_ACTION_CALLOUT_TERMINATING, callout_key="c")
    assert err.value.status == NTSTATUS.STATUS_INSUFFICIENT_RESOURCES
    assert e.filters() == []
    assert e.classify(L, values(L), meta(), None).actionType == FWP_ACTION_NONE
    # informational / success statuses do not veto; None counts as STATUS_SUCCESS
    e2 = FilterEngine()
    e2.register_callout(
        classify_permit, key="c", notify_fn=lambda k, key, f: NTSTATUS.STATUS_OBJECT_NAME_EXISTS
    )
    e2.add_filter(L, FWP_ACTION_CALLOUT_TERMINATING, callout_key="c")
    e2.register_callout(classify_permit, key="d", notify_fn=lambda k, key, f: None)
    e2.add_filter(L, FWP_ACTION_CALLOUT_TERMINATING, callout_key="d")
    assert len(e2.filters()) == 2


def test_registration_notifies_filters_that_already_reference_the_key():
    e = FilterEngine()
    f1 = e.add_filter(L, FWP_ACTION_CALLOUT_TERMINATING, callout_key="late", key="a")
    e.add_filter(L, FWP_ACTION_CALLOUT_TERMINATING, callout_key="other")
    f3 = e.add_filter(
        FWPS_LAYER_INBOUND_TRANSPORT_V4, FWP_ACTION_CALLOUT_TERMINATING, callout_key="late", key="b"
    )
    log = []
    cid = e.register_callout(
        classify_permit,
        key="late",
        notify_fn=lambda k, key, f: log.append((k, key, f.filterId, f.action.calloutId)),
    )
    assert log == [
        (FWPS_CALLOUT_NOTIFY_ADD_FILTER, "a", f1, cid),
        (FWPS_CALLOUT_NOTIFY_ADD_FILTER, "b", f3, cid),
    ]


def test_notify_runs_with_its_engine_current():
    e = FilterEngine()
    seen = []
    e.register_callout(classify_permit, key="c", notify_fn=lambda *a: seen.append(current_engine()))
    e.add_filter(L, FWP_ACTION_CALLOUT_TERMINATING, callout_key="c")
    assert seen == [e] and current_engine() is default_engine()


# ------------------------------------------------------------------------------------------------
# Engines are independent
# ------------------------------------------------------------------------------------------------


def test_engines_do_not_share_callouts_filters_or_ids():
    a, b = FilterEngine("a"), FilterEngine("b")
    assert wdk.FwpsCalloutRegister0(
        wdk.DEVICE_OBJECT(a), FWPS_CALLOUT0(KEY, 0, classify_permit)
    ) == (0, 1)
    assert wdk.FwpsCalloutRegister0(
        wdk.DEVICE_OBJECT(b), FWPS_CALLOUT0(KEY, 0, classify_permit)
    ) == (0, 1)
    a.add_filter(L, FWP_ACTION_CALLOUT_TERMINATING, callout_key=KEY)
    assert a.classify(L, values(L), meta(), None).actionType == FWP_ACTION_PERMIT
    assert b.classify(L, values(L), meta(), None).actionType == FWP_ACTION_NONE
    with b:
        assert current_engine() is b
        assert wdk.FwpsCalloutUnregisterById0(1) == NTSTATUS.STATUS_SUCCESS
    assert a.callouts.by_id(1) is not None and b.callouts.by_id(1) is None


def test_classify_makes_its_engine_current_for_wdk_calls():
    a, b = FilterEngine("a"), FilterEngine("b")
    seen = []

    def classify(v, m, d, f, c, out):
        seen.append(current_engine())
        out.actionType = FWP_ACTION_PERMIT

    for e in (a, b):
        e.register_callout(classify, key="c")
        e.add_filter(L, FWP_ACTION_CALLOUT_TERMINATING, callout_key="c")
        e.classify(L, values(L), meta(), None)
    assert seen == [a, b]


def test_current_callout_hook_names_the_running_callout():
    e = FilterEngine()
    seen = []

    def inspect_classify(v, m, d, f, c, out):
        seen.append(e.current_callout())
        out.actionType = FWP_ACTION_PERMIT

    e.register_callout(inspect_classify, key="c")
    fid = e.add_filter(L, FWP_ACTION_CALLOUT_TERMINATING, callout_key="c")
    assert e.current_callout() is None
    e.classify(L, values(L), meta(), None)
    assert seen == [
        f"callout 1 'test_current_callout_hook_names_the_running_callout.<locals>.inspect_classify' (filter {fid}) at FWPS_LAYER_OUTBOUND_TRANSPORT_V4"
    ]
    assert e.knows_callout(1, L) is True
    assert e.knows_callout(1, FWPS_LAYER_STREAM_V4) is False
    assert e.knows_callout(9, L) is False


def test_classify_exception_propagates_and_leaves_the_engine_usable():
    e = FilterEngine()

    def boom(*a):
        raise RuntimeError("bugcheck")

    cid = e.register_callout(boom, key="c")
    e.add_filter(L, FWP_ACTION_CALLOUT_TERMINATING, callout_key="c")
    with pytest.raises(RuntimeError):
        e.classify(L, values(L), meta(flow=5), None)
    assert e.callouts.by_id(cid).active == 0 and e.current_callout() is None
    e.unregister_callout(cid)  # not "in use" any more
    assert current_engine() is default_engine()


# ------------------------------------------------------------------------------------------------
# The Fwpm* face
# ------------------------------------------------------------------------------------------------


def test_fwpm_face_end_to_end_with_a_dynamic_session():
    e = FilterEngine()
    status, h = wdk.FwpmEngineOpen0(
        None, 0, None, FWPM_SESSION0(flags=wdk.FWPM_SESSION_FLAG_DYNAMIC), engine=e
    )
    assert status == NTSTATUS.STATUS_SUCCESS
    assert wdk.FwpmTransactionBegin0(h, 0) == NTSTATUS.STATUS_SUCCESS
    assert (
        wdk.FwpmSubLayerAdd0(h, FWPM_SUBLAYER0("sub", FWPM_DISPLAY_DATA0("sample"), weight=0)) == 0
    )
    status, cid = wdk.FwpmCalloutAdd0(h, FWPM_CALLOUT0(KEY, applicableLayer=L))
    assert status == NTSTATUS.STATUS_SUCCESS and cid == 1
    assert (
        wdk.FwpmCalloutAdd0(h, FWPM_CALLOUT0(KEY, applicableLayer=L))[0]
        == NTSTATUS.STATUS_FWP_ALREADY_EXISTS
    )
    cond = FWPM_FILTER_CONDITION0(
        FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_ADDRESS,
        FWP_MATCH_EQUAL,
        wdk.FWP_CONDITION_VALUE0(FWP_UINT32, 0x0A000001),
    )
    flt = FWPM_FILTER0(
        filterKey=KEY2,
        displayData=FWPM_DISPLAY_DATA0("inspect"),
        layerKey=L,
        subLayerKey="sub",
        weight=FWP_VALUE0(),
        numFilterConditions=1,
        filterCondition=[cond],
        action=FWPM_ACTION0(FWP_ACTION_CALLOUT_TERMINATING, KEY),
        rawContext=42,
        flags=FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT,
    )
    status, fid = wdk.FwpmFilterAdd0(h, flt)
    assert status == NTSTATUS.STATUS_SUCCESS and flt.filterId == fid
    assert flt.effectiveWeight.type == FWP_UINT64
    assert wdk.FwpmTransactionCommit0(h) == NTSTATUS.STATUS_SUCCESS
    # the callout registers with the same run-time id FwpmCalloutAdd0 reported
    got = []

    def classify(v, m, d, f, c, out):
        got.append((f.context, f.flags, f.subLayerWeight, f.action.calloutId))
        out.actionType = FWP_ACTION_BLOCK
        out.rights = 0

    assert wdk.FwpsCalloutRegister0(wdk.DEVICE_OBJECT(e), FWPS_CALLOUT0(KEY, 0, classify)) == (
        0,
        cid,
    )
    out = e.classify(L, values(L, IP_REMOTE_ADDRESS=FWP_VALUE0.u32(0x0A000001)), meta(), None)
    assert out.actionType == FWP_ACTION_BLOCK
    assert got == [(42, FWPS_FILTER_FLAG_CLEAR_ACTION_RIGHT, 0, cid)]
    # closing the dynamic session removes the sublayer and the filter
    assert wdk.FwpmEngineClose0(h) == NTSTATUS.STATUS_SUCCESS
    assert e.filters() == [] and "sub" not in e.table.sublayers and KEY not in e.fwpm_callouts
    assert wdk.FwpmEngineClose0(h) == NTSTATUS.STATUS_INVALID_HANDLE
    assert wdk.FwpsCalloutUnregisterById0 is not None
    with e:
        assert wdk.FwpsCalloutUnregisterById0(cid) == NTSTATUS.STATUS_SUCCESS


def test_fwpm_filter_add_errors():
    e = FilterEngine()
    _, h = wdk.FwpmEngineOpen0(engine=e)
    wdk.FwpmCalloutAdd0(h, FWPM_CALLOUT0("c", applicableLayer=FWPS_LAYER_INBOUND_TRANSPORT_V4))

    def f(**kw):
        base = dict(layerKey=L, action=FWPM_ACTION0(FWP_ACTION_PERMIT))
        base.update(kw)
        return wdk.FwpmFilterAdd0(h, FWPM_FILTER0(**base))[0]

    assert (
        f(action=FWPM_ACTION0(FWP_ACTION_CALLOUT_TERMINATING, "nope"))
        == NTSTATUS.STATUS_FWP_CALLOUT_NOT_FOUND
    )
    assert (
        f(action=FWPM_ACTION0(FWP_ACTION_CALLOUT_TERMINATING, "c"))
        == NTSTATUS.STATUS_FWP_INCOMPATIBLE_LAYER
    )
    assert f(subLayerKey="nope") == NTSTATUS.STATUS_FWP_SUBLAYER_NOT_FOUND
    assert f(layerKey=FWPS_BUILTIN_LAYER_MAX) == NTSTATUS.STATUS_FWP_LAYER_NOT_FOUND
    assert f(weight=FWP_VALUE0.u8(16)) == NTSTATUS.STATUS_FWP_INVALID_WEIGHT
    assert f(flags=0x100) == NTSTATUS.STATUS_FWP_INVALID_FLAGS
    assert f(numFilterConditions=2) == NTSTATUS.STATUS_INVALID_PARAMETER
    assert f(action=FWPM_ACTION0(FWP_ACTION_CONTINUE)) == NTSTATUS.STATUS_FWP_INVALID_ACTION_TYPE
    assert f(filterKey="k") == NTSTATUS.STATUS_SUCCESS
    assert f(filterKey="k") == NTSTATUS.STATUS_FWP_ALREADY_EXISTS
    assert wdk.FwpmFilterAdd0(h, None) == (NTSTATUS.STATUS_FWP_NULL_POINTER, 0)
    assert wdk.FwpmFilterDeleteByKey0(h, "k") == NTSTATUS.STATUS_SUCCESS
    assert wdk.FwpmFilterDeleteByKey0(h, "k") == NTSTATUS.STATUS_FWP_FILTER_NOT_FOUND
    assert wdk.FwpmFilterDeleteById0(h, 999) == NTSTATUS.STATUS_FWP_FILTER_NOT_FOUND
    assert wdk.FwpmFilterAdd0("not a handle", FWPM_FILTER0()) == (NTSTATUS.STATUS_INVALID_HANDLE, 0)
    # a static filter with PERMIT_IF_CALLOUT_UNREGISTERED maps to the FWPS flag
    wdk.FwpmCalloutAdd0(h, FWPM_CALLOUT0("d", applicableLayer=L))
    status, fid = wdk.FwpmFilterAdd0(
        h,
        FWPM_FILTER0(
            layerKey=L,
            action=FWPM_ACTION0(FWP_ACTION_CALLOUT_TERMINATING, "d"),
            flags=FWPM_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED,
        ),
    )
    assert status == 0 and e.filter(fid).flags == FWPS_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED
    assert wdk.FwpmCalloutDeleteByKey0(h, "d") == NTSTATUS.STATUS_FWP_IN_USE
    assert wdk.FwpmFilterDeleteById0(h, fid) == NTSTATUS.STATUS_SUCCESS
    assert wdk.FwpmCalloutDeleteById0(h, e.callouts.id_for_key("d")) == NTSTATUS.STATUS_SUCCESS
    assert wdk.FwpmCalloutDeleteByKey0(h, "d") == NTSTATUS.STATUS_FWP_CALLOUT_NOT_FOUND


def test_fwpm_transaction_abort_rolls_back():
    e = FilterEngine()
    _, h = wdk.FwpmEngineOpen0(engine=e)
    assert wdk.FwpmTransactionCommit0(h) == NTSTATUS.STATUS_INVALID_DEVICE_STATE
    wdk.FwpmSubLayerAdd0(h, FWPM_SUBLAYER0("kept", weight=1))
    assert wdk.FwpmTransactionBegin0(h) == NTSTATUS.STATUS_SUCCESS
    assert wdk.FwpmTransactionBegin0(h) == NTSTATUS.STATUS_INVALID_DEVICE_STATE
    wdk.FwpmSubLayerAdd0(h, FWPM_SUBLAYER0("gone", weight=2))
    wdk.FwpmFilterAdd0(
        h, FWPM_FILTER0(layerKey=L, subLayerKey="gone", action=FWPM_ACTION0(FWP_ACTION_BLOCK))
    )
    assert (
        wdk.FwpmSubLayerAdd0(h, FWPM_SUBLAYER0("kept", weight=1))
        == NTSTATUS.STATUS_FWP_ALREADY_EXISTS
    )
    assert wdk.FwpmTransactionAbort0(h) == NTSTATUS.STATUS_SUCCESS
    assert e.filters() == [] and "gone" not in e.table.sublayers and "kept" in e.table.sublayers
    assert wdk.FwpmTransactionAbort0(h) == NTSTATUS.STATUS_INVALID_DEVICE_STATE
    assert wdk.FwpmEngineClose0(h) == 0
    assert "kept" in e.table.sublayers  # not a dynamic session
    assert wdk.FwpmSubLayerDeleteByKey0(h, "kept") == NTSTATUS.STATUS_INVALID_HANDLE


def test_wdk_module_exports_the_new_names():
    for name in (
        "FwpsCalloutRegister0",
        "FwpsCalloutRegister1",
        "FwpsCalloutRegister2",
        "FwpsCalloutUnregisterById0",
        "FwpsCalloutUnregisterByKey0",
        "FwpsFlowAssociateContext0",
        "FwpsFlowRemoveContext0",
        "FwpsFlowAbort0",
        "FwpsPendOperation0",
        "FwpsCompleteOperation0",
        "FwpsStreamContinue0",
        "FwpsCopyStreamDataToBuffer0",
        "FwpsCloneStreamData0",
        "FwpsDiscardClonedStreamData0",
        "FwpmFilterAdd0",
        "FWPS_CALLOUT0",
        "FWPS_STREAM_CALLOUT_IO_PACKET0",
        "FWP_MATCH_EQUAL",
        "FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT",
    ):
        assert hasattr(wdk, name), name


def test_notify_fn_may_add_filters_itself():
    e = FilterEngine()
    added = []

    def notify(kind, key, flt):
        if kind == FWPS_CALLOUT_NOTIFY_ADD_FILTER and not added:
            added.append(e.add_filter(L, FWP_ACTION_PERMIT, key="inner"))
        return NTSTATUS.STATUS_SUCCESS

    e.register_callout(classify_permit, key="c", notify_fn=notify)
    outer = e.add_filter(L, FWP_ACTION_CALLOUT_TERMINATING, callout_key="c", key="outer")
    assert added and added[0] != outer
    assert sorted(f.filter_id for f in e.filters()) == sorted([outer, added[0]])


def test_version_independent_names():
    assert wdk.FwpsCalloutRegister is wdk.FwpsCalloutRegister2
    assert wdk.FWPS_CALLOUT is FWPS_CALLOUT2
    assert wdk.FwpsFlowAssociateContext is wdk.FwpsFlowAssociateContext0
    assert wdk.FwpsCloneStreamData is wdk.FwpsCloneStreamData0
    assert wdk.FwpmFilterAdd is wdk.FwpmFilterAdd0
