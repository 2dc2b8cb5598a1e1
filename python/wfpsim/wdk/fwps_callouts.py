"""The WDK names of the filter engine: callouts, flow contexts, pending, stream data helpers, and
the management (Fwpm*) calls drivers make to add sublayers, callouts and filters.

Conventions (ARCHITECTURE.md): statuses are `NTSTATUS` members; out-parameters come back in a
tuple after the return value (``status, calloutId = FwpsCalloutRegister0(device, callout)``);
NULL is None. Errors the C function reports as a status are returned, never raised; misuse that
Driver Verifier would stop on (completing a context twice, a buffer shorter than bytesToCopy,
freeing a chain that is not a clone chain) raises.

Which engine: a ``deviceObject`` with an ``engine`` attribute (:class:`DEVICE_OBJECT`) names its
engine; an engine handle from :func:`FwpmEngineOpen0` names its engine; every other call acts on
:func:`wfpsim.filtering.current_engine` — the engine running the callback that makes the call,
or the one entered with ``with engine:``, else the process's default engine.

Simulator conventions of the Fwpm* face (the spec lists no FWPM GUIDs): ``layerKey`` /
``applicableLayer`` are run-time layer ids (FWPS_LAYER_*), ``fieldKey`` is the FWPS_FIELD_*
index; other keys are any hashable value (``uuid.UUID`` in ported code).
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from wfpsim.constants import (
    FWP_ACTION_FLAG_CALLOUT,
    FWP_UINT64,
    FWPM_FILTER_FLAG_BOOTTIME,
    FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT,
    FWPM_FILTER_FLAG_DISABLED,
    FWPM_FILTER_FLAG_HAS_PROVIDER_CONTEXT,
    FWPM_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED,
    FWPM_FILTER_FLAG_PERSISTENT,
    FWPS_FILTER_FLAG_CLEAR_ACTION_RIGHT,
    FWPS_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED,
)
from wfpsim.errors import ResourcesError, WfpError
from wfpsim.filtering import stream as _stream
from wfpsim.filtering.engine import FilterEngine, current_engine
from wfpsim.filtering.filters import FWPM_SUBLAYER_UNIVERSAL, check_layer
from wfpsim.fwps_types import (
    FWP_BYTE_BLOB,
    FWP_CONDITION_VALUE0,
    FWP_RANGE0,
    FWP_V4_ADDR_AND_MASK,
    FWP_V6_ADDR_AND_MASK,
    FWP_VALUE0,
    FWPM_ACTION0,
    FWPM_CALLOUT0,
    FWPM_DISPLAY_DATA0,
    FWPM_FILTER0,
    FWPM_FILTER_CONDITION0,
    FWPM_SESSION0,
    FWPM_SUBLAYER0,
    FWPS_ACTION0,
    FWPS_CALLOUT0,
    FWPS_CALLOUT1,
    FWPS_CALLOUT2,
    FWPS_CLASSIFY_OUT0,
    FWPS_FILTER0,
    FWPS_FILTER1,
    FWPS_FILTER2,
    FWPS_FILTER_CONDITION0,
    FWPS_INCOMING_METADATA_VALUES0,
    FWPS_INCOMING_VALUE0,
    FWPS_INCOMING_VALUES0,
    FWPS_IS_L2_METADATA_FIELD_PRESENT,
    FWPS_IS_METADATA_FIELD_PRESENT,
    FWPS_STREAM_CALLOUT_IO_PACKET0,
    FWPS_STREAM_DATA0,
    FWPS_STREAM_DATA_OFFSET0,
)
from wfpsim.status import NTSTATUS, coerce

#: fwpmtypes.h ``FWPM_SESSION_FLAG_DYNAMIC``: objects added through the session vanish at close.
FWPM_SESSION_FLAG_DYNAMIC = 0x00000001

STATUS_SUCCESS = NTSTATUS.STATUS_SUCCESS


@dataclass(eq=False)
class DEVICE_OBJECT:  # noqa: N801
    """A stand-in for the driver's device object; `engine` selects the filter engine."""

    engine: FilterEngine | None = None
    name: str | None = None


def _engine_of(device_object: Any) -> FilterEngine:
    engine = getattr(device_object, "engine", None)
    return engine if isinstance(engine, FilterEngine) else current_engine()


