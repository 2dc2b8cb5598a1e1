"""Embedding: the default and current stack, several stacks without cross-talk, the clock a host
simulator drives, stacks connected wire-to-wire, pcap output."""

from __future__ import annotations

import contextvars

import pytest
from fakes import A4, MAC_A, MAC_B, Completions, HookEngine, host, udp_packet
from pcap_util import read_pcap

import wfpsim
from wfpsim import wdk
from wfpsim.constants import AF_INET, FWPS_INJECTION_TYPE_NETWORK
from wfpsim.stack import connect, current_stack, run_all
from wfpsim.stack import ip as IP

MS = 1_000_000
FAR = IP.addr_bytes("198.51.100.7")


def test_default_stack_needs_no_setup(no_leaks):
    stack = wfpsim.default_stack()
    assert stack is wfpsim.default_stack() and current_stack() is stack
    status, h = wdk.FwpsInjectionHandleCreate0(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    nbl = wfpsim.NetBufferList.from_bytes(
        udp_packet(IP.addr_bytes("192.0.2.1"), FAR, 1, 2, b"hello")
    )
    done = Completions()
    assert wdk.FwpsInjectNetworkSendAsync0(h, None, 0, 0, nbl, done, None) == 0
    assert stack.run() == 1 and done.statuses == [0]
    assert stack.delivered[-1].data.endswith(b"hello")  # out of the implicit interface
    assert wdk.FwpsInjectionHandleDestroy0(h) == 0


def test_implicit_interface_is_replaced_by_the_first_explicit_one():
    stack = wfpsim.Stack()
    assert list(stack.interfaces) == [1] and stack.interfaces[1].implicit
    stack.add_interface(index=7, addresses=["10.0.0.1/8"], mtu=9000, mac=MAC_B)
    assert list(stack.interfaces) == [7]
    iface = stack.interfaces[7]
    assert (iface.mtu, iface.mac, iface.compartment_id, iface.up) == (9000, MAC_B, 1, True)
    with pytest.raises(wfpsim.InvalidParameterError):
        stack.add_interface(index=7, addresses=["10.0.0.2/8"])
    assert wfpsim.Stack(implicit_interface=False).interfaces == {}


def test_interface_contract_forms(no_leaks):
    stack = wfpsim.Stack()
    stack.add_interface(index=1, addresses=["192.0.2.1/24", "2001:db8::1/64"], mtu=1500, mac=MAC_A)
    ep = stack.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="192.0.2.1", local_port=0
    )
    assert isinstance(ep.handle, int) and ep.local_port >= 49152
    flow = stack.open_tcp_flow(
        address_family=AF_INET, local=("192.0.2.1", 1000), remote=("192.0.2.9", 80)
    )
    assert isinstance(flow.flow_id, int) and stack.flow(flow.flow_id) is flow
    ep.close()
    assert ep.closed and ep.handle in stack.endpoints


def test_with_stack_makes_it_current_and_nests():
    a, b = wfpsim.Stack(), wfpsim.Stack()
    assert current_stack() is wfpsim.default_stack()
    with a:
        assert current_stack() is a
        with b:
            assert current_stack() is b
        assert current_stack() is a
    assert current_stack() is wfpsim.default_stack()

    def in_other_context():
        return current_stack()

    with a:
        assert contextvars.Context().run(in_other_context) is wfpsim.default_stack()


def test_two_stacks_no_cross_talk(no_leaks):
    a, b = host(), host()
    ha = a.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    done = Completions()
    a.inject_network_send(
        ha, wfpsim.NetBufferList.from_bytes(udp_packet(A4, FAR, 1, 2, b"a")), completion=done
    )
    assert b.run() == 0 and done.calls == []
    assert a.run() == 1 and len(done.calls) == 1
    assert b.delivered == [] and len(a.delivered) == 1
    # a handle of A is invalid on B's Pythonic face and its state query still works anywhere
    nbl = wfpsim.NetBufferList.from_bytes(b"\x45" + bytes(19))
    with pytest.raises(wfpsim.InvalidStateError):
        b.inject_network_send(ha, nbl, completion=done)
    nbl.free()


