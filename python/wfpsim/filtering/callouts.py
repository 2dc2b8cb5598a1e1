"""The run-time callout registry of one filter engine (`layers.md §7.1-§7.2, §8`).

A callout is registered with FwpsCalloutRegister0/1/2 (here :meth:`CalloutRegistry.register`):
its key (any hashable; a ``uuid.UUID`` in ported driver code), flags, and the three callbacks.
The registration *version* decides the classifyFn argument list:

* version 0 (FWPS_CALLOUT0):  ``classifyFn(inFixedValues, inMetaValues, layerData, filter,
  flowContext, classifyOut)``
* version 1/2 (FWPS_CALLOUT1/2): ``classifyFn(inFixedValues, inMetaValues, layerData,
  classifyContext, filter, flowContext, classifyOut)``

``notifyFn(notifyType, filterKey, filter)`` and ``flowDeleteFn(layerId, calloutId,
flowContext)`` are the same for every version. Run-time ids are per engine and per key: they start
at 1, and a key keeps its id across unregister / register and FwpmCalloutAdd0.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from wfpsim.constants import (
    FWP_CALLOUT_FLAG_ALLOW_L2_BATCH_CLASSIFY,
    FWP_CALLOUT_FLAG_ALLOW_MID_STREAM_INSPECTION,
    FWP_CALLOUT_FLAG_ALLOW_OFFLOAD,
    FWP_CALLOUT_FLAG_ALLOW_RECLASSIFY,
    FWP_CALLOUT_FLAG_ALLOW_RSC,
    FWP_CALLOUT_FLAG_ALLOW_URO,
    FWP_CALLOUT_FLAG_ALLOW_USO,
    FWP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW,
    FWP_CALLOUT_FLAG_ENABLE_COMMIT_ADD_NOTIFY,
    FWP_CALLOUT_FLAG_RESERVED1,
)
from wfpsim.errors import InvalidParameterError, InvalidStateError
from wfpsim.status import NTSTATUS

#: Every FWP_CALLOUT_FLAG_* bit the spec lists; others are STATUS_FWP_INVALID_FLAGS [emu].
KNOWN_CALLOUT_FLAGS = (
    FWP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW
    | FWP_CALLOUT_FLAG_ALLOW_OFFLOAD
    | FWP_CALLOUT_FLAG_ENABLE_COMMIT_ADD_NOTIFY
    | FWP_CALLOUT_FLAG_ALLOW_MID_STREAM_INSPECTION
    | FWP_CALLOUT_FLAG_ALLOW_RECLASSIFY
    | FWP_CALLOUT_FLAG_RESERVED1
    | FWP_CALLOUT_FLAG_ALLOW_RSC
    | FWP_CALLOUT_FLAG_ALLOW_L2_BATCH_CLASSIFY
    | FWP_CALLOUT_FLAG_ALLOW_USO
    | FWP_CALLOUT_FLAG_ALLOW_URO
)


@dataclass(eq=False)
class Callout:
    """One registered callout."""

    key: Hashable
    callout_id: int
    version: int
    flags: int
    classify_fn: Callable[..., Any]
    notify_fn: Callable[..., Any] | None
    flow_delete_fn: Callable[..., Any] | None
    device_object: Any = None
    #: classifies of this callout currently on the call stack
    active: int = 0
    #: "being (un)registered": notifications of its own registration are running
    busy: bool = False
    registered: bool = True
    stats: dict[str, int] = field(default_factory=lambda: {"classify": 0, "notify": 0})

    @property
    def conditional_on_flow(self) -> bool:
        return bool(self.flags & FWP_CALLOUT_FLAG_CONDITIONAL_ON_FLOW)

    @property
    def allow_mid_stream(self) -> bool:
        return bool(self.flags & FWP_CALLOUT_FLAG_ALLOW_MID_STREAM_INSPECTION)

    def call_classify(
        self,
        inFixedValues: Any,
        inMetaValues: Any,
        layerData: Any,
        classifyContext: Any,
        filter: Any,
        flowContext: int,
        classifyOut: Any,
    ) -> None:
        self.stats["classify"] += 1
        if self.version == 0:
            self.classify_fn(
                inFixedValues, inMetaValues, layerData, filter, flowContext, classifyOut
            )
        else:
            self.classify_fn(
                inFixedValues,
                inMetaValues,
                layerData,
                classifyContext,
                filter,
                flowContext,
                classifyOut,
            )

    def __repr__(self) -> str:
        name = getattr(self.classify_fn, "__qualname__", repr(self.classify_fn))
        return f"<Callout id={self.callout_id} key={self.key!r} classifyFn={name}>"


class CalloutRegistry:
    """Callouts of one engine, by run-time id and by key."""

    def __init__(self) -> None:
        self._by_id: dict[int, Callout] = {}
        self._by_key: dict[Hashable, Callout] = {}
        #: run-time ids are per key and stable: FwpmCalloutAdd0 and a re-registration see the
        #: same id as the first registration (the BFE assigns one id per callout key) [emu]
        self._ids: dict[Hashable, int] = {}
        self._next_id = 1

    def id_for_key(self, key: Hashable) -> int:
        callout_id = self._ids.get(key)
        if callout_id is None:
            callout_id = self._ids[key] = self._next_id
            self._next_id += 1
        return callout_id

    def __iter__(self):
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def by_id(self, callout_id: int) -> Callout | None:
        return self._by_id.get(callout_id)

    def by_key(self, key: Hashable) -> Callout | None:
        return self._by_key.get(key)

    def add(
        self,
        key: Hashable,
        classify_fn: Callable[..., Any],
        notify_fn: Callable[..., Any] | None,
        flow_delete_fn: Callable[..., Any] | None,
        flags: int,
        version: int,
        device_object: Any = None,
    ) -> Callout:
        """Validates and records a registration (notifications are the engine's business).

        Errors: STATUS_FWP_ALREADY_EXISTS (the key is registered), STATUS_FWP_IN_USE (that key
        is being registered right now, i.e. from one of its own registration callbacks),
        STATUS_INVALID_PARAMETER (no key / no classifyFn / a callback that is not callable),
        STATUS_FWP_INVALID_FLAGS (a flag bit no header defines) [emu].
        """
        if key is None:
            raise InvalidParameterError(
                "FwpsCalloutRegister: calloutKey is required", NTSTATUS.STATUS_INVALID_PARAMETER
            )
        try:
            hash(key)
        except TypeError:
            raise InvalidParameterError(
                "FwpsCalloutRegister: calloutKey must be hashable (a GUID)",
                NTSTATUS.STATUS_INVALID_PARAMETER,
            ) from None
        if not callable(classify_fn):
            raise InvalidParameterError(
                "FwpsCalloutRegister: classifyFn is required and must be callable",
                NTSTATUS.STATUS_INVALID_PARAMETER,
            )
        for name, fn in (("notifyFn", notify_fn), ("flowDeleteFn", flow_delete_fn)):
            if fn is not None and not callable(fn):
                raise InvalidParameterError(
                    f"FwpsCalloutRegister: {name} must be callable or None",
                    NTSTATUS.STATUS_INVALID_PARAMETER,
                )
        if flags & ~KNOWN_CALLOUT_FLAGS:
            raise InvalidParameterError(
                f"FwpsCalloutRegister: unknown FWP_CALLOUT_FLAG bits 0x{flags & ~KNOWN_CALLOUT_FLAGS:x}",
                NTSTATUS.STATUS_FWP_INVALID_FLAGS,
            )
        existing = self._by_key.get(key)
        if existing is not None:
            if existing.busy:
                raise InvalidStateError(
                    f"FwpsCalloutRegister: callout {key!r} is being (un)registered",
                    NTSTATUS.STATUS_FWP_IN_USE,
                )
            raise InvalidStateError(
                f"FwpsCalloutRegister: a callout with key {key!r} is already registered",
                NTSTATUS.STATUS_FWP_ALREADY_EXISTS,
            )
        callout = Callout(
            key=key,
            callout_id=self.id_for_key(key),
            version=version,
            flags=flags,
            classify_fn=classify_fn,
            notify_fn=notify_fn,
            flow_delete_fn=flow_delete_fn,
            device_object=device_object,
        )
        self._by_id[callout.callout_id] = callout
        self._by_key[key] = callout
        return callout

    def remove(self, callout: Callout) -> None:
        callout.registered = False
        self._by_id.pop(callout.callout_id, None)
        if self._by_key.get(callout.key) is callout:
            del self._by_key[callout.key]


__all__ = ["Callout", "CalloutRegistry", "KNOWN_CALLOUT_FLAGS"]
