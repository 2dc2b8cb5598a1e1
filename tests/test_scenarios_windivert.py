"""WinDivert's diversion logic (samples.md §5) as a small callout written here (our own code),
run on the real stack and filter engine: §9.5, S-34 … S-37."""

from __future__ import annotations

import struct
import uuid

from scenariokit import FAMILIES, assert_quiet, host, ip_packets, transport_of, udp

import wfpsim
from wfpsim import Mdl, wdk
from wfpsim.constants import (
    AF_INET,
    FWP_ACTION_BLOCK,
    FWP_ACTION_CALLOUT_UNKNOWN,
    FWP_ACTION_CONTINUE,
    FWPS_CLASSIFY_OUT_FLAG_ABSORB,
    FWPS_INJECTION_TYPE_FORWARD,
    FWPS_INJECTION_TYPE_NETWORK,
    FWPS_LAYER_OUTBOUND_IPPACKET_V4,
    FWPS_PACKET_INJECTED_BY_OTHER,
    FWPS_PACKET_INJECTED_BY_SELF,
    FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF,
    FWPS_RIGHT_ACTION_WRITE,
    IPPROTO_UDP,
)
from wfpsim.stack import ip as IP
from wfpsim.status import NTSTATUS

S = NTSTATUS
SUBLAYER = uuid.UUID("a3b2c1d0-0000-4000-8000-00000000d1f7")


class WinDivertDriver:
    """The driver: one NETWORK|FORWARD handle shared by every user handle (§5, outbound IPv4
    only here), a sublayer; each :class:`Divert` user handle adds a filter weighted by its
    priority."""

    def __init__(self, stack):
        self.stack = stack
        with stack:
            _, self.handle = wdk.FwpsInjectionHandleCreate0(
                AF_INET, FWPS_INJECTION_TYPE_NETWORK | FWPS_INJECTION_TYPE_FORWARD
            )
        stack.filter_engine.add_sublayer(SUBLAYER, 0x1000)
        self.completions: list[int] = []
        self.icmp_sent: list[bytes] = []

    def reinject(self, packet: bytes, priority: int, *, impostor: bool = False) -> int:
        """The user's WinDivertSend: checksums, impostor TTL handling, an NBL over an MDL over
        the bytes, FwpsInjectNetworkSendAsync0 with the priority as injectionContext."""
        data = bytearray(packet)
        if impostor:
            if data[8] <= 1:
                return S.STATUS_HOPLIMIT_EXCEEDED  # breaks loops between two injectors
            data[8] -= 1
            IP.fix_ipv4_checksum(data)
        mdl = Mdl.allocate(data)
        status, nbl = wdk.FwpsAllocateNetBufferAndNetBufferList0(None, 0, 0, mdl, 0, len(data))
        status = wdk.FwpsInjectNetworkSendAsync0(
            self.handle, priority, 0, 0, nbl, self.complete, (mdl, bytes(data))
        )
        if status != S.STATUS_SUCCESS:  # no completion will come: free everything now (R6)
            wdk.FwpsFreeNetBufferList0(nbl)
            mdl.free()
        return status

    def complete(self, context, nbl, dispatch_level):
        mdl, data = context
        self.completions.append(int(nbl.Status))
        if nbl.Status == S.STATUS_INVALID_BUFFER_SIZE:
            self._fragmentation_needed(data)
        wdk.FwpsFreeNetBufferList0(nbl)
        mdl.free()

    def _fragmentation_needed(self, data: bytes) -> None:
        """PMTU discovery: an ICMP "fragmentation needed" toward the sender, receive-injected."""
        info = IP.parse_ip(data)
        iface = self.stack.interfaces[1]
        body = struct.pack("!HH", 0, iface.mtu) + data[: info.header_length + 8]
        icmp = bytearray(struct.pack("!BBH", 3, 4, 0) + body)
        struct.pack_into("!H", icmp, 2, IP.internet_checksum(bytes(icmp)))
        packet = IP.ip_header(info.dst, info.src, 1, len(icmp), ttl=64) + bytes(icmp)
        nbl = wfpsim.NetBufferList.from_bytes(packet)
        self.icmp_sent.append(packet)
        status = wdk.FwpsInjectNetworkReceiveAsync0(
            self.handle, None, 0, 0, 1, 0, nbl, lambda c, n, d: n.free(), None
        )
        assert status == S.STATUS_SUCCESS


