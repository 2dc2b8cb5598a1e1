"""FilterEngine: callouts, filters, arbitration, flow contexts and pending for one simulated host.

The stack calls :meth:`FilterEngine.classify` at every layer visit (the seam of issue #5) and
:meth:`FilterEngine.stream_classify` with TCP payload at the stream layer (see
:mod:`wfpsim.filtering.stream`). Everything else here is what callout-driver code uses, under a
Pythonic name (this class) and under its WDK name (:mod:`wfpsim.wdk.fwps_callouts`).

Several engines may live in one process; nothing is global. WDK functions that do not name an
engine (``FwpsFlowAssociateContext0``, ``FwpsPendOperation0``, ...) act on the *current* engine:
the one running the callback that calls them (the engine makes itself current around every
classifyFn / notifyFn / flowDeleteFn call), or the one entered with ``with engine:``, else the
process's default engine (:func:`default_engine`).

Contract of :meth:`FilterEngine.classify`::

    classify(layer_id, inFixedValues, inMetaValues, layerData, *, flow_handle=0,
             exclude_callout_id=None, below_sublayer_weight=None) -> FWPS_CLASSIFY_OUT0

* runs the filters of ``layer_id`` per `layers.md §7.5` (see :mod:`.arbitration`), calling each
  matching callout's classifyFn with the FN0 or FN1/FN2 argument list of its registration;
* ``flow_handle`` (else ``inMetaValues.flowHandle`` when FWPS_METADATA_FIELD_FLOW_HANDLE is set)
  selects the flow contexts passed as ``flowContext`` and gates CONDITIONAL_ON_FLOW callouts;
* ``exclude_callout_id`` skips that callout's filters; ``below_sublayer_weight`` skips every
  sublayer whose weight is >= it (re-indication of injected data, `layers.md §10`);
* returns a new FWPS_CLASSIFY_OUT0: ``actionType`` PERMIT / BLOCK, or CONTINUE (filters matched,
  none decided) / NONE (nothing matched) — both "permit by default"; ``rights`` has
  FWPS_RIGHT_ACTION_WRITE unless the decision is hard; ``flags`` has FWPS_CLASSIFY_OUT_FLAG_ABSORB
  when the deciding callout absorbed the packet; ``filterId`` is the deciding filter (0 if none).
* at the pendable ALE layers ``inMetaValues.completionHandle`` is the handle FwpsPendOperation0
  takes (any object with ``complete(netBufferList)``, see :mod:`.pending`);
  ``engine.pends.is_pended(handle)`` tells whether the classify was pended.

Optional hooks of the stack seam (``wfpsim.stack.seam``) are implemented: ``attach`` /
``detach``, ``current_callout``, ``knows_callout``, ``needs_classify`` and ``flow_deleted``.
"""

from __future__ import annotations

import contextvars
import uuid
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from wfpsim.constants import (
    FWP_ACTION_BLOCK,
    FWP_ACTION_CONTINUE,
    FWP_ACTION_NONE,
    FWP_ACTION_PERMIT,
    FWP_CONDITION_FLAG_IS_REAUTHORIZE,
    FWPS_BUILTIN_LAYERS,
    FWPS_CALLOUT_NOTIFY_ADD_FILTER,
    FWPS_CALLOUT_NOTIFY_DELETE_FILTER,
    FWPS_CLASSIFY_OUT_FLAG_ABSORB,
    FWPS_METADATA_FIELD_COMPLETION_HANDLE,
    FWPS_METADATA_FIELD_FLOW_HANDLE,
    FWPS_RIGHT_ACTION_WRITE,
    FWPS_STREAM_FLAG_RECEIVE,
    FWPS_STREAM_FLAG_RECEIVE_ABORT,
    FWPS_STREAM_FLAG_RECEIVE_DISCONNECT,
    FWPS_STREAM_FLAG_SEND,
    FWPS_STREAM_FLAG_SEND_ABORT,
    FWPS_STREAM_FLAG_SEND_DISCONNECT,
)
from wfpsim.constants.layers import FIELDS_BY_LAYER
from wfpsim.errors import InvalidParameterError, InvalidStateError, WfpError
from wfpsim.filtering.arbitration import (
    Arbiter,
    callout_decision,
    initial_classify_out,
    static_decision,
    unregistered_decision,
)
from wfpsim.filtering.callouts import Callout, CalloutRegistry
from wfpsim.filtering.filters import Filter, FilterTable, SubLayer
from wfpsim.filtering.flows import FlowTable
from wfpsim.filtering.pending import PENDABLE_LAYERS, CompletionHandle, PendedOperation, PendTable
from wfpsim.filtering.stream import StreamLayer, StreamVerdict
from wfpsim.fwps_types import (
    FWPS_CLASSIFY_OUT0,
    FWPS_INCOMING_METADATA_VALUES0,
    FWPS_INCOMING_VALUES0,
)
from wfpsim.status import NT_SUCCESS, NTSTATUS

