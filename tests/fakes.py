"""Small fake filter engines implementing the seam protocol (wfpsim.stack.seam), and packet
builders, for the stack and injection tests. The real filter engine is built separately."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import wfpsim
from wfpsim.constants import (
    FWP_ACTION_BLOCK,
    FWP_ACTION_PERMIT,
    FWPS_BUILTIN_LAYERS,
    FWPS_CLASSIFY_OUT_FLAG_ABSORB,
    FWPS_RIGHT_ACTION_WRITE,
)
from wfpsim.fwps_types import FWPS_CLASSIFY_OUT0
from wfpsim.stack import ip as IP
from wfpsim.stack.paths import _field_map
from wfpsim.stack.seam import PermitAllEngine, StreamVerdict

MAC_A = bytes.fromhex("02000000000a")
MAC_B = bytes.fromhex("02000000000b")


@dataclass
class Seen:
    """One classify as the fake engine saw it."""

    layer_id: int
    values: Any
    meta: Any
    layer_data: Any
    data_offset: int | None
    flow_handle: int
    head: bytes = b""  # the first bytes of the first NET_BUFFER's data at classify time

    def value(self, name: str) -> Any:
        fm = _field_map(self.layer_id)
        assert fm is not None
        return self.values.incomingValue[fm[1][name]].value

    def value_type(self, name: str) -> int:
        fm = _field_map(self.layer_id)
        assert fm is not None
        return self.values.incomingValue[fm[1][name]].value.type

    @property
    def name(self) -> str:
        return FWPS_BUILTIN_LAYERS(self.layer_id).name[len("FWPS_LAYER_") :]


class HookEngine:
    """Permits everything, records every classify, and calls ``hooks[layer_id](seen, out)`` —
    a hook may write ``out`` (block / absorb) like a classifyFn, clone and inject."""

    def __init__(self) -> None:
        self.hooks: dict[int, Callable[[Seen, FWPS_CLASSIFY_OUT0], None]] = {}
        self.seen: list[Seen] = []
        self.current: str | None = None
        self.stream_calls: list[tuple] = []
        self.deleted_flows: list[int] = []

    def on(
        self, layer_id: int, fn: Callable[[Seen, FWPS_CLASSIFY_OUT0], None], name: str = ""
    ) -> None:
        self.hooks[int(layer_id)] = fn
        fn.callout_name = name or fn.__name__  # type: ignore[attr-defined]

    def layers(self) -> list[str]:
        return [s.name for s in self.seen]

    def classify(
        self,
        layer_id,
        inFixedValues,
        inMetaValues,
        layerData,
        *,
        flow_handle=0,  # noqa: N803
        exclude_callout_id=None,
        below_sublayer_weight=None,
    ):
        offset, head = None, b""
        if isinstance(layerData, wfpsim.NetBufferList) and layerData.FirstNetBuffer is not None:
            offset = layerData.FirstNetBuffer.DataOffset
            head = bytes(layerData.FirstNetBuffer.tobytes()[:64])
        seen = Seen(
            int(layer_id), inFixedValues, inMetaValues, layerData, offset, flow_handle, head
        )
        self.seen.append(seen)
        out = FWPS_CLASSIFY_OUT0(actionType=FWP_ACTION_PERMIT, rights=FWPS_RIGHT_ACTION_WRITE)
        hook = self.hooks.get(int(layer_id))
        if hook is not None:
            self.current = f"callout {hook.callout_name!r} at {seen.name}"  # type: ignore[attr-defined]
            try:
                hook(seen, out)
            finally:
                self.current = None
        return out

    def current_callout(self) -> str | None:
        return self.current

    def stream_classify(
        self,
        layer_id,
        inFixedValues,
        inMetaValues,
        segment,
        *,
        flow_handle,  # noqa: N803
        deliver,
        exclude_callout_id=None,
        below_sublayer_weight=None,
    ):
        self.stream_calls.append(
            (segment.data, segment.flags, segment.injected, exclude_callout_id)
        )
        self.seen.append(
            Seen(int(layer_id), inFixedValues, inMetaValues, segment, None, flow_handle)
        )
        deliver(segment.data, segment.flags)
        return StreamVerdict()

    def flow_deleted(self, flow_id: int) -> None:
        self.deleted_flows.append(flow_id)


def absorb(out: FWPS_CLASSIFY_OUT0) -> None:
    out.actionType = FWP_ACTION_BLOCK
    out.rights &= ~FWPS_RIGHT_ACTION_WRITE
    out.flags |= FWPS_CLASSIFY_OUT_FLAG_ABSORB


def block(out: FWPS_CLASSIFY_OUT0) -> None:
    out.actionType = FWP_ACTION_BLOCK
    out.rights &= ~FWPS_RIGHT_ACTION_WRITE


@dataclass
class StreamCallout:
    """A stream callout of :class:`StreamEngine`: ``fn(data, flags, inject) -> bytes | None``
    returns the bytes to pass on (None: pass all); ``inject(data)`` injects inline."""

    callout_id: int
    weight: int
    fn: Callable[..., bytes | None]
    seen: list[bytes] = field(default_factory=list)


class StreamEngine(HookEngine):
    """Stream layer with sublayer-weighted callouts (waterfall): injected data skips the
    injecting callout and every callout of equal or higher weight (layers.md §10)."""

    def __init__(self, callouts: list[StreamCallout]) -> None:
        super().__init__()
        self.callouts = sorted(callouts, key=lambda c: -c.weight)

    def knows_callout(self, callout_id: int, layer_id: int) -> bool:
        return any(c.callout_id == callout_id for c in self.callouts)

    def stream_classify(
        self,
        layer_id,
        inFixedValues,
        inMetaValues,
        segment,
        *,
        flow_handle,  # noqa: N803
        deliver,
        exclude_callout_id=None,
        below_sublayer_weight=None,
    ):
        self.stream_calls.append(
            (segment.data, segment.flags, segment.injected, exclude_callout_id)
        )
        callouts = self.callouts
        if exclude_callout_id is not None:
            bound = next(c.weight for c in callouts if c.callout_id == exclude_callout_id)
            callouts = [c for c in callouts if c.weight < bound]
        data = segment.data
        for c in callouts:
            c.seen.append(data)
            result = c.fn(data, segment.flags)
            if result is not None:
                data = result
        if data or segment.flags & 0x00080004:
            deliver(data, segment.flags)
        return StreamVerdict()


# ---- packets ----

A4, B4 = IP.addr_bytes("192.0.2.1"), IP.addr_bytes("192.0.2.2")
A6, B6 = IP.addr_bytes("2001:db8::1"), IP.addr_bytes("2001:db8::2")


def udp_packet(
    src: bytes, dst: bytes, sport: int, dport: int, payload: bytes, ttl: int = 64
) -> bytes:
    seg = IP.udp_datagram(src, dst, sport, dport, payload)
    return IP.ip_header(src, dst, IP.IPPROTO_UDP, len(seg), ttl=ttl) + seg


def tcp_packet(
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    seq: int,
    flags: int,
    payload: bytes = b"",
    ack: int = 0,
) -> bytes:
    seg = IP.tcp_segment(src, dst, sport, dport, seq, ack, flags, payload)
    return IP.ip_header(src, dst, IP.IPPROTO_TCP, len(seg)) + seg


def frame(packet: bytes, dst_mac: bytes = MAC_A, src_mac: bytes = MAC_B) -> bytes:
    return IP.ethernet_header(dst_mac, src_mac, IP.ethertype_for(packet[0] >> 4)) + packet


def host(
    stack_kwargs: dict | None = None,
    *,
    mac: bytes | None = MAC_A,
    mtu: int = 1500,
    engine: Any = None,
) -> wfpsim.Stack:
    """A stack with interface 1: 192.0.2.1/24 and 2001:db8::1/64. Without `engine` the stack
    tests use the seam's PermitAllEngine (no callouts: any calloutId is accepted)."""
    if engine is None:
        engine = PermitAllEngine()
    stack = wfpsim.Stack(filter_engine=engine, **(stack_kwargs or {}))
    stack.add_interface(index=1, addresses=["192.0.2.1/24", "2001:db8::1/64"], mtu=mtu, mac=mac)
    return stack


class Completions:
    """A completion function that records calls and frees the NBL the way samples do."""

    def __init__(self, free: str | None = "auto") -> None:
        self.calls: list[tuple[Any, Any, int, bool]] = []
        self.free = free

    def __call__(self, context: Any, nbl: Any, dispatch_level: bool) -> None:
        self.calls.append((context, nbl, nbl.Status, dispatch_level))
        if self.free == "auto":
            if nbl.kind == "plain":
                nbl.free()
            else:
                nbl.free_clone()

    @property
    def statuses(self) -> list[int]:
        return [c[2] for c in self.calls]
