"""Filter conditions: FWP_MATCH_* semantics over FWP_VALUE0 / FWP_CONDITION_VALUE0 (`layers.md §6-§7`).

A condition is ``(fieldId, matchType, conditionValue)``; at classify time it is tested against
``inFixedValues.incomingValue[fieldId].value``. :func:`compile_condition` validates a condition
the way FwpmFilterAdd0 does (raising :class:`WfpError` with the documented status) and returns a
fast predicate. :func:`compile_conditions` combines a filter's conditions with the WFP rule:
conditions on the *same* field are OR'ed, conditions on different fields are AND'ed; with
``FWPS_FILTER_FLAG_OR_CONDITIONS`` every condition is OR'ed. No condition matches everything.

Type rules (Microsoft Learn "FWP_MATCH_TYPE"): EQUAL works for every type; GREATER, LESS,
GREATER_OR_EQUAL, LESS_OR_EQUAL, RANGE and NOT_EQUAL need a *sortable* type (the integers,
FWP_BYTE_ARRAY16_TYPE, FWP_BYTE_BLOB_TYPE, FWP_UNICODE_STRING_TYPE); FLAGS_ALL_SET /
FLAGS_ANY_SET / FLAGS_NONE_SET need an unsigned integer; EQUAL_CASE_INSENSITIVE needs a string;
PREFIX / NOT_PREFIX (misnamed by Windows: the value *ends* with the condition value) need a string
or a byte blob. FWP_V4_ADDR_MASK / FWP_V6_ADDR_MASK conditions take EQUAL only and match an
FWP_UINT32 (host order) / FWP_BYTE_ARRAY16_TYPE address under the mask / prefix.

Simulator choices where Windows rejects at add time but the simulator cannot know a field's type
(the spec gives no field-type table) [emu]:
* integer condition values compare numerically with any integer incoming value, whatever the
  widths; a value of an incompatible family (bytes vs integer, ...) simply does not match;
* an FWP_EMPTY incoming value (field not provided by the layer) matches only an FWP_EMPTY
  condition with EQUAL (and NOT_EQUAL matches any non-empty value);
* FWP_SID / FWP_SECURITY_DESCRIPTOR_TYPE / token values compare by equality (no access check);
* PREFIX on a byte blob ignores trailing NUL bytes of both sides (ALE_APP_ID blobs are
  NUL-terminated UTF-16 paths).

Pythonic shorthands accepted wherever a condition value is expected (:func:`as_condition_value`):
``int`` (an unsigned integer of any width), ``bytes`` (16 → FWP_BYTE_ARRAY16_TYPE, 6 →
FWP_BYTE_ARRAY6_TYPE, else a blob), ``str``, ``ipaddress.IPv4Address`` (FWP_UINT32 host order),
``IPv6Address`` (16 bytes), ``IPv4Network`` / ``IPv6Network`` (address masks), a 2-tuple
``(low, high)`` (a range), ``FWP_VALUE0``, ``FWP_RANGE0``, ``FWP_V4_ADDR_AND_MASK``,
``FWP_V6_ADDR_AND_MASK``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import Any

from wfpsim.constants import (
    FWP_BYTE_ARRAY6_TYPE,
    FWP_BYTE_ARRAY16_TYPE,
    FWP_BYTE_BLOB_TYPE,
    FWP_DATA_TYPE,
    FWP_DOUBLE,
    FWP_EMPTY,
    FWP_FLOAT,
    FWP_INT8,
    FWP_INT16,
    FWP_INT32,
    FWP_INT64,
    FWP_MATCH_EQUAL,
    FWP_MATCH_EQUAL_CASE_INSENSITIVE,
    FWP_MATCH_FLAGS_ALL_SET,
    FWP_MATCH_FLAGS_ANY_SET,
    FWP_MATCH_FLAGS_NONE_SET,
    FWP_MATCH_GREATER,
    FWP_MATCH_GREATER_OR_EQUAL,
    FWP_MATCH_LESS,
    FWP_MATCH_LESS_OR_EQUAL,
    FWP_MATCH_NOT_EQUAL,
    FWP_MATCH_NOT_PREFIX,
    FWP_MATCH_PREFIX,
    FWP_MATCH_RANGE,
    FWP_MATCH_TYPE,
    FWP_RANGE_TYPE,
    FWP_UINT8,
    FWP_UINT16,
    FWP_UINT32,
    FWP_UINT64,
    FWP_UNICODE_STRING_TYPE,
    FWP_V4_ADDR_MASK,
    FWP_V6_ADDR_MASK,
    FWPS_FILTER_FLAG_OR_CONDITIONS,
)
from wfpsim.errors import InvalidParameterError
from wfpsim.fwps_types import (
    FWP_BYTE_BLOB,
    FWP_CONDITION_VALUE0,
    FWP_RANGE0,
    FWP_V4_ADDR_AND_MASK,
    FWP_V6_ADDR_AND_MASK,
    FWP_VALUE0,
    FWPS_FILTER_CONDITION0,
)
from wfpsim.status import NTSTATUS

UNSIGNED = frozenset({FWP_UINT8, FWP_UINT16, FWP_UINT32, FWP_UINT64})
SIGNED = frozenset({FWP_INT8, FWP_INT16, FWP_INT32, FWP_INT64})
INTEGERS = UNSIGNED | SIGNED
SORTABLE = INTEGERS | {FWP_BYTE_ARRAY16_TYPE, FWP_BYTE_BLOB_TYPE, FWP_UNICODE_STRING_TYPE}
_BITS = {FWP_UINT8: 8, FWP_UINT16: 16, FWP_UINT32: 32, FWP_UINT64: 64}
_BITS |= {FWP_INT8: 8, FWP_INT16: 16, FWP_INT32: 32, FWP_INT64: 64}

_ORDERED_MATCHES = {
    FWP_MATCH_GREATER: lambda a, b: a > b,
    FWP_MATCH_LESS: lambda a, b: a < b,
    FWP_MATCH_GREATER_OR_EQUAL: lambda a, b: a >= b,
    FWP_MATCH_LESS_OR_EQUAL: lambda a, b: a <= b,
    FWP_MATCH_EQUAL: lambda a, b: a == b,
    FWP_MATCH_NOT_EQUAL: lambda a, b: a != b,
}

Predicate = Callable[[FWP_VALUE0], bool]


def _bad(rule: str, status: NTSTATUS) -> InvalidParameterError:
    return InvalidParameterError(rule, status)


# ------------------------------------------------------------------------------------------------
# Shorthands
# ------------------------------------------------------------------------------------------------


def as_condition_value(value: Any) -> FWP_CONDITION_VALUE0:
    """Turns a condition value or one of the Pythonic shorthands into FWP_CONDITION_VALUE0."""
    if isinstance(value, FWP_CONDITION_VALUE0):
        return value
    if isinstance(value, FWP_VALUE0):
        return FWP_CONDITION_VALUE0(value.type, value.value)
    if isinstance(value, FWP_RANGE0):
        return FWP_CONDITION_VALUE0(FWP_RANGE_TYPE, value)
    if isinstance(value, FWP_V4_ADDR_AND_MASK):
        return FWP_CONDITION_VALUE0(FWP_V4_ADDR_MASK, value)
    if isinstance(value, FWP_V6_ADDR_AND_MASK):
        return FWP_CONDITION_VALUE0(FWP_V6_ADDR_MASK, value)
    if value is None:
        return FWP_CONDITION_VALUE0(FWP_EMPTY, None)
    if isinstance(value, bool):
        raise _bad("a condition value cannot be a bool", NTSTATUS.STATUS_FWP_TYPE_MISMATCH)
    if isinstance(value, int):
        return FWP_CONDITION_VALUE0(FWP_UINT64 if value >= 0 else FWP_INT64, value)
    if isinstance(value, ipaddress.IPv4Address):
        return FWP_CONDITION_VALUE0(FWP_UINT32, int(value))
    if isinstance(value, ipaddress.IPv6Address):
        return FWP_CONDITION_VALUE0(FWP_BYTE_ARRAY16_TYPE, value.packed)
    if isinstance(value, ipaddress.IPv4Network):
        return FWP_CONDITION_VALUE0(
            FWP_V4_ADDR_MASK,
            FWP_V4_ADDR_AND_MASK(int(value.network_address), int(value.netmask)),
        )
    if isinstance(value, ipaddress.IPv6Network):
        return FWP_CONDITION_VALUE0(
            FWP_V6_ADDR_MASK, FWP_V6_ADDR_AND_MASK(value.network_address.packed, value.prefixlen)
        )
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        if len(data) == 16:
            return FWP_CONDITION_VALUE0(FWP_BYTE_ARRAY16_TYPE, data)
        if len(data) == 6:
            return FWP_CONDITION_VALUE0(FWP_BYTE_ARRAY6_TYPE, data)
        return FWP_CONDITION_VALUE0(FWP_BYTE_BLOB_TYPE, FWP_BYTE_BLOB(len(data), data))
    if isinstance(value, str):
        return FWP_CONDITION_VALUE0(FWP_UNICODE_STRING_TYPE, value)
    if isinstance(value, tuple) and len(value) == 2:
        low = as_condition_value(value[0])
        high = as_condition_value(value[1])
        return FWP_CONDITION_VALUE0(
            FWP_RANGE_TYPE,
            FWP_RANGE0(FWP_VALUE0(low.type, low.value), FWP_VALUE0(high.type, high.value)),
        )
    raise _bad(
        f"cannot use {type(value).__name__} as a filter condition value",
        NTSTATUS.STATUS_FWP_TYPE_MISMATCH,
    )


def as_filter_condition(item: Any) -> FWPS_FILTER_CONDITION0:
    """A condition given as FWPS_FILTER_CONDITION0, FWPM_FILTER_CONDITION0-like object, or a
    ``(fieldId, matchType, value)`` / ``(fieldId, value)`` (EQUAL, or RANGE for a tuple) tuple."""
    if isinstance(item, FWPS_FILTER_CONDITION0):
        return FWPS_FILTER_CONDITION0(
            item.fieldId, 0, item.matchType, as_condition_value(item.conditionValue)
        )
    if hasattr(item, "fieldKey") and hasattr(item, "matchType"):  # FWPM_FILTER_CONDITION0
        return FWPS_FILTER_CONDITION0(
            int(item.fieldKey), 0, item.matchType, as_condition_value(item.conditionValue)
        )
    if isinstance(item, tuple) and len(item) == 3:
        field, match, value = item
        return FWPS_FILTER_CONDITION0(int(field), 0, int(match), as_condition_value(value))
    if isinstance(item, tuple) and len(item) == 2:
        field, value = item
        match = FWP_MATCH_RANGE if isinstance(value, tuple | FWP_RANGE0) else FWP_MATCH_EQUAL
        return FWPS_FILTER_CONDITION0(int(field), 0, match, as_condition_value(value))
    raise _bad(
        "a condition is (fieldId, matchType, value), (fieldId, value) or FWPS_FILTER_CONDITION0",
        NTSTATUS.STATUS_INVALID_PARAMETER,
    )


# ------------------------------------------------------------------------------------------------
# Value access
# ------------------------------------------------------------------------------------------------


def _family(data_type: int) -> str:
    if data_type in INTEGERS:
        return "int"
    if data_type in (FWP_FLOAT, FWP_DOUBLE):
        return "float"
    if data_type == FWP_BYTE_ARRAY16_TYPE:
        return "ba16"
    if data_type == FWP_BYTE_ARRAY6_TYPE:
        return "ba6"
    if data_type == FWP_BYTE_BLOB_TYPE:
        return "blob"
    if data_type == FWP_UNICODE_STRING_TYPE:
        return "str"
    if data_type == FWP_EMPTY:
        return "empty"
    return f"other{int(data_type)}"


def _key(family: str, value: Any) -> Any:
    """A comparable Python value for a typed value of `family`."""
    if family == "ba16":
        return int.from_bytes(bytes(value), "big")
    if family == "blob":
        if isinstance(value, FWP_BYTE_BLOB):
            return bytes(value.data[: value.size])
        return bytes(value)
    return value


def _check_scalar(data_type: int, value: Any) -> None:
    family = _family(data_type)
    if family == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise _bad(
                f"{FWP_DATA_TYPE(data_type).name} condition needs an integer value",
                NTSTATUS.STATUS_FWP_TYPE_MISMATCH,
            )
        bits = _BITS[data_type]
        low, high = (
            (0, (1 << bits) - 1)
            if data_type in UNSIGNED
            else (-(1 << bits - 1), (1 << bits - 1) - 1)
        )
        if not low <= value <= high:
            raise _bad(
                f"{value} does not fit {FWP_DATA_TYPE(data_type).name}",
                NTSTATUS.STATUS_FWP_OUT_OF_BOUNDS,
            )
    elif family == "ba16" and len(bytes(value)) != 16:
        raise _bad("FWP_BYTE_ARRAY16_TYPE needs 16 bytes", NTSTATUS.STATUS_FWP_TYPE_MISMATCH)
    elif family == "ba6" and len(bytes(value)) != 6:
        raise _bad("FWP_BYTE_ARRAY6_TYPE needs 6 bytes", NTSTATUS.STATUS_FWP_TYPE_MISMATCH)
    elif family == "str" and not isinstance(value, str):
        raise _bad("FWP_UNICODE_STRING_TYPE needs a str", NTSTATUS.STATUS_FWP_TYPE_MISMATCH)


def _strip_nuls(data: bytes) -> bytes:
    end = len(data)
    while end and data[end - 1] == 0:
        end -= 1
    return data[:end]


# ------------------------------------------------------------------------------------------------
# Compilation
# ------------------------------------------------------------------------------------------------


def compile_condition(cond: FWPS_FILTER_CONDITION0) -> Predicate:
    """Validates one condition (FwpmFilterAdd0 rules) and returns its predicate over FWP_VALUE0."""
    match = cond.matchType
    if (
        match not in FWP_MATCH_TYPE.__members__.values()
        or match == FWP_MATCH_TYPE.FWP_MATCH_TYPE_MAX
    ):
        raise _bad(
            f"matchType {match} is not an FWP_MATCH_TYPE", NTSTATUS.STATUS_FWP_INVALID_ENUMERATOR
        )
    cv = as_condition_value(cond.conditionValue)
    ctype = cv.type
    try:
        FWP_DATA_TYPE(ctype)
    except ValueError:
        raise _bad(
            f"condition value type {ctype} is not an FWP_DATA_TYPE",
            NTSTATUS.STATUS_FWP_INVALID_ENUMERATOR,
        ) from None
    mismatch = NTSTATUS.STATUS_FWP_TYPE_MISMATCH
    mname = FWP_MATCH_TYPE(match).name

    # --- ranges ----------------------------------------------------------------------------
    if match == FWP_MATCH_RANGE or ctype == FWP_RANGE_TYPE:
        if not (match == FWP_MATCH_RANGE and ctype == FWP_RANGE_TYPE):
            raise _bad("FWP_MATCH_RANGE goes with an FWP_RANGE_TYPE value, and only", mismatch)
        rng: FWP_RANGE0 = cv.value
        lo, hi = rng.valueLow, rng.valueHigh
        if lo.type != hi.type and not (lo.type in INTEGERS and hi.type in INTEGERS):
            raise _bad("FWP_RANGE0 low and high must have the same type", mismatch)
        if lo.type not in SORTABLE:
            raise _bad("FWP_MATCH_RANGE needs a sortable type", mismatch)
        _check_scalar(lo.type, lo.value)
        _check_scalar(hi.type, hi.value)
        family = _family(lo.type)
        klo, khi = _key(family, lo.value), _key(family, hi.value)
        if klo > khi:
            raise _bad("FWP_RANGE0 valueLow is above valueHigh", NTSTATUS.STATUS_FWP_OUT_OF_BOUNDS)

        def in_range(v: FWP_VALUE0) -> bool:
            if _family(v.type) != family:
                return False
            return klo <= _key(family, v.value) <= khi

        return in_range

    # --- address masks ---------------------------------------------------------------------
    if ctype in (FWP_V4_ADDR_MASK, FWP_V6_ADDR_MASK):
        if match != FWP_MATCH_EQUAL:
            raise _bad(
                f"{FWP_DATA_TYPE(ctype).name} takes FWP_MATCH_EQUAL only, not {mname}", mismatch
            )
        if ctype == FWP_V4_ADDR_MASK:
            am: FWP_V4_ADDR_AND_MASK = cv.value
            if not (0 <= am.addr <= 0xFFFFFFFF and 0 <= am.mask <= 0xFFFFFFFF):
                raise _bad(
                    "FWP_V4_ADDR_AND_MASK fields are UINT32", NTSTATUS.STATUS_FWP_OUT_OF_BOUNDS
                )
            want, mask = am.addr & am.mask, am.mask

            def v4_masked(v: FWP_VALUE0) -> bool:
                return v.type == FWP_UINT32 and (v.value & mask) == want

            return v4_masked
        m6: FWP_V6_ADDR_AND_MASK = cv.value
        if len(bytes(m6.addr)) != 16:
            raise _bad("FWP_V6_ADDR_AND_MASK.addr needs 16 bytes", mismatch)
        if not 0 <= m6.prefixLength <= 128:
            raise _bad(
                "FWP_V6_ADDR_AND_MASK.prefixLength is 0..128", NTSTATUS.STATUS_FWP_OUT_OF_BOUNDS
            )
        mask6 = ((1 << 128) - 1) ^ ((1 << (128 - m6.prefixLength)) - 1)
        want6 = int.from_bytes(bytes(m6.addr), "big") & mask6

        def v6_masked(v: FWP_VALUE0) -> bool:
            if v.type != FWP_BYTE_ARRAY16_TYPE:
                return False
            return int.from_bytes(bytes(v.value), "big") & mask6 == want6

        return v6_masked

    _check_scalar(ctype, cv.value)
    family = _family(ctype)
    cvalue = cv.value

    # --- empty ----------------------------------------------------------------------------
    if ctype == FWP_EMPTY:
        if match == FWP_MATCH_EQUAL:
            return lambda v: v.type == FWP_EMPTY
        if match == FWP_MATCH_NOT_EQUAL:
            return lambda v: v.type != FWP_EMPTY
        raise _bad(f"an FWP_EMPTY condition takes EQUAL or NOT_EQUAL, not {mname}", mismatch)

    # --- flags ----------------------------------------------------------------------------
    if match in (FWP_MATCH_FLAGS_ALL_SET, FWP_MATCH_FLAGS_ANY_SET, FWP_MATCH_FLAGS_NONE_SET):
        if ctype not in UNSIGNED:
            raise _bad(f"{mname} needs an unsigned integer type", mismatch)
        flags = cvalue
        if match == FWP_MATCH_FLAGS_ALL_SET:
            return lambda v: v.type in UNSIGNED and (v.value & flags) == flags
        if match == FWP_MATCH_FLAGS_ANY_SET:
            return lambda v: v.type in UNSIGNED and (v.value & flags) != 0
        return lambda v: v.type in UNSIGNED and (v.value & flags) == 0

    # --- strings / suffixes ---------------------------------------------------------------
    if match == FWP_MATCH_EQUAL_CASE_INSENSITIVE:
        if ctype != FWP_UNICODE_STRING_TYPE:
            raise _bad("FWP_MATCH_EQUAL_CASE_INSENSITIVE needs FWP_UNICODE_STRING_TYPE", mismatch)
        folded = cvalue.casefold()
        return lambda v: v.type == FWP_UNICODE_STRING_TYPE and v.value.casefold() == folded
    if match in (FWP_MATCH_PREFIX, FWP_MATCH_NOT_PREFIX):
        if family not in ("str", "blob"):
            raise _bad(f"{mname} needs FWP_UNICODE_STRING_TYPE or FWP_BYTE_BLOB_TYPE", mismatch)
        negate = match == FWP_MATCH_NOT_PREFIX
        if family == "str":
            suffix_s: str = cvalue

            def ends_with_str(v: FWP_VALUE0) -> bool:
                if v.type != FWP_UNICODE_STRING_TYPE:
                    return False
                return v.value.endswith(suffix_s) != negate

            return ends_with_str
        suffix_b = _strip_nuls(_key("blob", cvalue))

        def ends_with_blob(v: FWP_VALUE0) -> bool:
            if v.type != FWP_BYTE_BLOB_TYPE:
                return False
            return _strip_nuls(_key("blob", v.value)).endswith(suffix_b) != negate

        return ends_with_blob

    # --- ordered comparisons and equality -------------------------------------------------
    if match != FWP_MATCH_EQUAL and ctype not in SORTABLE:
        raise _bad(f"{mname} needs a sortable type, not {FWP_DATA_TYPE(ctype).name}", mismatch)
    compare = _ORDERED_MATCHES[match]
    ckey = _key(family, cvalue)

    def ordered(v: FWP_VALUE0) -> bool:
        if _family(v.type) != family:
            return False
        return compare(_key(family, v.value), ckey)

    if family == "int":
        # the hot path: integers compare directly
        def ordered_int(v: FWP_VALUE0) -> bool:
            return v.type in INTEGERS and compare(v.value, ckey)

        return ordered_int
    return ordered


FilterPredicate = Callable[[Sequence[Any]], bool]


def compile_conditions(
    conditions: Sequence[FWPS_FILTER_CONDITION0], flags: int, field_count: int | None = None
) -> FilterPredicate:
    """The predicate of a whole filter over ``inFixedValues.incomingValue``.

    Same-field conditions are OR'ed, different fields AND'ed; ``FWPS_FILTER_FLAG_OR_CONDITIONS``
    OR's them all. `field_count` (the layer's ``FWPS_FIELD_*_MAX``), when known, rejects unknown
    fields with STATUS_FWP_CONDITION_NOT_FOUND. A field index the layer does not provide at
    classify time makes that condition false.
    """
    groups: dict[int, list[Predicate]] = {}
    for cond in conditions:
        if cond.fieldId < 0 or (field_count is not None and cond.fieldId >= field_count):
            raise _bad(
                f"fieldId {cond.fieldId} is not a field of this layer",
                NTSTATUS.STATUS_FWP_CONDITION_NOT_FOUND,
            )
        groups.setdefault(cond.fieldId, []).append(compile_condition(cond))
    if not groups:
        return lambda values: True
    items = [(field, tuple(preds)) for field, preds in groups.items()]

    def value_at(values: Sequence[Any], field: int) -> FWP_VALUE0 | None:
        if field >= len(values):
            return None
        return values[field].value

    if flags & FWPS_FILTER_FLAG_OR_CONDITIONS:

        def any_condition(values: Sequence[Any]) -> bool:
            for field, preds in items:
                v = value_at(values, field)
                if v is not None and any(p(v) for p in preds):
                    return True
            return False

        return any_condition

    if len(items) == 1 and len(items[0][1]) == 1:
        (field, (pred,)) = items[0]

        def one_condition(values: Sequence[Any]) -> bool:
            v = value_at(values, field)
            return v is not None and pred(v)

        return one_condition

    def all_fields(values: Sequence[Any]) -> bool:
        for field, preds in items:
            v = value_at(values, field)
            if v is None or not any(p(v) for p in preds):
                return False
        return True

    return all_fields


__all__ = [
    "as_condition_value",
    "as_filter_condition",
    "compile_condition",
    "compile_conditions",
    "INTEGERS",
    "SORTABLE",
    "UNSIGNED",
]
