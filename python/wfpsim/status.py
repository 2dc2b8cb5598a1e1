"""NTSTATUS / NDIS_STATUS codes used by the simulated WFP and NDIS APIs.

Every status code named in the spec (``/work/shared/spec``: injection.md §1.6, nbl.md §5,
samples.md) is a member of :class:`NTSTATUS` with its real Windows value, taken from
``shared/ntstatus.h`` and ``km/ndis.h`` of WDK 10.0.16299.0.

Conventions

* Values are the **unsigned** 32-bit encodings (``0xC0220101``), never negative. Windows declares
  ``NTSTATUS`` and ``NDIS_STATUS`` as signed 32-bit integers; :func:`as_signed` gives that view.
* ``NDIS_STATUS_*`` names that ndis.h defines as an NTSTATUS value are enum *aliases* of the
  NTSTATUS member (``NTSTATUS.NDIS_STATUS_FAILURE is NTSTATUS.STATUS_UNSUCCESSFUL``); the
  canonical name (``.name``, :func:`status_name`) is the ``STATUS_*`` one. NDIS codes that ndis.h
  defines as a literal (``0xC001xxxx``) have no NTSTATUS counterpart and are canonical themselves.
* Pitfall (nbl.md §5): ``NDIS_STATUS_SEND_ABORTED`` is ``STATUS_NDIS_REQUEST_ABORTED``
  (``0xC023000C``), **not** ``NDIS_STATUS_REQUEST_ABORTED`` (``0xC001000C``).

All members are also exported at module level under their WDK names.
"""

from __future__ import annotations

import enum
import operator
from typing import SupportsIndex

__all__ = [
    "FACILITY_FWP_ERROR_CODE",
    "NT_ERROR",
    "NT_INFORMATION",
    "NT_SUCCESS",
    "NT_WARNING",
    "NTSTATUS",
    "as_signed",
    "as_unsigned",
    "coerce",
    "status_name",
]

#: Facility of the ``STATUS_FWP_*`` codes (ntstatus.h); error severity gives ``0xC022xxxx``.
FACILITY_FWP_ERROR_CODE = 0x22

_U32 = 0xFFFFFFFF


