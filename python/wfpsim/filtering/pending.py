"""Pended ALE classifies: FwpsPendOperation0 / FwpsCompleteOperation0 (`layers.md §7.6`).

At the pendable ALE layers (RESOURCE_ASSIGNMENT, AUTH_LISTEN, AUTH_CONNECT and, as the samples
and the injection docs use it, AUTH_RECV_ACCEPT) the stack puts a completion handle in
``inMetaValues->completionHandle`` (bit FWPS_METADATA_FIELD_COMPLETION_HANDLE): any object with
a ``complete(netBufferList)`` method (the stack's ``AleCompletionHandle``, or this module's
:class:`CompletionHandle`). If the bit is set but the field holds None, the engine puts a
:class:`CompletionHandle` there for the stack to inspect afterwards [emu].

* ``FwpsPendOperation0(completionHandle)`` → ``(status, completionContext)``:
  STATUS_FWP_NULL_POINTER for a NULL handle; STATUS_FWP_CANNOT_PEND for a re-authorisation
  classify (FWP_CONDITION_FLAG_IS_REAUTHORIZE in the layer's FLAGS value), a layer that cannot
  pend, a handle whose classify is not running, or a second pend of the same classify [emu for
  the last two]. The classifyFn must then return BLOCK + ABSORB (the engine records a diagnostic
  in its trace otherwise).
* ``FwpsCompleteOperation0(completionContext, netBufferList)``: calls the handle's
  ``complete(netBufferList)`` exactly once (the stack then re-authorises ALE_AUTH_CONNECT, or for
  ALE_AUTH_RECV_ACCEPT waits for the re-injected clone); a handle without ``complete`` queues the
  operation on :attr:`PendTable.completed`. Completing an unknown or already completed context
  is a Driver Verifier-style :class:`ContractViolation` (the function returns void).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wfpsim.constants import FWPS_BUILTIN_LAYERS
from wfpsim.errors import ContractViolation
from wfpsim.status import NTSTATUS

PENDABLE_LAYERS = frozenset(
    FWPS_BUILTIN_LAYERS[f"FWPS_LAYER_ALE_{base}_{af}{discard}"]
    for base in ("RESOURCE_ASSIGNMENT", "AUTH_LISTEN", "AUTH_CONNECT", "AUTH_RECV_ACCEPT")
    for af in ("V4", "V6")
    for discard in ("", "_DISCARD")
)


@dataclass(eq=False)
class CompletionHandle:
    """A completion handle for callers that bring none (tests, embedders without a stack)."""

    layer_id: int
    on_complete: Callable[[Any], None] | None = None
    completed: bool = False
    net_buffer_list: Any = None

    def complete(self, netBufferList: Any = None) -> None:  # noqa: N803
        if self.completed:
            raise ContractViolation("FwpsCompleteOperation0: operation already completed")
        self.completed = True
        self.net_buffer_list = netBufferList
        if self.on_complete is not None:
            self.on_complete(netBufferList)

    def __repr__(self) -> str:
        return f"<CompletionHandle layer={self.layer_id} completed={self.completed}>"


@dataclass(eq=False)
class PendedOperation:
    """The ``completionContext`` FwpsPendOperation0 returns."""

    handle: Any
    layer_id: int
    completed: bool = False
    net_buffer_list: Any = None

    def __repr__(self) -> str:
        return f"<completionContext layer={self.layer_id} completed={self.completed}>"


class PendTable:
    def __init__(self) -> None:
        #: id(handle) -> (handle, layer_id, reauthorize) for the classifies running now
        self.live: dict[int, tuple[Any, int, bool]] = {}
        self.outstanding: list[PendedOperation] = []
        #: completions of handles without a complete() method, for the caller to drain
        self.completed: list[PendedOperation] = []
        self._pended: set[int] = set()

    def enter(self, handle: Any, layer_id: int, reauthorize: bool) -> None:
        self.live[id(handle)] = (handle, layer_id, reauthorize)

    def leave(self, handle: Any) -> None:
        self.live.pop(id(handle), None)

    def is_pended(self, handle: Any) -> bool:
        return any(op.handle is handle for op in self.outstanding) or any(
            op.handle is handle for op in self.completed
        )

    def pend(self, handle: Any) -> tuple[NTSTATUS, PendedOperation | None]:
        if handle is None:
            return NTSTATUS.STATUS_FWP_NULL_POINTER, None
        info = self.live.get(id(handle))
        if info is None or info[0] is not handle:
            return NTSTATUS.STATUS_FWP_CANNOT_PEND, None
        _, layer_id, reauthorize = info
        if reauthorize or layer_id not in PENDABLE_LAYERS or id(handle) in self._pended:
            return NTSTATUS.STATUS_FWP_CANNOT_PEND, None
        op = PendedOperation(handle, layer_id)
        self._pended.add(id(handle))
        mark = getattr(handle, "pend", None)
        if callable(mark):
            mark()  # the stack's AleCompletionHandle: the flow now waits for the completion
        self.outstanding.append(op)
        return NTSTATUS.STATUS_SUCCESS, op

    def complete(self, context: Any, net_buffer_list: Any) -> None:
        if not isinstance(context, PendedOperation) or context not in self.outstanding:
            raise ContractViolation(
                "FwpsCompleteOperation0: completionContext is not an outstanding pended "
                "operation (completed twice, or never returned by FwpsPendOperation0)"
            )
        self.outstanding.remove(context)
        self._pended.discard(id(context.handle))
        context.completed = True
        context.net_buffer_list = net_buffer_list
        complete = getattr(context.handle, "complete", None)
        if callable(complete):
            complete(net_buffer_list)
        else:
            self.completed.append(context)


__all__ = ["CompletionHandle", "PENDABLE_LAYERS", "PendTable", "PendedOperation"]
