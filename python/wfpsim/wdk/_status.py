"""How the WDK face turns engine errors into return values.

C functions that return a status return it here as an `NTSTATUS` member; functions that return
a pointer return None where C returns NULL. Errors without a documented status (use after free,
double free) have no C return value to carry them: they raise, as Driver Verifier would stop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from wfpsim.errors import DoubleFreeError, UseAfterFreeError, WfpError
from wfpsim.status import NTSTATUS, coerce

T = TypeVar("T")

STATUS_SUCCESS = NTSTATUS.STATUS_SUCCESS


def as_status(call: Callable[[], Any], default_failure: int | None = None) -> int:
    """Runs `call`; returns STATUS_SUCCESS, or the documented status of the failure."""
    try:
        call()
    except (UseAfterFreeError, DoubleFreeError):
        raise
    except WfpError as e:
        status = e.status if e.status is not None else default_failure
        if status is None:
            raise
        return coerce(status)
    return STATUS_SUCCESS


def or_null(call: Callable[[], T]) -> T | None:
    """Runs an allocation; None (NULL) when it fails for lack of resources."""
    from wfpsim.errors import ResourcesError

    try:
        return call()
    except ResourcesError:
        return None


def status_and(call: Callable[[], T]) -> tuple[int, T | None]:
    """Runs an allocation with an out-parameter: ``(status, object)`` or ``(status, None)``."""
    try:
        return STATUS_SUCCESS, call()
    except (UseAfterFreeError, DoubleFreeError):
        raise
    except WfpError as e:
        if e.status is None:
            raise
        return coerce(e.status), None