def _status_of(call: Any) -> NTSTATUS:
    try:
        call()
    except WfpError as e:
        if e.status is None:
            raise
        return coerce(e.status)
    return STATUS_SUCCESS


# ------------------------------------------------------------------------------------------------
# Callout registration (layers.md §8)
# ------------------------------------------------------------------------------------------------


def _register(deviceObject: Any, callout: Any, version: int) -> tuple[NTSTATUS, int]:
    if deviceObject is None:
        return NTSTATUS.STATUS_INVALID_PARAMETER, 0
    if callout is None:
        return NTSTATUS.STATUS_FWP_NULL_POINTER, 0
    if callout.calloutKey is None:
        return NTSTATUS.STATUS_INVALID_PARAMETER, 0
    engine = _engine_of(deviceObject)
    ident = [0]

    def run() -> None:
        ident[0] = engine.register_callout(
            callout.classifyFn,
            key=callout.calloutKey,
            notify_fn=callout.notifyFn,
            flow_delete_fn=callout.flowDeleteFn,
            flags=callout.flags,
            version=version,
            device_object=deviceObject,
        )

    status = _status_of(run)
    return status, ident[0]


def FwpsCalloutRegister0(deviceObject: Any, callout: FWPS_CALLOUT0) -> tuple[NTSTATUS, int]:
    """``(status, calloutId)``; classifyFn gets the FN0 argument list. STATUS_SUCCESS,
    STATUS_FWP_ALREADY_EXISTS (key registered), STATUS_FWP_IN_USE (being registered),
    STATUS_INVALID_PARAMETER (no device object / key / classifyFn), STATUS_FWP_NULL_POINTER
    (no callout), STATUS_FWP_INVALID_FLAGS (unknown flag bits) [emu for the last three]."""
    return _register(deviceObject, callout, 0)


def FwpsCalloutRegister1(deviceObject: Any, callout: FWPS_CALLOUT1) -> tuple[NTSTATUS, int]:
    """As FwpsCalloutRegister0; classifyFn gets the FN1 argument list (with classifyContext)."""
    return _register(deviceObject, callout, 1)


def FwpsCalloutRegister2(deviceObject: Any, callout: FWPS_CALLOUT2) -> tuple[NTSTATUS, int]:
    """As FwpsCalloutRegister1 (FN2: FWPS_FILTER2, same fields here)."""
    return _register(deviceObject, callout, 2)


def FwpsCalloutUnregisterById0(calloutId: int) -> NTSTATUS:
    """STATUS_SUCCESS, STATUS_DEVICE_BUSY (flows still carry its contexts),
    STATUS_FWP_CALLOUT_NOT_FOUND, STATUS_FWP_IN_USE (being (un)registered / classifying)."""
    return _status_of(lambda: current_engine().unregister_callout(calloutId))


def FwpsCalloutUnregisterByKey0(calloutKey: Hashable) -> NTSTATUS:
    """As FwpsCalloutUnregisterById0, by key."""
    if calloutKey is None:
        return NTSTATUS.STATUS_FWP_NULL_POINTER
    return _status_of(lambda: current_engine().unregister_callout(key=calloutKey))


# ------------------------------------------------------------------------------------------------
# Flow contexts
# ------------------------------------------------------------------------------------------------


def FwpsFlowAssociateContext0(
    flowId: int, layerId: int, calloutId: int, flowContext: int
) -> NTSTATUS:
    """STATUS_SUCCESS; STATUS_INVALID_PARAMETER (context or flow 0, callout unknown or without a
    flowDeleteFn); STATUS_OBJECT_NAME_EXISTS (that callout already has a context there)."""
    return current_engine().flow_associate_context(flowId, layerId, calloutId, flowContext)


def FwpsFlowRemoveContext0(flowId: int, layerId: int, calloutId: int) -> NTSTATUS:
    """STATUS_SUCCESS (flowDeleteFn already ran), STATUS_PENDING (a classify of the flow is in
    progress; flowDeleteFn runs when it returns), STATUS_UNSUCCESSFUL (no context)."""
    return current_engine().flow_remove_context(flowId, layerId, calloutId)


def FwpsFlowAbort0(flowId: int) -> NTSTATUS:
    """Tears the flow down (flowDeleteFns run; the stack is told); STATUS_NOT_FOUND [emu]."""
    return current_engine().flow_abort(flowId)


