"""The WFP injection API under its WDK names (fwpsk.h; spec ``injection.md``).

Conventions (ARCHITECTURE.md): positional parameters in WDK order with the WDK names; NULL is
None; functions with out-parameters return ``(return_value, out, ...)``; every inject function
returns an ``NTSTATUS`` member. A completion function is any callable
``(completionContext, netBufferList, dispatchLevel)``; it runs from the stack's dispatcher
(``stack.run()``), never inside the inject call, and never when the call failed.

Each function acts on its handle's stack (a handle belongs to the stack that was current when
FwpsInjectionHandleCreate0 ran: ``with stack:`` or :func:`wfpsim.default_stack`).

Driver-Verifier conditions without a C return value (use after free, a contract violation in
``"raise"`` mode, an injection loop) raise instead of returning a status.
"""

from __future__ import annotations

import struct
from typing import Any

from wfpsim._core import NetBufferList
from wfpsim.constants import AF_INET, AF_INET6, FWPS_PACKET_INJECTION_STATE
from wfpsim.errors import InvalidParameterError, MalformedPacketError, WfpError
from wfpsim.stack import ip as IP
from wfpsim.stack.fragments import reassemble_group
from wfpsim.stack.injection import (
    FWPS_TRANSPORT_SEND_PARAMS0,
    FWPS_TRANSPORT_SEND_PARAMS1,
    InjectionHandle,
)
from wfpsim.stack.ipsec import (
    FWPS_PACKET_LIST_INBOUND_IPSEC_INFORMATION0,
    FWPS_PACKET_LIST_INFORMATION0,
    FWPS_PACKET_LIST_IPSEC_INFORMATION0,
    FwpsGetPacketListSecurityInformation0,
)
from wfpsim.stack.stack import Stack, current_stack
from wfpsim.status import NTSTATUS, coerce
from wfpsim.wdk._status import STATUS_SUCCESS, as_status

S = NTSTATUS


def _stack_of(handle: Any) -> Stack:
    return handle.stack if isinstance(handle, InjectionHandle) else current_stack()


def FwpsInjectionHandleCreate0(
    addressFamily: int, flags: int
) -> tuple[NTSTATUS, InjectionHandle | None]:
    """``(status, injectionHandle)``. AF_UNSPEC with FWPS_INJECTION_TYPE_NETWORK is refused with
    STATUS_FWP_INVALID_PARAMETER ([emu], injection.md §2.1); flags 0 = transport + stream +
    forward; STATUS_FWP_TCPIP_NOT_READY while ``stack.tcpip_ready`` is False."""
    stack = current_stack()
    try:
        return STATUS_SUCCESS, stack.injector.create_handle(addressFamily, flags)
    except WfpError as e:
        if e.status is None:
            raise
        return coerce(e.status), None


def FwpsInjectionHandleDestroy0(injectionHandle: InjectionHandle) -> NTSTATUS:
    """Does not return until every pending injection made with the handle has completed (its
    completions run here, from the handle's stack's dispatcher). Meanwhile new injections fail
    with STATUS_FWP_INJECT_HANDLE_CLOSING; afterwards the handle is invalid
    (STATUS_INVALID_HANDLE — [emu], injection.md §2.2). A completion that raises is raised from
    here after the rest ran."""
    stack = _stack_of(injectionHandle)
    return as_status(lambda: stack.injector.destroy_handle(injectionHandle))


def FwpsQueryPacketInjectionState0(
    injectionHandle: InjectionHandle, netBufferList: NetBufferList, injectionContext: Any = None
) -> tuple[FWPS_PACKET_INJECTION_STATE, Any]:
    """``(state, injectionContext)`` from the NBL's injection history (injection.md §6): NOT_INJECTED,
    INJECTED_BY_SELF (the last injection was through this handle), PREVIOUSLY_INJECTED_BY_SELF
    (this handle injected it earlier, another since), INJECTED_BY_OTHER. The context is the one
    this handle passed when injecting (the same object), None for the other states ([emu]).
    The third parameter (the C out-pointer) is accepted and ignored."""
    return _stack_of(injectionHandle).injector.query(injectionHandle, netBufferList)


