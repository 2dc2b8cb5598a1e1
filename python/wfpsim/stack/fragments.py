"""IP fragment reassembly (RFC 791 / RFC 815 holes, RFC 8200 §4.5, RFC 5722) and fragmentation.

* :class:`Reassembler` — the stack's reassembly table: fragments in, whole packets out, with
  duplicate, overlap, missing-fragment and timeout handling. Keys: IPv4 (source, destination,
  protocol, identification) (RFC 791); IPv6 (source, destination, identification) (RFC 8200).
* :func:`reassemble_group` — one fragment group (e.g. the NBL chain WFP indicates at IPFORWARD)
  into one packet, or an error naming what is wrong (the forward-injection rule of the seeds).
* :func:`fragment` — splits a locally built packet for an MTU (outgoing fragments are not
  indicated to WFP, `layers.md §11`).

Rules (each one is a test in ``tests/test_stack_fragments.py``):

* An exact duplicate (same offset, same length, same bytes) is dropped; the group goes on
  (RFC 8200 §4.5 allows this for IPv6; for IPv4 it is what RFC 791's algorithm does anyway).
* IPv6: any other overlap discards the whole datagram, and later fragments of it are silently
  discarded until the reassembly timer expires (RFC 5722).
* IPv4: RFC 791 does not forbid overlaps. ``ipv4_overlap="first"`` (default) keeps the bytes
  that arrived first — the "Windows" target-based reassembly policy (Novak, 2005), [emu];
  ``"last"`` is RFC 791's sample algorithm literally (each fragment's data is copied into the
  buffer, so later bytes win); ``"drop"`` treats an overlap as IPv6 does. An overlap with
  identical bytes is no conflict under any policy.
* IPv6: a non-last fragment whose length is not a multiple of 8, or a fragment that would end
  beyond 65535 bytes of payload, is discarded (RFC 8200 §4.5; the ICMP Parameter Problem the RFC
  asks for is reported as an event, see :class:`ReassemblyEvent`). IPv4 likewise for > 65535.
* A fragment that ends past a known end of the datagram, or a second "last" fragment with a
  different end, makes the datagram inconsistent: it is discarded.
* Missing fragments: the group waits; after ``timeout_ns`` (60 s, RFC 8200 and Windows' value;
  [emu] for IPv4) it is discarded, and if the first fragment (offset 0) was received a
  "time exceeded / fragment reassembly time exceeded" (ICMP type 11 code 1 / ICMPv6 type 3
  code 1) event is reported for it.
* The reassembled packet has the first fragment's headers (IPv4: its options; IPv6: its
  unfragmentable part) with lengths fixed, the fragment fields cleared (IPv4) or the Fragment
  header removed (IPv6), and a recomputed IPv4 header checksum.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from wfpsim.errors import InvalidParameterError, MalformedPacketError
from wfpsim.stack.ip import (
    IPPROTO_FRAGMENT,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    IpInfo,
    fix_ipv4_checksum,
    parse_ip,
)
from wfpsim.status import NTSTATUS

DEFAULT_TIMEOUT_NS = 60 * 1_000_000_000
_MAX_PAYLOAD = 65535
_MIN_UPPER = {IPPROTO_TCP: 20, IPPROTO_UDP: 8, IPPROTO_ICMPV6: 4}


@dataclass
class ReassemblyEvent:
    """Something the RFCs want reported (ICMP errors the stack may send, drops)."""

    kind: str  # "duplicate", "overlap", "bad_length", "too_long", "inconsistent",
    #            "timeout", "incomplete_first_fragment", "discarded_after_overlap"
    key: tuple
    detail: str
    icmp: tuple[int, int] | None = None  # (type, code) the RFC says to send, if any
    first_fragment: bytes | None = None  # for ICMP generation (timeout with offset 0 seen)


@dataclass
class _Group:
    key: tuple
    version: int
    started_ns: int
    pieces: list[tuple[int, bytes]] = field(default_factory=list)  # (offset, data), arrival order
    end: int | None = None  # payload length, once the last fragment was seen
    first: bytes | None = None  # the offset-0 fragment (whole packet bytes)
    first_info: IpInfo | None = None
    tags: list[Any] = field(default_factory=list)  # caller tags, offset-0 fragment's first
    discarded: bool = False  # RFC 5722: discard later fragments until the timer fires


@dataclass
class Reassembled:
    packet: bytes
    info: IpInfo
    tags: list[Any]
    fragment_count: int


class Reassembler:
    """A reassembly table. ``add`` returns a :class:`Reassembled` once a datagram is complete,
    else None; ``expire(now)`` drops groups older than the timeout. Every event is appended to
    :attr:`events` (bounded: the last ``max_events``)."""

    def __init__(
        self,
        *,
        timeout_ns: int = DEFAULT_TIMEOUT_NS,
        ipv4_overlap: str = "first",
        max_groups: int = 4096,
        max_events: int = 10_000,
    ) -> None:
        if ipv4_overlap not in ("first", "last", "drop"):
            raise InvalidParameterError(
                f"ipv4_overlap must be 'first', 'last' or 'drop', not {ipv4_overlap!r}"
            )
        self.timeout_ns = timeout_ns
        self.ipv4_overlap = ipv4_overlap
        self.max_groups = max_groups
        self.max_events = max_events
        self.groups: dict[tuple, _Group] = {}
        self.events: list[ReassemblyEvent] = []

    # -- bookkeeping --

    def _event(self, kind: str, key: tuple, detail: str, **kw: Any) -> None:
        self.events.append(ReassemblyEvent(kind, key, detail, **kw))
        if len(self.events) > self.max_events:
            del self.events[: len(self.events) - self.max_events]

    @staticmethod
    def key_of(info: IpInfo) -> tuple:
        if info.version == 4:
            return (4, info.src, info.dst, info.protocol, info.identification)
        return (6, info.src, info.dst, info.identification)

    def pending(self) -> int:
        return sum(1 for g in self.groups.values() if not g.discarded)

    def earliest_deadline(self) -> int | None:
        if not self.groups:
            return None
        return min(g.started_ns for g in self.groups.values()) + self.timeout_ns

    def expire(self, now_ns: int) -> list[ReassemblyEvent]:
        """Drops every group whose timer ran out; returns the timeout events."""
        out = []
        for key in [k for k, g in self.groups.items() if now_ns - g.started_ns >= self.timeout_ns]:
            group = self.groups.pop(key)
            if group.discarded:
                continue
            icmp = None
            if group.first is not None:
                icmp = (11, 1) if group.version == 4 else (3, 1)
            self._event(
                "timeout",
                key,
                f"reassembly timer expired with {len(group.pieces)} fragment(s) and a hole",
                icmp=icmp,
                first_fragment=group.first,
            )
            out.append(self.events[-1])
        return out

    # -- the algorithm --

    def add(
        self, packet: bytes, now_ns: int = 0, tag: Any = None, info: IpInfo | None = None
    ) -> Reassembled | None:
        """Adds one fragment (a whole IP packet's bytes). Non-fragments are returned at once."""
        packet = bytes(packet)
        info = info or parse_ip(packet)
        if not info.is_fragment:
            return Reassembled(packet, info, [tag], 1)
        end_of_packet = min(len(packet), info.total_length)
        data = packet[info.header_length : end_of_packet]
        key = self.key_of(info)
        start, stop = info.fragment_offset, info.fragment_offset + len(data)

        if info.version == 6 and info.more_fragments and len(data) % 8:
            self._event(
                "bad_length", key, f"non-last IPv6 fragment of {len(data)} bytes", icmp=(4, 0)
            )
            return None
        reassembled = (
            info.header_length + stop
            if info.version == 4
            else info.unfragmentable_length - 40 + stop
        )
        if reassembled > _MAX_PAYLOAD:
            self._event("too_long", key, f"reassembly would exceed 65535 bytes ({reassembled})")
            return None

        group = self.groups.get(key)
        if group is None:
            if len(self.groups) >= self.max_groups:
                oldest = min(self.groups, key=lambda k: self.groups[k].started_ns)
                self.groups.pop(oldest)
                self._event("timeout", oldest, "reassembly table full: oldest group dropped")
            group = self.groups[key] = _Group(key, info.version, now_ns)
        if group.discarded:
            self._event("discarded_after_overlap", key, "fragment of a discarded datagram")
            return None

        # ends: a last fragment fixes the end; nothing may go past it
        if not info.more_fragments:
            if group.end is not None and group.end != stop:
                return self._discard(group, "inconsistent", f"second end {stop} != {group.end}")
            if any(o + len(d) > stop for o, d in group.pieces):
                return self._discard(group, "inconsistent", f"data beyond the end {stop}")
            group.end = stop
        elif group.end is not None and stop > group.end:
            return self._discard(group, "inconsistent", f"fragment ends past the end {group.end}")

        # duplicates and overlaps
        for o, d in group.pieces:
            if o == start and d == data:
                self._event("duplicate", key, f"exact duplicate at offset {start}")
                return None
            if o < stop and start < o + len(d):
                if info.version == 6 or self.ipv4_overlap == "drop":
                    return self._discard(
                        group, "overlap", f"[{start}, {stop}) overlaps [{o}, {o + len(d)})"
                    )
                winner = "later" if self.ipv4_overlap == "last" else "earlier"
                self._event("overlap", key, f"[{start}, {stop}) overlaps; {winner} bytes win")
        group.pieces.append((start, data))
        if start == 0:
            if info.version == 6:
                minimum = _MIN_UPPER.get(info.fragment_next_header, 0)
                if len(data) < minimum:
                    self._event(
                        "incomplete_first_fragment",
                        key,
                        "first fragment lacks the upper-layer header (RFC 7112)",
                        icmp=(4, 3),
                    )
                    return self._discard(group, "inconsistent", "first fragment too short")
            group.first, group.first_info = packet[:end_of_packet], info
            group.tags.insert(0, tag)
        else:
            group.tags.append(tag)
        return self._complete(group)

    def _discard(self, group: _Group, kind: str, detail: str) -> None:
        group.discarded = True
        group.pieces.clear()
        self._event(kind, group.key, detail + ": datagram discarded")
        return None

    def _complete(self, group: _Group) -> Reassembled | None:
        if group.end is None or group.first is None:
            return None
        cursor = 0
        for offset, data in sorted(group.pieces, key=lambda p: p[0]):
            if offset > cursor:
                return None  # a hole remains
            cursor = max(cursor, offset + len(data))
        if cursor < group.end:
            return None
        payload = bytearray(group.end)
        order = group.pieces if self.ipv4_overlap == "last" else reversed(group.pieces)
        for offset, data in order:  # copy each fragment in; the last copy wins
            payload[offset : offset + len(data)] = data
        del self.groups[group.key]
        info = group.first_info
        assert info is not None
        packet = _rebuild(group.first, info, bytes(payload))
        return Reassembled(packet, parse_ip(packet), group.tags, len(group.pieces))


def _rebuild(first: bytes, info: IpInfo, payload: bytes) -> bytes:
    if info.version == 4:
        header = bytearray(first[: info.header_length])
        struct.pack_into("!H", header, 2, info.header_length + len(payload))
        flags = struct.unpack_from("!H", header, 6)[0] & 0x4000  # keep DF, clear MF/offset
        struct.pack_into("!H", header, 6, flags)
        fix_ipv4_checksum(header)
        return bytes(header) + payload
    unfrag = bytearray(first[: info.unfragmentable_length])
    # the header before the Fragment header now points at what the Fragment header carried
    _set_next_header_before(unfrag, info.fragment_header_offset, info.fragment_next_header)
    struct.pack_into("!H", unfrag, 4, len(unfrag) - 40 + len(payload))
    return bytes(unfrag) + payload


def _set_next_header_before(buf: bytearray, target_offset: int, value: int) -> None:
    """Rewrites the Next Header field that points at the header starting at ``target_offset``."""
    if target_offset == 40:
        buf[6] = value
        return
    offset, nh = 40, buf[6]
    for _ in range(256):
        length = (buf[offset + 1] + 2) * 4 if nh == 51 else (buf[offset + 1] + 1) * 8
        if offset + length == target_offset:
            buf[offset] = value
            return
        nh = buf[offset]
        offset += length
    raise MalformedPacketError("IPv6 header chain does not reach the Fragment header")


def reassemble_group(packets: list[bytes]) -> bytes:
    """Reassembles one fragment group into one packet. Raises
    :class:`wfpsim.InvalidParameterError` (STATUS_INVALID_PARAMETER) naming the problem when the
    group is incomplete, mixed, overlapping (IPv6) or inconsistent."""
    if not packets:
        raise InvalidParameterError("fragment group is empty", NTSTATUS.STATUS_INVALID_PARAMETER)
    r = Reassembler()
    keys = set()
    result = None
    for i, p in enumerate(packets):
        info = parse_ip(p)
        if not info.is_fragment:
            raise InvalidParameterError(
                f"fragment group member {i} is not a fragment", NTSTATUS.STATUS_INVALID_PARAMETER
            )
        keys.add(Reassembler.key_of(info))
        if len(keys) > 1:
            raise InvalidParameterError(
                f"fragment group member {i} belongs to another datagram",
                NTSTATUS.STATUS_INVALID_PARAMETER,
            )
        result = r.add(p, 0, i, info)
        bad = [e for e in r.events if e.kind not in ("duplicate", "overlap")]
        if bad:
            raise InvalidParameterError(
                f"fragment group member {i}: {bad[-1].detail}", NTSTATUS.STATUS_INVALID_PARAMETER
            )
    if result is None:
        raise InvalidParameterError(
            "fragment group is incomplete: a fragment is missing (hole or no last fragment)",
            NTSTATUS.STATUS_INVALID_PARAMETER,
        )
    return result.packet


def fragment(packet: bytes, mtu: int, identification: int | None = None) -> list[bytes]:
    """Splits an IP packet into fragments of at most ``mtu`` bytes. A packet that fits is
    returned alone. IPv4 keeps the packet's Identification unless ``identification`` is given;
    IPv6 puts ``identification`` (default 0) in the Fragment headers. IPv4 with DF set cannot be
    fragmented: MalformedPacketError."""
    info = parse_ip(packet)
    if len(packet) <= mtu:
        return [packet]
    if info.version == 4:
        if info.dont_fragment:
            raise MalformedPacketError("IPv4 packet larger than the MTU has DF set")
        hl = info.header_length
        step = (mtu - hl) // 8 * 8
        if step <= 0:
            raise MalformedPacketError(f"MTU {mtu} too small to fragment")
        payload = packet[hl : info.total_length]
        out = []
        for off in range(0, len(payload), step):
            chunk = payload[off : off + step]
            header = bytearray(packet[:hl])
            more = off + step < len(payload)
            struct.pack_into("!H", header, 2, hl + len(chunk))
            struct.pack_into("!H", header, 6, (off // 8) | (0x2000 if more else 0))
            if identification is not None:
                struct.pack_into("!H", header, 4, identification & 0xFFFF)
            fix_ipv4_checksum(header)
            out.append(bytes(header) + chunk)
        return out
    # IPv6: the unfragmentable part is the IPv6 header plus hop-by-hop and routing headers.
    unfrag_len, nh_offset, nh = 40, 6, packet[6]
    for _ in range(256):
        if nh in (0, 43):
            nh_offset = unfrag_len
            nh = packet[unfrag_len]
            unfrag_len += (packet[unfrag_len + 1] + 1) * 8
            continue
        break
    step = (mtu - unfrag_len - 8) // 8 * 8
    if step <= 0:
        raise MalformedPacketError(f"MTU {mtu} too small to fragment")
    rest = packet[unfrag_len : info.total_length]
    out = []
    for off in range(0, len(rest), step):
        chunk = rest[off : off + step]
        more = off + step < len(rest)
        head = bytearray(packet[:unfrag_len])
        head[nh_offset] = IPPROTO_FRAGMENT
        frag = struct.pack(
            "!BxHI", nh, off | (1 if more else 0), (identification or 0) & 0xFFFFFFFF
        )
        struct.pack_into("!H", head, 4, unfrag_len - 40 + 8 + len(chunk))
        out.append(bytes(head) + frag + chunk)
    return out


__all__ = ["Reassembler", "Reassembled", "ReassemblyEvent", "reassemble_group", "fragment"]
