"""The WFP wrappers around NBL allocation, cloning and references (`nbl.md §10`)."""

from __future__ import annotations

from typing import Any

from wfpsim._core import Mdl, NetBufferList, Pool
from wfpsim.errors import InvalidParameterError, InvalidStateError
from wfpsim.status import NTSTATUS
from wfpsim.wdk._status import status_and


def FwpsAllocateNetBufferAndNetBufferList0(
    poolHandle: Pool | None,
    contextSize: int,
    contextBackFill: int,
    mdlChain: Mdl | None,
    dataOffset: int,
    dataLength: int,
) -> tuple[NTSTATUS, NetBufferList | None]:
    """``(status, netBufferList)``; a None pool handle is NDIS's default pool.
    Failure codes follow `nbl.md §10.1` [emu]: STATUS_INSUFFICIENT_RESOURCES on allocation
    failure, STATUS_INVALID_PARAMETER for bad arguments."""
    return status_and(
        lambda: NetBufferList.allocate_with_net_buffer(
            mdlChain, dataOffset, dataLength, poolHandle, contextSize, contextBackFill
        )
    )


def FwpsFreeNetBufferList0(netBufferList: NetBufferList) -> None:
    if netBufferList.alive and netBufferList.kind != "plain":
        raise InvalidStateError(
            "FwpsFreeNetBufferList0: this NET_BUFFER_LIST is a clone; free it with "
            "FwpsFreeCloneNetBufferList0",
            NTSTATUS.STATUS_INVALID_PARAMETER,
        )
    netBufferList.free()


def FwpsAllocateCloneNetBufferList0(
    originalNetBufferList: NetBufferList,
    netBufferListPoolHandle: Pool | None,
    netBufferPoolHandle: Pool | None,
    allocateCloneFlags: int,
) -> tuple[NTSTATUS, NetBufferList | None]:
    """``(status, clone)``. Sets the clone's ParentNetBufferList and increments the original's
    ChildRefCount. No allocateCloneFlags are defined: non-zero is STATUS_INVALID_PARAMETER."""
    if originalNetBufferList is None:
        return NTSTATUS.STATUS_INVALID_PARAMETER, None
    return status_and(lambda: originalNetBufferList.clone(True, allocateCloneFlags))


def FwpsFreeCloneNetBufferList0(netBufferList: NetBufferList, freeCloneFlags: int) -> None:
    """Frees a WFP clone and decrements its parent's ChildRefCount (`nbl.md §10.2` [emu])."""
    netBufferList.free_clone(freeCloneFlags, True)


def FwpsReferenceNetBufferList0(netBufferList: NetBufferList, intendToModify: bool) -> None:
    netBufferList.reference(bool(intendToModify))


def FwpsDereferenceNetBufferList0(netBufferList: NetBufferList, dispatchLevel: bool) -> None:
    """Must pair with FwpsReferenceNetBufferList0; an unpaired call raises ContractViolation."""
    if not isinstance(dispatchLevel, (bool, int)):
        raise InvalidParameterError(
            "dispatchLevel must be a BOOLEAN", NTSTATUS.STATUS_INVALID_PARAMETER
        )
    netBufferList.dereference()


__all__ = [
    "FwpsAllocateNetBufferAndNetBufferList0",
    "FwpsFreeNetBufferList0",
    "FwpsAllocateCloneNetBufferList0",
    "FwpsFreeCloneNetBufferList0",
    "FwpsReferenceNetBufferList0",
    "FwpsDereferenceNetBufferList0",
]
_: Any = None
