# ruff: noqa: F403, F405  (WDK constants are imported by name, as driver code does)
"""Filter conditions: every FWP_MATCH_* type over every value type, the add-time errors, and
how a filter combines its conditions (same field OR, different fields AND, OR_CONDITIONS)."""

from __future__ import annotations

import ipaddress

import pytest
from filterkit import meta, values

from wfpsim.constants import *  # noqa: F403
from wfpsim.errors import WfpError
from wfpsim.filtering import FilterEngine
from wfpsim.filtering.conditions import as_condition_value, compile_condition, compile_conditions
from wfpsim.fwps_types import (
    FWP_BYTE_BLOB,
    FWP_CONDITION_VALUE0,
    FWP_RANGE0,
    FWP_V4_ADDR_AND_MASK,
    FWP_V6_ADDR_AND_MASK,
    FWP_VALUE0,
    FWPS_FILTER_CONDITION0,
    FWPS_INCOMING_VALUE0,
)
from wfpsim.status import NTSTATUS

V6A = bytes.fromhex("20010db8000000000000000000000001")
V6B = bytes.fromhex("20010db8000000000000000000000002")
V6C = bytes.fromhex("20010db9000000000000000000000001")


def cv(t: int, v) -> FWP_CONDITION_VALUE0:
    return FWP_CONDITION_VALUE0(t, v)


def rng(lo: FWP_VALUE0, hi: FWP_VALUE0) -> FWP_CONDITION_VALUE0:
    return FWP_CONDITION_VALUE0(FWP_RANGE_TYPE, FWP_RANGE0(lo, hi))


def matches(match: int, cond: FWP_CONDITION_VALUE0, value: FWP_VALUE0) -> bool:
    return compile_condition(FWPS_FILTER_CONDITION0(0, 0, match, cond))(value)


def blob(b: bytes) -> FWP_BYTE_BLOB:
    return FWP_BYTE_BLOB(len(b), b)