# ------------------------------------------------------------------------------------------------
# Pending (ALE)
# ------------------------------------------------------------------------------------------------


def FwpsPendOperation0(completionHandle: Any) -> tuple[NTSTATUS, Any]:
    """``(status, completionContext)``: STATUS_SUCCESS, STATUS_FWP_NULL_POINTER,
    STATUS_FWP_CANNOT_PEND (re-authorisation, or not a pendable classify)."""
    return current_engine().pend_operation(completionHandle)


def FwpsCompleteOperation0(completionContext: Any, netBufferList: Any = None) -> None:
    """Completes a pended operation (re-authorisation / accept follows, by the stack)."""
    current_engine().complete_operation(completionContext, netBufferList)


# ------------------------------------------------------------------------------------------------
# Stream data (layers.md §9, nbl.md §10.5)
# ------------------------------------------------------------------------------------------------


def FwpsStreamContinue0(flowId: int, calloutId: int, layerId: int, streamFlags: int) -> NTSTATUS:
    """Resumes a deferred inbound stream: its held data is indicated again and what passes is
    handed to the stack (``engine.stream_sink``). STATUS_SUCCESS; STATUS_INVALID_PARAMETER (the
    callout has not deferred that flow); STATUS_FWP_INVALID_PARAMETER (streamFlags without
    RECEIVE); STATUS_INVALID_DEVICE_STATE (called from inside a classifyFn of the flow) [emu]."""
    engine = current_engine()
    verdict: list[Any] = []
    status = _status_of(
        lambda: verdict.append(engine.stream_continue(flowId, calloutId, layerId, streamFlags))
    )
    if verdict:
        engine.stream.emit(verdict[0])
    return status


def FwpsCopyStreamDataToBuffer0(
    calloutStreamData: FWPS_STREAM_DATA0, buffer: Any, bytesToCopy: int
) -> tuple[None, int]:
    """``(None, bytesCopied)``: flattens ``min(bytesToCopy, dataLength)`` indicated bytes, from
    ``dataOffset``, into a writable buffer (bytearray, memoryview, numpy)."""
    return None, _stream.copy_stream_data_to_buffer(calloutStreamData, buffer, bytesToCopy)


def FwpsCloneStreamData0(
    calloutStreamData: FWPS_STREAM_DATA0,
    netBufferListPoolHandle: Any,
    netBufferPoolHandle: Any,
    allocateCloneFlags: int,
) -> tuple[NTSTATUS, Any]:
    """``(status, netBufferListChain)``: WFP clones trimmed to exactly the indicated bytes, one
    per NBL holding them (free each with FwpsFreeCloneNetBufferList0 after its injection
    completes, or all with FwpsDiscardClonedStreamData0). STATUS_INSUFFICIENT_RESOURCES when an
    allocation fails; STATUS_INVALID_PARAMETER for flags (none are defined) or a NULL stream data
    [emu]. A 0-byte indication (FIN) yields one 0-byte clone."""
    if calloutStreamData is None or allocateCloneFlags:
        return NTSTATUS.STATUS_INVALID_PARAMETER, None
    try:
        return STATUS_SUCCESS, _stream.clone_stream_data(calloutStreamData)
    except ResourcesError:
        return NTSTATUS.STATUS_INSUFFICIENT_RESOURCES, None
    except WfpError as e:
        if e.status is None:
            raise
        return coerce(e.status), None


def FwpsDiscardClonedStreamData0(
    netBufferListChain: Any, allocateCloneFlags: int, dispatchLevel: bool
) -> None:
    """Frees a FwpsCloneStreamData0 chain that will not be injected."""
    _stream.discard_cloned_stream_data(netBufferListChain)


