"""The simulated Windows TCP/IP stack with its WFP layers: :class:`Stack`, the default stack, the
current-stack context, and wire-to-wire links between stacks.

A :class:`Stack` is deterministic and self-contained: its host (interfaces, endpoints, flows), its
dispatcher (clock + DPC queue), its injection handles, its records. Several stacks live in one
process without cross-talk; ``with stack:`` makes one current for the WDK face (whose functions
otherwise act on the handle's stack, or :func:`default_stack`).

Quick start::

    stack = wfpsim.Stack()
    stack.add_interface(index=1, addresses=["192.0.2.1/24"], mtu=1500)
    h = stack.injection_handle(AF_INET, FWPS_INJECTION_TYPE_NETWORK)
    stack.inject_network_send(h, nbl, completion=done)
    stack.run()                       # processing + completion happen here
    stack.delivered[-1].data          # the packet on the wire

A fresh stack (and the default stack) has one *implicit* interface (index 1, 192.0.2.1/24 and
2001:db8::1/64, MTU 1500, MAC 02:00:00:00:00:01) so that a script works without set-up; the
first explicit :meth:`Stack.add_interface` removes it. Each compartment has an implicit default
route through its first up interface unless :meth:`Stack.add_route` gave one.
"""

from __future__ import annotations

import contextvars
import ipaddress
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from wfpsim._core import NetBufferList
from wfpsim.constants import (
    AF_INET,
    AF_INET6,
    AF_UNSPEC,
    FWP_CONDITION_FLAG_IS_REAUTHORIZE,
    FWP_DIRECTION_OUTBOUND,
    FWPS_L2_INCOMING_FLAG_RECLASSIFY_MULTI_DESTINATION,
    FWPS_STREAM_FLAG_RECEIVE,
    FWPS_STREAM_FLAG_SEND,
    FWPS_STREAM_FLAG_SEND_DISCONNECT,
    IPPROTO_TCP,
)
from wfpsim.errors import InvalidParameterError, InvalidStateError, MalformedPacketError
from wfpsim.stack import ip as IP
from wfpsim.stack.contracts import Contracts
from wfpsim.stack.dispatcher import Dispatcher
from wfpsim.stack.fragments import Reassembler
from wfpsim.stack.host import (
    Datagram,
    DatagramFlow,
    Endpoint,
    Interface,
    TcpFlow,
    parse_endpoint_address,
    require_family,
)
from wfpsim.stack.injection import (
    FWPS_TRANSPORT_SEND_PARAMS0,
    InjectionHandle,
    Injector,
)
from wfpsim.stack.paths import (
    ABSORB,
    INBOUND,
    OUTBOUND,
    PERMIT,
    Dropped,
    PathResult,
    Paths,
    Pkt,
    layer_id,
)
from wfpsim.stack.records import Delivered, InjectionRecord, WireFrame, write_pcap
from wfpsim.stack.seam import AleCompletionHandle, FilterEngine, PermitAllEngine
from wfpsim.status import NTSTATUS

S = NTSTATUS
IMPLICIT_ADDRESSES = ("192.0.2.1/24", "2001:db8::1/64")
IMPLICIT_MAC = bytes.fromhex("020000000001")
SEND_BACKFILL = 128


@dataclass
class Route:
    prefix: ipaddress.IPv4Network | ipaddress.IPv6Network
    interface_index: int
    compartment_id: int


