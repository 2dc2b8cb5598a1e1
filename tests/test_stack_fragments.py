"""Fragment reassembly (RFC 791 / 8200 / 5722) and fragmentation, against synthetic groups and
the real fragmented captures of ../shared/data/pcaps (manifest tags ipv4_fragments,
ipv6_fragment_header); forward injection of a reassembled group (seed 001)."""

from __future__ import annotations

import struct

import pytest
from fakes import A4, A6, Completions, HookEngine, host, udp_packet
from pcap_util import ip_packets, tagged

import wfpsim
from wfpsim import wdk
from wfpsim.constants import (
    AF_INET,
    AF_INET6,
    FWP_CONDITION_FLAG_IS_FRAGMENT,
    FWP_CONDITION_FLAG_IS_FRAGMENT_GROUP,
    FWP_CONDITION_FLAG_IS_REASSEMBLED,
    FWPS_LAYER_INBOUND_IPPACKET_V4,
    FWPS_LAYER_IPFORWARD_V4,
    FWPS_METADATA_FIELD_FRAGMENT_DATA,
)
from wfpsim.stack import Reassembler, fragment, reassemble_group
from wfpsim.stack import ip as IP
from wfpsim.status import NTSTATUS

S = NTSTATUS
SRC4, DST4 = IP.addr_bytes("198.51.100.1"), IP.addr_bytes("203.0.113.2")
SRC6, DST6 = IP.addr_bytes("2001:db8:1::1"), IP.addr_bytes("2001:db8:2::2")
SECOND = 1_000_000_000


def with_id(packet: bytes, ident: int) -> bytes:
    """An IPv4 packet with its Identification set (so that reassembly gives it back exactly)."""
    if packet[0] >> 4 != 4:
        return packet
    out = bytearray(packet)
    struct.pack_into("!H", out, 4, ident)
    IP.fix_ipv4_checksum(out)
    return bytes(out)


def big(v6: bool = False, size: int = 3000, ident: int = 0) -> bytes:
    src, dst = (SRC6, DST6) if v6 else (SRC4, DST4)
    return with_id(udp_packet(src, dst, 1111, 2222, bytes(i % 251 for i in range(size))), ident)


def udp_checksum_ok(packet: bytes) -> bool:
    info = IP.parse_ip(packet)
    seg = packet[info.header_length : info.total_length]
    if info.protocol != IP.IPPROTO_UDP:
        return True
    if info.version == 4 and seg[6:8] == b"\x00\x00":
        return True
    total = IP.pseudo_header_sum(info.src, info.dst, IP.IPPROTO_UDP, len(seg))
    return IP.internet_checksum(seg, total) == 0


# ---- the algorithm ----


@pytest.mark.parametrize("v6", [False, True])
@pytest.mark.parametrize("order", ["in", "reversed", "shuffled"])
def test_reassembles_in_any_order(v6, order):
    whole = big(v6, ident=4242)
    pieces = fragment(whole, 576, 4242)
    assert len(pieces) == 6 and all(len(p) <= 576 for p in pieces)
    if order == "reversed":
        pieces = pieces[::-1]
    elif order == "shuffled":
        pieces = [pieces[i] for i in (3, 0, 5, 1, 4, 2)]
    r = Reassembler()
    results = [r.add(p) for p in pieces]
    assert results[:-1] == [None] * 5
    assert results[-1].packet == whole
    assert results[-1].fragment_count == 6
    assert r.groups == {}


def test_fragmentation_respects_8_byte_units_and_v6_fragment_header():
    pieces = fragment(big(True), 1280, 9)
    infos = [IP.parse_ip(p) for p in pieces]
    assert [i.has_fragment_header for i in infos] == [True] * len(pieces)
    assert all(i.identification == 9 for i in infos)
    assert all((i.total_length - i.header_length) % 8 == 0 for i in infos[:-1])
    assert [i.more_fragments for i in infos] == [True] * (len(pieces) - 1) + [False]


def test_dont_fragment_is_honoured():
    packet = bytearray(big())
    struct.pack_into("!H", packet, 6, 0x4000)
    IP.fix_ipv4_checksum(packet)
    with pytest.raises(wfpsim.MalformedPacketError, match="DF"):
        fragment(bytes(packet), 576)


@pytest.mark.parametrize("v6", [False, True])
def test_exact_duplicates_are_dropped_and_the_group_goes_on(v6):
    pieces = fragment(big(v6, ident=1), 576, 1)
    r = Reassembler()
    r.add(pieces[0])
    assert r.add(pieces[0]) is None
    assert [e.kind for e in r.events] == ["duplicate"]
    done = [r.add(p) for p in pieces[1:]]
    assert done[-1] is not None and done[-1].packet == big(v6, ident=1)