def FwpsInjectForwardAsync0(
    injectionHandle: InjectionHandle,
    injectionContext: Any,
    flags: int,
    addressFamily: int,
    compartmentId: int,
    interfaceIndex: int,
    netBufferList: NetBufferList,
    completionFn: Any,
    completionContext: Any,
) -> NTSTATUS:
    """Into the forwarding path, out of ``interfaceIndex``; never indicated to any WFP layer.
    An NBL chain (an unreassembled fragment group) is refused with STATUS_FWP_INVALID_PARAMETER;
    late failures in ``Status``: STATUS_INVALID_PARAMETER for locally sourced/destined
    (weak-host) packets (B13), STATUS_INVALID_BUFFER_SIZE above the MTU."""
    stack = _stack_of(injectionHandle)
    return as_status(
        lambda: stack.injector.forward(
            injectionHandle,
            injectionContext,
            flags,
            addressFamily,
            compartmentId,
            interfaceIndex,
            netBufferList,
            completionFn,
            completionContext,
        )
    )


def FwpsInjectNetworkReceiveAsync0(
    injectionHandle: InjectionHandle,
    injectionContext: Any,
    flags: int,
    compartmentId: int,
    interfaceIndex: int,
    subInterfaceIndex: int,
    netBufferList: NetBufferList,
    completionFn: Any,
    completionContext: Any,
) -> NTSTATUS:
    """Into the receive path at the bottom (INBOUND_IPPACKET and up); the family is the
    handle's. Needs a FWPS_INJECTION_TYPE_NETWORK handle (else STATUS_FWP_INJECT_HANDLE_STALE)."""
    stack = _stack_of(injectionHandle)
    return as_status(
        lambda: stack.injector.network_receive(
            injectionHandle,
            injectionContext,
            flags,
            compartmentId,
            interfaceIndex,
            subInterfaceIndex,
            netBufferList,
            completionFn,
            completionContext,
        )
    )


def FwpsInjectNetworkSendAsync0(
    injectionHandle: InjectionHandle,
    injectionContext: Any,
    flags: int,
    compartmentId: int,
    netBufferList: NetBufferList,
    completionFn: Any,
    completionContext: Any,
) -> NTSTATUS:
    """Into the send path at OUTBOUND_IPPACKET. A packet larger than the interface MTU completes
    with STATUS_INVALID_BUFFER_SIZE in ``netBufferList.Status`` (B24, S-36). ``flags`` may be 0
    or FWPS_SEND_INJECT_PRESERVE_IPID."""
    stack = _stack_of(injectionHandle)
    return as_status(
        lambda: stack.injector.network_send(
            injectionHandle,
            injectionContext,
            flags,
            compartmentId,
            netBufferList,
            completionFn,
            completionContext,
        )
    )


def FwpsInjectTransportReceiveAsync0(
    injectionHandle: InjectionHandle,
    injectionContext: Any,
    reserved: Any,
    flags: int,
    addressFamily: int,
    compartmentId: int,
    interfaceIndex: int,
    subInterfaceIndex: int,
    netBufferList: NetBufferList,
    completionFn: Any,
    completionContext: Any,
) -> NTSTATUS:
    """Into the receive path at the bottom, bypassing IPsec (seed 002). The NBL starts at the IP
    header. TCP must be injected from a DPC/worker, not inline from a transport/ALE classifyFn
    (contract check ``tcp-inline``)."""
    stack = _stack_of(injectionHandle)
    return as_status(
        lambda: stack.injector.transport_receive(
            injectionHandle,
            injectionContext,
            reserved,
            flags,
            addressFamily,
            compartmentId,
            interfaceIndex,
            subInterfaceIndex,
            netBufferList,
            completionFn,
            completionContext,
        )
    )


