"""Raw sends (seed 002): the one-NET_BUFFER rule, nbl.split() into single-NB NBLs sharing
memory, the header-include retreat of the seed's remarks end to end, FWPS_TRANSPORT_SEND_PARAMS1
header-include, and FwpsConstructIpHeaderForTransportPacket0."""

from __future__ import annotations

import pytest
from fakes import A4, A6, Completions, HookEngine, absorb, host, udp_packet
from pcap_util import ip_packets

import wfpsim
from wfpsim import wdk
from wfpsim.constants import (
    AF_INET,
    AF_INET6,
    FWPS_LAYER_DATAGRAM_DATA_V4,
    FWPS_LAYER_OUTBOUND_TRANSPORT_V4,
    FWPS_METADATA_FIELD_IP_HEADER_SIZE,
    FWPS_METADATA_FIELD_TRANSPORT_HEADER_INCLUDE_HEADER,
    FWPS_PACKET_INJECTED_BY_SELF,
)
from wfpsim.stack import ip as IP
from wfpsim.status import NTSTATUS

S = NTSTATUS
FAR = IP.addr_bytes("203.0.113.9")


def test_split_gives_single_nb_nbls_sharing_memory(no_leaks, pcaps):
    packets = ip_packets(pcaps / "tcpdump" / "afs.pcap")[:16]
    multi = wfpsim.NetBufferList.from_buffers(packets)
    assert len(multi.net_buffers) == 16
    chain = multi.split()  # the Rust batch form: one call for the whole NBL
    assert len(chain) == 16 and multi.ChildRefCount == 16
    nbls = chain.tolist()
    assert all(len(n.net_buffers) == 1 for n in nbls)
    assert [bytes(n.FirstNetBuffer.tobytes()) for n in nbls] == packets
    assert all(n.ParentNetBufferList is multi for n in nbls)
    assert [n.Next for n in nbls[:-1]] == nbls[1:]
    # shared memory: a write through a split NBL is seen through the original
    nbls[3].FirstNetBuffer.data[0] = 0x46
    assert multi.net_buffers[3].tobytes()[0] == 0x46
    assert chain.free() == 16 and multi.ChildRefCount == 0
    multi.free()


def test_split_nbls_raw_sent_one_by_one(no_leaks):
    """A multi-NB NBL is refused for a raw send; split, every single-NB NBL is accepted, each
    completes once, the packets leave in order, then the original is freed."""
    stack = host()
    h = stack.injection_handle(AF_INET, 0)
    packets = [udp_packet(A4, FAR, 10 + i, 53, bytes([i]) * (i + 1)) for i in range(5)]
    multi = wfpsim.NetBufferList.from_buffers(packets)
    done = Completions()
    assert (
        wdk.FwpsInjectTransportSendAsync0(h, None, 0, 0, None, AF_INET, 0, multi, done, None)
        == S.STATUS_FWP_INVALID_PARAMETER
    )
    chain = multi.split()
    pieces = chain.tolist()
    for n in pieces:
        n.Next = None
    for n in pieces:
        assert (
            wdk.FwpsInjectTransportSendAsync0(h, None, 0, 0, None, AF_INET, 0, n, done, None) == 0
        )
    assert stack.run() == 5
    assert done.statuses == [0] * 5
    assert [f.data[14:] for f in stack.wire] == packets
    assert multi.ChildRefCount == 0
    multi.free()


