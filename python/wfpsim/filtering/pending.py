"""Pended ALE classifies: FwpsPendOperation0 / FwpsCompleteOperation0 (`layers.md §7.6`).

At the pendable ALE layers (RESOURCE_ASSIGNMENT, AUTH_LISTEN, AUTH_CONNECT and, as the samples
and the injection docs use it, AUTH_RECV_ACCEPT) the stack puts a :class:`CompletionHandle` in
``inMetaValues->completionHandle`` (bit FWPS_METADATA_FIELD_COMPLETION_HANDLE). If the stack
passes something else there (or nothing, with the bit set) the engine wraps it for the duration
of the classify [emu].

* ``FwpsPendOperation0(completionHandle)`` → ``(status, completionContext)``:
  STATUS_FWP_NULL_POINTER for a NULL handle; STATUS_FWP_CANNOT_PEND for a re-authorisation
  classify (FWP_CONDITION_FLAG_IS_REAUTHORIZE), a layer that cannot pend, a handle whose classify
  already returned, or a second pend of the same classify [emu for the last two]. The classifyFn
  must then return BLOCK + ABSORB (the engine records a diagnostic otherwise).
* ``FwpsCompleteOperation0(completionContext, netBufferList)``: marks the operation complete and
  hands ``(completionContext, netBufferList)`` to the stack's ``on_complete`` callback (the stack
  re-authorises ALE_AUTH_CONNECT, or for ALE_AUTH_RECV_ACCEPT waits for the re-injected clone).
  Without a callback the completion is queued on :attr:`PendTable.completed` for the stack to
  drain. Completing an unknown or already completed context is a Driver Verifier-style
  :class:`ContractViolation` (the function returns void: there is no status to carry it).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wfpsim.constants import (
    FWPS_LAYER_ALE_AUTH_CONNECT_V4,
    FWPS_LAYER_ALE_AUTH_CONNECT_V4_DISCARD,
    FWPS_LAYER_ALE_AUTH_CONNECT_V6,
    FWPS_LAYER_ALE_AUTH_CONNECT_V6_DISCARD,
    FWPS_LAYER_ALE_AUTH_LISTEN_V4,
    FWPS_LAYER_ALE_AUTH_LISTEN_V4_DISCARD,
    FWPS_LAYER_ALE_AUTH_LISTEN_V6,
    FWPS_LAYER_ALE_AUTH_LISTEN_V6_DISCARD,
    FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V4,
    FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V4_DISCARD,
    FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V6,
    FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V6_DISCARD,
    FWPS_LAYER_ALE_RESOURCE_ASSIGNMENT_V4,
    FWPS_LAYER_ALE_RESOURCE_ASSIGNMENT_V4_DISCARD,
    FWPS_LAYER_ALE_RESOURCE_ASSIGNMENT_V6,
    FWPS_LAYER_ALE_RESOURCE_ASSIGNMENT_V6_DISCARD,
)
from wfpsim.errors import ContractViolation
from wfpsim.status import NTSTATUS

PENDABLE_LAYERS = frozenset(
    {
        FWPS_LAYER_ALE_RESOURCE_ASSIGNMENT_V4,
        FWPS_LAYER_ALE_RESOURCE_ASSIGNMENT_V4_DISCARD,
        FWPS_LAYER_ALE_RESOURCE_ASSIGNMENT_V6,
        FWPS_LAYER_ALE_RESOURCE_ASSIGNMENT_V6_DISCARD,
        FWPS_LAYER_ALE_AUTH_LISTEN_V4,
        FWPS_LAYER_ALE_AUTH_LISTEN_V4_DISCARD,
        FWPS_LAYER_ALE_AUTH_LISTEN_V6,
        FWPS_LAYER_ALE_AUTH_LISTEN_V6_DISCARD,
        FWPS_LAYER_ALE_AUTH_CONNECT_V4,
        FWPS_LAYER_ALE_AUTH_CONNECT_V4_DISCARD,
        FWPS_LAYER_ALE_AUTH_CONNECT_V6,
        FWPS_LAYER_ALE_AUTH_CONNECT_V6_DISCARD,
        FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V4,
        FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V4_DISCARD,
        FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V6,
        FWPS_LAYER_ALE_AUTH_RECV_ACCEPT_V6_DISCARD,
    }
)

_handle_ids = itertools.count(1)


@dataclass(eq=False)
class CompletionHandle:
    """``inMetaValues->completionHandle`` of one ALE classify."""

    layer_id: int
    reauthorize: bool = False
    #: the stack's callback ``on_complete(completionContext, netBufferList)``
    on_complete: Callable[[Any, Any], None] | None = None
    #: what the stack originally passed in the metadata, if it was not a CompletionHandle
    token: Any = None
    #: set by the engine while the classify runs
    live: bool = False
    pended: bool = False
    context: PendedOperation | None = None
    ident: int = field(default_factory=lambda: next(_handle_ids))

    def __repr__(self) -> str:
        state = "pended" if self.pended else ("live" if self.live else "idle")
        return f"<CompletionHandle #{self.ident} layer={self.layer_id} {state}>"


@dataclass(eq=False)
class PendedOperation:
    """The ``completionContext`` FwpsPendOperation0 returns."""

    handle: CompletionHandle
    completed: bool = False
    net_buffer_list: Any = None

    @property
    def layer_id(self) -> int:
        return self.handle.layer_id

    def __repr__(self) -> str:
        return f"<completionContext layer={self.layer_id} completed={self.completed}>"


class PendTable:
    def __init__(self) -> None:
        self.outstanding: list[PendedOperation] = []
        #: completions with no on_complete callback, for the stack to drain
        self.completed: list[PendedOperation] = []

    def pend(self, handle: Any) -> tuple[NTSTATUS, PendedOperation | None]:
        if handle is None:
            return NTSTATUS.STATUS_FWP_NULL_POINTER, None
        if not isinstance(handle, CompletionHandle):
            return NTSTATUS.STATUS_INVALID_PARAMETER, None
        if (
            handle.reauthorize
            or handle.layer_id not in PENDABLE_LAYERS
            or not handle.live
            or handle.pended
        ):
            return NTSTATUS.STATUS_FWP_CANNOT_PEND, None
        op = PendedOperation(handle)
        handle.pended = True
        handle.context = op
        self.outstanding.append(op)
        return NTSTATUS.STATUS_SUCCESS, op

    def complete(self, context: Any, net_buffer_list: Any) -> None:
        if not isinstance(context, PendedOperation) or context not in self.outstanding:
            raise ContractViolation(
                "FwpsCompleteOperation0: completionContext is not an outstanding pended "
                "operation (completed twice, or never returned by FwpsPendOperation0)"
            )
        self.outstanding.remove(context)
        context.completed = True
        context.net_buffer_list = net_buffer_list
        callback = context.handle.on_complete
        if callback is None:
            self.completed.append(context)
        else:
            callback(context, net_buffer_list)


__all__ = ["CompletionHandle", "PENDABLE_LAYERS", "PendTable", "PendedOperation"]