def test_ipv6_overlap_discards_the_datagram_rfc5722():
    pieces = fragment(big(True), 576, 2)
    bad = bytearray(pieces[1])
    info = IP.parse_ip(bytes(bad))
    # move fragment 2 back by 8 bytes: it now overlaps fragment 1
    word = struct.unpack_from("!H", bad, info.fragment_header_offset + 2)[0]
    struct.pack_into("!H", bad, info.fragment_header_offset + 2, word - 8)
    r = Reassembler()
    assert r.add(pieces[0]) is None
    assert r.add(bytes(bad)) is None
    assert r.events[-1].kind == "overlap" and "discarded" in r.events[-1].detail
    # every later fragment of that datagram is silently discarded, even the good ones
    assert all(r.add(p) is None for p in pieces[1:])
    assert {e.kind for e in r.events[1:]} == {"discarded_after_overlap"}
    # ... until the timer clears the entry
    r.expire(60 * SECOND)
    assert r.groups == {}


def test_ipv4_overlap_policies():
    whole = big(False, 1000, ident=3)
    pieces = fragment(whole, 276, 3)  # 256 data bytes per fragment
    overlap = bytearray(pieces[1])
    # a fragment [248, 504) with different bytes: overlaps the ends of fragments 0 and 1
    data = b"\xaa" * 256
    hdr = bytearray(overlap[:20])
    struct.pack_into("!H", hdr, 2, 20 + len(data))
    struct.pack_into("!H", hdr, 6, 0x2000 | (248 // 8))
    IP.fix_ipv4_checksum(hdr)
    rogue = bytes(hdr) + data
    r = Reassembler(ipv4_overlap="last")  # RFC 791's sample algorithm: later copies win
    out = [r.add(p) for p in [pieces[0], pieces[1], rogue] + pieces[2:]]
    payload = out[-1].packet[20:]
    assert payload[248:504] == b"\xaa" * 256
    assert [e.kind for e in r.events] == ["overlap", "overlap"]  # with fragments 0 and 1
    first = Reassembler()  # default: what arrived first wins (Windows policy)
    out = [first.add(p) for p in [pieces[0], pieces[1], rogue] + pieces[2:]]
    assert out[-1].packet == whole
    strict = Reassembler(ipv4_overlap="drop")
    out = [strict.add(p) for p in [pieces[0], pieces[1], rogue] + pieces[2:]]
    assert out[-1] is None and strict.events[0].kind == "overlap"


def test_inconsistent_ends_discard():
    pieces = fragment(big(), 576, 4)
    last = bytearray(pieces[-1])
    struct.pack_into("!H", last, 2, len(last) - 8)  # a shorter last fragment: a second end
    IP.fix_ipv4_checksum(last)
    r = Reassembler()
    r.add(pieces[-1])
    assert r.add(bytes(last[:-8])) is None
    assert r.events[-1].kind == "inconsistent"


def test_ipv6_non_last_fragment_length_must_be_a_multiple_of_8():
    pieces = fragment(big(True), 576, 5)
    odd = bytearray(pieces[0][:-3])
    struct.pack_into("!H", odd, 4, len(odd) - 40)
    r = Reassembler()
    assert r.add(bytes(odd)) is None
    assert r.events[-1].kind == "bad_length" and r.events[-1].icmp == (4, 0)


def test_too_long_reassembly_is_refused():
    pieces = fragment(big(), 576, 6)
    far = bytearray(pieces[1])
    struct.pack_into("!H", far, 6, 0x2000 | (65528 // 8))
    IP.fix_ipv4_checksum(far)
    r = Reassembler()
    assert r.add(bytes(far)) is None
    assert r.events[-1].kind == "too_long"


@pytest.mark.parametrize("with_first", [True, False])
def test_missing_fragment_times_out(with_first):
    pieces = fragment(big(True), 576, 7)
    r = Reassembler(timeout_ns=60 * SECOND)
    for p in pieces[(0 if with_first else 1) : -1]:
        r.add(p, now_ns=0)
    assert r.expire(59 * SECOND) == [] and r.pending() == 1
    events = r.expire(60 * SECOND)
    assert len(events) == 1 and r.groups == {}
    # RFC 8200: time exceeded (type 3, code 1) only when the first fragment arrived
    assert events[0].icmp == ((3, 1) if with_first else None)


def test_atomic_ipv6_fragment_is_a_whole_packet():
    whole = big(True, 100)
    info = IP.parse_ip(whole)
    atomic = bytearray(whole[:40]) + struct.pack("!BxHI", IP.IPPROTO_UDP, 0, 99) + whole[40:]
    atomic[6] = IP.IPPROTO_FRAGMENT
    struct.pack_into("!H", atomic, 4, info.total_length - 40 + 8)
    parsed = IP.parse_ip(bytes(atomic))
    assert parsed.has_fragment_header and not parsed.is_fragment
    assert Reassembler().add(bytes(atomic)).packet == bytes(atomic)


def test_reassemble_group_errors_name_the_problem():
    pieces = fragment(big(), 576, 8)
    with pytest.raises(wfpsim.InvalidParameterError, match="incomplete"):
        reassemble_group(pieces[:-1])
    with pytest.raises(wfpsim.InvalidParameterError, match="another datagram"):
        reassemble_group([pieces[0], fragment(big(), 576, 9)[1]])
    with pytest.raises(wfpsim.InvalidParameterError, match="not a fragment"):
        reassemble_group([big()])
    assert reassemble_group(pieces) == big(ident=8)


# ---- the real captures ----


def test_afs_capture_200_fragments_into_51_datagrams(pcaps):
    packets = ip_packets(pcaps / "tcpdump" / "afs.pcap")
    fragments = [p for p in packets if IP.parse_ip(p).is_fragment]
    assert len(fragments) == 200
    r = Reassembler()
    done = [res for res in (r.add(p) for p in fragments) if res]
    assert len(done) == 51 and sum(d.fragment_count for d in done) == 200
    assert all(udp_checksum_ok(d.packet) for d in done)  # every reassembled UDP checksum verifies
    assert all(len(d.packet) == IP.parse_ip(d.packet).total_length for d in done)
    assert r.groups == {} and r.events == []


@pytest.mark.parametrize("policy", ["first", "last", "drop"])
def test_zeek_ipv4_overlapping_tcp_fragments(pcaps, policy):
    """fragmented-4 is an IDS-evasion capture: [24,72) arrives after [48,72) with other bytes.
    Keeping the first arrival yields the real HTTP request with a valid TCP checksum."""
    packets = [
        p
        for p in ip_packets(pcaps / "zeek" / "ipv4" / "fragmented-4.pcap")
        if IP.parse_ip(p).is_fragment
    ]
    r = Reassembler(ipv4_overlap=policy)
    whole = [r.add(p) for p in packets][-1]
    if policy == "drop":
        assert whole is None and r.events[-1].kind == "overlap"
        return
    assert whole is not None and whole.fragment_count == 4
    info = IP.parse_ip(whole.packet)
    seg = whole.packet[info.header_length :]
    assert info.protocol == IP.IPPROTO_TCP and len(seg) == 89
    total = IP.pseudo_header_sum(info.src, info.dst, IP.IPPROTO_TCP, len(seg))
    checksum_ok = IP.internet_checksum(seg, total) == 0
    assert checksum_ok == (policy == "first")
    if policy == "first":
        assert (
            seg[20:] == b"GET /msadc/..%2f../..%2f../..%2f../winnt/system32/cmd.exe?/c+dir+c:\\\n"
        )


def test_zeek_ipv4_inconsistent_fragments_are_discarded(pcaps):
    """fragmented-1: a first fragment, a last fragment ending at 164, then another first fragment
    running to 304 — past the datagram's end: the datagram is inconsistent and discarded."""
    packets = ip_packets(pcaps / "zeek" / "ipv4" / "fragmented-1.pcap")
    r = Reassembler()
    assert [r.add(p[: IP.parse_ip(p).total_length]) for p in packets] == [None] * 3
    assert r.events[-1].kind == "inconsistent" and "past the datagram" not in r.events[-1].detail
    assert "data beyond the end" in r.events[-1].detail or "past the end" in r.events[-1].detail


def test_zeek_ipv6_fragmented_dns(pcaps):
    packets = [
        p
        for p in ip_packets(pcaps / "zeek" / "ipv6-fragmented-dns.pcap")
        if IP.parse_ip(p).has_fragment_header
    ]
    r = Reassembler()
    results = [r.add(p) for p in packets]
    done = [x for x in results if x is not None]
    assert len(done) == 1 and done[0].fragment_count == 3
    info = IP.parse_ip(done[0].packet)
    assert info.protocol == IP.IPPROTO_UDP and not info.has_fragment_header
    assert udp_checksum_ok(done[0].packet)
    assert IP.parse_transport(IP.IPPROTO_UDP, done[0].packet[40:]).src_port == 53
    assert r.pending() == 1  # identification 1: only its last fragment was captured
    events = r.expire(60 * SECOND)
    assert events[0].icmp is None  # no first fragment: no time-exceeded message


def test_every_tagged_capture_goes_through_the_stack(pcaps, no_leaks):
    """Every IP packet of every capture tagged ipv4_fragments / ipv6_fragment_header, received
    by a host that owns every destination: reassembled datagrams reach the transport layer, bad
    bytes are dropped without an exception, nothing leaks."""
    files = tagged(pcaps, "ipv4_fragments") + tagged(pcaps, "ipv6_fragment_header")
    assert len(files) >= 7
    engine = HookEngine()
    for path in files:
        packets = ip_packets(path)
        stack = wfpsim.Stack(filter_engine=engine, send_icmp_errors=False)
        dsts = sorted(
            {IP.parse_ip(p).dst for p in packets if p and p[0] >> 4 in (4, 6) and len(p) >= 40}
        )
        stack.add_interface(
            index=1, addresses=[f"{IP.addr_text(d)}/{32 if len(d) == 4 else 128}" for d in dsts]
        )
        engine.seen.clear()
        for p in packets:
            stack.receive(1, p, link="ip")
        reassembled = [
            s
            for s in engine.seen
            if s.name.startswith("INBOUND_IPPACKET")
            and s.value("FLAGS").uint32 & FWP_CONDITION_FLAG_IS_REASSEMBLED
        ]
        if path.name == "afs.pcap":
            assert len(reassembled) == 51
        if path.name == "ipv6-fragmented-dns.pcap":
            assert len(reassembled) == 1
        assert stack.run(until=120 * SECOND) >= 0
        assert stack.reassembler.groups == {}


# ---- fragments through the stack ----


def test_inbound_fragments_are_indicated_twice_then_reassembled_once(no_leaks):
    """layers.md §11: 4 fragments -> 4 + 4 + 1 INBOUND_IPPACKET classifies; FRAGMENT_DATA
    metadata on the fragments; IS_FRAGMENT on the second indication; IS_REASSEMBLED last;
    the transport layer sees only the whole datagram."""
    engine = HookEngine()
    stack = host(engine=engine)
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=2222
    )
    whole = udp_packet(SRC4, A4, 1111, 2222, bytes(1400))
    pieces = fragment(whole, 420, 31)
    assert len(pieces) == 4
    for p in pieces:
        stack.receive(1, p)
    ipp = [s for s in engine.seen if s.layer_id == FWPS_LAYER_INBOUND_IPPACKET_V4]
    assert len(ipp) == 9
    flags = [s.value("FLAGS").uint32 for s in ipp]
    assert flags == [0, FWP_CONDITION_FLAG_IS_FRAGMENT] * 4 + [FWP_CONDITION_FLAG_IS_REASSEMBLED]
    frag_meta = [
        (s.meta.fragmentMetadata.fragmentIdentification, s.meta.fragmentMetadata.fragmentOffset)
        for s in ipp[:8]
    ]
    assert frag_meta == [
        (31, 0),
        (31, 0),
        (31, 400),
        (31, 400),
        (31, 800),
        (31, 800),
        (31, 1200),
        (31, 1200),
    ]
    assert all(s.meta.currentMetadataValues & FWPS_METADATA_FIELD_FRAGMENT_DATA for s in ipp[:8])
    assert not ipp[8].meta.currentMetadataValues & FWPS_METADATA_FIELD_FRAGMENT_DATA
    assert [s.name for s in engine.seen].count("INBOUND_TRANSPORT_V4") == 1
    assert [len(d.data) for d in ep.received] == [1400]


def test_reassembly_timer_sends_time_exceeded(no_leaks):
    stack = host()
    whole = udp_packet(SRC4, A4, 1111, 2222, bytes(1400))
    pieces = fragment(whole, 420, 32)
    for p in pieces[:-1]:
        stack.receive(1, p)
    assert stack.run() == 0  # time does not move by itself
    assert stack.reassembler.pending() == 1
    stack.run(until=60 * SECOND)
    assert stack.reassembler.pending() == 0
    assert stack.icmp_errors_sent == [(11, 1, "198.51.100.1")]
    icmp = stack.wire[-1].data[14:]
    assert icmp[20] == 11 and icmp[21] == 1  # ICMP type / code


def test_forward_fragment_group_reassembled_and_forward_injected(no_leaks):
    """Forward layer with fragment grouping: each fragment once, then the group as a chain with
    IS_FRAGMENT_GROUP. A callout that injects the group must reassemble it first (seed 001):
    the chain is refused, FwpsReassembleForwardFragmentGroup0's NBL is accepted (S-29, B14)."""
    engine = HookEngine()
    stack = host({"forwarding": True}, engine=engine)
    stack.forward_fragment_grouping = True
    h = stack.injection_handle(AF_INET, 0)
    done = Completions()
    results = {}

    def forward(seen, out):
        if not seen.value("FLAGS").uint32 & FWP_CONDITION_FLAG_IS_FRAGMENT_GROUP:
            return
        chain = seen.layer_data
        assert len(chain.chain()) == 4
        results["chain"] = wdk.FwpsInjectForwardAsync0(h, None, 0, AF_INET, 0, 1, chain, done, None)
        status, whole = wdk.FwpsReassembleForwardFragmentGroup0(AF_INET, chain, None, 0, 0)
        results["reassemble"] = status
        results["inject"] = wdk.FwpsInjectForwardAsync0(
            h, None, 0, AF_INET, 0, 1, whole, done, None
        )
        results["whole"] = whole.FirstNetBuffer.tobytes()

    engine.on(FWPS_LAYER_IPFORWARD_V4, forward)
    whole = with_id(udp_packet(SRC4, DST4, 1111, 2222, bytes(1400)), 33)
    for p in fragment(whole, 420, 33):
        stack.receive(1, p)
    flags = [s.value("FLAGS").uint32 for s in engine.seen if s.layer_id == FWPS_LAYER_IPFORWARD_V4]
    assert flags == [FWP_CONDITION_FLAG_IS_FRAGMENT] * 4 + [FWP_CONDITION_FLAG_IS_FRAGMENT_GROUP]
    assert results["chain"] == S.STATUS_FWP_INVALID_PARAMETER
    assert results["reassemble"] == S.STATUS_SUCCESS and results["inject"] == S.STATUS_SUCCESS
    assert results["whole"] == whole
    stack.run()
    assert done.statuses == [S.STATUS_SUCCESS]
    injected = [d for d in stack.delivered if d.function == "FwpsInjectForwardAsync0"]
    assert [d.data for d in injected] == [whole]  # not re-classified, not re-fragmented
    # the callout permitted the group, so the stack forwarded the 4 fragments too (TTL - 1)
    forwarded = [d for d in stack.delivered if d.function is None]
    assert len(forwarded) == 4 and all(IP.parse_ip(d.data).ttl == 63 for d in forwarded)


def test_reassemble_forward_fragment_group_codes(no_leaks):
    pieces = fragment(big(ident=34), 576, 34)
    chain = [wfpsim.NetBufferList.from_bytes(p) for p in pieces]
    for a, b in zip(chain, chain[1:], strict=False):
        a.Next = b
    assert wdk.FwpsReassembleForwardFragmentGroup0(AF_INET, chain[0], None, 0, 1) == (
        S.STATUS_FWP_INVALID_PARAMETER,
        None,
    )
    assert wdk.FwpsReassembleForwardFragmentGroup0(AF_INET6, chain[0], None, 0, 0) == (
        S.STATUS_INVALID_PARAMETER,
        None,
    )
    chain[-2].Next = None
    assert wdk.FwpsReassembleForwardFragmentGroup0(AF_INET, chain[0], None, 0, 0) == (
        S.STATUS_INVALID_PARAMETER,
        None,
    )
    chain[-2].Next = chain[-1]
    status, whole = wdk.FwpsReassembleForwardFragmentGroup0(AF_INET, chain[0], None, 32, 0)
    assert status == 0 and whole.FirstNetBuffer.tobytes() == big(ident=34)
    assert whole.FirstNetBuffer.DataOffset == 32
    wdk.FwpsFreeNetBufferList0(whole)
    for n in chain:
        n.Next = None
        n.free()


def test_truncated_capture_fragments_are_dropped_not_raised(pcaps, no_leaks):
    stack = wfpsim.Stack(send_icmp_errors=False)
    packets = ip_packets(pcaps / "tcpdump" / "isakmp-various-oobr.pcap")
    dst = IP.parse_ip(packets[0]).dst
    stack.add_interface(index=1, addresses=[f"{IP.addr_text(dst)}/32"])
    results = [stack.receive(1, p, link="ip") for p in packets]
    assert [r.outcome for r in results] == ["dropped", "dropped"]
    assert "length field" in results[0].reason


def test_ipv6_fragments_through_the_stack(no_leaks):
    stack = host()
    ep = stack.open_endpoint(
        address_family=AF_INET6, protocol=17, local_address="2001:db8::1", local_port=2222
    )
    whole = udp_packet(SRC6, A6, 1111, 2222, bytes(range(256)) * 10)
    for p in reversed(fragment(whole, 1280, 35)):
        stack.receive(1, p)
    assert [d.data for d in ep.received] == [bytes(range(256)) * 10]
