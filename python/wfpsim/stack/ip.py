"""Minimal IPv4 / IPv6 / UDP / TCP / ICMP / Ethernet header build and parse, in pure Python.

Only what the simulated stack needs to route, classify and deliver packets. Bad bytes are data,
not bugs: every parser raises :class:`wfpsim.MalformedPacketError` naming what is wrong.

Checksums go through :func:`internet_checksum`, one function so that the Rust implementation
(``wfpsim.internet_checksum``, being bound in parallel) replaces the pure-Python RFC 1071 fallback
as soon as it exists on main.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

from wfpsim import _core
from wfpsim.constants import AF_INET, AF_INET6
from wfpsim.errors import MalformedPacketError

IPPROTO_HOPOPTS = 0
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_ESP = 50
IPPROTO_AH = 51
IPPROTO_ICMPV6 = 58
IPPROTO_NONE = 59
IPPROTO_DSTOPTS = 60

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = 0x8100

#: IPv6 extension headers walked before the upper-layer header (checksums.md §4).
IPV6_EXTENSION_HEADERS = frozenset({IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS, IPPROTO_AH})

#: ICMP error message types (RFC 792 / RFC 4443): the stack indicates these at the ICMP-error
#: layers instead of the transport layers.
ICMPV4_ERROR_TYPES = frozenset({3, 4, 5, 11, 12})
ICMPV6_ERROR_TYPES = frozenset({1, 2, 3, 4})

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10
TCP_URG = 0x20


# ---- checksums --------------------------------------------------------------------------------


def internet_checksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The Internet checksum of ``data`` with ``initial`` (a partial sum, folded here to 16
    bits) added in: the Rust kernel, `wfpsim.internet_checksum`."""
    while initial >> 16:
        initial = (initial & 0xFFFF) + (initial >> 16)
    return _core.internet_checksum(data, initial)


def pseudo_header_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """The IPv4 (4-byte addresses) or IPv6 (16-byte) pseudo-header sum, folded."""
    return _core.pseudo_header_sum(src, dst, proto, length)


def transport_checksum(src: bytes, dst: bytes, proto: int, segment: bytes) -> int:
    """TCP / UDP / ICMPv6 checksum of ``segment`` (whose checksum field must be zero)."""
    value = internet_checksum(segment, pseudo_header_sum(src, dst, proto, len(segment)))
    if proto == IPPROTO_UDP and value == 0:
        return 0xFFFF  # RFC 768: a computed 0 is sent as all ones
    return value


# ---- addresses --------------------------------------------------------------------------------


def addr_bytes(address: str | bytes | bytearray | int | ipaddress._BaseAddress) -> bytes:
    """4 or 16 network-order bytes for an address given as text, bytes or an ipaddress object.
    An ``int`` is taken as a host-order IPv4 address (the FWP_UINT32 form)."""
    if isinstance(address, bytes | bytearray | memoryview):
        raw = bytes(address)
        if len(raw) not in (4, 16):
            raise MalformedPacketError(f"an address has 4 or 16 bytes, not {len(raw)}")
        return raw
    if isinstance(address, int):
        return address.to_bytes(4, "big")
    return ipaddress.ip_address(address).packed


def family_of(address: bytes) -> int:
    return AF_INET if len(address) == 4 else AF_INET6


def addr_text(address: bytes) -> str:
    return str(ipaddress.ip_address(address))


# ---- parsed packets ---------------------------------------------------------------------------