def FwpsInjectTransportSendAsync0(
    injectionHandle: InjectionHandle,
    injectionContext: Any,
    endpointHandle: int,
    flags: int,
    sendArgs: FWPS_TRANSPORT_SEND_PARAMS0 | None,
    addressFamily: int,
    compartmentId: int,
    netBufferList: NetBufferList,
    completionFn: Any,
    completionContext: Any,
) -> NTSTATUS:
    """Into the send path at the top (ALE → DATAGRAM_DATA → OUTBOUND_TRANSPORT →
    OUTBOUND_IPPACKET). With ``sendArgs`` the NBL starts at the transport header and the stack
    builds the IP header (``remoteAddress`` read at send time, R8); with NULL ``sendArgs`` it is
    a raw send: the NBL starts at an IP header and must hold exactly one NET_BUFFER (seed 000).
    An endpoint closed before the send ran fails late: STATUS_INVALID_HANDLE in ``Status``
    ([emu] code; S-39)."""
    stack = _stack_of(injectionHandle)
    return as_status(
        lambda: stack.injector.transport_send(
            injectionHandle,
            injectionContext,
            endpointHandle,
            flags,
            sendArgs,
            addressFamily,
            compartmentId,
            netBufferList,
            completionFn,
            completionContext,
            version=0,
        )
    )


def FwpsInjectTransportSendAsync1(
    injectionHandle: InjectionHandle,
    injectionContext: Any,
    endpointHandle: int,
    flags: int,
    sendArgs: FWPS_TRANSPORT_SEND_PARAMS1 | None,
    addressFamily: int,
    compartmentId: int,
    netBufferList: NetBufferList,
    completionFn: Any,
    completionContext: Any,
) -> NTSTATUS:
    """As FwpsInjectTransportSendAsync0; ``sendArgs`` may carry ``headerIncludeHeader`` /
    ``headerIncludeHeaderLength`` (a raw header-include send: one NET_BUFFER only)."""
    stack = _stack_of(injectionHandle)
    return as_status(
        lambda: stack.injector.transport_send(
            injectionHandle,
            injectionContext,
            endpointHandle,
            flags,
            sendArgs,
            addressFamily,
            compartmentId,
            netBufferList,
            completionFn,
            completionContext,
            version=1,
        )
    )


def FwpsStreamInjectAsync0(
    injectionHandle: InjectionHandle,
    injectionContext: Any,
    flags: int,
    flowId: int,
    calloutId: int,
    layerId: int,
    streamFlags: int,
    netBufferList: NetBufferList | None,
    dataLength: int,
    completionFn: Any,
    completionContext: Any,
) -> NTSTATUS:
    """Into a TCP stream. Injected data is not re-indicated to ``calloutId``, only to
    lower-weight sublayers. A chain completes once per NBL; a NULL NBL with a *_DISCONNECT flag
    (FIN only, ``dataLength`` 0) never completes. Rules: completionFn required
    (STATUS_FWP_NULL_POINTER); DISCONNECT needs its direction bit, one direction only, no
    *_ABORT bits, layerId STREAM_V4/V6, a known flowId, ``dataLength`` equal to the chain's
    bytes (STATUS_FWP_INVALID_PARAMETER)."""
    stack = _stack_of(injectionHandle)
    return as_status(
        lambda: stack.injector.stream(
            injectionHandle,
            injectionContext,
            flags,
            flowId,
            calloutId,
            layerId,
            streamFlags,
            netBufferList,
            dataLength,
            completionFn,
            completionContext,
        )
    )