class Stack:
    """One simulated Windows host: TCP/IP stack, WFP layers, injection API, dispatcher."""

    def __init__(
        self,
        *,
        filter_engine: FilterEngine | None = None,
        implicit_interface: bool = True,
        forwarding: bool = False,
        contracts: str = "raise",
        max_reinjections: int = 32,
        loop_policy: str = "raise",
        send_icmp_errors: bool = True,
        name: str = "",
    ) -> None:
        self.name = name
        self.dispatcher = Dispatcher()
        self.contracts = Contracts(contracts)
        self.contracts.clock = lambda: self.dispatcher.now
        self.injector = Injector(self)
        self.paths = Paths(self)
        self.reassembler = Reassembler()
        #: TCP/IP readiness (inject functions and FwpsInjectionHandleCreate0 fail with
        #: STATUS_FWP_TCPIP_NOT_READY while False); ``l2_ready`` likewise for the MAC functions.
        self.tcpip_ready = True
        self.l2_ready = True
        self.forwarding = forwarding
        self.forward_fragment_grouping = False
        #: B4 / S-08: move absorbed inbound NBLs back by transportHeaderSize (see Paths.settle):
        #: False, True (transport / recv-accept / datagram layers) or "recv-accept" (S-32).
        self.absorbed_offset_drift: bool | str = False
        self.send_icmp_errors = send_icmp_errors
        #: Bound on re-indications of one packet lineage (injection loop detection).
        self.max_reinjections = max_reinjections
        if loop_policy not in ("raise", "record"):
            raise InvalidParameterError("loop_policy must be 'raise' or 'record'")
        self.loop_policy = loop_policy
        self.interfaces: dict[int, Interface] = {}
        self.routes: list[Route] = []
        self.endpoints: dict[int, Endpoint] = {}
        self.flows: dict[int, TcpFlow] = {}
        self.tcp_by_tuple: dict[tuple, TcpFlow] = {}
        self.datagram_flows: dict[tuple, DatagramFlow] = {}
        self.handles: list[InjectionHandle] = []
        self.ipsec_peers: set[bytes] = set()
        self.ipsec_sas: dict[bytes, Any] = {}
        #: Every packet / stream chunk that left through a path, in order.
        self.delivered: list[Delivered] = []
        #: Every frame put on a wire (writable with :meth:`write_pcap`).
        self.wire: list[WireFrame] = []
        #: Accepted injections (one record per NBL), most recent last (bounded).
        self.injections: deque[InjectionRecord] = deque(maxlen=100_000)
        self.loop_errors: list[Exception] = []
        self.icmp_errors_sent: list[tuple[int, int, str]] = []
        self.forward_groups: dict[tuple, list[list]] = {}  # key -> [[fragment, permitted]]
        #: Set to a list to record every classify (:class:`wfpsim.stack.paths.Visit`).
        self.trace: list | None = None
        self._engine: Any = None
        if filter_engine is None:
            # the real filter engine (wfpsim.filtering): callouts are registered and filters
            # added on ``stack.filter_engine``; with no filter at a layer it costs nothing
            from wfpsim.filtering import FilterEngine as _RealEngine

            filter_engine = _RealEngine(name=name or None)
        self.filter_engine = filter_engine
        self._own: dict[int, NetBufferList] = {}
        self._releasing: set[int] = set()
        self._in_flight: dict[int, InjectionRecord] = {}
        self._parked: list[tuple[NetBufferList, Callable[[], None], bool]] = []
        self._classify_layers: list[int] = []
        self._tokens: list[tuple[contextvars.Token, Any]] = []
        self._ip_id = 0
        self._ports: dict[int, int] = {}
        self._reassembly_timer: Any = None
        self._raw_endpoints: dict[tuple, Endpoint] = {}
        self._cache: dict = {}
        self.dispatcher.after_item.append(self._poll)
        if implicit_interface:
            iface = Interface(1, IMPLICIT_ADDRESSES, mac=IMPLICIT_MAC, implicit=True)
            self.interfaces[1] = iface
            iface.on_change = self._topology_changed

    # ------------------------------------------------------------------ engine, context, clock

    @property
    def filter_engine(self) -> Any:
        """The filter engine classifying at every layer (see :mod:`wfpsim.stack.seam`)."""
        return self._engine

    @filter_engine.setter
    def filter_engine(self, engine: Any) -> None:
        if engine is None:
            engine = PermitAllEngine()
        for name in ("classify", "stream_classify"):
            if not callable(getattr(engine, name, None)):
                raise InvalidParameterError(
                    f"the filter engine has no {name}() (seam.FilterEngine)"
                )
        old = self._engine
        if old is not None and hasattr(old, "detach"):
            old.detach(self)
        self._engine = engine
        needs = getattr(engine, "needs_classify", None)
        if type(engine) is PermitAllEngine:
            self._engine_needs = _never
        elif needs is None:
            self._engine_needs = _always
        else:
            self._engine_needs = needs
        if hasattr(engine, "attach"):
            engine.attach(self)

    def __enter__(self) -> Stack:
        """Makes this stack current for the WDK face (FwpsInjectionHandleCreate0, ...) and its
        filter engine current for the engine's WDK calls (FwpsCompleteOperation0,
        FwpsFlowRemoveContext0, FwpsStreamContinue0, ...). :meth:`run` does this for the work
        items it runs (a driver's worker queued with :meth:`queue_dpc`)."""
        engine = self._engine
        entered = hasattr(engine, "__enter__") and hasattr(engine, "__exit__")
        if entered:
            engine.__enter__()
        self._tokens.append((_current.set(self), engine if entered else None))
        return self

    def __exit__(self, *exc: object) -> None:
        token, engine = self._tokens.pop()
        _current.reset(token)
        if engine is not None:
            engine.__exit__(*exc)

    @property
    def now(self) -> int:
        """The stack's clock, in nanoseconds."""
        return self.dispatcher.now

    def run(self, until: int | None = None, *, max_items: int | None = None) -> int:
        """Runs the dispatcher: every work item due now (``until=None``; time does not move), or
        everything up to time ``until`` (ns; the clock ends there). Returns how many work items
        ran (0 when idle). If a work item (a completion) raised, the rest still runs and the
        first error is raised afterwards; injection loops raise :class:`wfpsim.InjectionLoopError`
        here (``loop_policy="raise"``)."""
        with self:
            self._poll()
            if max_items is None:
                return self.dispatcher.run(until)
            return self.dispatcher.run(until, max_items=max_items)

    def step(self) -> int:
        """Runs at most one due work item; returns 1 or 0."""
        with self:
            self._poll()
            return self.dispatcher.step()

    def queue_dpc(self, fn: Callable[[], Any], *, delay_ns: int = 0, label: str = "dpc") -> None:
        """Queues driver work (a DPC or worker item) on the dispatcher: what a callout uses for
        out-of-band processing. Work queued from a classifyFn keeps its causal depth, so a loop
        through a worker is still detected."""
        current = getattr(self._engine, "current_callout", None)
        origin = current() if current is not None else None
        self.dispatcher.queue(fn, delay_ns=delay_ns, label=label, origin=origin)

    # ------------------------------------------------------------------------------ the host

    def add_interface(
        self,
        index: int = 1,
        addresses: Iterable[str] = (),
        mtu: int = 1500,
        mac: bytes | None = None,
        *,
        compartment_id: int = 1,
        up: bool = True,
        sub_interface_index: int = 0,
    ) -> Interface:
        """Adds an up interface with on-link routes for its addresses. The first explicit
        interface replaces the implicit one."""
        for i in [i for i, x in self.interfaces.items() if x.implicit]:
            del self.interfaces[i]
            self._topology_changed()
        if index in self.interfaces:
            raise InvalidParameterError(f"interface {index} already exists")
        iface = Interface(
            index,
            list(addresses),
            mtu=mtu,
            mac=mac,
            compartment_id=compartment_id,
            up=up,
            sub_interface_index=sub_interface_index,
        )
        self.interfaces[index] = iface
        iface.on_change = self._topology_changed
        self._topology_changed()
        return iface

    def add_route(
        self, prefix: str, interface_index: int, *, compartment_id: int | None = None
    ) -> None:
        """A route ``prefix`` (e.g. ``"0.0.0.0/0"``) out of an interface."""
        iface = self._require_interface(interface_index)
        self.routes.append(
            Route(
                ipaddress.ip_network(prefix, strict=False),
                interface_index,
                compartment_id or iface.compartment_id,
            )
        )
        self._topology_changed()

    def add_neighbor(
        self, address: str | bytes, mac: bytes, interface_index: int | None = None
    ) -> None:
        """A static neighbor (ARP / ND) entry."""
        raw = IP.addr_bytes(address)
        for iface in self.interfaces.values():
            if interface_index in (None, iface.index):
                iface.neighbors[raw] = bytes(mac)

    def add_ipsec_policy(self, remote_address: str | bytes) -> None:
        """Inbound cleartext from this peer fails IPsec verification and is dropped before the
        transport layer — except packets injected with FwpsInjectTransportReceiveAsync0, which
        bypass IPsec (seed 002)."""
        self.ipsec_peers.add(IP.addr_bytes(remote_address))

    def add_ipsec_sa(
        self, remote_address: str | bytes, *, tunnel: bool = False, spi: int = 0x100
    ) -> None:
        """An inbound IPsec security association with a peer (the ESP-NULL model of
        :mod:`wfpsim.stack.ipsec`, [emu]): its ESP packets are verified and indicated as
        IPsec-secured (transport mode, or de-tunnelled with ``tunnel``); its cleartext is
        dropped as with :meth:`add_ipsec_policy`."""
        from wfpsim.stack.ipsec import SecurityAssociation

        raw = IP.addr_bytes(remote_address)
        self.ipsec_sas[raw] = SecurityAssociation(raw, spi, tunnel)
        self.ipsec_peers.add(raw)

    def _require_interface(self, index: int) -> Interface:
        iface = self.interfaces.get(index)
        if iface is None:
            raise InvalidParameterError(f"no interface {index}", S.STATUS_NOT_FOUND)
        return iface

    def open_endpoint(
        self,
        address_family: int = AF_INET,
        protocol: int = IP.IPPROTO_UDP,
        local_address: Any = None,
        local_port: int = 0,
        *,
        compartment_id: int = 1,
        header_include: bool = False,
        raw: bool = False,
        listen: bool = False,
        process_id: int = 4,
        app_path: str | None = None,
    ) -> Endpoint:
        """Opens a transport endpoint (socket). ``local_port=0`` picks an ephemeral port (UDP,
        TCP); ``raw``/``header_include`` make a raw socket (IP_HDRINCL); ``listen`` a TCP
        listener. Returns the :class:`Endpoint` (``.handle`` is its endpointHandle)."""
        require_family(address_family)
        local = parse_endpoint_address(local_address, address_family)
        if local_port == 0 and protocol in (IP.IPPROTO_UDP, IPPROTO_TCP) and not raw:
            local_port = self._ephemeral(protocol)
        kwargs: dict[str, Any] = {}
        if app_path is not None:
            kwargs["app_path"] = app_path
        ep = Endpoint(
            self,
            address_family,
            protocol,
            local,
            local_port,
            compartment_id=compartment_id,
            header_include=header_include,
            raw=raw,
            process_id=process_id,
            listening=listen,
            **kwargs,
        )
        self.endpoints[ep.handle] = ep
        return ep

    def _ephemeral(self, protocol: int) -> int:
        port = self._ports.get(protocol, 49151) + 1
        self._ports[protocol] = port if port < 65536 else 49152
        return self._ports[protocol]

    def open_tcp_flow(
        self,
        address_family: int = AF_INET,
        local: tuple[Any, int] = ("192.0.2.1", 0),
        remote: tuple[Any, int] = ("192.0.2.2", 80),
        *,
        direction: int = FWP_DIRECTION_OUTBOUND,
        compartment_id: int = 1,
        classify: bool = True,
    ) -> TcpFlow:
        """An established TCP connection (no handshake on the wire). With ``classify`` the ALE
        layers see it as Windows would (ALE_AUTH_CONNECT without a packet, then
        ALE_FLOW_ESTABLISHED) so stream callouts can associate flow contexts. Returns the
        :class:`TcpFlow` (``.flow_id`` is its flowHandle)."""
        require_family(address_family)
        laddr = parse_endpoint_address(local[0], address_family)
        raddr = parse_endpoint_address(remote[0], address_family)
        if laddr is None or raddr is None:
            raise InvalidParameterError("open_tcp_flow needs concrete local and remote addresses")
        ep = self.open_endpoint(
            address_family, IPPROTO_TCP, laddr, local[1], compartment_id=compartment_id
        )
        route = self._route(raddr, compartment_id)
        flow = self._new_tcp_flow(
            address_family,
            (laddr, ep.local_port),
            (raddr, remote[1]),
            ep,
            direction,
            route[0] if route else None,
            state="established",
        )
        flow.rcv_nxt = None  # learn the peer's sequence from its first segment
        if classify:
            try:
                self._classify_tcp_connect(flow)
            except Dropped:
                flow.state = "refused"
        return flow

    def connect(self, endpoint: Endpoint, remote: tuple[Any, int]) -> TcpFlow:
        """Active TCP open from ``endpoint``: ALE_AUTH_CONNECT, then a SYN on the wire; the
        flow is established when the SYN-ACK arrives (ALE_FLOW_ESTABLISHED)."""
        if endpoint.protocol != IPPROTO_TCP or endpoint.closed:
            raise InvalidParameterError("connect needs an open TCP endpoint")
        raddr = parse_endpoint_address(remote[0], endpoint.address_family)
        route = self._route(raddr, endpoint.compartment_id)
        if route is None:
            raise InvalidStateError("no route to the destination", S.STATUS_NETWORK_UNREACHABLE)
        laddr = endpoint.local_address or route[1]
        flow = self._new_tcp_flow(
            endpoint.address_family,
            (laddr, endpoint.local_port),
            (raddr, remote[1]),
            endpoint,
            OUTBOUND,
            route[0],
            state="syn_sent",
        )
        flow.rcv_nxt = None
        try:
            self._classify_tcp_connect(flow, established=False)
        except Dropped:
            flow.state = "refused"
            return flow
        if flow.state == "syn_sent":
            self._tcp_output(flow, IP.TCP_SYN)
        return flow

    def _classify_tcp_connect(self, flow: TcpFlow, established: bool = True) -> None:
        """ALE_AUTH_CONNECT for a TCP connect (no packet). A callout may pend it
        (FwpsPendOperation0 + BLOCK/ABSORB): the flow is then ``"connect_pending"`` until
        FwpsCompleteOperation0, whose re-authorisation classify decides it (layers.md §7.6):
        permitted, an active open sends its SYN and an already established flow
        (:meth:`open_tcp_flow`) gets its ALE_FLOW_ESTABLISHED; blocked, the flow is refused."""
        pkt = self._flow_pkt(flow)
        layer = layer_id("ALE_AUTH_CONNECT", flow.address_family)
        wanted = flow.state

        def completed(_nbl: Any) -> None:
            self._tcp_connect_reauthorize(flow, established, wanted)

        handle = AleCompletionHandle(self, layer, completed)
        verdict = self.paths.visit(
            pkt,
            layer,
            lambda: self.paths.ip_values(pkt),
            lambda: self.paths.ip_meta(pkt, layer, ipHeaderSize=None, completionHandle=handle),
            None,
        )
        if verdict == ABSORB and handle.pended and not handle.completed:
            flow.state = "connect_pending"
            return
        if handle.completed:  # completed inside the classify: the re-authorisation decided
            return
        if verdict != PERMIT:
            self._refuse_flow(flow)
            raise Dropped("blocked", S.STATUS_FWP_DROP_NOICMP, "blocked at ALE_AUTH_CONNECT")
        if established:
            self.paths._flow_established(pkt, flow, flow.direction, None)

    def _tcp_connect_reauthorize(self, flow: TcpFlow, established: bool, wanted: str) -> None:
        """FwpsCompleteOperation0 on a pended TCP ALE_AUTH_CONNECT: the re-authorisation
        classify (IS_REAUTHORIZE, packetDirection OUTBOUND, no packet)."""
        if flow.closed:
            return
        pkt = self._flow_pkt(flow)
        layer = layer_id("ALE_AUTH_CONNECT", flow.address_family)
        pkt.flags |= FWP_CONDITION_FLAG_IS_REAUTHORIZE
        verdict = self.paths.visit(
            pkt,
            layer,
            lambda: self.paths.ip_values(pkt),
            lambda: self.paths.ip_meta(
                pkt, layer, ipHeaderSize=None, packetDirection=FWP_DIRECTION_OUTBOUND
            ),
            None,
        )
        pkt.flags &= ~FWP_CONDITION_FLAG_IS_REAUTHORIZE
        if verdict != PERMIT:
            self._refuse_flow(flow)
            return
        flow.state = wanted
        if established:
            try:
                self.paths._flow_established(pkt, flow, flow.direction, None)
            except Dropped:
                return
        else:
            self._tcp_output(flow, IP.TCP_SYN)

    def _flow_pkt(self, flow: TcpFlow, nbl: Any = None) -> Pkt:
        af = flow.address_family
        iface = self.interfaces.get(flow.interface_index)
        pkt = Pkt(
            nbl,
            af,
            OUTBOUND,
            iface,
            compartment_id=flow.compartment_id,
            endpoint=flow.endpoint,
            flow_handle=flow.flow_id,
        )
        hl = 20 if af == AF_INET else 40
        pkt.ip = IP.IpInfo(
            4 if af == AF_INET else 6, hl, flow.local[0], flow.remote[0], IPPROTO_TCP, hl + 20
        )
        pkt.tp = IP.TransportInfo(IPPROTO_TCP, 20, flow.local[1], flow.remote[1])
        return pkt

    def _new_tcp_flow(
        self,
        af: int,
        local: tuple,
        remote: tuple,
        endpoint: Endpoint,
        direction: int,
        iface: Interface | None,
        *,
        state: str,
    ) -> TcpFlow:
        if endpoint.listening:
            endpoint = Endpoint(
                self,
                af,
                IPPROTO_TCP,
                local[0],
                local[1],
                compartment_id=endpoint.compartment_id,
                process_id=endpoint.process_id,
                app_path=endpoint.app_path,
            )
            self.endpoints[endpoint.handle] = endpoint
        flow = TcpFlow(
            self,
            af,
            local,
            remote,
            endpoint,
            direction=direction,
            interface_index=iface.index if iface else 0,
        )
        flow.state = state
        self.flows[flow.flow_id] = flow
        self.tcp_by_tuple[(af, local[0], local[1], remote[0], remote[1])] = flow
        return flow

    def flow(self, flow_id: int) -> TcpFlow:
        return self.flows[flow_id]

    # ---------------------------------------------------------------------------- traffic in

    def receive(
        self,
        interface_index: int,
        data: bytes | bytearray | memoryview,
        *,
        link: str | None = None,
        timestamp_ns: int | None = None,
    ) -> PathResult:
        """A frame (Ethernet interface) or IP packet arrives from the wire on an interface and
        climbs the inbound path now. ``link``: "ethernet", "ip", or None (detect)."""
        iface = self._require_interface(interface_index)
        self._poll()
        data = bytes(data)
        if link is None:
            link = "ethernet" if iface.ethernet and IP.looks_like_ethernet(data) else "ip"
        if link not in ("ethernet", "ip"):
            raise InvalidParameterError("link must be 'ethernet' or 'ip'")
        nbl = self._new_nbl(data, backfill=0)
        if timestamp_ns is not None:
            nbl.timestamp_ns = timestamp_ns
        pkt = Pkt(nbl, AF_INET, INBOUND, iface, compartment_id=iface.compartment_id)
        return self._run_path(
            pkt, self.paths.receive_frame if link == "ethernet" else self.paths.receive_ip
        )

    def vswitch_receive(
        self,
        frame: bytes | bytearray | memoryview,
        *,
        destinations: int = 1,
        vswitch_id: bytes = b"wfpsim-vswitch",
        source_port_id: int = 1,
        source_nic_index: int = 0,
    ) -> list[PathResult]:
        """[emu] An Ethernet frame entering a Hyper-V extensible switch port (no ports, VMs or
        forwarding table are modelled): it is indicated at INGRESS_VSWITCH_ETHERNET once per
        destination port, each copy its own NBL (data at the Ethernet header); the copies after
        the first carry ``FWPS_L2_INCOMING_FLAG_RECLASSIFY_MULTI_DESTINATION`` in ``l2Flags``
        and the L2_FLAGS value (a multi-destination frame, injection.md §5 / B25). A permitted
        copy is recorded in ``stack.delivered`` with destination ``"vswitch"``."""
        self._poll()
        data = bytes(frame)
        results = []
        for copy in range(max(1, destinations)):
            nbl = self._new_nbl(data, backfill=0)
            pkt = Pkt(nbl, AF_UNSPEC, INBOUND, None, compartment_id=0)
            l2_flags = FWPS_L2_INCOMING_FLAG_RECLASSIFY_MULTI_DESTINATION if copy else 0

            def step(pkt: Pkt, l2_flags: int = l2_flags) -> None:
                self.paths.vswitch_ingress(
                    pkt, l2_flags, bytes(vswitch_id), source_port_id, source_nic_index
                )

            results.append(self._run_path(pkt, step))
        return results

    def _run_path(self, pkt: Pkt, step: Callable[[Pkt], None]) -> PathResult:
        try:
            step(pkt)
            result = PathResult(pkt.outcome or "delivered", S.STATUS_SUCCESS, tuple(pkt.layers))
        except Dropped as d:
            result = PathResult(d.outcome, d.status, tuple(pkt.layers), d.reason)
        finally:
            self.paths.settle(pkt)
            if pkt.nbl is not None:
                self._release(pkt.nbl)
        return result

    # --------------------------------------------------------------------------- traffic out

    def send(
        self,
        endpoint: Endpoint,
        payload: bytes,
        remote: tuple[Any, int] | None = None,
        *,
        flow: TcpFlow | None = None,
        push: bool = True,
    ) -> PathResult:
        """The application sends ``payload`` from a local endpoint: a datagram to ``remote``
        (UDP / ICMP / raw; for ``header_include`` sockets the payload starts with the IP
        header), or stream bytes on a TCP flow. It goes down the outbound path now."""
        self._poll()
        if endpoint.closed:
            raise InvalidStateError(
                f"endpoint {endpoint.handle:#x} is closed", S.STATUS_INVALID_HANDLE
            )
        payload = bytes(payload)
        if endpoint.protocol == IPPROTO_TCP:
            if flow is None:
                flow = next(
                    (f for f in self.flows.values() if f.endpoint is endpoint and not f.closed),
                    None,
                )
            if flow is None or flow.state != "established":
                raise InvalidStateError(
                    "no established TCP flow on this endpoint", S.STATUS_INVALID_DEVICE_STATE
                )
            flags = FWPS_STREAM_FLAG_SEND
            self.paths.stream_indicate(flow, OUTBOUND, payload, flags)
            return PathResult("sent", S.STATUS_SUCCESS, (layer_id("STREAM", flow.address_family),))
        if remote is None:
            raise InvalidParameterError("send needs remote=(address, port) for a datagram endpoint")
        raddr = parse_endpoint_address(remote[0], endpoint.address_family)
        af = endpoint.address_family
        route = self._route(raddr, endpoint.compartment_id)
        src = endpoint.local_address or (route[1] if route else None)
        header_include = None
        if endpoint.header_include:
            try:
                hip = IP.parse_ip(payload)
            except MalformedPacketError as e:
                raise InvalidParameterError(f"header-include send: {e}") from None
            header_include, payload = (
                payload[: hip.header_length],
                payload[hip.header_length : hip.total_length],
            )
            src = hip.src
        if endpoint.protocol == IP.IPPROTO_UDP and not endpoint.raw:
            if src is None:
                return PathResult("failed", S.STATUS_NETWORK_UNREACHABLE, (), "no source address")
            segment = IP.udp_datagram(src, raddr, endpoint.local_port, remote[1], payload)
        else:
            segment = payload
        nbl = self._new_nbl(segment, backfill=SEND_BACKFILL)
        pkt = Pkt(
            nbl,
            af,
            OUTBOUND,
            compartment_id=endpoint.compartment_id,
            endpoint=endpoint,
            remote=(raddr, remote[1]),
            local_address=src,
            header_include=header_include,
        )
        return self._run_path(pkt, self.paths.send_transport)

    def shutdown(self, flow: TcpFlow) -> None:
        """The application closes its sending side: a SEND_DISCONNECT indication; the FIN goes
        out once every stream callout released it."""
        self.paths.stream_indicate(
            flow, OUTBOUND, b"", FWPS_STREAM_FLAG_SEND | FWPS_STREAM_FLAG_SEND_DISCONNECT
        )

    # -------------------------------------------------------------------------- stream hooks

    def stream_deliver(self, flow_id: int, flags: int, data: bytes) -> None:
        """For the filter engine: stream bytes released outside a ``stream_classify`` call (e.g.
        after FwpsStreamContinue0) continue to the application (RECEIVE) or the wire (SEND)."""
        flow = self.flows[flow_id]
        direction = INBOUND if flags & FWPS_STREAM_FLAG_RECEIVE else OUTBOUND
        self.paths.stream_sink(flow, direction, None)(bytes(data), flags)

    def stream_verdict(self, verdict: Any) -> None:
        """For the filter engine: a stream verdict produced outside ``stream_classify`` (after
        FwpsStreamContinue0, FwpsFlowAbort0): records whether the direction is still deferred
        (the bytes themselves came through :meth:`stream_deliver`)."""
        flow = self.flows.get(verdict.flow_handle)
        if flow is not None:
            direction = INBOUND if verdict.direction & FWPS_STREAM_FLAG_RECEIVE else OUTBOUND
            flow.deferred[direction] = bool(verdict.deferred)

    def abort_flow(self, flow_id: int) -> None:
        """For the filter engine (DROP_CONNECTION outside classify, FwpsFlowAbort0)."""
        flow = self.flows.get(flow_id)
        if flow is not None:
            self._drop_flow(flow)

    # ------------------------------------------------------------------ Pythonic injection API

    def injection_handle(self, address_family: int = AF_UNSPEC, types: int = 0) -> InjectionHandle:
        """FwpsInjectionHandleCreate0: a handle for ``types`` (FWPS_INJECTION_TYPE_* bits; 0 =
        transport + stream + forward)."""
        return self.injector.create_handle(address_family, types)

    def destroy_handle(self, handle: InjectionHandle) -> None:
        """FwpsInjectionHandleDestroy0 (returns once every completion of the handle ran)."""
        self.injector.destroy_handle(handle)

    def injection_state(self, handle: InjectionHandle, nbl: NetBufferList) -> tuple[Any, Any]:
        """FwpsQueryPacketInjectionState0: ``(FWPS_PACKET_INJECTION_STATE, injectionContext)``."""
        return self.injector.query(handle, nbl)

    def inject_forward(
        self,
        handle: InjectionHandle,
        nbl: NetBufferList,
        *,
        address_family: int,
        interface_index: int,
        completion: Callable | None = None,
        completion_context: Any = None,
        injection_context: Any = None,
        compartment_id: int = 0,
        flags: int = 0,
    ) -> None:
        """FwpsInjectForwardAsync0. Raises a :class:`wfpsim.WfpError` (``.status``) on failure."""
        self.injector.forward(
            handle,
            injection_context,
            flags,
            address_family,
            compartment_id,
            interface_index,
            nbl,
            completion,
            completion_context,
        )

    def inject_network_receive(
        self,
        handle: InjectionHandle,
        nbl: NetBufferList,
        *,
        interface_index: int,
        sub_interface_index: int = 0,
        completion: Callable | None = None,
        completion_context: Any = None,
        injection_context: Any = None,
        compartment_id: int = 0,
        flags: int = 0,
    ) -> None:
        """FwpsInjectNetworkReceiveAsync0."""
        self.injector.network_receive(
            handle,
            injection_context,
            flags,
            compartment_id,
            interface_index,
            sub_interface_index,
            nbl,
            completion,
            completion_context,
        )

    def inject_network_send(
        self,
        handle: InjectionHandle,
        nbl: NetBufferList,
        *,
        completion: Callable | None = None,
        completion_context: Any = None,
        injection_context: Any = None,
        compartment_id: int = 0,
        flags: int = 0,
    ) -> None:
        """FwpsInjectNetworkSendAsync0."""
        self.injector.network_send(
            handle, injection_context, flags, compartment_id, nbl, completion, completion_context
        )

    def inject_transport_receive(
        self,
        handle: InjectionHandle,
        nbl: NetBufferList,
        *,
        address_family: int,
        interface_index: int,
        sub_interface_index: int = 0,
        completion: Callable | None = None,
        completion_context: Any = None,
        injection_context: Any = None,
        compartment_id: int = 0,
        flags: int = 0,
        reserved: Any = None,
    ) -> None:
        """FwpsInjectTransportReceiveAsync0."""
        self.injector.transport_receive(
            handle,
            injection_context,
            reserved,
            flags,
            address_family,
            compartment_id,
            interface_index,
            sub_interface_index,
            nbl,
            completion,
            completion_context,
        )

    def inject_transport_send(
        self,
        handle: InjectionHandle,
        nbl: NetBufferList,
        *,
        endpoint_handle: int,
        address_family: int,
        send_args: FWPS_TRANSPORT_SEND_PARAMS0 | None = None,
        completion: Callable | None = None,
        completion_context: Any = None,
        injection_context: Any = None,
        compartment_id: int = 0,
        flags: int = 0,
        version: int = 1,
    ) -> None:
        """FwpsInjectTransportSendAsync1 (``version=0``: ...Async0). ``send_args`` None is a raw
        send: the NBL starts at an IP header and holds exactly one NET_BUFFER."""
        self.injector.transport_send(
            handle,
            injection_context,
            endpoint_handle,
            flags,
            send_args,
            address_family,
            compartment_id,
            nbl,
            completion,
            completion_context,
            version=version,
        )

    def inject_stream(
        self,
        handle: InjectionHandle,
        nbl: NetBufferList | None,
        *,
        flow_id: int,
        callout_id: int,
        layer_id: int,
        stream_flags: int,
        data_length: int | None = None,
        completion: Callable | None = None,
        completion_context: Any = None,
        injection_context: Any = None,
        flags: int = 0,
    ) -> None:
        """FwpsStreamInjectAsync0 (``data_length`` None: the chain's length)."""
        self.injector.stream(
            handle,
            injection_context,
            flags,
            flow_id,
            callout_id,
            layer_id,
            stream_flags,
            nbl,
            data_length,
            completion,
            completion_context,
        )

    def inject_mac_receive(
        self,
        handle: InjectionHandle,
        nbl: NetBufferList,
        *,
        layer_id: int,
        interface_index: int,
        ndis_port_number: int = 0,
        completion: Callable | None = None,
        completion_context: Any = None,
        injection_context: Any = None,
        flags: int = 0,
    ) -> None:
        """FwpsInjectMacReceiveAsync0 (a chain completes once per NBL)."""
        self.injector.mac(
            handle,
            injection_context,
            flags,
            layer_id,
            interface_index,
            ndis_port_number,
            nbl,
            completion,
            completion_context,
            send=False,
        )

    def inject_mac_send(
        self,
        handle: InjectionHandle,
        nbl: NetBufferList,
        *,
        layer_id: int,
        interface_index: int,
        ndis_port_number: int = 0,
        completion: Callable | None = None,
        completion_context: Any = None,
        injection_context: Any = None,
        flags: int = 0,
    ) -> None:
        """FwpsInjectMacSendAsync0 (a chain completes once per NBL)."""
        self.injector.mac(
            handle,
            injection_context,
            flags,
            layer_id,
            interface_index,
            ndis_port_number,
            nbl,
            completion,
            completion_context,
            send=True,
        )

    def inject_vswitch_ingress(
        self,
        handle: InjectionHandle,
        nbl: NetBufferList,
        *,
        vswitch_id: Any,
        source_port_id: int = 0,
        source_nic_index: int = 0,
        completion: Callable | None = None,
        completion_context: Any = None,
        injection_context: Any = None,
        flags: int = 0,
    ) -> None:
        """FwpsInjectvSwitchEthernetIngressAsync0."""
        self.injector.vswitch_ingress(
            handle,
            injection_context,
            flags,
            None,
            vswitch_id,
            source_port_id,
            source_nic_index,
            nbl,
            completion,
            completion_context,
        )

    # ------------------------------------------------------------------------- teardown

    def leaks(self) -> dict[str, list]:
        """What is still outstanding: NBLs the stack waits to free (clones or references held
        by callouts), injections in flight, handles not destroyed, TCP flows open."""
        self._poll()
        return {
            "parked_nbls": [n for n, _, _ in self._parked],
            "in_flight": list(self._in_flight.values()),
            "open_handles": [h for h in self.handles if h.state.value != "destroyed"],
        }

    def write_pcap(self, path: str, interface_index: int | None = None) -> int:
        """Writes the frames that left through the wire (of one interface) to a pcap file."""
        frames = [f for f in self.wire if interface_index in (None, f.interface_index)]
        return write_pcap(path, frames)

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return (
            f"<Stack{name} interfaces={sorted(self.interfaces)} t={self.now}ns "
            f"queued={self.dispatcher.pending()}>"
        )

    # ======================================================================= internals

    # -- NBL ownership --

    def _new_nbl(self, data: bytes, backfill: int = 14 + 4) -> NetBufferList:
        nbl = NetBufferList.from_bytes(data, backfill)
        self._own[nbl.handle] = nbl
        self._hook_dereference(nbl)
        return nbl

    def _hook_dereference(self, nbl: NetBufferList) -> None:
        """The stack frees its NBL when a callout drops its last reference (FwpsDereference…)."""
        real = type(nbl).dereference

        def dereference(*args: Any) -> Any:
            result = real(nbl, *args)
            if nbl.handle in self._releasing:
                self._poll()
            return result

        nbl.__dict__["dereference"] = dereference

    def _release(self, nbl: NetBufferList) -> None:
        """The stack is done with its own NBL: free it now or once clones/references are gone."""
        if nbl.handle not in self._own or nbl.handle in self._releasing:
            return
        self._releasing.add(nbl.handle)
        self._park(nbl, lambda: self._free_own(nbl), wait_in_flight=True)
        self._poll()

    def _free_own(self, nbl: NetBufferList) -> None:
        self._releasing.discard(nbl.handle)
        self._own.pop(nbl.handle, None)
        if nbl.alive:
            nbl.__dict__.pop("dereference", None)
            nbl.free()

    def _park(
        self, nbl: NetBufferList, action: Callable[[], None], *, wait_in_flight: bool = False
    ) -> None:
        """Runs ``action`` once the NBL has no clones and no references (and, with
        ``wait_in_flight``, is not in flight)."""
        self._parked.append((nbl, action, wait_in_flight))

    def _poll(self) -> None:
        """Runs the actions of parked NBLs that became free (bounded by the parked count)."""
        if not self._parked:
            return
        for _ in range(len(self._parked) + 1):
            ready = None
            for i, (nbl, _action, wait) in enumerate(self._parked):
                if not nbl.alive:
                    ready = i
                    break
                if (
                    nbl.ChildRefCount == 0
                    and nbl.references == 0
                    and not (wait and nbl.handle in self._in_flight)
                ):
                    ready = i
                    break
            if ready is None:
                return
            nbl, action, _ = self._parked.pop(ready)
            if nbl.alive:
                action()
            else:
                self._releasing.discard(nbl.handle)
                self._own.pop(nbl.handle, None)

    # -- addresses and routes --

    def _topology_changed(self) -> None:
        self._cache.clear()

    def _addr_cache(self) -> dict:
        cache = self._cache
        if not cache:
            local: dict[tuple[bytes, int], Interface] = {}
            broadcast: dict[bytes, set[int]] = {}
            for i in self.interfaces.values():
                if not i.up:
                    continue
                for a in i.addresses:
                    local.setdefault((a.ip.packed, i.compartment_id), i)
                    if a.version == 4 and a.network.prefixlen < 31:
                        broadcast.setdefault(a.network.broadcast_address.packed, set()).add(i.index)
            cache["local"] = local
            cache["broadcast"] = broadcast
            cache["routes"] = {}
        return cache

    def _is_local(self, address: bytes, compartment_id: int, iface: Interface | None) -> bool:
        if self._is_multicast_or_broadcast(address, iface):
            return True
        return (address, compartment_id) in self._addr_cache()["local"]

    def _interface_with(self, address: bytes, compartment_id: int) -> Interface | None:
        return self._addr_cache()["local"].get((address, compartment_id))

    def _is_multicast_or_broadcast(self, address: bytes, iface: Interface | None = None) -> bool:
        if len(address) == 16:
            return address[0] == 0xFF
        if 224 <= address[0] <= 239 or address == b"\xff\xff\xff\xff":
            return True
        owners = self._addr_cache()["broadcast"].get(address)
        return bool(owners) and (iface is None or iface.index in owners)

    def _route(self, dst: bytes, compartment_id: int) -> tuple[Interface, bytes | None] | None:
        routes = self._addr_cache()["routes"]
        key = (dst, compartment_id)
        if key in routes:
            return routes[key]
        if len(routes) > 4096:
            routes.clear()
        routes[key] = result = self._route_lookup(dst, compartment_id)
        return result

    def _route_lookup(
        self, dst: bytes, compartment_id: int
    ) -> tuple[Interface, bytes | None] | None:
        family = AF_INET if len(dst) == 4 else AF_INET6
        addr = ipaddress.ip_address(dst)
        best: tuple[int, Interface] | None = None
        for r in self.routes:
            iface = self.interfaces.get(r.interface_index)
            if iface is None or not iface.up or r.compartment_id != compartment_id:
                continue
            if r.prefix.version == addr.version and addr in r.prefix:
                if best is None or r.prefix.prefixlen > best[0]:
                    best = (r.prefix.prefixlen, iface)
        for iface in self.interfaces.values():
            if not iface.up or iface.compartment_id != compartment_id:
                continue
            for a in iface.addresses:
                if a.version == addr.version and addr in a.network:
                    if best is None or a.network.prefixlen > best[0]:
                        best = (a.network.prefixlen, iface)
        if best is None:
            # implicit default route: the first up interface of the compartment with the family
            for iface in sorted(self.interfaces.values(), key=lambda i: i.index):
                if iface.up and iface.compartment_id == compartment_id and iface.source_for(family):
                    best = (0, iface)
                    break
        if best is None:
            return None
        return best[1], best[1].source_for(family, dst)

    def _next_hop_mac(self, iface: Interface, dst: bytes) -> bytes:
        mac = iface.neighbors.get(dst)
        if mac is not None:
            return mac
        if iface.link is not None:
            return iface.link.peer_mac(iface)
        if len(dst) == 4 and 224 <= dst[0] <= 239:
            return bytes([0x01, 0x00, 0x5E, dst[1] & 0x7F, dst[2], dst[3]])
        if len(dst) == 16 and dst[0] == 0xFF:
            return b"\x33\x33" + dst[12:]
        return b"\xff" * 6

    def _next_ip_id(self) -> int:
        self._ip_id = (self._ip_id + 1) & 0xFFFF
        return self._ip_id

    def _ipsec_required(self, remote: bytes) -> bool:
        return remote in self.ipsec_peers

    # -- endpoints and flows --

    def _find_endpoint(
        self, af: int, proto: int, local: bytes, port: int, compartment_id: int
    ) -> Endpoint | None:
        for ep in self.endpoints.values():
            if ep.address_family != af or ep.protocol != proto or ep.closed or ep.listening:
                continue
            if ep.compartment_id != compartment_id:
                continue
            if proto in (IP.IPPROTO_UDP,) and not ep.matches(local, port):
                continue
            if proto not in (IP.IPPROTO_UDP,) and ep.local_address not in (None, local):
                continue
            return ep
        return None

    def _find_listener(
        self, af: int, local: bytes, port: int, compartment_id: int
    ) -> Endpoint | None:
        for ep in self.endpoints.values():
            if (
                ep.listening
                and not ep.closed
                and ep.address_family == af
                and ep.compartment_id == compartment_id
                and ep.matches(local, port)
            ):
                return ep
        return None

    def _raw_endpoint(self, af: int, proto: int, compartment_id: int) -> Endpoint:
        key = (af, proto, compartment_id)
        ep = self._raw_endpoints.get(key)
        if ep is None or ep.closed:
            ep = Endpoint(self, af, proto, None, 0, compartment_id=compartment_id, raw=True)
            self._raw_endpoints[key] = ep
        return ep

    def _datagram_flow(
        self, ep: Endpoint, remote: tuple[bytes, int], direction: int
    ) -> DatagramFlow:
        key = (ep.handle, remote[0], remote[1])
        flow = self.datagram_flows.get(key)
        if flow is None:
            flow = DatagramFlow(ep, remote, direction)
            self.datagram_flows[key] = flow
        return flow

    def _refuse_flow(self, flow: Any) -> None:
        if isinstance(flow, TcpFlow):
            flow.state = "refused"
            self.tcp_by_tuple.pop((flow.address_family, *flow.local, *flow.remote), None)
            self._notify_flow_deleted(flow.flow_id)
        else:
            flow.state = "new"

    def _drop_flow(self, flow: TcpFlow) -> None:
        flow.dropped = True
        flow.close()

    def _flow_closed(self, flow: TcpFlow) -> None:
        self.tcp_by_tuple.pop((flow.address_family, *flow.local, *flow.remote), None)
        self._notify_flow_deleted(flow.flow_id)

    def _endpoint_closed(self, ep: Endpoint) -> None:
        for flow in list(self.flows.values()):
            if flow.endpoint is ep and not flow.closed:
                flow.close()
        for key, flow in list(self.datagram_flows.items()):
            if flow.endpoint is ep:
                del self.datagram_flows[key]
                if flow.state == "authorized":
                    self._notify_flow_deleted(flow.flow_id)

    def _notify_flow_deleted(self, flow_id: int) -> None:
        hook = getattr(self._engine, "flow_deleted", None)
        if hook is not None:
            hook(flow_id)

    # -- deliveries --

    def _record(self, rec: Delivered) -> None:
        self.delivered.append(rec)

    def _deliver_local(
        self, pkt: Pkt, endpoint: Endpoint, payload: bytes, remote: tuple[bytes, int]
    ) -> None:
        iface = pkt.interface
        endpoint.received.append(
            Datagram(
                payload,
                IP.addr_text(remote[0]),
                remote[1],
                iface.index if iface else 0,
                self.now,
                pkt.function,
            )
        )
        self._record(
            Delivered(
                pkt.function,
                pkt.raw_ip,
                pkt.af,
                pkt.compartment_id,
                iface.index if iface else 0,
                "local",
                self.now,
                endpoint_handle=endpoint.handle,
                remote=(IP.addr_text(remote[0]), remote[1]),
                injection_context=pkt.rec.injection_context if pkt.rec else None,
                layers=tuple(pkt.layers),
            )
        )

    def _deliver_icmp_error(
        self, pkt: Pkt, endpoint: Endpoint, icmp_type: int, code: int, inner: bytes
    ) -> None:
        endpoint.received.append(
            Datagram(
                inner,
                IP.addr_text(pkt.ip.src),
                -1,
                pkt.interface.index if pkt.interface else 0,
                self.now,
                pkt.function,
            )
        )
        self._record(
            Delivered(
                pkt.function,
                pkt.raw_ip,
                pkt.af,
                pkt.compartment_id,
                pkt.interface.index if pkt.interface else 0,
                "local",
                self.now,
                endpoint_handle=endpoint.handle,
                layers=tuple(pkt.layers),
            )
        )

    def _record_stream(
        self, flow: TcpFlow, direction: int, data: bytes, flags: int, rec: InjectionRecord | None
    ) -> None:
        self._record(
            Delivered(
                rec.function if rec else None,
                data,
                flow.address_family,
                flow.compartment_id,
                flow.interface_index,
                "stream",
                self.now,
                flow_id=flow.flow_id,
                stream_flags=flags,
                injection_context=rec.injection_context if rec else None,
            )
        )

    def _wire_out(
        self,
        pkt: Pkt,
        iface: Interface,
        ip_bytes: bytes,
        frame: bytes | None,
        data: bytes | None = None,
    ) -> None:
        out = frame if frame is not None else ip_bytes
        self.wire.append(WireFrame(self.now, iface.index, out, frame is not None))
        self._record(
            Delivered(
                pkt.function,
                data if data is not None else ip_bytes,
                pkt.af,
                iface.compartment_id,
                iface.index,
                "wire",
                self.now,
                frame=frame,
                injection_context=pkt.rec.injection_context if pkt.rec else None,
                layers=tuple(pkt.layers),
            )
        )
        if iface.link is not None:
            iface.link.carry(self, iface, out)

    def _loopback(self, pkt: Pkt, data: bytes) -> None:
        nbl = self._new_nbl(data)
        nbl.set_info(10, pkt.nbl.get_info(10) if pkt.nbl is not None and pkt.nbl.alive else 0)
        inner = Pkt(
            nbl,
            pkt.af,
            INBOUND,
            pkt.interface,
            compartment_id=pkt.compartment_id,
            rec=pkt.rec,
            flags=1,
        )  # FWP_CONDITION_FLAG_IS_LOOPBACK
        try:
            self.paths.receive_ip(inner)
        except Dropped:
            pass
        finally:
            pkt.layers.extend(inner.layers)
            self.paths.settle(inner)
            self._release(nbl)

    # -- TCP output --

    def _tcp_output(
        self,
        flow: TcpFlow,
        flags: int,
        payload: bytes = b"",
        *,
        flow_established: bool = False,
        rec: InjectionRecord | None = None,
    ) -> None:
        src, dst = flow.local[0], flow.remote[0]
        ack = flow.rcv_nxt or 0
        if flow.rcv_nxt is not None:
            flags |= IP.TCP_ACK
        seg = IP.tcp_segment(
            src, dst, flow.local[1], flow.remote[1], flow.snd_nxt, ack, flags, payload
        )
        flow.snd_nxt = (
            flow.snd_nxt + len(payload) + (1 if flags & (IP.TCP_SYN | IP.TCP_FIN) else 0)
        ) & 0xFFFFFFFF
        nbl = self._new_nbl(seg, backfill=SEND_BACKFILL)
        pkt = self._flow_pkt(flow, nbl)
        pkt.rec = rec
        pkt.tp = IP.parse_transport(IPPROTO_TCP, seg)
        try:
            if flow_established:
                self.paths._flow_established(pkt, flow, OUTBOUND)
            layer = layer_id("OUTBOUND_TRANSPORT", flow.address_family)
            self.paths.check(
                pkt,
                layer,
                lambda: self.paths.ip_values(pkt),
                lambda: self.paths.ip_meta(pkt, layer, ipHeaderSize=None),
            )
            sp = layer_id("STREAM_PACKET", flow.address_family)
            self.paths.check(
                pkt,
                sp,
                lambda: self.paths.ip_values(pkt),
                lambda: self.paths.ip_meta(pkt, sp, ipHeaderSize=None),
            )
            self.paths._prepend_ip_header(pkt, src, dst, IPPROTO_TCP)
            pkt.interface = None
            self.paths.send_ip(pkt)
        except Dropped:
            pass
        finally:
            self.paths.restore(pkt)
            self._release(nbl)

    def _tcp_send_data(
        self, flow: TcpFlow, data: bytes, *, fin: bool, rec: InjectionRecord | None
    ) -> None:
        iface = self.interfaces.get(flow.interface_index)
        mss = (iface.mtu if iface else 1500) - (40 if flow.address_family == AF_INET else 60)
        for off in range(0, len(data), max(mss, 1)):
            chunk = data[off : off + mss]
            last = off + mss >= len(data)
            self._tcp_output(flow, IP.TCP_PSH | (IP.TCP_FIN if fin and last else 0), chunk, rec=rec)
        if fin and not data:
            self._tcp_output(flow, IP.TCP_FIN, rec=rec)
        if fin:
            flow.fin_sent = True

    # -- reassembly timer --

    def _arm_reassembly_timer(self) -> None:
        deadline = self.reassembler.earliest_deadline()
        if deadline is None or self._reassembly_timer is not None:
            return

        def fire() -> None:
            self._reassembly_timer = None
            for event in self.reassembler.expire(self.now):
                if event.icmp is not None and event.first_fragment is not None:
                    iface = next(iter(self.interfaces.values()), None)
                    self.paths.send_icmp_error_bytes(
                        event.first_fragment,
                        iface,
                        iface.compartment_id if iface else 1,
                        *event.icmp,
                    )
            self._arm_reassembly_timer()

        self._reassembly_timer = self.dispatcher.queue(
            fire, at_ns=deadline, label="reassembly timer", depth=0
        )


