"""What leaves the stack: delivered records, wire frames, and the per-injection log.

* :class:`Delivered` — one record per packet (or stream chunk) that left through a path: to the
  wire, to a local endpoint, into a TCP stream, into the vSwitch. ``function`` is the name of the
  inject function whose packet it is (``"FwpsInjectTransportSendAsync0"``, ...), or None for
  traffic the stack itself originated, received or forwarded.
* :class:`WireFrame` — every frame / IP packet put on a wire, in order, writable to pcap.
* :class:`InjectionRecord` — one per accepted injection (per NBL), with its parameters, the
  layers its packet was classified at after re-entry, its outcome and completion.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: pcap link types used by :func:`write_pcap`.
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101


@dataclass
class Delivered:
    """A packet or stream chunk that left the stack through a path."""

    function: str | None  # inject function name, None for non-injected traffic
    data: bytes  # the bytes as delivered (IP packet; frame for MAC; stream bytes for stream)
    address_family: int
    compartment_id: int
    interface_index: int
    destination: str  # "wire", "local", "stream", "vswitch"
    time_ns: int = 0
    flow_id: int | None = None  # stream deliveries
    stream_flags: int | None = None  # stream deliveries
    endpoint_handle: int | None = None  # local deliveries
    remote: tuple[str, int] | None = None  # local deliveries: (address, port) of the sender
    frame: bytes | None = None  # the Ethernet frame put on the wire, when there was one
    injection_context: Any = None
    layers: tuple[int, ...] = ()  # layer ids the packet was classified at on its way out


@dataclass
class WireFrame:
    time_ns: int
    interface_index: int
    data: bytes  # an Ethernet frame, or an IP packet on an interface without a MAC
    ethernet: bool


@dataclass
class InjectionRecord:
    """One accepted injection of one NBL."""

    function: str
    handle: Any
    nbl: Any
    completion_fn: Any
    completion_context: Any
    injection_context: Any
    params: dict[str, Any]
    origin: str  # the callout (if the engine names it) or the code site that injected
    depth: int  # causal re-injection depth (loop detection)
    time_ns: int
    status: int | None = None  # the NBL Status at completion
    outcome: str = "pending"  # "delivered", "absorbed", "blocked", "dropped", "failed", ...
    layers: list[int] = field(default_factory=list)
    completed: bool = False
    completion_called: bool = False
    snapshot: Any = None  # contract check: the NBL as injected


def write_pcap(path: str | Path, frames: Iterable[WireFrame]) -> int:
    """Writes frames to a classic little-endian pcap file (microsecond timestamps). All frames
    must share one link type (Ethernet or raw IP). Returns the number of frames written."""
    frames = list(frames)
    linktype = LINKTYPE_ETHERNET if not frames or frames[0].ethernet else LINKTYPE_RAW
    if any(f.ethernet != (linktype == LINKTYPE_ETHERNET) for f in frames):
        raise ValueError("write_pcap: frames mix Ethernet and raw-IP link types")
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
        for f in frames:
            sec, usec = divmod(f.time_ns // 1000, 1_000_000)
            out.write(struct.pack("<IIII", sec, usec, len(f.data), len(f.data)))
            out.write(f.data)
    return len(frames)


__all__ = ["Delivered", "WireFrame", "InjectionRecord", "write_pcap"]
