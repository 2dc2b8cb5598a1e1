"""Sublayers, filters and weights of one filter engine (`layers.md §7.3, §7.5`).

* A :class:`SubLayer` has a key and a UINT16 weight (higher = evaluated first). Every engine has
  ``FWPM_SUBLAYER_UNIVERSAL`` (the sublayer of filters added without one), weighted 0x8000 as
  WFPSampler assumes (the spec marks that weight unconfirmed) [emu].
* A :class:`Filter` lives at one run-time layer, in one sublayer, with an effective UINT64
  weight, an action, conditions, FWPS_FILTER_FLAG_* flags and a context. Weights follow
  FwpmFilterAdd0: an explicit FWP_UINT64 is used as is; FWP_EMPTY makes the engine pick a weight
  in [0, 2^60) from the filter's specificity; FWP_UINT8 0-15 puts that value in the top 4 bits
  over the same automatic weight. The specificity formula of Windows is not documented; the
  simulator's is ``distinct condition fields << 52 | conditions << 40`` [emu].
* Equal weights in one sublayer are "undefined ordering" in Windows (§7.5 rule 5); the simulator
  orders them by filter id (added first, evaluated first) so runs are deterministic [emu].
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from wfpsim.constants import (
    FWP_ACTION_BLOCK,
    FWP_ACTION_CALLOUT_INSPECTION,
    FWP_ACTION_CALLOUT_TERMINATING,
    FWP_ACTION_CALLOUT_UNKNOWN,
    FWP_ACTION_FLAG_CALLOUT,
    FWP_ACTION_PERMIT,
    FWP_EMPTY,
    FWP_UINT8,
    FWP_UINT64,
    FWPS_BUILTIN_KM_LAYER_MAX,
    FWPS_BUILTIN_LAYERS,
    FWPS_FILTER_FLAG_CLEAR_ACTION_RIGHT,
    FWPS_FILTER_FLAG_HAS_SECURITY_REALM_PROVIDER_CONTEXT,
    FWPS_FILTER_FLAG_IPSEC_NO_ACQUIRE_INITIATE,
    FWPS_FILTER_FLAG_OR_CONDITIONS,
    FWPS_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED,
    FWPS_FILTER_FLAG_SILENT_MODE,
)
from wfpsim.constants.layers import FIELDS_BY_LAYER
from wfpsim.errors import InvalidParameterError, InvalidStateError
from wfpsim.filtering.conditions import FilterPredicate, as_filter_condition, compile_conditions
from wfpsim.fwps_types import FWP_VALUE0, FWPS_ACTION0, FWPS_FILTER0, FWPS_FILTER_CONDITION0
from wfpsim.status import NTSTATUS

#: fwpmu.h ``FWPM_SUBLAYER_UNIVERSAL`` {eebecc03-ced4-4380-819a-2734397b2b74}.
FWPM_SUBLAYER_UNIVERSAL = uuid.UUID("eebecc03-ced4-4380-819a-2734397b2b74")
#: WFPSampler's ``FWPM_SUBLAYER_UNIVERSAL_WEIGHT`` (layers.md §7.3: unconfirmed) [emu].
UNIVERSAL_SUBLAYER_WEIGHT = 0x8000

FILTER_ACTIONS = frozenset(
    {
        FWP_ACTION_BLOCK,
        FWP_ACTION_PERMIT,
        FWP_ACTION_CALLOUT_TERMINATING,
        FWP_ACTION_CALLOUT_INSPECTION,
        FWP_ACTION_CALLOUT_UNKNOWN,
    }
)
KNOWN_FILTER_FLAGS = (
    FWPS_FILTER_FLAG_CLEAR_ACTION_RIGHT
    | FWPS_FILTER_FLAG_PERMIT_IF_CALLOUT_UNREGISTERED
    | FWPS_FILTER_FLAG_OR_CONDITIONS
    | FWPS_FILTER_FLAG_HAS_SECURITY_REALM_PROVIDER_CONTEXT
    | FWPS_FILTER_FLAG_SILENT_MODE
    | FWPS_FILTER_FLAG_IPSEC_NO_ACQUIRE_INITIATE
)
MAX_AUTO_WEIGHT = (1 << 60) - 1


@dataclass(eq=False)
class SubLayer:
    key: Hashable
    weight: int
    name: str | None = None
    seq: int = 0
    builtin: bool = False

    def __repr__(self) -> str:
        return f"<SubLayer {self.name or self.key} weight=0x{self.weight:04x}>"


@dataclass(eq=False)
class Filter:
    """One filter; `fwps` is the FWPS_FILTER0 handed to notifyFn / classifyFn (one object per
    filter, so a context a notifyFn writes into ``filter.context`` persists)."""

    filter_id: int
    key: Hashable
    layer_id: int
    sublayer: SubLayer
    weight: int
    weight_value: FWP_VALUE0
    action_type: int
    callout_key: Hashable | None
    flags: int
    conditions: list[FWPS_FILTER_CONDITION0]
    predicate: FilterPredicate
    fwps: FWPS_FILTER0
    name: str | None = None
    provider_key: Any = None
    #: the stack's stream flows that existed before this filter (mid-stream rule)
    created_at: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_callout(self) -> bool:
        return bool(self.action_type & FWP_ACTION_FLAG_CALLOUT)

    @property
    def context(self) -> int:
        return self.fwps.context

    def __repr__(self) -> str:
        label = self.name or self.key
        return (
            f"<Filter id={self.filter_id} {label!s} layer={self.layer_id} "
            f"action=0x{self.action_type:x} weight=0x{self.weight:x} sublayer={self.sublayer!r}>"
        )


def layer_field_count(layer_id: int) -> int | None:
    """``FWPS_FIELD_<LAYER>_MAX`` of a layer (its discard twin shares it), None if not tabled."""
    try:
        name = FWPS_BUILTIN_LAYERS(layer_id).name.removesuffix("_DISCARD")
    except ValueError:
        return None
    fields = FIELDS_BY_LAYER.get(FWPS_BUILTIN_LAYERS[name])
    if fields is None:
        return None
    return int(fields[f"FWPS_FIELD_{name.removeprefix('FWPS_LAYER_')}_MAX"])


def check_layer(layer_id: Any) -> int:
    """A kernel-mode run-time layer id, else STATUS_FWP_LAYER_NOT_FOUND."""
    if isinstance(layer_id, bool) or not isinstance(layer_id, int):
        raise InvalidParameterError(
            f"layer {layer_id!r} is not a run-time layer id (FWPS_LAYER_*)",
            NTSTATUS.STATUS_FWP_LAYER_NOT_FOUND,
        )
    if not 0 <= layer_id < FWPS_BUILTIN_KM_LAYER_MAX:
        raise InvalidParameterError(
            f"layer {layer_id} is not a kernel-mode filtering layer",
            NTSTATUS.STATUS_FWP_LAYER_NOT_FOUND,
        )
    return int(layer_id)


def auto_weight(conditions: Sequence[FWPS_FILTER_CONDITION0]) -> int:
    """The engine-chosen weight in [0, 2^60) for FWP_EMPTY (more specific = heavier) [emu]."""
    fields = len({c.fieldId for c in conditions})
    return min(MAX_AUTO_WEIGHT, (min(fields, 255) << 52) | (min(len(conditions), 4095) << 40))


def effective_weight(
    weight: Any, conditions: Sequence[FWPS_FILTER_CONDITION0]
) -> tuple[int, FWP_VALUE0]:
    """``(UINT64 weight, the FWP_VALUE0 given)``; STATUS_FWP_INVALID_WEIGHT if not allowed."""
    if weight is None:
        weight = FWP_VALUE0(FWP_EMPTY, None)
    elif isinstance(weight, int) and not isinstance(weight, bool):
        weight = FWP_VALUE0(FWP_UINT64, weight)
    if not isinstance(weight, FWP_VALUE0):
        raise InvalidParameterError(
            "weight is FWP_EMPTY, FWP_UINT8 (0-15) or FWP_UINT64",
            NTSTATUS.STATUS_FWP_INVALID_WEIGHT,
        )
    if weight.type == FWP_EMPTY:
        return auto_weight(conditions), weight
    if weight.type == FWP_UINT8:
        if not isinstance(weight.value, int) or not 0 <= weight.value <= 15:
            raise InvalidParameterError(
                f"an FWP_UINT8 weight is 0..15, not {weight.value!r}",
                NTSTATUS.STATUS_FWP_INVALID_WEIGHT,
            )
        return (weight.value << 60) | auto_weight(conditions), weight
    if weight.type == FWP_UINT64:
        if not isinstance(weight.value, int) or not 0 <= weight.value < (1 << 64):
            raise InvalidParameterError(
                f"an FWP_UINT64 weight is 0..2^64-1, not {weight.value!r}",
                NTSTATUS.STATUS_FWP_INVALID_WEIGHT,
            )
        return weight.value, weight
    raise InvalidParameterError(
        f"a filter weight cannot have type {weight.type}", NTSTATUS.STATUS_FWP_INVALID_WEIGHT
    )


class FilterTable:
    """Sublayers and filters, with a per-layer evaluation plan rebuilt on change."""

    def __init__(self) -> None:
        self.sublayers: dict[Hashable, SubLayer] = {}
        self.filters: dict[int, Filter] = {}
        self.by_key: dict[Hashable, Filter] = {}
        self._next_filter_id = 1
        self._seq = 0
        self._plans: dict[int, list[tuple[SubLayer, list[Filter]]]] = {}
        self.generation = 0
        self.add_sublayer(
            FWPM_SUBLAYER_UNIVERSAL,
            UNIVERSAL_SUBLAYER_WEIGHT,
            "FWPM_SUBLAYER_UNIVERSAL",
            builtin=True,
        )

    # ---- sublayers ----------------------------------------------------------------------

    def add_sublayer(
        self, key: Hashable, weight: int, name: str | None = None, *, builtin: bool = False
    ) -> SubLayer:
        if key is None:
            raise InvalidParameterError("a sublayer needs a key", NTSTATUS.STATUS_INVALID_PARAMETER)
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 0xFFFF:
            raise InvalidParameterError(
                f"a sublayer weight is a UINT16, not {weight!r}", NTSTATUS.STATUS_INVALID_PARAMETER
            )
        if key in self.sublayers:
            raise InvalidStateError(
                f"sublayer {key!r} already exists", NTSTATUS.STATUS_FWP_ALREADY_EXISTS
            )
        self._seq += 1
        sub = SubLayer(key, weight, name, self._seq, builtin)
        self.sublayers[key] = sub
        self._changed()
        return sub

    def delete_sublayer(self, key: Hashable) -> None:
        sub = self.sublayers.get(key)
        if sub is None:
            raise InvalidStateError(f"no sublayer {key!r}", NTSTATUS.STATUS_FWP_SUBLAYER_NOT_FOUND)
        if sub.builtin:
            raise InvalidStateError(
                "FWPM_SUBLAYER_UNIVERSAL is built in", NTSTATUS.STATUS_ACCESS_DENIED
            )
        if any(f.sublayer is sub for f in self.filters.values()):
            raise InvalidStateError(
                f"sublayer {key!r} still holds filters", NTSTATUS.STATUS_FWP_IN_USE
            )
        del self.sublayers[key]
        self._changed()

    def sublayer(self, key: Hashable | None) -> SubLayer:
        if key is None:
            return self.sublayers[FWPM_SUBLAYER_UNIVERSAL]
        sub = self.sublayers.get(key)
        if sub is None:
            raise InvalidParameterError(
                f"no sublayer {key!r}; add it first", NTSTATUS.STATUS_FWP_SUBLAYER_NOT_FOUND
            )
        return sub

    # ---- filters ------------------------------------------------------------------------

    def build(
        self,
        *,
        layer: int,
        action: int,
        callout_key: Hashable | None,
        conditions: Sequence[Any],
        weight: Any,
        sublayer: Hashable | None,
        flags: int,
        context: int,
        key: Hashable | None,
        name: str | None,
        provider_context: Any,
        provider_key: Any = None,
    ) -> Filter:
        """Validates everything and returns a Filter (not yet in the table)."""
        layer_id = check_layer(layer)
        if action not in FILTER_ACTIONS:
            raise InvalidParameterError(
                f"action 0x{action:x} is not a filter action type",
                NTSTATUS.STATUS_FWP_INVALID_ACTION_TYPE,
            )
        is_callout = bool(action & FWP_ACTION_FLAG_CALLOUT)
        if is_callout and callout_key is None:
            raise InvalidParameterError(
                "a callout action needs the callout's key", NTSTATUS.STATUS_FWP_CALLOUT_NOT_FOUND
            )
        if isinstance(flags, bool) or not isinstance(flags, int) or flags & ~KNOWN_FILTER_FLAGS:
            raise InvalidParameterError(
                f"unknown FWPS_FILTER_FLAG bits in {flags!r}", NTSTATUS.STATUS_FWP_INVALID_FLAGS
            )
        if not isinstance(context, int) or not 0 <= context < (1 << 64):
            raise InvalidParameterError(
                "a filter context is a UINT64", NTSTATUS.STATUS_INVALID_PARAMETER
            )
        if key is not None and key in self.by_key:
            raise InvalidStateError(
                f"a filter with key {key!r} already exists", NTSTATUS.STATUS_FWP_ALREADY_EXISTS
            )
        conds = [as_filter_condition(c) for c in conditions]
        predicate = compile_conditions(conds, flags, layer_field_count(layer_id))
        eff, given = effective_weight(weight, conds)
        sub = self.sublayer(sublayer)
        filter_id = self._next_filter_id
        self._next_filter_id += 1  # an add that fails later leaves a gap, as in the BFE
        fwps = FWPS_FILTER0(
            filterId=filter_id,
            weight=FWP_VALUE0(FWP_UINT64, eff),
            subLayerWeight=sub.weight,
            flags=flags,
            numFilterConditions=len(conds),
            filterCondition=conds,
            action=FWPS_ACTION0(action, 0),
            context=context,
            providerContext=provider_context,
        )
        return Filter(
            filter_id=filter_id,
            key=key if key is not None else uuid.UUID(int=filter_id),
            layer_id=layer_id,
            sublayer=sub,
            weight=eff,
            weight_value=given,
            action_type=action,
            callout_key=callout_key if is_callout else None,
            flags=flags,
            conditions=conds,
            predicate=predicate,
            fwps=fwps,
            name=name,
            provider_key=provider_key,
        )

    def insert(self, flt: Filter) -> None:
        if flt.key in self.by_key:  # a notifyFn added the same key meanwhile
            raise InvalidStateError(
                f"a filter with key {flt.key!r} already exists", NTSTATUS.STATUS_FWP_ALREADY_EXISTS
            )
        self.filters[flt.filter_id] = flt
        self.by_key[flt.key] = flt
        self._changed()

    def remove(self, flt: Filter) -> None:
        self.filters.pop(flt.filter_id, None)
        if self.by_key.get(flt.key) is flt:
            del self.by_key[flt.key]
        self._changed()

    def get(self, filter_id: int) -> Filter:
        flt = self.filters.get(filter_id)
        if flt is None:
            raise InvalidStateError(
                f"no filter with id {filter_id}", NTSTATUS.STATUS_FWP_FILTER_NOT_FOUND
            )
        return flt

    def get_by_key(self, key: Hashable) -> Filter:
        flt = self.by_key.get(key)
        if flt is None:
            raise InvalidStateError(
                f"no filter with key {key!r}", NTSTATUS.STATUS_FWP_FILTER_NOT_FOUND
            )
        return flt

    # ---- evaluation plan ----------------------------------------------------------------

    def _changed(self) -> None:
        self._plans.clear()
        self.generation += 1

    def plan(self, layer_id: int) -> list[tuple[SubLayer, list[Filter]]]:
        """Sublayers of a layer in evaluation order, each with its filters in weight order."""
        plan = self._plans.get(layer_id)
        if plan is not None:
            return plan
        groups: dict[int, list[Filter]] = {}
        subs: dict[int, SubLayer] = {}
        for flt in self.filters.values():
            if flt.layer_id == layer_id:
                groups.setdefault(id(flt.sublayer), []).append(flt)
                subs[id(flt.sublayer)] = flt.sublayer
        plan = []
        for sid in sorted(subs, key=lambda s: (-subs[s].weight, subs[s].seq)):
            filters = sorted(groups[sid], key=lambda f: (-f.weight, f.filter_id))
            plan.append((subs[sid], filters))
        self._plans[layer_id] = plan
        return plan


__all__ = [
    "FWPM_SUBLAYER_UNIVERSAL",
    "UNIVERSAL_SUBLAYER_WEIGHT",
    "Filter",
    "FilterTable",
    "SubLayer",
    "auto_weight",
    "check_layer",
    "effective_weight",
    "layer_field_count",
]