CASES = [
    # integers: all the ordered matches, both sides of each
    (FWP_MATCH_EQUAL, cv(FWP_UINT16, 80), FWP_VALUE0.u16(80), True),
    (FWP_MATCH_EQUAL, cv(FWP_UINT16, 80), FWP_VALUE0.u16(81), False),
    (FWP_MATCH_NOT_EQUAL, cv(FWP_UINT16, 80), FWP_VALUE0.u16(81), True),
    (FWP_MATCH_NOT_EQUAL, cv(FWP_UINT16, 80), FWP_VALUE0.u16(80), False),
    (FWP_MATCH_GREATER, cv(FWP_UINT32, 10), FWP_VALUE0.u32(11), True),
    (FWP_MATCH_GREATER, cv(FWP_UINT32, 10), FWP_VALUE0.u32(10), False),
    (FWP_MATCH_LESS, cv(FWP_UINT32, 10), FWP_VALUE0.u32(9), True),
    (FWP_MATCH_LESS, cv(FWP_UINT32, 10), FWP_VALUE0.u32(10), False),
    (FWP_MATCH_GREATER_OR_EQUAL, cv(FWP_UINT8, 6), FWP_VALUE0.u8(6), True),
    (FWP_MATCH_GREATER_OR_EQUAL, cv(FWP_UINT8, 6), FWP_VALUE0.u8(5), False),
    (FWP_MATCH_LESS_OR_EQUAL, cv(FWP_UINT64, 1 << 40), FWP_VALUE0.u64(1 << 40), True),
    (FWP_MATCH_LESS_OR_EQUAL, cv(FWP_UINT64, 1 << 40), FWP_VALUE0.u64((1 << 40) + 1), False),
    (FWP_MATCH_LESS, cv(FWP_INT32, -5), FWP_VALUE0(FWP_INT32, -6), True),
    (FWP_MATCH_GREATER, cv(FWP_INT8, -5), FWP_VALUE0(FWP_INT8, -6), False),
    # integers of another width compare numerically [emu]
    (FWP_MATCH_EQUAL, cv(FWP_UINT64, 443), FWP_VALUE0.u16(443), True),
    # ranges (inclusive)
    (FWP_MATCH_RANGE, rng(FWP_VALUE0.u16(1000), FWP_VALUE0.u16(2000)), FWP_VALUE0.u16(1000), True),
    (FWP_MATCH_RANGE, rng(FWP_VALUE0.u16(1000), FWP_VALUE0.u16(2000)), FWP_VALUE0.u16(2000), True),
    (FWP_MATCH_RANGE, rng(FWP_VALUE0.u16(1000), FWP_VALUE0.u16(2000)), FWP_VALUE0.u16(999), False),
    (FWP_MATCH_RANGE, rng(FWP_VALUE0.u16(1000), FWP_VALUE0.u16(2000)), FWP_VALUE0.u16(2001), False),
    (
        FWP_MATCH_RANGE,
        rng(FWP_VALUE0.bytes16(V6A), FWP_VALUE0.bytes16(V6B)),
        FWP_VALUE0.bytes16(V6B),
        True,
    ),
    (
        FWP_MATCH_RANGE,
        rng(FWP_VALUE0.bytes16(V6A), FWP_VALUE0.bytes16(V6B)),
        FWP_VALUE0.bytes16(V6C),
        False,
    ),
    # flags
    (FWP_MATCH_FLAGS_ALL_SET, cv(FWP_UINT32, 0x21), FWP_VALUE0.u32(0x23), True),
    (FWP_MATCH_FLAGS_ALL_SET, cv(FWP_UINT32, 0x21), FWP_VALUE0.u32(0x01), False),
    (FWP_MATCH_FLAGS_ANY_SET, cv(FWP_UINT32, 0x21), FWP_VALUE0.u32(0x20), True),
    (FWP_MATCH_FLAGS_ANY_SET, cv(FWP_UINT32, 0x21), FWP_VALUE0.u32(0x02), False),
    (FWP_MATCH_FLAGS_NONE_SET, cv(FWP_UINT32, 0x21), FWP_VALUE0.u32(0x02), True),
    (FWP_MATCH_FLAGS_NONE_SET, cv(FWP_UINT32, 0x21), FWP_VALUE0.u32(0x01), False),
    # IPv4 address and mask (host order), IPv6 address and prefix
    (
        FWP_MATCH_EQUAL,
        cv(FWP_V4_ADDR_MASK, FWP_V4_ADDR_AND_MASK(0x0A000000, 0xFF000000)),
        FWP_VALUE0.u32(0x0A010203),
        True,
    ),
    (
        FWP_MATCH_EQUAL,
        cv(FWP_V4_ADDR_MASK, FWP_V4_ADDR_AND_MASK(0x0A000000, 0xFF000000)),
        FWP_VALUE0.u32(0x0B010203),
        False,
    ),
    (
        FWP_MATCH_EQUAL,
        cv(FWP_V4_ADDR_MASK, FWP_V4_ADDR_AND_MASK(0x0A000000, 0xFF000000)),
        FWP_VALUE0.bytes16(V6A),
        False,
    ),
    (
        FWP_MATCH_EQUAL,
        cv(FWP_V6_ADDR_MASK, FWP_V6_ADDR_AND_MASK(V6A, 32)),
        FWP_VALUE0.bytes16(V6B),
        True,
    ),
    (
        FWP_MATCH_EQUAL,
        cv(FWP_V6_ADDR_MASK, FWP_V6_ADDR_AND_MASK(V6A, 32)),
        FWP_VALUE0.bytes16(V6C),
        False,
    ),
    (
        FWP_MATCH_EQUAL,
        cv(FWP_V6_ADDR_MASK, FWP_V6_ADDR_AND_MASK(V6A, 128)),
        FWP_VALUE0.bytes16(V6B),
        False,
    ),
    (
        FWP_MATCH_EQUAL,
        cv(FWP_V6_ADDR_MASK, FWP_V6_ADDR_AND_MASK(V6A, 0)),
        FWP_VALUE0.bytes16(V6C),
        True,
    ),
    # 16-byte arrays are sortable (big-endian)
    (FWP_MATCH_EQUAL, cv(FWP_BYTE_ARRAY16_TYPE, V6A), FWP_VALUE0.bytes16(V6A), True),
    (FWP_MATCH_GREATER, cv(FWP_BYTE_ARRAY16_TYPE, V6A), FWP_VALUE0.bytes16(V6B), True),
    (FWP_MATCH_LESS, cv(FWP_BYTE_ARRAY16_TYPE, V6A), FWP_VALUE0.bytes16(V6B), False),
    (FWP_MATCH_NOT_EQUAL, cv(FWP_BYTE_ARRAY16_TYPE, V6A), FWP_VALUE0.bytes16(V6C), True),
    # 6-byte arrays (MAC addresses): EQUAL
    (
        FWP_MATCH_EQUAL,
        cv(FWP_BYTE_ARRAY6_TYPE, b"\x00\x11\x22\x33\x44\x55"),
        FWP_VALUE0.bytes6(b"\x00\x11\x22\x33\x44\x55"),
        True,
    ),
    (
        FWP_MATCH_EQUAL,
        cv(FWP_BYTE_ARRAY6_TYPE, b"\x00\x11\x22\x33\x44\x55"),
        FWP_VALUE0.bytes6(b"\x00\x11\x22\x33\x44\x56"),
        False,
    ),
    # blobs: equality, order, PREFIX = "ends with" (trailing NULs ignored)
    (FWP_MATCH_EQUAL, cv(FWP_BYTE_BLOB_TYPE, blob(b"abc")), FWP_VALUE0.blob(b"abc"), True),
    (FWP_MATCH_EQUAL, cv(FWP_BYTE_BLOB_TYPE, blob(b"abc")), FWP_VALUE0.blob(b"abd"), False),
    (FWP_MATCH_GREATER, cv(FWP_BYTE_BLOB_TYPE, blob(b"abc")), FWP_VALUE0.blob(b"abd"), True),
    (
        FWP_MATCH_PREFIX,
        cv(FWP_BYTE_BLOB_TYPE, blob("app.exe".encode("utf-16-le"))),
        FWP_VALUE0.blob("\\dev\\x\\app.exe\0".encode("utf-16-le")),
        True,
    ),
    (
        FWP_MATCH_PREFIX,
        cv(FWP_BYTE_BLOB_TYPE, blob("\\dev".encode("utf-16-le"))),
        FWP_VALUE0.blob("\\dev\\x\\app.exe\0".encode("utf-16-le")),
        False,
    ),
    (
        FWP_MATCH_NOT_PREFIX,
        cv(FWP_BYTE_BLOB_TYPE, blob("app.exe".encode("utf-16-le"))),
        FWP_VALUE0.blob("\\dev\\x\\b.exe\0".encode("utf-16-le")),
        True,
    ),
    # strings
    (FWP_MATCH_EQUAL, cv(FWP_UNICODE_STRING_TYPE, "Host"), FWP_VALUE0.string("Host"), True),
    (FWP_MATCH_EQUAL, cv(FWP_UNICODE_STRING_TYPE, "Host"), FWP_VALUE0.string("host"), False),
    (
        FWP_MATCH_EQUAL_CASE_INSENSITIVE,
        cv(FWP_UNICODE_STRING_TYPE, "Host"),
        FWP_VALUE0.string("hOST"),
        True,
    ),
    (
        FWP_MATCH_EQUAL_CASE_INSENSITIVE,
        cv(FWP_UNICODE_STRING_TYPE, "Host"),
        FWP_VALUE0.string("hostx"),
        False,
    ),
    (
        FWP_MATCH_PREFIX,
        cv(FWP_UNICODE_STRING_TYPE, ".example.com"),
        FWP_VALUE0.string("www.example.com"),
        True,
    ),
    (
        FWP_MATCH_PREFIX,
        cv(FWP_UNICODE_STRING_TYPE, "www."),
        FWP_VALUE0.string("www.example.com"),
        False,
    ),
    (
        FWP_MATCH_NOT_PREFIX,
        cv(FWP_UNICODE_STRING_TYPE, ".example.com"),
        FWP_VALUE0.string("www.example.org"),
        True,
    ),
    (
        FWP_MATCH_NOT_PREFIX,
        cv(FWP_UNICODE_STRING_TYPE, ".example.com"),
        FWP_VALUE0.string("a.example.com"),
        False,
    ),
    (FWP_MATCH_LESS, cv(FWP_UNICODE_STRING_TYPE, "b"), FWP_VALUE0.string("a"), True),
    # floats: EQUAL only
    (FWP_MATCH_EQUAL, cv(FWP_DOUBLE, 1.5), FWP_VALUE0(FWP_DOUBLE, 1.5), True),
    (FWP_MATCH_EQUAL, cv(FWP_FLOAT, 1.5), FWP_VALUE0(FWP_FLOAT, 2.5), False),
    # SID / security descriptor: equality [emu]
    (FWP_MATCH_EQUAL, cv(FWP_SID, b"S-1-5-18"), FWP_VALUE0(FWP_SID, b"S-1-5-18"), True),
    (
        FWP_MATCH_EQUAL,
        cv(FWP_SECURITY_DESCRIPTOR_TYPE, blob(b"sd")),
        FWP_VALUE0(FWP_SECURITY_DESCRIPTOR_TYPE, blob(b"other")),
        False,
    ),
    # FWP_EMPTY: matches only an empty (absent) field
    (FWP_MATCH_EQUAL, cv(FWP_EMPTY, None), FWP_VALUE0(), True),
    (FWP_MATCH_EQUAL, cv(FWP_EMPTY, None), FWP_VALUE0.u8(6), False),
    (FWP_MATCH_NOT_EQUAL, cv(FWP_EMPTY, None), FWP_VALUE0.u8(6), True),
    # a typed condition never matches an absent field, nor a value of another family
    (FWP_MATCH_EQUAL, cv(FWP_UINT16, 80), FWP_VALUE0(), False),
    (FWP_MATCH_EQUAL, cv(FWP_UINT32, 1), FWP_VALUE0.bytes16(V6A), False),
    (FWP_MATCH_NOT_EQUAL, cv(FWP_UINT32, 1), FWP_VALUE0.string("1"), False),
    (FWP_MATCH_FLAGS_ANY_SET, cv(FWP_UINT32, 1), FWP_VALUE0(FWP_INT32, 1), False),
]