@dataclass
class IpInfo:
    """What the stack needs from an IP packet's headers."""

    version: int
    header_length: int  # every header before the upper-layer one (IPv6: incl. extensions)
    src: bytes
    dst: bytes
    protocol: int  # upper-layer protocol (after IPv6 extension headers)
    total_length: int  # per the IP header (IPv4 total length, IPv6 40 + payload length)
    ttl: int = 0
    identification: int = 0
    fragment_offset: int = 0  # in bytes
    more_fragments: bool = False
    dont_fragment: bool = False
    has_fragment_header: bool = False  # IPv6 Fragment extension header present
    fragment_header_offset: int = 0  # IPv6: byte offset of the Fragment header
    unfragmentable_length: int = 0  # IPv6: bytes before the Fragment header
    fragment_next_header: int = 0  # IPv6: Next Header carried in the Fragment header
    extension_headers: list[int] = field(default_factory=list)

    @property
    def address_family(self) -> int:
        return AF_INET if self.version == 4 else AF_INET6

    @property
    def is_fragment(self) -> bool:
        """A real fragment (IPv6 atomic fragments — offset 0, M=0, RFC 6946 — are not)."""
        return self.more_fragments or self.fragment_offset > 0


def parse_ip(data: bytes | bytearray | memoryview) -> IpInfo:
    """Parses an IPv4 or IPv6 header (and IPv6 extension headers up to the upper layer)."""
    buf = bytes(data[:65536]) if not isinstance(data, bytes) else data
    if not buf:
        raise MalformedPacketError("empty packet: no IP header")
    version = buf[0] >> 4
    if version == 4:
        return _parse_ipv4(buf)
    if version == 6:
        return _parse_ipv6(buf)
    raise MalformedPacketError(f"IP version {version}: not IPv4 or IPv6")


def _parse_ipv4(buf: bytes) -> IpInfo:
    if len(buf) < 20:
        raise MalformedPacketError(f"IPv4 header truncated: {len(buf)} < 20 bytes")
    ihl = (buf[0] & 0x0F) * 4
    if ihl < 20:
        raise MalformedPacketError(f"IPv4 IHL {ihl} < 20")
    if len(buf) < ihl:
        raise MalformedPacketError(f"IPv4 header truncated: {len(buf)} < IHL {ihl}")
    total, ident, frag, ttl, proto = struct.unpack_from("!2xHHHBB", buf, 0)
    if total < ihl:
        raise MalformedPacketError(f"IPv4 total length {total} < header length {ihl}")
    return IpInfo(
        version=4,
        header_length=ihl,
        src=buf[12:16],
        dst=buf[16:20],
        protocol=proto,
        total_length=total,
        ttl=ttl,
        identification=ident,
        fragment_offset=(frag & 0x1FFF) * 8,
        more_fragments=bool(frag & 0x2000),
        dont_fragment=bool(frag & 0x4000),
    )


def _parse_ipv6(buf: bytes) -> IpInfo:
    if len(buf) < 40:
        raise MalformedPacketError(f"IPv6 header truncated: {len(buf)} < 40 bytes")
    payload_length, next_header, hop_limit = struct.unpack_from("!HBB", buf, 4)
    info = IpInfo(
        version=6,
        header_length=40,
        src=buf[8:24],
        dst=buf[24:40],
        protocol=next_header,
        total_length=40 + payload_length,
        ttl=hop_limit,
    )
    offset = 40
    nh = next_header
    for _ in range(256):  # bounded walk over the extension-header chain
        if nh in IPV6_EXTENSION_HEADERS:
            if len(buf) < offset + 2:
                raise MalformedPacketError(f"IPv6 extension header {nh} truncated at {offset}")
            length = (buf[offset + 1] + 2) * 4 if nh == IPPROTO_AH else (buf[offset + 1] + 1) * 8
            info.extension_headers.append(nh)
            nh = buf[offset]
            offset += length
            if offset > len(buf):
                raise MalformedPacketError("IPv6 extension header runs past the packet")
            continue
        if nh == IPPROTO_FRAGMENT:
            if len(buf) < offset + 8:
                raise MalformedPacketError("IPv6 Fragment header truncated")
            info.extension_headers.append(nh)
            info.has_fragment_header = True
            info.fragment_header_offset = offset
            info.unfragmentable_length = offset
            info.fragment_next_header = buf[offset]
            frag_word, ident = struct.unpack_from("!HI", buf, offset + 2)
            info.fragment_offset = frag_word & 0xFFF8
            info.more_fragments = bool(frag_word & 1)
            info.identification = ident
            nh = buf[offset]
            offset += 8
            if info.is_fragment:
                break  # the rest of the chain lies in the fragmentable part
            continue
        break
    else:
        raise MalformedPacketError("IPv6 extension-header chain longer than 256 headers")
    info.header_length = offset
    info.protocol = nh
    return info


