"""Helpers shared by the filter-engine and stream-layer tests (not a test module)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wfpsim.constants import (
    FWP_ACTION_BLOCK,
    FWP_ACTION_CONTINUE,
    FWP_ACTION_PERMIT,
    FWPS_BUILTIN_LAYERS,
    FWPS_CLASSIFY_OUT_FLAG_ABSORB,
    FWPS_METADATA_FIELD_FLOW_HANDLE,
    FWPS_RIGHT_ACTION_WRITE,
)
from wfpsim.constants.layers import FIELDS_BY_LAYER
from wfpsim.fwps_types import (
    FWP_VALUE0,
    FWPS_INCOMING_METADATA_VALUES0,
    FWPS_INCOMING_VALUE0,
    FWPS_INCOMING_VALUES0,
)


def values(layer: int, **fields: Any) -> FWPS_INCOMING_VALUES0:
    """FWPS_INCOMING_VALUES0 for `layer`: every field FWP_EMPTY except the named ones
    (``IP_REMOTE_PORT=FWP_VALUE0.u16(80)``; a bare int is FWP_UINT32)."""
    name = FWPS_BUILTIN_LAYERS(layer).name.removesuffix("_DISCARD")
    enum = FIELDS_BY_LAYER[FWPS_BUILTIN_LAYERS[name]]
    short = name.removeprefix("FWPS_LAYER_")
    count = int(enum[f"FWPS_FIELD_{short}_MAX"])
    vals = FWPS_INCOMING_VALUES0(
        layer, count, [FWPS_INCOMING_VALUE0(FWP_VALUE0()) for _ in range(count)]
    )
    for key, value in fields.items():
        index = int(enum[f"FWPS_FIELD_{short}_{key}"])
        if isinstance(value, int):
            value = FWP_VALUE0.u32(value)
        vals.incomingValue[index].value = value
    return vals


def meta(flow: int = 0, **kw: Any) -> FWPS_INCOMING_METADATA_VALUES0:
    m = FWPS_INCOMING_METADATA_VALUES0(**kw)
    if flow:
        m.flowHandle = flow
        m.currentMetadataValues |= FWPS_METADATA_FIELD_FLOW_HANDLE
    return m


@dataclass
class Call:
    filter_id: int
    entry_rights: int
    entry_action: int
    flow_context: int
    layer_data: Any
    classify_context: Any = None


@dataclass
class Callout:
    """A scripted classifyFn: writes `action` (None: leave classifyOut alone), optionally clears
    the write right / sets ABSORB, and records every call."""

    action: int | None = FWP_ACTION_PERMIT
    clear: bool = False
    absorb: bool = False
    honour_right: bool = False  # return untouched when the write right is clear (R1)
    calls: list[Call] = field(default_factory=list)

    def __call__(self, inFixedValues, inMetaValues, layerData, filter, flowContext, classifyOut):  # noqa: N803
        self.calls.append(
            Call(
                filter.filterId, classifyOut.rights, classifyOut.actionType, flowContext, layerData
            )
        )
        if self.honour_right and not classifyOut.rights & FWPS_RIGHT_ACTION_WRITE:
            return
        if self.action is not None:
            classifyOut.actionType = self.action
        if self.clear:
            classifyOut.rights &= ~FWPS_RIGHT_ACTION_WRITE
        if self.absorb:
            classifyOut.flags |= FWPS_CLASSIFY_OUT_FLAG_ABSORB


def permit(clear: bool = False) -> Callout:
    return Callout(FWP_ACTION_PERMIT, clear=clear)


def block(clear: bool = False, absorb: bool = False) -> Callout:
    return Callout(FWP_ACTION_BLOCK, clear=clear, absorb=absorb)


def cont() -> Callout:
    return Callout(FWP_ACTION_CONTINUE)


__all__ = ["Call", "Callout", "block", "cont", "meta", "permit", "values"]


class Chains:
    """Builds NBL chains whose NBs span several caller MDLs (with headroom before DataOffset)
    and frees everything it built (NBLs, then NBs, then MDLs)."""

    def __init__(self) -> None:
        self.nbls: list[Any] = []
        self.nbs: list[Any] = []
        self.mdls: list[Any] = []

    def nb(self, data: bytes, cuts: tuple[int, ...] = (), headroom: int = 0) -> Any:
        """An NB over `data`, its MDLs cut at the offsets `cuts` (relative to `data`), with
        `headroom` junk bytes before DataOffset in the first MDL."""
        from wfpsim import Mdl, NetBuffer

        raw = b"\xee" * headroom + data
        points = [0] + [headroom + c for c in cuts if 0 < c < len(data)] + [len(raw)]
        head = prev = None
        for a, b in zip(points, points[1:], strict=False):
            if b <= a:
                continue
            mdl = Mdl.allocate(bytearray(raw[a:b]))
            self.mdls.append(mdl)
            if prev is None:
                head = mdl
            else:
                prev.Next = mdl
            prev = mdl
        if head is None:
            head = Mdl.allocate(bytearray(b"\xee" * max(headroom, 1)))
            self.mdls.append(head)
        nb = NetBuffer.allocate(head, headroom, len(data))
        self.nbs.append(nb)
        return nb

    def nbl(self, *nbs: Any) -> Any:
        from wfpsim import NetBufferList

        nbl = NetBufferList.from_buffers(list(nbs))
        self.nbls.append(nbl)
        return nbl

    def chain(self, *nbls: Any) -> Any:
        for a, b in zip(nbls, nbls[1:], strict=False):
            a.Next = b
        return nbls[0]

    def free(self) -> None:
        for nbl in self.nbls:
            nbl.Next = None
        for nbl in self.nbls:
            nbl.FirstNetBuffer = None
            nbl.free()
        for nb in self.nbs:
            nb.Next = None
            nb.free()
        for mdl in self.mdls:
            mdl.Next = None
            mdl.free()
        self.nbls, self.nbs, self.mdls = [], [], []


class App:
    """Collects what the stream layer delivers: bytes in order, and the FIN."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.events: list[tuple[bytes, int]] = []

    def deliver(self, data: bytes, flags: int) -> None:
        self.events.append((bytes(data), flags))
        self.data += data

    @property
    def fin(self) -> bool:
        from wfpsim.constants import (
            FWPS_STREAM_FLAG_RECEIVE_DISCONNECT,
            FWPS_STREAM_FLAG_SEND_DISCONNECT,
        )

        return any(
            f & (FWPS_STREAM_FLAG_RECEIVE_DISCONNECT | FWPS_STREAM_FLAG_SEND_DISCONNECT)
            for _, f in self.events
        )