@pytest.mark.parametrize("match,cond,value,expected", CASES)
def test_match(match, cond, value, expected):
    assert matches(match, cond, value) is expected


def test_every_match_type_is_covered():
    used = {c[0] for c in CASES}
    assert used == {m for m in FWP_MATCH_TYPE if m != FWP_MATCH_TYPE_MAX}


def test_every_value_type_is_covered():
    used = {c[1].type for c in CASES}
    used |= {c[1].value.valueLow.type for c in CASES if c[1].type == FWP_RANGE_TYPE}
    wanted = {
        FWP_EMPTY, FWP_UINT8, FWP_UINT16, FWP_UINT32, FWP_UINT64, FWP_INT8, FWP_INT32,
        FWP_FLOAT, FWP_DOUBLE, FWP_BYTE_ARRAY16_TYPE, FWP_BYTE_BLOB_TYPE, FWP_SID,
        FWP_SECURITY_DESCRIPTOR_TYPE, FWP_UNICODE_STRING_TYPE, FWP_BYTE_ARRAY6_TYPE,
        FWP_V4_ADDR_MASK, FWP_V6_ADDR_MASK, FWP_RANGE_TYPE,
    }  # fmt: skip
    assert wanted <= used


BAD = [
    # match type / value type incompatibilities (FwpmFilterAdd0 rules)
    (FWP_MATCH_GREATER, cv(FWP_BYTE_ARRAY6_TYPE, b"123456"), NTSTATUS.STATUS_FWP_TYPE_MISMATCH),
    (FWP_MATCH_LESS, cv(FWP_DOUBLE, 1.0), NTSTATUS.STATUS_FWP_TYPE_MISMATCH),
    (FWP_MATCH_FLAGS_ALL_SET, cv(FWP_INT32, 1), NTSTATUS.STATUS_FWP_TYPE_MISMATCH),
    (FWP_MATCH_FLAGS_ANY_SET, cv(FWP_BYTE_ARRAY16_TYPE, V6A), NTSTATUS.STATUS_FWP_TYPE_MISMATCH),
    (FWP_MATCH_EQUAL_CASE_INSENSITIVE, cv(FWP_UINT8, 1), NTSTATUS.STATUS_FWP_TYPE_MISMATCH),
    (FWP_MATCH_PREFIX, cv(FWP_UINT32, 1), NTSTATUS.STATUS_FWP_TYPE_MISMATCH),
    (FWP_MATCH_RANGE, cv(FWP_UINT32, 1), NTSTATUS.STATUS_FWP_TYPE_MISMATCH),
    (FWP_MATCH_EQUAL, rng(FWP_VALUE0.u8(1), FWP_VALUE0.u8(2)), NTSTATUS.STATUS_FWP_TYPE_MISMATCH),
    (
        FWP_MATCH_RANGE,
        rng(FWP_VALUE0.u8(1), FWP_VALUE0.bytes16(V6A)),
        NTSTATUS.STATUS_FWP_TYPE_MISMATCH,
    ),
    (
        FWP_MATCH_RANGE,
        rng(FWP_VALUE0.bytes6(b"123456"), FWP_VALUE0.bytes6(b"123457")),
        NTSTATUS.STATUS_FWP_TYPE_MISMATCH,
    ),
    (
        FWP_MATCH_NOT_EQUAL,
        cv(FWP_V4_ADDR_MASK, FWP_V4_ADDR_AND_MASK(1, 1)),
        NTSTATUS.STATUS_FWP_TYPE_MISMATCH,
    ),
    (FWP_MATCH_GREATER, cv(FWP_EMPTY, None), NTSTATUS.STATUS_FWP_TYPE_MISMATCH),
    (FWP_MATCH_EQUAL, cv(FWP_BYTE_ARRAY16_TYPE, b"short"), NTSTATUS.STATUS_FWP_TYPE_MISMATCH),
    (FWP_MATCH_EQUAL, cv(FWP_UINT16, "80"), NTSTATUS.STATUS_FWP_TYPE_MISMATCH),
    # values out of range
    (FWP_MATCH_EQUAL, cv(FWP_UINT8, 256), NTSTATUS.STATUS_FWP_OUT_OF_BOUNDS),
    (FWP_MATCH_EQUAL, cv(FWP_INT8, -129), NTSTATUS.STATUS_FWP_OUT_OF_BOUNDS),
    (FWP_MATCH_RANGE, rng(FWP_VALUE0.u16(9), FWP_VALUE0.u16(8)), NTSTATUS.STATUS_FWP_OUT_OF_BOUNDS),
    (
        FWP_MATCH_EQUAL,
        cv(FWP_V6_ADDR_MASK, FWP_V6_ADDR_AND_MASK(V6A, 129)),
        NTSTATUS.STATUS_FWP_OUT_OF_BOUNDS,
    ),
    # enumerators
    (FWP_MATCH_TYPE_MAX, cv(FWP_UINT8, 1), NTSTATUS.STATUS_FWP_INVALID_ENUMERATOR),
    (99, cv(FWP_UINT8, 1), NTSTATUS.STATUS_FWP_INVALID_ENUMERATOR),
    (FWP_MATCH_EQUAL, cv(0x999, 1), NTSTATUS.STATUS_FWP_INVALID_ENUMERATOR),
]


