"""A short tour of the NBL engine on a real capture (the README's demo)."""

from __future__ import annotations

from pathlib import Path

import wfpsim
from wfpsim import wdk

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "http.pcap"


def run_demo(path: str | None = None) -> int:
    path = path or str(SHIPPED)
    reader = wfpsim._core.CaptureReader(path)
    chain = reader.next_chain()
    if chain is None:
        print(f"{path}: no packets")
        return 0
    with chain:
        nbl = chain.head
        nb = nbl.FirstNetBuffer
        frame_len = nb.DataLength
        offset, version = wfpsim._core.network_layer(nbl.link_type, nb.tobytes())
        print(f"read {len(chain)} packets from {path}; the first is a {frame_len}-byte frame")
        print(f"  its IPv{version} header starts at byte {offset}")

        wdk.NdisAdvanceNetBufferDataStart(nb, offset, False, None)
        print(
            f"  advance {offset}: DataOffset={nb.DataOffset} DataLength={nb.DataLength} (network-layer view)"
        )
        v = nb.verify_checksums()
        print(f"  checksums: ip={v.ip.name} transport={v.transport.name}")

        status, clone = wdk.FwpsAllocateCloneNetBufferList0(nbl, None, None, 0)
        print(
            f"  clone: {status.name}, ChildRefCount={nbl.ChildRefCount}, shares memory with its parent"
        )
        cnb = clone.FirstNetBuffer
        cnb.rewrite_address("source", bytes([10, 0, 0, 1]))
        print(f"  NAT on the clone (source 10.0.0.1): parent sees {nb.tobytes()[12:16].hex()} too")
        print(f"  checksums after the incremental update: {cnb.verify_checksums().transport.name}")

        status = wdk.NdisRetreatNetBufferDataStart(cnb, offset, 0, None)
        print(
            f"  retreat the clone by {offset}: {status.name}, DataOffset={cnb.DataOffset}, link header back"
        )
        wdk.FwpsFreeCloneNetBufferList0(clone, 0)
        print(f"  free the clone: ChildRefCount={nbl.ChildRefCount}")
        wdk.NdisRetreatNetBufferDataStart(nb, offset, 0, None)
    print(f"leaks: {len(wfpsim.leak_report())}")
    return 0