def test_the_clock_is_driven_by_run_until(no_leaks):
    stack = host()
    ticks = []
    stack.queue_dpc(lambda: ticks.append(("b", stack.now)), delay_ns=5 * MS)
    stack.queue_dpc(lambda: ticks.append(("a", stack.now)), delay_ns=2 * MS)
    stack.queue_dpc(lambda: ticks.append(("now", stack.now)))
    assert stack.run() == 1 and ticks == [("now", 0)] and stack.now == 0
    assert stack.run(until=3 * MS) == 1 and ticks[-1] == ("a", 2 * MS) and stack.now == 3 * MS
    assert stack.run(until=10 * MS) == 1 and ticks[-1] == ("b", 5 * MS) and stack.now == 10 * MS
    assert stack.run(until=20 * MS) == 0 and stack.now == 20 * MS
    assert stack.step() == 0


def test_delivered_records_carry_the_clock(no_leaks):
    stack = host()
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    stack.run(until=7 * MS)
    stack.inject_network_send(
        h,
        wfpsim.NetBufferList.from_bytes(udp_packet(A4, FAR, 1, 2, b"t")),
        completion=Completions(),
    )
    stack.run()
    assert stack.delivered[-1].time_ns == 7 * MS == stack.wire[-1].time_ns


def test_a_runaway_dispatcher_is_bounded():
    stack = wfpsim.Stack()

    def again():
        stack.queue_dpc(again)

    stack.queue_dpc(again)
    with pytest.raises(wfpsim.WfpError, match="did not go idle"):
        stack.run(max_items=1000)


def two_hosts(delay_ns: int = 0):
    a = wfpsim.Stack(name="a")
    b = wfpsim.Stack(name="b")
    a.add_interface(index=1, addresses=["10.0.0.1/24"], mac=MAC_A)
    b.add_interface(index=1, addresses=["10.0.0.2/24"], mac=MAC_B)
    connect(a, 1, b, 1, delay_ns=delay_ns)
    return a, b


def test_two_stacks_wire_to_wire_udp(no_leaks):
    a, b = two_hosts(delay_ns=3 * MS)
    engine = HookEngine()
    b.filter_engine = engine
    rx = b.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="10.0.0.2", local_port=53
    )
    tx = a.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="10.0.0.1", local_port=999
    )
    a.send(tx, b"over the wire", ("10.0.0.2", 53))
    frame = a.wire[0].data
    assert frame[:6] == MAC_B and frame[6:12] == MAC_A  # the peer's MAC from the link
    assert rx.received == []
    run_all([a, b], until=2 * MS)
    assert rx.received == []
    run_all([a, b], until=5 * MS)
    assert [(d.data, d.remote_address, d.remote_port, d.time_ns) for d in rx.received] == [
        (b"over the wire", "10.0.0.1", 999, 3 * MS)
    ]
    assert "INBOUND_MAC_FRAME_ETHERNET" in engine.layers()
    # and back
    b.send(rx, b"reply", ("10.0.0.1", 999))
    run_all([a, b])
    assert run_all([a, b], until=20 * MS) >= 1
    assert [d.data for d in tx.received] == [b"reply"]


def test_two_stacks_tcp_handshake_and_data(no_leaks):
    a, b = two_hosts()
    b.open_endpoint(
        address_family=AF_INET, protocol=6, local_address="10.0.0.2", local_port=80, listen=True
    )
    client = a.open_endpoint(address_family=AF_INET, protocol=6, local_address="10.0.0.1")
    flow = a.connect(client, ("10.0.0.2", 80))
    assert flow.state == "syn_sent"
    run_all([a, b])
    assert flow.state == "established"
    server = next(f for f in b.flows.values() if f.local[1] == 80)
    assert server.state == "established"
    flow.send(b"GET / HTTP/1.0\r\n\r\n")
    run_all([a, b])
    assert bytes(server.received) == b"GET / HTTP/1.0\r\n\r\n"
    server.send(b"HTTP/1.0 200 OK\r\n")
    a.shutdown(flow)
    run_all([a, b])
    assert bytes(flow.received) == b"HTTP/1.0 200 OK\r\n"
    assert server.fin_received


def test_wire_is_recordable_to_pcap(no_leaks, tmp_path):
    a, b = two_hosts()
    tx = a.open_endpoint(
        address_family=AF_INET, protocol=17, local_address="10.0.0.1", local_port=1
    )
    a.run(until=1500)
    a.send(tx, b"captured", ("10.0.0.2", 2))
    path = tmp_path / "a.pcap"
    assert a.write_pcap(str(path)) == 1
    linktype, records = read_pcap(path)
    assert linktype == 1 and records == [(1000, a.wire[0].data)]  # microsecond resolution
