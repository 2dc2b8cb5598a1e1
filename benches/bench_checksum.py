"""Checksum throughput (40 B, 1500 B, 64 KiB) and "fix every checksum of a chain of real
packets", wfpsim against numpy, dpkt and scapy in the same run."""

from __future__ import annotations

import os

import dpkt
import numpy as np
import pytest
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.utils import checksum as scapy_checksum

import wfpsim

from .corpus import ip_packets

SIZES = {"40B": 40, "1500B": 1500, "64KiB": 65536}
DATA = {name: os.urandom(n) for name, n in SIZES.items()}


def numpy_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = int(np.frombuffer(data, dtype=">u2").sum(dtype=np.uint64))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


PEERS = {
    "wfpsim": wfpsim.internet_checksum,
    "numpy": numpy_checksum,
    "dpkt": dpkt.in_cksum,
    "scapy": scapy_checksum,
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("peer", PEERS)
def test_checksum(benchmark, peer, size):
    benchmark.group = f"checksum-{size}"
    data = DATA[size]
    fn = PEERS[peer]
    expected = wfpsim.internet_checksum(data)
    assert fn(data) & 0xFFFF == expected
    benchmark.extra_info["bytes"] = len(data)
    benchmark(fn, data)


@pytest.mark.parametrize("size", ["1500B", "64KiB"])
def test_checksum_over_mdl_chain(benchmark, size):
    """The checksum over a NET_BUFFER whose data lies across a chain of MDLs (no copy)."""
    benchmark.group = f"checksum-{size}"
    data = DATA[size]
    piece = 1500 if size == "64KiB" else 500
    pieces = [data[i : i + piece] for i in range(0, len(data), piece)]
    nbl = wfpsim.NetBufferList.from_buffers(pieces)
    mdls = [nb.MdlChain for nb in nbl.net_buffers]
    for a, b in zip(mdls, mdls[1:], strict=False):
        a.Next = b
    nb = wfpsim.NetBuffer.allocate(mdls[0], 0, len(data))
    assert nb.internet_checksum() == wfpsim.internet_checksum(data)
    benchmark.extra_info["bytes"] = len(data)
    benchmark(nb.internet_checksum)
    nb.free()
    for m in mdls:
        m.Next = None
    nbl.free()


# ---- fix every checksum of a chain of real packets ----


def zeroed(packets):
    """The packets with their IPv4 header and TCP/UDP checksums zeroed (work to redo)."""
    out = []
    for p in packets:
        b = bytearray(p)
        v = b[0] >> 4
        if v == 4:
            b[10:12] = b"\0\0"
            ihl = (b[0] & 0xF) * 4
            proto, off = b[9], ihl
        else:
            proto, off = b[6], 40
        if proto == 6 and len(b) >= off + 18:
            b[off + 16 : off + 18] = b"\0\0"
        elif proto == 17 and len(b) >= off + 8:
            b[off + 6 : off + 8] = b"\0\0"
        out.append(bytes(b))
    return out


@pytest.fixture(scope="module")
def real_packets():
    pkts = [
        p
        for p in ip_packets()
        if (p[0] >> 4 == 4 and p[9] in (6, 17)) or (p[0] >> 4 == 6 and p[6] in (6, 17))
    ]
    return zeroed(pkts)


def test_fix_chain_wfpsim(benchmark, real_packets):
    benchmark.group = "fix-chain"
    benchmark.extra_info["packets"] = len(real_packets)
    chain = wfpsim.chain_from_packets(real_packets)
    benchmark(chain.fix_checksums)
    chain.free()


def test_fix_chain_dpkt(benchmark, real_packets):
    benchmark.group = "fix-chain"
    benchmark.extra_info["packets"] = len(real_packets)

    def run():
        for p in real_packets:
            ip = dpkt.ip.IP(p) if p[0] >> 4 == 4 else dpkt.ip6.IP6(p)
            if isinstance(ip, dpkt.ip.IP):
                ip.sum = 0
            if isinstance(ip.data, (dpkt.tcp.TCP, dpkt.udp.UDP)):
                ip.data.sum = 0
            bytes(ip)

    benchmark(run)


def test_fix_chain_scapy(benchmark, real_packets):
    benchmark.group = "fix-chain"
    sample = real_packets[:500]
    benchmark.extra_info["packets"] = len(sample)

    def run():
        for p in sample:
            pkt = IP(p) if p[0] >> 4 == 4 else IPv6(p)
            if pkt.version == 4:
                del pkt.chksum
            if pkt.payload and hasattr(pkt.payload, "chksum"):
                del pkt.payload.chksum
            bytes(pkt)

    benchmark(run)


# ---- a chain of buffers in one call (the batch form) ----

# Chains sized to stay in L2 (2 MiB here): 1.5 MB and 1 MB. A chain several times larger than
# the caches is bound by memory bandwidth instead (see BENCHMARKS.md).
CHAIN_N = {"1500B": 1000, "64KiB": 16}


@pytest.mark.parametrize("size", ["1500B", "64KiB"])
def test_chain_of_buffers_wfpsim(benchmark, size):
    benchmark.group = f"checksum-chain-{size}"
    bufs = [os.urandom(SIZES[size]) for _ in range(CHAIN_N[size])]
    chain = wfpsim.chain_from_packets(bufs)
    assert chain.internet_checksums().tolist() == [wfpsim.internet_checksum(b) for b in bufs]
    benchmark.extra_info["bytes"] = sum(map(len, bufs))
    benchmark(chain.internet_checksums)
    chain.free()


@pytest.mark.parametrize("size", ["1500B", "64KiB"])
def test_chain_of_buffers_dpkt(benchmark, size):
    benchmark.group = f"checksum-chain-{size}"
    bufs = [os.urandom(SIZES[size]) for _ in range(CHAIN_N[size])]
    benchmark.extra_info["bytes"] = sum(map(len, bufs))
    benchmark(lambda: [dpkt.in_cksum(b) for b in bufs])
