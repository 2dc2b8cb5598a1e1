"""Capture helpers for the stack tests (reading goes through wfpsim.CaptureReader)."""

from __future__ import annotations

import struct
from pathlib import Path

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229


def read_pcap(path: Path) -> tuple[int, list[tuple[int, bytes]]]:
    """(linktype, [(timestamp_ns, packet bytes)]) of a capture, through wfpsim's reader."""
    import wfpsim

    linktype = None
    out = []
    for chain in wfpsim.CaptureReader(str(path)):
        with chain:
            for nbl in chain:
                if linktype is None:
                    linktype = nbl.link_type & 0xFFFF
                out.append((nbl.timestamp_ns, nbl.tobytes()))
    return linktype or 0, out


def ip_packets(path: Path) -> list[bytes]:
    """The IP packets of a capture (Ethernet / raw links; VLAN tags skipped)."""
    linktype, records = read_pcap(path)
    out = []
    for _, pkt in records:
        if linktype == LINKTYPE_ETHERNET:
            etype, off = struct.unpack_from("!H", pkt, 12)[0], 14
            while etype == 0x8100:
                etype, off = struct.unpack_from("!H", pkt, off + 2)[0], off + 4
            if etype not in (0x0800, 0x86DD):
                continue
            out.append(pkt[off:])
        elif linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
            out.append(pkt)
    return out


def tagged(pcaps: Path, tag: str) -> list[Path]:
    import json

    manifest = json.loads((pcaps / "manifest.json").read_text())
    return [pcaps / f["file"] for f in manifest["files"] if tag in f["tags"]]
