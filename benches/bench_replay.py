"""Replay's parts against the peers, in the same run: reading a pcap, the NAT pipeline over
100k realistic packets, and a pipeline with a trivial per-packet Python callout."""

from __future__ import annotations

import struct

import dpkt
import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.utils import PcapReader

import wfpsim

from .corpus import ipv4_tcp_udp

N = 100_000


@pytest.fixture(scope="module")
def nat_packets():
    return ipv4_tcp_udp(N)


@pytest.fixture(scope="module")
def raw_pcap(tmp_path_factory, nat_packets):
    """A LINKTYPE_RAW pcap of the 100k packets (≈ tens of MB)."""
    path = tmp_path_factory.mktemp("bench") / "raw.pcap"
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 101))
        for i, p in enumerate(nat_packets):
            f.write(struct.pack("<IIII", i, 0, len(p), len(p)))
            f.write(p)
    return path


@pytest.fixture(scope="module")
def imix_pcap(tmp_path_factory):
    """An Ethernet pcap with the classic IMIX size mix (64/594/1518 bytes, 7:4:1; mean 354 B),
    200k frames ≈ 74 MB: what "GB/s read into NBL chains" is quoted on."""
    import random

    rng = random.Random(354)
    path = tmp_path_factory.mktemp("bench") / "imix.pcap"
    frames = {n: bytes(rng.getrandbits(8) for _ in range(n)) for n in (64, 594, 1518)}
    sizes = [64] * 7 + [594] * 4 + [1518]
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(200_000):
            p = frames[sizes[i % 12]]
            f.write(struct.pack("<IIII", i, 0, len(p), len(p)))
            f.write(p)
    return path


# ---- pcap read into packets ----


def test_read_wfpsim_chains(benchmark, imix_pcap):
    benchmark.group = "pcap-read"
    benchmark.extra_info["bytes"] = imix_pcap.stat().st_size

    def run():
        n = 0
        for chain in wfpsim.CaptureReader(str(imix_pcap)):
            n += len(chain)
            chain.free()
        return n

    assert benchmark(run) == 200_000


def test_read_dpkt(benchmark, imix_pcap):
    benchmark.group = "pcap-read"
    benchmark.extra_info["bytes"] = imix_pcap.stat().st_size

    def run():
        with open(imix_pcap, "rb") as f:
            return sum(1 for _ in dpkt.pcap.Reader(f))

    assert benchmark.pedantic(run, rounds=3) == 200_000


def test_read_struct_loop(benchmark, imix_pcap):
    benchmark.group = "pcap-read"
    benchmark.extra_info["bytes"] = imix_pcap.stat().st_size

    def run():
        with open(imix_pcap, "rb") as f:
            data = f.read()
        off, n = 24, 0
        unpack = struct.Struct("<IIII").unpack_from
        while off < len(data):
            _, _, caplen, _ = unpack(data, off)
            _pkt = data[off + 16 : off + 16 + caplen]
            off += 16 + caplen
            n += 1
        return n

    assert benchmark.pedantic(run, rounds=3) == 200_000


def test_read_scapy(benchmark, imix_pcap, tmp_path):
    benchmark.group = "pcap-read"
    small = tmp_path / "small.pcap"
    data = imix_pcap.read_bytes()
    off, count = 24, 0
    while off < len(data) and count < 5000:
        caplen = struct.unpack_from("<I", data, off + 8)[0]
        off += 16 + caplen
        count += 1
    small.write_bytes(data[:off])
    benchmark.extra_info["bytes"] = off
    benchmark.extra_info["note"] = "5000 packets (scapy is too slow for 100k per round)"

    def run():
        with PcapReader(str(small)) as r:
            return sum(1 for _ in r)

    assert benchmark.pedantic(run, rounds=3) == 5000


# ---- NAT of 100k packets: source address and source port, RFC 1624 ----

NEW_SRC = bytes([10, 1, 2, 3])
NEW_PORT = 40000


def test_nat_wfpsim_native(benchmark, raw_pcap):
    benchmark.group = "nat-100k"
    reader = wfpsim.CaptureReader(str(raw_pcap), N + 1, 1 << 30)
    chain = reader.next_chain()
    pipe = wfpsim.Pipeline.from_spec("nat:src=10.1.2.3,nat:sport=40000")
    benchmark.extra_info["packets"] = N
    benchmark(pipe.run, chain)
    assert pipe.stats[0]["applied"] >= N and pipe.stats[0]["errors"] == 0
    v = chain.verify_checksums()
    assert (v.transport == wfpsim.Verdict.VALID).sum() + (
        v.transport == wfpsim.Verdict.ABSENT
    ).sum() == N
    chain.free()