@pytest.mark.parametrize("match,cond,status", BAD)
def test_invalid_condition_is_rejected_with_its_status(match, cond, status):
    with pytest.raises(WfpError) as err:
        compile_condition(FWPS_FILTER_CONDITION0(0, 0, match, cond))
    assert err.value.status == status


def _iv(*vals):
    return [FWPS_INCOMING_VALUE0(v) for v in vals]


def test_same_field_conditions_are_ored_and_fields_anded():
    conds = [
        FWPS_FILTER_CONDITION0(0, 0, FWP_MATCH_EQUAL, cv(FWP_UINT16, 80)),
        FWPS_FILTER_CONDITION0(0, 0, FWP_MATCH_EQUAL, cv(FWP_UINT16, 443)),
        FWPS_FILTER_CONDITION0(1, 0, FWP_MATCH_EQUAL, cv(FWP_UINT8, 6)),
    ]
    pred = compile_conditions(conds, 0)
    assert pred(_iv(FWP_VALUE0.u16(80), FWP_VALUE0.u8(6)))
    assert pred(_iv(FWP_VALUE0.u16(443), FWP_VALUE0.u8(6)))
    assert not pred(_iv(FWP_VALUE0.u16(22), FWP_VALUE0.u8(6)))
    assert not pred(_iv(FWP_VALUE0.u16(80), FWP_VALUE0.u8(17)))


