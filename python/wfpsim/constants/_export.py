"""Helpers shared by the constants modules (private)."""

from __future__ import annotations

import enum
from collections.abc import MutableMapping
from typing import Any


def export_members(namespace: MutableMapping[str, Any], *enums: type[enum.Enum]) -> None:
    """Copy every member of ``enums`` (aliases included) into a module namespace.

    The WDK declares enum members as global identifiers, so ``wfpsim`` exposes them both as
    ``FWP_DIRECTION.FWP_DIRECTION_INBOUND`` and as the module-level ``FWP_DIRECTION_INBOUND``.
    Refuses to overwrite a different existing binding (a name clash would be a spec bug).
    """
    for enum_cls in enums:
        for name, member in enum_cls.__members__.items():
            existing = namespace.get(name, member)
            if existing is not member and existing != member:
                raise ValueError(f"{name} already bound to {existing!r}, not {member!r}")
            namespace[name] = member


def public_names(namespace: MutableMapping[str, Any]) -> list[str]:
    """``__all__`` for a constants module: ints, UUIDs, enum classes and layout tables."""
    names = []
    for name, value in namespace.items():
        if name.startswith("_") or name == "annotations":
            continue
        if isinstance(value, int | dict) or (
            isinstance(value, type) and issubclass(value, enum.Enum)
        ):
            names.append(name)
    return sorted(names)
