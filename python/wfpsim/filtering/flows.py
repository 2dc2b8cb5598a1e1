"""Flow contexts: FwpsFlowAssociateContext0 / FwpsFlowRemoveContext0 / flowDeleteFn (`layers.md §8`).

The table maps ``flowHandle -> {(layerId, calloutId): flowContext}``. The engine passes the
context as ``flowContext`` to that callout's classifyFn at that layer for packets of the flow (0
when none) and honours ``FWP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW`` with it.

Documented results:

* associate: STATUS_SUCCESS; STATUS_INVALID_PARAMETER when the context is 0, the flow id is 0,
  or the named callout is not registered / has no flowDeleteFn; STATUS_OBJECT_NAME_EXISTS when
  that callout already has a context on the flow at that layer.
* remove: STATUS_SUCCESS after calling flowDeleteFn synchronously; STATUS_PENDING when a
  classify of that flow is in progress — flowDeleteFn then runs when the outermost classify of
  the flow returns; STATUS_UNSUCCESSFUL when no context is associated.
* the flow ends (the stack calls :meth:`FlowTable.end`) or is aborted: flowDeleteFn for every
  association, the association already dropped (deferred likewise while classifying).

[emu] The engine does not require the stack to announce flows: any non-zero flow id is a flow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wfpsim.status import NTSTATUS


@dataclass
class FlowState:
    flow_handle: int
    contexts: dict[tuple[int, int], int] = field(default_factory=dict)
    #: classifies of this flow on the call stack (nested classify counts)
    classifying: int = 0
    #: flowDeleteFn calls waiting for the classify to finish: (layerId, calloutId, context)
    deferred_deletes: list[tuple[int, int, int]] = field(default_factory=list)
    ended: bool = False
    aborted: bool = False


class FlowTable:
    def __init__(self, lookup_callout: Callable[[int], Any], run_callback: Callable[..., Any]):
        self._flows: dict[int, FlowState] = {}
        self._lookup_callout = lookup_callout
        self._run = run_callback
        #: every flowDeleteFn call made: (flowHandle, layerId, calloutId, flowContext)
        self.delete_log: list[tuple[int, int, int, int]] = []

    def __contains__(self, flow_handle: int) -> bool:
        return flow_handle in self._flows

    def state(self, flow_handle: int) -> FlowState:
        st = self._flows.get(flow_handle)
        if st is None:
            st = FlowState(flow_handle)
            self._flows[flow_handle] = st
        return st

    def peek(self, flow_handle: int) -> FlowState | None:
        return self._flows.get(flow_handle)

    def context(self, flow_handle: int, layer_id: int, callout_id: int) -> int:
        st = self._flows.get(flow_handle)
        if st is None:
            return 0
        return st.contexts.get((layer_id, callout_id), 0)

    def callout_has_contexts(self, callout_id: int) -> bool:
        return any(cid == callout_id for st in self._flows.values() for (_, cid) in st.contexts)

    def associations(self) -> list[tuple[int, int, int, int]]:
        """Every live association: (flowHandle, layerId, calloutId, flowContext)."""
        return [
            (st.flow_handle, layer, cid, ctx)
            for st in self._flows.values()
            for (layer, cid), ctx in st.contexts.items()
        ]

    # ---- the WDK operations ---------------------------------------------------------------

    def associate(
        self, flow_id: int, layer_id: int, callout_id: int, flow_context: int
    ) -> NTSTATUS:
        if not flow_id or not flow_context:
            return NTSTATUS.STATUS_INVALID_PARAMETER
        callout = self._lookup_callout(callout_id)
        if callout is None or callout.flow_delete_fn is None:
            return NTSTATUS.STATUS_INVALID_PARAMETER
        st = self.state(flow_id)
        if st.ended:
            return NTSTATUS.STATUS_INVALID_PARAMETER
        key = (layer_id, callout_id)
        if key in st.contexts:
            return NTSTATUS.STATUS_OBJECT_NAME_EXISTS
        st.contexts[key] = flow_context
        return NTSTATUS.STATUS_SUCCESS

    def remove(self, flow_id: int, layer_id: int, callout_id: int) -> NTSTATUS:
        st = self._flows.get(flow_id)
        if st is None or (layer_id, callout_id) not in st.contexts:
            return NTSTATUS.STATUS_UNSUCCESSFUL
        ctx = st.contexts.pop((layer_id, callout_id))
        if st.classifying:
            st.deferred_deletes.append((layer_id, callout_id, ctx))
            return NTSTATUS.STATUS_PENDING
        self._delete(flow_id, layer_id, callout_id, ctx)
        return NTSTATUS.STATUS_SUCCESS

    def end(self, flow_id: int, *, aborted: bool = False) -> int:
        """The flow terminated: flowDeleteFn for every association. Returns how many."""
        st = self._flows.get(flow_id)
        if st is None:
            st = self.state(flow_id)
        st.ended = True
        st.aborted = st.aborted or aborted
        items = list(st.contexts.items())
        st.contexts.clear()
        for (layer_id, callout_id), ctx in items:
            if st.classifying:
                st.deferred_deletes.append((layer_id, callout_id, ctx))
            else:
                self._delete(flow_id, layer_id, callout_id, ctx)
        if not st.classifying and not st.deferred_deletes:
            self._flows.pop(flow_id, None)
        return len(items)

    # ---- classify bracketing --------------------------------------------------------------

    def enter(self, flow_id: int) -> FlowState | None:
        if not flow_id:
            return None
        st = self.state(flow_id)
        st.classifying += 1
        return st

    def leave(self, st: FlowState | None) -> None:
        if st is None:
            return
        st.classifying -= 1
        if st.classifying:
            return
        for _ in range(len(st.deferred_deletes) + 1):  # bounded: each round pops one
            if not st.deferred_deletes:
                break
            layer_id, callout_id, ctx = st.deferred_deletes.pop(0)
            self._delete(st.flow_handle, layer_id, callout_id, ctx)
        if not st.contexts and not st.deferred_deletes:
            self._flows.pop(st.flow_handle, None)  # nothing to remember about this flow

    def _delete(self, flow_id: int, layer_id: int, callout_id: int, ctx: int) -> None:
        self.delete_log.append((flow_id, layer_id, callout_id, ctx))
        callout = self._lookup_callout(callout_id)
        fn = None if callout is None else callout.flow_delete_fn
        if fn is not None:
            self._run(fn, layer_id, callout_id, ctx)


__all__ = ["FlowState", "FlowTable"]
