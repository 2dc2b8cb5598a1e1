"""Replay's native inject stage: the inject call's checks per packet, completions with Status,
and injection state that FwpsQueryPacketInjectionState0 reads back."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

import wfpsim
from wfpsim import wdk
from wfpsim.replay_inject import make_injector

HTTP = Path(__file__).resolve().parent.parent / "data" / "http.pcap"


def ipv4(length: int) -> bytes:
    return struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, length, 0, 0, 64, 17, 0, b"\xc0\0\2\1", b"\xc0\0\2\2"
    ) + bytes(length - 20)


def test_completion_status_state_and_rejections(no_leaks):
    stack = wfpsim.Stack()
    stack.add_interface(index=1, addresses=["192.0.2.1/24"], mtu=1500, mac=bytes(6))
    inject = make_injector("FwpsInjectNetworkSendAsync0", stack=stack)
    ipv6 = struct.pack("!IHBB", 6 << 28, 0, 59, 64) + bytes(32)
    with wfpsim.chain_from_packets([ipv4(100), ipv4(1600), b"\x00" * 40, ipv6]) as chain:
        counts = inject(chain)
        assert counts["injected"] == 3 and counts["completed"] == 3 and counts["failed"] == 1
        assert counts["rejected"] == 1 and "IPv4/IPv6" in counts["first_rejection"]
        ok, big, junk, six = chain.tolist()
        assert ok.Status == wdk.STATUS_SUCCESS
        assert big.Status == wdk.STATUS_INVALID_BUFFER_SIZE
        v4_handle, v6_handle = inject.handles
        assert stack.injection_state(v4_handle, ok)[0] == wdk.FWPS_PACKET_INJECTED_BY_SELF
        assert stack.injection_state(v6_handle, six)[0] == wdk.FWPS_PACKET_INJECTED_BY_SELF
        assert stack.injection_state(v6_handle, ok)[0] == wdk.FWPS_PACKET_INJECTED_BY_OTHER
        assert stack.injection_state(v4_handle, junk)[0] == wdk.FWPS_PACKET_NOT_INJECTED
    for h in inject.handles:
        h.destroy()


def test_a_closing_handle_refuses_the_batch(no_leaks):
    stack = wfpsim.Stack()
    inject = make_injector("FwpsInjectMacSendAsync0", stack=stack)
    stack.tcpip_ready = False
    stack.l2_ready = False
    with wfpsim.chain_from_packets([bytes(60)]) as chain:
        with pytest.raises(wfpsim.WfpError) as err:
            inject(chain)
        assert err.value.status == wdk.STATUS_FWP_TCPIP_NOT_READY


def test_unknown_function():
    with pytest.raises(ValueError, match="unsupported inject function"):
        make_injector("FwpsInjectNothingAsync0")


def test_replay_with_inject_writes_what_left(tmp_path):
    out = tmp_path / "o.pcap"
    s = wfpsim.replay(
        HTTP, out, pipeline="strip-link", inject=make_injector("FwpsInjectNetworkSendAsync0")
    )
    assert s.inject["completed"] == s.packets == 43 and s.records_written == 43
    # Ethernet frames are not IP packets: a network send refuses them, and nothing is written.
    s = wfpsim.replay(HTTP, out, inject=make_injector("FwpsInjectNetworkSendAsync0"))
    assert s.inject["rejected"] == 43 and s.records_written == 0
    # ... while a MAC send takes them as they are.
    s = wfpsim.replay(HTTP, out, inject=make_injector("FwpsInjectMacSendAsync0"))
    assert s.inject["completed"] == 43 and s.records_written == 43


def test_cli_inject_flag():
    r = subprocess.run(
        [sys.executable, "-m", "wfpsim", "replay", str(HTTP), "--inject", "FwpsInjectBogus0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "unsupported inject function" in r.stderr
