"""Helpers for the driver scenarios (tests/test_scenarios_*.py): a host running the real filter
engine, peer addresses, packet builders and small readers of what reached the wire."""

from __future__ import annotations

from typing import Any

from fakes import tcp_packet, udp_packet

import wfpsim
from wfpsim.constants import AF_INET, AF_INET6, FWPS_BUILTIN_LAYERS
from wfpsim.stack import ip as IP

MAC_LOCAL = bytes.fromhex("02000000000a")
MAC_PEER = bytes.fromhex("02000000000b")

#: (family, local address, inspected peer, another peer) per IP version
FAMILIES = {
    "v4": (AF_INET, "192.0.2.1", "192.0.2.99", "192.0.2.77"),
    "v6": (AF_INET6, "2001:db8::1", "2001:db8::99", "2001:db8::77"),
}


def host(*, mtu: int = 1500, ethernet: bool = True, **kwargs: Any) -> wfpsim.Stack:
    """A stack with the real filter engine (``wfpsim.Stack()``'s default) and interface 1:
    192.0.2.1/24 and 2001:db8::1/64; the peers' MAC addresses are known (no ARP)."""
    stack = wfpsim.Stack(**kwargs)
    stack.add_interface(
        index=1,
        addresses=["192.0.2.1/24", "2001:db8::1/64"],
        mtu=mtu,
        mac=MAC_LOCAL if ethernet else None,
    )
    if ethernet:
        for family in FAMILIES.values():
            for peer in family[2:]:
                stack.add_neighbor(peer, MAC_PEER)
    return stack


def b(address: str) -> bytes:
    return IP.addr_bytes(address)


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    return udp_packet(b(src), b(dst), sport, dport, payload)


def tcp(src: str, dst: str, sport: int, dport: int, seq: int, flags: int, payload=b"", ack=0):
    return tcp_packet(b(src), b(dst), sport, dport, seq, flags, payload, ack)


def ip_packets(stack: wfpsim.Stack) -> list[bytes]:
    """The IP packets put on the wire so far (Ethernet headers removed)."""
    return [f.data[14:] if f.ethernet else f.data for f in stack.wire]


def transport_of(packet: bytes) -> tuple[IP.IpInfo, IP.TransportInfo, bytes]:
    """(ip, transport header info, payload) of an IP packet."""
    info = IP.parse_ip(packet)
    segment = packet[info.header_length : info.total_length]
    tp = IP.parse_transport(info.protocol, segment)
    return info, tp, segment[tp.header_length :]


def checksum_ok(packet: bytes) -> bool:
    info = IP.parse_ip(packet)
    segment = packet[info.header_length : info.total_length]
    if info.version == 4 and IP.internet_checksum(packet[: info.header_length]) != 0:
        return False
    return IP.transport_checksum(info.src, info.dst, info.protocol, segment) in (0, 0xFFFF)


def names(layers) -> list[str]:
    return [FWPS_BUILTIN_LAYERS(x).name.removeprefix("FWPS_LAYER_") for x in layers]


def assert_quiet(stack: wfpsim.Stack) -> None:
    """Nothing left in flight or parked (references, clones) and no engine state."""
    leaks = stack.leaks()
    assert not leaks["parked_nbls"], leaks
    assert not leaks["in_flight"], leaks
    out = stack.filter_engine.outstanding()
    assert not out["flow_contexts"] and not out["pended_operations"], out
    assert not out["stream_held_bytes"] and not out["stream_nbls"], out