class NTSTATUS(enum.IntEnum):
    """NTSTATUS values (unsigned 32-bit). First definition of a value is its canonical name."""

    # --- success / informational (NT_SUCCESS) -------------------------------------------------
    STATUS_SUCCESS = 0x00000000
    STATUS_PENDING = 0x00000103
    STATUS_OBJECT_NAME_EXISTS = 0x40000000

    # --- warning (not NT_SUCCESS) ---------------------------------------------------------------
    STATUS_BUFFER_OVERFLOW = 0x80000005
    STATUS_DEVICE_BUSY = 0x80000011

    # --- error ----------------------------------------------------------------------------------
    STATUS_UNSUCCESSFUL = 0xC0000001
    STATUS_NOT_IMPLEMENTED = 0xC0000002
    STATUS_INVALID_HANDLE = 0xC0000008
    STATUS_INVALID_PARAMETER = 0xC000000D
    STATUS_INVALID_DEVICE_REQUEST = 0xC0000010
    STATUS_NO_MEMORY = 0xC0000017
    STATUS_ACCESS_DENIED = 0xC0000022
    STATUS_BUFFER_TOO_SMALL = 0xC0000023
    STATUS_INVALID_PARAMETER_MIX = 0xC0000030
    STATUS_INTEGER_OVERFLOW = 0xC0000095
    STATUS_INSUFFICIENT_RESOURCES = 0xC000009A
    STATUS_DEVICE_NOT_READY = 0xC00000A3
    STATUS_NOT_SUPPORTED = 0xC00000BB
    STATUS_CANCELLED = 0xC0000120
    STATUS_INVALID_MEMBER = 0xC000017B
    # samples.md names it without a value (TLInspect/ddproxy DriverEntry failure); ntstatus.h value.
    STATUS_DEVICE_CONFIGURATION_ERROR = 0xC0000182
    STATUS_INVALID_DEVICE_STATE = 0xC0000184
    STATUS_INVALID_BUFFER_SIZE = 0xC0000206
    STATUS_CONNECTION_RESET = 0xC000020D
    STATUS_DATA_NOT_ACCEPTED = 0xC000021B
    STATUS_NOT_FOUND = 0xC0000225
    STATUS_NETWORK_UNREACHABLE = 0xC000023C
    STATUS_HOST_UNREACHABLE = 0xC000023D
    STATUS_CONNECTION_ABORTED = 0xC0000241
    STATUS_HOPLIMIT_EXCEEDED = 0xC000A012

    # --- FACILITY_FWP_ERROR_CODE (0x22) ---------------------------------------------------------
    STATUS_FWP_CALLOUT_NOT_FOUND = 0xC0220001
    STATUS_FWP_CONDITION_NOT_FOUND = 0xC0220002
    STATUS_FWP_FILTER_NOT_FOUND = 0xC0220003
    STATUS_FWP_LAYER_NOT_FOUND = 0xC0220004
    STATUS_FWP_PROVIDER_NOT_FOUND = 0xC0220005
    STATUS_FWP_PROVIDER_CONTEXT_NOT_FOUND = 0xC0220006
    STATUS_FWP_SUBLAYER_NOT_FOUND = 0xC0220007
    STATUS_FWP_NOT_FOUND = 0xC0220008
    STATUS_FWP_ALREADY_EXISTS = 0xC0220009
    STATUS_FWP_IN_USE = 0xC022000A
    STATUS_FWP_INCOMPATIBLE_LAYER = 0xC0220014
    STATUS_FWP_KM_CLIENTS_ONLY = 0xC0220015
    STATUS_FWP_NULL_POINTER = 0xC022001C
    STATUS_FWP_INVALID_ENUMERATOR = 0xC022001D
    STATUS_FWP_INVALID_FLAGS = 0xC022001E
    STATUS_FWP_INVALID_ACTION_TYPE = 0xC0220024
    STATUS_FWP_INVALID_WEIGHT = 0xC0220025
    STATUS_FWP_TYPE_MISMATCH = 0xC0220027
    STATUS_FWP_OUT_OF_BOUNDS = 0xC0220028
    STATUS_FWP_INVALID_PARAMETER = 0xC0220035
    STATUS_FWP_L2_DRIVER_NOT_READY = 0xC022003E
    STATUS_FWP_TCPIP_NOT_READY = 0xC0220100
    STATUS_FWP_INJECT_HANDLE_CLOSING = 0xC0220101
    STATUS_FWP_INJECT_HANDLE_STALE = 0xC0220102
    STATUS_FWP_CANNOT_PEND = 0xC0220103
    STATUS_FWP_DROP_NOICMP = 0xC0220104

    # --- FACILITY_NDIS_ERROR_CODE (0x23) ---------------------------------------------------------
    STATUS_NDIS_REQUEST_ABORTED = 0xC023000C
    STATUS_NDIS_PAUSED = 0xC023002A
    STATUS_NDIS_LOW_POWER_STATE = 0xC023002F

    # --- NDIS_STATUS codes ndis.h defines as literals (canonical: no NTSTATUS name) --------------
    NDIS_STATUS_CLOSING = 0xC0010002
    NDIS_STATUS_REQUEST_ABORTED = 0xC001000C  # NOT the value of NDIS_STATUS_SEND_ABORTED
    NDIS_STATUS_RESET_IN_PROGRESS = 0xC001000D
    NDIS_STATUS_INVALID_PACKET = 0xC001000F
    NDIS_STATUS_INVALID_LENGTH = 0xC0010014
    NDIS_STATUS_INVALID_DATA = 0xC0010015
    NDIS_STATUS_BUFFER_TOO_SHORT = 0xC0010016

    # --- NDIS_STATUS aliases of NTSTATUS values (ndis.h: ((NDIS_STATUS)STATUS_xxx)) --------------
    NDIS_STATUS_SUCCESS = STATUS_SUCCESS
    NDIS_STATUS_PENDING = STATUS_PENDING
    NDIS_STATUS_BUFFER_OVERFLOW = STATUS_BUFFER_OVERFLOW
    NDIS_STATUS_FAILURE = STATUS_UNSUCCESSFUL
    NDIS_STATUS_INVALID_PARAMETER = STATUS_INVALID_PARAMETER
    NDIS_STATUS_RESOURCES = STATUS_INSUFFICIENT_RESOURCES
    NDIS_STATUS_NOT_SUPPORTED = STATUS_NOT_SUPPORTED
    NDIS_STATUS_INVALID_STATE = STATUS_INVALID_DEVICE_STATE
    NDIS_STATUS_SEND_ABORTED = STATUS_NDIS_REQUEST_ABORTED  # 0xC023000C (nbl.md §5 pitfall)
    NDIS_STATUS_PAUSED = STATUS_NDIS_PAUSED
    NDIS_STATUS_LOW_POWER_STATE = STATUS_NDIS_LOW_POWER_STATE

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self.name}: 0x{self.value:08X}>"