class Divert:
    """One user-mode WinDivert handle: a priority, a filter predicate on the packet bytes, and
    the queue the user reads (``recv``)."""

    def __init__(self, driver: WinDivertDriver, priority: int, match=lambda packet: True):
        self.driver, self.priority, self.match = driver, priority, match
        self.queue: list[tuple[bytes, bool]] = []  # (packet, impostor)
        self.states: list[tuple[int, object]] = []
        engine = driver.stack.filter_engine
        key = f"windivert-{priority}"
        engine.register_callout(self.classify, key=key, version=0)
        self.filter_id = engine.add_filter(
            FWPS_LAYER_OUTBOUND_IPPACKET_V4,
            FWP_ACTION_CALLOUT_UNKNOWN,
            callout_key=key,
            sublayer=SUBLAYER,
            weight=priority,
        )
        self.key = key

    def close(self):
        engine = self.driver.stack.filter_engine
        engine.delete_filter(self.filter_id)
        engine.unregister_callout(key=self.key)

    def classify(self, values, meta, nbl, flt, flow_context, out):
        if not out.rights & FWPS_RIGHT_ACTION_WRITE or nbl is None:  # 1.
            return
        out.actionType = FWP_ACTION_CONTINUE  # 3.
        state, stored = wdk.FwpsQueryPacketInjectionState0(self.driver.handle, nbl)  # 4.
        self.states.append((int(state), stored))
        if state in (FWPS_PACKET_INJECTED_BY_SELF, FWPS_PACKET_PREVIOUSLY_INJECTED_BY_SELF):
            if stored <= self.priority:
                return
        impostor = state == FWPS_PACKET_INJECTED_BY_OTHER
        packets = [nb.tobytes() for nb in nbl.net_buffers]  # 5. (outbound: at the IP header)
        matches = [self.match(p) for p in packets]
        if not any(matches):
            return
        for packet, matched in zip(packets, matches, strict=True):
            if matched:
                self.queue.append((packet, impostor))
            else:  # re-injected at once, to keep the order
                self.driver.reinject(packet, self.priority, impostor=impostor)
        out.actionType = FWP_ACTION_BLOCK
        out.rights &= ~FWPS_RIGHT_ACTION_WRITE
        out.flags |= FWPS_CLASSIFY_OUT_FLAG_ABSORB

    def send_all(self):
        """The user re-injects everything it received."""
        statuses = [self.driver.reinject(p, self.priority, impostor=i) for p, i in self.queue]
        self.queue.clear()
        return statuses


def setup(**kwargs):
    stack = host(**kwargs)
    driver = WinDivertDriver(stack)
    af, local, peer, _ = FAMILIES["v4"]
    app = stack.open_endpoint(af, IPPROTO_UDP, local, 4000)
    return stack, driver, app, peer


def finish(stack, driver, *items):
    for x in items:
        x.close()
    stack.run()
    wdk.FwpsInjectionHandleDestroy0(driver.handle)
    assert_quiet(stack)


def test_s34_priorities_divert_once_per_handle(no_leaks):
    """S-34: two diversion handles, priorities 20 and 10, on the same layer: the packet is
    diverted by 20, re-injected with injectionContext 20; 20 then sees SELF/20 and lets it pass,
    10 diverts it; re-injected with 10, both skip it; one packet on the wire."""
    stack, driver, app, peer = setup()
    high, low = Divert(driver, 20), Divert(driver, 10)
    stack.send(app, b"divert me", (peer, 53))
    assert len(high.queue) == 1 and low.queue == [] and low.states == []  # no write right
    assert high.send_all() == [S.STATUS_SUCCESS]
    stack.run()
    assert len(low.queue) == 1
    low.send_all()
    stack.run()
    self_ = int(FWPS_PACKET_INJECTED_BY_SELF)
    assert high.states == [(0, None), (self_, 20), (self_, 10)]
    assert low.states == [(self_, 20), (self_, 10)]
    assert [transport_of(p)[2] for p in ip_packets(stack)] == [b"divert me"]
    assert driver.completions == [0, 0]
    finish(stack, driver, high, low, app)


