"""A tiny test-local pcap reader (classic libpcap format, either byte order, us/ns stamps)."""

from __future__ import annotations

import struct
from pathlib import Path

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229


def read_pcap(path: Path) -> tuple[int, list[tuple[int, bytes]]]:
    """(linktype, [(timestamp_ns, packet bytes)])"""
    data = Path(path).read_bytes()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0xFFFF
    out = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack_from(endian + "IIII", data, off)
        off += 16
        out.append((sec * 1_000_000_000 + frac * (1 if nano else 1000), data[off : off + caplen]))
        off += caplen
    return linktype, out


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