def test_or_conditions_flag_ors_every_condition():
    conds = [
        FWPS_FILTER_CONDITION0(0, 0, FWP_MATCH_EQUAL, cv(FWP_UINT16, 80)),
        FWPS_FILTER_CONDITION0(1, 0, FWP_MATCH_EQUAL, cv(FWP_UINT8, 6)),
    ]
    pred = compile_conditions(conds, FWPS_FILTER_FLAG_OR_CONDITIONS)
    assert pred(_iv(FWP_VALUE0.u16(80), FWP_VALUE0.u8(17)))
    assert pred(_iv(FWP_VALUE0.u16(22), FWP_VALUE0.u8(6)))
    assert not pred(_iv(FWP_VALUE0.u16(22), FWP_VALUE0.u8(17)))
    assert not compile_conditions(conds, 0)(_iv(FWP_VALUE0.u16(80), FWP_VALUE0.u8(17)))


def test_no_condition_matches_everything_and_missing_fields_do_not_match():
    assert compile_conditions([], 0)([])
    cond = FWPS_FILTER_CONDITION0(5, 0, FWP_MATCH_EQUAL, cv(FWP_UINT8, 1))
    assert not compile_conditions([cond], 0)(_iv(FWP_VALUE0.u8(1)))  # index 5 absent


