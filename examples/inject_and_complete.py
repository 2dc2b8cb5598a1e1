"""Inject a packet and complete it: the WDK face and the Pythonic face of the injection API.

Run: ``python examples/inject_and_complete.py``
"""

from __future__ import annotations

import wfpsim
from wfpsim import wdk
from wfpsim.stack import ip
from wfpsim.wdk import AF_INET, FWPS_INJECTION_TYPE_NETWORK, STATUS_SUCCESS


def main() -> list[str]:
    log: list[str] = []
    stack = wfpsim.Stack()
    stack.add_interface(
        index=1, addresses=["192.0.2.1/24"], mtu=1500, mac=bytes.fromhex("020000000001")
    )

    # an IPv4/UDP packet from this host to 192.0.2.99:53
    src, dst = ip.addr_bytes("192.0.2.1"), ip.addr_bytes("192.0.2.99")
    udp = ip.udp_datagram(src, dst, 40000, 53, b"hello, wire")
    packet = ip.ip_header(src, dst, ip.IPPROTO_UDP, len(udp)) + udp

    # -- the WDK face: exact names, statuses, completion (context, NBL, dispatchLevel) --
    def completion(context, netBufferList, dispatchLevel):  # noqa: N803
        log.append(
            f"completed {context}: Status=0x{netBufferList.Status:08X} dispatchLevel={dispatchLevel}"
        )
        wdk.FwpsFreeNetBufferList0(netBufferList)

    with stack:  # handles belong to the current stack
        status, handle = wdk.FwpsInjectionHandleCreate0(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    assert status == STATUS_SUCCESS
    nbl = wfpsim.NetBufferList.from_bytes(packet)
    status = wdk.FwpsInjectNetworkSendAsync0(handle, None, 0, 0, nbl, completion, "wdk")
    assert status == STATUS_SUCCESS  # injection initiated; the completion has not run yet
    state, _ = wdk.FwpsQueryPacketInjectionState0(handle, nbl)
    log.append(f"state {state.name}")
    log.append(f"run() ran {stack.run()} work item(s)")  # the completion runs here
    sent = stack.delivered[-1]
    log.append(f"{sent.function} -> {sent.destination} on interface {sent.interface_index}")

    # -- the Pythonic face: the same engine, exceptions instead of statuses --
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    stack.inject_network_send(
        h,
        wfpsim.NetBufferList.from_bytes(packet),
        completion=completion,
        completion_context="pythonic",
    )
    stack.run()

    assert wdk.FwpsInjectionHandleDestroy0(handle) == STATUS_SUCCESS
    h.destroy()
    assert wfpsim.leak_report() == []
    return log


if __name__ == "__main__":
    for line in main():
        print(line)