def FwpsInjectMacReceiveAsync0(
    injectionHandle: InjectionHandle,
    injectionContext: Any,
    flags: int,
    layerId: int,
    interfaceIndex: int,
    NdisPortNumber: int,
    netBufferLists: NetBufferList,
    completionFn: Any,
    completionContext: Any,
) -> NTSTATUS:
    """Back into the L2 inbound path (INBOUND_MAC_FRAME_ETHERNET: the NBL begins with the
    Ethernet header; _NATIVE: with the MAC header). L2 handles only
    (STATUS_FWP_INJECT_HANDLE_STALE). A chain completes once per NBL. completionFn may be NULL
    only for the stack's original NBLs."""
    stack = _stack_of(injectionHandle)
    return as_status(
        lambda: stack.injector.mac(
            injectionHandle,
            injectionContext,
            flags,
            layerId,
            interfaceIndex,
            NdisPortNumber,
            netBufferLists,
            completionFn,
            completionContext,
            send=False,
        )
    )


def FwpsInjectMacSendAsync0(
    injectionHandle: InjectionHandle,
    injectionContext: Any,
    flags: int,
    layerId: int,
    interfaceIndex: int,
    NdisPortNumber: int,
    netBufferLists: NetBufferList,
    completionFn: Any,
    completionContext: Any,
) -> NTSTATUS:
    """Into the L2 outbound path at OUTBOUND_MAC_FRAME_ETHERNET / _NATIVE (the NBL begins with
    the MAC header)."""
    stack = _stack_of(injectionHandle)
    return as_status(
        lambda: stack.injector.mac(
            injectionHandle,
            injectionContext,
            flags,
            layerId,
            interfaceIndex,
            NdisPortNumber,
            netBufferLists,
            completionFn,
            completionContext,
            send=True,
        )
    )


def FwpsInjectvSwitchEthernetIngressAsync0(
    injectionHandle: InjectionHandle,
    injectionContext: Any,
    flags: int,
    reserved: Any,
    vSwitchId: Any,
    vSwitchSourcePortId: int,
    vSwitchSourceNicIndex: int,
    netBufferLists: NetBufferList,
    completionFn: Any,
    completionContext: Any,
) -> NTSTATUS:
    """[emu] the Hyper-V switch is not modelled: after validation the frames are recorded as
    delivered to the vSwitch ingress (``destination == "vswitch"``); one completion per NBL."""
    stack = _stack_of(injectionHandle)
    return as_status(
        lambda: stack.injector.vswitch_ingress(
            injectionHandle,
            injectionContext,
            flags,
            reserved,
            vSwitchId,
            vSwitchSourcePortId,
            vSwitchSourceNicIndex,
            netBufferLists,
            completionFn,
            completionContext,
        )
    )


def FwpsReassembleForwardFragmentGroup0(
    addressFamily: int,
    fragmentGroupNblChain: NetBufferList,
    netBufferAndNetBufferListPoolHandle: Any,
    dataBackFill: int,
    flags: int,
) -> tuple[NTSTATUS, NetBufferList | None]:
    """``(status, reassembledNbl)``: one NBL (one NET_BUFFER, data copied, ``dataBackFill``
    bytes of headroom, injection history of the chain's head) for a fragment-group chain, ready
    for FwpsInjectForwardAsync0; free it with FwpsFreeNetBufferList0. An incomplete, mixed or
    (IPv6) overlapping group fails with STATUS_INVALID_PARAMETER."""
    stack = current_stack()
    if not stack.tcpip_ready:
        return S.STATUS_FWP_TCPIP_NOT_READY, None
    if flags:
        return S.STATUS_FWP_INVALID_PARAMETER, None
    if addressFamily not in (AF_INET, AF_INET6) or fragmentGroupNblChain is None:
        return S.STATUS_INVALID_PARAMETER, None
    packets = []
    cur = fragmentGroupNblChain
    for _ in range(1 << 16):
        if cur is None:
            break
        packets.append(b"".join(nb.tobytes() for nb in cur.net_buffers))
        cur = cur.Next
    try:
        whole = reassemble_group(packets)
        if (whole[0] >> 4 == 4) != (addressFamily == AF_INET):
            return S.STATUS_INVALID_PARAMETER, None
        nbl = NetBufferList.from_bytes(whole, dataBackFill)
    except (InvalidParameterError, MalformedPacketError):
        return S.STATUS_INVALID_PARAMETER, None
    nbl.set_info(10, fragmentGroupNblChain.get_info(10))
    return STATUS_SUCCESS, nbl