def test_nat_dpkt(benchmark, nat_packets):
    benchmark.group = "nat-100k"
    benchmark.extra_info["packets"] = N

    def run():
        out = []
        for p in nat_packets:
            ip = dpkt.ip.IP(p)
            ip.src = NEW_SRC
            ip.data.sport = NEW_PORT
            ip.sum = 0
            ip.data.sum = 0
            out.append(bytes(ip))
        return out

    benchmark.pedantic(run, rounds=3)


def _fix16(csum: int, old: int, new: int) -> int:
    s = (~csum & 0xFFFF) + (~old & 0xFFFF) + new
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def test_nat_python_rfc1624(benchmark, nat_packets):
    """The same NAT written by hand in Python with RFC 1624 incremental updates."""
    benchmark.group = "nat-100k"
    benchmark.extra_info["packets"] = N
    bufs = [bytearray(p) for p in nat_packets]
    new_hi, new_lo = (NEW_SRC[0] << 8) | NEW_SRC[1], (NEW_SRC[2] << 8) | NEW_SRC[3]

    def run():
        for b in bufs:
            ihl = (b[0] & 0xF) * 4
            old_hi, old_lo = (b[12] << 8) | b[13], (b[14] << 8) | b[15]
            ipc = (b[10] << 8) | b[11]
            ipc = _fix16(_fix16(ipc, old_hi, new_hi), old_lo, new_lo)
            b[10], b[11] = ipc >> 8, ipc & 0xFF
            b[12:16] = NEW_SRC
            at = ihl + (16 if b[9] == 6 else 6)
            c = (b[at] << 8) | b[at + 1]
            if b[9] == 6 or c:
                old_port = (b[ihl] << 8) | b[ihl + 1]
                c = _fix16(_fix16(_fix16(c, old_hi, new_hi), old_lo, new_lo), old_port, NEW_PORT)
                b[at], b[at + 1] = c >> 8, c & 0xFF
            b[ihl], b[ihl + 1] = NEW_PORT >> 8, NEW_PORT & 0xFF

    benchmark.pedantic(run, rounds=3)


def test_nat_scapy(benchmark, nat_packets):
    benchmark.group = "nat-100k"
    sample = nat_packets[:2000]
    benchmark.extra_info["packets"] = len(sample)
    benchmark.extra_info["note"] = "2000 packets (scapy is too slow for 100k per round)"

    def run():
        for p in sample:
            pkt = IP(p)
            pkt.src = "10.1.2.3"
            l4 = pkt[TCP] if TCP in pkt else pkt[UDP]
            l4.sport = NEW_PORT
            del pkt.chksum
            del l4.chksum
            bytes(pkt)

    benchmark.pedantic(run, rounds=3)


# ---- a pipeline with a trivial per-packet Python callout ----


def test_trivial_callout_pipeline(benchmark, raw_pcap):
    benchmark.group = "callout-100k"
    reader = wfpsim.CaptureReader(str(raw_pcap), N + 1, 1 << 30)
    chain = reader.next_chain()
    seen = [0]

    def callout(nbl):
        seen[0] += 1

    pipe = wfpsim.Pipeline([], callout, True)
    benchmark.extra_info["packets"] = N
    benchmark.pedantic(pipe.run, args=(chain,), rounds=3)
    assert seen[0] == 3 * N
    chain.free()


def test_trivial_callout_dpkt_loop(benchmark, nat_packets):
    """The same per-packet Python call, with dpkt parsing each packet (what a dpkt user does)."""
    benchmark.group = "callout-100k"
    benchmark.extra_info["packets"] = N
    seen = [0]

    def callout(ip):
        seen[0] += 1

    def run():
        for p in nat_packets:
            callout(dpkt.ip.IP(p))

    benchmark.pedantic(run, rounds=3)


# ---- full replay: read, inject every packet, complete it ----


def test_full_replay_inject_wfpsim(benchmark, raw_pcap):
    from wfpsim.replay_inject import make_injector

    benchmark.group = "replay-inject-100k"
    benchmark.extra_info["packets"] = N
    inject = make_injector("FwpsInjectNetworkSendAsync0")

    def run():
        return wfpsim.replay(raw_pcap, inject=inject, verify=False)

    s = benchmark.pedantic(run, rounds=3)
    assert s.inject["completed"] == N


def test_full_replay_inject_dpkt_python(benchmark, raw_pcap):
    """The same work with dpkt reading and a Python inject + completion per packet."""
    benchmark.group = "replay-inject-100k"
    benchmark.extra_info["packets"] = N

    def run():
        queue, completed = [], [0]

        def completion(ctx, pkt, dispatch):
            completed[0] += 1

        with open(raw_pcap, "rb") as f:
            for _ts, buf in dpkt.pcap.Reader(f):
                if buf[0] >> 4 in (4, 6) and len(buf) <= 1500:  # the call's checks
                    queue.append((completion, buf))
        for fn, buf in queue:
            fn(None, buf, True)
        return completed[0]

    assert benchmark.pedantic(run, rounds=3) == N
