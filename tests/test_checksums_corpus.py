"""The checksum API over the real corpus, through the Python binding: verdicts agree with
`checksums_per_packet.json`, and for every packet whose checksums are valid, zeroing and
fixing reproduces them byte for byte."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import dpkt
import pytest

import wfpsim
from wfpsim import Verdict

PCAPS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "pcaps"
VERDICTS = PCAPS / "checksums_per_packet.json"

# The corpus's statuses, as wfpsim verdicts.
STATUS = {
    "valid": Verdict.VALID,
    "invalid_offload_partial": Verdict.OFFLOAD_PARTIAL,
    "invalid_zero": Verdict.INVALID,
    "invalid_other": Verdict.INVALID,
    "udp_zero": Verdict.ABSENT,
    "unverifiable": Verdict.NOT_CHECKABLE,
}


def ip_packets(path: Path):
    """(index, IP bytes) of every record whose link layer decodes to IP."""
    index = 0
    for chain in wfpsim.CaptureReader(str(path)):
        with chain:
            for nbl in chain:
                frame = nbl.tobytes()
                found = wfpsim._core.network_layer(nbl.link_type, frame)
                if found is not None:
                    yield index, frame[found[0] :]
                index += 1


def zero_checksums(ip: bytes, transport: bool) -> bytes:
    """Zeroes the IPv4 header checksum, and the transport checksum when there is one."""
    b = bytearray(ip)
    if b[0] >> 4 == 4:
        ihl = (b[0] & 0xF) * 4
        b[10:12] = b"\0\0"
        proto, off = b[9], ihl
    else:
        proto, off = b[6], 40
    at = {6: 16, 17: 6, 1: 2, 58: 2}.get(proto)
    if transport and at is not None and len(b) >= off + at + 2:
        b[off + at : off + at + 2] = b"\0\0"
    return bytes(b)


@pytest.mark.skipif(not VERDICTS.exists(), reason="capture corpus not found")
def test_outer_verdicts_agree_and_fix_reproduces_valid_checksums(no_leaks):
    expected = json.loads(VERDICTS.read_text())
    agreed = reproduced = 0
    for name, per_packet in expected.items():
        for index, ip in ip_packets(PCAPS / name):
            records = [r for r in per_packet[index] if r[2] == 0]
            with wfpsim.NetBufferList.from_bytes(ip) as nbl:
                try:
                    got = nbl.FirstNetBuffer.verify_checksums(info=0)
                except wfpsim.MalformedPacketError:
                    continue
                for kind, status, _ in records:
                    verdict = got.ip if kind == "ipv4_header" else got.transport
                    assert verdict is STATUS[status], (name, index, kind, status, verdict)
                    agreed += 1
            simple_v4 = ip[0] >> 4 == 4 and (ip[0] & 0xF) == 5
            if records and all(s == "valid" for _, s, _ in records) and simple_v4:
                with wfpsim.NetBufferList.from_bytes(zero_checksums(ip, len(records) > 1)) as nbl:
                    nbl.fix_checksums()
                    assert nbl.tobytes() == ip, (name, index)
                    reproduced += 1
    assert agreed > 20_000 and reproduced > 9_000


def ipv6_udp_computing_to_zero() -> bytes:
    """An IPv6/UDP datagram whose checksum computes to 0x0000 (so 0xFFFF goes on the wire)."""
    src = bytes.fromhex("20010db8000000000000000000000001")
    dst = bytes.fromhex("20010db8000000000000000000000002")
    payload = bytearray(b"zero-sum\0\0")  # even length: the last word is aligned
    for _ in range(2):
        udp = struct.pack("!HHHH", 5353, 5353, 8 + len(payload), 0) + bytes(payload)
        pseudo = wfpsim.pseudo_header_sum(src, dst, 17, len(udp))
        c = wfpsim.internet_checksum(udp, pseudo)
        # adding the current checksum to the last word makes the sum 0xFFFF: checksum 0
        last = (int.from_bytes(payload[-2:], "big") + c) % 0xFFFF
        payload[-2:] = last.to_bytes(2, "big")
    udp = struct.pack("!HHHH", 5353, 5353, 8 + len(payload), 0) + bytes(payload)
    assert wfpsim.internet_checksum(udp, wfpsim.pseudo_header_sum(src, dst, 17, len(udp))) == 0
    return struct.pack("!IHBB", 6 << 28, len(udp), 17, 64) + src + dst + udp


def test_ipv6_udp_computed_zero_is_sent_as_ffff_unlike_dpkt(no_leaks):
    pkt = ipv6_udp_computing_to_zero()
    with wfpsim.NetBufferList.from_bytes(pkt) as nbl:
        report = nbl.fix_checksums()
        assert report.transport_value == 0xFFFF
        assert nbl.tobytes()[46:48] == b"\xff\xff"
        assert nbl.verify_checksums().transport is Verdict.VALID
    ip6 = dpkt.ip6.IP6(pkt)
    ip6.data.sum = 0
    # dpkt 1.9.8 writes 0x0000 here, which a receiver reads as "no checksum" (invalid on IPv6).
    assert bytes(ip6)[46:48] == b"\x00\x00"