class FakeStreamInjector:
    """Test scaffolding standing in for the stack's FwpsStreamInjectAsync0 (issue #4 owns the
    real one): the documented flag / NULL checks, then the bytes go to the engine at once (so an
    inline injection takes the place of the bytes the callout blocks), then one completion per
    NBL of the chain (none for a NULL-NBL FIN)."""

    def __init__(self, engine: Any, app: App) -> None:
        self.engine = engine
        self.app = app
        self.completions: list[Any] = []

    def __call__(
        self,
        flowId: int,  # noqa: N803
        calloutId: int,  # noqa: N803
        layerId: int,  # noqa: N803
        streamFlags: int,  # noqa: N803
        netBufferList: Any,  # noqa: N803
        dataLength: int,  # noqa: N803
        completionFn: Any,  # noqa: N803
        completionContext: Any = None,  # noqa: N803
    ) -> int:
        from wfpsim.constants import (
            FWPS_STREAM_FLAG_RECEIVE,
            FWPS_STREAM_FLAG_RECEIVE_DISCONNECT,
            FWPS_STREAM_FLAG_SEND,
            FWPS_STREAM_FLAG_SEND_DISCONNECT,
        )
        from wfpsim.status import NTSTATUS

        if (
            streamFlags & FWPS_STREAM_FLAG_RECEIVE_DISCONNECT
            and not streamFlags & FWPS_STREAM_FLAG_RECEIVE
        ):
            return NTSTATUS.STATUS_FWP_INVALID_PARAMETER
        if (
            streamFlags & FWPS_STREAM_FLAG_SEND_DISCONNECT
            and not streamFlags & FWPS_STREAM_FLAG_SEND
        ):
            return NTSTATUS.STATUS_FWP_INVALID_PARAMETER
        if netBufferList is not None and completionFn is None:
            return NTSTATUS.STATUS_FWP_NULL_POINTER
        self.engine.stream_inject(
            flowId, calloutId, layerId, streamFlags, netBufferList, dataLength, self.app.deliver
        )
        nbl = netBufferList
        for _ in range(1 << 16):
            if nbl is None:
                break
            nxt = nbl.Next
            self.completions.append(completionContext)
            completionFn(completionContext, nbl, False)
            nbl = nxt
        return NTSTATUS.STATUS_SUCCESS
