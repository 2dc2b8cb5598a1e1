"""Address families, IP protocol numbers, compartments and interface indexes.

Sources: ``shared/ws2def.h`` (AF_*, IPPROTO), ``shared/ntdef.h`` (COMPARTMENT_ID),
``shared/ifdef.h`` (NET_IF_*), SDK 10.0.16299.0; values as listed in injection.md §1.1-1.2.
``AF_LINK`` is not in the spec and is not defined.
"""

from __future__ import annotations

import enum

from ._export import export_members, public_names

# --- ws2def.h: ADDRESS_FAMILY is a USHORT typedef with #define values -------------------------
AF_UNSPEC = 0
AF_INET = 2
AF_INET6 = 23


class IPPROTO(enum.IntEnum):
    """ws2def.h ``IPPROTO`` (subset used by the simulator).

    The injection-relevant protocols come from injection.md §1.2; the IPv6 extension-header
    numbers are the ones checksums.md §4 walks (names from ws2def.h).
    ``IPPROTO_IP`` is a separate ``#define 0`` in ws2def.h; here it aliases ``IPPROTO_HOPOPTS``.
    """

    IPPROTO_HOPOPTS = 0
    IPPROTO_IP = 0
    IPPROTO_ICMP = 1
    IPPROTO_TCP = 6
    IPPROTO_UDP = 17
    IPPROTO_IPV6 = 41
    IPPROTO_ROUTING = 43
    IPPROTO_FRAGMENT = 44
    IPPROTO_ESP = 50
    IPPROTO_AH = 51
    IPPROTO_ICMPV6 = 58
    IPPROTO_NONE = 59
    IPPROTO_DSTOPTS = 60
    IPPROTO_RAW = 255


class COMPARTMENT_ID(enum.IntEnum):
    """ntdef.h ``COMPARTMENT_ID`` (any other positive value is a real compartment number)."""

    UNSPECIFIED_COMPARTMENT_ID = 0
    DEFAULT_COMPARTMENT_ID = 1


export_members(globals(), IPPROTO, COMPARTMENT_ID)

# --- ifdef.h ----------------------------------------------------------------------------------
NET_IF_COMPARTMENT_ID_UNSPECIFIED = 0
NET_IF_COMPARTMENT_ID_PRIMARY = 1
NET_IFINDEX_UNSPECIFIED = 0

__all__ = public_names(globals())