_TERMINAL_STREAM_FLAGS = (
    FWPS_STREAM_FLAG_RECEIVE_DISCONNECT
    | FWPS_STREAM_FLAG_SEND_DISCONNECT
    | FWPS_STREAM_FLAG_RECEIVE_ABORT
    | FWPS_STREAM_FLAG_SEND_ABORT
)
_DIRECTION_BITS = FWPS_STREAM_FLAG_RECEIVE | FWPS_STREAM_FLAG_SEND

_current: contextvars.ContextVar[FilterEngine | None] = contextvars.ContextVar(
    "wfpsim_filter_engine", default=None
)
_default: list[FilterEngine] = []


def default_engine() -> FilterEngine:
    """The process's default engine (created on first use)."""
    if not _default:
        _default.append(FilterEngine(name="default"))
    return _default[0]


def current_engine() -> FilterEngine:
    """The engine WDK calls act on: the one in a callback / ``with`` block, else the default."""
    engine = _current.get()
    return engine if engine is not None else default_engine()


@dataclass
class ClassifyRecord:
    """One callout invocation (or one static / unregistered decision) during a classify."""

    layer_id: int
    filter_id: int
    callout_id: int
    sublayer_weight: int
    flow_handle: int
    entry_rights: int
    entry_action: int
    actionType: int
    rights: int
    flags: int
    decision: str
    notes: list[str] = field(default_factory=list)
    stream: dict[str, int] | None = None


@dataclass(eq=False)
class ClassifyContext:
    """The opaque ``classifyContext`` FN1/FN2 classifyFns receive (FwpsAcquireClassifyHandle0 is
    not simulated)."""

    layer_id: int
    serial: int


_ACTION_NAMES = {
    FWP_ACTION_PERMIT: "permit",
    FWP_ACTION_BLOCK: "block",
    FWP_ACTION_CONTINUE: "continue",
    FWP_ACTION_NONE: "none",
}


def _flags_field(layer_id: int) -> int | None:
    try:
        name = FWPS_BUILTIN_LAYERS(layer_id).name
    except ValueError:
        return None
    name = name.removesuffix("_DISCARD")
    fields = FIELDS_BY_LAYER.get(FWPS_BUILTIN_LAYERS[name])
    if fields is None:
        return None
    member = fields.__members__.get(f"FWPS_FIELD_{name.removeprefix('FWPS_LAYER_')}_FLAGS")
    return None if member is None else int(member)