def test_unknown_field_of_the_layer_is_condition_not_found():
    e = FilterEngine()
    with pytest.raises(WfpError) as err:
        e.add_filter(
            FWPS_LAYER_STREAM_V4,
            FWP_ACTION_BLOCK,
            conditions=[(FWPS_FIELD_STREAM_V4_MAX, FWP_MATCH_EQUAL, 1)],
        )
    assert err.value.status == NTSTATUS.STATUS_FWP_CONDITION_NOT_FOUND


@pytest.mark.parametrize(
    "shorthand,expected_type",
    [
        (80, FWP_UINT64),
        (-1, FWP_INT64),
        (ipaddress.IPv4Address("10.0.0.1"), FWP_UINT32),
        (ipaddress.IPv6Address("2001:db8::1"), FWP_BYTE_ARRAY16_TYPE),
        (ipaddress.IPv4Network("10.0.0.0/8"), FWP_V4_ADDR_MASK),
        (ipaddress.IPv6Network("2001:db8::/32"), FWP_V6_ADDR_MASK),
        (b"\x00" * 6, FWP_BYTE_ARRAY6_TYPE),
        (b"abc", FWP_BYTE_BLOB_TYPE),
        ("x", FWP_UNICODE_STRING_TYPE),
        ((1, 2), FWP_RANGE_TYPE),
        (None, FWP_EMPTY),
    ],
)
def test_pythonic_shorthands(shorthand, expected_type):
    assert as_condition_value(shorthand).type == expected_type


def test_shorthands_through_add_filter_match_like_the_wdk_values():
    e = FilterEngine()
    layer = FWPS_LAYER_OUTBOUND_TRANSPORT_V4
    e.add_filter(
        layer,
        FWP_ACTION_BLOCK,
        conditions=[
            (
                FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_ADDRESS,
                ipaddress.IPv4Network("10.0.0.0/8"),
            ),
            (FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_PORT, (1000, 2000)),
            (FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_PROTOCOL, FWP_MATCH_EQUAL, 6),
        ],
    )

    def run(addr, port, proto):
        v = values(
            layer,
            IP_REMOTE_ADDRESS=FWP_VALUE0.u32(int(ipaddress.IPv4Address(addr))),
            IP_REMOTE_PORT=FWP_VALUE0.u16(port),
            IP_PROTOCOL=FWP_VALUE0.u8(proto),
        )
        return e.classify(layer, v, meta(), None).actionType

    assert run("10.1.2.3", 1500, 6) == FWP_ACTION_BLOCK
    assert run("11.1.2.3", 1500, 6) == FWP_ACTION_NONE
    assert run("10.1.2.3", 999, 6) == FWP_ACTION_NONE
    assert run("10.1.2.3", 1500, 17) == FWP_ACTION_NONE


def test_condition_list_errors_leave_no_filter_behind():
    e = FilterEngine()
    with pytest.raises(WfpError):
        e.add_filter(FWPS_LAYER_STREAM_V4, FWP_ACTION_BLOCK, conditions=[(0, 99, 1)])
    assert e.filters() == []
    with pytest.raises(WfpError) as err:
        e.add_filter(FWPS_LAYER_STREAM_V4, FWP_ACTION_BLOCK, conditions=["junk"])
    assert err.value.status == NTSTATUS.STATUS_INVALID_PARAMETER
