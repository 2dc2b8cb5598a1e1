"""What a callout sees at every layer visit (layers.md §3–§6): the NET_BUFFER data offset, the
incoming values (field indexes, FWP_VALUE0 types, byte order) and the metadata with its presence
bits, on the inbound, outbound and forward paths, IPv4 and IPv6."""

from __future__ import annotations

import pytest
from fakes import A4, A6, MAC_A, MAC_B, HookEngine, frame, host, tcp_packet, udp_packet

import wfpsim
from wfpsim.constants import (
    AF_INET,
    AF_INET6,
    FWP_BYTE_ARRAY6_TYPE,
    FWP_BYTE_ARRAY16_TYPE,
    FWP_BYTE_BLOB_TYPE,
    FWP_CONDITION_FLAG_IS_LOOPBACK,
    FWP_DIRECTION_INBOUND,
    FWP_DIRECTION_OUTBOUND,
    FWP_EMPTY,
    FWP_UINT8,
    FWP_UINT16,
    FWP_UINT32,
    FWP_UINT64,
    FWPS_L2_METADATA_FIELD_ETHERNET_MAC_HEADER_SIZE,
    FWPS_STREAM_FLAG_RECEIVE,
)
from wfpsim.constants import fwp as F
from wfpsim.constants.layers import FIELDS_BY_LAYER, FWPS_BUILTIN_LAYERS
from wfpsim.stack import AleCompletionHandle
from wfpsim.stack import ip as IP
from wfpsim.stack.paths import LAYER_METADATA, layer_base

FAR4, FAR6 = IP.addr_bytes("198.51.100.7"), IP.addr_bytes("2001:db8:77::7")
IHS, THS, CID = (
    F.FWPS_METADATA_FIELD_IP_HEADER_SIZE,
    F.FWPS_METADATA_FIELD_TRANSPORT_HEADER_SIZE,
    F.FWPS_METADATA_FIELD_COMPARTMENT_ID,
)
FH, TEH, ACR = (
    F.FWPS_METADATA_FIELD_FLOW_HANDLE,
    F.FWPS_METADATA_FIELD_TRANSPORT_ENDPOINT_HANDLE,
    F.FWPS_METADATA_FIELD_ALE_CLASSIFY_REQUIRED,
)
CH, MTU, FRAG = (
    F.FWPS_METADATA_FIELD_COMPLETION_HANDLE,
    F.FWPS_METADATA_FIELD_PATH_MTU,
    F.FWPS_METADATA_FIELD_FRAGMENT_DATA,
)
PP, PID = F.FWPS_METADATA_FIELD_PROCESS_PATH, F.FWPS_METADATA_FIELD_PROCESS_ID


def by_layer(engine: HookEngine) -> dict[str, object]:
    out = {}
    for s in engine.seen:
        out.setdefault(s.name.replace("_V4", "").replace("_V6", ""), s)
    return out


