"""Capture I/O and replay against the real corpus: round trips, an independent reader (dpkt)
as oracle for bytes and timestamps, and the NAT pipeline checked against dpkt doing the same."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import dpkt
import pytest

import wfpsim
from wfpsim._core import CaptureReader, CaptureWriter

PCAPS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "pcaps"


def corpus() -> list[dict]:
    manifest = PCAPS / "manifest.json"
    if not manifest.exists():
        return []
    return json.loads(manifest.read_text())["files"]


def read_records(path: Path) -> list[tuple[int, int, int, bytes]]:
    """(link_type, ts_ns, orig_len, bytes) of every record, through wfpsim."""
    out = []
    for chain in CaptureReader(str(path), 1000):
        with chain:
            for nbl in chain:
                out.append((nbl.link_type, nbl.timestamp_ns, nbl.orig_len, nbl.tobytes()))
    return out


FILES = corpus()


@pytest.mark.skipif(not FILES, reason="capture corpus not found")
@pytest.mark.parametrize("entry", FILES, ids=[f["file"] for f in FILES])
def test_round_trip_every_capture(entry, tmp_path, no_leaks):
    src = PCAPS / entry["file"]
    records = read_records(src)
    assert len(records) == entry["packets"]
    one_link = len({r[0] for r in records}) <= 1
    formats = ["pcapng"] + (["pcap"] if one_link else [])
    for fmt in formats:
        out = tmp_path / f"out.{fmt}"
        with CaptureWriter(str(out), fmt) as w:
            for chain in CaptureReader(str(src), 777):
                with chain:
                    w.write_chain(chain)
        assert read_records(out) == records, fmt


@pytest.mark.skipif(not FILES, reason="capture corpus not found")
@pytest.mark.parametrize(
    "entry",
    [f for f in FILES if f["format"] == "pcap"],
    ids=[f["file"] for f in FILES if f["format"] == "pcap"],
)
def test_bytes_and_timestamps_agree_with_dpkt(entry):
    path = PCAPS / entry["file"]
    ours = read_records(path)
    with open(path, "rb") as f:
        theirs = list(dpkt.pcap.Reader(f))
    assert len(ours) == len(theirs)
    for (_, ts_ns, _, data), (ts, buf) in zip(ours, theirs, strict=True):
        assert data == buf
        assert abs(ts_ns / 1e9 - float(ts)) < 1e-6


def nat_oracle(frame: bytes, new_src: bytes) -> bytes | None:
    """dpkt does the NAT stage's work on one Ethernet frame: the expected IP bytes, or None
    where the packet is outside what the comparison covers."""
    eth = dpkt.ethernet.Ethernet(frame)
    ip = eth.data
    if not isinstance(ip, dpkt.ip.IP) or not isinstance(ip.data, (dpkt.tcp.TCP, dpkt.udp.UDP)):
        return None
    if ip.off & (dpkt.ip.IP_MF | dpkt.ip.IP_OFFMASK) or ip.len > len(bytes(ip)):
        return None
    if isinstance(ip.data, dpkt.udp.UDP) and ip.data.sum == 0:
        return None
    ip.src = new_src
    ip.ttl -= 1
    ip.sum = 0
    ip.data.sum = 0
    return bytes(ip)


OFFLOAD_FREE_ETH = [
    f
    for f in FILES
    if "all_verified_checksums_valid" in f["tags"] and f["linktypes"] == {"EN10MB": f["packets"]}
]


@pytest.mark.skipif(not OFFLOAD_FREE_ETH, reason="capture corpus not found")
def test_nat_pipeline_matches_dpkt(tmp_path, no_leaks):
    """Every IPv4 TCP/UDP packet of the offload-free Ethernet captures, NAT'ed by the native
    pipeline, equals dpkt's rewrite of the same packet (ARP etc. pass through untouched)."""
    compared = 0
    for entry in OFFLOAD_FREE_ETH:
        src = PCAPS / entry["file"]
        out = tmp_path / "nat.pcapng"
        summary = wfpsim.replay(
            src, out, pipeline="strip-link,nat:src=10.9.8.7,ttl,fix-checksums", verify=False
        )
        assert summary.exit_code == 0 and summary.packets == entry["packets"], entry["file"]
        frames = [r[3] for r in read_records(src)]
        for frame, (link, _, _, got) in zip(frames, read_records(out), strict=True):
            expected = nat_oracle(frame, bytes([10, 9, 8, 7]))
            if expected is None:
                continue
            assert link == 101, entry["file"]  # LINKTYPE_RAW after strip-link
            assert got[: len(expected)] == expected, entry["file"]
            compared += 1
    assert compared > 1000


def test_reader_streams_in_bounded_batches(tmp_path, no_leaks):
    """A capture many times larger than one batch is read batch by batch."""
    path = tmp_path / "big.pcap"
    pkt = bytes(range(256)) * 4
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(5000):
            f.write(struct.pack("<IIII", i, 0, len(pkt), len(pkt)))
            f.write(pkt)
    sizes = []
    for chain in CaptureReader(str(path), 1 << 20, 64 * 1024):
        with chain:
            sizes.append(chain.stats()[2])
    assert sum(sizes) == 5000 * len(pkt)
    assert max(sizes) <= 64 * 1024 and len(sizes) > 70


def test_damaged_capture_yields_the_packets_before_the_damage(tmp_path):
    src = Path(__file__).resolve().parent.parent / "data" / "http.pcap"
    data = src.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2])
    reader = CaptureReader(str(cut))
    got = 0
    with pytest.raises(wfpsim.CaptureError, match="truncated record .* byte offset") as err:
        for chain in reader:
            with chain:
                got += len(chain)
    assert got > 0 and err.value.record == got and err.value.offset < len(data) // 2


def test_writer_refuses_a_second_link_type_in_pcap(tmp_path, no_leaks):
    with wfpsim.chain_from_packets([b"\x45" + bytes(19), b"\x45" + bytes(19)]) as chain:
        chain[0].link_type = 101
        chain[1].link_type = 1
        with (
            CaptureWriter(str(tmp_path / "x.pcap")) as w,
            pytest.raises(wfpsim.WfpError, match="link"),
        ):
            w.write_chain(chain)