def test_s35_impostor_ttl_decrement_and_hop_limit(no_leaks):
    """S-35: a packet injected by a foreign handle (INJECTED_BY_OTHER) is diverted, flagged
    impostor and re-injected with TTL - 1; with TTL 1 the re-injection is refused with
    STATUS_HOPLIMIT_EXCEEDED (and nothing is sent)."""
    stack, driver, app, peer = setup()
    div = Divert(driver, 5)
    foreign = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    done = []
    for ttl in (64, 1):
        src, dst = IP.addr_bytes("192.0.2.1"), IP.addr_bytes(peer)
        segment = IP.udp_datagram(src, dst, 1, 2, b"imp")
        packet = IP.ip_header(src, dst, 17, len(segment), ttl=ttl) + segment
        nbl = wfpsim.NetBufferList.from_bytes(packet)
        stack.inject_network_send(
            foreign, nbl, completion=lambda c, n, d: (done.append(n.Status), n.free())
        )
    stack.run()
    assert [i for _, i in div.queue] == [True, True]
    assert div.states == [(int(FWPS_PACKET_INJECTED_BY_OTHER), None)] * 2
    assert div.send_all() == [S.STATUS_SUCCESS, S.STATUS_HOPLIMIT_EXCEEDED]
    stack.run()
    [sent] = ip_packets(stack)
    assert IP.parse_ip(sent).ttl == 63 and done == [0, 0]
    foreign.destroy()
    finish(stack, driver, div, app)


def test_s36_oversize_reinjection_and_pmtu(no_leaks):
    """S-36: the user re-injects a packet larger than the interface MTU: the completion carries
    STATUS_INVALID_BUFFER_SIZE; WinDivert then injects an ICMP "fragmentation needed" toward the
    source, which the sending socket receives as an ICMP error."""
    stack, driver, app, peer = setup(mtu=576)
    div = Divert(driver, 1)
    stack.send(app, b"small", (peer, 53))
    packet, _ = div.queue.pop()
    big = bytearray(packet[:20]) + IP.udp_datagram(
        IP.addr_bytes("192.0.2.1"), IP.addr_bytes(peer), 4000, 53, bytes(1000)
    )
    big[2:4] = len(big).to_bytes(2, "big")
    big[6] |= 0x40  # DF
    IP.fix_ipv4_checksum(big)
    assert driver.reinject(bytes(big), 1) == S.STATUS_SUCCESS
    stack.run()
    assert driver.completions[0] == S.STATUS_INVALID_BUFFER_SIZE == 0xC0000206
    assert len(driver.icmp_sent) == 1 and stack.wire == []
    assert [(d.remote_address, d.remote_port) for d in app.received] == [(peer, -1)]
    finish(stack, driver, div, app)


def test_s37_multi_nb_nbl_copied_out_in_order(no_leaks):
    """S-37: an outbound NBL with three NET_BUFFERs of which only the second matches: all three
    are copied out — the second to the user, the first and third re-injected at once, in order —
    and the original is absorbed. (The NBL comes from another driver's network send, so the
    copies are impostors: re-injected with TTL - 1.)"""
    stack, driver, app, peer = setup()
    div = Divert(driver, 1, match=lambda p: transport_of(p)[2] == b"two")
    foreign = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    packets = [udp("192.0.2.1", peer, 4000, 53, x) for x in (b"one", b"two", b"three")]
    nbl = wfpsim.NetBufferList.from_buffers(packets)
    statuses = []
    stack.inject_network_send(
        foreign, nbl, completion=lambda c, n, d: (statuses.append(n.Status), n.free())
    )
    stack.run()
    assert [p for p, _ in div.queue] == [packets[1]]
    assert [transport_of(p)[2] for p in ip_packets(stack)] == [b"one", b"three"]
    assert statuses == [0]  # the absorbed original completed once its copies were made
    div.send_all()
    stack.run()
    assert [transport_of(p)[2] for p in ip_packets(stack)] == [b"one", b"three", b"two"]
    assert all(IP.parse_ip(p).ttl == 63 for p in ip_packets(stack))
    foreign.destroy()
    finish(stack, driver, div, app)