# ------------------------------------------------------------------------------------------------
# Management (Fwpm*): sessions, transactions, sublayers, callouts, filters
# ------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class FwpmEngineHandle:
    """What FwpmEngineOpen0 returns: the engine and the session's own objects."""

    engine: FilterEngine
    session: FWPM_SESSION0 | None = None
    open: bool = True
    in_transaction: bool = False
    added: list[tuple[str, Any]] = field(default_factory=list)
    txn_added: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def dynamic(self) -> bool:
        return bool(self.session is not None and self.session.flags & FWPM_SESSION_FLAG_DYNAMIC)

    def _remember(self, kind: str, key: Any) -> None:
        self.added.append((kind, key))
        if self.in_transaction:
            self.txn_added.append((kind, key))

    def _undo(self, items: list[tuple[str, Any]]) -> None:
        order = {"filter": 0, "callout": 1, "sublayer": 2}
        for kind, key in sorted(reversed(items), key=lambda kv: order[kv[0]]):
            try:
                if kind == "filter":
                    self.engine.delete_filter(key)
                elif kind == "callout":
                    self.engine.fwpm_callouts.pop(key, None)
                else:
                    self.engine.delete_sublayer(key)
            except WfpError:
                pass
            if (kind, key) in self.added:
                self.added.remove((kind, key))


def _handle(engineHandle: Any) -> FwpmEngineHandle | None:
    if isinstance(engineHandle, FwpmEngineHandle) and engineHandle.open:
        return engineHandle
    return None


def FwpmEngineOpen0(
    serverName: Any = None,
    authnService: int = 0,
    authIdentity: Any = None,
    session: FWPM_SESSION0 | None = None,
    engine: FilterEngine | None = None,
) -> tuple[NTSTATUS, FwpmEngineHandle]:
    """``(status, engineHandle)`` on the current engine (or `engine`, a simulator extension)."""
    return STATUS_SUCCESS, FwpmEngineHandle(engine or current_engine(), session)


def FwpmEngineClose0(engineHandle: Any) -> NTSTATUS:
    """Closes the handle; a dynamic session's sublayers, callouts and filters are deleted."""
    h = _handle(engineHandle)
    if h is None:
        return NTSTATUS.STATUS_INVALID_HANDLE
    if h.in_transaction:
        h._undo(h.txn_added)
        h.in_transaction = False
    if h.dynamic:
        h._undo(list(h.added))
    h.open = False
    return STATUS_SUCCESS


def FwpmTransactionBegin0(engineHandle: Any, flags: int = 0) -> NTSTATUS:
    h = _handle(engineHandle)
    if h is None:
        return NTSTATUS.STATUS_INVALID_HANDLE
    if h.in_transaction:
        return NTSTATUS.STATUS_INVALID_DEVICE_STATE  # [emu] FWP_E_TXN_IN_PROGRESS has no name here
    h.in_transaction, h.txn_added = True, []
    return STATUS_SUCCESS


def FwpmTransactionCommit0(engineHandle: Any) -> NTSTATUS:
    h = _handle(engineHandle)
    if h is None:
        return NTSTATUS.STATUS_INVALID_HANDLE
    if not h.in_transaction:
        return NTSTATUS.STATUS_INVALID_DEVICE_STATE
    h.in_transaction, h.txn_added = False, []
    return STATUS_SUCCESS


def FwpmTransactionAbort0(engineHandle: Any) -> NTSTATUS:
    """Undoes the objects added since FwpmTransactionBegin0."""
    h = _handle(engineHandle)
    if h is None:
        return NTSTATUS.STATUS_INVALID_HANDLE
    if not h.in_transaction:
        return NTSTATUS.STATUS_INVALID_DEVICE_STATE
    h._undo(h.txn_added)
    h.in_transaction, h.txn_added = False, []
    return STATUS_SUCCESS


def FwpmSubLayerAdd0(engineHandle: Any, subLayer: FWPM_SUBLAYER0, sd: Any = None) -> NTSTATUS:
    """STATUS_SUCCESS, STATUS_FWP_ALREADY_EXISTS, STATUS_INVALID_PARAMETER."""
    h = _handle(engineHandle)
    if h is None:
        return NTSTATUS.STATUS_INVALID_HANDLE
    if subLayer is None:
        return NTSTATUS.STATUS_FWP_NULL_POINTER
    status = _status_of(
        lambda: h.engine.add_sublayer(
            subLayer.subLayerKey, subLayer.weight, subLayer.displayData.name
        )
    )
    if status == STATUS_SUCCESS:
        h._remember("sublayer", subLayer.subLayerKey)
    return status


