"""Filter-engine classify over real packets, against the same loop done with dpkt (issue #5 §8).

Run: ``python -m pytest benches/bench_classify.py --benchmark-columns=mean,ops`` (pytest-benchmark).

Each round walks every TCP/IPv4 packet of ``data/http.pcap`` (repeated to REPEAT copies):

* ``wfpsim``: the packets live in one NBL chain (``Chain.from_packets``); per packet the loop
  reads the IPv4 / TCP fields from the NBL's memory, builds FWPS_INCOMING_VALUES0 for
  FWPS_LAYER_OUTBOUND_TRANSPORT_V4 and calls ``FilterEngine.classify`` — one sublayer, one
  CALLOUT_TERMINATING filter with an IP_PROTOCOL == TCP condition, and a trivial Python classifyFn
  (block port 80 to an odd address, else permit).
* ``wfpsim-hot``: the same, reusing one FWPS_INCOMING_VALUES0 (the values rewritten in place),
  and the engine's trace off: what a tuned stack does.
* ``dpkt``: the same decision function over the same packets parsed by dpkt (Ethernet → IP →
  TCP), no filter engine at all: the cost floor of "parse the headers and call a Python function".

The ratio wfpsim / dpkt is the filter engine's overhead per packet (arbitration, classifyOut,
callout call) relative to doing the parsing in Python.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from wfpsim import Chain
from wfpsim.constants import (
    FWP_ACTION_BLOCK,
    FWP_ACTION_CALLOUT_TERMINATING,
    FWP_ACTION_PERMIT,
    FWP_MATCH_EQUAL,
    FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_LOCAL_ADDRESS,
    FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_LOCAL_PORT,
    FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_PROTOCOL,
    FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_ADDRESS,
    FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_PORT,
    FWPS_FIELD_OUTBOUND_TRANSPORT_V4_MAX,
    FWPS_LAYER_OUTBOUND_TRANSPORT_V4,
    FWPS_RIGHT_ACTION_WRITE,
)
from wfpsim.filtering import FilterEngine
from wfpsim.fwps_types import (
    FWP_VALUE0,
    FWPS_INCOMING_METADATA_VALUES0,
    FWPS_INCOMING_VALUE0,
    FWPS_INCOMING_VALUES0,
)

PCAP = Path(__file__).resolve().parent.parent / "data" / "http.pcap"
REPEAT = 100
L = FWPS_LAYER_OUTBOUND_TRANSPORT_V4
N = int(FWPS_FIELD_OUTBOUND_TRANSPORT_V4_MAX)
PROTO = int(FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_PROTOCOL)
LADDR = int(FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_LOCAL_ADDRESS)
RADDR = int(FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_ADDRESS)
LPORT = int(FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_LOCAL_PORT)
RPORT = int(FWPS_FIELD_OUTBOUND_TRANSPORT_V4_IP_REMOTE_PORT)


def read_pcap(path: Path) -> list[bytes]:
    data = path.read_bytes()
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    packets, off = [], 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack_from(endian + "IIII", data, off)
        off += 16
        packets.append(data[off : off + incl])
        off += incl
    return packets


def tcp4(packets: list[bytes]) -> list[bytes]:
    keep = []
    for p in packets:
        if len(p) >= 54 and p[12:14] == b"\x08\x00" and p[23] == 6:
            keep.append(p)
    return keep


def decide(proto: int, remote: int, rport: int) -> bool:
    """The trivial callout decision: block HTTP to odd addresses."""
    return proto == 6 and rport == 80 and remote & 1 == 1


def classify_fn(inFixedValues, inMetaValues, layerData, filter, flowContext, classifyOut):  # noqa: N803
    v = inFixedValues.incomingValue
    if decide(v[PROTO].value.value, v[RADDR].value.value, v[RPORT].value.value):
        classifyOut.actionType = FWP_ACTION_BLOCK
        classifyOut.rights &= ~FWPS_RIGHT_ACTION_WRITE
    else:
        classifyOut.actionType = FWP_ACTION_PERMIT


def make_engine(trace: bool) -> FilterEngine:
    e = FilterEngine(trace_limit=4096 if trace else 0)
    e.add_sublayer("bench", 0x100)
    e.register_callout(classify_fn, key="bench")
    e.add_filter(
        L,
        FWP_ACTION_CALLOUT_TERMINATING,
        callout_key="bench",
        sublayer="bench",
        conditions=[(PROTO, FWP_MATCH_EQUAL, FWP_VALUE0.u8(6))],
    )
    return e


_unpack_ip = struct.Struct("!9xB2xII").unpack_from
_unpack_ports = struct.Struct("!HH").unpack_from


def values_from(frame) -> FWPS_INCOMING_VALUES0:
    proto, src, dst = _unpack_ip(frame, 14)
    ihl = (frame[14] & 0x0F) * 4
    sport, dport = _unpack_ports(frame, 14 + ihl)
    vals = [FWPS_INCOMING_VALUE0(FWP_VALUE0()) for _ in range(N)]
    vals[PROTO].value = FWP_VALUE0.u8(proto)
    vals[LADDR].value = FWP_VALUE0.u32(src)
    vals[RADDR].value = FWP_VALUE0.u32(dst)
    vals[LPORT].value = FWP_VALUE0.u16(sport)
    vals[RPORT].value = FWP_VALUE0.u16(dport)
    return FWPS_INCOMING_VALUES0(L, N, vals)


@pytest.fixture(scope="module")
def packets():
    if not PCAP.is_file():
        pytest.skip(f"{PCAP} not found")
    pkts = tcp4(read_pcap(PCAP))
    assert pkts, "no TCP/IPv4 packets in the capture"
    return pkts * REPEAT


@pytest.fixture(scope="module")
def chain(packets):
    c = Chain.from_packets(packets)
    yield c
    c.free()


def run_wfpsim(engine: FilterEngine, chain: Chain) -> int:
    meta = FWPS_INCOMING_METADATA_VALUES0()
    blocked = 0
    for nbl in chain:
        frame = nbl.FirstNetBuffer.data
        out = engine.classify(L, values_from(frame), meta, nbl)
        blocked += out.actionType == FWP_ACTION_BLOCK
    return blocked


def run_wfpsim_hot(engine: FilterEngine, chain: Chain) -> int:
    meta = FWPS_INCOMING_METADATA_VALUES0()
    values = values_from(chain[0].FirstNetBuffer.data)
    iv = values.incomingValue
    proto_v, l_v, r_v, lp_v, rp_v = (iv[i].value for i in (PROTO, LADDR, RADDR, LPORT, RPORT))
    blocked = 0
    for nbl in chain:
        frame = nbl.FirstNetBuffer.data
        proto_v.value, l_v.value, r_v.value = _unpack_ip(frame, 14)
        lp_v.value, rp_v.value = _unpack_ports(frame, 14 + (frame[14] & 0x0F) * 4)
        out = engine.classify(L, values, meta, nbl)
        blocked += out.actionType == FWP_ACTION_BLOCK
    return blocked


def run_dpkt(packets: list[bytes]) -> int:
    import dpkt

    blocked = 0
    for raw in packets:
        ip = dpkt.ethernet.Ethernet(raw).data
        tcp = ip.data
        remote = int.from_bytes(ip.dst, "big")
        blocked += decide(ip.p, remote, tcp.dport)
    return blocked


def expected(packets: list[bytes]) -> int:
    count = 0
    for p in packets:
        proto, _, dst = _unpack_ip(p, 14)
        _, dport = _unpack_ports(p, 14 + (p[14] & 0x0F) * 4)
        count += decide(proto, dst, dport)
    return count


def test_classify_wfpsim(benchmark, chain, packets):
    engine = make_engine(trace=True)
    assert benchmark(run_wfpsim, engine, chain) == expected(packets)
    benchmark.extra_info["packets"] = len(packets)


def test_classify_wfpsim_hot(benchmark, chain, packets):
    engine = make_engine(trace=False)
    assert benchmark(run_wfpsim_hot, engine, chain) == expected(packets)
    benchmark.extra_info["packets"] = len(packets)


def test_classify_dpkt(benchmark, packets):
    pytest.importorskip("dpkt")
    assert benchmark(run_dpkt, packets) == expected(packets)
    benchmark.extra_info["packets"] = len(packets)
