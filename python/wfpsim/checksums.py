"""Checksum verdicts and the NDIS checksum-offload info, on the Python side.

The arithmetic lives in the Rust core (`wfpsim.internet_checksum`, `NetBuffer.fix_checksums`,
`Chain.verify_checksums`, ...); this module holds the two Python types around it.
"""

from __future__ import annotations

import enum

from wfpsim._core import checksum_info_layout


class Verdict(enum.IntEnum):
    """What a checksum field says about its packet (`checksums.md`, MANIFEST verdict rules)."""

    VALID = 0
    """The one's-complement sum over the covered bytes, field included, is 0xFFFF."""
    INVALID = 1
    """Wrong (also: a full checksum where TX offload asked for the pseudo-header seed)."""
    OFFLOAD_PARTIAL = 2
    """The folded, uncomplemented pseudo-header sum a sender left for the NIC to finish."""
    ABSENT = 3
    """No checksum to check: UDP checksum 0 over IPv4; the IPv6 'header checksum'."""
    NOT_CHECKABLE = 4
    """Truncated, a fragment, ESP, inconsistent IP lengths, or a protocol without a checksum."""


_FIELDS = dict(checksum_info_layout())
_OFFSET_MASK = _FIELDS.pop("tcp_header_offset")
# The union's two views over the same bits (`checksums.md §7.1`).
_TRANSMIT = ("is_ipv4", "is_ipv6", "tcp_checksum", "udp_checksum", "ip_header_checksum")
_RECEIVE = tuple(n for n in _FIELDS if n not in _TRANSMIT)


class ChecksumInfo:
    """`NDIS_TCP_IP_CHECKSUM_NET_BUFFER_LIST_INFO` (NBL info slot 0; bit layout `checksums.md §7.1`).

    The same bits have a Transmit meaning (set by TCP/IP for the NIC: `is_ipv4`, `tcp_checksum`,
    `ip_header_checksum`, `tcp_header_offset`, ...) and a Receive meaning (set by the NIC:
    `tcp_checksum_succeeded`, `ip_checksum_failed`, ...). `int(info)` / `.value` is what goes in
    the slot: ``nbl.checksum_info = ChecksumInfo(is_ipv4=True, tcp_checksum=True)``.
    """

    __slots__ = ("value",)

    def __init__(self, value: int = 0, **flags: bool | int) -> None:
        self.value = int(value) & 0xFFFFFFFF
        for name, on in flags.items():
            setattr(self, name, on)

    def __int__(self) -> int:
        return self.value

    __index__ = __int__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ChecksumInfo):
            return self.value == other.value
        if isinstance(other, int):
            return self.value == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.value)

    @property
    def tcp_header_offset(self) -> int:
        """Transmit TcpHeaderOffset (bits 16–25)."""
        return (self.value & _OFFSET_MASK) >> 16

    @tcp_header_offset.setter
    def tcp_header_offset(self, offset: int) -> None:
        if not 0 <= offset <= 0x3FF:
            raise ValueError(f"TcpHeaderOffset {offset} does not fit its 10 bits (0..1023)")
        self.value = (self.value & ~_OFFSET_MASK) | (offset << 16)

    def __repr__(self) -> str:
        def names(view: tuple[str, ...]) -> str:
            return ", ".join(n for n in view if self.value & _FIELDS[n]) or "-"

        offset = f", tcp_header_offset={self.tcp_header_offset}" if self.tcp_header_offset else ""
        return (
            f"ChecksumInfo({self.value:#010x}; transmit: {names(_TRANSMIT)}{offset}; "
            f"receive: {names(_RECEIVE)})"
        )


def _flag(mask: int) -> property:
    def get(self: ChecksumInfo) -> bool:
        return bool(self.value & mask)

    def set_(self: ChecksumInfo, on: bool) -> None:
        self.value = (self.value | mask) if on else (self.value & ~mask)

    return property(get, set_)


for _name, _mask in _FIELDS.items():
    setattr(ChecksumInfo, _name, _flag(_mask))

__all__ = ["ChecksumInfo", "Verdict"]
