"""Checksums and header operations from Python: spec vectors, split-independence against a
pure-Python RFC 1071 reference, offload, NAT helpers, batch forms, bad input."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wfpsim
from wfpsim import ChecksumInfo, Verdict


def ref_checksum(data: bytes, initial: int = 0) -> int:
    """RFC 1071, the textbook way."""
    if len(data) % 2:
        data += b"\0"
    total = initial
    for (word,) in struct.iter_unpack("!H", data):
        total += word
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


IPV4_HDR = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")  # spec vector 1
UDP4 = bytes.fromhex("4500002100000000401100000" + "0c0a80001c0a800c7") if False else None


def udp4(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes, csum: int = 0) -> bytes:
    total = 20 + 8 + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, 17, 0, src, dst)
    hdr = hdr[:10] + struct.pack("!H", ref_checksum(hdr)) + hdr[12:]
    return hdr + struct.pack("!HHHH", sport, dport, 8 + len(payload), csum) + payload


# ---- spec vectors (checksums.md §8) ----


def test_vector_1_ipv4_header():
    assert wfpsim.internet_checksum(IPV4_HDR) == 0xB861
    fixed = IPV4_HDR[:10] + b"\xb8\x61" + IPV4_HDR[12:]
    assert wfpsim.internet_checksum(fixed) == 0


def test_vector_2_rfc1071_example():
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert wfpsim.ones_sum(data) == 0xDDF2
    assert wfpsim.internet_checksum(data) == 0x220D


def test_vector_5_udp_ipv4_with_pseudo_header():
    a, b = bytes([192, 168, 0, 1]), bytes([192, 168, 0, 199])
    seed = wfpsim.pseudo_header_sum(a, b, 17, 13)
    assert seed == 0x8237
    udp = bytes.fromhex("303900350 00d0000".replace(" ", "")) + b"hello"
    assert wfpsim.internet_checksum(udp, seed) == 0x097B


def test_vector_6_udp_ipv6_pseudo_header():
    a = bytes.fromhex("20010db8000000000000000000000001")
    b = bytes.fromhex("20010db8000000000000000000000002")
    assert wfpsim.pseudo_header_sum(a, b, 17, 13) == 0x5B93
    udp = bytes.fromhex("30390035000d0000") + b"hello"
    assert wfpsim.internet_checksum(udp, wfpsim.pseudo_header_sum(a, b, 17, 13)) == 0x301F


def test_vector_13_udp_zero_is_sent_as_ffff():
    pkt = udp4(bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]), 1000, 2000, b"\xe0\x1f")
    with wfpsim.NetBufferList.from_bytes(pkt) as nbl:
        report = nbl.fix_checksums()
        assert report.transport == "full" and report.transport_value == 0xFFFF
        assert nbl.tobytes()[26:28] == b"\xff\xff"
        assert nbl.verify_checksums().transport is Verdict.VALID


def test_vector_4_and_14_incremental_updates():
    assert wfpsim.checksum_update16(0xDD2F, 0x5555, 0x3285) == 0x0000
    assert wfpsim.checksum_update16(0xB861, 0x4011, 0x3F11) == 0xB961


def test_vector_16_checksum_info_values():
    tx = ChecksumInfo(
        is_ipv4=True, tcp_checksum=True, ip_header_checksum=True, tcp_header_offset=34
    )
    assert tx.value == 0x00220015
    assert ChecksumInfo(is_ipv6=True, udp_checksum=True) == 0x0000000A
    rx = ChecksumInfo(tcp_checksum_succeeded=True, ip_checksum_succeeded=True)
    assert int(rx) == 0x00000028
    with pytest.raises(ValueError, match="10 bits"):
        tx.tcp_header_offset = 1024


# ---- the checksum over data as it lies ----


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=3000), initial=st.integers(0, 0xFFFF))
def test_internet_checksum_matches_reference(data, initial):
    assert wfpsim.internet_checksum(data, initial) == ref_checksum(data, initial)
    assert wfpsim.internet_checksum(bytearray(data), initial) == ref_checksum(data, initial)
    assert wfpsim.internet_checksum(np.frombuffer(data, dtype=np.uint8), initial) == ref_checksum(
        data, initial
    )


@settings(max_examples=300, deadline=None)
@given(data=st.binary(min_size=1, max_size=600), cuts=st.lists(st.integers(0, 600), max_size=6))
def test_checksum_over_any_mdl_split_equals_contiguous(data, cuts):
    wfpsim.set_site_tracking(False)
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    pieces = [data[a:b] for a, b in zip(points, points[1:], strict=False)]
    nbl = wfpsim.NetBufferList.from_buffers(pieces)
    # make one NB whose MDL chain is the pieces: relink the NBs' MDLs
    nbs = nbl.net_buffers
    mdls = [nb.MdlChain for nb in nbs]
    for a, b in zip(mdls, mdls[1:], strict=False):
        a.Next = b
    whole = wfpsim.NetBuffer.allocate(mdls[0], 0, len(data))
    try:
        assert whole.internet_checksum() == ref_checksum(data)
        assert [len(v) for v in whole.views()] == [len(p) for p in pieces if p]
    finally:
        whole.free()
        for m in mdls:
            m.Next = None
        nbl.free()
        wfpsim.set_site_tracking(True)


def test_rejects_non_buffers():
    with pytest.raises(wfpsim.InvalidParameterError, match="bytes-like"):
        wfpsim.internet_checksum("text")
    with pytest.raises(wfpsim.InvalidParameterError, match="4 bytes"):
        wfpsim.pseudo_header_sum(b"\0" * 4, b"\0" * 16, 6, 20)


# ---- verify / fix / offload on NBLs ----


def tcp4_syn() -> bytes:
    tcp = bytes.fromhex("9c400050000000010000000050 02ffff00000000".replace(" ", ""))
    hdr = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        40,
        1,
        0,
        64,
        6,
        0,
        bytes([192, 168, 0, 1]),
        bytes([192, 168, 0, 199]),
    )
    return hdr + tcp


def test_vector_11_fix_tcp_and_verify(no_leaks):
    with wfpsim.NetBufferList.from_bytes(tcp4_syn()) as nbl:
        before = nbl.verify_checksums()
        assert before.ip is Verdict.INVALID and before.transport is Verdict.INVALID
        report = nbl.fix_checksums()
        assert (report.ip, report.transport, report.transport_value) == ("full", "full", 0x9138)
        after = nbl.verify_checksums()
        assert after.ip is Verdict.VALID and after.transport is Verdict.VALID
        assert after.summary.transport_offset == 20 and after.summary.transport_protocol == 6


def test_tx_offload_leaves_the_seed_and_is_recognised(no_leaks):
    with wfpsim.NetBufferList.from_bytes(tcp4_syn()) as nbl:
        nbl.checksum_info = ChecksumInfo(is_ipv4=True, tcp_checksum=True, tcp_header_offset=20)
        report = nbl.fix_checksums()
        assert report.transport == "seed"
        seed = wfpsim.pseudo_header_sum(bytes([192, 168, 0, 1]), bytes([192, 168, 0, 199]), 6, 20)
        assert report.transport_value == seed
        assert nbl.verify_checksums().transport is Verdict.OFFLOAD_PARTIAL
        # read as a received capture (no TX info), the seed is still offload-partial
        assert nbl.FirstNetBuffer.verify_checksums(info=0).transport is Verdict.OFFLOAD_PARTIAL


def test_udp_zero_over_ipv4_is_absent(no_leaks):
    with wfpsim.NetBufferList.from_bytes(udp4(b"\x0a\0\0\1", b"\x0a\0\0\2", 1, 2, b"x")) as nbl:
        assert nbl.verify_checksums().transport is Verdict.ABSENT


def test_non_first_fragment_is_not_checkable_and_never_fixed(no_leaks):
    pkt = bytearray(udp4(b"\x0a\0\0\1", b"\x0a\0\0\2", 1, 2, b"payload!"))
    pkt[6:8] = struct.pack("!H", 0x0001)  # fragment offset 8 bytes
    pkt[10:12] = b"\0\0"
    pkt[10:12] = struct.pack("!H", ref_checksum(bytes(pkt[:20])))
    with wfpsim.NetBufferList.from_bytes(bytes(pkt)) as nbl:
        before = nbl.tobytes()
        v = nbl.verify_checksums()
        assert v.ip is Verdict.VALID and v.transport is Verdict.NOT_CHECKABLE
        assert v.summary.is_fragment and not v.summary.first_fragment
        assert nbl.fix_checksums().transport == "untouched"
        assert nbl.tobytes()[20:] == before[20:]


def test_malformed_packets_raise_with_an_offset(no_leaks):
    with wfpsim.NetBufferList.from_bytes(b"\x45\x00\x00") as nbl:
        with pytest.raises(wfpsim.MalformedPacketError, match="offset"):
            nbl.FirstNetBuffer.verify_checksums()


# ---- NAT helpers ----


@settings(max_examples=100, deadline=None)
@given(
    new_src=st.binary(min_size=4, max_size=4),
    port=st.integers(0, 0xFFFF),
    payload=st.binary(max_size=64),
)
def test_nat_rewrite_equals_full_recompute(new_src, port, payload):
    wfpsim.set_site_tracking(False)
    pkt = udp4(b"\xc0\xa8\0\1", b"\xc0\xa8\0\xc7", 12345, 53, payload)
    with wfpsim.NetBufferList.from_bytes(pkt) as nbl:
        nbl.fix_checksums()
        nb = nbl.FirstNetBuffer
        nb.rewrite_address("source", new_src)
        assert nb.rewrite_port("source", port) == 12345
        nb.decrement_ttl()
        got = nbl.tobytes()
        assert got[12:16] == new_src and struct.unpack("!H", got[20:22])[0] == port and got[8] == 63
        v = nbl.verify_checksums()
        assert v.ip is Verdict.VALID and v.transport is Verdict.VALID
        with wfpsim.NetBufferList.from_bytes(got) as ref:
            ref.fix_checksums()
            assert ref.tobytes() == got
    wfpsim.set_site_tracking(True)


# ---- batch ----


def test_chain_fix_and_verify_in_one_call(no_leaks):
    pkts = [tcp4_syn(), udp4(b"\1\2\3\4", b"\5\6\7\x08", 7, 9, b"abc"), b"\x45\x00"]
    with wfpsim.chain_from_packets(pkts) as chain:
        v = chain.verify_checksums()
        assert len(v) == 3
        assert v.ip.tolist()[:2] == [Verdict.INVALID, Verdict.VALID]
        assert 2 in v.errors and v.transport[2] == Verdict.NOT_CHECKABLE
        fix = chain.fix_checksums()
        assert fix.fixed == 2 and 2 in fix.errors
        v = chain.verify_checksums()
        assert v.ip.tolist()[:2] == [Verdict.VALID, Verdict.VALID]
        assert v.transport.tolist()[:2] == [Verdict.VALID, Verdict.VALID]
        cols = chain.parse()
        assert cols["transport_protocol"].tolist()[:2] == [6, 17]
        assert cols["parsed"].tolist() == [True, True, False]
