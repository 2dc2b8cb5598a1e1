"""NDIS constants: NBL flags, NetBufferListInfo slots, clone flags, pools, LSO info.

Sources: WDK 10.0.16299.0 ``km/ndis.h`` and ``shared/ntddndis.h`` plus the newer ``nblinfo.h``
(NDIS 6.82-6.84 slot aliases), as recorded in nbl.md §4-§5. NDIS status codes live in
:mod:`wfpsim.status`, MDL flags in :mod:`wfpsim.constants.mm`.
"""

from __future__ import annotations

import enum

from ._export import export_members, public_names

# --- NET_BUFFER_LIST.NblFlags (public, NDIS_NBL_FLAGS_*) — nbl.md §4.2 ------------------------
# 0x01-0xFF are reserved for NDIS.
NDIS_NBL_FLAGS_SEND_READ_ONLY = 0x00000001
NDIS_NBL_FLAGS_RECV_READ_ONLY = 0x00000002
NDIS_NBL_FLAGS_HD_SPLIT = 0x00000100
NDIS_NBL_FLAGS_IS_IPV4 = 0x00000200
NDIS_NBL_FLAGS_IS_IPV6 = 0x00000400
NDIS_NBL_FLAGS_IS_TCP = 0x00000800
NDIS_NBL_FLAGS_IS_UDP = 0x00001000
NDIS_NBL_FLAGS_SPLIT_AT_UPPER_LAYER_PROTOCOL_HEADER = 0x00002000
NDIS_NBL_FLAGS_SPLIT_AT_UPPER_LAYER_PROTOCOL_PAYLOAD = 0x00004000
NDIS_NBL_FLAGS_IS_LOOPBACK_PACKET = 0x00008000

# --- NET_BUFFER_LIST.Flags (private) ownership masks — nbl.md §4.3 -----------------------------
# NDIS >= 6.30 values (Windows 8+). Before 6.30 ndis.h gives PROTOCOL_RESERVED 0xFFF00000 and
# NDIS_RESERVED 0x00000FFF under the same names; the simulator models NDIS 6.30+ only.
NBL_FLAGS_PROTOCOL_RESERVED = 0xFFF00003
NBL_FLAGS_MINIPORT_RESERVED = 0x0000F000
NBL_FLAGS_SCRATCH = 0x000F0000
NBL_FLAGS_NDIS_RESERVED = 0x00000FFC


class NDIS_NET_BUFFER_LIST_INFO(enum.IntEnum):
    """``NET_BUFFER_LIST.NetBufferListInfo[]`` slot indices, x64 numbering, NDIS >= 6.84.

    Aliases share a slot (the first name is canonical). x86-only slots
    (``NetBufferListInfoReserved4``, ``SwitchForwardingDetail_b0_to_b31``,
    ``SwitchForwardingDetail_b32_to_b63``) and the NDIS-private ``NetBufferListInfoReserved1/2``
    (``NDIS_WRAPPER``) do not exist in this layout and are not defined.
    """

    TcpIpChecksumNetBufferListInfo = 0
    TcpOffloadBytesTransferred = 0
    IPsecOffloadV1NetBufferListInfo = 1
    IPsecOffloadV2NetBufferListInfo = 1
    TcpLargeSendNetBufferListInfo = 2
    TcpReceiveNoPush = 2
    ClassificationHandleNetBufferListInfo = 3
    Ieee8021QNetBufferListInfo = 4
    NetBufferListCancelId = 5
    MediaSpecificInformation = 6
    NetBufferListFrameType = 7
    NetBufferListProtocolId = 7
    NetBufferListHashValue = 8
    NetBufferListHashInfo = 9
    WfpNetBufferListInfo = 10  # reserved for WFP: no driver may store here
    IPsecOffloadV2TunnelNetBufferListInfo = 11
    IPsecOffloadV2HeaderNetBufferListInfo = 12
    NetBufferListCorrelationId = 13
    NetBufferListFilteringInfo = 14
    MediaSpecificInformationEx = 15
    NblOriginalInterfaceIfIndex = 16
    NblReAuthWfpFlowContext = 16
    TcpReceiveBytesTransferred = 17
    NrtNameResolutionId = 17
    UdpRecvSegCoalesceOffloadInfo = 17  # NDIS 6.84
    SwitchForwardingReserved = 18
    SwitchForwardingDetail = 19
    VirtualSubnetInfo = 20
    IMReserved = 21
    TcpRecvSegCoalesceInfo = 22
    UdpSegmentationOffloadInfo = 22  # NDIS 6.83
    RscTcpTimestampDelta = 23
    TcpSendOffloadsSupplementalNetBufferListInfo = 23
    GftOffloadInformation = 24
    GftFlowEntryId = 25
    NetBufferListInfoReserved3 = 26
    MaxNetBufferListInfo = 27  # array length of NetBufferListInfo[] for drivers


export_members(globals(), NDIS_NET_BUFFER_LIST_INFO)

# --- NdisAllocateCloneNetBufferList flags — nbl.md §5, §9.1 -----------------------------------
NDIS_CLONE_FLAGS_RESERVED = 0x00000001
NDIS_CLONE_FLAGS_USE_ORIGINAL_MDLS = 0x00000002
# NOTE: there is no FWPS_ALLOCATE_CLONE_* / FWPS_..._CLONE_NBL_FLAG_* constant: the
# allocateCloneFlags of FwpsAllocateCloneNetBufferList0 has no flags defined (pass 0). Any such
# name is fictitious (nbl.md §10.1) and deliberately not defined here.

# --- NDIS objects and pools — nbl.md §5, §6.1 --------------------------------------------------
NDIS_OBJECT_TYPE_DEFAULT = 0x80  # ntddndis.h

NDIS_PROTOCOL_ID_DEFAULT = 0x00  # ntddndis.h
NDIS_PROTOCOL_ID_TCP_IP = 0x02
NDIS_PROTOCOL_ID_IPX = 0x06
NDIS_PROTOCOL_ID_NBF = 0x07

NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1 = 1
NET_BUFFER_POOL_PARAMETERS_REVISION_1 = 1
# RTL_SIZEOF_THROUGH_FIELD(..., DataSize): NDIS_OBJECT_HEADER(4) + UCHAR + BOOLEAN + USHORT +
# ULONG + ULONG = 16, and NDIS_OBJECT_HEADER(4) + ULONG + ULONG = 12 (nbl.md §6.1).
NDIS_SIZEOF_NET_BUFFER_LIST_POOL_PARAMETERS_REVISION_1 = 16
NDIS_SIZEOF_NET_BUFFER_POOL_PARAMETERS_REVISION_1 = 12
#: Revision-2 pool flag (doc only; not in the 10.0.16299 header).
NET_BUFFER_LIST_POOL_FLAG_VERIFY = 0x00000001

# --- NDIS_TCP_LARGE_SEND_OFFLOAD_NET_BUFFER_LIST_INFO — nbl.md §4.5 ----------------------------
NDIS_TCP_LARGE_SEND_OFFLOAD_V1_TYPE = 0
NDIS_TCP_LARGE_SEND_OFFLOAD_V2_TYPE = 1
NDIS_TCP_LARGE_SEND_OFFLOAD_IPv4 = 0  # LSOv2 IPVersion bit (exact WDK spelling, lowercase "v")
NDIS_TCP_LARGE_SEND_OFFLOAD_IPv6 = 1
NDIS_LARGE_SEND_OFFLOAD_MAX_HEADER_LENGTH = 128

__all__ = public_names(globals())