def test_header_include_retreat_end_to_end(no_leaks):
    """Seed 002 (Vista SP1 recipe): at DATAGRAM_DATA a header-include raw send shows
    headerIncludeHeaderLength > 0; the callout retreats its clone by that length, copies
    headerIncludeHeader into the new space and injects with FwpsInjectTransportSendAsync0 and
    NULL sendArgs. The packet that leaves is the application's packet, byte for byte."""
    engine = HookEngine()
    stack = host(engine=engine)
    raw = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", header_include=True
    )
    h = stack.injection_handle(AF_INET, 0)
    done = Completions()
    seen_meta = []

    def datagram(seen, out):
        nbl, meta = seen.layer_data, seen.meta
        if wdk.FwpsQueryPacketInjectionState0(h, nbl)[0] == FWPS_PACKET_INJECTED_BY_SELF:
            return
        seen_meta.append(
            (meta.currentMetadataValues, meta.ipHeaderSize, meta.headerIncludeHeaderLength)
        )
        status, clone = wdk.FwpsAllocateCloneNetBufferList0(nbl, None, None, 0)
        assert status == 0
        nb = wdk.NET_BUFFER_LIST_FIRST_NB(clone)
        assert wdk.NdisRetreatNetBufferDataStart(nb, meta.headerIncludeHeaderLength, 0, None) == 0
        view = wdk.NdisGetDataBuffer(nb, meta.headerIncludeHeaderLength, None, 1, 0)
        view[:] = meta.headerIncludeHeader
        status = wdk.FwpsInjectTransportSendAsync0(
            h,
            None,
            meta.transportEndpointHandle,
            0,
            None,
            AF_INET,
            meta.compartmentId,
            clone,
            done,
            None,
        )
        assert status == 0
        absorb(out)

    engine.on(FWPS_LAYER_DATAGRAM_DATA_V4, datagram)
    app_packet = udp_packet(A4, FAR, 4444, 53, b"raw app data", ttl=7)
    result = stack.send(raw, app_packet, ("203.0.113.9", 53))
    assert result.outcome == "absorbed"
    bits, ihs, hih_len = seen_meta[0]
    assert bits & FWPS_METADATA_FIELD_IP_HEADER_SIZE and ihs == 20  # raw: ipHeaderSize > 0
    assert bits & FWPS_METADATA_FIELD_TRANSPORT_HEADER_INCLUDE_HEADER and hih_len == 20
    stack.run()
    assert done.statuses == [0]
    assert [f.data[14:] for f in stack.wire] == [app_packet]
    # the re-injected clone was classified again, as INJECTED_BY_SELF, and passed
    datagram_visits = [s for s in engine.seen if s.layer_id == FWPS_LAYER_DATAGRAM_DATA_V4]
    assert len(datagram_visits) == 2


def test_send_params1_header_include(no_leaks):
    """Windows 7+: the header goes in FWPS_TRANSPORT_SEND_PARAMS1; the NBL starts at the
    transport header. The stack fills the total length and the header checksum."""
    stack = host()
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", header_include=True
    )
    h = stack.injection_handle(AF_INET, 0)
    seg = IP.udp_datagram(A4, FAR, 7, 8, b"v1 header include")
    header = bytearray(IP.ipv4_header(A4, FAR, 17, 0, ttl=9, identification=0x1234))
    header[10:12] = b"\x00\x00"  # the application leaves length and checksum to the stack
    args = wdk.FWPS_TRANSPORT_SEND_PARAMS1(
        remoteAddress=FAR, headerIncludeHeader=bytes(header), headerIncludeHeaderLength=20
    )
    nbl = wfpsim.NetBufferList.from_bytes(seg, 64)
    done = Completions()
    assert (
        wdk.FwpsInjectTransportSendAsync1(h, None, ep.handle, 0, args, AF_INET, 0, nbl, done, None)
        == 0
    )
    stack.run()
    out = stack.wire[0].data[14:]
    info = IP.parse_ip(out)
    assert (info.ttl, info.identification, info.total_length) == (9, 0x1234, 20 + len(seg))
    assert IP.internet_checksum(out[:20]) == 0 and out[20:] == seg
    assert done.statuses == [0]


@pytest.mark.parametrize("v6", [False, True])
def test_transport_send_builds_the_ip_header(no_leaks, v6):
    """With sendArgs the NBL starts at the transport header; the stack builds the IP header from
    the endpoint's address and sendArgs.remoteAddress (network order), read at send time (R8)."""
    stack = host()
    af, src = (AF_INET6, A6) if v6 else (AF_INET, A4)
    dst = IP.addr_bytes("2001:db8:ffff::5") if v6 else FAR
    ep = stack.open_endpoint(
        address_family=af, protocol=17, local_address=IP.addr_text(src), local_port=5000
    )
    h = stack.injection_handle(af, 0)
    seg = IP.udp_datagram(src, dst, 5000, 53, b"query")
    remote = bytearray(b"\x00" * len(dst))
    args = wdk.FWPS_TRANSPORT_SEND_PARAMS1(remoteAddress=remote)
    nbl = wfpsim.NetBufferList.from_bytes(seg)  # no headroom: the stack's retreat allocates
    done = Completions(free=None)
    stack.inject_transport_send(
        h, nbl, endpoint_handle=ep.handle, address_family=af, send_args=args, completion=done
    )
    remote[:] = dst  # the driver's buffer is read when the send runs, not at the call
    stack.run()
    record = stack.delivered[-1]
    assert record.function == "FwpsInjectTransportSendAsync1"
    info = IP.parse_ip(record.data)
    assert (info.src, info.dst, info.protocol) == (src, dst, 17)
    assert record.data[info.header_length :] == seg
    assert done.statuses == [0]
    back = done.calls[0][1]
    assert back is nbl and back.FirstNetBuffer.DataOffset == 0  # it came back as injected
    assert len(back.FirstNetBuffer.mdls()) == 1 and back.FirstNetBuffer.tobytes() == seg
    nbl.free()