def addr_value(addr: bytes):
    return int.from_bytes(addr, "big") if len(addr) == 4 else addr


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_inbound_udp_offsets_values_and_metadata(no_leaks, v6):
    engine = HookEngine()
    stack = host(engine=engine)
    af, local, far = (AF_INET6, A6, FAR6) if v6 else (AF_INET, A4, FAR4)
    iph = 40 if v6 else 20
    ep = stack.open_endpoint(
        address_family=af, protocol=17, local_address=IP.addr_text(local), local_port=53
    )
    stack.receive(1, frame(udp_packet(far, local, 5353, 53, b"question")))
    seen = by_layer(engine)
    assert list(seen) == [
        "INBOUND_MAC_FRAME_NATIVE",
        "INBOUND_MAC_FRAME_ETHERNET",
        "INBOUND_IPPACKET",
        "INBOUND_TRANSPORT",
        "ALE_AUTH_RECV_ACCEPT",
        "ALE_FLOW_ESTABLISHED",
        "DATAGRAM_DATA",
    ]
    base = seen["INBOUND_MAC_FRAME_NATIVE"].data_offset
    # layers.md §3: where DataOffset points
    offsets = {k: s.data_offset - base for k, s in seen.items()}
    assert offsets == {
        "INBOUND_MAC_FRAME_NATIVE": 0,
        "INBOUND_MAC_FRAME_ETHERNET": 14,
        "INBOUND_IPPACKET": 14 + iph,
        "INBOUND_TRANSPORT": 14 + iph + 8,
        "ALE_AUTH_RECV_ACCEPT": 14 + iph + 8,
        "ALE_FLOW_ESTABLISHED": 14 + iph + 8,
        "DATAGRAM_DATA": 14 + iph + 8,
    }
    assert seen["INBOUND_MAC_FRAME_NATIVE"].head[:6] == MAC_A
    assert seen["INBOUND_MAC_FRAME_ETHERNET"].head[0] >> 4 == (6 if v6 else 4)
    assert seen["INBOUND_IPPACKET"].head[:2] == (5353).to_bytes(2, "big")  # the UDP header
    assert seen["DATAGRAM_DATA"].head == b"question"
    # ipHeaderSize + transportHeaderSize = the retreat back to the IP header (§4)
    t = seen["INBOUND_TRANSPORT"].meta
    assert (t.ipHeaderSize, t.transportHeaderSize) == (iph, 8)
    # metadata presence (§5.3) — first packet of the flow: ALE classify required, no flow yet
    bits = {k: s.meta.currentMetadataValues for k, s in seen.items()}
    assert bits["INBOUND_IPPACKET"] == IHS | CID
    assert bits["INBOUND_TRANSPORT"] & (IHS | THS | CID | TEH | ACR) == IHS | THS | CID | TEH | ACR
    assert not bits["INBOUND_TRANSPORT"] & FH
    assert (
        bits["ALE_AUTH_RECV_ACCEPT"] & (FH | IHS | THS | CID | CH | TEH | PP | PID)
        == FH | IHS | THS | CID | CH | TEH | PP | PID
    )
    assert not bits["ALE_FLOW_ESTABLISHED"] & (IHS | THS | CID)  # not provided there (§5.3)
    assert bits["DATAGRAM_DATA"] & (FH | IHS | THS | CID | TEH) == FH | IHS | THS | CID | TEH
    for name, b in bits.items():
        if not name.startswith("INBOUND_MAC"):
            assert b & ~LAYER_METADATA[name] == 0, f"{name} carries bits the layer does not provide"
    assert isinstance(seen["ALE_AUTH_RECV_ACCEPT"].meta.completionHandle, AleCompletionHandle)
    assert seen["DATAGRAM_DATA"].meta.transportEndpointHandle == ep.handle
    assert (
        seen["DATAGRAM_DATA"].meta.flowHandle == seen["ALE_AUTH_RECV_ACCEPT"].meta.flowHandle != 0
    )
    assert (
        seen["INBOUND_MAC_FRAME_ETHERNET"].meta.currentL2MetadataValues
        == FWPS_L2_METADATA_FIELD_ETHERNET_MAC_HEADER_SIZE
    )
    assert seen["INBOUND_MAC_FRAME_ETHERNET"].meta.ethernetMacHeaderSize == 14
    # incoming values (§6): types, byte orders
    tr = seen["INBOUND_TRANSPORT"]
    assert (
        tr.values.valueCount
        == len(tr.values.incomingValue)
        == int(FIELDS_BY_LAYER[FWPS_BUILTIN_LAYERS(tr.layer_id)][f"FWPS_FIELD_{tr.name}_MAX"])
    )
    addr_type = FWP_BYTE_ARRAY16_TYPE if v6 else FWP_UINT32
    assert (tr.value_type("IP_LOCAL_ADDRESS"), tr.value("IP_LOCAL_ADDRESS").value) == (
        addr_type,
        addr_value(local),
    )
    assert tr.value("IP_REMOTE_ADDRESS").value == addr_value(far)
    assert (tr.value_type("IP_LOCAL_PORT"), tr.value("IP_LOCAL_PORT").uint16) == (FWP_UINT16, 53)
    assert tr.value("IP_REMOTE_PORT").uint16 == 5353
    assert (tr.value_type("IP_PROTOCOL"), tr.value("IP_PROTOCOL").uint8) == (FWP_UINT8, 17)
    assert (tr.value_type("INTERFACE_INDEX"), tr.value("INTERFACE_INDEX").uint32) == (FWP_UINT32, 1)
    assert tr.value_type("IP_LOCAL_INTERFACE") == FWP_UINT64
    assert tr.value("IP_LOCAL_INTERFACE").uint64 == stack.interfaces[1].luid
    assert tr.value("COMPARTMENT_ID").uint32 == 1
    assert tr.value_type("IPSEC_SECURITY_REALM_ID") == FWP_EMPTY
    dd = seen["DATAGRAM_DATA"]
    assert (dd.value_type("DIRECTION"), dd.value("DIRECTION").uint32) == (
        FWP_UINT32,
        FWP_DIRECTION_INBOUND,
    )
    ale = seen["ALE_AUTH_RECV_ACCEPT"]
    assert ale.value_type("ALE_APP_ID") == FWP_BYTE_BLOB_TYPE
    assert ale.value("ALE_APP_ID").byteBlob.data.decode("utf-16-le").rstrip("\0") == ep.app_path
    mac = seen["INBOUND_MAC_FRAME_ETHERNET"]
    assert (mac.value_type("MAC_REMOTE_ADDRESS"), mac.value("MAC_REMOTE_ADDRESS").byteArray6) == (
        FWP_BYTE_ARRAY6_TYPE,
        MAC_B,
    )
    assert mac.value("ETHER_TYPE").uint16 == (0x86DD if v6 else 0x0800)
    assert mac.value_type("NDIS_PORT") == FWP_UINT32