def _never(layer: int) -> bool:
    return False


def _always(layer: int) -> bool:
    return True


# ---------------------------------------------------------------------- current / default stack

_current: contextvars.ContextVar[Stack | None] = contextvars.ContextVar(
    "wfpsim_stack", default=None
)
_default: Stack | None = None


def default_stack() -> Stack:
    """The process-wide default stack (created on first use, with its implicit interface); its
    filter engine is :func:`wfpsim.filtering.default_engine`."""
    global _default
    if _default is None:
        from wfpsim.filtering import default_engine

        _default = Stack(name="default", filter_engine=default_engine())
    return _default


def current_stack() -> Stack:
    """The stack made current by ``with stack:``, else the default stack."""
    stack = _current.get()
    return stack if stack is not None else default_stack()


# --------------------------------------------------------------------------- wire-to-wire links


class Link:
    """A wire between two interfaces of (usually) two stacks: every frame one side puts on the
    wire is received by the other after ``delay_ns``, as a work item of the receiver's
    dispatcher (so the receiver processes it when it runs)."""

    def __init__(self, a: Stack, a_if: int, b: Stack, b_if: int, delay_ns: int = 0) -> None:
        self.ends = ((a, a._require_interface(a_if)), (b, b._require_interface(b_if)))
        self.delay_ns = delay_ns
        for stack, iface in self.ends:
            if iface.link is not None:
                raise InvalidParameterError(
                    f"interface {iface.index} of {stack!r} is already linked"
                )
            iface.link = self

    def _other(self, iface: Interface) -> tuple[Stack, Interface]:
        (sa, ia), (sb, ib) = self.ends
        return (sb, ib) if iface is ia else (sa, ia)

    def peer_mac(self, iface: Interface) -> bytes:
        return self._other(iface)[1].mac or b"\xff" * 6

    def carry(self, sender: Stack, iface: Interface, data: bytes) -> None:
        peer, peer_if = self._other(iface)
        link = "ethernet" if peer_if.ethernet and iface.ethernet else "ip"
        if iface.ethernet and not peer_if.ethernet:
            data = data[14:]
        at = max(peer.now, sender.now + self.delay_ns)

        def arrive() -> None:
            peer.receive(peer_if.index, data, link=link, timestamp_ns=peer.now)

        peer.dispatcher.queue(
            arrive, at_ns=at, label=f"frame from {sender.name or 'peer'}", depth=0
        )