def FwpsConstructIpHeaderForTransportPacket0(
    netBufferList: NetBufferList,
    headerIncludeHeaderLength: int,
    addressFamily: int,
    sourceAddress: bytes,
    remoteAddress: bytes,
    nextProtocol: int,
    endpointHandle: int,
    controlData: Any,
    controlDataLength: int,
    flags: int,
    reserved: Any,
    interfaceIndex: int,
    subInterfaceIndex: int,
) -> NTSTATUS:
    """Builds an IP header in front of each NET_BUFFER (offset at the transport header,
    ``headerIncludeHeaderLength`` 0), or replaces the existing one of that length (one
    NET_BUFFER only) — dropping AH/ESP/extension headers, keeping IPv4 options — and computes the
    full TCP/UDP/ICMP checksum and the IPv4 header checksum; clears the checksum-offload and LSO
    info (injection.md §7). Addresses are network-order bytes."""
    if netBufferList is None or sourceAddress is None or remoteAddress is None:
        return S.STATUS_FWP_NULL_POINTER
    if flags or reserved is not None:
        return S.STATUS_FWP_INVALID_PARAMETER
    want = 4 if addressFamily == AF_INET else 16
    if (
        addressFamily not in (AF_INET, AF_INET6)
        or len(bytes(sourceAddress)) != want
        or len(bytes(remoteAddress)) != want
    ):
        return S.STATUS_INVALID_PARAMETER
    src, dst = bytes(sourceAddress), bytes(remoteAddress)
    nbs = netBufferList.net_buffers
    if headerIncludeHeaderLength and len(nbs) != 1:
        return S.STATUS_INVALID_PARAMETER
    options = b""
    if headerIncludeHeaderLength:
        old = nbs[0].tobytes()[:headerIncludeHeaderLength]
        if old and old[0] >> 4 == 4 and len(old) >= 20:
            ihl = (old[0] & 0x0F) * 4
            options = (
                old[20 : min(ihl, headerIncludeHeaderLength)] if addressFamily == AF_INET else b""
            )
        for nb in nbs:
            nb.advance(headerIncludeHeaderLength, False)
    from wfpsim.stack.paths import _nb_write

    for nb in nbs:
        segment = bytearray(nb.tobytes())
        _fix_transport_checksum(segment, src, dst, nextProtocol)
        if addressFamily == AF_INET:
            header = IP.ipv4_header(src, dst, nextProtocol, len(segment), options=options)
        else:
            header = IP.ipv6_header(src, dst, nextProtocol, len(segment))
        nb.retreat(len(header), 0)
        _nb_write(nb, 0, header + bytes(segment))
    netBufferList.set_info(0, 0)  # TcpIpChecksumNetBufferListInfo: no offload
    netBufferList.set_info(2, 0)  # TcpLargeSendNetBufferListInfo
    return STATUS_SUCCESS


def _fix_transport_checksum(segment: bytearray, src: bytes, dst: bytes, proto: int) -> None:
    if proto == IP.IPPROTO_UDP and len(segment) >= 8:
        struct.pack_into("!H", segment, 6, 0)
        struct.pack_into("!H", segment, 6, IP.transport_checksum(src, dst, proto, bytes(segment)))
    elif proto == IP.IPPROTO_TCP and len(segment) >= 20:
        struct.pack_into("!H", segment, 16, 0)
        struct.pack_into("!H", segment, 16, IP.transport_checksum(src, dst, proto, bytes(segment)))
    elif proto == IP.IPPROTO_ICMP and len(segment) >= 4:
        struct.pack_into("!H", segment, 2, 0)
        struct.pack_into("!H", segment, 2, IP.internet_checksum(bytes(segment)))
    elif proto == IP.IPPROTO_ICMPV6 and len(segment) >= 4:
        struct.pack_into("!H", segment, 2, 0)
        struct.pack_into("!H", segment, 2, IP.transport_checksum(src, dst, proto, bytes(segment)))