def test_second_packet_of_a_flow_skips_ale(no_leaks):
    engine = HookEngine()
    stack = host(engine=engine)
    stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=53
    )
    stack.receive(1, udp_packet(FAR4, A4, 5353, 53, b"one"))
    engine.seen.clear()
    stack.receive(1, udp_packet(FAR4, A4, 5353, 53, b"two"))
    assert engine.layers() == ["INBOUND_IPPACKET_V4", "INBOUND_TRANSPORT_V4", "DATAGRAM_DATA_V4"]
    tr = engine.seen[1]
    assert tr.meta.currentMetadataValues & FH and not tr.meta.currentMetadataValues & ACR


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_outbound_udp_offsets_values_and_metadata(no_leaks, v6):
    engine = HookEngine()
    stack = host(engine=engine)
    af, local, far = (AF_INET6, A6, FAR6) if v6 else (AF_INET, A4, FAR4)
    iph = 40 if v6 else 20
    ep = stack.open_endpoint(
        address_family=af, protocol=17, local_address=IP.addr_text(local), local_port=5000
    )
    stack.send(ep, b"answer", (IP.addr_text(far), 53))
    seen = by_layer(engine)
    assert list(seen) == [
        "ALE_AUTH_CONNECT",
        "ALE_FLOW_ESTABLISHED",
        "DATAGRAM_DATA",
        "OUTBOUND_TRANSPORT",
        "OUTBOUND_IPPACKET",
        "OUTBOUND_MAC_FRAME_ETHERNET",
        "OUTBOUND_MAC_FRAME_NATIVE",
    ]
    base = seen["OUTBOUND_TRANSPORT"].data_offset
    offsets = {k: s.data_offset - base for k, s in seen.items()}
    assert offsets == {
        "ALE_AUTH_CONNECT": 0,
        "ALE_FLOW_ESTABLISHED": 0,
        "DATAGRAM_DATA": 0,
        "OUTBOUND_TRANSPORT": 0,
        "OUTBOUND_IPPACKET": -iph,
        "OUTBOUND_MAC_FRAME_ETHERNET": -iph - 14,
        "OUTBOUND_MAC_FRAME_NATIVE": -iph - 14,
    }
    assert seen["DATAGRAM_DATA"].head[:2] == (5000).to_bytes(2, "big")  # transport header
    assert seen["OUTBOUND_IPPACKET"].head[0] >> 4 == (6 if v6 else 4)
    assert seen["OUTBOUND_MAC_FRAME_ETHERNET"].head[6:12] == MAC_A
    ip_meta = seen["OUTBOUND_IPPACKET"].meta
    assert ip_meta.currentMetadataValues & (IHS | THS | CID | MTU) == IHS | THS | CID | MTU
    assert (ip_meta.ipHeaderSize, ip_meta.transportHeaderSize, ip_meta.pathMtu) == (iph, 8, 1500)
    # not a raw socket: no ipHeaderSize at DATAGRAM_DATA, none at OUTBOUND_TRANSPORT (§5.3)
    assert not seen["DATAGRAM_DATA"].meta.currentMetadataValues & IHS
    assert not seen["OUTBOUND_TRANSPORT"].meta.currentMetadataValues & IHS
    ot = seen["OUTBOUND_TRANSPORT"]
    assert ot.meta.currentMetadataValues & (FH | THS | CID | TEH) == FH | THS | CID | TEH
    assert ot.meta.transportEndpointHandle == ep.handle
    assert ot.value("IP_LOCAL_ADDRESS").value == addr_value(local)
    assert ot.value("IP_REMOTE_ADDRESS").value == addr_value(far)
    assert ot.value("IP_REMOTE_PORT").uint16 == 53
    assert seen["DATAGRAM_DATA"].value("DIRECTION").uint32 == FWP_DIRECTION_OUTBOUND
    assert seen["ALE_AUTH_CONNECT"].meta.currentMetadataValues & CH