class FilterEngine:
    """The simulated base filtering engine of one host (see the module docstring)."""

    #: FWPS_CLASSIFY_OUT_FLAG_BUFFER_LIMIT_REACHED threshold of the stream layer (8 MB, §9)
    STREAM_BUFFER_LIMIT = 8 * 1024 * 1024

    def __init__(
        self,
        name: str | None = None,
        *,
        stream_buffer_limit: int | None = None,
        trace_limit: int = 4096,
    ) -> None:
        self.name = name
        self.callouts = CalloutRegistry()
        self.table = FilterTable()
        self.flows = FlowTable(self.callouts.by_id, self._run_callback)
        self.pends = PendTable()
        self.stream = StreamLayer(self, stream_buffer_limit or self.STREAM_BUFFER_LIMIT)
        #: the FWPM callout objects (FwpmCalloutAdd0): key -> applicable layer
        self.fwpm_callouts: dict[Hashable, Any] = {}
        #: per-callout-invocation records of recent classifies (`samples.md §8`); None disables
        self.trace: deque[ClassifyRecord] | None = (
            deque(maxlen=trace_limit) if trace_limit else None
        )
        #: the stacks this engine is attached to (seam hooks attach / detach); the last one
        self.stacks: list[Any] = []
        self.stack: Any = None
        #: where verdicts produced outside stream_classify go when no stack takes them
        self.stream_sink: Callable[[StreamVerdict], None] | None = None
        #: (callout, filter, layer) of the classifyFns running now, innermost last
        self._running: list[tuple[Callout, Filter, int]] = []
        self._serial = 0
        self._key_serial = 0
        self._tokens: list[contextvars.Token] = []
        self._flags_fields: dict[int, int | None] = {}

    def __repr__(self) -> str:
        return (
            f"<FilterEngine {self.name or hex(id(self))}: {len(self.callouts)} callouts, "
            f"{len(self.table.filters)} filters>"
        )

    # ---- current-engine plumbing --------------------------------------------------------

    def __enter__(self) -> FilterEngine:
        self._tokens.append(_current.set(self))
        return self

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._tokens.pop())

    def _run_callback(self, fn: Callable[..., Any], *args: Any) -> Any:
        token = _current.set(self)
        try:
            return fn(*args)
        finally:
            _current.reset(token)

    def _record(self, rec: ClassifyRecord) -> None:
        if self.trace is not None:
            self.trace.append(rec)

    # ---- callouts -----------------------------------------------------------------------

    def register_callout(
        self,
        classify_fn: Callable[..., Any],
        *,
        key: Hashable | None = None,
        notify_fn: Callable[..., Any] | None = None,
        flow_delete_fn: Callable[..., Any] | None = None,
        flags: int = 0,
        version: int = 0,
        device_object: Any = None,
    ) -> int:
        """FwpsCalloutRegister<version>: returns the run-time callout id.

        ``version`` 0 calls ``classify_fn`` with the FN0 argument list, 1 and 2 with FN1/FN2
        (``classifyContext`` after ``layerData``). Filters that already reference the key get
        FWPS_CALLOUT_NOTIFY_ADD_FILTER now (their return values are ignored) [emu, inferred].
        Raises WfpError with STATUS_FWP_ALREADY_EXISTS, STATUS_FWP_IN_USE,
        STATUS_INVALID_PARAMETER or STATUS_FWP_INVALID_FLAGS.
        """
        if version not in (0, 1, 2):
            raise InvalidParameterError(
                "FwpsCalloutRegister versions are 0, 1 and 2", NTSTATUS.STATUS_INVALID_PARAMETER
            )
        if key is None:
            self._key_serial += 1
            key = uuid.UUID(int=(0xCA11 << 112) | self._key_serial)
        callout = self.callouts.add(
            key, classify_fn, notify_fn, flow_delete_fn, flags, version, device_object
        )
        callout.busy = True
        try:
            for flt in sorted(self.table.filters.values(), key=lambda f: f.filter_id):
                if flt.callout_key == key:
                    flt.fwps.action.calloutId = callout.callout_id
                    self._notify(callout, FWPS_CALLOUT_NOTIFY_ADD_FILTER, flt)
        finally:
            callout.busy = False
        self.table._changed()
        return callout.callout_id

    def _callout_for(self, callout_id: int | None, key: Hashable | None) -> Callout:
        callout = self.callouts.by_id(callout_id) if key is None else self.callouts.by_key(key)
        if callout is None:
            raise InvalidStateError(
                f"no registered callout {key if key is not None else callout_id!r}",
                NTSTATUS.STATUS_FWP_CALLOUT_NOT_FOUND,
            )
        return callout

    def unregister_callout(
        self, callout_id: int | None = None, *, key: Hashable | None = None
    ) -> None:
        """FwpsCalloutUnregisterById0 / ByKey0. Raises WfpError with:

        * STATUS_FWP_CALLOUT_NOT_FOUND — not registered;
        * STATUS_DEVICE_BUSY — flows still carry contexts of this callout: remove them
          (FwpsFlowRemoveContext0) and call again;
        * STATUS_FWP_IN_USE — the callout is being (un)registered (called from one of its own
          registration notifications) or one of its classifyFns is running [emu: the
          simulator's single-threaded stand-in for "another thread"].

        Succeeds while filters still reference it (they then follow the unregistered-callout
        rule of §7.5).
        """
        callout = self._callout_for(callout_id, key)
        if callout.busy or callout.active:
            raise InvalidStateError(
                f"callout {callout.key!r} is in use (being registered, or classifying)",
                NTSTATUS.STATUS_FWP_IN_USE,
            )
        if self.flows.callout_has_contexts(callout.callout_id):
            raise InvalidStateError(
                f"callout {callout.key!r} still has flow contexts; remove them with "
                "FwpsFlowRemoveContext0 first",
                NTSTATUS.STATUS_DEVICE_BUSY,
            )
        self.callouts.remove(callout)
        for flt in self.table.filters.values():
            if flt.callout_key == callout.key:
                flt.fwps.action.calloutId = 0
        self.table._changed()

    def _notify(self, callout: Callout, notify_type: int, flt: Filter) -> int:
        if callout.notify_fn is None:
            return NTSTATUS.STATUS_SUCCESS
        callout.stats["notify"] += 1
        status = self._run_callback(callout.notify_fn, notify_type, flt.key, flt.fwps)
        return NTSTATUS.STATUS_SUCCESS if status is None else int(status)

    # ---- sublayers and filters ----------------------------------------------------------

    def add_sublayer(self, key: Hashable, weight: int, name: str | None = None) -> Hashable:
        """FwpmSubLayerAdd0: a sublayer with a UINT16 weight (higher = evaluated first)."""
        self.table.add_sublayer(key, weight, name)
        return key

    def delete_sublayer(self, key: Hashable) -> None:
        self.table.delete_sublayer(key)

    def add_filter(
        self,
        layer: int,
        action: int,
        *,
        callout_key: Hashable | None = None,
        conditions: Sequence[Any] = (),
        weight: Any = None,
        sublayer: Hashable | None = None,
        flags: int = 0,
        context: int = 0,
        key: Hashable | None = None,
        name: str | None = None,
        provider_context: Any = None,
    ) -> int:
        """Adds a filter; returns its id.

        ``layer`` run-time layer id; ``action`` FWP_ACTION_BLOCK / PERMIT / CALLOUT_TERMINATING /
        CALLOUT_INSPECTION / CALLOUT_UNKNOWN; ``callout_key`` the callout's key for callout
        actions (the callout need not be registered yet); ``conditions`` see
        :mod:`.conditions`; ``weight`` None (FWP_EMPTY), an int (FWP_UINT64) or an FWP_VALUE0;
        ``sublayer`` a key from :meth:`add_sublayer` (None: FWPM_SUBLAYER_UNIVERSAL); ``flags``
        FWPS_FILTER_FLAG_*; ``context`` the UINT64 ``filter->context``.

        If the callout is registered its notifyFn gets FWPS_CALLOUT_NOTIFY_ADD_FILTER first; an
        error status from it vetoes the add (raised as WfpError with that status).
        """
        flt = self.table.build(
            layer=layer,
            action=action,
            callout_key=callout_key,
            conditions=conditions,
            weight=weight,
            sublayer=sublayer,
            flags=flags,
            context=context,
            key=key,
            name=name,
            provider_context=provider_context,
        )
        callout = self.callouts.by_key(flt.callout_key) if flt.callout_key is not None else None
        if callout is not None:
            flt.fwps.action.calloutId = callout.callout_id
            status = self._notify(callout, FWPS_CALLOUT_NOTIFY_ADD_FILTER, flt)
            if not NT_SUCCESS(status):
                raise WfpError(
                    f"notifyFn of callout {callout.key!r} vetoed the filter add "
                    f"(FWPS_CALLOUT_NOTIFY_ADD_FILTER returned 0x{status:08X})",
                    status,
                )
        flt.created_at = self.stream.flow_serial
        self.table.insert(flt)
        return flt.filter_id

    def delete_filter(self, filter_id: int | None = None, *, key: Hashable | None = None) -> None:
        """FwpmFilterDeleteById0 / ByKey0: STATUS_FWP_FILTER_NOT_FOUND; STATUS_FWP_IN_USE while
        a stream flow holds data at this filter's callout (NEED_MORE_DATA / DEFER) — "not
        supported" per §9 [emu]. The callout's notifyFn gets DELETE_FILTER (status ignored)."""
        flt = self.table.get(filter_id) if key is None else self.table.get_by_key(key)
        if self.stream.filter_busy(flt.filter_id):
            raise InvalidStateError(
                f"stream filter {flt.filter_id} is holding or deferring data; it cannot be "
                "removed now",
                NTSTATUS.STATUS_FWP_IN_USE,
            )
        self.table.remove(flt)
        callout = self.callouts.by_key(flt.callout_key) if flt.callout_key is not None else None
        if callout is not None:
            self._notify(callout, FWPS_CALLOUT_NOTIFY_DELETE_FILTER, flt)

    def filter(self, filter_id: int) -> Filter:
        return self.table.get(filter_id)

    def filters(self, layer: int | None = None) -> list[Filter]:
        return [f for f in self.table.filters.values() if layer is None or f.layer_id == layer]

    def sublayer(self, key: Hashable | None) -> SubLayer:
        return self.table.sublayer(key)

    # ---- flows --------------------------------------------------------------------------

    def flow_associate_context(
        self, flow_id: int, layer_id: int, callout_id: int, flow_context: int
    ) -> NTSTATUS:
        """FwpsFlowAssociateContext0 (statuses in :mod:`.flows`)."""
        return self.flows.associate(flow_id, layer_id, callout_id, flow_context)

    def flow_remove_context(self, flow_id: int, layer_id: int, callout_id: int) -> NTSTATUS:
        """FwpsFlowRemoveContext0 (statuses in :mod:`.flows`)."""
        return self.flows.remove(flow_id, layer_id, callout_id)

    def flow_context(self, flow_id: int, layer_id: int, callout_id: int) -> int:
        return self.flows.context(flow_id, layer_id, callout_id)

    def flow_end(self, flow_handle: int) -> None:
        """The stack reports that a flow terminated: flowDeleteFn for each of its contexts
        (deferred until any classify of the flow returns) and the flow's stream state freed."""
        self.flows.end(flow_handle)
        self.stream.end_flow(flow_handle)

    def flow_abort(self, flow_handle: int) -> NTSTATUS:
        """FwpsFlowAbort0: the flow is torn down (the stack is told through the stream sink);
        STATUS_NOT_FOUND for a flow the engine never saw [emu]."""
        stack_knows = any(_stack_owns(stack, flow_handle) for stack in self.stacks)
        if not (flow_handle in self.flows or self.stream.knows_flow(flow_handle) or stack_knows):
            return NTSTATUS.STATUS_NOT_FOUND
        self.stream.abort_flow(flow_handle)
        self.flows.end(flow_handle, aborted=True)
        self._tell_stack_flow_dropped(flow_handle)
        return NTSTATUS.STATUS_SUCCESS

    # ---- pending ------------------------------------------------------------------------

    def make_completion_handle(
        self, layer_id: int, on_complete: Callable[[Any], None] | None = None
    ) -> CompletionHandle:
        """A ``completionHandle`` for an ALE classify's metadata, for callers without a stack;
        ``on_complete(netBufferList)`` runs when the callout completes the pended operation."""
        return CompletionHandle(layer_id, on_complete)

    def pend_operation(self, completion_handle: Any) -> tuple[NTSTATUS, PendedOperation | None]:
        """FwpsPendOperation0 (statuses in :mod:`.pending`)."""
        return self.pends.pend(completion_handle)

    def complete_operation(self, completion_context: Any, net_buffer_list: Any = None) -> None:
        """FwpsCompleteOperation0."""
        self.pends.complete(completion_context, net_buffer_list)

    def _is_reauth(self, layer_id: int, values: FWPS_INCOMING_VALUES0) -> bool:
        if layer_id not in self._flags_fields:
            self._flags_fields[layer_id] = _flags_field(layer_id)
        index = self._flags_fields[layer_id]
        if index is None or index >= len(values.incomingValue):
            return False
        v = values.incomingValue[index].value
        return isinstance(v.value, int) and bool(v.value & FWP_CONDITION_FLAG_IS_REAUTHORIZE)

    def _prepare_completion(
        self, layer_id: int, values: FWPS_INCOMING_VALUES0, meta: FWPS_INCOMING_METADATA_VALUES0
    ) -> Any:
        if layer_id not in PENDABLE_LAYERS or meta is None:
            return None
        handle = meta.completionHandle
        if handle is None:
            if not meta.currentMetadataValues & FWPS_METADATA_FIELD_COMPLETION_HANDLE:
                return None
            handle = meta.completionHandle = CompletionHandle(layer_id)
        self.pends.enter(handle, layer_id, self._is_reauth(layer_id, values))
        return handle

    # ---- classify -----------------------------------------------------------------------

    def classify(
        self,
        layer_id: int,
        inFixedValues: FWPS_INCOMING_VALUES0,
        inMetaValues: FWPS_INCOMING_METADATA_VALUES0,
        layerData: Any,
        *,
        flow_handle: int = 0,
        exclude_callout_id: int | None = None,
        below_sublayer_weight: int | None = None,
    ) -> FWPS_CLASSIFY_OUT0:
        """One layer visit (contract in the module docstring)."""
        plan = self.table.plan(layer_id)
        if not plan:
            return FWPS_CLASSIFY_OUT0(actionType=FWP_ACTION_NONE, rights=FWPS_RIGHT_ACTION_WRITE)
        if not flow_handle and inMetaValues is not None:
            if inMetaValues.currentMetadataValues & FWPS_METADATA_FIELD_FLOW_HANDLE:
                flow_handle = inMetaValues.flowHandle
        values = inFixedValues.incomingValue
        arb = Arbiter()
        self._serial += 1
        classify_context = None
        token = _current.set(self)
        flow_state = self.flows.enter(flow_handle)
        handle = self._prepare_completion(layer_id, inFixedValues, inMetaValues)
        flows = self.flows
        callouts = self.callouts
        trace = self.trace
        try:
            for sub, filters in plan:
                if below_sublayer_weight is not None and sub.weight >= below_sublayer_weight:
                    continue
                decision = None
                for flt in filters:
                    if not flt.predicate(values):
                        continue
                    if flt.callout_key is None:
                        arb.matched = True
                        decision = static_decision(flt.action_type, flt.flags, flt.filter_id)
                        if trace is not None:
                            self._record_static(layer_id, flt, flow_handle, arb, decision, "static")
                        break
                    callout = callouts.by_key(flt.callout_key)
                    if callout is None:
                        decision = unregistered_decision(flt.action_type, flt.flags, flt.filter_id)
                        if decision is None:
                            continue
                        arb.matched = True
                        if trace is not None:
                            self._record_static(
                                layer_id, flt, flow_handle, arb, decision, "unregistered"
                            )
                        break
                    if exclude_callout_id is not None and callout.callout_id == exclude_callout_id:
                        continue
                    flow_context = flows.context(flow_handle, layer_id, callout.callout_id)
                    if callout.conditional_on_flow and not flow_context:
                        continue
                    arb.matched = True
                    out = initial_classify_out(arb)
                    entered_with_write = not arb.hard
                    entry_action = out.actionType
                    if classify_context is None and callout.version:
                        classify_context = ClassifyContext(layer_id, self._serial)
                    callout.active += 1
                    self._running.append((callout, flt, layer_id))
                    try:
                        callout.call_classify(
                            inFixedValues,
                            inMetaValues,
                            layerData,
                            classify_context,
                            flt.fwps,
                            flow_context,
                            out,
                        )
                    finally:
                        callout.active -= 1
                        self._running.pop()
                    notes: list[str] = []
                    decision = callout_decision(
                        flt.action_type,
                        flt.flags,
                        flt.filter_id,
                        entered_with_write,
                        arb.action,
                        out,
                        notes,
                    )
                    if trace is not None:
                        trace.append(
                            ClassifyRecord(
                                layer_id,
                                flt.filter_id,
                                callout.callout_id,
                                sub.weight,
                                flow_handle,
                                FWPS_RIGHT_ACTION_WRITE if entered_with_write else 0,
                                entry_action,
                                out.actionType,
                                out.rights,
                                out.flags,
                                _describe(decision),
                                notes,
                            )
                        )
                    if decision is not None:
                        break
                arb.combine(decision)
        finally:
            if handle is not None:
                self.pends.leave(handle)
            flows.leave(flow_state)
            _current.reset(token)
        result = arb.result()
        if handle is not None and self.pends.is_pended(handle):
            absorbed = result.flags & FWPS_CLASSIFY_OUT_FLAG_ABSORB
            if result.actionType != FWP_ACTION_BLOCK or not absorbed:
                if trace is not None and trace:
                    trace[-1].notes.append(
                        "classify pended (FwpsPendOperation0) but did not end in BLOCK + ABSORB"
                    )
        return result

    def _record_static(
        self, layer_id: int, flt: Filter, flow_handle: int, arb: Arbiter, decision: Any, kind: str
    ) -> None:
        self._record(
            ClassifyRecord(
                layer_id,
                flt.filter_id,
                0,
                flt.sublayer.weight,
                flow_handle,
                0 if arb.hard else FWPS_RIGHT_ACTION_WRITE,
                arb.action or FWP_ACTION_CONTINUE,
                decision.action,
                0 if decision.hard else FWPS_RIGHT_ACTION_WRITE,
                0,
                f"{kind}-{_describe(decision)}",
            )
        )

    # ---- stream layer -------------------------------------------------------------------

    def stream_classify(
        self,
        layer_id: int,
        inFixedValues: FWPS_INCOMING_VALUES0,
        inMetaValues: FWPS_INCOMING_METADATA_VALUES0,
        segment: Any,
        *,
        flow_handle: int,
        deliver: Callable[[bytes, int], None],
        exclude_callout_id: int | None = None,
        below_sublayer_weight: int | None = None,
    ) -> StreamVerdict:
        """The seam's stream layer entry (``wfpsim.stack.seam``): ``segment`` has ``data``
        (bytes, copied into an engine NBL), ``flags`` (FWPS_STREAM_FLAG_*), ``injected`` and
        ``callout_id``; ``deliver(data, flags)`` is called, in stream order, for every run of
        bytes that passed every stream callout, as soon as it passes (``flags`` has
        ..._DISCONNECT when the FIN is released). Injected segments (``exclude_callout_id`` or
        ``segment.injected``) are shown only to lower-weight sublayers than the injecting
        callout's. Returns a :class:`StreamVerdict` (``drop_connection``, ``deferred``,
        ``allow_connection``, plus the details of :mod:`wfpsim.filtering.stream`)."""
        if exclude_callout_id is None and getattr(segment, "injected", False):
            exclude_callout_id = getattr(segment, "callout_id", None)
        if not self.table.plan(layer_id) and not self.stream.knows_flow(flow_handle):
            # no stream filter and no stream state: every byte passes as indicated
            if segment.data or segment.flags & _TERMINAL_STREAM_FLAGS:
                deliver(segment.data, segment.flags)
            return StreamVerdict(flow_handle, layer_id, segment.flags & _DIRECTION_BITS)
        return self.stream.indicate_bytes(
            layer_id,
            inFixedValues,
            inMetaValues,
            flow_handle,
            segment.flags,
            segment.data,
            deliver=deliver,
            exclude_callout_id=exclude_callout_id,
            below_sublayer_weight=below_sublayer_weight,
        )

    def stream_classify_nbl(
        self,
        layer_id: int,
        inFixedValues: FWPS_INCOMING_VALUES0 | None,
        inMetaValues: FWPS_INCOMING_METADATA_VALUES0 | None,
        flow_handle: int,
        stream_flags: int,
        nbl_chain: Any,
        data_length: int,
        *,
        deliver: Callable[[bytes, int], None] | None = None,
        exclude_callout_id: int | None = None,
        below_sublayer_weight: int | None = None,
    ) -> StreamVerdict:
        """The stream layer over a caller's NBL chain (payload only), zero-copy: the callouts'
        ``FWPS_STREAM_DATA0.dataOffset`` points into `nbl_chain`, which is borrowed for the call
        (see :mod:`wfpsim.filtering.stream`). Without `deliver` the delivered bytes are in
        ``verdict.outputs``."""
        return self.stream.indicate(
            layer_id,
            inFixedValues,
            inMetaValues,
            flow_handle,
            stream_flags,
            nbl_chain,
            data_length,
            deliver=deliver,
            exclude_callout_id=exclude_callout_id,
            below_sublayer_weight=below_sublayer_weight,
        )

    def stream_inject(
        self,
        flow_handle: int,
        callout_id: int,
        layer_id: int,
        stream_flags: int,
        nbl_chain: Any,
        data_length: int,
        deliver: Callable[[bytes, int], None] | None = None,
    ) -> StreamVerdict:
        """Data a callout stream-injected (FwpsStreamInjectAsync0) as an NBL chain: indicated
        only to stream callouts of lower-weight sublayers than the injecting callout's."""
        return self.stream.indicate(
            layer_id,
            None,
            None,
            flow_handle,
            stream_flags,
            nbl_chain,
            data_length,
            deliver=deliver,
            exclude_callout_id=callout_id,
        )

    def stream_continue(
        self,
        flow_handle: int,
        callout_id: int,
        layer_id: int,
        stream_flags: int,
        deliver: Callable[[bytes, int], None] | None = None,
    ) -> StreamVerdict:
        """FwpsStreamContinue0 (Pythonic; raises): resumes a deferred inbound stream. Released
        bytes go to `deliver`, else to the attached stack's ``stream_deliver``."""
        return self.stream.resume(flow_handle, callout_id, layer_id, stream_flags, deliver)

    # ---- the stack seam's optional hooks -------------------------------------------------

    def attach(self, stack: Any) -> None:
        """The engine was set on `stack` (several stacks may share one engine: flow ids are
        unique across stacks, so per-flow state needs no stack key)."""
        if stack not in self.stacks:
            self.stacks.append(stack)
        self.stack = stack

    def detach(self, stack: Any) -> None:
        if stack in self.stacks:
            self.stacks.remove(stack)
        self.stack = self.stacks[-1] if self.stacks else None

    def stacks_for_flow(self, flow_handle: int) -> list[Any]:
        """The attached stacks, those that own `flow_handle` (``owns_flow(id)`` or an entry in
        ``stack.flows``) first."""
        owners = [stack for stack in self.stacks if _stack_owns(stack, flow_handle)]
        return owners + [s for s in self.stacks if s not in owners]

    def _tell_stack_flow_dropped(self, flow_handle: int) -> None:
        """A flow dropped outside stream_classify (FwpsFlowAbort0, DROP_CONNECTION during
        FwpsStreamContinue0): the owning stack's ``abort_flow(flow_id)`` tears it down."""
        for stack in self.stacks_for_flow(flow_handle)[:1]:
            abort = getattr(stack, "abort_flow", None)
            if abort is not None:
                abort(flow_handle)

    def needs_classify(self, layer_id: int) -> bool:
        """False when no filter exists at `layer_id`: the stack then skips building the incoming
        values and metadata (the result is the same: NONE, i.e. permit)."""
        return bool(self.table.plan(layer_id))

    def current_callout(self) -> str | None:
        """Describes the callout whose classifyFn is running now (innermost), for the stack's
        injection records and loop reports."""
        if not self._running:
            return None
        callout, flt, layer_id = self._running[-1]
        try:
            layer = FWPS_BUILTIN_LAYERS(layer_id).name
        except ValueError:
            layer = str(layer_id)
        name = getattr(callout.classify_fn, "__qualname__", None) or repr(callout.key)
        return f"callout {callout.callout_id} {name!r} (filter {flt.filter_id}) at {layer}"

    def knows_callout(self, callout_id: int, layer_id: int) -> bool | None:
        """For FwpsStreamInjectAsync0: is `callout_id` registered with a filter (or an
        FwpmCalloutAdd0 object) at `layer_id`?"""
        callout = self.callouts.by_id(callout_id)
        if callout is None:
            return False
        if self.fwpm_callouts.get(callout.key) == layer_id:
            return True
        return any(f.callout_key == callout.key for f in self.filters(layer_id))

    def flow_deleted(self, flow_handle: int) -> None:
        """The stack's flow ended: same as :meth:`flow_end`."""
        self.flow_end(flow_handle)

    # ---- teardown -----------------------------------------------------------------------

    def outstanding(self) -> dict[str, Any]:
        """What is still live: flow contexts, pended operations, held stream bytes, callouts."""
        return {
            "flow_contexts": self.flows.associations(),
            "pended_operations": list(self.pends.outstanding),
            "stream_held_bytes": self.stream.held_bytes(),
            "stream_nbls": self.stream.owned_nbls(),
            "callouts": [c.callout_id for c in self.callouts],
        }

    def close(self) -> None:
        """Frees the engine's own NBLs (held stream data); flows and callouts are forgotten."""
        self.stream.close()


def _stack_owns(stack: Any, flow_handle: int) -> bool:
    owns = getattr(stack, "owns_flow", None)
    if owns is not None:
        return bool(owns(flow_handle))
    flows = getattr(stack, "flows", None)
    return isinstance(flows, dict) and flow_handle in flows


def _describe(decision: Any) -> str:
    if decision is None:
        return "continue"
    name = _ACTION_NAMES.get(decision.action, hex(decision.action))
    if decision.veto:
        return "veto-block"
    return f"{'hard' if decision.hard else 'soft'}-{name}"


__all__ = [
    "ClassifyContext",
    "ClassifyRecord",
    "FilterEngine",
    "current_engine",
    "default_engine",
]