def FwpmSubLayerDeleteByKey0(engineHandle: Any, key: Hashable) -> NTSTATUS:
    h = _handle(engineHandle)
    if h is None:
        return NTSTATUS.STATUS_INVALID_HANDLE
    return _status_of(lambda: h.engine.delete_sublayer(key))


def FwpmCalloutAdd0(
    engineHandle: Any, callout: FWPM_CALLOUT0, sd: Any = None
) -> tuple[NTSTATUS, int]:
    """``(status, id)``: the management-side callout object (key + applicable layer); the id is
    the callout's run-time id (the same FwpsCalloutRegister returns for that key).
    STATUS_FWP_ALREADY_EXISTS, STATUS_FWP_LAYER_NOT_FOUND, STATUS_INVALID_PARAMETER (no key)."""
    h = _handle(engineHandle)
    if h is None:
        return NTSTATUS.STATUS_INVALID_HANDLE, 0
    if callout is None:
        return NTSTATUS.STATUS_FWP_NULL_POINTER, 0
    key = callout.calloutKey
    if key is None:
        return NTSTATUS.STATUS_INVALID_PARAMETER, 0
    if key in h.engine.fwpm_callouts:
        return NTSTATUS.STATUS_FWP_ALREADY_EXISTS, 0
    status = _status_of(lambda: check_layer(callout.applicableLayer))
    if status != STATUS_SUCCESS:
        return status, 0
    h.engine.fwpm_callouts[key] = callout.applicableLayer
    callout_id = h.engine.callouts.id_for_key(key)
    callout.calloutId = callout_id
    h._remember("callout", key)
    return STATUS_SUCCESS, callout_id


def FwpmCalloutDeleteByKey0(engineHandle: Any, key: Hashable) -> NTSTATUS:
    """STATUS_FWP_CALLOUT_NOT_FOUND; STATUS_FWP_IN_USE while filters reference it."""
    h = _handle(engineHandle)
    if h is None:
        return NTSTATUS.STATUS_INVALID_HANDLE
    if key not in h.engine.fwpm_callouts:
        return NTSTATUS.STATUS_FWP_CALLOUT_NOT_FOUND
    if any(f.callout_key == key for f in h.engine.filters()):
        return NTSTATUS.STATUS_FWP_IN_USE
    del h.engine.fwpm_callouts[key]
    return STATUS_SUCCESS


def FwpmCalloutDeleteById0(engineHandle: Any, id: int) -> NTSTATUS:  # noqa: A002
    h = _handle(engineHandle)
    if h is None:
        return NTSTATUS.STATUS_INVALID_HANDLE
    for key in h.engine.fwpm_callouts:
        if h.engine.callouts.id_for_key(key) == id:
            return FwpmCalloutDeleteByKey0(engineHandle, key)
    return NTSTATUS.STATUS_FWP_CALLOUT_NOT_FOUND


_FWPM_FILTER_FLAGS = (
    FWPM_FILTER_FLAG_PERSISTENT
    | FWPM_FILTER_FLAG_BOOTTIME
    | FWPM_FILTER_FLAG_HAS_PROVIDER_CONTEXT
    | FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT
    | FWPM_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED
    | FWPM_FILTER_FLAG_DISABLED
)