def test_forward_path_offsets_and_values(no_leaks):
    engine = HookEngine()
    stack = host({"forwarding": True}, engine=engine)
    stack.add_interface(index=2, addresses=["198.51.100.1/24"], mac=MAC_B)
    pkt = udp_packet(IP.addr_bytes("192.0.2.77"), FAR4, 1, 2, b"transit")
    stack.receive(1, frame(pkt))
    seen = by_layer(engine)
    assert list(seen) == [
        "INBOUND_MAC_FRAME_NATIVE",
        "INBOUND_MAC_FRAME_ETHERNET",
        "IPFORWARD",
        "OUTBOUND_MAC_FRAME_ETHERNET",
        "OUTBOUND_MAC_FRAME_NATIVE",
    ]
    fw = seen["IPFORWARD"]
    assert fw.head[:20] == pkt[:20]  # data starts at the IP header (§3)
    assert fw.value("IP_SOURCE_ADDRESS").uint32 == 0xC000024D
    assert fw.value("IP_DESTINATION_ADDRESS").uint32 == int.from_bytes(FAR4, "big")
    assert fw.value("SOURCE_INTERFACE_INDEX").uint32 == 1
    assert fw.value("DESTINATION_INTERFACE_INDEX").uint32 == 2
    assert fw.meta.currentMetadataValues == CID
    out = stack.wire[-1]
    assert out.interface_index == 2 and IP.parse_ip(out.data[14:]).ttl == 63
    assert stack.delivered[-1].function is None and stack.delivered[-1].destination == "wire"


def test_no_forwarding_drops_transit_traffic(no_leaks):
    stack = host()
    result = stack.receive(1, udp_packet(IP.addr_bytes("192.0.2.77"), FAR4, 1, 2, b"x"))
    assert result.outcome == "dropped" and "forwarding is off" in result.reason
    assert stack.wire == []


