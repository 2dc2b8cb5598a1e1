"""A valid call of every inject function (WDK face), so tests can break one rule at a time."""

from __future__ import annotations

from typing import Any

from fakes import A4, Completions, frame, udp_packet

import wfpsim
from wfpsim import wdk
from wfpsim.constants import (
    AF_INET,
    FWPS_INJECTION_TYPE_FORWARD,
    FWPS_INJECTION_TYPE_L2,
    FWPS_INJECTION_TYPE_NETWORK,
    FWPS_INJECTION_TYPE_STREAM,
    FWPS_INJECTION_TYPE_TRANSPORT,
    FWPS_LAYER_INBOUND_MAC_FRAME_ETHERNET,
    FWPS_LAYER_OUTBOUND_MAC_FRAME_ETHERNET,
    FWPS_LAYER_STREAM_V4,
    FWPS_STREAM_FLAG_SEND,
)
from wfpsim.fwps_types import FWP_BYTE_BLOB
from wfpsim.stack import ip as IP

FUNCTIONS = {
    # name: (required injection type)
    "FwpsInjectForwardAsync0": FWPS_INJECTION_TYPE_FORWARD,
    "FwpsInjectNetworkReceiveAsync0": FWPS_INJECTION_TYPE_NETWORK,
    "FwpsInjectNetworkSendAsync0": FWPS_INJECTION_TYPE_NETWORK,
    "FwpsInjectTransportReceiveAsync0": FWPS_INJECTION_TYPE_TRANSPORT,
    "FwpsInjectTransportSendAsync0": FWPS_INJECTION_TYPE_TRANSPORT,
    "FwpsInjectTransportSendAsync1": FWPS_INJECTION_TYPE_TRANSPORT,
    "FwpsStreamInjectAsync0": FWPS_INJECTION_TYPE_STREAM,
    "FwpsInjectMacReceiveAsync0": FWPS_INJECTION_TYPE_L2,
    "FwpsInjectMacSendAsync0": FWPS_INJECTION_TYPE_L2,
    "FwpsInjectvSwitchEthernetIngressAsync0": FWPS_INJECTION_TYPE_L2,
}

FORWARD_SRC = IP.addr_bytes("198.51.100.7")
FORWARD_DST = IP.addr_bytes("203.0.113.9")


class Call:
    """Arguments of one valid call of ``name`` on ``stack`` (interface 1 = 192.0.2.1/24, MAC)."""

    def __init__(self, stack: wfpsim.Stack, name: str, handle: Any, **override: Any) -> None:
        self.stack = stack
        self.name = name
        self.done = Completions()
        self.nbl: Any = None
        self.args = self._args(handle)
        self.args.update(override)

    def _args(self, handle: Any) -> dict[str, Any]:
        s = self.stack
        base: dict[str, Any] = dict(
            injectionHandle=handle,
            injectionContext=None,
            completionFn=self.done,
            completionContext="ctx",
        )
        if self.name == "FwpsInjectForwardAsync0":
            self.nbl = wfpsim.NetBufferList.from_bytes(
                udp_packet(FORWARD_SRC, FORWARD_DST, 1, 2, b"fw")
            )
            return base | dict(
                flags=0,
                addressFamily=AF_INET,
                compartmentId=0,
                interfaceIndex=1,
                netBufferList=self.nbl,
            )
        if self.name == "FwpsInjectNetworkReceiveAsync0":
            self.nbl = wfpsim.NetBufferList.from_bytes(udp_packet(FORWARD_SRC, A4, 1, 9, b"nr"))
            return base | dict(
                flags=0,
                compartmentId=0,
                interfaceIndex=1,
                subInterfaceIndex=0,
                netBufferList=self.nbl,
            )
        if self.name == "FwpsInjectNetworkSendAsync0":
            self.nbl = wfpsim.NetBufferList.from_bytes(udp_packet(A4, FORWARD_DST, 1, 9, b"ns"))
            return base | dict(flags=0, compartmentId=0, netBufferList=self.nbl)
        if self.name == "FwpsInjectTransportReceiveAsync0":
            self.nbl = wfpsim.NetBufferList.from_bytes(udp_packet(FORWARD_SRC, A4, 1, 9, b"tr"))
            return base | dict(
                reserved=None,
                flags=0,
                addressFamily=AF_INET,
                compartmentId=0,
                interfaceIndex=1,
                subInterfaceIndex=0,
                netBufferList=self.nbl,
            )
        if self.name.startswith("FwpsInjectTransportSendAsync"):
            self.endpoint = s.open_endpoint(
                address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=5555
            )
            seg = IP.udp_datagram(A4, FORWARD_DST, 5555, 53, b"ts")
            self.nbl = wfpsim.NetBufferList.from_bytes(seg, 64)
            params = wdk.FWPS_TRANSPORT_SEND_PARAMS1(remoteAddress=bytearray(FORWARD_DST))
            return base | dict(
                endpointHandle=self.endpoint.handle,
                flags=0,
                sendArgs=params,
                addressFamily=AF_INET,
                compartmentId=0,
                netBufferList=self.nbl,
            )
        if self.name == "FwpsStreamInjectAsync0":
            self.flow = s.open_tcp_flow(
                address_family=AF_INET, local=("192.0.2.1", 40000), remote=("192.0.2.2", 80)
            )
            self.nbl = wfpsim.NetBufferList.from_bytes(b"GET / HTTP/1.0\r\n\r\n")
            return base | dict(
                flags=0,
                flowId=self.flow.flow_id,
                calloutId=7,
                layerId=FWPS_LAYER_STREAM_V4,
                streamFlags=FWPS_STREAM_FLAG_SEND,
                netBufferList=self.nbl,
                dataLength=18,
            )
        if self.name in ("FwpsInjectMacReceiveAsync0", "FwpsInjectMacSendAsync0"):
            pkt = udp_packet(FORWARD_SRC, A4, 1, 9, b"mac")
            self.nbl = wfpsim.NetBufferList.from_bytes(frame(pkt))
            layer = (
                FWPS_LAYER_INBOUND_MAC_FRAME_ETHERNET
                if "Receive" in self.name
                else FWPS_LAYER_OUTBOUND_MAC_FRAME_ETHERNET
            )
            return base | dict(
                flags=0, layerId=layer, interfaceIndex=1, NdisPortNumber=0, netBufferLists=self.nbl
            )
        if self.name == "FwpsInjectvSwitchEthernetIngressAsync0":
            self.nbl = wfpsim.NetBufferList.from_bytes(
                frame(udp_packet(FORWARD_SRC, A4, 1, 9, b"vs"))
            )
            return base | dict(
                flags=0,
                reserved=None,
                vSwitchId=FWP_BYTE_BLOB(4, b"vsw1"),
                vSwitchSourcePortId=2,
                vSwitchSourceNicIndex=0,
                netBufferLists=self.nbl,
            )
        raise AssertionError(self.name)

    def __call__(self) -> Any:
        return getattr(wdk, self.name)(**self.args)

    def cleanup(self, status: int) -> None:
        """After a failed call the caller still owns the NBL (injection.md §3.2)."""
        passed = self.args.get("netBufferList", self.args.get("netBufferLists"))
        if self.nbl is not None and self.nbl.alive and (status != 0 or passed is not self.nbl):
            self.nbl.free()