def connect(a: Stack, a_if: int, b: Stack, b_if: int, *, delay_ns: int = 0) -> Link:
    """Connects interface ``a_if`` of stack ``a`` to ``b_if`` of ``b`` with a wire."""
    return Link(a, a_if, b, b_if, delay_ns)


def run_all(stacks: Iterable[Stack], until: int | None = None, *, max_rounds: int = 100_000) -> int:
    """Runs several stacks until all are idle (``until=None``), or in time order up to
    ``until``. Returns the total number of work items run."""
    stacks = list(stacks)
    total = 0
    for _ in range(max_rounds):
        if until is None:
            ran = sum(s.run() for s in stacks)
        else:
            times = [
                t
                for t in (s.dispatcher.next_time() for s in stacks)
                if t is not None and t <= until
            ]
            if not times:
                for s in stacks:
                    s.run(until)
                return total
            t = min(times)
            ran = sum(s.run(t) for s in stacks)
            if ran == 0:
                for s in stacks:
                    s.dispatcher.now = max(s.dispatcher.now, t)
                continue
        total += ran
        if until is None and ran == 0:
            return total
    raise InvalidStateError(f"run_all: the stacks did not go idle in {max_rounds} rounds")


__all__ = ["Stack", "default_stack", "current_stack", "connect", "run_all", "Link", "Route"]