@dataclass
class TransportInfo:
    protocol: int
    header_length: int
    src_port: int = 0  # ICMP: type
    dst_port: int = 0  # ICMP: code
    tcp_flags: int = 0
    seq: int = 0
    ack: int = 0
    icmp_id_seq: int = 0


def parse_transport(protocol: int, data: bytes) -> TransportInfo:
    """Parses the upper-layer header that starts ``data``."""
    if protocol == IPPROTO_UDP:
        if len(data) < 8:
            raise MalformedPacketError(f"UDP header truncated: {len(data)} < 8 bytes")
        sport, dport = struct.unpack_from("!HH", data)
        return TransportInfo(protocol, 8, sport, dport)
    if protocol == IPPROTO_TCP:
        if len(data) < 20:
            raise MalformedPacketError(f"TCP header truncated: {len(data)} < 20 bytes")
        sport, dport, seq, ack, off, flags = struct.unpack_from("!HHIIBB", data)
        hlen = (off >> 4) * 4
        if hlen < 20 or hlen > len(data):
            raise MalformedPacketError(f"TCP data offset {hlen} invalid")
        return TransportInfo(protocol, hlen, sport, dport, flags, seq, ack)
    if protocol in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        if len(data) < 8:
            raise MalformedPacketError(f"ICMP header truncated: {len(data)} < 8 bytes")
        itype, icode = data[0], data[1]
        return TransportInfo(
            protocol, 8, itype, icode, icmp_id_seq=struct.unpack_from("!I", data, 4)[0]
        )
    return TransportInfo(protocol, 0)


# ---- building ---------------------------------------------------------------------------------


def ipv4_header(
    src: bytes,
    dst: bytes,
    protocol: int,
    payload_length: int,
    *,
    ttl: int = 128,
    identification: int = 0,
    dont_fragment: bool = False,
    fragment_offset: int = 0,
    more_fragments: bool = False,
    tos: int = 0,
    options: bytes = b"",
) -> bytes:
    ihl = 20 + len(options)
    frag = (fragment_offset // 8) | (0x2000 if more_fragments else 0)
    frag |= 0x4000 if dont_fragment else 0
    header = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s",
            0x40 | (ihl // 4),
            tos,
            ihl + payload_length,
            identification & 0xFFFF,
            frag,
            ttl,
            protocol,
            0,
            src,
            dst,
        )
        + options
    )
    struct.pack_into("!H", header, 10, internet_checksum(header))
    return bytes(header)


def ipv6_header(
    src: bytes, dst: bytes, next_header: int, payload_length: int, *, hop_limit: int = 128
) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, payload_length, next_header, hop_limit, src, dst)


def ip_header(
    src: bytes, dst: bytes, protocol: int, payload_length: int, *, ttl: int = 128, ident: int = 0
) -> bytes:
    """An IPv4 or IPv6 header (by address length) for a payload of ``payload_length`` bytes."""
    if len(src) == 4:
        return ipv4_header(src, dst, protocol, payload_length, ttl=ttl, identification=ident)
    return ipv6_header(src, dst, protocol, payload_length, hop_limit=ttl)


def fix_ipv4_checksum(header: bytearray) -> None:
    struct.pack_into("!H", header, 10, 0)
    ihl = (header[0] & 0x0F) * 4
    struct.pack_into("!H", header, 10, internet_checksum(bytes(header[:ihl])))


