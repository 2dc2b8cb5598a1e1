"""Inject + complete per NBL from Python: single NBLs and a chain in one call, against a
comparable pure-Python injection queue in the same run (pytest-benchmark).

Run: ``python -m pytest benches/bench_inject.py --benchmark-only``
Each benchmark processes N packets; the figure to compare is time per packet (mean / N).
"""

from __future__ import annotations

from collections import deque

import pytest

import wfpsim
from wfpsim import wdk
from wfpsim.constants import (
    AF_INET,
    FWPS_INJECTION_TYPE_L2,
    FWPS_INJECTION_TYPE_NETWORK,
    FWPS_LAYER_OUTBOUND_MAC_FRAME_ETHERNET,
)
from wfpsim.stack import ip as IP

N = 1000
SRC, DST = IP.addr_bytes("192.0.2.1"), IP.addr_bytes("192.0.2.99")
MAC = bytes.fromhex("020000000001")


def packet(i: int) -> bytes:
    seg = IP.udp_datagram(SRC, DST, 1024 + i % 1000, 53, bytes(64))
    return IP.ip_header(SRC, DST, 17, len(seg)) + seg


PACKETS = [packet(i) for i in range(N)]
FRAMES = [IP.ethernet_header(MAC, MAC, 0x0800) + p for p in PACKETS]


def new_stack(contracts: str) -> wfpsim.Stack:
    stack = wfpsim.Stack(contracts=contracts)
    stack.add_interface(index=1, addresses=["192.0.2.1/24"], mac=MAC)
    return stack


def free(ctx, nbl, dispatch_level):
    nbl.Next = None
    nbl.free()


@pytest.mark.parametrize("contracts", ["raise", "off"])
def test_network_send_single(benchmark, contracts):
    """One FwpsInjectNetworkSendAsync0 per NBL, then stack.run() completes them all."""
    stack = new_stack(contracts)
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)

    def setup():
        stack.delivered.clear()
        stack.wire.clear()
        stack.injections.clear()
        return (wfpsim.chain_from_packets(PACKETS).tolist(),), {}

    def run(nbls):
        inject = wdk.FwpsInjectNetworkSendAsync0
        for nbl in nbls:
            nbl.Next = None
            inject(h, None, 0, 0, nbl, free, None)
        stack.run()

    benchmark.pedantic(run, setup=setup, rounds=5, iterations=1)
    assert len(stack.wire) == N and h.in_flight == 0


@pytest.mark.parametrize("mode", ["single", "batch"])
def test_mac_send(benchmark, mode):
    """FwpsInjectMacSendAsync0 (accepts chains): one call per NBL vs one call for a chain of N
    NBLs (completion once per NBL either way)."""
    stack = new_stack("off")
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_L2)

    def setup():
        stack.delivered.clear()
        stack.wire.clear()
        stack.injections.clear()
        chain = wfpsim.chain_from_packets(FRAMES)
        return (chain.head, chain.tolist()), {}

    def run(head, nbls):
        if mode == "batch":
            wdk.FwpsInjectMacSendAsync0(
                h, None, 0, FWPS_LAYER_OUTBOUND_MAC_FRAME_ETHERNET, 1, 0, head, free, None
            )
        else:
            for nbl in nbls:
                nbl.Next = None
                wdk.FwpsInjectMacSendAsync0(
                    h, None, 0, FWPS_LAYER_OUTBOUND_MAC_FRAME_ETHERNET, 1, 0, nbl, free, None
                )
        stack.run()

    benchmark.pedantic(run, setup=setup, rounds=5, iterations=1)
    assert len(stack.wire) == N and h.in_flight == 0


def test_pure_python_baseline(benchmark):
    """The same shape of work in plain Python: validate, queue, dequeue, parse the IP header,
    record the packet, call the completion, free — the floor an injection queue in Python has."""
    import struct

    def run():
        queue: deque = deque()
        wire = []
        done = []

        def completion(ctx, pkt, dispatch_level):
            done.append(ctx)

        for i, p in enumerate(PACKETS):  # "inject": validate and queue
            if p[0] >> 4 != 4:
                raise ValueError
            queue.append((bytearray(p), completion, i))
        while queue:  # "run": process and complete
            pkt, fn, ctx = queue.popleft()
            ihl = (pkt[0] & 15) * 4
            total = struct.unpack_from("!H", pkt, 2)[0]
            if total > 1500 or ihl < 20:
                continue
            wire.append(bytes(pkt))
            fn(ctx, pkt, True)
        assert len(wire) == N

    benchmark.pedantic(run, rounds=5, iterations=1)