def FwpmFilterAdd0(engineHandle: Any, filter: FWPM_FILTER0, sd: Any = None) -> tuple[NTSTATUS, int]:  # noqa: A002
    """``(status, id)`` (also written to ``filter.filterId``; ``filter.effectiveWeight`` too).

    A callout action needs an FwpmCalloutAdd0 object for ``action.calloutKey``
    (STATUS_FWP_CALLOUT_NOT_FOUND) at the filter's layer (STATUS_FWP_INCOMPATIBLE_LAYER).
    FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT / PERMIT_IF_CALLOUT_UNREGISTERED become the FWPS flags;
    PERSISTENT, BOOTTIME, HAS_PROVIDER_CONTEXT and DISABLED are accepted and otherwise ignored
    (DISABLED: not modelled) [emu]. Other statuses as :meth:`FilterEngine.add_filter`
    (STATUS_FWP_INVALID_WEIGHT, STATUS_FWP_SUBLAYER_NOT_FOUND, STATUS_FWP_LAYER_NOT_FOUND,
    STATUS_FWP_TYPE_MISMATCH, ...; a notifyFn veto returns the notifyFn's status).
    """
    h = _handle(engineHandle)
    if h is None:
        return NTSTATUS.STATUS_INVALID_HANDLE, 0
    if filter is None:
        return NTSTATUS.STATUS_FWP_NULL_POINTER, 0
    if filter.flags & ~_FWPM_FILTER_FLAGS:
        return NTSTATUS.STATUS_FWP_INVALID_FLAGS, 0
    action = filter.action.type
    callout_key = filter.action.calloutKey if action & FWP_ACTION_FLAG_CALLOUT else None
    if callout_key is not None:
        layer = h.engine.fwpm_callouts.get(callout_key)
        if layer is None:
            return NTSTATUS.STATUS_FWP_CALLOUT_NOT_FOUND, 0
        if layer != filter.layerKey:
            return NTSTATUS.STATUS_FWP_INCOMPATIBLE_LAYER, 0
    if filter.numFilterConditions > len(filter.filterCondition):
        return NTSTATUS.STATUS_INVALID_PARAMETER, 0
    flags = 0
    if filter.flags & FWPM_FILTER_FLAG_CLEAR_ACTION_RIGHT:
        flags |= FWPS_FILTER_FLAG_CLEAR_ACTION_RIGHT
    if filter.flags & FWPM_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED:
        flags |= FWPS_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED
    sublayer = filter.subLayerKey
    if sublayer is None or sublayer == uuid.UUID(int=0):
        sublayer = FWPM_SUBLAYER_UNIVERSAL
    key = filter.filterKey if filter.filterKey not in (None, uuid.UUID(int=0)) else None
    result = [0]

    def run() -> None:
        result[0] = h.engine.add_filter(
            filter.layerKey,
            action,
            callout_key=callout_key,
            conditions=filter.filterCondition[: filter.numFilterConditions],
            weight=filter.weight,
            sublayer=sublayer,
            flags=flags,
            context=filter.rawContext,
            key=key,
            name=filter.displayData.name,
        )

    status = _status_of(run)
    if status != STATUS_SUCCESS:
        return status, 0
    flt = h.engine.filter(result[0])
    filter.filterId = flt.filter_id
    filter.effectiveWeight = FWP_VALUE0(FWP_UINT64, flt.weight)
    h._remember("filter", flt.filter_id)
    return STATUS_SUCCESS, flt.filter_id


def FwpmFilterDeleteById0(engineHandle: Any, id: int) -> NTSTATUS:  # noqa: A002
    """STATUS_SUCCESS, STATUS_FWP_FILTER_NOT_FOUND, STATUS_FWP_IN_USE (stream data held)."""
    h = _handle(engineHandle)
    if h is None:
        return NTSTATUS.STATUS_INVALID_HANDLE
    return _status_of(lambda: h.engine.delete_filter(id))


def FwpmFilterDeleteByKey0(engineHandle: Any, key: Hashable) -> NTSTATUS:
    h = _handle(engineHandle)
    if h is None:
        return NTSTATUS.STATUS_INVALID_HANDLE
    return _status_of(lambda: h.engine.delete_filter(key=key))


# ---- version-independent names (fwpvi.h) -----------------------------------------------------
# fwpvi.h maps each name to the newest version of the target. The pinned target (RS3) would give
# FwpsCalloutRegister3 / FWPS_CALLOUT3, which the simulator does not model: the callout names map
# to the Windows 8 version (FN2 argument list) [emu]; every other name here has one version.
FwpsCalloutRegister = FwpsCalloutRegister2
FWPS_CALLOUT = FWPS_CALLOUT2
FwpsCalloutUnregisterById = FwpsCalloutUnregisterById0
FwpsCalloutUnregisterByKey = FwpsCalloutUnregisterByKey0
FwpsFlowAssociateContext = FwpsFlowAssociateContext0
FwpsFlowRemoveContext = FwpsFlowRemoveContext0
FwpsFlowAbort = FwpsFlowAbort0
FwpsPendOperation = FwpsPendOperation0
FwpsCompleteOperation = FwpsCompleteOperation0
FwpsStreamContinue = FwpsStreamContinue0
FwpsCopyStreamDataToBuffer = FwpsCopyStreamDataToBuffer0
FwpsCloneStreamData = FwpsCloneStreamData0
FwpsDiscardClonedStreamData = FwpsDiscardClonedStreamData0
FwpmEngineOpen = FwpmEngineOpen0
FwpmEngineClose = FwpmEngineClose0
FwpmTransactionBegin = FwpmTransactionBegin0
FwpmTransactionCommit = FwpmTransactionCommit0
FwpmTransactionAbort = FwpmTransactionAbort0
FwpmSubLayerAdd = FwpmSubLayerAdd0
FwpmSubLayerDeleteByKey = FwpmSubLayerDeleteByKey0
FwpmCalloutAdd = FwpmCalloutAdd0
FwpmCalloutDeleteByKey = FwpmCalloutDeleteByKey0
FwpmCalloutDeleteById = FwpmCalloutDeleteById0
FwpmFilterAdd = FwpmFilterAdd0
FwpmFilterDeleteById = FwpmFilterDeleteById0
FwpmFilterDeleteByKey = FwpmFilterDeleteByKey0