def udp_datagram(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    length = 8 + len(payload)
    seg = bytearray(struct.pack("!HHHH", sport, dport, length, 0) + payload)
    struct.pack_into("!H", seg, 6, transport_checksum(src, dst, IPPROTO_UDP, bytes(seg)))
    return bytes(seg)


def tcp_segment(
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    payload: bytes = b"",
    *,
    window: int = 65535,
) -> bytes:
    seg = bytearray(
        struct.pack(
            "!HHIIBBHHH",
            sport,
            dport,
            seq & 0xFFFFFFFF,
            ack & 0xFFFFFFFF,
            5 << 4,
            flags,
            window,
            0,
            0,
        )
        + payload
    )
    struct.pack_into("!H", seg, 16, transport_checksum(src, dst, IPPROTO_TCP, bytes(seg)))
    return bytes(seg)


def icmp_message(
    src: bytes, dst: bytes, icmp_type: int, code: int, rest: int, body: bytes
) -> bytes:
    """An ICMPv4 (checksum over the message) or ICMPv6 (pseudo-header) message."""
    msg = bytearray(struct.pack("!BBHI", icmp_type, code, 0, rest) + body)
    if len(src) == 4:
        value = internet_checksum(bytes(msg))
    else:
        value = transport_checksum(src, dst, IPPROTO_ICMPV6, bytes(msg))
    struct.pack_into("!H", msg, 2, value)
    return bytes(msg)


def ethernet_header(dst_mac: bytes, src_mac: bytes, ethertype: int) -> bytes:
    return bytes(dst_mac) + bytes(src_mac) + struct.pack("!H", ethertype)


@dataclass
class EthernetInfo:
    dst: bytes
    src: bytes
    ethertype: int
    header_length: int
    vlan_id: int = 0


def parse_ethernet(data: bytes) -> EthernetInfo:
    if len(data) < 14:
        raise MalformedPacketError(f"Ethernet header truncated: {len(data)} < 14 bytes")
    ethertype = struct.unpack_from("!H", data, 12)[0]
    if ethertype == ETHERTYPE_VLAN:
        if len(data) < 18:
            raise MalformedPacketError("802.1Q tag truncated")
        tci, inner = struct.unpack_from("!HH", data, 14)
        return EthernetInfo(data[0:6], data[6:12], inner, 18, tci & 0x0FFF)
    if ethertype < 0x0600:
        raise MalformedPacketError(f"not an Ethernet II frame: type/length field {ethertype:#x}")
    return EthernetInfo(data[0:6], data[6:12], ethertype, 14)


def ethertype_for(version: int) -> int:
    return ETHERTYPE_IPV4 if version == 4 else ETHERTYPE_IPV6


def looks_like_ethernet(data: bytes) -> bool:
    """Heuristic for ``receive(link=None)``: an Ethernet II frame carrying IPv4/IPv6/802.1Q whose
    payload starts with a matching IP version nibble."""
    if len(data) < 15:
        return False
    ethertype = struct.unpack_from("!H", data, 12)[0]
    if ethertype == ETHERTYPE_IPV4:
        return data[14] >> 4 == 4
    if ethertype == ETHERTYPE_IPV6:
        return data[14] >> 4 == 6
    return ethertype == ETHERTYPE_VLAN


__all__ = [
    "IpInfo",
    "TransportInfo",
    "EthernetInfo",
    "internet_checksum",
    "pseudo_header_sum",
    "transport_checksum",
    "addr_bytes",
    "addr_text",
    "family_of",
    "parse_ip",
    "parse_transport",
    "parse_ethernet",
    "ipv4_header",
    "ipv6_header",
    "ip_header",
    "fix_ipv4_checksum",
    "udp_datagram",
    "tcp_segment",
    "icmp_message",
    "ethernet_header",
    "ethertype_for",
    "looks_like_ethernet",
]