def test_icmp_error_layers(no_leaks):
    """A UDP datagram to a closed port: the stack answers port unreachable through
    OUTBOUND_ICMP_ERROR (data at the ICMP header) → OUTBOUND_TRANSPORT → OUTBOUND_IPPACKET. An
    ICMP error about a local endpoint's packet is indicated at INBOUND_ICMP_ERROR with the data
    at the inner IP header and ipHeaderSize spanning back to the outer IP header (§4)."""
    engine = HookEngine()
    stack = host(engine=engine)
    stack.receive(1, udp_packet(FAR4, A4, 1, 999, b"nobody home"))
    seen = by_layer(engine)
    oe = seen["OUTBOUND_ICMP_ERROR"]
    assert oe.head[:2] == b"\x03\x03"
    assert oe.value("ICMP_TYPE").uint16 == 3 and oe.value("ICMP_CODE").uint16 == 3
    assert oe.value_type("ICMP_TYPE") == FWP_UINT16
    assert engine.layers() == [
        "INBOUND_IPPACKET_V4",
        "OUTBOUND_ICMP_ERROR_V4",
        "OUTBOUND_TRANSPORT_V4",
        "OUTBOUND_IPPACKET_V4",
        "OUTBOUND_MAC_FRAME_ETHERNET",
        "OUTBOUND_MAC_FRAME_NATIVE",
    ]
    assert seen["OUTBOUND_TRANSPORT"].head[:2] == b"\x03\x03"  # still at the ICMP header
    assert stack.icmp_errors_sent == [(3, 3, "198.51.100.7")]
    # now an ICMP error arrives about a datagram our endpoint sent
    engine.seen.clear()
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=4000
    )
    original = udp_packet(A4, FAR4, 4000, 53, b"lost")
    icmp = IP.icmp_message(FAR4, A4, 3, 3, 0, original[:28])
    stack.receive(1, IP.ip_header(FAR4, A4, 1, len(icmp)) + icmp)
    ie = by_layer(engine)["INBOUND_ICMP_ERROR"]
    assert ie.head[:20] == original[:20]  # the inner (embedded) IP header
    assert (ie.meta.ipHeaderSize, ie.meta.transportHeaderSize) == (28, 8)
    assert ie.value("EMBEDDED_PROTOCOL").uint8 == 17
    assert (
        ie.value("EMBEDDED_LOCAL_PORT").uint16 == 4000
        and ie.value("EMBEDDED_REMOTE_PORT").uint16 == 53
    )
    assert ie.value("ICMP_TYPE").uint16 == 3 and ie.meta.transportEndpointHandle == ep.handle
    assert len(ep.received) == 1


def test_icmpv6_error_type_code_in_port_slots(no_leaks):
    engine = HookEngine()
    stack = host(engine=engine)
    stack.receive(1, udp_packet(FAR6, A6, 1, 999, b"closed"))
    oe = by_layer(engine)["OUTBOUND_ICMP_ERROR"]
    # OUTBOUND_ICMP_ERROR_V6 has no ICMP_TYPE field: type/code ride in the port slots (§6.1)
    assert oe.value("IP_LOCAL_PORT").uint16 == 1 and oe.value("IP_REMOTE_PORT").uint16 == 4


def test_loopback_send_is_received_with_is_loopback(no_leaks):
    engine = HookEngine()
    stack = host(engine=engine)
    rx = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=9
    )
    tx = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=10
    )
    stack.send(tx, b"to myself", ("192.0.2.1", 9))
    assert [d.data for d in rx.received] == [b"to myself"] and stack.wire == []
    inbound = [s for s in engine.seen if s.name == "INBOUND_TRANSPORT_V4"][0]
    assert inbound.value("FLAGS").uint32 & FWP_CONDITION_FLAG_IS_LOOPBACK
    assert "OUTBOUND_MAC_FRAME_ETHERNET" not in engine.layers()