# Export every member (aliases included) at module level under its WDK name.
globals().update(NTSTATUS.__members__)
__all__ += list(NTSTATUS.__members__)


def as_unsigned(status: SupportsIndex) -> int:
    """Normalise a status to its unsigned 32-bit value (``-1073741823`` -> ``0xC0000001``).

    Accepts members, ints in ``[-2**31, 2**32)``; raises ``TypeError`` for non-integers and
    ``ValueError`` for anything that is not a 32-bit quantity.
    """
    if isinstance(status, bool):
        raise TypeError("a status code must be an integer, not bool")
    value = operator.index(status)
    if not -(1 << 31) <= value <= _U32:
        raise ValueError(f"status {value:#x} does not fit in 32 bits")
    return value & _U32


def as_signed(status: SupportsIndex) -> int:
    """The signed 32-bit view (``(LONG)status``) that ``NTSTATUS``/``NDIS_STATUS`` have in C."""
    value = as_unsigned(status)
    return value - (1 << 32) if value & 0x80000000 else value


def NT_SUCCESS(status: SupportsIndex) -> bool:  # noqa: N802 - WDK macro name
    """``((NTSTATUS)(status)) >= 0``: success and informational codes, not warnings/errors."""
    return as_unsigned(status) < 0x80000000


def NT_INFORMATION(status: SupportsIndex) -> bool:  # noqa: N802 - WDK macro name
    """ntdef.h ``NT_INFORMATION``: severity bits (31:30) == 1 (``0x4xxxxxxx``)."""
    return as_unsigned(status) >> 30 == 1


def NT_WARNING(status: SupportsIndex) -> bool:  # noqa: N802 - WDK macro name
    """ntdef.h ``NT_WARNING``: severity bits (31:30) == 2 (``0x8xxxxxxx``)."""
    return as_unsigned(status) >> 30 == 2


def NT_ERROR(status: SupportsIndex) -> bool:  # noqa: N802 - WDK macro name
    """ntdef.h ``NT_ERROR``: severity bits (31:30) == 3 (``0xCxxxxxxx``)."""
    return as_unsigned(status) >> 30 == 3


def coerce(status: SupportsIndex) -> NTSTATUS | int:
    """The :class:`NTSTATUS` member for a known code, else the unsigned 32-bit int."""
    value = as_unsigned(status)
    try:
        return NTSTATUS(value)
    except ValueError:
        return value


def status_name(status: SupportsIndex) -> str:
    """Canonical WDK name of a status code (``STATUS_*`` before ``NDIS_STATUS_*`` aliases).

    Unknown codes are rendered as ``0xXXXXXXXX``.
    """
    known = coerce(status)
    if isinstance(known, NTSTATUS):
        return known.name
    return f"0x{known:08X}"