_VERSION_INDEPENDENT = [
    "FwpsCalloutRegister",
    "FWPS_CALLOUT",
    "FwpsCalloutUnregisterById",
    "FwpsCalloutUnregisterByKey",
    "FwpsFlowAssociateContext",
    "FwpsFlowRemoveContext",
    "FwpsFlowAbort",
    "FwpsPendOperation",
    "FwpsCompleteOperation",
    "FwpsStreamContinue",
    "FwpsCopyStreamDataToBuffer",
    "FwpsCloneStreamData",
    "FwpsDiscardClonedStreamData",
    "FwpmEngineOpen",
    "FwpmEngineClose",
    "FwpmTransactionBegin",
    "FwpmTransactionCommit",
    "FwpmTransactionAbort",
    "FwpmSubLayerAdd",
    "FwpmSubLayerDeleteByKey",
    "FwpmCalloutAdd",
    "FwpmCalloutDeleteByKey",
    "FwpmCalloutDeleteById",
    "FwpmFilterAdd",
    "FwpmFilterDeleteById",
    "FwpmFilterDeleteByKey",
]

__all__ = _VERSION_INDEPENDENT + [
    "DEVICE_OBJECT",
    "FWPM_SESSION_FLAG_DYNAMIC",
    "FwpmEngineHandle",
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
    "FwpmEngineOpen0",
    "FwpmEngineClose0",
    "FwpmTransactionBegin0",
    "FwpmTransactionCommit0",
    "FwpmTransactionAbort0",
    "FwpmSubLayerAdd0",
    "FwpmSubLayerDeleteByKey0",
    "FwpmCalloutAdd0",
    "FwpmCalloutDeleteByKey0",
    "FwpmCalloutDeleteById0",
    "FwpmFilterAdd0",
    "FwpmFilterDeleteById0",
    "FwpmFilterDeleteByKey0",
    # the classify structures, under their WDK names
    "FWP_BYTE_BLOB",
    "FWP_CONDITION_VALUE0",
    "FWP_RANGE0",
    "FWP_V4_ADDR_AND_MASK",
    "FWP_V6_ADDR_AND_MASK",
    "FWP_VALUE0",
    "FWPM_ACTION0",
    "FWPM_CALLOUT0",
    "FWPM_DISPLAY_DATA0",
    "FWPM_FILTER0",
    "FWPM_FILTER_CONDITION0",
    "FWPM_SESSION0",
    "FWPM_SUBLAYER0",
    "FWPM_SUBLAYER_UNIVERSAL",
    "FWPS_ACTION0",
    "FWPS_CALLOUT0",
    "FWPS_CALLOUT1",
    "FWPS_CALLOUT2",
    "FWPS_CLASSIFY_OUT0",
    "FWPS_FILTER0",
    "FWPS_FILTER1",
    "FWPS_FILTER2",
    "FWPS_FILTER_CONDITION0",
    "FWPS_INCOMING_METADATA_VALUES0",
    "FWPS_INCOMING_VALUE0",
    "FWPS_INCOMING_VALUES0",
    "FWPS_IS_L2_METADATA_FIELD_PRESENT",
    "FWPS_IS_METADATA_FIELD_PRESENT",
    "FWPS_STREAM_CALLOUT_IO_PACKET0",
    "FWPS_STREAM_DATA0",
    "FWPS_STREAM_DATA_OFFSET0",
]
