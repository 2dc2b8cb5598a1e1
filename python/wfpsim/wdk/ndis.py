"""NDIS buffer functions and accessor macros under their WDK names (`nbl.md`).

Conventions (ARCHITECTURE.md, "Two faces"): positional parameters in WDK order with the WDK
parameter names; NULL is None; pointer out-parameters come back in a tuple after the return
value; statuses are `NTSTATUS` members. A macro that C uses as an lvalue takes the new value as
an optional last argument: ``NET_BUFFER_DATA_LENGTH(nb)`` reads, ``NET_BUFFER_DATA_LENGTH(nb, 60)``
writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wfpsim._core import Mdl, NetBuffer, NetBufferList, Pool
from wfpsim.errors import InvalidParameterError
from wfpsim.status import NTSTATUS
from wfpsim.wdk._status import STATUS_SUCCESS, as_status, or_null

_UNSET: Any = object()

NDIS_OBJECT_TYPE_DEFAULT = 0x80
NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1 = 1
NET_BUFFER_POOL_PARAMETERS_REVISION_1 = 1
NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1 = 16
NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_1 = 12


@dataclass
class NDIS_OBJECT_HEADER:  # noqa: N801
    Type: int = NDIS_OBJECT_TYPE_DEFAULT
    Revision: int = 1
    Size: int = 0


@dataclass
class NET_BUFFER_LIST_POOL_PARAMETERS:  # noqa: N801
    Header: NDIS_OBJECT_HEADER = field(
        default_factory=lambda: NDIS_OBJECT_HEADER(
            NDIS_OBJECT_TYPE_DEFAULT,
            NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
            NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1,
        )
    )
    ProtocolId: int = 0
    fAllocateNetBuffer: bool = False
    ContextSize: int = 0
    PoolTag: int = 0
    DataSize: int = 0


@dataclass
class NET_BUFFER_POOL_PARAMETERS:  # noqa: N801
    Header: NDIS_OBJECT_HEADER = field(
        default_factory=lambda: NDIS_OBJECT_HEADER(
            NDIS_OBJECT_TYPE_DEFAULT,
            NET_BUFFER_POOL_PARAMETERS_REVISION_1,
            NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_1,
        )
    )
    PoolTag: int = 0
    DataSize: int = 0


def _check_header(header: NDIS_OBJECT_HEADER, what: str) -> None:
    if header.Type != NDIS_OBJECT_TYPE_DEFAULT:
        raise InvalidParameterError(
            f"{what}.Header.Type must be NDIS_OBJECT_TYPE_DEFAULT (0x80), not {header.Type:#x}",
            NTSTATUS.STATUS_INVALID_PARAMETER,
        )


# ---- MDLs ----


def NdisAllocateMdl(NdisHandle: Any, VirtualAddress: Any, Length: int) -> Mdl | None:
    """An MDL over `Length` bytes of a writable buffer (bytearray, memoryview, numpy)."""
    return or_null(lambda: Mdl.allocate(VirtualAddress, Length))


def NdisFreeMdl(Mdl: Mdl) -> None:  # noqa: N803
    Mdl.free()


def NdisQueryMdl(Mdl: Mdl, Priority: int = 0) -> tuple[memoryview, int]:  # noqa: N803
    """`NdisQueryMdl(Mdl, &VirtualAddress, &Length, Priority)`: the mapped bytes and ByteCount."""
    return Mdl.data, Mdl.ByteCount


def NdisQueryMdlOffset(Mdl: Mdl) -> tuple[int, int]:  # noqa: N803
    return Mdl.ByteOffset, Mdl.ByteCount


def NdisGetNextMdl(CurrentMdl: Mdl) -> Mdl | None:
    """`NdisGetNextMdl(CurrentMdl, &NextMdl)`: the out-value alone (the macro returns nothing)."""
    return CurrentMdl.Next


def NDIS_MDL_LINKAGE(Mdl: Mdl, value: Any = _UNSET) -> Mdl | None:  # noqa: N803
    if value is not _UNSET:
        Mdl.Next = value
    return Mdl.Next


def MmGetMdlByteCount(Mdl: Mdl) -> int:  # noqa: N803
    return Mdl.ByteCount


def MmGetMdlByteOffset(Mdl: Mdl) -> int:  # noqa: N803
    return Mdl.ByteOffset


def MmGetMdlVirtualAddress(Mdl: Mdl) -> memoryview:  # noqa: N803
    return Mdl.data


def MmGetSystemAddressForMdlSafe(Mdl: Mdl, Priority: int = 0) -> memoryview:  # noqa: N803
    return Mdl.data


# ---- pools ----


def NdisAllocateNetBufferListPool(
    NdisHandle: Any, Parameters: NET_BUFFER_LIST_POOL_PARAMETERS
) -> Pool | None:
    _check_header(Parameters.Header, "NET_BUFFER_LIST_POOL_PARAMETERS")
    return or_null(
        lambda: Pool.net_buffer_list(
            Parameters.ProtocolId,
            bool(Parameters.fAllocateNetBuffer),
            Parameters.ContextSize,
            Parameters.DataSize,
            Parameters.PoolTag,
        )
    )


def NdisFreeNetBufferListPool(PoolHandle: Pool) -> None:
    PoolHandle.free()


def NdisAllocateNetBufferPool(
    NdisHandle: Any, Parameters: NET_BUFFER_POOL_PARAMETERS
) -> Pool | None:
    _check_header(Parameters.Header, "NET_BUFFER_POOL_PARAMETERS")
    return or_null(lambda: Pool.net_buffer(Parameters.DataSize, Parameters.PoolTag))


def NdisFreeNetBufferPool(PoolHandle: Pool) -> None:
    PoolHandle.free()


# ---- NET_BUFFER ----


def NdisAllocateNetBuffer(
    PoolHandle: Pool | None, MdlChain: Mdl | None, DataOffset: int, DataLength: int
) -> NetBuffer | None:
    return or_null(lambda: NetBuffer.allocate(MdlChain, DataOffset, DataLength, PoolHandle))


def NdisAllocateNetBufferMdlAndData(PoolHandle: Pool) -> NetBuffer | None:
    return or_null(lambda: NetBuffer.allocate_mdl_and_data(PoolHandle))


def NdisFreeNetBuffer(NetBuffer: NetBuffer) -> None:  # noqa: N803
    NetBuffer.free()


def NdisRetreatNetBufferDataStart(
    NetBuffer: NetBuffer,  # noqa: N803
    DataOffsetDelta: int,
    DataBackFill: int,
    AllocateMdlHandler: Any = None,
) -> NTSTATUS:
    """NDIS_STATUS_SUCCESS, NDIS_STATUS_RESOURCES (allocation failed) or NDIS_STATUS_FAILURE."""
    return as_status(
        lambda: NetBuffer.retreat(DataOffsetDelta, DataBackFill, AllocateMdlHandler),
        NTSTATUS.NDIS_STATUS_FAILURE,
    )


def NdisAdvanceNetBufferDataStart(
    NetBuffer: NetBuffer,  # noqa: N803
    DataOffsetDelta: int,
    FreeMdl: bool,
    FreeMdlHandler: Any = None,
) -> None:
    """Returns nothing, as in C; advancing past the data raises (a caller bug)."""
    NetBuffer.advance(DataOffsetDelta, bool(FreeMdl), FreeMdlHandler)


def NdisRetreatNetBufferListDataStart(
    NetBufferList: NetBufferList,  # noqa: N803
    DataOffsetDelta: int,
    DataBackFill: int,
    AllocateMdlHandler: Any = None,
    FreeMdlHandler: Any = None,
) -> NTSTATUS:
    """Every NB; on failure the NBs already retreated are advanced back (`nbl.md §7.3` [emu])."""
    return as_status(
        lambda: NetBufferList.retreat(
            DataOffsetDelta, DataBackFill, AllocateMdlHandler, FreeMdlHandler
        ),
        NTSTATUS.NDIS_STATUS_FAILURE,
    )


def NdisAdvanceNetBufferListDataStart(
    NetBufferList: NetBufferList,  # noqa: N803
    DataOffsetDelta: int,
    FreeMdl: bool,
    FreeMdlMdlHandler: Any = None,
) -> None:
    """(The last parameter really is spelled FreeMdlMdlHandler in the WDK.)"""
    NetBufferList.advance(DataOffsetDelta, bool(FreeMdl), FreeMdlMdlHandler)


def NdisAdjustNetBufferCurrentMdl(NetBuffer: NetBuffer) -> None:  # noqa: N803
    NetBuffer.adjust_current_mdl()


def NdisGetDataBuffer(
    NetBuffer: NetBuffer,  # noqa: N803
    BytesNeeded: int,
    Storage: Any,
    AlignMultiple: int,
    AlignOffset: int,
) -> Any:
    """A writable view into the packet (contiguous, aligned), else `Storage` filled with a copy
    (the same object, as C returns the Storage pointer), else None."""
    return NetBuffer.get_data_buffer(BytesNeeded, Storage, AlignMultiple, AlignOffset)


def NdisCopyFromNetBufferToNetBuffer(
    Destination: NetBuffer,
    DestinationOffset: int,
    BytesToCopy: int,
    Source: NetBuffer,
    SourceOffset: int,
) -> tuple[NTSTATUS, int]:
    """``(status, BytesCopied)``; a short copy is still success (`nbl.md §8.2`)."""
    copied = [0]

    def run() -> None:
        copied[0] = Destination.copy_from(Source, BytesToCopy, DestinationOffset, SourceOffset)

    status = as_status(run, NTSTATUS.NDIS_STATUS_RESOURCES)
    return status, copied[0]


# ---- NET_BUFFER_LIST ----


def NdisAllocateNetBufferList(
    PoolHandle: Pool | None, ContextSize: int, ContextBackFill: int
) -> NetBufferList | None:
    return or_null(lambda: NetBufferList.allocate(PoolHandle, ContextSize, ContextBackFill))


def NdisAllocateNetBufferAndNetBufferList(
    PoolHandle: Pool | None,
    ContextSize: int,
    ContextBackFill: int,
    MdlChain: Mdl | None,
    DataOffset: int,
    DataLength: int,
) -> NetBufferList | None:
    return or_null(
        lambda: NetBufferList.allocate_with_net_buffer(
            MdlChain, DataOffset, DataLength, PoolHandle, ContextSize, ContextBackFill
        )
    )


def NdisFreeNetBufferList(NetBufferList: NetBufferList) -> None:  # noqa: N803
    """Raises if the NBL is a clone, still has clones, or is referenced (the rule is named)."""
    if NetBufferList.kind != "plain" and NetBufferList.alive:
        from wfpsim.errors import InvalidStateError

        raise InvalidStateError(
            "NdisFreeNetBufferList: this NET_BUFFER_LIST is a clone; free it with "
            "NdisFreeCloneNetBufferList / FwpsFreeCloneNetBufferList0",
            NTSTATUS.STATUS_INVALID_PARAMETER,
        )
    NetBufferList.free()


def NdisAllocateCloneNetBufferList(
    OriginalNetBufferList: NetBufferList,
    NetBufferListPoolHandle: Pool | None,
    NetBufferPoolHandle: Pool | None,
    AllocateCloneFlags: int,
) -> NetBufferList | None:
    """Does not touch ParentNetBufferList / ChildRefCount: the caller maintains them (`nbl.md §9`)."""
    return or_null(lambda: OriginalNetBufferList.clone(False, AllocateCloneFlags))


def NdisFreeCloneNetBufferList(CloneNetBufferList: NetBufferList, FreeCloneFlags: int) -> None:
    if CloneNetBufferList.kind != "ndis_clone" and CloneNetBufferList.alive:
        from wfpsim.errors import InvalidStateError

        raise InvalidStateError(
            "NdisFreeCloneNetBufferList: this NBL was not made by NdisAllocateCloneNetBufferList",
            NTSTATUS.STATUS_INVALID_PARAMETER,
        )
    CloneNetBufferList.free_clone(FreeCloneFlags, False)


def NdisAllocateNetBufferListContext(
    NetBufferList: NetBufferList,  # noqa: N803
    ContextSize: int,
    ContextBackFill: int,
    PoolTag: int = 0,
) -> NTSTATUS:
    return as_status(
        lambda: NetBufferList.alloc_context(ContextSize, ContextBackFill),
        NTSTATUS.NDIS_STATUS_FAILURE,
    )


def NdisFreeNetBufferListContext(NetBufferList: NetBufferList, ContextSize: int) -> None:  # noqa: N803
    NetBufferList.free_context(ContextSize)


# OOB slots copied by the two helpers (`nbl.md §9.4`, x64 indices).
_SEND_INFO_SLOTS = (0, 1, 2, 4, 5, 6, 7, 11, 12, 14, 20)
_RECEIVE_INFO_SLOTS = (0, 1, 2, 4, 6, 7, 8, 9, 11, 12, 14, 20)


def NdisCopySendNetBufferListInfo(
    DestNetBufferList: NetBufferList, SrcNetBufferList: NetBufferList
) -> None:
    for slot in _SEND_INFO_SLOTS:
        DestNetBufferList.set_info(slot, SrcNetBufferList.get_info(slot))


def NdisCopyReceiveNetBufferListInfo(
    DestNetBufferList: NetBufferList, SrcNetBufferList: NetBufferList
) -> None:
    for slot in _RECEIVE_INFO_SLOTS:
        DestNetBufferList.set_info(slot, SrcNetBufferList.get_info(slot))


# ---- accessor macros (read; write with the optional last argument) ----


def _field(obj: Any, name: str, value: Any) -> Any:
    if value is not _UNSET:
        setattr(obj, name, value)
    return getattr(obj, name)


def NET_BUFFER_LIST_FIRST_NB(nbl: NetBufferList, value: Any = _UNSET) -> NetBuffer | None:
    return _field(nbl, "FirstNetBuffer", value)


def NET_BUFFER_LIST_NEXT_NBL(nbl: NetBufferList, value: Any = _UNSET) -> NetBufferList | None:
    return _field(nbl, "Next", value)


def NET_BUFFER_LIST_STATUS(nbl: NetBufferList, value: Any = _UNSET) -> int:
    return _field(nbl, "Status", value)


def NET_BUFFER_LIST_FLAGS(nbl: NetBufferList, value: Any = _UNSET) -> int:
    return _field(nbl, "Flags", value)


def NET_BUFFER_LIST_NBL_FLAGS(nbl: NetBufferList, value: Any = _UNSET) -> int:
    return _field(nbl, "NblFlags", value)


def NET_BUFFER_LIST_INFO(nbl: NetBufferList, id: int, value: Any = _UNSET) -> int:  # noqa: A002
    if value is not _UNSET:
        nbl.set_info(id, value)
    return nbl.get_info(id)


def NET_BUFFER_LIST_CONTEXT_DATA_START(nbl: NetBufferList) -> memoryview | None:
    return nbl.context


def NET_BUFFER_LIST_CONTEXT_DATA_SIZE(nbl: NetBufferList) -> int:
    return nbl.context_size


def NET_BUFFER_NEXT_NB(nb: NetBuffer, value: Any = _UNSET) -> NetBuffer | None:
    return _field(nb, "Next", value)


def NET_BUFFER_FIRST_MDL(nb: NetBuffer, value: Any = _UNSET) -> Mdl | None:
    return _field(nb, "MdlChain", value)


def NET_BUFFER_DATA_LENGTH(nb: NetBuffer, value: Any = _UNSET) -> int:
    return _field(nb, "DataLength", value)


def NET_BUFFER_DATA_OFFSET(nb: NetBuffer, value: Any = _UNSET) -> int:
    return _field(nb, "DataOffset", value)


def NET_BUFFER_CURRENT_MDL(nb: NetBuffer, value: Any = _UNSET) -> Mdl | None:
    return _field(nb, "CurrentMdl", value)


def NET_BUFFER_CURRENT_MDL_OFFSET(nb: NetBuffer, value: Any = _UNSET) -> int:
    return _field(nb, "CurrentMdlOffset", value)


def NET_BUFFER_CHECKSUM_BIAS(nb: NetBuffer, value: Any = _UNSET) -> int:
    return _field(nb, "ChecksumBias", value)


# ---- NBL flag helpers (`nbl.md §4.2`, §4.3) ----


def NdisTestNblFlag(nbl: NetBufferList, f: int) -> bool:
    return (nbl.NblFlags & f) != 0


def NdisTestNblFlags(nbl: NetBufferList, f: int) -> bool:
    return (nbl.NblFlags & f) == f


def NdisSetNblFlag(nbl: NetBufferList, f: int) -> None:
    nbl.NblFlags = nbl.NblFlags | f


def NdisClearNblFlag(nbl: NetBufferList, f: int) -> None:
    nbl.NblFlags = nbl.NblFlags & ~f & 0xFFFFFFFF


def NBL_TEST_FLAG(nbl: NetBufferList, f: int) -> bool:
    return (nbl.Flags & f) != 0


def NBL_SET_FLAG(nbl: NetBufferList, f: int) -> None:
    nbl.Flags = nbl.Flags | f


def NBL_CLEAR_FLAG(nbl: NetBufferList, f: int) -> None:
    nbl.Flags = nbl.Flags & ~f & 0xFFFFFFFF


__all__ = [name for name in dir() if name[:1].isupper()]
_ = STATUS_SUCCESS