def test_tcp_layers_stream_and_stream_packet(no_leaks):
    engine = HookEngine()
    stack = host(engine=engine)
    flow = stack.open_tcp_flow(
        address_family=AF_INET,
        local=("192.0.2.1", 80),
        remote=("198.51.100.7", 5000),
        direction=FWP_DIRECTION_INBOUND,
    )
    assert engine.layers() == ["ALE_AUTH_CONNECT_V4", "ALE_FLOW_ESTABLISHED_V4"]
    assert engine.seen[0].layer_data is None  # TCP connect: no packet
    engine.seen.clear()
    stack.receive(1, tcp_packet(FAR4, A4, 5000, 80, 100, IP.TCP_ACK | IP.TCP_PSH, b"GET /"))
    assert engine.layers() == [
        "INBOUND_IPPACKET_V4",
        "INBOUND_TRANSPORT_V4",
        "STREAM_PACKET_V4",
        "STREAM_V4",
    ]
    tr, sp, st = engine.seen[1], engine.seen[2], engine.seen[3]
    assert tr.head == b"GET /" and sp.head == b"GET /"  # inbound: data starts at the payload
    assert tr.meta.transportHeaderSize == 20 and tr.meta.flowHandle == flow.flow_id
    assert st.layer_data.data == b"GET /" and st.layer_data.flags & FWPS_STREAM_FLAG_RECEIVE
    assert st.value("DIRECTION").uint32 == FWP_DIRECTION_INBOUND  # of the connection
    assert st.meta.currentMetadataValues & FH and st.meta.flowHandle == flow.flow_id
    assert bytes(flow.received) == b"GET /"
    engine.seen.clear()
    flow.send(b"HTTP/1.0 200 OK")
    assert engine.layers() == [
        "STREAM_V4",
        "OUTBOUND_TRANSPORT_V4",
        "STREAM_PACKET_V4",
        "OUTBOUND_IPPACKET_V4",
        "OUTBOUND_MAC_FRAME_ETHERNET",
        "OUTBOUND_MAC_FRAME_NATIVE",
    ]
    out = stack.wire[-1].data[14:]
    tcp = IP.parse_transport(6, out[20:])
    assert (tcp.src_port, tcp.dst_port, tcp.ack) == (80, 5000, 105) and out.endswith(
        b"HTTP/1.0 200 OK"
    )


def test_tcp_handshake_through_recv_accept(no_leaks):
    engine = HookEngine()
    stack = host(engine=engine)
    stack.open_endpoint(
        address_family=AF_INET, protocol=6, local_address="192.0.2.1", local_port=443, listen=True
    )
    stack.receive(1, tcp_packet(FAR4, A4, 6000, 443, 7, IP.TCP_SYN))
    assert engine.layers()[:3] == [
        "INBOUND_IPPACKET_V4",
        "INBOUND_TRANSPORT_V4",
        "ALE_AUTH_RECV_ACCEPT_V4",
    ]
    assert engine.seen[1].meta.currentMetadataValues & ACR
    synack = IP.parse_transport(6, stack.wire[-1].data[34:])
    assert (
        synack.tcp_flags & (IP.TCP_SYN | IP.TCP_ACK) == IP.TCP_SYN | IP.TCP_ACK and synack.ack == 8
    )
    engine.seen.clear()
    stack.receive(1, tcp_packet(FAR4, A4, 6000, 443, 8, IP.TCP_ACK, ack=synack.seq + 1))
    assert "ALE_FLOW_ESTABLISHED_V4" in engine.layers()
    flow = next(iter(f for f in stack.flows.values() if f.local[1] == 443))
    assert flow.state == "established"


def test_every_layer_visited_has_its_field_table():
    """Every layer id the paths classify at has a FWPS_FIELDS_* enum (values are never missing)."""
    for base in (
        "INBOUND_IPPACKET",
        "OUTBOUND_IPPACKET",
        "IPFORWARD",
        "INBOUND_TRANSPORT",
        "OUTBOUND_TRANSPORT",
        "STREAM",
        "DATAGRAM_DATA",
        "INBOUND_ICMP_ERROR",
        "OUTBOUND_ICMP_ERROR",
        "ALE_AUTH_RECV_ACCEPT",
        "ALE_AUTH_CONNECT",
        "ALE_FLOW_ESTABLISHED",
        "STREAM_PACKET",
    ):
        for v in ("V4", "V6"):
            layer = FWPS_BUILTIN_LAYERS[f"FWPS_LAYER_{base}_{v}"]
            assert layer in FIELDS_BY_LAYER and layer_base(layer) == base


def test_receive_link_detection(no_leaks):
    stack = host()
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=53
    )
    p = udp_packet(FAR4, A4, 1, 53, b"raw ip")
    assert stack.receive(1, p).outcome == "delivered"
    assert stack.receive(1, frame(p)).outcome == "delivered"
    assert stack.receive(1, frame(p), link="ip").outcome == "dropped"
    with pytest.raises(wfpsim.InvalidParameterError):
        stack.receive(9, p)
    assert [d.data for d in ep.received] == [b"raw ip", b"raw ip"]