# Version-independent names (fwpvi.h; injection.md intro): the samples use these.
FwpsInjectionHandleCreate = FwpsInjectionHandleCreate0
FwpsInjectionHandleDestroy = FwpsInjectionHandleDestroy0
FwpsQueryPacketInjectionState = FwpsQueryPacketInjectionState0
FwpsInjectForwardAsync = FwpsInjectForwardAsync0
FwpsInjectNetworkReceiveAsync = FwpsInjectNetworkReceiveAsync0
FwpsInjectNetworkSendAsync = FwpsInjectNetworkSendAsync0
FwpsInjectTransportReceiveAsync = FwpsInjectTransportReceiveAsync0
FwpsInjectTransportSendAsync = FwpsInjectTransportSendAsync1
FWPS_TRANSPORT_SEND_PARAMS = FWPS_TRANSPORT_SEND_PARAMS1
FwpsStreamInjectAsync = FwpsStreamInjectAsync0
FwpsInjectMacReceiveAsync = FwpsInjectMacReceiveAsync0
FwpsInjectMacSendAsync = FwpsInjectMacSendAsync0
FwpsInjectvSwitchEthernetIngressAsync = FwpsInjectvSwitchEthernetIngressAsync0
FwpsReassembleForwardFragmentGroup = FwpsReassembleForwardFragmentGroup0
FwpsConstructIpHeaderForTransportPacket = FwpsConstructIpHeaderForTransportPacket0
FwpsGetPacketListSecurityInformation = FwpsGetPacketListSecurityInformation0

__all__ = [
    "FwpsInjectionHandleCreate0",
    "FwpsInjectionHandleDestroy0",
    "FwpsQueryPacketInjectionState0",
    "FwpsInjectForwardAsync0",
    "FwpsInjectNetworkReceiveAsync0",
    "FwpsInjectNetworkSendAsync0",
    "FwpsInjectTransportReceiveAsync0",
    "FwpsInjectTransportSendAsync0",
    "FwpsInjectTransportSendAsync1",
    "FwpsStreamInjectAsync0",
    "FwpsInjectMacReceiveAsync0",
    "FwpsInjectMacSendAsync0",
    "FwpsInjectvSwitchEthernetIngressAsync0",
    "FwpsReassembleForwardFragmentGroup0",
    "FwpsConstructIpHeaderForTransportPacket0",
    "FWPS_TRANSPORT_SEND_PARAMS0",
    "FWPS_TRANSPORT_SEND_PARAMS1",
    "FWPS_TRANSPORT_SEND_PARAMS",
    "FwpsInjectionHandleCreate",
    "FwpsInjectionHandleDestroy",
    "FwpsQueryPacketInjectionState",
    "FwpsInjectForwardAsync",
    "FwpsInjectNetworkReceiveAsync",
    "FwpsInjectNetworkSendAsync",
    "FwpsInjectTransportReceiveAsync",
    "FwpsInjectTransportSendAsync",
    "FwpsStreamInjectAsync",
    "FwpsInjectMacReceiveAsync",
    "FwpsInjectMacSendAsync",
    "FwpsInjectvSwitchEthernetIngressAsync",
    "FwpsReassembleForwardFragmentGroup",
    "FwpsConstructIpHeaderForTransportPacket",
    "FwpsGetPacketListSecurityInformation0",
    "FwpsGetPacketListSecurityInformation",
    "FWPS_PACKET_LIST_INFORMATION0",
    "FWPS_PACKET_LIST_IPSEC_INFORMATION0",
    "FWPS_PACKET_LIST_INBOUND_IPSEC_INFORMATION0",
]