def test_construct_ip_header_for_transport_packet(no_leaks):
    seg = bytearray(IP.udp_datagram(A4, FAR, 1, 2, b"rebuild me"))
    seg[6:8] = b"\x12\x34"  # a stale checksum
    nbl = wfpsim.NetBufferList.from_bytes(bytes(seg), 64)
    status = wdk.FwpsConstructIpHeaderForTransportPacket0(
        nbl, 0, AF_INET, FAR, A4, 17, 0, None, 0, 0, None, 0, 0
    )
    assert status == 0
    out = nbl.FirstNetBuffer.tobytes()
    info = IP.parse_ip(out)
    assert (info.src, info.dst, info.total_length) == (FAR, A4, len(out))
    assert IP.internet_checksum(out[:20]) == 0
    assert IP.internet_checksum(out[20:], IP.pseudo_header_sum(FAR, A4, 17, len(out) - 20)) == 0
    # rebuild an existing header (e.g. with AH/ESP): one NET_BUFFER, the old header replaced
    status = wdk.FwpsConstructIpHeaderForTransportPacket0(
        nbl, 20, AF_INET, A4, FAR, 17, 0, None, 0, 0, None, 0, 0
    )
    assert status == 0 and IP.parse_ip(nbl.FirstNetBuffer.tobytes()).src == A4
    assert (
        wdk.FwpsConstructIpHeaderForTransportPacket0(
            nbl, 0, AF_INET, A4, FAR, 17, 0, None, 0, 1, None, 0, 0
        )
        == S.STATUS_FWP_INVALID_PARAMETER
    )
    assert (
        wdk.FwpsConstructIpHeaderForTransportPacket0(
            nbl, 0, AF_INET, A6, FAR, 17, 0, None, 0, 0, None, 0, 0
        )
        == S.STATUS_INVALID_PARAMETER
    )
    nbl.retreat(0)
    nbl.free()


def test_outbound_transport_clone_reinject_s01(no_leaks):
    """S-01 shape for UDP (TCP must go out of band): OUTBOUND_TRANSPORT classify #1 blocks and
    absorbs; the clone is send-injected with endpointHandle / compartment / remoteAddress in
    network order; classify #2 sees INJECTED_BY_SELF and permits; one packet on the wire; one
    completion with STATUS_SUCCESS; no clone left."""
    engine = HookEngine()
    stack = host(engine=engine)
    h = stack.injection_handle(AF_INET, 0)
    done = Completions()
    states = []

    def transport(seen, out):
        nbl = seen.layer_data
        state = wdk.FwpsQueryPacketInjectionState0(h, nbl)[0]
        states.append(state)
        if state == FWPS_PACKET_INJECTED_BY_SELF:
            return
        remote = seen.value("IP_REMOTE_ADDRESS").uint32.to_bytes(4, "big")  # host -> network order
        args = wdk.FWPS_TRANSPORT_SEND_PARAMS1(
            remoteAddress=remote, remoteScopeId=seen.meta.remoteScopeId
        )
        status, clone = wdk.FwpsAllocateCloneNetBufferList0(nbl, None, None, 0)
        stack.queue_dpc(
            lambda: wdk.FwpsInjectTransportSendAsync1(
                h,
                None,
                seen.meta.transportEndpointHandle,
                0,
                args,
                AF_INET,
                seen.meta.compartmentId,
                clone,
                done,
                None,
            )
        )
        absorb(out)

    engine.on(FWPS_LAYER_OUTBOUND_TRANSPORT_V4, transport)
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=1234
    )
    stack.send(ep, b"inspect me", ("203.0.113.9", 53))
    assert stack.wire == []
    assert stack.run() == 2  # the DPC, then the injection (+ completion)
    assert states == [0, FWPS_PACKET_INJECTED_BY_SELF]
    assert len(stack.wire) == 1 and stack.wire[0].data.endswith(b"inspect me")
    assert IP.parse_ip(stack.wire[0].data[14:]).dst == FAR
    assert done.statuses == [0]
