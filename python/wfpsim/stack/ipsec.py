"""Inbound IPsec as the simulator models it, and FwpsGetPacketListSecurityInformation0.

Windows verifies (and decrypts) inbound IPsec traffic between INBOUND_IPPACKET and
INBOUND_TRANSPORT; callouts at the transport, ALE and datagram layers then see an
"IPsec-verified" packet whose NBL still holds the AH/ESP header (injection.md §4.3: before
receive-injecting a clone the callout rebuilds the IP header with
FwpsConstructIpHeaderForTransportPacket0, ``headerIncludeHeaderLength = ipHeaderSize``), and they
read the packet's security state with ``FwpsGetPacketListSecurityInformation0`` (samples.md §1.3,
§1.8, §4.3; B11, B12). The wire format and the key exchange are not what the samples exercise,
so the simulator uses the simplest faithful stand-in [emu]:

* **ESP with NULL encryption and no ICV** (RFC 2410 without the authenticator): ESP header
  (SPI, sequence number; 8 bytes), the protected payload, then the trailer (padding 1, 2, 3 ...
  to a 4-byte boundary, pad length, next header). Build packets with :func:`esp_packet` /
  :func:`esp_tunnel_packet`; a peer needs a security association
  (:meth:`wfpsim.Stack.add_ipsec_sa`).
* **Transport mode**: the stack strips the trailer (the NET_BUFFER's DataLength shrinks), keeps
  the IP and ESP headers in the NBL, and indicates the packet from INBOUND_TRANSPORT on with
  ``ipHeaderSize`` = IP header + 8 (so ``ipHeaderSize + transportHeaderSize`` still retreats to
  the IP header), ``FWP_CONDITION_FLAG_IS_IPSEC_SECURED`` in FLAGS and ``isSecure`` set.
* **Tunnel mode** (next header 4 / 41): the outer packet is indicated once at INBOUND_TRANSPORT
  before de-tunnelling (IP_PROTOCOL 50, ``isTunnelMode`` set, ``isDeTunneled`` clear, data at
  the inner IP header, no transportHeaderSize) — a callout must leave it alone (B12); then the
  inner packet climbs the inbound path from INBOUND_IPPACKET with ``isSecure``,
  ``isTunnelMode`` and ``isDeTunneled`` set. When Windows indicates a not-yet-de-tunnelled
  packet is undocumented; this is the simulator's choice.
* A packet receive-injected with FwpsInjectTransportReceiveAsync0 bypasses IPsec (seed 002); if
  it still carries ESP/AH (the callout did not rebuild its header, B11) the stack drops it and
  completes the injection with STATUS_DATA_NOT_ACCEPTED [emu; unconfirmed status].
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from wfpsim.constants import (
    FWPS_PACKET_LIST_INFORMATION_QUERY_INBOUND,
    FWPS_PACKET_LIST_INFORMATION_QUERY_INVALID_MASK,
    FWPS_PACKET_LIST_INFORMATION_QUERY_IPSEC,
)
from wfpsim.errors import MalformedPacketError
from wfpsim.stack import ip as IP
from wfpsim.status import NTSTATUS

ESP_HEADER_LENGTH = 8
IPPROTO_IPV4 = 4
IPPROTO_IPV6 = 41


@dataclass
class SecurityAssociation:
    """An inbound SA with a peer: ESP-NULL from ``peer`` is verified (transport or tunnel)."""

    peer: bytes
    spi: int = 0x100
    tunnel: bool = False


# ---- the security information structures (fwpsk.h) -------------------------------------------


@dataclass
class FWPS_PACKET_LIST_INBOUND_IPSEC_INFORMATION0:  # noqa: N801
    """The fields the samples read (samples.md §1.3, §4.2)."""

    isSecure: int = 0
    isTunnelMode: int = 0
    isDeTunneled: int = 0


@dataclass
class FWPS_PACKET_LIST_OUTBOUND_IPSEC_INFORMATION0:  # noqa: N801
    isSecure: int = 0


@dataclass
class FWPS_PACKET_LIST_IPSEC_INFORMATION0:  # noqa: N801
    inbound: FWPS_PACKET_LIST_INBOUND_IPSEC_INFORMATION0 = field(
        default_factory=FWPS_PACKET_LIST_INBOUND_IPSEC_INFORMATION0
    )
    outbound: FWPS_PACKET_LIST_OUTBOUND_IPSEC_INFORMATION0 = field(
        default_factory=FWPS_PACKET_LIST_OUTBOUND_IPSEC_INFORMATION0
    )


@dataclass
class FWPS_PACKET_LIST_FWP_INFORMATION0:  # noqa: N801
    """Not modelled (all zero)."""

    fwpClientReserved: int = 0


@dataclass
class FWPS_PACKET_LIST_INFORMATION0:  # noqa: N801
    ipsecInformation: FWPS_PACKET_LIST_IPSEC_INFORMATION0 = field(
        default_factory=FWPS_PACKET_LIST_IPSEC_INFORMATION0
    )
    fwpInformation: FWPS_PACKET_LIST_FWP_INFORMATION0 = field(
        default_factory=FWPS_PACKET_LIST_FWP_INFORMATION0
    )


#: NBL handle -> inbound security state, while the stack processes the packet.
_SECURITY: dict[int, FWPS_PACKET_LIST_INBOUND_IPSEC_INFORMATION0] = {}


def mark(nbl: Any, info: FWPS_PACKET_LIST_INBOUND_IPSEC_INFORMATION0) -> None:
    _SECURITY[nbl.handle] = info


def forget(nbl: Any) -> None:
    if nbl is not None:
        _SECURITY.pop(nbl.handle, None)


def security_of(nbl: Any) -> FWPS_PACKET_LIST_INBOUND_IPSEC_INFORMATION0 | None:
    return _SECURITY.get(nbl.handle)


def FwpsGetPacketListSecurityInformation0(  # noqa: N802 - the WDK name
    packetList: Any,  # noqa: N803
    queryFlags: int,  # noqa: N803
) -> tuple[NTSTATUS, FWPS_PACKET_LIST_INFORMATION0 | None]:
    """``(status, packetInformation)`` for an NBL being indicated by the stack. Inbound IPsec
    information (``QUERY_IPSEC | QUERY_INBOUND``) is what the stack recorded while verifying the
    packet; everything else is zero (cleartext, or not modelled). STATUS_INVALID_PARAMETER for a
    NULL list or flags asking for both directions [emu]."""
    if packetList is None:
        return NTSTATUS.STATUS_INVALID_PARAMETER, None
    mask = FWPS_PACKET_LIST_INFORMATION_QUERY_INVALID_MASK
    if queryFlags & mask == mask:
        return NTSTATUS.STATUS_INVALID_PARAMETER, None
    info = FWPS_PACKET_LIST_INFORMATION0()
    if queryFlags & FWPS_PACKET_LIST_INFORMATION_QUERY_IPSEC and (
        queryFlags & FWPS_PACKET_LIST_INFORMATION_QUERY_INBOUND
    ):
        known = security_of(packetList)
        if known is not None:
            info.ipsecInformation.inbound = FWPS_PACKET_LIST_INBOUND_IPSEC_INFORMATION0(
                known.isSecure, known.isTunnelMode, known.isDeTunneled
            )
    return NTSTATUS.STATUS_SUCCESS, info


# ---- ESP-NULL ---------------------------------------------------------------------------------


def esp_wrap(next_header: int, payload: bytes, *, spi: int = 0x100, seq: int = 1) -> bytes:
    """ESP header + payload + trailer (NULL encryption, no ICV)."""
    pad = (-(len(payload) + 2)) % 4
    trailer = bytes(range(1, pad + 1)) + bytes([pad, next_header])
    return struct.pack("!II", spi, seq) + bytes(payload) + trailer


def esp_unwrap(data: bytes) -> tuple[int, int, int, bytes]:
    """``(spi, seq, next_header, payload)`` of an ESP-NULL message."""
    if len(data) < ESP_HEADER_LENGTH + 2:
        raise MalformedPacketError(f"ESP message truncated: {len(data)} bytes")
    spi, seq = struct.unpack_from("!II", data)
    pad, next_header = data[-2], data[-1]
    end = len(data) - 2 - pad
    if end < ESP_HEADER_LENGTH:
        raise MalformedPacketError(f"ESP pad length {pad} runs past the ESP header")
    return spi, seq, next_header, data[ESP_HEADER_LENGTH:end]


def esp_packet(
    src: bytes,
    dst: bytes,
    protocol: int,
    segment: bytes,
    *,
    spi: int = 0x100,
    seq: int = 1,
    ttl: int = 64,
) -> bytes:
    """A transport-mode ESP-NULL packet carrying ``segment`` (a transport header + payload whose
    checksum covers ``src`` / ``dst``)."""
    body = esp_wrap(protocol, segment, spi=spi, seq=seq)
    return IP.ip_header(src, dst, IP.IPPROTO_ESP, len(body), ttl=ttl) + body


def esp_tunnel_packet(
    outer_src: bytes,
    outer_dst: bytes,
    inner_packet: bytes,
    *,
    spi: int = 0x100,
    seq: int = 1,
    ttl: int = 64,
) -> bytes:
    """A tunnel-mode ESP-NULL packet carrying a whole inner IP packet."""
    nh = IPPROTO_IPV4 if inner_packet[0] >> 4 == 4 else IPPROTO_IPV6
    body = esp_wrap(nh, inner_packet, spi=spi, seq=seq)
    return IP.ip_header(outer_src, outer_dst, IP.IPPROTO_ESP, len(body), ttl=ttl) + body


__all__ = [
    "ESP_HEADER_LENGTH",
    "FWPS_PACKET_LIST_INBOUND_IPSEC_INFORMATION0",
    "FWPS_PACKET_LIST_INFORMATION0",
    "FWPS_PACKET_LIST_IPSEC_INFORMATION0",
    "FwpsGetPacketListSecurityInformation0",
    "SecurityAssociation",
    "esp_packet",
    "esp_tunnel_packet",
    "esp_unwrap",
    "esp_wrap",
]
