"""Exceptions of wfpsim. Every one names the rule that was broken; `.status` carries the
documented NTSTATUS / NDIS_STATUS where Windows has one (an unsigned 32-bit int), else None.

The extension raises these classes directly (the binding maps each engine error kind to one).
"""

from __future__ import annotations


class WfpError(Exception):
    """Base of every wfpsim error. `status` is the documented status code, or None."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.rule = message

    def __str__(self) -> str:
        base = super().__str__()
        if self.status is None:
            return base
        return f"{base} [status 0x{self.status:08X}]"


class UseAfterFreeError(WfpError):
    """An MDL, NET_BUFFER or NET_BUFFER_LIST was used after it was freed."""


class DoubleFreeError(WfpError):
    """An object was freed twice."""


class InvalidParameterError(WfpError, ValueError):
    """A parameter breaks a documented rule."""


class InvalidStateError(WfpError):
    """The object's state does not allow the operation (e.g. freeing a parent with live clones)."""


class ResourcesError(WfpError, MemoryError):
    """An allocation failed (an allocator returned NULL, or a fault was injected)."""


class MalformedPacketError(WfpError, ValueError):
    """Bytes that are not a well-formed packet, header or capture file."""


class ContractViolation(WfpError):
    """A Driver-Verifier-style violation of the API contract by the caller."""


class CaptureError(WfpError, OSError):
    """A capture file could not be read or written (damaged input, I/O failure)."""


class InjectionLoopError(WfpError):
    """A callout re-injected packets without checking their injection state: a classify loop."""


__all__ = [
    "WfpError",
    "UseAfterFreeError",
    "DoubleFreeError",
    "InvalidParameterError",
    "InvalidStateError",
    "ResourcesError",
    "MalformedPacketError",
    "ContractViolation",
    "CaptureError",
    "InjectionLoopError",
]
