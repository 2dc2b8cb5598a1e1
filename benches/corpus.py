"""Real packets for the benches, taken from the capture corpus (../shared/data/pcaps)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import wfpsim

PCAPS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "pcaps"


@cache
def ip_packets() -> tuple[bytes, ...]:
    """The IP packets (link header stripped, whole datagrams) of the captures whose checksums
    are all valid: real sizes, protocols and options."""
    manifest = json.loads((PCAPS / "manifest.json").read_text())["files"]
    out = []
    for entry in manifest:
        if "all_verified_checksums_valid" not in entry["tags"]:
            continue
        for chain in wfpsim.CaptureReader(str(PCAPS / entry["file"])):
            with chain:
                for nbl in chain:
                    frame = nbl.tobytes()
                    found = wfpsim._core.network_layer(nbl.link_type, frame)
                    if found and nbl.orig_len == len(frame):
                        out.append(frame[found[0] :])
    return tuple(out)


@cache
def ipv4_tcp_udp(n: int) -> tuple[bytes, ...]:
    """`n` unfragmented IPv4 TCP/UDP packets (cycled from the corpus) for NAT benches."""
    pool = []
    for p in ip_packets():
        if p[0] >> 4 == 4 and p[9] in (6, 17) and not (int.from_bytes(p[6:8], "big") & 0x3FFF):
            ihl = (p[0] & 0xF) * 4
            if int.from_bytes(p[2:4], "big") == len(p) and len(p) >= ihl + 8:
                pool.append(p)
    return tuple(pool[i % len(pool)] for i in range(n))
